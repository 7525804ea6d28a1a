-- +goose Up
CREATE TABLE counter (n INTEGER NOT NULL);
INSERT INTO counter (n) VALUES (0);

-- +goose Up
CREATE TABLE things (
    id    TEXT PRIMARY KEY,
    n     BIGINT NOT NULL CHECK (n >= 0),
    at    TIMESTAMP NOT NULL,
    blob  BYTEA
);

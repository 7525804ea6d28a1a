-- +goose Up
-- The transactional outbox: a service writes its events here in the same
-- transaction as the state change they announce; the relay publishes them.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,       -- UUIDv7, so id order is creation order; the Nats-Msg-Id
    type       TEXT NOT NULL,          -- e.g. user.registered
    source     TEXT NOT NULL,
    subject    TEXT NOT NULL,          -- the entity the event is about
    occurred_at TIMESTAMP NOT NULL,
    headers    TEXT NOT NULL,          -- JSON object: trace context and the like
    payload    BYTEA NOT NULL          -- protobuf bytes
);

-- Consumers record each handled event id in the transaction of its effect,
-- so a redelivered event changes nothing.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE processed_events;
DROP TABLE outbox;

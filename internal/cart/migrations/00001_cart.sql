-- +goose Up

-- Inventory: one row per SKU. available = on_hand - reserved. The CHECK is
-- the database's half of the no-oversell rule: whatever the application
-- does, reserved can never exceed what is on hand.
CREATE TABLE stock (
    sku           TEXT PRIMARY KEY,
    seller_id     TEXT NOT NULL,      -- owner, from the catalog when stock is first set
    product_id    TEXT NOT NULL,
    on_hand       BIGINT NOT NULL,
    reserved      BIGINT NOT NULL DEFAULT 0,
    low_threshold BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMP NOT NULL,
    CONSTRAINT stock_no_oversell CHECK (reserved >= 0 AND on_hand >= reserved),
    CONSTRAINT stock_low_threshold CHECK (low_threshold >= 0)
);
CREATE INDEX stock_by_seller ON stock (seller_id, sku);

-- A reservation holds stock for one order. Its status only ever moves away
-- from 'reserved', by a conditional UPDATE, so a commit racing the expiry
-- sweeper has exactly one winner. A 'released' row without lines is the
-- tombstone Release leaves when it ran before Reserve.
CREATE TABLE reservations (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT reservations_status CHECK (status IN ('reserved', 'committed', 'released', 'expired'))
);
CREATE INDEX reservations_open ON reservations (status, expires_at);

CREATE TABLE reservation_lines (
    order_id TEXT NOT NULL REFERENCES reservations (order_id),
    sku      TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (order_id, sku),
    CONSTRAINT reservation_lines_quantity CHECK (quantity > 0)
);

-- Every change of on_hand or reserved, with who and why. For each SKU the
-- sums of the deltas equal the stock row.
CREATE TABLE stock_ledger (
    id             TEXT PRIMARY KEY,  -- UUIDv7: id order is time order
    sku            TEXT NOT NULL,
    delta_on_hand  BIGINT NOT NULL,
    delta_reserved BIGINT NOT NULL,
    reason         TEXT NOT NULL,     -- adjusted, restocked, reserved, committed, released, expired
    actor          TEXT NOT NULL,     -- seller user id, "system" (RPC) or "sweeper"
    order_id       TEXT NOT NULL DEFAULT '',
    note           TEXT NOT NULL DEFAULT '',
    at             TIMESTAMP NOT NULL
);
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, id);

-- Carts, in the embedded shape (Redis holds them in the distributed one).
-- cart_key is "u:<user id>" or "g:<sha256 of the guest token, hex>".
CREATE TABLE carts (
    cart_key   TEXT PRIMARY KEY,
    updated_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP            -- guest carts only; NULL for user carts
);
CREATE INDEX carts_expiry ON carts (expires_at);

CREATE TABLE cart_lines (
    cart_key       TEXT NOT NULL REFERENCES carts (cart_key) ON DELETE CASCADE,
    sku            TEXT NOT NULL,
    quantity       INTEGER NOT NULL,
    added_amount   BIGINT NOT NULL,   -- unit price when added, to flag price changes
    added_currency TEXT NOT NULL,
    added_at       TIMESTAMP NOT NULL, -- lines are listed in the order they were added
    PRIMARY KEY (cart_key, sku),
    CONSTRAINT cart_lines_quantity CHECK (quantity BETWEEN 1 AND 99)
);

-- +goose Down
DROP TABLE cart_lines;
DROP TABLE carts;
DROP TABLE stock_ledger;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE stock;

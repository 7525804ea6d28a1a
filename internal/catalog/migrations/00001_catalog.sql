-- +goose Up
-- The category tree. Admins edit it; it is small (bounded in the service),
-- so the tree is read whole and assembled in Go.
CREATE TABLE categories (
    id         TEXT PRIMARY KEY,
    parent_id  TEXT REFERENCES categories (id),
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE products (
    id          TEXT PRIMARY KEY,   -- UUIDv7: id order is creation order ("newest" sorts by it)
    seller_id   TEXT NOT NULL,
    title       TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    brand       TEXT NOT NULL,
    brand_key   TEXT NOT NULL,      -- lower-cased brand, for the case-insensitive filter
    category_id TEXT NOT NULL REFERENCES categories (id),
    attributes  TEXT NOT NULL,      -- JSON object of strings
    images      TEXT NOT NULL,      -- JSON array of URLs, first is the main image
    status      TEXT NOT NULL CHECK (status IN ('draft', 'active', 'archived')),
    hidden      BOOLEAN NOT NULL DEFAULT FALSE, -- set by admins; hides from buyers whatever the status
    currency    TEXT NOT NULL,      -- every variant of a product shares it
    min_price   BIGINT NOT NULL,    -- cheapest variant, for price filters and sorts
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX products_seller ON products (seller_id, id);
CREATE INDEX products_category ON products (category_id, id);
CREATE INDEX products_brand ON products (brand_key, id);
CREATE INDEX products_price ON products (min_price, id);
CREATE INDEX products_status ON products (status, hidden, id);

-- Variants are the purchasable SKUs; the SKU is the key cart, inventory and
-- orders use, so it is unique across the whole catalog.
CREATE TABLE variants (
    sku               TEXT PRIMARY KEY,
    product_id        TEXT NOT NULL REFERENCES products (id),
    position          INTEGER NOT NULL,
    options           TEXT NOT NULL,  -- JSON object of strings
    price             BIGINT NOT NULL CHECK (price >= 0),
    compare_at_price  BIGINT CHECK (compare_at_price IS NULL OR compare_at_price >= price),
    currency          TEXT NOT NULL
);
CREATE INDEX variants_product ON variants (product_id, position);

-- variant_stock is a read model of the cart service's inventory, fed by
-- stock.* events. No foreign key to variants: stock may be announced before
-- (or after) the catalog knows the SKU.
CREATE TABLE variant_stock (
    sku           TEXT PRIMARY KEY,
    available     BIGINT NOT NULL,
    low_threshold BIGINT NOT NULL,
    observed_us   BIGINT NOT NULL   -- event time in µs; older events never overwrite newer ones
);

-- +goose Down
DROP TABLE variant_stock;
DROP TABLE variants;
DROP TABLE products;
DROP TABLE categories;

-- +goose Up
-- OAuth2 / OpenID Connect client apps, registered by an admin (REST or CLI).
-- A confidential client has a secret, of which only the SHA-256 is kept (it
-- carries 256 random bits: nothing to brute-force); a public client (a
-- native or single-page app) has none and must use PKCE alone.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,             -- the client_id (UUIDv7)
    secret_hash   TEXT NOT NULL DEFAULT '',     -- '' for a public client
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',   -- JSON array, matched exactly
    grant_types   TEXT NOT NULL,                -- space-separated
    scopes        TEXT NOT NULL,                -- space-separated, what it may ask for
    created_at    TIMESTAMP NOT NULL
);

-- Authorization codes: single use, short-lived, bound to everything the
-- token request must repeat. A spent code stays (until swept a day after it
-- expired) so that presenting it again can be recognised, and the session
-- it started (family_id) revoked.
CREATE TABLE oauth_codes (
    hash           TEXT PRIMARY KEY,            -- SHA-256 of the code
    client_id      TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,               -- PKCE S256
    scope          TEXT NOT NULL,
    nonce          TEXT NOT NULL DEFAULT '',
    auth_time      TIMESTAMP NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    used_at        TIMESTAMP,
    family_id      TEXT NOT NULL DEFAULT ''     -- the refresh-token family the exchange started
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- Sign-in with an external OpenID Connect provider: one row per started
-- sign-in, taken (deleted) by the callback. The browser holds the state in a
-- cookie too, so a callback cannot be replayed into another browser.
CREATE TABLE oidc_login_states (
    state_hash    TEXT PRIMARY KEY,             -- SHA-256 of the state
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,                -- PKCE towards the provider
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);
CREATE INDEX oidc_login_states_expires ON oidc_login_states (expires_at);

-- Accounts linked to an external provider's subject. The issuer is part of
-- the key: a subject is unique only within its issuer.
CREATE TABLE oidc_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL DEFAULT '',        -- as the provider asserted it when linked
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- +goose Down
DROP TABLE oidc_identities;
DROP TABLE oidc_login_states;
DROP TABLE oauth_codes;
DROP TABLE oauth_clients;

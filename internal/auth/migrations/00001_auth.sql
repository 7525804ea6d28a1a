-- +goose Up
-- Accounts. email is stored normalised (trimmed, lower-case), so the unique
-- index makes it unique case-insensitively on both engines.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,            -- UUIDv7: id order is creation order
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL DEFAULT '',
    addresses      TEXT NOT NULL DEFAULT '[]',  -- JSON array, bounded by the service
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('buyer', 'seller', 'admin')),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role ON user_roles (role, user_id);

-- A seller's shop. slug is derived from store_name and made unique with a
-- suffix when two shops share a name.
CREATE TABLE seller_profiles (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    store_name TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

-- Password credentials; an account signed up through an external identity
-- provider may have none.
CREATE TABLE passwords (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,              -- argon2id PHC string
    updated_at TIMESTAMP NOT NULL
);

-- A refresh-token family is one sign-in session: every rotation adds a token
-- to it, and presenting a spent token revokes the whole family.
CREATE TABLE refresh_families (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL DEFAULT '',   -- '' for the first-party apps; OAuth2 client otherwise
    scope          TEXT NOT NULL DEFAULT '',
    auth_time      TIMESTAMP NOT NULL,         -- when the user last proved a credential
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,         -- absolute end of the session
    last_used_at   TIMESTAMP NOT NULL,
    revoked_at     TIMESTAMP,
    revoked_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,               -- SHA-256 of the opaque token
    family_id  TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP                       -- set when rotated: the token is spent
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Single-use, expiring secrets mailed or handed to the user: email
-- verification, password reset, and the short-lived tokens of a sign-in that
-- still owes a second factor (or a TOTP enrolment, for admins).
CREATE TABLE one_time_tokens (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'mfa_login', 'mfa_enroll')),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    attempts   INTEGER NOT NULL DEFAULT 0      -- wrong second-factor codes tried with this token
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

-- TOTP: a row with enabled = FALSE is an enrolment waiting for its first code.
-- last_step is the highest time step accepted, so a code cannot be replayed.
CREATE TABLE totp_secrets (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    last_step  BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    enabled_at TIMESTAMP
);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT NOT NULL,
    used_at TIMESTAMP,
    PRIMARY KEY (user_id, hash)
);

-- Failed sign-ins, counted per account, per client address and per pair
-- (see throttle.go). Keys are not user ids: unknown emails are throttled
-- exactly like known ones, so throttling reveals nothing.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure TIMESTAMP NOT NULL
);
CREATE INDEX login_throttle_last ON login_throttle (last_failure);

-- +goose Down
DROP TABLE login_throttle;
DROP TABLE recovery_codes;
DROP TABLE totp_secrets;
DROP TABLE one_time_tokens;
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
DROP TABLE passwords;
DROP TABLE seller_profiles;
DROP TABLE user_roles;
DROP TABLE users;

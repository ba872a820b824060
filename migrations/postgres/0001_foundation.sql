-- Foundation: organisations (tenants), staff, sign-in sessions, API keys (see migrations/sqlite for the conventions both share).
-- Conventions shared with migrations/postgres (the code reads both through sqlx's Any
-- driver, which carries only integers, text and NULL): ids are UUIDv7 text, times are
-- epoch milliseconds, booleans are 0/1, lists of strings are JSON arrays in text.

-- Instance-wide values every instance must agree on, such as the access-token secret.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- Touched to serialise changes that must see every admin of the org (last-admin rule).
    updated_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    -- Sign-in finds a user by address alone, so addresses are unique across organisations.
    email_key     TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'sender', 'viewer')),
    permissions   TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_org ON users (org_id, id);

-- One row per sign-in: the access tokens and the chain of refresh tokens issued from it
-- (the "family") share it, so revoking it stops them all at once.
CREATE TABLE auth_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

-- Only the SHA-256 of a refresh token is kept. A token presented again after use
-- (used_at set) means it was copied: the whole session is revoked.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Failed sign-ins, keyed by 'address:<sha256>' and 'ip:<address>', read as a sliding
-- window. In the database rather than in memory so that every instance sees them.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- The first characters of the key, shown in lists so people can tell keys apart.
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    single_use   BIGINT NOT NULL DEFAULT 0,
    expires_at   BIGINT,
    -- When a single-use key made its one send; it answers 401 from then on.
    consumed_at  BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    created_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);

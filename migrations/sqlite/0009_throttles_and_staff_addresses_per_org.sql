-- no-transaction
-- (1) Throttles replace the failed-sign-in window: one row per key (a sign-in address with
-- the client's IP, a client, a session…) with the attempts counted since `window_start` and
-- the time before which the next attempt is refused. An attempt is counted before it is
-- checked, so parallel guesses cannot exceed the allowance. In the database so that every
-- instance sees the same counts.
-- (2) Staff addresses are unique per organisation, not across them: a global constraint
-- told an admin of one school (by a 409) that an address had an account at another.
-- Sign-in resolves the account by address and password.
-- SQLite cannot drop a table constraint, so `users` is rebuilt (the documented twelve-step
-- way: foreign keys off, outside sqlx's transaction, inside our own).
PRAGMA foreign_keys = OFF;
BEGIN;

DROP TABLE login_failures;
CREATE TABLE throttles (
    key           TEXT PRIMARY KEY,
    attempts      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
);
CREATE INDEX throttles_window_start ON throttles (window_start);

CREATE TABLE users_per_org (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'sender', 'viewer')),
    permissions   TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
INSERT INTO users_per_org (id, org_id, email, email_key, name, role, permissions, password_hash, created_at, updated_at)
    SELECT id, org_id, email, email_key, name, role, permissions, password_hash, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_per_org RENAME TO users;
CREATE INDEX users_org ON users (org_id, id);
CREATE UNIQUE INDEX users_org_email_key ON users (org_id, email_key);
-- Sign-in looks the address up across organisations.
CREATE INDEX users_email_key_lookup ON users (email_key);

COMMIT;
PRAGMA foreign_keys = ON;

-- (1) Throttles replace the failed-sign-in window: one row per key (a sign-in address with
-- the client's IP, a client, a session…) with the attempts counted since `window_start` and
-- the time before which the next attempt is refused. An attempt is counted before it is
-- checked, so parallel guesses cannot exceed the allowance. In the database so that every
-- instance sees the same counts.
DROP TABLE login_failures;
CREATE TABLE throttles (
    key           TEXT COLLATE "C" PRIMARY KEY,
    attempts      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);
CREATE INDEX throttles_window_start ON throttles (window_start);

-- (2) Staff addresses are unique per organisation, not across them: a global constraint
-- told an admin of one school (by a 409) that an address had an account at another.
-- Sign-in resolves the account by address and password.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_org_email_key ON users (org_id, email_key);
CREATE INDEX users_email_key_lookup ON users (email_key);

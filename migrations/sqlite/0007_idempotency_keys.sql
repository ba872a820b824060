-- `Idempotency-Key` on POST: the first answer to a (credential, key) pair, replayed to
-- retries for a day. `status` is NULL while the first request is still being handled.
CREATE TABLE idempotency_keys (
    -- SHA-256 of the credential (X-API-Key or Authorization): keys belong to who sent them.
    credential_hash TEXT NOT NULL,
    key             TEXT NOT NULL,
    -- SHA-256 of method, path, query and body: a key reused for another request is refused.
    request_hash    TEXT NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    location        TEXT,
    body            BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (credential_hash, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

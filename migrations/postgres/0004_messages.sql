-- Messages and the delivery queue. Conventions as in 0001; see migrations/sqlite for the comments.

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Who composed it: a staff user, or an API key (a school-information system).
    created_by      TEXT REFERENCES users (id) ON DELETE SET NULL,
    api_key_id      TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    from_name       TEXT,
    priority        TEXT NOT NULL CHECK (priority IN ('normal', 'emergency')),
    answer_required BIGINT NOT NULL DEFAULT 0,
    answer_deadline BIGINT,
    -- JSON: {questions: [{text, kind, options, required}]}; validated by the API.
    survey          TEXT,
    -- JSON: {list_ids, member_ids, attributes}; resolved into recipients at send time.
    targets         TEXT NOT NULL,
    -- JSON array of 'email' and 'push'.
    channels        TEXT NOT NULL,
    copy_to_sender  BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
    send_at         BIGINT,
    sent_at         BIGINT,
    completed_at    BIGINT,
    recipient_count BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX messages_org ON messages (org_id, id);
-- The scheduler's question: which scheduled messages are due?
CREATE INDEX messages_due ON messages (status, send_at);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    org_id       TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

-- One row per guardian a message reached, whatever the number of lists that named them.
-- No id of its own: (message, member) is the identity, and the personal link signs it.
CREATE TABLE recipients (
    message_id      TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    member_id       TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL,
    read_at         BIGINT,
    acknowledged_at BIGINT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (message_id, member_id)
);

-- The delivery queue: one job per (recipient, address or device).
-- status: 0 queued, 1 claimed (leased), 2 sent, 3 failed (gave up), 4 bounced,
-- 5 invalid (dead device token), 6 skipped (channel not configured; reason in last_error).
CREATE TABLE delivery_jobs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'push')),
    -- The e-mail address, or the device token.
    address     TEXT NOT NULL,
    -- For push: 'apns' or 'fcm' and the device row (removed when the token is dead).
    platform    TEXT,
    device_id   TEXT,
    -- 1 for emergency messages: claimed before everything else.
    priority    BIGINT NOT NULL,
    status      BIGINT NOT NULL DEFAULT 0,
    attempts    BIGINT NOT NULL DEFAULT 0,
    run_after   BIGINT NOT NULL,
    lease_until BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- The claim reads only queued jobs, in claim order (a partial index, as CRATES.md measured).
CREATE INDEX delivery_jobs_queued ON delivery_jobs (priority DESC, id) WHERE status = 0;
CREATE INDEX delivery_jobs_leased ON delivery_jobs (lease_until) WHERE status = 1;
CREATE INDEX delivery_jobs_message ON delivery_jobs (message_id, status);

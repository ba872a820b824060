-- Responses: survey answers, and what resends and reminders need. Conventions as in 0001; see migrations/sqlite for the comments.

-- When the guardian last answered (NULL: not yet); answers themselves are below.
ALTER TABLE recipients ADD COLUMN answered_at BIGINT;

-- A guardian's current answer to one question; a new answer replaces it until the
-- deadline, so results count each guardian's latest answers once.
CREATE TABLE answers (
    message_id  TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    question    BIGINT NOT NULL,
    -- JSON array of option indexes (single and multiple choice questions)…
    choices     TEXT,
    -- …or the free text (text questions).
    text        TEXT,
    answered_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, member_id, question),
    FOREIGN KEY (message_id, member_id) REFERENCES recipients (message_id, member_id) ON DELETE CASCADE
);

-- An answer-required message may remind, once, those who have not acknowledged after
-- this many minutes.
ALTER TABLE messages ADD COLUMN remind_after_minutes BIGINT;
ALTER TABLE messages ADD COLUMN reminded_at BIGINT;

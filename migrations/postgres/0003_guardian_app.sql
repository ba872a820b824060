-- Guardian self-service through the official app: invitations from staff, app sessions,
-- and the double opt-in of addresses a guardian adds. Conventions as in 0001; see migrations/sqlite for the comments.

-- A one-time code staff hand to a guardian (on paper or by e-mail) to open the app as
-- that member. Only its SHA-256 is kept.
CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX invitations_member ON invitations (member_id);

-- An app installation signed in as a member. The guardian JWT names it, and every request
-- checks it, so removing the member or revoking the session ends access at once.
CREATE TABLE guardian_sessions (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX guardian_sessions_member ON guardian_sessions (member_id);

-- Confirmation links for addresses a guardian added; keyed by address rather than by
-- member_emails row, because profile updates rewrite those rows.
CREATE TABLE email_confirmations (
    token_hash  TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    member_id   TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    address_key TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX email_confirmations_member ON email_confirmations (member_id);

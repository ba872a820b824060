-- Rosters: lists (classes, grades, clubs, routes) and the guardians ("members") in them,
-- with up to four e-mail addresses and four app devices each. Conventions as in 0001; see migrations/sqlite for the comments.

CREATE TABLE lists (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    -- Guardians who register with this code join the list as 'pending' until approved.
    join_code   TEXT UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- CSV imports name lists by name, so a name means one list within an organisation.
    CONSTRAINT lists_org_name UNIQUE (org_id, name)
);

CREATE TABLE members (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_kana    TEXT,
    student_name TEXT,
    relation     TEXT,
    locale       TEXT,
    -- The school-information system's key for this guardian; upserts match on it.
    external_id  TEXT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'pending')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT members_org_external_id UNIQUE (org_id, external_id)
);
CREATE INDEX members_org ON members (org_id, id);

-- Free attributes (grade, class, club, route, position …) as rows rather than a JSON
-- column: targeting and grade promotion then query them with the same SQL on both engines.
CREATE TABLE member_attributes (
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    org_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (member_id, key)
);
CREATE INDEX member_attributes_lookup ON member_attributes (org_id, key, value);

CREATE TABLE member_emails (
    id           TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    org_id       TEXT NOT NULL,
    -- 1 to 4: the order the guardian or the roster gave.
    position     BIGINT NOT NULL,
    address      TEXT NOT NULL,
    address_key  TEXT NOT NULL,
    -- unconfirmed: added by the guardian, waiting for the confirmation link (double opt-in);
    -- bounced: the last delivery was refused; disabled: three bounces in a row, or by staff.
    status       TEXT NOT NULL CHECK (status IN ('active', 'unconfirmed', 'bounced', 'disabled')),
    bounce_count BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    CONSTRAINT member_emails_member_address UNIQUE (member_id, address_key)
);
CREATE INDEX member_emails_lookup ON member_emails (org_id, address_key);

CREATE TABLE member_devices (
    id         TEXT PRIMARY KEY,
    member_id  TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL,
    platform   TEXT NOT NULL CHECK (platform IN ('apns', 'fcm')),
    token      TEXT NOT NULL,
    app_id     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- A phone belongs to one guardian of an organisation: registering it again moves it.
    CONSTRAINT member_devices_org_token UNIQUE (org_id, platform, token)
);
CREATE INDEX member_devices_member ON member_devices (member_id);

CREATE TABLE list_members (
    list_id   TEXT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    org_id    TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (list_id, member_id)
);
CREATE INDEX list_members_member ON list_members (member_id);

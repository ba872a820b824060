-- The rows written by the tens of thousands (a roster import, a send's fan-out) carry no
-- foreign keys on PostgreSQL: each checked row costs a trigger and a row lock on its
-- parent (SELECT … FOR KEY SHARE), about 5 µs, and a send to 50,000 guardians writes
-- 250,000 such rows. Measured on this 2-core machine: the fan-out's statements took
-- 3.3 s with these keys and 1.8 s without; a 50,000-row import 6.8 s and 4.6 s.
-- The repositories keep what the keys kept (src/db/repositories):
--   * deleting a member or a list deletes its child rows in the same transaction
--     (members::delete, lists::delete); answers still cascade from recipients;
--   * a transaction that adds child rows to an existing member or list first locks it
--     (members::existing, lists::existing: FOR KEY SHARE), so a concurrent delete waits
--     for it and then removes what it added; member updates check that every row is
--     still there.
-- SQLite keeps its keys: a check there is one B-tree probe, and its figures meet the
-- targets with them.
ALTER TABLE recipients DROP CONSTRAINT recipients_message_id_fkey;
ALTER TABLE recipients DROP CONSTRAINT recipients_member_id_fkey;
ALTER TABLE delivery_jobs DROP CONSTRAINT delivery_jobs_message_id_fkey;
ALTER TABLE member_attributes DROP CONSTRAINT member_attributes_member_id_fkey;
ALTER TABLE member_emails DROP CONSTRAINT member_emails_member_id_fkey;
ALTER TABLE list_members DROP CONSTRAINT list_members_member_id_fkey;
ALTER TABLE list_members DROP CONSTRAINT list_members_list_id_fkey;

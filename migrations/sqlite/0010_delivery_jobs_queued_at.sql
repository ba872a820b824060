-- When a job was queued (its message's send, or the resend or reminder that queued it
-- again): a job still failing transiently RENRAKUMO_DELIVERY_MAX_AGE after it was queued
-- ends as failed. Jobs queued before this column existed count from their last change.
ALTER TABLE delivery_jobs ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0;
UPDATE delivery_jobs SET queued_at = updated_at WHERE status IN (0, 1);

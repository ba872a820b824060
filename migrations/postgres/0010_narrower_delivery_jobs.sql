-- A fan-out writes one job per address and device (200,000 for 50,000 guardians), so each
-- column a job carries is paid for that many times. The organisation is the message's,
-- and a job's creation is its message's send; neither was read from the job.
ALTER TABLE delivery_jobs DROP COLUMN org_id, DROP COLUMN created_at;

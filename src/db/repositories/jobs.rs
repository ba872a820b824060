//! The SQL of the delivery queue, which lives in the database: a send writes one recipient
//! per guardian and one job per receiving address and device; workers claim jobs in
//! batches under a lease, so any instance can work them and a crashed one loses nothing
//! (its leases expire and the jobs are claimed again). On PostgreSQL, `FOR UPDATE SKIP
//! LOCKED` lets instances claim side by side without waiting on each other; SQLite has one
//! writer, so its plain `UPDATE … RETURNING` is already exclusive.
//!
//! `crate::delivery::queue` is the one way in; this file only speaks SQL.

use sqlx::{AnyConnection, Row};

use super::messages::select_targeted;
use super::tallies::{self, Tallies};
use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{Backend, RepoError, RepoResult, engine};
use crate::domain::delivery::{Destination, Job, JobStatus};
use crate::domain::member::Platform;
use crate::domain::message::{Channel, FollowUp, Message};

/// The condition on `r` (recipients) that selects the recipients `who` names.
pub(super) fn follow_up_condition(who: FollowUp) -> &'static str {
    match who {
        FollowUp::Unread => "r.read_at IS NULL",
        FollowUp::Unacknowledged => "r.acknowledged_at IS NULL",
        FollowUp::Unanswered => "r.answered_at IS NULL",
        // Failed, bounced, invalid (JobStatus codes 3, 4, 5).
        FollowUp::Failed => {
            "EXISTS (SELECT 1 FROM delivery_jobs f WHERE f.message_id = r.message_id AND f.member_id = r.member_id AND f.status IN (3, 4, 5))"
        }
    }
}

/// The jobs a send or a follow-up queues for one message.
struct NewJobs<'a> {
    message: &'a Message,
    now: i64,
}

impl NewJobs<'_> {
    fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.message.content.channels.iter().copied()
    }

    /// Emergency messages are claimed first.
    fn priority(&self) -> i64 {
        if self.message.is_emergency() { 1 } else { 0 }
    }

    /// `INSERT … SELECT` of `channel`'s jobs for the guardians of `source` (a relation with
    /// column member_id), in delivery order per guardian: e-mail addresses as the guardian
    /// ordered them, then devices. Disabled and unconfirmed addresses receive nothing;
    /// bounced ones are tried again until the third bounce in a row disables them.
    fn insert(&self, sql: &mut Sql, channel: Channel, source: impl FnOnce(&mut Sql)) {
        let (columns, values, join) = match channel {
            Channel::Email => (
                "address",
                "e.address",
                " t JOIN member_emails e ON e.member_id = t.member_id WHERE e.status IN ('active', 'bounced') ORDER BY t.member_id, e.position",
            ),
            Channel::Push => (
                "address, platform, device_id",
                "d.token, d.platform, d.id",
                " t JOIN member_devices d ON d.member_id = t.member_id ORDER BY t.member_id, d.id",
            ),
        };
        sql.push(&format!(
            "INSERT INTO delivery_jobs (message_id, member_id, channel, {columns}, priority, status, attempts, run_after, updated_at, queued_at) SELECT "
        ))
        .bind(self.message.id.as_str())
        .push(&format!(", t.member_id, '{}', {values}, ", channel.as_str()))
        .bind(self.priority())
        .push(&format!(", {}, 0, ", JobStatus::Queued.code()))
        .bind(self.now)
        .push(", ")
        .bind(self.now)
        .push(", ")
        .bind(self.now)
        .push(" FROM ");
        source(sql);
        sql.push(join);
    }
}

/// Fan-out, inside the caller's transaction: one recipient per guardian the message's
/// targets select (however many targets name them) and one queued job per receiving address
/// and device, written by the database from the roster itself rather than row by row from
/// here. Records the recipient count on the message and returns it.
pub async fn fan_out(conn: &mut AnyConnection, message: &Message, now: i64) -> RepoResult<i64> {
    let jobs = NewJobs { message, now };
    let (org_id, message_id, targets) = (message.org_id.as_str(), message.id.as_str(), &message.content.targets);
    let count = if engine(conn) == Backend::Sqlite {
        // One writer at a time: the recipients, then their jobs, see the same roster.
        let mut recipients = Sql::new("INSERT INTO recipients (message_id, member_id, org_id, created_at) SELECT ");
        recipients.bind(message_id).push(", m.id, m.org_id, ").bind(now);
        select_targeted(&mut recipients, org_id, targets);
        let count = recipients.query(conn).execute(&mut *conn).await?.rows_affected() as i64;
        queue_for_recipients(conn, &jobs, "TRUE").await?;
        count
    } else {
        // One statement: one snapshot of the roster for recipients and jobs, and the jobs
        // joined to the selected guardians as the planner estimates them (the recipients
        // just written have no statistics yet, which made it probe the addresses one
        // guardian at a time).
        let mut sql = Sql::new("WITH targeted AS MATERIALIZED (SELECT m.id AS member_id, m.org_id");
        select_targeted(&mut sql, org_id, targets);
        // Locked, so that a guardian deleted meanwhile is either left out or deleted after
        // the send, recipient row included (the recipients carry no foreign key on
        // PostgreSQL: migrations/postgres/0007_bulk_rows_without_foreign_keys.sql).
        sql.push(&row_lock(conn, RowLock::KeyShare, "m"));
        sql.push("), added AS (INSERT INTO recipients (message_id, member_id, org_id, created_at) SELECT ")
            .bind(message_id)
            .push(", member_id, org_id, ")
            .bind(now)
            .push(" FROM targeted RETURNING 1)");
        // PostgreSQL runs the inserts as the final SELECT reads them: e-mail jobs are
        // numbered (and so claimed) before push jobs, as on SQLite. Its documentation leaves
        // that order open; nothing else depends on it.
        let mut counts = String::from("SELECT (SELECT COUNT(*) FROM added)");
        for channel in jobs.channels() {
            sql.push(&format!(", {}_jobs AS (", channel.as_str()));
            jobs.insert(&mut sql, channel, |sql| {
                sql.push("targeted");
            });
            sql.push(" RETURNING 1)");
            counts.push_str(&format!(", (SELECT COUNT(*) FROM {}_jobs)", channel.as_str()));
        }
        sql.push(" ").push(&counts);
        let row = sql.query(conn).fetch_one(&mut *conn).await?;
        let mut queued = Tallies::default();
        for (i, channel) in jobs.channels().enumerate() {
            queued.queued(message_id, channel, row.try_get(i + 1)?);
        }
        tallies::write(conn, queued).await?;
        row.try_get(0)?
    };
    super::messages::set_recipient_count(conn, message_id, count, now).await?;
    Ok(count)
}

/// Appends the message's recipients who are still active members and match `condition`
/// (on `r`, recipients), as a relation with column member_id.
fn recipients_matching(sql: &mut Sql, message_id: &str, condition: &str) {
    sql.push("(SELECT r.member_id FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = ")
        .bind(message_id)
        .push(&format!(" AND m.status = 'active' AND {condition})"));
}

/// Queues one job per receiving address and device of the recipients matching
/// `condition` (on `r`), on the message's channels.
async fn queue_for_recipients(conn: &mut AnyConnection, jobs: &NewJobs<'_>, condition: &str) -> RepoResult<()> {
    let mut queued = Tallies::default();
    for channel in jobs.channels() {
        let mut sql = Sql::new("");
        jobs.insert(&mut sql, channel, |sql| recipients_matching(sql, &jobs.message.id, condition));
        let count = sql.query(conn).execute(&mut *conn).await?.rows_affected();
        queued.queued(&jobs.message.id, channel, count as i64);
    }
    tallies::write(conn, queued).await
}

/// Queues new jobs, on every current address and device, for the recipients `who` selects
/// (suspended guardians receive nothing); returns how many guardians. A message that had
/// completed is sending again.
pub async fn follow_up(conn: &mut AnyConnection, message: &Message, who: FollowUp, now: i64) -> RepoResult<i64> {
    let condition = follow_up_condition(who);
    let mut count = Sql::new("SELECT COUNT(*) FROM ");
    recipients_matching(&mut count, &message.id, condition);
    count.push(" t");
    let guardians: i64 = count.query_scalar(conn).fetch_one(&mut *conn).await?;
    queue_for_recipients(conn, &NewJobs { message, now }, condition).await?;
    if guardians > 0 {
        super::messages::reopen(conn, &message.id, now).await?;
    }
    Ok(guardians)
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    message_id: String,
    member_id: String,
    channel: String,
    address: String,
    platform: Option<String>,
    device_id: Option<String>,
    attempts: i64,
    queued_at: i64,
}

impl TryFrom<JobRow> for Job {
    type Error = RepoError;

    fn try_from(row: JobRow) -> RepoResult<Job> {
        let destination = match (row.channel.as_str(), row.platform, row.device_id) {
            ("email", _, _) => Destination::Email { address: row.address },
            ("push", Some(platform), Some(device_id)) => Destination::Device {
                platform: Platform::parse(&platform).ok_or_else(|| RepoError::corrupt("job platform", &platform))?,
                token: row.address,
                device_id,
            },
            (channel, platform, device_id) => {
                return Err(RepoError::corrupt(
                    "job",
                    format!("job {}: channel {channel:?}, platform {platform:?}, device {device_id:?}", row.id),
                ));
            }
        };
        Ok(Job {
            id: row.id,
            message_id: row.message_id,
            member_id: row.member_id,
            destination,
            attempts: row.attempts,
            queued_at: row.queued_at,
        })
    }
}

/// Claims up to `limit` jobs due at `now`, emergency first, leased until `lease_until`.
pub async fn claim(conn: &mut AnyConnection, limit: i64, now: i64, lease_until: i64) -> RepoResult<Vec<Job>> {
    let lock = row_lock(conn, RowLock::UpdateSkipLocked, "delivery_jobs");
    let (queued, claimed) = (JobStatus::Queued.code(), JobStatus::Claimed.code());
    let sql = format!(
        "UPDATE delivery_jobs SET status = {claimed}, lease_until = $1, attempts = attempts + 1, updated_at = $2 \
         WHERE (message_id, member_id, id) IN (SELECT message_id, member_id, id FROM delivery_jobs \
         WHERE status = {queued} AND run_after <= $2 ORDER BY priority DESC, id LIMIT $3{lock}) \
         RETURNING id, message_id, member_id, channel, address, platform, device_id, attempts, queued_at"
    );
    // PostgreSQL may still pick two claims as deadlock victims under contention (40P01);
    // the claim is idempotent, so it is simply tried again.
    let mut attempt = 0;
    let rows: Vec<JobRow> = loop {
        attempt += 1;
        let result = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") && attempt < 5 => continue,
            other => break other?,
        }
    };
    rows.into_iter().map(Job::try_from).collect()
}

/// Gives claimed jobs back to the queue untried (a worker stopping before it sent them).
pub async fn release(conn: &mut AnyConnection, jobs: &[Job]) -> RepoResult<()> {
    let (queued, claimed) = (JobStatus::Queued.code(), JobStatus::Claimed.code());
    for chunk in jobs.chunks(500) {
        let mut sql = Sql::new(&format!(
            "UPDATE delivery_jobs SET status = {queued}, lease_until = NULL, attempts = attempts - 1 WHERE status = {claimed} AND "
        ));
        where_jobs(&mut sql, chunk.iter());
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Extends the lease of `jobs` still claimed to `lease_until` (their worker is alive and
/// still sending or recording them).
pub async fn renew(conn: &mut AnyConnection, jobs: &[Job], lease_until: i64) -> RepoResult<()> {
    let claimed = JobStatus::Claimed.code();
    for chunk in jobs.chunks(500) {
        let mut sql = Sql::new("UPDATE delivery_jobs SET lease_until = ");
        sql.bind(lease_until).push(&format!(" WHERE status = {claimed} AND "));
        where_jobs(&mut sql, chunk.iter());
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The condition for exactly `jobs`. Twice over: SQLite finds them by id (its row id),
/// PostgreSQL by its key (message, member, id), which also serves a message's jobs by
/// guardian, so that a fan-out adds one index entry fewer per job
/// (migrations/postgres/0011_delivery_jobs_keyed_by_message.sql).
fn where_jobs<'a>(sql: &mut Sql, jobs: impl Iterator<Item = &'a Job> + Clone) {
    sql.push("id IN (").bind_list(jobs.clone().map(|job| job.id)).push(") AND (message_id, member_id, id) IN (VALUES ");
    for (i, job) in jobs.enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" })
            .bind(job.message_id.as_str())
            .push(", ")
            .bind(job.member_id.as_str())
            .push(", ")
            .bind(job.id)
            .push(")");
    }
    sql.push(")");
}

/// Puts jobs whose lease expired before `now` (their instance died or hung) back in the
/// queue.
pub async fn reclaim_expired(conn: &mut AnyConnection, now: i64) -> RepoResult<u64> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE delivery_jobs SET status = {}, lease_until = NULL WHERE status = {} AND lease_until < $1",
        JobStatus::Queued.code(),
        JobStatus::Claimed.code()
    )))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Sets `outcome` on jobs still waiting or being sent (a job whose lease expired may have
/// been finished by another worker meanwhile: its first outcome stands), and counts the
/// change in `tallies`.
pub async fn finish(
    conn: &mut AnyConnection,
    jobs: &[&Job],
    outcome: JobStatus,
    error: Option<&str>,
    now: i64,
    tallies: &mut Tallies,
) -> RepoResult<()> {
    for chunk in jobs.chunks(500) {
        let mut sql = Sql::new("UPDATE delivery_jobs SET status = ");
        sql.bind(outcome.code())
            .push(", lease_until = NULL, last_error = ")
            .bind(error)
            .push(", updated_at = ")
            .bind(now);
        sql.push(&format!(" WHERE status IN ({}, {}) AND ", JobStatus::Queued.code(), JobStatus::Claimed.code()));
        where_jobs(&mut sql, chunk.iter().copied());
        sql.push(" RETURNING message_id, channel");
        let finished = sql.query_as::<(String, String)>(conn).fetch_all(&mut *conn).await?;
        count_finished(finished, outcome, tallies)?;
    }
    Ok(())
}

/// Counts in `tallies` the jobs a statement ended with `outcome`, from its
/// `RETURNING message_id, channel` rows.
fn count_finished(rows: Vec<(String, String)>, outcome: JobStatus, tallies: &mut Tallies) -> RepoResult<()> {
    for (message_id, channel) in rows {
        let channel = Channel::parse(&channel).ok_or_else(|| RepoError::corrupt("job channel", &channel))?;
        tallies.finished(message_id, channel, outcome);
    }
    Ok(())
}

/// Ends the jobs of `member_id` still waiting or being sent with `reason` (the guardian left
/// the roster), counted as failed; returns the messages they belonged to.
pub async fn fail_pending_of_member(
    conn: &mut AnyConnection,
    member_id: &str,
    reason: &str,
    now: i64,
) -> RepoResult<Vec<String>> {
    let (queued, claimed, failed) = (JobStatus::Queued.code(), JobStatus::Claimed.code(), JobStatus::Failed.code());
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE delivery_jobs SET status = {failed}, lease_until = NULL, last_error = $2, updated_at = $3 \
         WHERE member_id = $1 AND status IN ({queued}, {claimed}) RETURNING message_id, channel"
    )))
    .bind(member_id)
    .bind(reason)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut messages: Vec<String> = Vec::new();
    for (message_id, _) in &rows {
        if !messages.contains(message_id) {
            messages.push(message_id.clone());
        }
    }
    let mut changes = Tallies::default();
    count_finished(rows, JobStatus::Failed, &mut changes)?;
    tallies::write(conn, changes).await?;
    Ok(messages)
}

/// Back to the queue, not before `run_after` (unless another worker finished it meanwhile).
pub async fn retry_later(conn: &mut AnyConnection, job: &Job, run_after: i64, error: &str, now: i64) -> RepoResult<()> {
    let queued = JobStatus::Queued.code();
    let mut sql = Sql::new(&format!("UPDATE delivery_jobs SET status = {queued}, lease_until = NULL, run_after = "));
    sql.bind(run_after).push(", last_error = ").bind(error).push(", updated_at = ").bind(now);
    sql.push(&format!(" WHERE status IN ({queued}, {}) AND ", JobStatus::Claimed.code()));
    where_jobs(&mut sql, std::iter::once(job));
    sql.query(conn).execute(conn).await?;
    Ok(())
}

/// Counts a refusal against the address: bounced, and disabled at the third in a row.
pub async fn record_bounce(conn: &mut AnyConnection, member_id: &str, address_key: &str) -> RepoResult<()> {
    sqlx::query(
        "UPDATE member_emails SET bounce_count = bounce_count + 1, \
         status = CASE WHEN bounce_count + 1 >= 3 THEN 'disabled' ELSE 'bounced' END \
         WHERE member_id = $1 AND address_key = $2 AND status IN ('active', 'bounced')",
    )
    .bind(member_id)
    .bind(address_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// A guardian's address, by its lower-cased key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressKey<'a> {
    pub member_id: &'a str,
    pub address_key: String,
}

/// A delivery to a bounced address ends its run of bounces: one statement per batch of
/// addresses, since nearly every address has no bounce to clear.
pub async fn record_delivered(conn: &mut AnyConnection, addresses: &[AddressKey<'_>]) -> RepoResult<()> {
    for chunk in addresses.chunks(400) {
        let mut sql = Sql::new(
            "UPDATE member_emails SET bounce_count = 0, status = 'active' \
             WHERE status = 'bounced' AND (member_id, address_key) IN (VALUES ",
        );
        for (i, address) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(address.member_id)
                .push(", ")
                .bind(address.address_key.as_str())
                .push(")");
        }
        sql.push(")");
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

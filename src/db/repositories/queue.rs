//! The delivery queue lives in the database: jobs are claimed in batches under a lease, so
//! any instance can work them and a crashed one loses nothing (its leases expire and the
//! jobs are claimed again). On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets instances claim
//! side by side without waiting on each other; SQLite has one writer, so its plain
//! `UPDATE … RETURNING` is already exclusive.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::AnyConnection;

use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{Db, RepoResult, now_ms};

pub const QUEUED: i64 = 0;
pub const CLAIMED: i64 = 1;
pub const SENT: i64 = 2;
pub const FAILED: i64 = 3;
pub const BOUNCED: i64 = 4;
pub const INVALID: i64 = 5;
pub const SKIPPED: i64 = 6;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub message_id: String,
    pub member_id: String,
    pub channel: String,
    pub address: String,
    pub platform: Option<String>,
    pub device_id: Option<String>,
    /// Including this attempt.
    pub attempts: i64,
}

/// Claims up to `limit` due jobs, emergency first, under a lease of `lease`.
pub async fn claim(db: &Db, limit: i64, lease: Duration) -> RepoResult<Vec<Job>> {
    let now = now_ms();
    let mut conn = db.pool.acquire().await?;
    let lock = row_lock(&conn, RowLock::UpdateSkipLocked, "delivery_jobs");
    let sql = format!(
        "UPDATE delivery_jobs SET status = {CLAIMED}, lease_until = $1, attempts = attempts + 1, updated_at = $2 \
         WHERE (message_id, member_id, id) IN (SELECT message_id, member_id, id FROM delivery_jobs \
         WHERE status = {QUEUED} AND run_after <= $2 ORDER BY priority DESC, id LIMIT $3{lock}) \
         RETURNING id, message_id, member_id, channel, address, platform, device_id, attempts"
    );
    // PostgreSQL may still pick two claims as deadlock victims under contention (40P01);
    // the claim is idempotent, so it is simply tried again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") && attempt < 5 => continue,
            other => return Ok(other?),
        }
    }
}

/// Gives claimed jobs back to the queue untried (a worker stopping before it sent them).
pub async fn release(db: &Db, jobs: &[Job]) -> RepoResult<()> {
    let mut conn = db.pool.acquire().await?;
    for chunk in jobs.chunks(500) {
        let mut sql = Sql::new(&format!(
            "UPDATE delivery_jobs SET status = {QUEUED}, lease_until = NULL, attempts = attempts - 1 WHERE status = {CLAIMED} AND "
        ));
        where_jobs(&mut sql, chunk.iter());
        sql.query(&conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The condition for exactly `jobs`. Twice over: SQLite finds them by id (its row id),
/// PostgreSQL by its key (message, member, id), which also serves a message's jobs by
/// guardian, so that a fan-out adds one index entry fewer per job
/// (migrations/postgres/0011).
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

/// Puts jobs whose lease expired (their instance died or hung) back in the queue.
pub async fn reclaim_expired(db: &Db) -> RepoResult<u64> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE delivery_jobs SET status = {QUEUED}, lease_until = NULL WHERE status = {CLAIMED} AND lease_until < $1"
    )))
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// Sets an outcome on jobs still waiting or being sent (a job whose lease expired may have
/// been finished by another worker meanwhile: its first outcome stands), and counts the
/// change in `tallies`.
pub async fn finish(
    conn: &mut AnyConnection,
    jobs: &[&Job],
    status: i64,
    error: Option<&str>,
    tallies: &mut Tallies,
) -> RepoResult<()> {
    for chunk in jobs.chunks(500) {
        let mut sql = Sql::new("UPDATE delivery_jobs SET status = ");
        sql.bind(status).push(", lease_until = NULL, last_error = ").bind(error).push(", updated_at = ").bind(now_ms());
        sql.push(&format!(" WHERE status IN ({QUEUED}, {CLAIMED}) AND "));
        where_jobs(&mut sql, chunk.iter().copied());
        sql.push(" RETURNING message_id, channel");
        for (message_id, channel) in sql.query_as::<(String, String)>(conn).fetch_all(&mut *conn).await? {
            tallies.finished(message_id, channel, status);
        }
    }
    Ok(())
}

/// Back to the queue, not before `run_after` (unless another worker finished it meanwhile).
pub async fn retry_later(conn: &mut AnyConnection, job: &Job, run_after: i64, error: &str) -> RepoResult<()> {
    let mut sql = Sql::new(&format!("UPDATE delivery_jobs SET status = {QUEUED}, lease_until = NULL, run_after = "));
    sql.bind(run_after).push(", last_error = ").bind(error).push(", updated_at = ").bind(now_ms());
    sql.push(&format!(" WHERE status IN ({QUEUED}, {CLAIMED}) AND "));
    where_jobs(&mut sql, std::iter::once(job));
    sql.query(conn).execute(conn).await?;
    Ok(())
}

/// Messages among `ids` whose jobs are all done become `sent`; returns those.
pub async fn complete_messages(conn: &mut AnyConnection, ids: &[String]) -> RepoResult<Vec<String>> {
    let mut completed = Vec::new();
    for id in ids {
        // Workers recording a message's last jobs at the same time take turns here, so the
        // last of them, whose next statement sees the others' commits, completes it.
        let mut lock = Sql::new("SELECT id FROM messages WHERE status = 'sending' AND id = ");
        lock.bind(id.as_str()).push(&row_lock(conn, RowLock::Update, "messages"));
        if lock.query(conn).fetch_optional(&mut *conn).await?.is_none() {
            continue;
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) FROM delivery_tallies WHERE message_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if pending > 0 {
            continue;
        }
        sqlx::query("UPDATE messages SET status = 'sent', completed_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        completed.push(id.clone());
    }
    Ok(completed)
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

/// A delivery to a bounced address ends its run of bounces: one statement per batch of
/// `(member_id, address_key)` pairs, since nearly every address has no bounce to clear.
pub async fn record_delivered(conn: &mut AnyConnection, addresses: &[(&str, String)]) -> RepoResult<()> {
    for chunk in addresses.chunks(400) {
        let mut sql = Sql::new(
            "UPDATE member_emails SET bounce_count = 0, status = 'active' \
             WHERE status = 'bounced' AND (member_id, address_key) IN (VALUES ",
        );
        for (i, (member_id, address_key)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" }).bind(*member_id).push(", ").bind(address_key).push(")");
        }
        sql.push(")");
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The scheduled message that is due first, moved to `sending` inside the caller's
/// transaction (locked against other instances on PostgreSQL).
pub async fn take_due_scheduled(conn: &mut AnyConnection) -> RepoResult<Option<(String, String)>> {
    let lock = row_lock(conn, RowLock::UpdateSkipLocked, "messages");
    let now = now_ms();
    let due: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, org_id FROM messages WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at LIMIT 1{lock}"
    )))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((id, _)) = &due {
        sqlx::query("UPDATE messages SET status = 'sending', sent_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
    }
    Ok(due)
}

/// A message's jobs of one channel by state: the change one statement made, or a sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Waiting or being sent.
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
    pub invalid: i64,
    pub skipped: i64,
}

/// Changes to the tallies of (message id, channel), collected in a transaction and written
/// with [`write_tallies`] before it commits.
#[derive(Debug, Default)]
pub struct Tallies(BTreeMap<(String, String), Tally>);

impl Tallies {
    pub fn queued(&mut self, message_id: String, channel: String, jobs: i64) {
        self.0.entry((message_id, channel)).or_default().queued += jobs;
    }

    fn finished(&mut self, message_id: String, channel: String, status: i64) {
        let tally = self.0.entry((message_id, channel)).or_default();
        tally.queued -= 1;
        match status {
            SENT => tally.sent += 1,
            BOUNCED => tally.bounced += 1,
            INVALID => tally.invalid += 1,
            SKIPPED => tally.skipped += 1,
            _ => tally.failed += 1,
        }
    }
}

/// Appends the changes as rows (see migrations/sqlite/0006_delivery_progress.sql).
pub async fn write_tallies(conn: &mut AnyConnection, tallies: Tallies) -> RepoResult<()> {
    let rows: Vec<_> = tallies.0.into_iter().filter(|(_, tally)| *tally != Tally::default()).collect();
    for chunk in rows.chunks(100) {
        let mut sql = Sql::new(
            "INSERT INTO delivery_tallies (message_id, channel, queued, sent, failed, bounced, invalid, skipped) VALUES ",
        );
        for (i, ((message_id, channel), t)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(message_id.as_str()).push(", ").bind(channel.as_str());
            for count in [t.queued, t.sent, t.failed, t.bounced, t.invalid, t.skipped] {
                sql.push(", ").bind(count);
            }
            sql.push(")");
        }
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The message's jobs by channel and state, summed from its tally rows.
pub async fn tallies(conn: &mut AnyConnection, message_id: &str) -> RepoResult<BTreeMap<String, Tally>> {
    // CAST: PostgreSQL sums BIGINT as NUMERIC, which the Any driver does not carry.
    let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT channel, CAST(SUM(queued) AS BIGINT), CAST(SUM(sent) AS BIGINT), CAST(SUM(failed) AS BIGINT), \
         CAST(SUM(bounced) AS BIGINT), CAST(SUM(invalid) AS BIGINT), CAST(SUM(skipped) AS BIGINT) \
         FROM delivery_tallies WHERE message_id = $1 GROUP BY channel",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(channel, queued, sent, failed, bounced, invalid, skipped)| {
            (channel, Tally { queued, sent, failed, bounced, invalid, skipped })
        })
        .collect())
}

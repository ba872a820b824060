//! Messages and their recipients (attachments: `attachments.rs`).

use sqlx::{AnyConnection, Row};

use super::queue::{Tallies, write_tallies};
use super::receipts::Followers;
use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{Backend, RepoError, RepoResult, engine, new_id, now_ms};
use crate::domain::message::Targets;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub org_id: String,
    pub created_by: Option<String>,
    pub api_key_id: Option<String>,
    pub subject: String,
    pub body: String,
    pub from_name: Option<String>,
    pub priority: String,
    pub answer_required: i64,
    pub answer_deadline: Option<i64>,
    pub survey: Option<String>,
    pub targets: String,
    pub channels: String,
    pub copy_to_sender: i64,
    pub status: String,
    pub send_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub recipient_count: i64,
    pub remind_after_minutes: Option<i64>,
    pub reminded_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, org_id, created_by, api_key_id, subject, body, from_name, priority, answer_required, answer_deadline, \
     survey, targets, channels, copy_to_sender, status, send_at, sent_at, completed_at, recipient_count, remind_after_minutes, reminded_at, \
     created_at, updated_at";

/// The fields staff edit, already checked and serialised.
pub struct MessageContent {
    pub subject: String,
    pub body: String,
    pub from_name: Option<String>,
    pub priority: String,
    pub answer_required: bool,
    pub answer_deadline: Option<i64>,
    pub survey: Option<String>,
    pub targets: String,
    pub channels: String,
    pub copy_to_sender: bool,
    pub remind_after_minutes: Option<i64>,
}

pub async fn create(
    conn: &mut AnyConnection,
    org_id: &str,
    created_by: Option<&str>,
    api_key_id: Option<&str>,
    content: &MessageContent,
) -> RepoResult<MessageRow> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO messages (id, org_id, created_by, api_key_id, subject, body, from_name, priority, answer_required, answer_deadline, \
         survey, targets, channels, copy_to_sender, remind_after_minutes, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16, 'draft', $15, $15)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(created_by)
    .bind(api_key_id)
    .bind(&content.subject)
    .bind(&content.body)
    .bind(&content.from_name)
    .bind(&content.priority)
    .bind(content.answer_required as i64)
    .bind(content.answer_deadline)
    .bind(&content.survey)
    .bind(&content.targets)
    .bind(&content.channels)
    .bind(content.copy_to_sender as i64)
    .bind(now)
    .bind(content.remind_after_minutes)
    .execute(&mut *conn)
    .await?;
    find(conn, org_id, &id).await?.ok_or(RepoError::NotFound)
}

pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<MessageRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM messages WHERE org_id = $1 AND id = $2")))
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// For the delivery workers, which serve every organisation.
pub async fn find_any(conn: &mut AnyConnection, id: &str) -> RepoResult<Option<MessageRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM messages WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Rewrites the content of a draft or scheduled message; false when it is in another state.
pub async fn update_content(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    content: &MessageContent,
) -> RepoResult<bool> {
    let done = sqlx::query(
        "UPDATE messages SET subject = $3, body = $4, from_name = $5, priority = $6, answer_required = $7, answer_deadline = $8, \
         survey = $9, targets = $10, channels = $11, copy_to_sender = $12, updated_at = $13, remind_after_minutes = $14 \
         WHERE org_id = $1 AND id = $2 AND status IN ('draft', 'scheduled')",
    )
    .bind(org_id)
    .bind(id)
    .bind(&content.subject)
    .bind(&content.body)
    .bind(&content.from_name)
    .bind(&content.priority)
    .bind(content.answer_required as i64)
    .bind(content.answer_deadline)
    .bind(&content.survey)
    .bind(&content.targets)
    .bind(&content.channels)
    .bind(content.copy_to_sender as i64)
    .bind(now_ms())
    .bind(content.remind_after_minutes)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes drafts among `ids`; returns how many.
pub async fn delete_drafts(conn: &mut AnyConnection, org_id: &str, ids: &[String]) -> RepoResult<u64> {
    let mut sql = Sql::new("DELETE FROM messages WHERE status = 'draft' AND org_id = ");
    sql.bind(org_id).push(" AND id IN (").bind_list(ids).push(")");
    Ok(sql.query(conn).execute(conn).await?.rows_affected())
}

#[derive(Debug, Default)]
pub struct MessageFilter {
    pub status: Option<String>,
    pub created_by: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Lower-cased partial match on subject and body.
    pub q: Option<String>,
}

/// Newest first: a page of history.
pub async fn list(
    conn: &mut AnyConnection,
    org_id: &str,
    filter: &MessageFilter,
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<MessageRow>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM messages WHERE org_id = "));
    sql.bind(org_id);
    if let Some(before) = before {
        sql.push(" AND id < ").bind(before);
    }
    if let Some(status) = &filter.status {
        sql.push(" AND status = ").bind(status.as_str());
    }
    if let Some(user) = &filter.created_by {
        sql.push(" AND created_by = ").bind(user.as_str());
    }
    if let Some(from) = filter.from {
        sql.push(" AND COALESCE(sent_at, send_at, created_at) >= ").bind(from);
    }
    if let Some(to) = filter.to {
        sql.push(" AND COALESCE(sent_at, send_at, created_at) < ").bind(to);
    }
    if let Some(q) = &filter.q {
        let pattern = super::like_pattern(q);
        sql.push(" AND (LOWER(subject) LIKE ")
            .bind(&pattern)
            .push(" ESCAPE '\\' OR LOWER(body) LIKE ")
            .bind(&pattern)
            .push(" ESCAPE '\\')");
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
    Ok(sql.query_as(conn).fetch_all(conn).await?)
}

/// The members a message's targets select: active members of the organisation.
fn select_members(sql: &mut Sql, org_id: &str, targets: &Targets) {
    sql.push(" FROM members m WHERE m.org_id = ").bind(org_id).push(" AND m.status = 'active'");
    if !targets.list_ids.is_empty() || !targets.member_ids.is_empty() {
        sql.push(" AND (");
        if !targets.list_ids.is_empty() {
            sql.push("EXISTS (SELECT 1 FROM list_members lm WHERE lm.member_id = m.id AND lm.list_id IN (")
                .bind_list(&targets.list_ids)
                .push("))");
        } else {
            sql.push("1 = 0");
        }
        if !targets.member_ids.is_empty() {
            sql.push(" OR m.id IN (").bind_list(&targets.member_ids).push(")");
        }
        sql.push(")");
    }
    for (key, values) in &targets.attributes {
        sql.push(" AND EXISTS (SELECT 1 FROM member_attributes a WHERE a.member_id = m.id AND a.key = ")
            .bind(key)
            .push(" AND a.value IN (")
            .bind_list(values)
            .push("))");
    }
}

/// What a send would reach now: guardians, and their addresses and devices that receive.
pub async fn preview(conn: &mut AnyConnection, org_id: &str, targets: &Targets) -> RepoResult<(i64, i64, i64)> {
    let mut members = Sql::new("SELECT COUNT(*)");
    select_members(&mut members, org_id, targets);
    let recipients: i64 = members.query_scalar(conn).fetch_one(&mut *conn).await?;
    let mut emails = Sql::new(
        "SELECT COUNT(*) FROM member_emails e WHERE e.status IN ('active', 'bounced') AND e.member_id IN (SELECT m.id",
    );
    select_members(&mut emails, org_id, targets);
    emails.push(")");
    let emails: i64 = emails.query_scalar(conn).fetch_one(&mut *conn).await?;
    let mut devices = Sql::new("SELECT COUNT(*) FROM member_devices d WHERE d.member_id IN (SELECT m.id");
    select_members(&mut devices, org_id, targets);
    devices.push(")");
    let devices: i64 = devices.query_scalar(conn).fetch_one(&mut *conn).await?;
    Ok((recipients, emails, devices))
}

/// Fan-out, inside the caller's transaction: one recipient per selected guardian (however
/// many targets name them) and one queued job per receiving address and device, written
/// by the database from the roster itself rather than row by row from here.
pub async fn fan_out(
    conn: &mut AnyConnection,
    org_id: &str,
    message_id: &str,
    targets: &Targets,
    email: bool,
    push: bool,
    priority: i64,
) -> RepoResult<i64> {
    let now = now_ms();
    let jobs = Jobs { message_id, email, push, priority, now };
    let count = if engine(conn) == Backend::Sqlite {
        // One writer at a time: the recipients, then their jobs, see the same roster.
        let mut recipients = Sql::new("INSERT INTO recipients (message_id, member_id, org_id, created_at) SELECT ");
        recipients.bind(message_id).push(", m.id, m.org_id, ").bind(now);
        select_members(&mut recipients, org_id, targets);
        let count = recipients.query(conn).execute(&mut *conn).await?.rows_affected() as i64;
        enqueue_for(conn, &jobs, "TRUE").await?;
        count
    } else {
        // One statement: one snapshot of the roster for recipients and jobs, and the jobs
        // joined to the selected guardians as the planner estimates them (the recipients
        // just written have no statistics yet, which made it probe the addresses one
        // guardian at a time; in psql, for 50,000 guardians, 1.9 s instead of 2.2 s).
        let mut sql = Sql::new("WITH targeted AS MATERIALIZED (SELECT m.id AS member_id, m.org_id");
        select_members(&mut sql, org_id, targets);
        // Locked, so that a guardian deleted meanwhile is either left out or deleted after
        // the send, recipient row included (migrations/postgres/0007).
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
            sql.push(&format!(", {channel}_jobs AS ("));
            jobs.insert(&mut sql, channel, |sql| {
                sql.push("targeted");
            });
            sql.push(" RETURNING 1)");
            counts.push_str(&format!(", (SELECT COUNT(*) FROM {channel}_jobs)"));
        }
        sql.push(" ").push(&counts);
        let row = sql.query(conn).fetch_one(&mut *conn).await?;
        let mut tallies = Tallies::default();
        for (i, channel) in jobs.channels().enumerate() {
            tallies.queued(message_id.to_string(), channel.to_string(), row.try_get(i + 1)?);
        }
        write_tallies(conn, tallies).await?;
        row.try_get(0)?
    };
    sqlx::query("UPDATE messages SET recipient_count = $2, updated_at = $3 WHERE id = $1")
        .bind(message_id)
        .bind(count)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(count)
}

/// The jobs a fan-out or a resend queues.
struct Jobs<'a> {
    message_id: &'a str,
    email: bool,
    push: bool,
    priority: i64,
    now: i64,
}

impl Jobs<'_> {
    fn channels(&self) -> impl Iterator<Item = &'static str> {
        [("email", self.email), ("push", self.push)].into_iter().filter(|(_, on)| *on).map(|(channel, _)| channel)
    }

    /// `INSERT … SELECT` of `channel`'s jobs for the guardians of `source` (a relation with
    /// column member_id), in delivery order per guardian: e-mail addresses as the guardian
    /// ordered them, then devices. Disabled and unconfirmed addresses receive nothing;
    /// bounced ones are tried again until the third bounce in a row disables them.
    fn insert(&self, sql: &mut Sql, channel: &str, source: impl FnOnce(&mut Sql)) {
        let (columns, values, join) = match channel {
            "email" => (
                "address",
                "e.address",
                " t JOIN member_emails e ON e.member_id = t.member_id WHERE e.status IN ('active', 'bounced') ORDER BY t.member_id, e.position",
            ),
            _ => (
                "address, platform, device_id",
                "d.token, d.platform, d.id",
                " t JOIN member_devices d ON d.member_id = t.member_id ORDER BY t.member_id, d.id",
            ),
        };
        sql.push(&format!(
            "INSERT INTO delivery_jobs (message_id, member_id, channel, {columns}, priority, status, attempts, run_after, updated_at) SELECT "
        ))
        .bind(self.message_id)
        .push(&format!(", t.member_id, '{channel}', {values}, "))
        .bind(self.priority)
        .push(", 0, 0, ")
        .bind(self.now)
        .push(", ")
        .bind(self.now)
        .push(" FROM ");
        source(sql);
        sql.push(join);
    }
}

/// Queues one job per receiving address (`email`) and device (`push`) of the message's
/// recipients that match `condition`, a fixed SQL condition on `r` (recipients).
/// Suspended members receive nothing.
pub async fn enqueue(
    conn: &mut AnyConnection,
    message_id: &str,
    condition: &'static str,
    email: bool,
    push: bool,
    priority: i64,
) -> RepoResult<()> {
    enqueue_for(conn, &Jobs { message_id, email, push, priority, now: now_ms() }, condition).await
}

/// The message's recipients who are still active members and match `condition` (on `r`,
/// recipients), as a relation with column member_id: whom a resend or reminder queues.
pub(super) fn push_recipients_matching(sql: &mut Sql, message_id: &str, condition: &str) {
    sql.push("(SELECT r.member_id FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = ")
        .bind(message_id)
        .push(&format!(" AND m.status = 'active' AND {condition})"));
}

async fn enqueue_for(conn: &mut AnyConnection, jobs: &Jobs<'_>, condition: &'static str) -> RepoResult<()> {
    let mut tallies = Tallies::default();
    for channel in jobs.channels() {
        let mut sql = Sql::new("");
        jobs.insert(&mut sql, channel, |sql| push_recipients_matching(sql, jobs.message_id, condition));
        let queued = sql.query(conn).execute(&mut *conn).await?.rows_affected();
        tallies.queued(jobs.message_id.to_string(), channel.to_string(), queued as i64);
    }
    write_tallies(conn, tallies).await
}

/// Moves a message between states when it is in one of `from`; false otherwise.
pub async fn transition(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    from: &[&str],
    to: &str,
    send_at: Option<i64>,
) -> RepoResult<bool> {
    let now = now_ms();
    let mut sql = Sql::new("UPDATE messages SET status = ");
    sql.bind(to).push(", updated_at = ").bind(now);
    match to {
        "scheduled" => {
            sql.push(", send_at = ").bind(send_at);
        }
        "sending" => {
            sql.push(", sent_at = ").bind(now).push(", send_at = NULL");
        }
        _ => {}
    }
    sql.push(" WHERE org_id = ")
        .bind(org_id)
        .push(" AND id = ")
        .bind(id)
        .push(" AND status IN (")
        .bind_list(from.iter().copied())
        .push(")");
    Ok(sql.query(conn).execute(conn).await?.rows_affected() == 1)
}

/// (recipients, read, acknowledged, answered)
pub async fn response_counts(conn: &mut AnyConnection, message_id: &str) -> RepoResult<(i64, i64, i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*), COUNT(read_at), COUNT(acknowledged_at), COUNT(answered_at) FROM recipients WHERE message_id = $1",
    )
        .bind(message_id)
        .fetch_one(conn)
        .await?)
}

#[derive(Debug, sqlx::FromRow)]
pub struct RecipientRow {
    pub member_id: String,
    pub name: String,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub answered_at: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub member_id: String,
    pub channel: String,
    pub address: String,
    pub platform: Option<String>,
    pub status: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// A page of recipients (by member id), all or only `who`.
pub async fn recipients(
    conn: &mut AnyConnection,
    message_id: &str,
    who: Option<Followers>,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<(Vec<RecipientRow>, Vec<JobRow>)> {
    let mut sql = Sql::new(
        "SELECT r.member_id, m.name, r.read_at, r.acknowledged_at, r.answered_at FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = ",
    );
    sql.bind(message_id).push(" AND r.member_id > ").bind(after.unwrap_or(""));
    if let Some(who) = who {
        sql.push(" AND ").push(who.condition());
    }
    sql.push(" ORDER BY r.member_id LIMIT ").bind(limit);
    let rows: Vec<RecipientRow> = sql.query_as(conn).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok((rows, vec![]));
    }
    let mut jobs = Sql::new(
        "SELECT member_id, channel, address, platform, status, attempts, last_error, updated_at FROM delivery_jobs WHERE message_id = ",
    );
    jobs.bind(message_id)
        .push(" AND member_id IN (")
        .bind_list(rows.iter().map(|r| r.member_id.as_str()))
        .push(") ORDER BY member_id, id");
    let jobs = jobs.query_as(conn).fetch_all(conn).await?;
    Ok((rows, jobs))
}

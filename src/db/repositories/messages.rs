//! Messages: their content, their state, and whom their targets select. Rows are parsed
//! into `domain::message::Message` here, once; a stored value that does not parse is a
//! `RepoError::Corrupt`, never a default. (Attachments: `attachments.rs`; the jobs a send
//! queues: `jobs.rs`; how its recipients responded: `recipients.rs`.)

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{RepoError, RepoResult, new_id, now_ms};
use crate::domain::message::{Message, MessageContent, MessageStatus, Priority, Targets};

#[derive(Debug, sqlx::FromRow)]
struct MessageRow {
    id: String,
    org_id: String,
    created_by: Option<String>,
    api_key_id: Option<String>,
    subject: String,
    body: String,
    from_name: Option<String>,
    priority: String,
    answer_required: i64,
    answer_deadline: Option<i64>,
    survey: Option<String>,
    targets: String,
    channels: String,
    copy_to_sender: i64,
    status: String,
    send_at: Option<i64>,
    sent_at: Option<i64>,
    completed_at: Option<i64>,
    recipient_count: i64,
    remind_after_minutes: Option<i64>,
    reminded_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, org_id, created_by, api_key_id, subject, body, from_name, priority, answer_required, answer_deadline, \
     survey, targets, channels, copy_to_sender, status, send_at, sent_at, completed_at, recipient_count, remind_after_minutes, reminded_at, \
     created_at, updated_at";

/// A stored epoch-milliseconds time.
pub(super) fn stored_time(what: &'static str, ms: i64) -> RepoResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| RepoError::corrupt(what, format!("time {ms} out of range")))
}

fn stored_json<T: serde::de::DeserializeOwned>(what: &'static str, json: &str) -> RepoResult<T> {
    serde_json::from_str(json).map_err(|e| RepoError::corrupt(what, e))
}

impl TryFrom<MessageRow> for Message {
    type Error = RepoError;

    fn try_from(row: MessageRow) -> RepoResult<Message> {
        let time = |ms: Option<i64>| ms.map(|ms| stored_time("message time", ms)).transpose();
        let content = MessageContent {
            priority: Priority::parse(&row.priority)
                .ok_or_else(|| RepoError::corrupt("message priority", &row.priority))?,
            answer_required: row.answer_required != 0,
            answer_deadline: time(row.answer_deadline)?,
            survey: row.survey.as_deref().map(|s| stored_json("message survey", s)).transpose()?,
            targets: stored_json("message targets", &row.targets)?,
            channels: stored_json("message channels", &row.channels)?,
            copy_to_sender: row.copy_to_sender != 0,
            remind_after_minutes: row.remind_after_minutes,
            subject: row.subject,
            body: row.body,
            from_name: row.from_name,
        };
        Ok(Message {
            status: MessageStatus::parse(&row.status)
                .ok_or_else(|| RepoError::corrupt("message status", &row.status))?,
            send_at: time(row.send_at)?,
            sent_at: time(row.sent_at)?,
            completed_at: time(row.completed_at)?,
            reminded_at: time(row.reminded_at)?,
            created_at: stored_time("message time", row.created_at)?,
            updated_at: stored_time("message time", row.updated_at)?,
            recipient_count: row.recipient_count,
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
            api_key_id: row.api_key_id,
            content,
        })
    }
}

/// The content as its columns store it.
struct StoredContent<'a> {
    content: &'a MessageContent,
    survey: Option<String>,
    targets: String,
    channels: String,
}

impl StoredContent<'_> {
    fn of(content: &MessageContent) -> RepoResult<StoredContent<'_>> {
        let json = |value: serde_json::Result<String>| value.map_err(|e| RepoError::corrupt("message content", e));
        Ok(StoredContent {
            survey: content.survey.as_ref().map(|s| json(serde_json::to_string(s))).transpose()?,
            targets: json(serde_json::to_string(&content.targets))?,
            channels: json(serde_json::to_string(&content.channels))?,
            content,
        })
    }
}

pub async fn create(
    conn: &mut AnyConnection,
    org_id: &str,
    created_by: Option<&str>,
    api_key_id: Option<&str>,
    content: &MessageContent,
) -> RepoResult<Message> {
    let id = new_id();
    let now = now_ms();
    let stored = StoredContent::of(content)?;
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
    .bind(content.priority.as_str())
    .bind(content.answer_required as i64)
    .bind(content.answer_deadline.map(|d| d.timestamp_millis()))
    .bind(&stored.survey)
    .bind(&stored.targets)
    .bind(&stored.channels)
    .bind(content.copy_to_sender as i64)
    .bind(now)
    .bind(content.remind_after_minutes)
    .execute(&mut *conn)
    .await?;
    find(conn, org_id, &id).await?.ok_or(RepoError::NotFound)
}

/// The organisation's message with that id.
pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<Message>> {
    let row: Option<MessageRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM messages WHERE org_id = $1 AND id = $2")))
            .bind(org_id)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(Message::try_from).transpose()
}

/// The message with that id in whichever organisation: for callers whose access is proven
/// otherwise (the delivery workers, a guardian's signed link).
pub async fn find_unscoped(conn: &mut AnyConnection, id: &str) -> RepoResult<Option<Message>> {
    let row: Option<MessageRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM messages WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(Message::try_from).transpose()
}

/// Rewrites the content of a draft or scheduled message; false when it is in another state.
pub async fn update_content(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    content: &MessageContent,
) -> RepoResult<bool> {
    let stored = StoredContent::of(content)?;
    let done = sqlx::query(
        "UPDATE messages SET subject = $3, body = $4, from_name = $5, priority = $6, answer_required = $7, answer_deadline = $8, \
         survey = $9, targets = $10, channels = $11, copy_to_sender = $12, updated_at = $13, remind_after_minutes = $14 \
         WHERE org_id = $1 AND id = $2 AND status IN ('draft', 'scheduled')",
    )
    .bind(org_id)
    .bind(id)
    .bind(&stored.content.subject)
    .bind(&stored.content.body)
    .bind(&stored.content.from_name)
    .bind(content.priority.as_str())
    .bind(content.answer_required as i64)
    .bind(content.answer_deadline.map(|d| d.timestamp_millis()))
    .bind(&stored.survey)
    .bind(&stored.targets)
    .bind(&stored.channels)
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
    pub status: Option<MessageStatus>,
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
) -> RepoResult<Vec<Message>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM messages WHERE org_id = "));
    sql.bind(org_id);
    if let Some(before) = before {
        sql.push(" AND id < ").bind(before);
    }
    if let Some(status) = filter.status {
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
    let rows: Vec<MessageRow> = sql.query_as(conn).fetch_all(conn).await?;
    rows.into_iter().map(Message::try_from).collect()
}

/// Appends ` FROM members m WHERE …`: the members a message's targets select, active
/// members of the organisation.
pub(super) fn select_targeted(sql: &mut Sql, org_id: &str, targets: &Targets) {
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

/// What a send would reach now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub guardians: i64,
    /// Their addresses that receive (not disabled, not unconfirmed).
    pub addresses: i64,
    pub devices: i64,
}

pub async fn preview(conn: &mut AnyConnection, org_id: &str, targets: &Targets) -> RepoResult<Reach> {
    let mut members = Sql::new("SELECT COUNT(*)");
    select_targeted(&mut members, org_id, targets);
    let guardians: i64 = members.query_scalar(conn).fetch_one(&mut *conn).await?;
    let mut emails = Sql::new(
        "SELECT COUNT(*) FROM member_emails e WHERE e.status IN ('active', 'bounced') AND e.member_id IN (SELECT m.id",
    );
    select_targeted(&mut emails, org_id, targets);
    emails.push(")");
    let addresses: i64 = emails.query_scalar(conn).fetch_one(&mut *conn).await?;
    let mut devices = Sql::new("SELECT COUNT(*) FROM member_devices d WHERE d.member_id IN (SELECT m.id");
    select_targeted(&mut devices, org_id, targets);
    devices.push(")");
    let devices: i64 = devices.query_scalar(conn).fetch_one(&mut *conn).await?;
    Ok(Reach { guardians, addresses, devices })
}

/// Moves the organisation's message to `to` when it is in one of `from`; false otherwise.
/// `send_at` is kept for `Scheduled`; `Sending` records when sending started.
pub async fn transition(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    from: &[MessageStatus],
    to: MessageStatus,
    send_at: Option<DateTime<Utc>>,
) -> RepoResult<bool> {
    let now = now_ms();
    let mut sql = Sql::new("UPDATE messages SET status = ");
    sql.bind(to.as_str()).push(", updated_at = ").bind(now);
    match to {
        MessageStatus::Scheduled => {
            sql.push(", send_at = ").bind(send_at.map(|t| t.timestamp_millis()));
        }
        MessageStatus::Sending => {
            sql.push(", sent_at = ").bind(now).push(", send_at = NULL");
        }
        _ => {}
    }
    sql.push(" WHERE org_id = ")
        .bind(org_id)
        .push(" AND id = ")
        .bind(id)
        .push(" AND status IN (")
        .bind_list(from.iter().map(|s| s.as_str()))
        .push(")");
    Ok(sql.query(conn).execute(conn).await?.rows_affected() == 1)
}

/// Records how many guardians a send reached.
pub async fn set_recipient_count(conn: &mut AnyConnection, id: &str, count: i64, now: i64) -> RepoResult<()> {
    sqlx::query("UPDATE messages SET recipient_count = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(count)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A sent message whose jobs were queued again (resend, reminder) is sending again.
pub async fn reopen(conn: &mut AnyConnection, id: &str, now: i64) -> RepoResult<()> {
    sqlx::query(
        "UPDATE messages SET status = 'sending', completed_at = NULL, updated_at = $2 WHERE id = $1 AND status IN ('sending', 'sent')",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Messages among `ids` that are sending and have no job left waiting become `sent`;
/// returns those.
pub async fn complete_finished(conn: &mut AnyConnection, ids: &[String], now: i64) -> RepoResult<Vec<String>> {
    let mut completed = Vec::new();
    for id in ids {
        // Workers recording a message's last jobs at the same time take turns here, so the
        // last of them, whose next statement sees the others' commits, completes it.
        let mut lock = Sql::new("SELECT id FROM messages WHERE status = 'sending' AND id = ");
        lock.bind(id.as_str()).push(&row_lock(conn, RowLock::Update, "messages"));
        if lock.query(conn).fetch_optional(&mut *conn).await?.is_none() {
            continue;
        }
        if super::tallies::pending(conn, id).await? > 0 {
            continue;
        }
        sqlx::query("UPDATE messages SET status = 'sent', completed_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        completed.push(id.clone());
    }
    Ok(completed)
}

/// The scheduled message that is due first, moved to `sending` inside the caller's
/// transaction (locked against other instances on PostgreSQL); returns its id.
pub async fn take_due_scheduled(conn: &mut AnyConnection, now: i64) -> RepoResult<Option<String>> {
    let lock = row_lock(conn, RowLock::UpdateSkipLocked, "messages");
    let due: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM messages WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at LIMIT 1{lock}"
    )))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = &due {
        sqlx::query("UPDATE messages SET status = 'sending', sent_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
    }
    Ok(due)
}

/// Answer-required messages whose reminder is due at `now`: their ids.
pub async fn due_reminders(conn: &mut AnyConnection, now: i64) -> RepoResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM messages WHERE remind_after_minutes IS NOT NULL AND reminded_at IS NULL \
         AND status IN ('sending', 'sent') AND sent_at + remind_after_minutes * 60000 <= $1",
    )
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Marks the reminder as sent; false when another instance did it first.
pub async fn claim_reminder(conn: &mut AnyConnection, id: &str, now: i64) -> RepoResult<bool> {
    let done = sqlx::query("UPDATE messages SET reminded_at = $2 WHERE id = $1 AND reminded_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

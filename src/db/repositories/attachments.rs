//! Files attached to a message. The bytes live in the row itself (BLOB / BYTEA): a message
//! carries at most 1 MiB of them, and the delivery workers read them back with the message.

use sqlx::AnyConnection;

use crate::db::{RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentContent {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A checked upload: sanitised name, sniffed type, the bytes.
pub struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content: &'a [u8],
}

/// The attachments of a message, oldest first (ids are UUIDv7).
pub async fn attachments(conn: &mut AnyConnection, message_id: &str) -> RepoResult<Vec<AttachmentRow>> {
    Ok(sqlx::query_as(
        "SELECT id, filename, content_type, size, created_at FROM attachments WHERE message_id = $1 ORDER BY id",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?)
}

/// For the delivery workers: every attachment of a message with its bytes.
pub async fn attachments_with_content(
    conn: &mut AnyConnection,
    message_id: &str,
) -> RepoResult<Vec<AttachmentContent>> {
    Ok(sqlx::query_as("SELECT filename, content_type, content FROM attachments WHERE message_id = $1 ORDER BY id")
        .bind(message_id)
        .fetch_all(conn)
        .await?)
}

/// Inside the caller's transaction: takes the message's row lock when it is still a draft
/// or scheduled (false otherwise, or when it is not the organisation's). Uploads, deletions
/// and the send that would freeze the message then follow one another, so the count and
/// size limits hold however many requests arrive at once, on PostgreSQL as on SQLite.
pub async fn lock_editable(conn: &mut AnyConnection, org_id: &str, message_id: &str) -> RepoResult<bool> {
    let done = sqlx::query(
        "UPDATE messages SET updated_at = $3 WHERE org_id = $1 AND id = $2 AND status IN ('draft', 'scheduled')",
    )
    .bind(org_id)
    .bind(message_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// (number of files, total bytes) of a message.
pub async fn totals(conn: &mut AnyConnection, message_id: &str) -> RepoResult<(i64, i64)> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL, which the Any driver does not decode.
    Ok(sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(conn)
        .await?)
}

pub async fn insert(
    conn: &mut AnyConnection,
    org_id: &str,
    message_id: &str,
    new: &NewAttachment<'_>,
) -> RepoResult<AttachmentRow> {
    let row = AttachmentRow {
        id: new_id(),
        filename: new.filename.to_string(),
        content_type: new.content_type.to_string(),
        size: new.content.len() as i64,
        created_at: now_ms(),
    };
    sqlx::query(
        "INSERT INTO attachments (id, message_id, org_id, filename, content_type, size, content, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(message_id)
    .bind(org_id)
    .bind(&row.filename)
    .bind(&row.content_type)
    .bind(row.size)
    .bind(new.content.to_vec())
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(row)
}

/// One attachment with its bytes, within the organisation and the message.
pub async fn find_content(
    conn: &mut AnyConnection,
    org_id: &str,
    message_id: &str,
    id: &str,
) -> RepoResult<Option<AttachmentContent>> {
    Ok(sqlx::query_as(
        "SELECT filename, content_type, content FROM attachments WHERE org_id = $1 AND message_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(message_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Removes one attachment; false when the message has none with that id.
pub async fn delete(conn: &mut AnyConnection, org_id: &str, message_id: &str, id: &str) -> RepoResult<bool> {
    let done = sqlx::query("DELETE FROM attachments WHERE org_id = $1 AND message_id = $2 AND id = $3")
        .bind(org_id)
        .bind(message_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

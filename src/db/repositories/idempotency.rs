//! Stored first answers for `Idempotency-Key` (see `crate::idempotency`).

use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult, now_ms};

/// How long a key is remembered.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;
/// A claim still unanswered after this long was left by an instance that stopped mid-request;
/// a retry takes it over (no request runs this long: imports, the slowest, take seconds).
pub const ABANDONED_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, sqlx::FromRow)]
pub struct StoredAnswer {
    pub request_hash: String,
    /// None while the first request is still being handled.
    pub status: Option<i64>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Option<Vec<u8>>,
}

/// Claims the key for this request; `Some(earlier)` when it was claimed already (and is
/// not older than a day, nor an abandoned claim: those are taken over).
pub async fn claim(
    conn: &mut AnyConnection,
    credential_hash: &str,
    key: &str,
    request_hash: &str,
) -> RepoResult<Option<StoredAnswer>> {
    let now = now_ms();
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE credential_hash = $1 AND key = $2 \
         AND (created_at < $3 OR (status IS NULL AND created_at < $4))",
    )
    .bind(credential_hash)
    .bind(key)
    .bind(now - KEEP_MS)
    .bind(now - ABANDONED_MS)
    .execute(&mut *conn)
    .await?;
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (credential_hash, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (credential_hash, key) DO NOTHING",
    )
    .bind(credential_hash)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_as(
            "SELECT request_hash, status, content_type, location, body FROM idempotency_keys \
             WHERE credential_hash = $1 AND key = $2",
        )
        .bind(credential_hash)
        .bind(key)
        .fetch_one(conn)
        .await?,
    ))
}

/// Keeps the first answer for the retries to come, and forgets keys older than a day.
pub async fn complete(
    conn: &mut AnyConnection,
    credential_hash: &str,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    location: Option<&str>,
    body: &[u8],
) -> RepoResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, body = $6 \
         WHERE credential_hash = $1 AND key = $2",
    )
    .bind(credential_hash)
    .bind(key)
    .bind(status as i64)
    .bind(content_type)
    .bind(location)
    .bind(body.to_vec())
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(now_ms() - KEEP_MS).execute(conn).await?;
    Ok(())
}

/// Forgets the key: the request failed on our side, and a retry should run it again.
pub async fn release(conn: &mut AnyConnection, credential_hash: &str, key: &str) -> RepoResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE credential_hash = $1 AND key = $2 AND status IS NULL")
        .bind(credential_hash)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

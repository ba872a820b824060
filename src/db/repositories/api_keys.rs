use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub single_use: i64,
    pub expires_at: Option<i64>,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, org_id, name, prefix, scopes, single_use, expires_at, consumed_at, revoked_at, last_used_at, created_by, created_at";

pub struct NewApiKey<'a> {
    pub org_id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a str,
    pub single_use: bool,
    pub expires_at: Option<i64>,
    pub created_by: Option<&'a str>,
}

pub async fn create(conn: &mut AnyConnection, key: NewApiKey<'_>) -> RepoResult<ApiKeyRow> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, single_use, expires_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(key.org_id)
    .bind(key.name)
    .bind(key.prefix)
    .bind(key.key_hash)
    .bind(key.scopes)
    .bind(key.single_use as i64)
    .bind(key.expires_at)
    .bind(key.created_by)
    .bind(now_ms())
    .execute(&mut *conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    find(conn, key.org_id, &id).await?.ok_or(RepoError::NotFound)
}

pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<ApiKeyRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 AND id = $2")))
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The key a request presents, if it is still usable at `now`.
pub async fn find_usable(conn: &mut AnyConnection, key_hash: &str, now: i64) -> RepoResult<Option<ApiKeyRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND consumed_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)"
    )))
    .bind(key_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(
    conn: &mut AnyConnection,
    org_id: &str,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<ApiKeyRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(org_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records use at most once a minute per key, so a busy integration does not turn every
/// read into a write.
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> RepoResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends a single-use key; false when it was spent already (by a concurrent request).
pub async fn consume(conn: &mut AnyConnection, id: &str) -> RepoResult<bool> {
    let done = sqlx::query("UPDATE api_keys SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL")
        .bind(id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<()> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult};

/// Returns the stored value, storing `candidate` first if there was none. Instances that
/// start together race here; `ON CONFLICT DO NOTHING` lets exactly one value win.
pub async fn get_or_insert(conn: &mut AnyConnection, key: &str, candidate: &str) -> RepoResult<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(candidate)
        .execute(&mut *conn)
        .await
        .map_err(RepoError::from_sqlx)?;
    let value: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(&mut *conn).await?;
    Ok(value)
}

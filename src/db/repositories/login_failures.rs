//! A sliding window of failed sign-ins per key, shared by all instances.

use sqlx::AnyConnection;

use crate::db::RepoResult;

/// How many failures each key has in the window since `since`, and the oldest of them
/// (from which the wait until the window frees a slot follows).
pub async fn window(conn: &mut AnyConnection, key: &str, since: i64) -> RepoResult<(i64, Option<i64>)> {
    Ok(sqlx::query_as("SELECT COUNT(*), MIN(at) FROM login_failures WHERE key = $1 AND at > $2")
        .bind(key)
        .bind(since)
        .fetch_one(conn)
        .await?)
}

pub async fn record(conn: &mut AnyConnection, key: &str, at: i64, forget_before: i64) -> RepoResult<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1 AND at <= $2")
        .bind(key)
        .bind(forget_before)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)").bind(key).bind(at).execute(conn).await?;
    Ok(())
}

pub async fn clear(conn: &mut AnyConnection, key: &str) -> RepoResult<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(conn).await?;
    Ok(())
}

//! The counters of `crate::throttle`, one row per key, shared by all instances.

use sqlx::AnyConnection;

use crate::db::RepoResult;

/// A key's counter: attempts since `window_start`, and the time before which the next
/// attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Counter {
    pub attempts: i64,
    pub window_start: i64,
    pub blocked_until: i64,
}

pub async fn find(conn: &mut AnyConnection, key: &str) -> RepoResult<Option<Counter>> {
    Ok(sqlx::query_as("SELECT attempts, window_start, blocked_until FROM throttles WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

/// Writes `new` if the key has no counter yet (`seen` None) or still has `seen`: a
/// compare-and-set, so two instances counting the same key at once cannot both take the
/// last free attempt. False when another request changed the counter first.
pub async fn replace(conn: &mut AnyConnection, key: &str, seen: Option<Counter>, new: Counter) -> RepoResult<bool> {
    let done = match seen {
        None => {
            sqlx::query(
                "INSERT INTO throttles (key, attempts, window_start, blocked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(new.attempts)
            .bind(new.window_start)
            .bind(new.blocked_until)
            .execute(conn)
            .await?
        }
        Some(seen) => {
            sqlx::query(
                "UPDATE throttles SET attempts = $2, window_start = $3, blocked_until = $4 \
             WHERE key = $1 AND attempts = $5 AND window_start = $6 AND blocked_until = $7",
            )
            .bind(key)
            .bind(new.attempts)
            .bind(new.window_start)
            .bind(new.blocked_until)
            .bind(seen.attempts)
            .bind(seen.window_start)
            .bind(seen.blocked_until)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Takes one attempt back; the delay it set (`set`) gives way to the one before (`before`).
pub async fn refund(conn: &mut AnyConnection, key: &str, set: i64, before: i64) -> RepoResult<()> {
    sqlx::query(
        "UPDATE throttles SET attempts = attempts - 1, \
         blocked_until = CASE WHEN blocked_until = $2 THEN $3 ELSE blocked_until END \
         WHERE key = $1 AND attempts > 0",
    )
    .bind(key)
    .bind(set)
    .bind(before)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, key: &str) -> RepoResult<()> {
    sqlx::query("DELETE FROM throttles WHERE key = $1").bind(key).execute(conn).await?;
    Ok(())
}

/// Forgets counters whose window started before `window_before` and that hold no delay.
pub async fn prune(conn: &mut AnyConnection, window_before: i64, now: i64) -> RepoResult<()> {
    sqlx::query("DELETE FROM throttles WHERE window_start < $1 AND blocked_until <= $2")
        .bind(window_before)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

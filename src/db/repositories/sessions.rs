//! Sign-in sessions and their rotating refresh tokens.

use sqlx::AnyConnection;

use crate::db::{RepoResult, new_id, now_ms};

pub async fn create(conn: &mut AnyConnection, user_id: &str, expires_at: i64) -> RepoResult<String> {
    let id = new_id();
    sqlx::query("INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(user_id)
        .bind(now_ms())
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(id)
}

pub async fn add_refresh_token(conn: &mut AnyConnection, session_id: &str, token_hash: &str) -> RepoResult<()> {
    sqlx::query("INSERT INTO refresh_tokens (id, session_id, token_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(new_id())
        .bind(session_id)
        .bind(token_hash)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: String,
    pub session_id: String,
    pub used_at: Option<i64>,
    pub user_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn find_refresh_token(conn: &mut AnyConnection, token_hash: &str) -> RepoResult<Option<RefreshTokenRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.session_id, r.used_at, s.user_id, s.expires_at, s.revoked_at \
         FROM refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Marks a refresh token used; false when another request used it first.
pub async fn use_refresh_token(conn: &mut AnyConnection, id: &str) -> RepoResult<bool> {
    let done = sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke(conn: &mut AnyConnection, session_id: &str) -> RepoResult<()> {
    sqlx::query("UPDATE auth_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every live session of the user but `except` (the one changing the password):
/// their access tokens fail on the next request, their refresh tokens are refused.
pub async fn revoke_all_of(conn: &mut AnyConnection, user_id: &str, except: Option<&str>) -> RepoResult<u64> {
    let done =
        sqlx::query("UPDATE auth_sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(except.unwrap_or(""))
            .bind(now_ms())
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// The user behind a live session: the current role and permissions, not the ones in the
/// token, so a demotion or deletion takes effect on the next request.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionPrincipal {
    pub user_id: String,
    pub org_id: String,
    pub role: String,
    pub permissions: String,
}

pub async fn principal(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
) -> RepoResult<Option<SessionPrincipal>> {
    Ok(sqlx::query_as(
        "SELECT u.id AS user_id, u.org_id, u.role, u.permissions FROM auth_sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now_ms())
    .fetch_optional(conn)
    .await?)
}

//! Invitations, guardian-app sessions and address confirmations.

use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult, new_id, now_ms};

pub async fn create_invitation(
    conn: &mut AnyConnection,
    org_id: &str,
    member_id: &str,
    code_hash: &str,
    expires_at: i64,
    created_by: Option<&str>,
) -> RepoResult<()> {
    sqlx::query(
        "INSERT INTO invitations (id, org_id, member_id, code_hash, expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(org_id)
    .bind(member_id)
    .bind(code_hash)
    .bind(expires_at)
    .bind(created_by)
    .bind(now_ms())
    .execute(conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    Ok(())
}

/// Voids the member's invitations not yet redeemed: only the newest code opens the app.
pub async fn void_unused_invitations(conn: &mut AnyConnection, member_id: &str) -> RepoResult<()> {
    sqlx::query("DELETE FROM invitations WHERE member_id = $1 AND used_at IS NULL")
        .bind(member_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends an unexpired, unused invitation; returns (org id, member id). Only the first of
/// two concurrent redemptions gets it.
pub async fn redeem_invitation(conn: &mut AnyConnection, code_hash: &str) -> RepoResult<Option<(String, String)>> {
    let now = now_ms();
    let found: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, org_id, member_id FROM invitations WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(code_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, org_id, member_id)) = found else { return Ok(None) };
    let spent = sqlx::query("UPDATE invitations SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(&id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok((spent.rows_affected() == 1).then_some((org_id, member_id)))
}

pub async fn create_session(
    conn: &mut AnyConnection,
    org_id: &str,
    member_id: &str,
    expires_at: i64,
) -> RepoResult<String> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO guardian_sessions (id, org_id, member_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(member_id)
    .bind(now_ms())
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Whether the session is live and belongs to this member of this organisation.
pub async fn session_is_live(
    conn: &mut AnyConnection,
    session_id: &str,
    member_id: &str,
    org_id: &str,
) -> RepoResult<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM guardian_sessions WHERE id = $1 AND member_id = $2 AND org_id = $3 AND revoked_at IS NULL AND expires_at > $4",
    )
    .bind(session_id)
    .bind(member_id)
    .bind(org_id)
    .bind(now_ms())
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

pub async fn revoke_session(conn: &mut AnyConnection, session_id: &str) -> RepoResult<()> {
    sqlx::query("UPDATE guardian_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every open app session of the member; returns how many there were.
pub async fn end_sessions(conn: &mut AnyConnection, member_id: &str) -> RepoResult<u64> {
    let done = sqlx::query("UPDATE guardian_sessions SET revoked_at = $2 WHERE member_id = $1 AND revoked_at IS NULL")
        .bind(member_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn create_confirmation(
    conn: &mut AnyConnection,
    org_id: &str,
    member_id: &str,
    address_key: &str,
    token_hash: &str,
    expires_at: i64,
) -> RepoResult<()> {
    sqlx::query(
        "INSERT INTO email_confirmations (token_hash, org_id, member_id, address_key, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(org_id)
    .bind(member_id)
    .bind(address_key)
    .bind(expires_at)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the token would confirm an address now: unexpired, and its address still
/// unconfirmed on that member. Reads only (the link's page shows a button for it).
pub async fn confirmation_is_pending(conn: &mut AnyConnection, token_hash: &str) -> RepoResult<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT c.member_id FROM email_confirmations c JOIN member_emails e \
         ON e.member_id = c.member_id AND e.address_key = c.address_key \
         WHERE c.token_hash = $1 AND c.expires_at > $2 AND e.status = 'unconfirmed'",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Confirms the address the token was sent to, if it is still unconfirmed on that member.
/// Returns false for unknown or expired tokens and for addresses removed meanwhile.
pub async fn confirm_email(conn: &mut AnyConnection, token_hash: &str) -> RepoResult<bool> {
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT member_id, address_key FROM email_confirmations WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((member_id, address_key)) = found else { return Ok(false) };
    sqlx::query("DELETE FROM email_confirmations WHERE token_hash = $1").bind(token_hash).execute(&mut *conn).await?;
    let done = sqlx::query(
        "UPDATE member_emails SET status = 'active' WHERE member_id = $1 AND address_key = $2 AND status = 'unconfirmed'",
    )
    .bind(&member_id)
    .bind(&address_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! A guardian's app devices: registering (at most four each, a token moving with its phone)
//! and removing them. They are read with the guardian (`members::load`).

use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub member_id: String,
    pub platform: String,
    pub token: String,
    pub app_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub enum DeviceOutcome {
    Registered(DeviceRow),
    /// The member has four devices already.
    Full,
}

/// Registers a device. The same token again updates it; a token that another member of
/// the organisation had moves to this one (the phone changed hands). The member's row is
/// locked first, so concurrent registrations count one after the other and the limit holds.
pub async fn register_device(
    conn: &mut AnyConnection,
    org_id: &str,
    member_id: &str,
    platform: &str,
    token: &str,
    app_id: Option<&str>,
    max: usize,
) -> RepoResult<DeviceOutcome> {
    if !super::members::lock(conn, org_id, member_id).await? {
        return Err(RepoError::NotFound);
    }
    let now = now_ms();
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT id, member_id FROM member_devices WHERE org_id = $1 AND platform = $2 AND token = $3")
            .bind(org_id)
            .bind(platform)
            .bind(token)
            .fetch_optional(&mut *conn)
            .await?;
    let owned_here = existing.as_ref().is_some_and(|(_, owner)| owner == member_id);
    if !owned_here {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM member_devices WHERE member_id = $1")
            .bind(member_id)
            .fetch_one(&mut *conn)
            .await?;
        if count as usize >= max {
            return Ok(DeviceOutcome::Full);
        }
    }
    let id = match existing {
        Some((id, _)) => {
            sqlx::query("UPDATE member_devices SET member_id = $2, app_id = $3, updated_at = $4 WHERE id = $1")
                .bind(&id)
                .bind(member_id)
                .bind(app_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            id
        }
        None => {
            let id = new_id();
            sqlx::query(
                "INSERT INTO member_devices (id, member_id, org_id, platform, token, app_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(member_id)
            .bind(org_id)
            .bind(platform)
            .bind(token)
            .bind(app_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(RepoError::from_sqlx)?;
            id
        }
    };
    let row = sqlx::query_as(
        "SELECT id, member_id, platform, token, app_id, created_at, updated_at FROM member_devices WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(conn)
    .await?;
    Ok(DeviceOutcome::Registered(row))
}

pub async fn delete_device(conn: &mut AnyConnection, org_id: &str, member_id: &str, device_id: &str) -> RepoResult<()> {
    let done = sqlx::query("DELETE FROM member_devices WHERE org_id = $1 AND member_id = $2 AND id = $3")
        .bind(org_id)
        .bind(member_id)
        .bind(device_id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

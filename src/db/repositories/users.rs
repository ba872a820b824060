use sqlx::AnyConnection;

use crate::db::{RepoError, RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    /// JSON array of scope names.
    pub permissions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, org_id, email, name, role, permissions, created_at, updated_at";

pub struct NewUser<'a> {
    pub org_id: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub permissions: &'a str,
    pub password_hash: &'a str,
}

pub async fn create(conn: &mut AnyConnection, user: NewUser<'_>) -> RepoResult<UserRow> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, org_id, email, email_key, name, role, permissions, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(user.org_id)
    .bind(user.email)
    .bind(user.email_key)
    .bind(user.name)
    .bind(user.role)
    .bind(user.permissions)
    .bind(user.password_hash)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    find(conn, user.org_id, &id).await?.ok_or(RepoError::NotFound)
}

pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<UserRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE org_id = $1 AND id = $2")))
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

#[derive(Debug, sqlx::FromRow)]
pub struct LoginRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: String,
}

/// For sign-in: the accounts with this case-folded address (one per organisation at
/// most) and their password hashes, oldest first.
pub async fn find_for_login(conn: &mut AnyConnection, email_key: &str) -> RepoResult<Vec<LoginRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email_key = $1 ORDER BY id"
    )))
    .bind(email_key)
    .fetch_all(conn)
    .await?)
}

/// The user's password hash, to check the current password before it changes.
pub async fn password_hash(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT password_hash FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// One page in id (creation) order, after the cursor's id.
pub async fn list(conn: &mut AnyConnection, org_id: &str, after: Option<&str>, limit: i64) -> RepoResult<Vec<UserRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(org_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn count_admins(conn: &mut AnyConnection, org_id: &str) -> RepoResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'admin'")
        .bind(org_id)
        .fetch_one(conn)
        .await?)
}

pub struct UserChanges {
    pub name: Option<String>,
    pub role: Option<String>,
    pub permissions: Option<String>,
    pub password_hash: Option<String>,
}

pub async fn update(conn: &mut AnyConnection, org_id: &str, id: &str, changes: UserChanges) -> RepoResult<UserRow> {
    let done = sqlx::query(
        "UPDATE users SET name = COALESCE($3, name), role = COALESCE($4, role), \
         permissions = COALESCE($5, permissions), password_hash = COALESCE($6, password_hash), updated_at = $7 \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(changes.name)
    .bind(changes.role)
    .bind(changes.permissions)
    .bind(changes.password_hash)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    find(conn, org_id, id).await?.ok_or(RepoError::NotFound)
}

pub async fn delete(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<()> {
    let done =
        sqlx::query("DELETE FROM users WHERE org_id = $1 AND id = $2").bind(org_id).bind(id).execute(conn).await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

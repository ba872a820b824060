use sqlx::AnyConnection;

use crate::db::{RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

pub async fn create(conn: &mut AnyConnection, name: &str) -> RepoResult<OrganizationRow> {
    let row = OrganizationRow { id: new_id(), name: name.to_string(), created_at: now_ms() };
    sqlx::query("INSERT INTO organizations (id, name, updated_at, created_at) VALUES ($1, $2, $3, $3)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(row.created_at)
        .execute(conn)
        .await?;
    Ok(row)
}

pub async fn find(conn: &mut AnyConnection, id: &str) -> RepoResult<Option<OrganizationRow>> {
    Ok(sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn count(conn: &mut AnyConnection) -> RepoResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(conn).await?)
}

/// Takes the organisation's row lock for the rest of the transaction (a no-op write), so
/// rules that count over the organisation, such as "keep one admin", see every concurrent
/// change. SQLite has a single writer and is serialised already.
pub async fn lock(conn: &mut AnyConnection, id: &str) -> RepoResult<()> {
    sqlx::query("UPDATE organizations SET updated_at = $2 WHERE id = $1").bind(id).bind(now_ms()).execute(conn).await?;
    Ok(())
}

use sqlx::AnyConnection;

use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{RepoError, RepoResult, new_id, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub join_code: Option<String>,
    pub member_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT l.id, l.name, l.description, l.join_code, \
     (SELECT COUNT(*) FROM list_members lm WHERE lm.list_id = l.id) AS member_count, l.created_at, l.updated_at \
     FROM lists l";

pub async fn create(
    conn: &mut AnyConnection,
    org_id: &str,
    name: &str,
    description: Option<&str>,
) -> RepoResult<ListRow> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO lists (id, org_id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(name)
    .bind(description)
    .bind(now_ms())
    .execute(&mut *conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    find(conn, org_id, &id).await?.ok_or(RepoError::NotFound)
}

pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<ListRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE l.org_id = $1 AND l.id = $2")))
        .bind(org_id)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn list(
    conn: &mut AnyConnection,
    org_id: &str,
    q: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<ListRow>> {
    let mut sql = Sql::new(SELECT);
    sql.push(" WHERE l.org_id = ").bind(org_id).push(" AND l.id > ").bind(after.unwrap_or(""));
    if let Some(q) = q {
        sql.push(" AND LOWER(l.name) LIKE ").bind(super::like_pattern(q)).push(" ESCAPE '\\'");
    }
    sql.push(" ORDER BY l.id LIMIT ").bind(limit);
    Ok(sql.query_as(conn).fetch_all(conn).await?)
}

pub async fn update(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> RepoResult<ListRow> {
    let done = sqlx::query(
        "UPDATE lists SET name = COALESCE($3, name), description = CASE WHEN $4 = 1 THEN $5 ELSE description END, updated_at = $6 \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(name)
    .bind(description.is_some() as i64)
    .bind(description.flatten())
    .bind(now_ms())
    .execute(&mut *conn)
    .await
    .map_err(RepoError::from_sqlx)?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    find(conn, org_id, id).await?.ok_or(RepoError::NotFound)
}

/// Deletes the list and its memberships; the members themselves stay. The list row goes
/// first, so a transaction adding members to it (which locks it) has finished before its
/// memberships are deleted.
pub async fn delete(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<()> {
    let done = sqlx::query("DELETE FROM lists WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    // No foreign key cascades this on PostgreSQL (migrations/postgres/0007).
    sqlx::query("DELETE FROM list_members WHERE list_id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// The ids among `ids` that are lists of the organisation, locked against deletion until
/// the caller's transaction ends (members are about to be added to them).
pub async fn existing(conn: &mut AnyConnection, org_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut sql = Sql::new("SELECT id FROM lists WHERE org_id = ");
    sql.bind(org_id).push(" AND id IN (").bind_list(ids).push(")").push(&row_lock(conn, RowLock::KeyShare, "lists"));
    Ok(sql.query_scalar(conn).fetch_all(conn).await?)
}

/// (name, id) of every list of the organisation, locked as [`existing`] locks them: an
/// import adds members to lists by name.
pub async fn names(conn: &mut AnyConnection, org_id: &str) -> RepoResult<Vec<(String, String)>> {
    let mut sql = Sql::new("SELECT name, id FROM lists WHERE org_id = ");
    sql.bind(org_id).push(&row_lock(conn, RowLock::KeyShare, "lists"));
    Ok(sql.query_as(conn).fetch_all(conn).await?)
}

pub async fn set_join_code(conn: &mut AnyConnection, org_id: &str, id: &str, code: Option<&str>) -> RepoResult<()> {
    let done = sqlx::query("UPDATE lists SET join_code = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(code)
        .bind(now_ms())
        .execute(conn)
        .await
        .map_err(RepoError::from_sqlx)?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

/// Adds members to a list; members already in it are left as they are.
pub async fn add_members(
    conn: &mut AnyConnection,
    org_id: &str,
    list_id: &str,
    member_ids: &[String],
) -> RepoResult<u64> {
    let pairs: Vec<(&str, &str)> = member_ids.iter().map(|m| (list_id, m.as_str())).collect();
    add_memberships(conn, org_id, &pairs).await
}

/// Adds (list id, member id) memberships; existing ones are left as they are.
pub async fn add_memberships(conn: &mut AnyConnection, org_id: &str, pairs: &[(&str, &str)]) -> RepoResult<u64> {
    let mut added = 0;
    let now = now_ms();
    for chunk in pairs.chunks(500) {
        let mut sql = Sql::new("INSERT INTO list_members (list_id, member_id, org_id, added_at) VALUES ");
        for (i, (list_id, member_id)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(*list_id).push(", ").bind(*member_id).push(", ").bind(org_id).push(", ").bind(now).push(")");
        }
        sql.push(" ON CONFLICT (list_id, member_id) DO NOTHING");
        added += sql.query(conn).execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

pub async fn remove_members(conn: &mut AnyConnection, list_id: &str, member_ids: &[String]) -> RepoResult<u64> {
    let mut removed = 0;
    for chunk in member_ids.chunks(500) {
        let mut sql = Sql::new("DELETE FROM list_members WHERE list_id = ");
        sql.bind(list_id).push(" AND member_id IN (").bind_list(chunk).push(")");
        removed += sql.query(conn).execute(&mut *conn).await?.rows_affected();
    }
    Ok(removed)
}

/// The members among `member_ids` that are in the list.
pub async fn members_in(conn: &mut AnyConnection, list_id: &str, member_ids: &[String]) -> RepoResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in member_ids.chunks(500) {
        let mut sql = Sql::new("SELECT member_id FROM list_members WHERE list_id = ");
        sql.bind(list_id).push(" AND member_id IN (").bind_list(chunk).push(")");
        found.extend(sql.query_scalar::<String>(conn).fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// (organisation id, list id) of the list with this join code.
/// Locked as [`existing`] locks: the guardian who registers with the code joins the list.
pub async fn find_by_join_code(conn: &mut AnyConnection, join_code: &str) -> RepoResult<Option<(String, String)>> {
    let mut sql = Sql::new("SELECT org_id, id FROM lists WHERE join_code = ");
    sql.bind(join_code).push(&row_lock(conn, RowLock::KeyShare, "lists"));
    Ok(sql.query_as(conn).fetch_optional(conn).await?)
}

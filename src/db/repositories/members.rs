//! Guardians with their addresses, attributes and list memberships (their devices:
//! `devices.rs`).

use std::collections::{BTreeMap, HashMap};

use sqlx::AnyConnection;

use super::devices::DeviceRow;
use crate::db::sql::{RowLock, Sql, row_lock};
use crate::db::{RepoError, RepoResult, new_id, now_ms};
use crate::domain::EmailAddress;
use crate::domain::member::{EmailStatus, MemberProfile, MemberStatus};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    pub external_id: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "m.id, m.name, m.name_kana, m.student_name, m.relation, m.locale, m.external_id, m.status, m.created_at, m.updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRow {
    pub member_id: String,
    pub address: String,
    pub status: String,
    pub bounce_count: i64,
}

/// A member with everything that hangs off it.
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub row: MemberRow,
    pub emails: Vec<EmailRow>,
    pub devices: Vec<DeviceRow>,
    pub attributes: BTreeMap<String, String>,
    pub list_ids: Vec<String>,
}

impl MemberRecord {
    /// The profile as stored, to compare with an incoming one (import: "unchanged").
    pub fn profile(&self) -> MemberProfile {
        MemberProfile {
            name: self.row.name.clone(),
            name_kana: self.row.name_kana.clone(),
            student_name: self.row.student_name.clone(),
            relation: self.row.relation.clone(),
            locale: self.row.locale.clone(),
            external_id: self.row.external_id.clone(),
            emails: self.emails.iter().filter_map(|e| crate::domain::EmailAddress::parse(&e.address).ok()).collect(),
            attributes: self.attributes.clone(),
        }
    }
}

/// A member to write: its id (new or existing) and its complete profile.
pub struct MemberWrite<'a> {
    pub id: &'a str,
    pub profile: &'a MemberProfile,
    /// The stored profile when the caller has it: addresses and attributes that did not
    /// change are then left as they are instead of being rewritten.
    pub before: Option<&'a MemberProfile>,
}

impl MemberWrite<'_> {
    fn emails_changed(&self) -> bool {
        self.before.is_none_or(|before| before.emails != self.profile.emails)
    }

    fn attributes_changed(&self) -> bool {
        self.before.is_none_or(|before| before.attributes != self.profile.attributes)
    }
}

/// Members per multi-row statement: far below SQLite's and PostgreSQL's bind limits, and
/// large enough that an import spends its time in the database, not in round trips.
const CHUNK: usize = 250;
/// Addresses or attributes per insert. Rows are gathered across members so that every
/// statement but the last has this many: one prepared statement, parsed and planned once
/// per connection, instead of a new one for each chunk's count of addresses.
const ROWS: usize = 500;

pub async fn insert(
    conn: &mut AnyConnection,
    org_id: &str,
    profile: &MemberProfile,
    status: MemberStatus,
) -> RepoResult<String> {
    let id = new_id();
    insert_many(conn, org_id, &[MemberWrite { id: &id, profile, before: None }], status).await?;
    Ok(id)
}

/// Inserts members with their addresses (as `active`) and attributes, a chunk per statement.
pub async fn insert_many(
    conn: &mut AnyConnection,
    org_id: &str,
    members: &[MemberWrite<'_>],
    status: MemberStatus,
) -> RepoResult<()> {
    let now = now_ms();
    for chunk in members.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO members (id, org_id, name, name_kana, student_name, relation, locale, external_id, status, created_at, updated_at) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            let p = m.profile;
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(m.id)
                .push(", ")
                .bind(org_id)
                .push(", ")
                .bind(&p.name)
                .push(", ")
                .bind(p.name_kana.clone())
                .push(", ");
            sql.bind(p.student_name.clone())
                .push(", ")
                .bind(p.relation.clone())
                .push(", ")
                .bind(p.locale.clone())
                .push(", ");
            sql.bind(p.external_id.clone())
                .push(", ")
                .bind(status.as_str())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(")");
        }
        sql.query(conn).execute(&mut *conn).await.map_err(RepoError::from_sqlx)?;
    }
    let all: Vec<&MemberWrite> = members.iter().collect();
    write_emails(conn, org_id, &all, &HashMap::new(), EmailStatus::Active).await?;
    write_attributes(conn, org_id, &all).await
}

/// Overwrites one member's profile. Addresses that stay keep their status and bounce
/// count; new ones start as `new_email_status`.
pub async fn update_profile(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
    profile: &MemberProfile,
    new_email_status: EmailStatus,
) -> RepoResult<()> {
    if existing(conn, org_id, &[id.to_string()]).await?.is_empty() {
        return Err(RepoError::NotFound);
    }
    update_many(conn, org_id, &[MemberWrite { id, profile, before: None }], new_email_status).await
}

/// Overwrites the profiles of existing members of the organisation, a chunk per statement.
pub async fn update_many(
    conn: &mut AnyConnection,
    org_id: &str,
    members: &[MemberWrite<'_>],
    new_email_status: EmailStatus,
) -> RepoResult<()> {
    let now = now_ms();
    // Addresses are rewritten after every profile, so their inserts fill whole statements.
    let mut emails_changed: Vec<&MemberWrite> = Vec::new();
    let mut kept: HashMap<(String, String), (String, i64)> = HashMap::new();
    for chunk in members.chunks(CHUNK) {
        // UPDATE … FROM (VALUES …): one statement for the chunk on both engines, which both
        // name the columns of an unaliased VALUES list column1, column2, ….
        let mut sql = Sql::new(
            "UPDATE members SET name = v.column2, name_kana = v.column3, student_name = v.column4, \
             relation = v.column5, locale = v.column6, external_id = v.column7, updated_at = ",
        );
        sql.bind(now).push(" FROM (VALUES ");
        for (i, m) in chunk.iter().enumerate() {
            let p = m.profile;
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(m.id)
                .push(", ")
                .bind(&p.name)
                .push(", ")
                .bind(p.name_kana.clone())
                .push(", ")
                .bind(p.student_name.clone())
                .push(", ");
            sql.bind(p.relation.clone())
                .push(", ")
                .bind(p.locale.clone())
                .push(", ")
                .bind(p.external_id.clone())
                .push(")");
        }
        // `org_id || ''` keeps the tenancy check out of the query plan: without statistics,
        // SQLite otherwise starts from the organisation's index and scans every member of
        // it for each row (1.2 s per chunk of 250 in a 50,000-member roster; 3 ms this way).
        sql.push(") AS v WHERE members.id = v.column1 AND members.org_id || '' = ").bind(org_id);
        let updated = sql.query(conn).execute(&mut *conn).await.map_err(RepoError::from_sqlx)?.rows_affected();
        if updated != chunk.len() as u64 {
            // Deleted since the caller read it: its new child rows would have no parent.
            return Err(RepoError::Conflict { field: None });
        }

        let changed: Vec<&MemberWrite> = chunk.iter().filter(|m| m.emails_changed()).collect();
        if !changed.is_empty() {
            let ids = changed.iter().map(|m| m.id);
            let mut before =
                Sql::new("SELECT member_id, address_key, status, bounce_count FROM member_emails WHERE member_id IN (");
            before.bind_list(ids.clone()).push(")");
            let rows = before.query_as::<(String, String, String, i64)>(conn).fetch_all(&mut *conn).await?;
            kept.extend(rows.into_iter().map(|(member, key, status, bounces)| ((member, key), (status, bounces))));
            let mut delete = Sql::new("DELETE FROM member_emails WHERE member_id IN (");
            delete.bind_list(ids).push(")");
            delete.query(conn).execute(&mut *conn).await?;
            emails_changed.extend(changed);
        }
    }
    write_emails(conn, org_id, &emails_changed, &kept, new_email_status).await?;
    update_attributes(conn, org_id, members).await
}

/// Brings the attributes of updated members up to date: where the stored profile is known,
/// only the keys that changed (a promotion changes `grade` and `class` of every guardian,
/// not their other attributes); otherwise all of them are rewritten.
async fn update_attributes(conn: &mut AnyConnection, org_id: &str, members: &[MemberWrite<'_>]) -> RepoResult<()> {
    let mut rewritten: Vec<&MemberWrite> = Vec::new();
    let mut removed: Vec<(&str, &str)> = Vec::new();
    let mut changed: Vec<(&str, &str, &str)> = Vec::new();
    for m in members.iter().filter(|m| m.attributes_changed()) {
        let Some(before) = m.before else {
            rewritten.push(m);
            continue;
        };
        let now = &m.profile.attributes;
        removed.extend(before.attributes.keys().filter(|k| !now.contains_key(*k)).map(|k| (m.id, k.as_str())));
        changed.extend(
            now.iter()
                .filter(|(k, v)| before.attributes.get(*k) != Some(*v))
                .map(|(k, v)| (m.id, k.as_str(), v.as_str())),
        );
    }
    if !rewritten.is_empty() {
        let mut delete = Sql::new("DELETE FROM member_attributes WHERE member_id IN (");
        delete.bind_list(rewritten.iter().map(|m| m.id)).push(")");
        delete.query(conn).execute(&mut *conn).await?;
        write_attributes(conn, org_id, &rewritten).await?;
    }
    for chunk in removed.chunks(ROWS) {
        let mut delete = Sql::new("DELETE FROM member_attributes WHERE (member_id, key) IN (VALUES ");
        for (i, (member_id, key)) in chunk.iter().enumerate() {
            delete.push(if i == 0 { "(" } else { ", (" }).bind(*member_id).push(", ").bind(*key).push(")");
        }
        delete.push(")");
        delete.query(conn).execute(&mut *conn).await?;
    }
    for chunk in changed.chunks(ROWS) {
        let mut upsert = Sql::new("INSERT INTO member_attributes (member_id, org_id, key, value) VALUES ");
        for (i, (member_id, key, value)) in chunk.iter().enumerate() {
            upsert.push(if i == 0 { "(" } else { ", (" });
            upsert.bind(*member_id).push(", ").bind(org_id).push(", ").bind(*key).push(", ").bind(*value).push(")");
        }
        upsert.push(" ON CONFLICT (member_id, key) DO UPDATE SET value = excluded.value");
        upsert.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts the addresses of freshly written members (or of members whose addresses were
/// just cleared). `kept` holds the status and bounce count of addresses that existed
/// before, by (member id, address key).
async fn write_emails(
    conn: &mut AnyConnection,
    org_id: &str,
    members: &[&MemberWrite<'_>],
    kept: &HashMap<(String, String), (String, i64)>,
    new_status: EmailStatus,
) -> RepoResult<()> {
    let now = now_ms();
    let rows: Vec<(&str, usize, &EmailAddress)> =
        members.iter().flat_map(|m| m.profile.emails.iter().enumerate().map(|(i, email)| (m.id, i, email))).collect();
    for chunk in rows.chunks(ROWS) {
        let mut emails = Sql::new(
            "INSERT INTO member_emails (id, member_id, org_id, position, address, address_key, status, bounce_count, created_at) VALUES ",
        );
        for (n, (member_id, i, email)) in chunk.iter().enumerate() {
            let (status, bounces) = kept
                .get(&(member_id.to_string(), email.key()))
                .cloned()
                .unwrap_or((new_status.as_str().to_string(), 0));
            emails.push(if n == 0 { "(" } else { ", (" });
            emails
                .bind(new_id())
                .push(", ")
                .bind(*member_id)
                .push(", ")
                .bind(org_id)
                .push(", ")
                .bind(*i as i64 + 1)
                .push(", ");
            emails
                .bind(email.as_str())
                .push(", ")
                .bind(email.key())
                .push(", ")
                .bind(status)
                .push(", ")
                .bind(bounces)
                .push(", ")
                .bind(now)
                .push(")");
        }
        emails.query(conn).execute(&mut *conn).await.map_err(RepoError::from_sqlx)?;
    }
    Ok(())
}

/// Inserts the attributes of freshly written members (or of members whose attributes were
/// just cleared).
async fn write_attributes(conn: &mut AnyConnection, org_id: &str, members: &[&MemberWrite<'_>]) -> RepoResult<()> {
    let rows: Vec<(&str, &String, &String)> =
        members.iter().flat_map(|m| m.profile.attributes.iter().map(|(key, value)| (m.id, key, value))).collect();
    for chunk in rows.chunks(ROWS) {
        let mut attributes = Sql::new("INSERT INTO member_attributes (member_id, org_id, key, value) VALUES ");
        for (n, (member_id, key, value)) in chunk.iter().enumerate() {
            attributes.push(if n == 0 { "(" } else { ", (" });
            attributes.bind(*member_id).push(", ").bind(org_id).push(", ").bind(*key).push(", ").bind(*value).push(")");
        }
        attributes.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Makes the member's lists exactly `list_ids` (checked to belong to the organisation).
pub async fn set_lists(conn: &mut AnyConnection, org_id: &str, member_id: &str, list_ids: &[String]) -> RepoResult<()> {
    sqlx::query("DELETE FROM list_members WHERE member_id = $1").bind(member_id).execute(&mut *conn).await?;
    for list_id in list_ids {
        super::lists::add_members(conn, org_id, list_id, std::slice::from_ref(&member_id.to_string())).await?;
    }
    Ok(())
}

pub async fn set_status(conn: &mut AnyConnection, org_id: &str, id: &str, status: MemberStatus) -> RepoResult<()> {
    let done = sqlx::query("UPDATE members SET status = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(status.as_str())
        .bind(now_ms())
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    Ok(())
}

/// Deletes the member and everything of it: addresses, attributes, list memberships and
/// its place among messages' recipients (with its answers). The member row goes first, so
/// a transaction adding child rows to it (which locks it) has finished before the children
/// are deleted.
pub async fn delete(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<()> {
    let done = sqlx::query("DELETE FROM members WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RepoError::NotFound);
    }
    // No foreign keys cascade these on PostgreSQL (migrations/postgres/0007).
    for table in ["member_attributes", "member_emails", "list_members", "recipients"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE member_id = $1")))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Loads full records for `ids`, in the order given; unknown ids are skipped.
pub async fn load(conn: &mut AnyConnection, org_id: &str, ids: &[String]) -> RepoResult<Vec<MemberRecord>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut by_id = load_where(conn, org_id, ids).await?;
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The records of `ids`, by id.
async fn load_where(
    conn: &mut AnyConnection,
    org_id: &str,
    ids: &[String],
) -> RepoResult<HashMap<String, MemberRecord>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM members m WHERE m.org_id = "));
    sql.bind(org_id).push(" AND m.id IN (").bind_list(ids).push(")");
    let rows: Vec<MemberRow> = sql.query_as(conn).fetch_all(&mut *conn).await?;
    with_children(conn, rows, true).await
}

/// Guardians a roster import names, by id: those with one of `external_ids` and those of
/// `ids`, without their devices (an import does not touch them). Fewer, larger statements
/// than `load`, each small enough to be an index scan.
pub async fn load_for_import(
    conn: &mut AnyConnection,
    org_id: &str,
    external_ids: &[String],
    ids: &[String],
) -> RepoResult<HashMap<String, MemberRecord>> {
    let mut rows: Vec<MemberRow> = Vec::new();
    for (column, values) in [("external_id", external_ids), ("id", ids)] {
        for chunk in values.chunks(IMPORT_LOOKUP) {
            let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM members m WHERE m.org_id = "));
            sql.bind(org_id).push(&format!(" AND m.{column} IN (")).bind_list(chunk).push(")");
            rows.extend(sql.query_as::<MemberRow>(conn).fetch_all(&mut *conn).await?);
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    let mut records = HashMap::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<MemberRow> = rows.by_ref().take(IMPORT_LOOKUP).collect();
        records.extend(with_children(conn, chunk, false).await?);
    }
    Ok(records)
}

/// Values per lookup of `load_for_import`. PostgreSQL plans an `IN` list of 500 ids on a
/// roster of 50,000 as a sequential scan (20 ms); of 250, as index scans (under 1 ms).
const IMPORT_LOOKUP: usize = 250;

/// The records of `rows` with their addresses, attributes, lists and (if `devices`) devices.
async fn with_children(
    conn: &mut AnyConnection,
    rows: Vec<MemberRow>,
    devices: bool,
) -> RepoResult<HashMap<String, MemberRecord>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    // The child rows of these members: their ids are enough (tenancy is checked on members).
    let scope = |sql: &mut Sql| {
        sql.push(" WHERE member_id IN (").bind_list(ids.iter().copied()).push(")");
    };
    let mut sql = Sql::new("SELECT member_id, address, status, bounce_count FROM member_emails");
    scope(&mut sql);
    sql.push(" ORDER BY member_id, position");
    let emails: Vec<EmailRow> = sql.query_as(conn).fetch_all(&mut *conn).await?;

    let device_rows: Vec<DeviceRow> = if devices {
        let mut sql =
            Sql::new("SELECT id, member_id, platform, token, app_id, created_at, updated_at FROM member_devices");
        scope(&mut sql);
        sql.push(" ORDER BY member_id, created_at, id");
        sql.query_as(conn).fetch_all(&mut *conn).await?
    } else {
        vec![]
    };

    let mut sql = Sql::new("SELECT member_id, key, value FROM member_attributes");
    scope(&mut sql);
    let attributes: Vec<(String, String, String)> = sql.query_as(conn).fetch_all(&mut *conn).await?;

    let mut sql = Sql::new("SELECT member_id, list_id FROM list_members");
    scope(&mut sql);
    sql.push(" ORDER BY list_id");
    let memberships: Vec<(String, String)> = sql.query_as(conn).fetch_all(&mut *conn).await?;

    let mut by_id: HashMap<String, MemberRecord> = rows
        .into_iter()
        .map(|row| {
            (
                row.id.clone(),
                MemberRecord { row, emails: vec![], devices: vec![], attributes: BTreeMap::new(), list_ids: vec![] },
            )
        })
        .collect();
    for email in emails {
        if let Some(r) = by_id.get_mut(&email.member_id) {
            r.emails.push(email);
        }
    }
    for device in device_rows {
        if let Some(r) = by_id.get_mut(&device.member_id) {
            r.devices.push(device);
        }
    }
    for (member_id, key, value) in attributes {
        if let Some(r) = by_id.get_mut(&member_id) {
            r.attributes.insert(key, value);
        }
    }
    for (member_id, list_id) in memberships {
        if let Some(r) = by_id.get_mut(&member_id) {
            r.list_ids.push(list_id);
        }
    }
    Ok(by_id)
}

pub async fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<Option<MemberRecord>> {
    Ok(load(conn, org_id, std::slice::from_ref(&id.to_string())).await?.pop())
}

#[derive(Debug, Default)]
pub struct MemberFilter {
    /// Partial match, lower-cased already.
    pub q: Option<String>,
    /// Whether `q` may match addresses: only for callers allowed to see them, or a search
    /// would reveal addresses one character at a time.
    pub q_matches_emails: bool,
    pub list_id: Option<String>,
    pub status: Option<MemberStatus>,
    /// Every (key, value) must hold.
    pub attributes: Vec<(String, String)>,
}

/// One page of member ids in id order.
pub async fn search(
    conn: &mut AnyConnection,
    org_id: &str,
    filter: &MemberFilter,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<String>> {
    let mut sql = Sql::new("SELECT m.id FROM members m WHERE m.org_id = ");
    sql.bind(org_id).push(" AND m.id > ").bind(after.unwrap_or(""));
    if let Some(q) = &filter.q {
        let pattern = super::like_pattern(q);
        sql.push(" AND (LOWER(m.name) LIKE ").bind(&pattern).push(" ESCAPE '\\'");
        for column in ["m.name_kana", "m.student_name", "m.external_id"] {
            sql.push(&format!(" OR LOWER({column}) LIKE ")).bind(&pattern).push(" ESCAPE '\\'");
        }
        sql.push(" OR EXISTS (SELECT 1 FROM member_attributes a WHERE a.member_id = m.id AND LOWER(a.value) LIKE ")
            .bind(&pattern)
            .push(" ESCAPE '\\')");
        if filter.q_matches_emails {
            sql.push(" OR EXISTS (SELECT 1 FROM member_emails e WHERE e.member_id = m.id AND e.address_key LIKE ")
                .bind(&pattern)
                .push(" ESCAPE '\\')");
        }
        sql.push(")");
    }
    if let Some(list_id) = &filter.list_id {
        sql.push(" AND EXISTS (SELECT 1 FROM list_members lm WHERE lm.member_id = m.id AND lm.list_id = ")
            .bind(list_id)
            .push(")");
    }
    if let Some(status) = filter.status {
        sql.push(" AND m.status = ").bind(status.as_str());
    }
    for (key, value) in &filter.attributes {
        sql.push(" AND EXISTS (SELECT 1 FROM member_attributes a WHERE a.member_id = m.id AND a.key = ")
            .bind(key)
            .push(" AND a.value = ")
            .bind(value)
            .push(")");
    }
    sql.push(" ORDER BY m.id LIMIT ").bind(limit);
    Ok(sql.query_scalar(conn).fetch_all(conn).await?)
}

/// Locks the member's row until the caller's transaction ends, so that decisions about the
/// member (how many devices it has, which invitation and sessions are live) are taken one
/// transaction at a time: without it two PostgreSQL transactions under READ COMMITTED could
/// both count three devices and both add a fourth. False when there is no such member.
pub async fn lock(conn: &mut AnyConnection, org_id: &str, id: &str) -> RepoResult<bool> {
    let mut sql = Sql::new("SELECT id FROM members WHERE org_id = ");
    sql.bind(org_id).push(" AND id = ").bind(id).push(&row_lock(conn, RowLock::Update, "members"));
    Ok(sql.query_scalar::<String>(conn).fetch_optional(conn).await?.is_some())
}

/// The ids among `ids` that are members of the organisation, locked against deletion until
/// the caller's transaction ends (it may add child rows to them).
pub async fn existing(conn: &mut AnyConnection, org_id: &str, ids: &[String]) -> RepoResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new("SELECT id FROM members WHERE org_id = ");
        sql.bind(org_id).push(" AND id IN (").bind_list(chunk).push(")").push(&row_lock(
            conn,
            RowLock::KeyShare,
            "members",
        ));
        found.extend(sql.query_scalar::<String>(conn).fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Members of the organisation by external id, for the ids given.
pub async fn ids_by_external_id(
    conn: &mut AnyConnection,
    org_id: &str,
    external_ids: &[String],
) -> RepoResult<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(500) {
        let mut sql = Sql::new("SELECT external_id, id FROM members WHERE org_id = ");
        sql.bind(org_id).push(" AND external_id IN (").bind_list(chunk).push(")");
        found.extend(sql.query_as::<(String, String)>(conn).fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Members of the organisation that have one of these addresses (case-folded keys); where
/// several share an address, the oldest.
pub async fn ids_by_email_key(
    conn: &mut AnyConnection,
    org_id: &str,
    keys: &[String],
) -> RepoResult<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(500) {
        let mut sql = Sql::new("SELECT address_key, member_id FROM member_emails WHERE org_id = ");
        sql.bind(org_id).push(" AND address_key IN (").bind_list(chunk).push(") ORDER BY member_id DESC");
        found.extend(sql.query_as::<(String, String)>(conn).fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Every member of the organisation with an external id, by it: one scan, for an import too
/// large to look its rows up a few hundred at a time (and made before it writes: lookups
/// into a table that grew inside the transaction have no statistics to plan with).
pub async fn ids_by_every_external_id(conn: &mut AnyConnection, org_id: &str) -> RepoResult<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT external_id, id FROM members WHERE org_id = $1 AND external_id IS NOT NULL")
            .bind(org_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Every address key of the organisation with its member (the oldest where several share
/// it), as `ids_by_email_key` finds them, in one scan.
pub async fn ids_by_every_email_key(conn: &mut AnyConnection, org_id: &str) -> RepoResult<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT address_key, member_id FROM member_emails WHERE org_id = $1 ORDER BY member_id DESC")
            .bind(org_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn find_id_by_external_id(
    conn: &mut AnyConnection,
    org_id: &str,
    external_id: &str,
) -> RepoResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT id FROM members WHERE org_id = $1 AND external_id = $2")
        .bind(org_id)
        .bind(external_id)
        .fetch_optional(conn)
        .await?)
}

/// Grade promotion (進級): every member whose `key` is a key of `changes` gets the mapped
/// value (None removes the attribute), all at once, so 1→2 and 2→3 do not cascade.
/// Returns how many members each change matched.
pub async fn remap_attribute(
    conn: &mut AnyConnection,
    org_id: &str,
    key: &str,
    changes: &BTreeMap<String, Option<String>>,
    dry_run: bool,
) -> RepoResult<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    // Record who matches each old value before writing anything.
    let mut matched: Vec<(Vec<String>, Option<String>)> = Vec::new();
    for (from, to) in changes {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT member_id FROM member_attributes WHERE org_id = $1 AND key = $2 AND value = $3")
                .bind(org_id)
                .bind(key)
                .bind(from)
                .fetch_all(&mut *conn)
                .await?;
        counts.insert(from.clone(), ids.len() as i64);
        matched.push((ids, to.clone()));
    }
    if dry_run {
        return Ok(counts);
    }
    let now = now_ms();
    for (ids, to) in matched {
        for chunk in ids.chunks(500) {
            let mut sql = match &to {
                Some(value) => {
                    let mut sql = Sql::new("UPDATE member_attributes SET value = ");
                    sql.bind(value.as_str());
                    sql
                }
                None => Sql::new("DELETE FROM member_attributes"),
            };
            sql.push(" WHERE key = ").bind(key).push(" AND member_id IN (").bind_list(chunk).push(")");
            sql.query(conn).execute(&mut *conn).await?;
            let mut touch = Sql::new("UPDATE members SET updated_at = ");
            touch.bind(now).push(" WHERE id IN (").bind_list(chunk).push(")");
            touch.query(conn).execute(&mut *conn).await?;
        }
    }
    Ok(counts)
}

/// Refreshes the query planner's statistics of the roster tables after a bulk change
/// (`ANALYZE table` is the same statement on SQLite and PostgreSQL).
pub async fn analyze(conn: &mut AnyConnection) -> RepoResult<()> {
    for table in ["members", "member_emails", "member_attributes", "list_members"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}"))).execute(&mut *conn).await?;
    }
    Ok(())
}

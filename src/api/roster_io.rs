//! CSV import and export of the roster.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{QueryParams, read_body};
use crate::auth::Caller;
use crate::db::new_id;
use crate::db::repositories::lists;
use crate::db::repositories::members::{self, MemberFilter, MemberRecord, MemberWrite};
use crate::domain::member::{EmailStatus, MemberProfile, MemberStatus, RawProfile};
use crate::domain::roster_csv::{self, Column, EXPORT_COLUMNS, MAX_BYTES, Roster, Row, neutralise};
use crate::domain::{DomainError, EmailAddress, FieldError, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import_members).service(export_members);
}

/// Types a browser or client may send a .csv as (Windows with Excel installed says
/// `application/vnd.ms-excel`).
const CSV_TYPES: &[&str] =
    &["text/csv", "application/csv", "application/vnd.ms-excel", "text/plain", "application/octet-stream"];

/// From this many rows on, an import reads the organisation's whole roster instead of
/// looking up the guardians it names, and refreshes the planner's statistics afterwards.
const WHOLE_ROSTER_ROWS: usize = 2_000;

/// The raw CSV upload.
pub struct CsvUpload(pub Vec<u8>);

impl FromRequest for CsvUpload {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, CSV_TYPES, MAX_BYTES);
        Box::pin(async move { Ok(CsvUpload(body.await?.to_vec())) })
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Every imported guardian is also put in this list.
    pub list_id: Option<String>,
    /// Check and count only; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Import the valid rows even when others are invalid.
    #[serde(default)]
    pub partial: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Lists named in the `lists` column that did not exist, created by the import.
    pub lists_created: Vec<String>,
    /// One per invalid cell or row: `line` as a spreadsheet shows it (the header is line 1).
    pub errors: Vec<FieldError>,
    /// The encoding the file was read as (`UTF-8`, `Shift_JIS`).
    #[schema(example = "Shift_JIS")]
    pub encoding: String,
    pub dry_run: bool,
}

enum Plan<'a> {
    Create(MemberProfile),
    /// The stored record, the profile as stored, the profile to write.
    Update(&'a MemberRecord, MemberProfile, MemberProfile),
    Unchanged,
}

struct PlannedRow<'a> {
    line: u64,
    plan: Plan<'a>,
    lists: Vec<String>,
}

fn cell<'a>(roster: &Roster, row: &'a Row, column: &Column) -> Option<&'a str> {
    roster.columns.iter().position(|c| c == column).map(|i| row.cells[i].as_str())
}

/// The row's profile: columns in the file replace stored values (an empty cell clears);
/// columns the file does not have keep what is stored.
fn merged_profile(roster: &Roster, row: &Row, stored: Option<&MemberRecord>) -> Result<MemberProfile, DomainError> {
    let base = stored.map(MemberRecord::profile);
    let text = |column: Column, old: Option<&Option<String>>| -> Option<String> {
        match cell(roster, row, &column) {
            Some(value) => Some(value.to_string()),
            None => old.cloned().flatten(),
        }
    };
    let name = text(Column::Name, base.as_ref().map(|b| Some(b.name.clone())).as_ref());
    let name_kana = text(Column::NameKana, base.as_ref().map(|b| &b.name_kana));
    let student_name = text(Column::StudentName, base.as_ref().map(|b| &b.student_name));
    let relation = text(Column::Relation, base.as_ref().map(|b| &b.relation));
    let external_id = text(Column::ExternalId, base.as_ref().map(|b| &b.external_id));
    let has_email_columns = roster.columns.iter().any(|c| matches!(c, Column::Email(_)));
    let emails: Vec<(String, String)> = if has_email_columns {
        (0..4)
            .filter_map(|i| cell(roster, row, &Column::Email(i)).map(|v| (format!("email{}", i + 1), v.to_string())))
            .collect()
    } else {
        base.iter()
            .flat_map(|b| b.emails.iter())
            .enumerate()
            .map(|(i, e)| (format!("email{}", i + 1), e.as_str().to_string()))
            .collect()
    };
    let mut attributes: BTreeMap<String, String> = base.as_ref().map(|b| b.attributes.clone()).unwrap_or_default();
    for (i, column) in roster.columns.iter().enumerate() {
        if let Column::Attribute(key) = column {
            match row.cells[i].trim() {
                "" => attributes.remove(key),
                value => attributes.insert(key.clone(), value.to_string()),
            };
        }
    }
    RawProfile {
        name: name.as_deref(),
        name_kana: name_kana.as_deref(),
        student_name: student_name.as_deref(),
        relation: relation.as_deref(),
        locale: base.as_ref().and_then(|b| b.locale.as_deref()),
        external_id: external_id.as_deref(),
        emails: emails.iter().map(|(f, v)| (f.clone(), v.as_str())).collect(),
        attributes: attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()
    .map_err(|error| match error {
        DomainError::Invalid(errors) => DomainError::Invalid(
            errors
                .into_iter()
                .map(|e| {
                    // Name the column as the file does: `grade`, not `attributes.grade`.
                    let field = e.field.strip_prefix("attributes.").map(str::to_string).unwrap_or(e.field);
                    FieldError::at_line(row.line, field, e.message)
                })
                .collect(),
        ),
        other => other,
    })
}

fn list_names(roster: &Roster, row: &Row) -> Vec<String> {
    cell(roster, row, &Column::Lists)
        .map(|v| v.split([';', '；']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Import a roster CSV: UTF-8 (with or without BOM) or Shift_JIS, detected. Upserts by
/// `external_id`, else by the first address. By default nothing is written when any row is
/// invalid (422 listing every error); `partial=true` imports the valid rows; `dry_run=true`
/// writes nothing and reports what would happen.
#[utoipa::path(tag = "members", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "Header: name, name_kana, student_name, relation, email1..email4, grade, class, club, route, external_id, lists (`;`-separated list names); other columns become attributes"),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = ImportReport),
    (status = 413, description = "Over 10 MiB or 50,000 rows", body = Problem, content_type = "application/problem+json"),
    (status = 415, body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid rows (each with `line` and `field`); nothing was written", body = Problem, content_type = "application/problem+json"),
))]
#[post("/members/import")]
pub async fn import_members(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<ImportQuery>,
    upload: CsvUpload,
) -> ApiResult<web::Json<ImportReport>> {
    caller.require(Scope::MembersWrite)?;
    let query = query.0;
    let (text, encoding) = roster_csv::decode(&upload.0).map_err(|message| ApiError::field("body", message))?;
    let roster = roster_csv::parse(&text)?;
    let mut tx = state.db.begin().await?;
    if let Some(list_id) = &query.list_id
        && lists::existing(&mut tx, &caller.org_id, std::slice::from_ref(list_id)).await?.is_empty()
    {
        return Err(ApiError::field("list_id", "no list with that id"));
    }

    // Find who each row is, with two lookups for the whole file.
    let external_ids: Vec<String> = roster
        .rows
        .iter()
        .filter_map(|r| cell(&roster, r, &Column::ExternalId))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let first_email = |row: &Row| -> Option<String> {
        (0..4)
            .filter_map(|i| cell(&roster, row, &Column::Email(i)))
            .find(|v| !v.trim().is_empty())
            .and_then(|v| EmailAddress::parse(v).ok())
            .map(|e| e.key())
    };
    // A large file is matched against the whole roster, read with one scan per table;
    // a small one looks up just the guardians it names.
    let stored: HashMap<String, MemberRecord> = if roster.rows.len() >= WHOLE_ROSTER_ROWS {
        members::load_all(&mut tx, &caller.org_id).await?
    } else {
        let email_keys: Vec<String> = roster.rows.iter().filter_map(first_email).collect();
        let by_external_id = members::ids_by_external_id(&mut tx, &caller.org_id, &external_ids).await?;
        let by_email = members::ids_by_email_key(&mut tx, &caller.org_id, &email_keys).await?;
        let mut matched_ids: Vec<String> = by_external_id.into_values().chain(by_email.into_values()).collect();
        matched_ids.sort();
        matched_ids.dedup();
        let mut stored = HashMap::new();
        for chunk in matched_ids.chunks(500) {
            stored.extend(
                members::load(&mut tx, &caller.org_id, chunk).await?.into_iter().map(|r| (r.row.id.clone(), r)),
            );
        }
        stored
    };
    let by_external_id: HashMap<&str, &str> = stored
        .values()
        .filter_map(|r| r.row.external_id.as_deref().map(|external_id| (external_id, r.row.id.as_str())))
        .collect();
    // Where several guardians share an address, the oldest (ids sort by creation time).
    let mut by_email: HashMap<String, &str> = HashMap::new();
    for record in stored.values() {
        for email in &record.emails {
            let id = by_email.entry(email.address.to_lowercase()).or_insert(record.row.id.as_str());
            if record.row.id.as_str() < *id {
                *id = record.row.id.as_str();
            }
        }
    }
    let known_lists: HashMap<String, String> = lists::names(&mut tx, &caller.org_id).await?.into_iter().collect();

    let mut errors: Vec<FieldError> = Vec::new();
    let mut planned: Vec<PlannedRow> = Vec::new();
    let mut seen_external: HashMap<String, u64> = HashMap::new();
    let mut seen_email: HashMap<String, u64> = HashMap::new();
    let mut new_list_names: BTreeSet<String> = BTreeSet::new();
    for row in &roster.rows {
        let external_id = cell(&roster, row, &Column::ExternalId).map(str::trim).filter(|v| !v.is_empty());
        let email_key = first_email(row);
        // A row is the same guardian as an earlier row of the file: refuse the second.
        if let Some(id) = external_id {
            if let Some(first) = seen_external.insert(id.to_string(), row.line) {
                errors.push(FieldError::at_line(row.line, "external_id", format!("repeats line {first}")));
                continue;
            }
        } else if let Some(key) = &email_key
            && let Some(first) = seen_email.insert(key.clone(), row.line)
        {
            errors.push(FieldError::at_line(
                row.line,
                "email1",
                format!("the same guardian as line {first} (same first address)"),
            ));
            continue;
        }
        let existing_id = match external_id {
            Some(id) => by_external_id.get(id),
            None => email_key.as_ref().and_then(|k| by_email.get(k)),
        };
        let record = existing_id.and_then(|id| stored.get(*id));
        let profile = match merged_profile(&roster, row, record) {
            Ok(profile) => profile,
            Err(DomainError::Invalid(row_errors)) => {
                errors.extend(row_errors);
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        let mut row_lists = list_names(&roster, row);
        for name in &row_lists {
            if !known_lists.contains_key(name) {
                if name.chars().count() > 100 {
                    errors.push(FieldError::at_line(
                        row.line,
                        "lists",
                        format!("list names are at most 100 characters: {name}"),
                    ));
                }
                new_list_names.insert(name.clone());
            }
        }
        row_lists.dedup();
        let plan = match record {
            None => Plan::Create(profile),
            Some(record) => {
                let wanted: Vec<&String> =
                    row_lists.iter().filter_map(|n| known_lists.get(n)).chain(query.list_id.as_ref()).collect();
                let new_memberships = row_lists.iter().any(|n| !known_lists.contains_key(n))
                    || wanted.iter().any(|id| !record.list_ids.contains(id));
                let stored = record.profile();
                if stored == profile && !new_memberships {
                    Plan::Unchanged
                } else {
                    Plan::Update(record, stored, profile)
                }
            }
        };
        planned.push(PlannedRow { line: row.line, plan, lists: row_lists });
    }
    errors.sort_by_key(|e| e.line);
    // A row with errors was skipped above, but a bad list name belongs to a planned row.
    let bad_lines: BTreeSet<u64> = errors.iter().filter_map(|e| e.line).collect();
    planned.retain(|p| !bad_lines.contains(&p.line));
    let new_list_names: Vec<String> =
        new_list_names.into_iter().filter(|name| planned.iter().any(|p| p.lists.contains(name))).collect();

    let mut report = ImportReport {
        created: 0,
        updated: 0,
        unchanged: 0,
        lists_created: new_list_names.clone(),
        errors,
        encoding: encoding.name().to_string(),
        dry_run: query.dry_run,
    };
    for p in &planned {
        match p.plan {
            Plan::Create(_) => report.created += 1,
            Plan::Update(..) => report.updated += 1,
            Plan::Unchanged => report.unchanged += 1,
        }
    }
    if !report.errors.is_empty() && !query.partial && !query.dry_run {
        return Err(ApiError::Validation(report.errors));
    }
    if query.dry_run {
        return Ok(web::Json(report));
    }

    let mut list_ids = known_lists;
    for name in &new_list_names {
        let created = lists::create(&mut tx, &caller.org_id, name, None).await?;
        list_ids.insert(name.clone(), created.id);
    }
    let new_ids: Vec<String> = planned.iter().map(|_| new_id()).collect();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut memberships: Vec<(&str, &str)> = Vec::new();
    for (p, fresh_id) in planned.iter().zip(&new_ids) {
        let (member_id, member_of): (&str, &[String]) = match &p.plan {
            Plan::Create(profile) => {
                creates.push(MemberWrite { id: fresh_id, profile, before: None });
                (fresh_id, &[])
            }
            Plan::Update(record, stored, profile) => {
                updates.push(MemberWrite { id: &record.row.id, profile, before: Some(stored) });
                (&record.row.id, &record.list_ids)
            }
            // Unchanged includes its memberships: nothing to add.
            Plan::Unchanged => continue,
        };
        let wanted = p.lists.iter().filter_map(|name| list_ids.get(name)).chain(query.list_id.as_ref());
        for list_id in wanted {
            if !member_of.contains(list_id) {
                memberships.push((list_id, member_id));
            }
        }
    }
    members::insert_many(&mut tx, &caller.org_id, &creates, MemberStatus::Active).await?;
    members::update_many(&mut tx, &caller.org_id, &updates, EmailStatus::Active).await?;
    lists::add_memberships(&mut tx, &caller.org_id, &memberships).await?;
    tx.commit().await?;
    let written = creates.len() + updates.len();
    if written >= WHOLE_ROSTER_ROWS {
        // Fresh statistics, so that the planner stops treating the roster as empty (or as
        // it was before) for the next import, search and send; the caller need not wait.
        let db = state.db.clone();
        actix_web::rt::spawn(async move {
            let analysed = match db.pool.acquire().await {
                Ok(mut conn) => members::analyze(&mut conn).await.map_err(anyhow::Error::from),
                Err(error) => Err(error.into()),
            };
            if let Err(error) = analysed {
                tracing::warn!(error = %error, "statistics after the import not refreshed");
            }
        });
    }
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        rejected = report.errors.len(),
        "roster imported"
    );
    Ok(web::Json(report))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only the members of this list.
    pub list_id: Option<String>,
    pub status: Option<MemberStatus>,
}

/// The roster as CSV for Excel: UTF-8 with BOM, the import's columns, formulas neutralised.
/// Addresses are masked unless the caller holds `contacts:read`.
#[utoipa::path(tag = "members", params(ExportQuery), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, description = "The roster", body = String, content_type = "text/csv"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
#[get("/members/export")]
pub async fn export_members(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<ExportQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersRead)?;
    let unmasked = caller.has(Scope::ContactsRead);
    let filter = MemberFilter { list_id: query.0.list_id, status: query.0.status, ..Default::default() };
    let mut conn = state.db.pool.acquire().await?;
    let list_names: HashMap<String, String> =
        lists::names(&mut conn, &caller.org_id).await?.into_iter().map(|(name, id)| (id, name)).collect();
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let ids = members::search(&mut conn, &caller.org_id, &filter, after.as_deref(), 500).await?;
        let Some(last) = ids.last().cloned() else { break };
        records.extend(members::load(&mut conn, &caller.org_id, &ids).await?);
        after = Some(last);
    }
    let extra_keys: BTreeSet<String> = records
        .iter()
        .flat_map(|r| r.attributes.keys())
        .filter(|k| !EXPORT_COLUMNS.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let header: Vec<&str> = EXPORT_COLUMNS.iter().copied().chain(extra_keys.iter().map(String::as_str)).collect();
    writer.write_record(&header).map_err(|e| ApiError::Internal(e.into()))?;
    for record in records {
        let email = |i: usize| {
            record.emails.get(i).map(|e| match EmailAddress::parse(&e.address) {
                Ok(address) if !unmasked => address.masked(),
                _ => e.address.clone(),
            })
        };
        let mut row_lists: Vec<&str> =
            record.list_ids.iter().filter_map(|id| list_names.get(id)).map(String::as_str).collect();
        row_lists.sort();
        let attribute = |key: &str| record.attributes.get(key).cloned();
        let mut cells: Vec<Option<String>> = vec![
            Some(record.row.name.clone()),
            record.row.name_kana.clone(),
            record.row.student_name.clone(),
            record.row.relation.clone(),
            email(0),
            email(1),
            email(2),
            email(3),
            attribute("grade"),
            attribute("class"),
            attribute("club"),
            attribute("route"),
            record.row.external_id.clone(),
            Some(row_lists.join(";")),
        ];
        cells.extend(extra_keys.iter().map(|k| attribute(k)));
        let cells: Vec<String> =
            cells.iter().map(|c| neutralise(c.as_deref().unwrap_or_default()).into_owned()).collect();
        writer.write_record(&cells).map_err(|e| ApiError::Internal(e.into()))?;
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(writer.into_inner().map_err(|e| ApiError::Internal(anyhow::anyhow!("csv: {e}")))?);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"members.csv\""))
        .body(body))
}

//! CSV import and export of the roster.

use std::collections::{BTreeSet, HashMap};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{QueryParams, read_body};
use crate::api::problem_responses::{Forbidden, UnsupportedMediaType};
use crate::auth::Caller;
use crate::db::new_id;
use crate::db::repositories::lists;
use crate::db::repositories::members::{self, MemberFilter, MemberRecord, MemberWrite};
use crate::domain::member::{EmailStatus, MemberStatus};
use crate::domain::roster_csv::{self, EXPORT_COLUMNS, MAX_BYTES, neutralise};
use crate::domain::roster_import::{self, Plan, StoredGuardian};
use crate::domain::{EmailAddress, FieldError, Scope};
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

/// Import a roster CSV: UTF-8 (with or without BOM) or Shift_JIS, detected. Upserts by
/// `external_id`, else by the first address. By default nothing is written when any row is
/// invalid (422 listing every error); `partial=true` imports the valid rows; `dry_run=true`
/// writes nothing and reports what would happen.
#[utoipa::path(tag = "members", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "Header: name, name_kana, student_name, relation, email1..email4, grade, class, club, route, external_id, lists (`;`-separated list names); other columns become attributes"),
    responses(
    (status = 200, body = ImportReport),
    (status = 413, description = "Over 10 MiB or 50,000 rows", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid rows (each with `line` and `field`); nothing was written", body = Problem, content_type = "application/problem+json"),
    UnsupportedMediaType,
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

    // Find who each row is: a large file is matched against the whole roster, read with one
    // scan per table; a small one looks up just the guardians it names, with two lookups.
    let records: Vec<MemberRecord> = if roster.rows.len() >= WHOLE_ROSTER_ROWS {
        members::load_all(&mut tx, &caller.org_id).await?.into_values().collect()
    } else {
        let wanted = roster_import::lookups(&roster);
        let by_external_id = members::ids_by_external_id(&mut tx, &caller.org_id, &wanted.external_ids).await?;
        let by_email = members::ids_by_email_key(&mut tx, &caller.org_id, &wanted.email_keys).await?;
        let mut matched_ids: Vec<String> = by_external_id.into_values().chain(by_email.into_values()).collect();
        matched_ids.sort();
        matched_ids.dedup();
        let mut records = Vec::new();
        for chunk in matched_ids.chunks(500) {
            records.extend(members::load(&mut tx, &caller.org_id, chunk).await?);
        }
        records
    };
    let stored: HashMap<String, StoredGuardian> =
        records.into_iter().map(|record| (record.row.id.clone(), stored_guardian(record))).collect();
    let known_lists: HashMap<String, String> = lists::names(&mut tx, &caller.org_id).await?.into_iter().collect();
    let plan = roster_import::plan(&roster, &stored, &known_lists, query.list_id.as_deref())?;

    let counts = plan.counts();
    let report = ImportReport {
        created: counts.created,
        updated: counts.updated,
        unchanged: counts.unchanged,
        lists_created: plan.new_lists.clone(),
        errors: plan.errors,
        encoding: encoding.name().to_string(),
        dry_run: query.dry_run,
    };
    if !report.errors.is_empty() && !query.partial && !query.dry_run {
        return Err(ApiError::Validation(report.errors));
    }
    if query.dry_run {
        return Ok(web::Json(report));
    }

    let mut list_ids = known_lists;
    for name in &plan.new_lists {
        let created = lists::create(&mut tx, &caller.org_id, name, None).await?;
        list_ids.insert(name.clone(), created.id);
    }
    let new_ids: Vec<String> = plan.rows.iter().map(|_| new_id()).collect();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut memberships: Vec<(&str, &str)> = Vec::new();
    for (p, fresh_id) in plan.rows.iter().zip(&new_ids) {
        let (member_id, member_of): (&str, &[String]) = match &p.plan {
            Plan::Create(profile) => {
                creates.push(MemberWrite { id: fresh_id, profile, before: None });
                (fresh_id, &[])
            }
            Plan::Update { guardian, profile } => {
                updates.push(MemberWrite { id: &guardian.id, profile, before: Some(&guardian.profile) });
                (&guardian.id, &guardian.list_ids)
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

/// The stored guardian as the import planner compares it.
fn stored_guardian(record: MemberRecord) -> StoredGuardian {
    StoredGuardian {
        profile: record.profile(),
        email_keys: record.emails.iter().map(|e| e.address.to_lowercase()).collect(),
        id: record.row.id,
        list_ids: record.list_ids,
    }
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
#[utoipa::path(tag = "members", params(ExportQuery), responses(
    (status = 200, description = "The roster", body = String, content_type = "text/csv"),
    Forbidden,
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
    // Attribute names are the roster's own text: a name like `=HYPERLINK(…)` is a formula too.
    let header: Vec<String> = EXPORT_COLUMNS
        .iter()
        .copied()
        .chain(extra_keys.iter().map(String::as_str))
        .map(|name| neutralise(name).into_owned())
        .collect();
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

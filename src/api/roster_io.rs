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
use crate::domain::roster_csv::{EXPORT_COLUMNS, MAX_BYTES, RosterReader, neutralise};
use crate::domain::roster_import::{Lookups, Plan, PlannedRow, Planner, StoredGuardian};
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

/// Rows planned and written at a time: the guardians they name are looked up together and
/// their writes fill the repository's multi-row statements, while the rows, the stored
/// guardians and the plans held at once stay a few megabytes whatever the file.
const CHUNK_ROWS: usize = 5_000;

/// From this many rows on, an import reads which external ids and addresses the roster has
/// with one scan each before it writes, instead of looking each chunk's rows up; and the
/// planner's statistics are refreshed afterwards.
const WHOLE_ROSTER_ROWS: usize = 2_000;

/// The raw CSV upload, as received (at most `MAX_BYTES`).
pub struct CsvUpload(pub web::Bytes);

impl FromRequest for CsvUpload {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, CSV_TYPES, MAX_BYTES);
        Box::pin(async move { Ok(CsvUpload(body.await?.freeze())) })
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
    // A first read checks the whole file (encoding, columns, cells, rows) before anything
    // is looked up or written: a bad file costs one pass of the reader, no more.
    let (mut check, _) = RosterReader::new(&upload.0)?;
    let mut row_count = 0;
    while check.next_row()?.is_some() {
        row_count += 1;
    }
    let encoding = check.encoding();

    let (mut reader, header) = RosterReader::new(&upload.0)?;
    let mut tx = state.db.begin().await?;
    if let Some(list_id) = &query.list_id
        && lists::existing(&mut tx, &caller.org_id, std::slice::from_ref(list_id)).await?.is_empty()
    {
        return Err(ApiError::field("list_id", "no list with that id"));
    }
    let known_lists: HashMap<String, String> = lists::names(&mut tx, &caller.org_id).await?.into_iter().collect();
    let mut planner = Planner::new(&header, known_lists, query.list_id.clone(), caller.has(Scope::ContactsRead));
    let roster_index = if row_count >= WHOLE_ROSTER_ROWS {
        Some(RosterIndex {
            by_external_id: members::ids_by_every_external_id(&mut tx, &caller.org_id).await?,
            by_email_key: if caller.has(Scope::ContactsRead) {
                members::ids_by_every_email_key(&mut tx, &caller.org_id).await?
            } else {
                HashMap::new()
            },
        })
    } else {
        None
    };
    // Whether this import writes: not on a dry run, nor once a row failed unless partial.
    let writes = |planner: &Planner| !query.dry_run && (query.partial || planner.errors.is_empty());
    let mut written = 0;
    loop {
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        while rows.len() < CHUNK_ROWS
            && let Some(row) = reader.next_row()?
        {
            rows.push(row);
        }
        if rows.is_empty() {
            break;
        }
        let stored = stored_guardians(&mut tx, &caller.org_id, planner.lookups(&rows), roster_index.as_ref()).await?;
        let planned = planner.plan(&rows, &stored)?;
        if writes(&planner) {
            written += write_chunk(&mut tx, &caller.org_id, &mut planner, &planned, query.list_id.as_ref()).await?;
        }
    }

    let errors_found = !planner.errors.is_empty();
    let report = ImportReport {
        created: planner.counts.created,
        updated: planner.counts.updated,
        unchanged: planner.counts.unchanged,
        lists_created: planner.new_lists(),
        errors: std::mem::take(&mut planner.errors).into_list(),
        encoding: encoding.name().to_string(),
        dry_run: query.dry_run,
    };
    if errors_found && !query.partial && !query.dry_run {
        return Err(ApiError::Validation(report.errors));
    }
    if query.dry_run {
        return Ok(web::Json(report));
    }
    tx.commit().await?;
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

/// Which member has each external id and address, read once for a large import.
struct RosterIndex {
    by_external_id: HashMap<String, String>,
    by_email_key: HashMap<String, String>,
}

/// The stored guardians a chunk names, by id: found in `index` when there is one, else
/// looked up.
async fn stored_guardians(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    wanted: Lookups,
    index: Option<&RosterIndex>,
) -> ApiResult<HashMap<String, StoredGuardian>> {
    let records = match index {
        Some(index) => {
            let ids: Vec<String> = (wanted.external_ids.iter().filter_map(|e| index.by_external_id.get(e)))
                .chain(wanted.email_keys.iter().filter_map(|k| index.by_email_key.get(k)))
                .cloned()
                .collect();
            members::load_for_import(conn, org_id, &[], &ids).await?
        }
        None => {
            let by_email: Vec<String> =
                members::ids_by_email_key(conn, org_id, &wanted.email_keys).await?.into_values().collect();
            members::load_for_import(conn, org_id, &wanted.external_ids, &by_email).await?
        }
    };
    Ok(records.into_iter().map(|(id, record)| (id, stored_guardian(record))).collect())
}

/// Writes a chunk's plan: the lists it goes in that do not exist yet, new guardians,
/// changed ones, memberships. Returns how many guardians were written.
async fn write_chunk(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    planner: &mut Planner<'_>,
    planned: &[PlannedRow<'_>],
    list_id: Option<&String>,
) -> ApiResult<usize> {
    let names: BTreeSet<&String> = planned.iter().flat_map(|p| &p.lists).collect();
    for name in names {
        if planner.list(name).is_none() {
            let created = lists::create(conn, org_id, name, None).await?;
            planner.list_created(name.clone(), created.id);
        }
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
            Plan::Update { guardian, profile } => {
                updates.push(MemberWrite { id: &guardian.id, profile, before: Some(&guardian.profile) });
                (&guardian.id, &guardian.list_ids)
            }
            // Unchanged includes its memberships: nothing to add.
            Plan::Unchanged => continue,
        };
        let wanted = p.lists.iter().filter_map(|name| planner.list(name)).chain(list_id);
        for list_id in wanted {
            if !member_of.contains(list_id) {
                memberships.push((list_id, member_id));
            }
        }
    }
    members::insert_many(conn, org_id, &creates, MemberStatus::Active).await?;
    members::update_many(conn, org_id, &updates, EmailStatus::Active).await?;
    lists::add_memberships(conn, org_id, &memberships).await?;
    Ok(creates.len() + updates.len())
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

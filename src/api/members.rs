//! Guardians: create, search, change, delete, status changes and the integration upsert.
//! Their app devices are `devices.rs`; grade promotion, `promotion.rs`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::devices::{DeviceResponse, device_response};
use crate::api::extract::{JsonBody, QueryParams};
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{Conflict, Forbidden, NotFound, Validation};
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::members::{self, MemberFilter, MemberRecord};
use crate::db::repositories::{guardians, lists};
use crate::delivery::queue;
use crate::domain::member::{EmailStatus, MemberProfile, MemberStatus, RawProfile, shown_as_masked};
use crate::domain::{EmailAddress, FieldError, Scope};
use crate::error::{ApiError, ApiResult, OrNotFound, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_members)
        .service(create_member)
        .service(upsert_by_external_id)
        .service(get_member)
        .service(update_member)
        .service(delete_member)
        .service(suspend_member)
        .service(resume_member)
        .service(approve_member);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemberRequest {
    /// 1 to 100 characters.
    #[schema(example = "山田 花子")]
    pub name: String,
    #[schema(example = "ヤマダ ハナコ")]
    pub name_kana: Option<String>,
    #[schema(example = "山田 太郎")]
    pub student_name: Option<String>,
    #[schema(example = "母")]
    pub relation: Option<String>,
    #[schema(example = "ja")]
    pub locale: Option<String>,
    /// The school-information system's key for this guardian.
    #[schema(example = "S0001")]
    pub external_id: Option<String>,
    /// Up to 4.
    #[serde(default)]
    #[schema(example = json!(["hanako.yamada@example.jp", "taro..papa@docomo.ne.jp"]))]
    pub emails: Vec<String>,
    #[serde(default)]
    #[schema(example = json!({"grade": "1", "class": "A", "club": "サッカー部"}))]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub list_ids: Vec<String>,
}

/// The same fields as for creation; `external_id` comes from the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertMemberRequest {
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    /// Up to 4. When absent, an existing guardian keeps its addresses (a new one has none).
    /// Changing an existing guardian's addresses needs `contacts:read`: without it they may
    /// only be given back as shown (masked), which keeps them.
    pub emails: Option<Vec<String>>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// When present, the member's lists become exactly these.
    pub list_ids: Option<Vec<String>>,
}

/// Only the fields present change. An empty string clears a text field; `emails` and
/// `list_ids` replace the whole set; in `attributes`, a key set to null is removed.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    pub external_id: Option<String>,
    pub emails: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, Option<String>>>,
    pub list_ids: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct EmailResponse {
    /// Masked (`t***@example.jp`) unless the caller holds `contacts:read`.
    #[schema(example = "h***@example.jp")]
    pub address: String,
    pub status: EmailStatus,
}

#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    pub id: String,
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    pub external_id: Option<String>,
    pub status: MemberStatus,
    pub emails: Vec<EmailResponse>,
    pub devices: Vec<DeviceResponse>,
    pub attributes: BTreeMap<String, String>,
    pub list_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The API shape of a member; addresses and tokens masked unless `unmasked`.
pub fn member_response(record: MemberRecord, unmasked: bool) -> MemberResponse {
    let row = record.row;
    MemberResponse {
        emails: record
            .emails
            .into_iter()
            .map(|e| EmailResponse {
                address: match EmailAddress::parse(&e.address) {
                    Ok(address) if !unmasked => address.masked(),
                    _ => e.address,
                },
                status: EmailStatus::parse(&e.status).unwrap_or(EmailStatus::Disabled),
            })
            .collect(),
        devices: record.devices.into_iter().map(|d| device_response(d, unmasked)).collect(),
        attributes: record.attributes,
        list_ids: record.list_ids,
        status: MemberStatus::parse(&row.status).unwrap_or(MemberStatus::Suspended),
        id: row.id,
        name: row.name,
        name_kana: row.name_kana,
        student_name: row.student_name,
        relation: row.relation,
        locale: row.locale,
        external_id: row.external_id,
        created_at: time(row.created_at),
        updated_at: time(row.updated_at),
    }
}

fn email_fields(emails: &[String]) -> Vec<(String, &str)> {
    emails.iter().enumerate().map(|(i, e)| (format!("emails[{i}]"), e.as_str())).collect()
}

/// Checks that every list id is one of the organisation's lists, naming the bad ones.
pub async fn check_list_ids(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    list_ids: &[String],
    field: &str,
) -> ApiResult<Vec<String>> {
    let found = lists::existing(conn, org_id, list_ids).await?;
    let errors: Vec<FieldError> = list_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.contains(id))
        .map(|(i, _)| FieldError::new(format!("{field}[{i}]"), "no list with that id"))
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut unique = list_ids.to_vec();
    unique.sort();
    unique.dedup();
    Ok(unique)
}

fn conflict_on_external_id(err: crate::db::RepoError) -> ApiError {
    match err {
        crate::db::RepoError::Conflict { .. } => ApiError::Conflict {
            detail: "another member has this external_id".into(),
            field: Some("external_id".into()),
        },
        other => other.into(),
    }
}

pub(crate) async fn respond(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<MemberResponse> {
    let record = members::find(conn, &caller.org_id, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    Ok(member_response(record, caller.has(Scope::ContactsRead)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Partial match on name, kana, student name, external id and attribute values (and
    /// e-mail addresses, for callers with `contacts:read`).
    pub q: Option<String>,
    pub list_id: Option<String>,
    pub status: Option<MemberStatus>,
    /// 1 to 200; 50 when absent. (Text here: serde cannot read numbers from a query
    /// string beside a flattened map.)
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// Attribute filters, `attr.<name>=<value>`, e.g. `attr.grade=1&attr.class=A`.
    #[serde(flatten)]
    #[param(value_type = Object)]
    pub attributes: BTreeMap<String, String>,
}

impl MemberQuery {
    fn filter(&self, caller: &Caller) -> ApiResult<MemberFilter> {
        let mut attributes = Vec::new();
        for (key, value) in &self.attributes {
            match key.strip_prefix("attr.") {
                Some(name) if !name.is_empty() => attributes.push((name.to_string(), value.clone())),
                _ => {
                    return Err(ApiError::field(
                        key.as_str(),
                        "is not a known parameter (attribute filters are attr.<name>=<value>)",
                    ));
                }
            }
        }
        Ok(MemberFilter {
            q: self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase),
            q_matches_emails: caller.has(Scope::ContactsRead),
            list_id: self.list_id.clone(),
            status: self.status,
            attributes,
        })
    }
}

/// Search the roster; a stable cursor walks all pages.
#[utoipa::path(tag = "members", params(MemberQuery), responses(
    (status = 200, body = Page<MemberResponse>),
    Forbidden, Validation,
))]
#[get("/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<MemberQuery>,
) -> ApiResult<web::Json<Page<MemberResponse>>> {
    caller.require(Scope::MembersRead)?;
    let query = query.0;
    let filter = query.filter(&caller)?;
    let limit = match &query.limit {
        Some(limit) => Some(limit.parse().map_err(|_| ApiError::field("limit", "must be a whole number"))?),
        None => None,
    };
    let page = PageQuery { limit, cursor: query.cursor.clone() }.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    let ids = members::search(&mut conn, &caller.org_id, &filter, page.after.as_deref(), page.fetch()).await?;
    let records = members::load(&mut conn, &caller.org_id, &ids).await?;
    let unmasked = caller.has(Scope::ContactsRead);
    Ok(web::Json(page.page(records, |r| &r.row.id, |r| member_response(r, unmasked))))
}

/// Add a guardian.
#[utoipa::path(tag = "members", request_body = CreateMemberRequest, responses(
    (status = 201, body = MemberResponse),
    (status = 409, description = "Another member has this external_id", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "E.g. a fifth address (`emails[4]`) or an unknown list", body = Problem, content_type = "application/problem+json"),
    Forbidden,
))]
#[post("/members")]
pub async fn create_member(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateMemberRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    let body = body.0;
    let profile = RawProfile {
        name: Some(&body.name),
        name_kana: body.name_kana.as_deref(),
        student_name: body.student_name.as_deref(),
        relation: body.relation.as_deref(),
        locale: body.locale.as_deref(),
        external_id: body.external_id.as_deref(),
        emails: email_fields(&body.emails),
        attributes: body.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()?;
    let mut tx = state.db.begin().await?;
    let list_ids = check_list_ids(&mut tx, &caller.org_id, &body.list_ids, "list_ids").await?;
    let id = members::insert(&mut tx, &caller.org_id, &profile, MemberStatus::Active)
        .await
        .map_err(conflict_on_external_id)?;
    members::set_lists(&mut tx, &caller.org_id, &id, &list_ids).await?;
    let response = respond(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(response))
}

/// Create or replace the guardian with this `external_id` (idempotent; for integrations).
#[utoipa::path(tag = "members", params(("external_id" = String, Path)), request_body = UpsertMemberRequest, responses(
    (status = 200, description = "Replaced", body = MemberResponse),
    (status = 201, description = "Created", body = MemberResponse),
    Forbidden, Conflict, Validation,
))]
#[put("/members/by-external-id/{external_id}")]
pub async fn upsert_by_external_id(
    state: web::Data<AppState>,
    caller: Caller,
    external_id: web::Path<String>,
    body: JsonBody<UpsertMemberRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    let body = body.0;
    // Looked up as it is stored (trimmed), or the same call again would not find it.
    let external_id = external_id.trim();
    if external_id.is_empty() {
        return Err(ApiError::field("external_id", "must not be blank"));
    }
    let mut tx = state.db.begin().await?;
    let existing = members::find_id_by_external_id(&mut tx, &caller.org_id, external_id).await?;
    let stored_emails: Option<Vec<EmailAddress>> = match &existing {
        Some(id) => members::find(&mut tx, &caller.org_id, id).await?.map(|record| record.profile().emails),
        None => None,
    };
    let emails = upserted_emails(body.emails.as_deref(), stored_emails.as_deref(), caller.has(Scope::ContactsRead))?;
    let profile = RawProfile {
        name: Some(&body.name),
        name_kana: body.name_kana.as_deref(),
        student_name: body.student_name.as_deref(),
        relation: body.relation.as_deref(),
        locale: body.locale.as_deref(),
        external_id: Some(external_id),
        emails: email_fields(&emails),
        attributes: body.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()?;
    let list_ids = match &body.list_ids {
        Some(ids) => Some(check_list_ids(&mut tx, &caller.org_id, ids, "list_ids").await?),
        None => None,
    };
    let created = existing.is_none();
    let id = match existing {
        Some(id) => {
            members::update_profile(&mut tx, &caller.org_id, &id, &profile, EmailStatus::Active).await?;
            id
        }
        None => members::insert(&mut tx, &caller.org_id, &profile, MemberStatus::Active)
            .await
            .map_err(conflict_on_external_id)?,
    };
    if let Some(list_ids) = list_ids {
        members::set_lists(&mut tx, &caller.org_id, &id, &list_ids).await?;
    }
    let response = respond(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(if created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(response))
}

/// The addresses an upsert writes: those given, else the stored ones. A caller without
/// `contacts:read` may give an existing guardian's addresses only as shown to them (masked),
/// which keeps them: the answer must not depend on whether a guessed address is right.
fn upserted_emails(
    given: Option<&[String]>,
    stored: Option<&[EmailAddress]>,
    may_see_emails: bool,
) -> ApiResult<Vec<String>> {
    let stored_text = || stored.unwrap_or_default().iter().map(|e| e.as_str().to_string()).collect();
    match (given, stored) {
        (None, _) => Ok(stored_text()),
        (Some(given), Some(stored)) if !may_see_emails => {
            let as_shown = given.iter().filter(|e| !e.trim().is_empty()).count() == stored.len()
                && given.iter().enumerate().all(|(i, e)| shown_as_masked(e, stored.get(i)));
            if !as_shown {
                return Err(ApiError::Forbidden("changing addresses needs the contacts:read scope".into()));
            }
            Ok(stored_text())
        }
        (Some(given), _) => Ok(given.to_vec()),
    }
}

#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 200, body = MemberResponse),
    NotFound,
))]
#[get("/members/{id}")]
pub async fn get_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MemberResponse>> {
    caller.require(Scope::MembersRead)?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(web::Json(respond(&mut conn, &caller, &id).await?))
}

/// Change a guardian: only the fields present.
#[utoipa::path(tag = "members", params(("id" = String, Path)), request_body = UpdateMemberRequest, responses(
    (status = 200, body = MemberResponse),
    NotFound, Conflict, Validation,
))]
#[patch("/members/{id}")]
pub async fn update_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<UpdateMemberRequest>,
) -> ApiResult<web::Json<MemberResponse>> {
    caller.require(Scope::MembersWrite)?;
    let body = body.0;
    let mut tx = state.db.begin().await?;
    let current = members::find(&mut tx, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let profile = merge(&current, &body, caller.has(Scope::ContactsRead))?;
    let list_ids = match &body.list_ids {
        Some(ids) => Some(check_list_ids(&mut tx, &caller.org_id, ids, "list_ids").await?),
        None => None,
    };
    members::update_profile(&mut tx, &caller.org_id, &id, &profile, EmailStatus::Active)
        .await
        .map_err(conflict_on_external_id)?;
    if profile.external_id != current.profile().external_id {
        // The external id ties the guardian to the school system's record, whose sync
        // writes that family's addresses here: an app signed in before it was moved must
        // not see them (a self-registered guardian given another's id).
        guardians::end_sessions(&mut tx, &id).await?;
    }
    if let Some(list_ids) = list_ids {
        members::set_lists(&mut tx, &caller.org_id, &id, &list_ids).await?;
    }
    let response = respond(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(web::Json(response))
}

/// The stored profile with the patch applied, checked as a whole.
fn merge(current: &MemberRecord, patch: &UpdateMemberRequest, may_see_emails: bool) -> ApiResult<MemberProfile> {
    if patch.emails.is_some() && !may_see_emails {
        // Replacing addresses one cannot see would let a caller learn them by elimination,
        // and would silently drop ones they never saw.
        return Err(ApiError::Forbidden("changing addresses needs the contacts:read scope".into()));
    }
    let stored = current.profile();
    let pick = |new: &Option<String>, old: &Option<String>| -> Option<String> {
        match new {
            Some(v) => Some(v.clone()),
            None => old.clone(),
        }
    };
    let name_kana = pick(&patch.name_kana, &stored.name_kana);
    let student_name = pick(&patch.student_name, &stored.student_name);
    let relation = pick(&patch.relation, &stored.relation);
    let locale = pick(&patch.locale, &stored.locale);
    let external_id = pick(&patch.external_id, &stored.external_id);
    let emails: Vec<String> = match &patch.emails {
        Some(emails) => emails.clone(),
        None => stored.emails.iter().map(|e| e.as_str().to_string()).collect(),
    };
    let mut attributes = stored.attributes.clone();
    for (key, value) in patch.attributes.iter().flatten() {
        match value {
            Some(v) => attributes.insert(key.clone(), v.clone()),
            None => attributes.remove(key),
        };
    }
    RawProfile {
        name: Some(patch.name.as_deref().unwrap_or(&stored.name)),
        name_kana: name_kana.as_deref(),
        student_name: student_name.as_deref(),
        relation: relation.as_deref(),
        locale: locale.as_deref(),
        external_id: external_id.as_deref(),
        emails: email_fields(&emails),
        attributes: attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()
    .map_err(ApiError::from)
}

#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 204, description = "Deleted with its addresses, devices, memberships, invitations and app sessions; deliveries still waiting for the guardian end as failed"),
    NotFound,
))]
#[delete("/members/{id}")]
pub async fn delete_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    let mut tx = state.db.begin().await?;
    members::delete(&mut tx, &caller.org_id, &id).await.or_not_found("member")?;
    let completed = queue::forget_guardian(&mut tx, &state, &id).await?;
    tx.commit().await?;
    queue::announce_completed(&state, completed);
    Ok(HttpResponse::NoContent().finish())
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    from: &[MemberStatus],
    to: MemberStatus,
) -> ApiResult<web::Json<MemberResponse>> {
    caller.require(Scope::MembersWrite)?;
    let mut tx = state.db.begin().await?;
    let current = members::find(&mut tx, &caller.org_id, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let status = MemberStatus::parse(&current.row.status).unwrap_or(MemberStatus::Suspended);
    if status != to {
        if !from.contains(&status) {
            return Err(ApiError::Conflict {
                detail: format!("a {} member cannot become {}", status.as_str(), to.as_str()),
                field: Some("status".into()),
            });
        }
        members::set_status(&mut tx, &caller.org_id, id, to).await?;
        if to == MemberStatus::Suspended {
            // A suspended guardian is signed out of the app, and resuming does not sign them
            // back in: that takes a new invitation.
            guardians::end_sessions(&mut tx, id).await?;
            guardians::void_unused_invitations(&mut tx, id).await?;
        }
    }
    let response = respond(&mut tx, caller, id).await?;
    tx.commit().await?;
    Ok(web::Json(response))
}

/// Stop sending to a guardian (kept on the roster). Their app is signed out and their
/// unused invitation codes stop working; resuming does not bring either back.
#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 200, body = MemberResponse),
    (status = 409, description = "A pending member is approved, not suspended", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/members/{id}/suspend")]
pub async fn suspend_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MemberResponse>> {
    change_status(&state, &caller, &id, &[MemberStatus::Active], MemberStatus::Suspended).await
}

/// Send to a suspended guardian again.
#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 200, body = MemberResponse),
    NotFound, Conflict,
))]
#[post("/members/{id}/resume")]
pub async fn resume_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MemberResponse>> {
    change_status(&state, &caller, &id, &[MemberStatus::Suspended], MemberStatus::Active).await
}

/// Approve (承認) a guardian who registered with a join code.
#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 200, body = MemberResponse),
    NotFound, Conflict,
))]
#[post("/members/{id}/approve")]
pub async fn approve_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MemberResponse>> {
    change_status(&state, &caller, &id, &[MemberStatus::Pending], MemberStatus::Active).await
}

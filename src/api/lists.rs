//! Lists: classes, grades, clubs, commute routes — the groups messages are sent to.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, QueryParams};
use crate::api::members::{MemberResponse, member_response};
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{Conflict, Forbidden, NotFound, Validation};
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::lists::{self, ListRow};
use crate::db::repositories::members::{self, MemberFilter};
use crate::domain::member::optional_text;
use crate::domain::{FieldError, Scope};
use crate::error::{ApiError, ApiResult, OrNotFound, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_lists)
        .service(create_list)
        .service(get_list)
        .service(update_list)
        .service(delete_list)
        .service(list_list_members)
        .service(add_list_member)
        .service(remove_list_member)
        .service(bulk_membership);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListRequest {
    /// 1 to 100 characters, unique in the organisation.
    #[schema(example = "1年A組")]
    pub name: String,
    #[schema(example = "2026年度 1年A組の保護者")]
    pub description: Option<String>,
}

/// Only the fields present change; an empty description clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateListRequest {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListResponse {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub member_count: i64,
    /// Guardians who register with this code join as pending.
    pub join_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ListRow> for ListResponse {
    fn from(row: ListRow) -> ListResponse {
        ListResponse {
            id: row.id,
            name: row.name,
            description: row.description,
            member_count: row.member_count,
            join_code: row.join_code,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
        }
    }
}

fn list_name(errors: &mut Vec<FieldError>, name: &str) -> Option<String> {
    let name = optional_text(errors, "name", Some(name), 100);
    if name.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "is required"));
    }
    name
}

fn name_conflict(err: crate::db::RepoError) -> ApiError {
    match err {
        crate::db::RepoError::Conflict { .. } => {
            ApiError::Conflict { detail: "a list with this name exists".into(), field: Some("name".into()) }
        }
        other => other.into(),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Partial match on the name.
    pub q: Option<String>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(tag = "lists", params(ListQuery), responses(
    (status = 200, body = Page<ListResponse>),
    Forbidden,
))]
#[get("/lists")]
pub async fn list_lists(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<ListQuery>,
) -> ApiResult<web::Json<Page<ListResponse>>> {
    caller.require(Scope::ListsRead)?;
    let query = query.0;
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.parse()?;
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut conn = state.db.pool.acquire().await?;
    let rows = lists::list(&mut conn, &caller.org_id, q, page.after.as_deref(), page.fetch()).await?;
    Ok(web::Json(page.page(rows, |r| &r.id, ListResponse::from)))
}

#[utoipa::path(tag = "lists", request_body = CreateListRequest, responses(
    (status = 201, body = ListResponse),
    (status = 409, description = "A list with this name exists", body = Problem, content_type = "application/problem+json"),
    Validation,
))]
#[post("/lists")]
pub async fn create_list(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateListRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::ListsWrite)?;
    let mut errors = Vec::new();
    let name = list_name(&mut errors, &body.0.name);
    let description = optional_text(&mut errors, "description", body.0.description.as_deref(), 500);
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let mut conn = state.db.pool.acquire().await?;
    let row = lists::create(&mut conn, &caller.org_id, &name, description.as_deref()).await.map_err(name_conflict)?;
    Ok(HttpResponse::Created().json(ListResponse::from(row)))
}

#[utoipa::path(tag = "lists", params(("id" = String, Path)), responses(
    (status = 200, body = ListResponse),
    NotFound,
))]
#[get("/lists/{id}")]
pub async fn get_list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<ListResponse>> {
    caller.require(Scope::ListsRead)?;
    let mut conn = state.db.pool.acquire().await?;
    let row = lists::find(&mut conn, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("list"))?;
    Ok(web::Json(row.into()))
}

#[utoipa::path(tag = "lists", params(("id" = String, Path)), request_body = UpdateListRequest, responses(
    (status = 200, body = ListResponse),
    NotFound, Conflict, Validation,
))]
#[patch("/lists/{id}")]
pub async fn update_list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<UpdateListRequest>,
) -> ApiResult<web::Json<ListResponse>> {
    caller.require(Scope::ListsWrite)?;
    let body = body.0;
    let mut errors = Vec::new();
    let name = body.name.as_deref().and_then(|n| list_name(&mut errors, n));
    let description = body.description.as_deref().map(|d| optional_text(&mut errors, "description", Some(d), 500));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut conn = state.db.pool.acquire().await?;
    let row =
        lists::update(&mut conn, &caller.org_id, &id, name.as_deref(), description.as_ref().map(|d| d.as_deref()))
            .await
            .map_err(|e| match e {
                crate::db::RepoError::NotFound => ApiError::not_found("list"),
                other => name_conflict(other),
            })?;
    Ok(web::Json(row.into()))
}

/// Delete a list. Its members stay on the roster.
#[utoipa::path(tag = "lists", params(("id" = String, Path)), responses(
    (status = 204, description = "Deleted"),
    NotFound,
))]
#[delete("/lists/{id}")]
pub async fn delete_list(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> ApiResult<HttpResponse> {
    caller.require(Scope::ListsWrite)?;
    let mut tx = state.db.begin().await?;
    lists::delete(&mut tx, &caller.org_id, &id).await.or_not_found("list")?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "lists", params(("id" = String, Path), PageQuery), responses(
    (status = 200, body = Page<MemberResponse>),
    NotFound,
))]
#[get("/lists/{id}/members")]
pub async fn list_list_members(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: QueryParams<PageQuery>,
) -> ApiResult<web::Json<Page<MemberResponse>>> {
    caller.require(Scope::ListsRead)?;
    caller.require(Scope::MembersRead)?;
    let page = query.0.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    lists::find(&mut conn, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("list"))?;
    let filter = MemberFilter { list_id: Some(id.into_inner()), ..Default::default() };
    let ids = members::search(&mut conn, &caller.org_id, &filter, page.after.as_deref(), page.fetch()).await?;
    let records = members::load(&mut conn, &caller.org_id, &ids).await?;
    let unmasked = caller.has(Scope::ContactsRead);
    Ok(web::Json(page.page(records, |r| &r.row.id, |r| member_response(r, unmasked))))
}

async fn list_and_member(
    conn: &mut sqlx::AnyConnection,
    caller: &Caller,
    list_id: &str,
    member_id: &str,
) -> ApiResult<()> {
    if lists::existing(conn, &caller.org_id, &[list_id.to_string()]).await?.is_empty() {
        return Err(ApiError::not_found("list"));
    }
    if members::existing(conn, &caller.org_id, &[member_id.to_string()]).await?.is_empty() {
        return Err(ApiError::not_found("member"));
    }
    Ok(())
}

/// Put a member in the list (idempotent).
#[utoipa::path(tag = "lists", params(("id" = String, Path), ("member_id" = String, Path)), responses(
    (status = 204, description = "The member is in the list"),
    NotFound,
))]
#[put("/lists/{id}/members/{member_id}")]
pub async fn add_list_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::ListsWrite)?;
    let (list_id, member_id) = path.into_inner();
    let mut tx = state.db.begin().await?;
    list_and_member(&mut tx, &caller, &list_id, &member_id).await?;
    lists::add_members(&mut tx, &caller.org_id, &list_id, &[member_id]).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Take a member out of the list (idempotent); the member stays on the roster.
#[utoipa::path(tag = "lists", params(("id" = String, Path), ("member_id" = String, Path)), responses(
    (status = 204, description = "The member is not in the list"),
    NotFound,
))]
#[delete("/lists/{id}/members/{member_id}")]
pub async fn remove_list_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::ListsWrite)?;
    let (list_id, member_id) = path.into_inner();
    let mut tx = state.db.begin().await?;
    list_and_member(&mut tx, &caller, &list_id, &member_id).await?;
    lists::remove_members(&mut tx, &list_id, &[member_id]).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Put the members in this list.
    Add,
    /// Take them out of this list.
    Remove,
    /// Put those of them in this list into `to_list_id` too.
    Copy,
    /// Move those of them in this list to `to_list_id`.
    Move,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMembershipRequest {
    pub action: BulkAction,
    /// Up to 10,000.
    pub member_ids: Vec<String>,
    /// For copy and move.
    pub to_list_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkMembershipResponse {
    /// Memberships created or removed.
    pub affected: u64,
}

const BULK_MAX: usize = 10_000;

/// Add, remove, copy or move many members in one call, all or nothing.
#[utoipa::path(tag = "lists", params(("id" = String, Path)), request_body = BulkMembershipRequest, responses(
    (status = 200, body = BulkMembershipResponse),
    (status = 422, description = "Unknown members or target list", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/lists/{id}/members/bulk")]
pub async fn bulk_membership(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<BulkMembershipRequest>,
) -> ApiResult<web::Json<BulkMembershipResponse>> {
    caller.require(Scope::ListsWrite)?;
    let body = body.0;
    if body.member_ids.is_empty() || body.member_ids.len() > BULK_MAX {
        return Err(ApiError::field("member_ids", format!("name 1 to {BULK_MAX} members")));
    }
    let needs_target = matches!(body.action, BulkAction::Copy | BulkAction::Move);
    match (&body.to_list_id, needs_target) {
        (None, true) => {
            return Err(ApiError::field("to_list_id", "is required for copy and move"));
        }
        (Some(_), false) => return Err(ApiError::field("to_list_id", "is only for copy and move")),
        (Some(to), true) if to == id.as_str() => {
            return Err(ApiError::field("to_list_id", "is the same list"));
        }
        _ => {}
    }
    let mut tx = state.db.begin().await?;
    if lists::existing(&mut tx, &caller.org_id, std::slice::from_ref(&id)).await?.is_empty() {
        return Err(ApiError::not_found("list"));
    }
    if let Some(to) = &body.to_list_id {
        crate::api::members::check_list_ids(&mut tx, &caller.org_id, std::slice::from_ref(to), "to_list_id")
            .await
            .map_err(|_| ApiError::field("to_list_id", "no list with that id"))?;
    }
    let known = members::existing(&mut tx, &caller.org_id, &body.member_ids).await?;
    let unknown: Vec<FieldError> = body
        .member_ids
        .iter()
        .enumerate()
        .filter(|(_, m)| !known.contains(m))
        .take(20)
        .map(|(i, _)| FieldError::new(format!("member_ids[{i}]"), "no member with that id"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let affected = match body.action {
        BulkAction::Add => lists::add_members(&mut tx, &caller.org_id, &id, &known).await?,
        BulkAction::Remove => lists::remove_members(&mut tx, &id, &known).await?,
        BulkAction::Copy | BulkAction::Move => {
            let to = body.to_list_id.as_deref().unwrap_or_default();
            let in_source = lists::members_in(&mut tx, &id, &known).await?;
            let added = lists::add_members(&mut tx, &caller.org_id, to, &in_source).await?;
            if body.action == BulkAction::Move {
                lists::remove_members(&mut tx, &id, &in_source).await?;
            }
            added
        }
    };
    tx.commit().await?;
    Ok(web::Json(BulkMembershipResponse { affected }))
}

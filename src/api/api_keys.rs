//! API keys for school-information systems: scoped, optionally expiring, shown once.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, QueryParams};
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{Forbidden, NotFound, Validation};
use crate::api::{Checks, time};
use crate::auth::{Caller, tokens};
use crate::db::now_ms;
use crate::db::repositories::api_keys::{self, ApiKeyRow, NewApiKey};
use crate::domain::{Scope, char_len};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_api_keys).service(create_api_key).service(get_api_key).service(revoke_api_key);
}

/// A single-use key (a one-day pass) lives at most this long.
const SINGLE_USE_MAX: Duration = Duration::hours(24);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters, e.g. the system that will use it.
    #[schema(example = "校務支援システム")]
    pub name: String,
    #[schema(example = json!(["lists:read", "members:write"]))]
    pub scopes: Vec<Scope>,
    /// When the key stops working; never when absent (single-use keys: at most 24 hours,
    /// 24 hours when absent).
    pub expires_at: Option<DateTime<Utc>>,
    /// A one-day pass: the key stops working after its first send.
    #[serde(default)]
    pub single_use: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Used,
    Revoked,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: String,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "rk_live_Ab3x")]
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub single_use: bool,
    pub status: ApiKeyStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
    /// Send as `X-API-Key`. Shown only in this answer: only its digest is stored.
    pub key: String,
}

impl From<ApiKeyRow> for ApiKeyResponse {
    fn from(row: ApiKeyRow) -> ApiKeyResponse {
        let status = if row.revoked_at.is_some() {
            ApiKeyStatus::Revoked
        } else if row.consumed_at.is_some() {
            ApiKeyStatus::Used
        } else if row.expires_at.is_some_and(|e| e <= now_ms()) {
            ApiKeyStatus::Expired
        } else {
            ApiKeyStatus::Active
        };
        ApiKeyResponse {
            scopes: Scope::parse_json_list(&row.scopes),
            single_use: row.single_use != 0,
            status,
            expires_at: row.expires_at.map(time),
            last_used_at: row.last_used_at.map(time),
            used_at: row.consumed_at.map(time),
            revoked_at: row.revoked_at.map(time),
            created_at: time(row.created_at),
            id: row.id,
            name: row.name,
            prefix: row.prefix,
        }
    }
}

/// API keys of the organisation (never the keys themselves).
#[utoipa::path(tag = "api-keys", params(PageQuery), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, body = Page<ApiKeyResponse>),
    Forbidden,
))]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<PageQuery>,
) -> ApiResult<web::Json<Page<ApiKeyResponse>>> {
    caller.require_admin()?;
    let page = query.0.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    let rows = api_keys::list(&mut conn, &caller.org_id, page.after.as_deref(), page.fetch()).await?;
    Ok(web::Json(page.page(rows, |r| &r.id, ApiKeyResponse::from)))
}

/// Create a key. The answer is the only place the key appears.
#[utoipa::path(tag = "api-keys", request_body = CreateApiKeyRequest, security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 201, body = CreatedApiKey),
    Forbidden, Validation,
))]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateApiKeyRequest>,
) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let body = body.0;
    let now = Utc::now();
    let mut checks = Checks::default();
    let name = body.name.trim();
    if name.is_empty() || char_len(name) > 100 {
        checks.fail("name", "must be 1 to 100 characters");
    }
    if body.scopes.is_empty() {
        checks.fail("scopes", "must name at least one scope");
    }
    let expires_at = match (body.single_use, body.expires_at) {
        (_, Some(at)) if at <= now => {
            checks.fail("expires_at", "must be in the future");
            None
        }
        // A minute of slack for the clock of the client that computed "now + 24 h".
        (true, Some(at)) if at > now + SINGLE_USE_MAX + Duration::minutes(1) => {
            checks.fail("expires_at", "a single-use key lives at most 24 hours");
            None
        }
        (true, None) => Some(now + SINGLE_USE_MAX),
        (_, at) => at,
    };
    checks.finish()?;
    let mut scopes: Vec<Scope> = Vec::new();
    for scope in body.scopes {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let key = tokens::random_secret("rk_live_");
    let mut conn = state.db.pool.acquire().await?;
    let row = api_keys::create(
        &mut conn,
        NewApiKey {
            org_id: &caller.org_id,
            name,
            prefix: &key[..12],
            key_hash: &tokens::digest(&key),
            scopes: &Scope::to_json_list(&scopes),
            single_use: body.single_use,
            expires_at: expires_at.map(|t| t.timestamp_millis()),
            created_by: caller.user_id(),
        },
    )
    .await?;
    Ok(crate::idempotency::not_kept(HttpResponse::Created().json(CreatedApiKey { api_key: row.into(), key })))
}

#[utoipa::path(tag = "api-keys", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, body = ApiKeyResponse),
    NotFound,
))]
#[get("/api-keys/{id}")]
pub async fn get_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<ApiKeyResponse>> {
    caller.require_admin()?;
    let mut conn = state.db.pool.acquire().await?;
    let row = api_keys::find(&mut conn, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(web::Json(row.into()))
}

/// Revoke a key; it stops working at once. The record stays for the audit trail.
#[utoipa::path(tag = "api-keys", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 204, description = "Revoked"),
    NotFound,
))]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let mut conn = state.db.pool.acquire().await?;
    api_keys::revoke(&mut conn, &caller.org_id, &id).await.or_not_found("API key")?;
    Ok(HttpResponse::NoContent().finish())
}

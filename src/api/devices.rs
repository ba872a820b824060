//! A guardian's app devices (at most four): list, register, remove. The guardian app
//! registers its own through `app.rs`, with the same rules (`register_device_for`).

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::JsonBody;
use crate::api::members::respond;
use crate::api::problem_responses::{NotFound, Validation};
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::devices::{self, DeviceOutcome, DeviceRow};
use crate::db::repositories::members;
use crate::domain::Scope;
use crate::domain::member::{MAX_DEVICES, Platform, mask_token};
use crate::error::{ApiError, ApiResult, OrNotFound, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_devices).service(register_device).service(delete_device);
}

#[derive(Serialize, ToSchema)]
pub struct DeviceResponse {
    pub id: String,
    pub platform: Platform,
    /// Masked (`…a1b2`) unless the caller holds `contacts:read`. The guardian app sees a
    /// token whole only in the answer to registering it.
    #[schema(example = "…a1b2")]
    pub token: String,
    pub app_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn device_response(device: DeviceRow, unmasked: bool) -> DeviceResponse {
    DeviceResponse {
        platform: Platform::parse(&device.platform).unwrap_or(Platform::Fcm),
        token: if unmasked { device.token } else { mask_token(&device.token) },
        id: device.id,
        app_id: device.app_id,
        created_at: time(device.created_at),
        updated_at: time(device.updated_at),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    pub platform: Platform,
    /// The APNs device token or FCM registration token.
    #[schema(example = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f")]
    pub token: String,
    /// The app's bundle id / package name, when several apps share the service.
    pub app_id: Option<String>,
}

pub fn parse_device(body: &RegisterDeviceRequest) -> ApiResult<(String, Option<String>)> {
    let token = body.token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::field("token", "must be 1 to 4096 characters without spaces"));
    }
    let mut errors = Vec::new();
    let app_id = crate::domain::member::optional_text(&mut errors, "app_id", body.app_id.as_deref(), 200);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok((token.to_string(), app_id))
}

/// Registers a device for a member: shared by staff and the guardian app.
pub async fn register_device_for(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    member_id: &str,
    body: &RegisterDeviceRequest,
    unmasked: bool,
) -> ApiResult<DeviceResponse> {
    let (token, app_id) = parse_device(body)?;
    match devices::register_device(
        conn,
        org_id,
        member_id,
        body.platform.as_str(),
        &token,
        app_id.as_deref(),
        MAX_DEVICES,
    )
    .await?
    {
        DeviceOutcome::Registered(row) => Ok(device_response(row, unmasked)),
        DeviceOutcome::Full => Err(ApiError::Conflict {
            detail: format!("a guardian has at most {MAX_DEVICES} devices; remove one first"),
            field: Some("devices".into()),
        }),
    }
}

#[utoipa::path(tag = "members", params(("id" = String, Path)), responses(
    (status = 200, body = Vec<DeviceResponse>),
    NotFound,
))]
#[get("/members/{id}/devices")]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<DeviceResponse>>> {
    caller.require(Scope::MembersRead)?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(web::Json(respond(&mut conn, &caller, &id).await?.devices))
}

/// Register an app device (at most 4). The same token again updates it; a token of another
/// member moves here.
#[utoipa::path(tag = "members", params(("id" = String, Path)), request_body = RegisterDeviceRequest, responses(
    (status = 201, body = DeviceResponse),
    (status = 409, description = "The member has four devices", body = Problem, content_type = "application/problem+json"),
    NotFound, Validation,
))]
#[post("/members/{id}/devices")]
pub async fn register_device(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<RegisterDeviceRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    let mut tx = state.db.begin().await?;
    members::find(&mut tx, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let device = register_device_for(&mut tx, &caller.org_id, &id, &body.0, caller.has(Scope::ContactsRead)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(device))
}

#[utoipa::path(tag = "members", params(("id" = String, Path), ("device_id" = String, Path)), responses(
    (status = 204, description = "Removed"),
    NotFound,
))]
#[delete("/members/{id}/devices/{device_id}")]
pub async fn delete_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    let (id, device_id) = path.into_inner();
    let mut conn = state.db.pool.acquire().await?;
    devices::delete_device(&mut conn, &caller.org_id, &id, &device_id).await.or_not_found("device")?;
    Ok(HttpResponse::NoContent().finish())
}

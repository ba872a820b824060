use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", security(), responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers too, so a load balancer can route traffic here.
#[utoipa::path(tag = "operations", security(), responses(
    (status = 200, body = Health),
    (status = 503, description = "The database is unreachable", body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state.db.ping().await.map_err(|_| ApiError::Unavailable("the database does not answer".into()))?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

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

const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the database answers too, so a load balancer can route traffic here.
#[utoipa::path(tag = "operations", security(), responses(
    (status = 200, body = Health),
    (status = 503, description = "The database is unreachable", body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    // A pool with no working connection keeps trying to connect for its acquire timeout
    // (10 s); a load balancer's health check wants its answer sooner than that.
    let answered = tokio::time::timeout(READY_WITHIN, state.db.ping()).await;
    if !matches!(answered, Ok(Ok(()))) {
        return Err(ApiError::Unavailable("the database does not answer".into()));
    }
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

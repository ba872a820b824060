//! Grade promotion (進級): every guardian's grade moves up at once, with a dry run.

use std::collections::BTreeMap;

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::JsonBody;
use crate::api::problem_responses::Validation;
use crate::auth::Caller;
use crate::db::repositories::members::{self};
use crate::domain::{FieldError, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(promote);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// The attribute to change, usually `grade`.
    #[schema(example = "grade")]
    pub attribute: String,
    /// Old value → new value, applied at once (no cascade); null removes the attribute
    /// (e.g. graduates).
    #[schema(example = json!({"1": "2", "2": "3", "3": "4", "4": "5", "5": "6", "6": null}))]
    pub changes: BTreeMap<String, Option<String>>,
    /// Count only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PromoteResponse {
    /// Members matched per old value.
    #[schema(example = json!({"1": 120, "2": 118}))]
    pub matched: BTreeMap<String, i64>,
    pub total: i64,
    pub dry_run: bool,
}

/// Grade promotion (進級) for the whole organisation in one call.
#[utoipa::path(tag = "members", request_body = PromoteRequest, responses(
    (status = 200, body = PromoteResponse),
    Validation,
))]
#[post("/members/promote")]
pub async fn promote(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<PromoteRequest>,
) -> ApiResult<web::Json<PromoteResponse>> {
    caller.require(Scope::MembersWrite)?;
    let body = body.0;
    let mut errors = Vec::new();
    let attribute =
        crate::domain::member::parse_attributes(&mut errors, &[(body.attribute.as_str(), "x")]).into_keys().next();
    if body.changes.is_empty() {
        errors.push(FieldError::new("changes", "name at least one old value"));
    }
    for (from, to) in &body.changes {
        if let Some(to) = to {
            crate::domain::member::optional_text(&mut errors, &format!("changes.{from}"), Some(to), 200);
        }
    }
    let Some(attribute) = attribute.filter(|_| errors.is_empty()) else {
        let errors = errors
            .into_iter()
            .map(|e| if e.field.starts_with("attributes.") { FieldError::new("attribute", e.message) } else { e })
            .collect();
        return Err(ApiError::Validation(errors));
    };
    let mut tx = state.db.begin().await?;
    let matched = members::remap_attribute(&mut tx, &caller.org_id, &attribute, &body.changes, body.dry_run).await?;
    tx.commit().await?;
    Ok(web::Json(PromoteResponse { total: matched.values().sum(), matched, dry_run: body.dry_run }))
}

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem_responses::Unauthorized;
use crate::auth::{Actor, Caller};
use crate::db::repositories::{api_keys, organizations, users};
use crate::domain::{Role, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me);
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    User,
    ApiKey,
}

/// Who the credentials belong to.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub kind: CallerKind,
    /// The user's or the API key's id.
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub name: String,
    /// Users only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Users only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// What these credentials may do: the role's scopes plus granted permissions, or the
    /// API key's scopes.
    pub scopes: Vec<Scope>,
}

/// The caller: user or API key, organisation and effective scopes.
#[utoipa::path(tag = "auth", responses(
    (status = 200, body = MeResponse),
    Unauthorized,
))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> ApiResult<web::Json<MeResponse>> {
    let mut conn = state.db.pool.acquire().await?;
    let org =
        organizations::find(&mut conn, &caller.org_id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
    let scopes = Scope::ALL.into_iter().filter(|s| caller.has(*s)).collect();
    let me = match &caller.actor {
        Actor::Staff { user_id, role, .. } => {
            let user =
                users::find(&mut conn, &caller.org_id, user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
            MeResponse {
                kind: CallerKind::User,
                id: user.id,
                org_id: org.id,
                org_name: org.name,
                name: user.name,
                email: Some(user.email),
                role: Some(*role),
                scopes,
            }
        }
        Actor::ApiKey { key_id, .. } => {
            let key = api_keys::find(&mut conn, &caller.org_id, key_id)
                .await?
                .ok_or_else(|| ApiError::not_found("API key"))?;
            MeResponse {
                kind: CallerKind::ApiKey,
                id: key.id,
                org_id: org.id,
                org_name: org.name,
                name: key.name,
                email: None,
                role: None,
                scopes,
            }
        }
    };
    Ok(web::Json(me))
}

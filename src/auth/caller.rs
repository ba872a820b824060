use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::auth::tokens;
use crate::db::now_ms;
use crate::db::repositories::{api_keys, sessions};
use crate::domain::{Role, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// An authenticated caller, always inside one organisation.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub actor: Actor,
}

#[derive(Debug, Clone)]
pub enum Actor {
    Staff { user_id: String, role: Role, permissions: Vec<Scope>, session_id: String },
    ApiKey { key_id: String, scopes: Vec<Scope>, single_use: bool },
}

impl Caller {
    pub fn has(&self, scope: Scope) -> bool {
        match &self.actor {
            Actor::Staff { role, permissions, .. } => role.grants(scope) || permissions.contains(&scope),
            Actor::ApiKey { scopes, .. } => scopes.contains(&scope),
        }
    }

    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {} scope", scope.as_str())))
        }
    }

    /// Managing staff and API keys is for admins signed in as people, never for API keys.
    pub fn require_admin(&self) -> ApiResult<()> {
        match &self.actor {
            Actor::Staff { role: Role::Admin, .. } => Ok(()),
            _ => Err(ApiError::Forbidden("only an admin may do this".into())),
        }
    }

    /// The staff session the request came with.
    pub fn session_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::Staff { session_id, .. } => Some(session_id),
            Actor::ApiKey { .. } => None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::Staff { user_id, .. } => Some(user_id),
            Actor::ApiKey { .. } => None,
        }
    }

    /// Call where a message is sent: a single-use key (a one-day pass) sends once, then
    /// stops working. Runs in the caller's transaction so a failed send does not spend it.
    pub async fn spend_single_use(&self, conn: &mut sqlx::AnyConnection) -> ApiResult<()> {
        if let Actor::ApiKey { key_id, single_use: true, .. } = &self.actor
            && !api_keys::consume(conn, key_id).await?
        {
            return Err(ApiError::Unauthorized("this single-use API key has been used"));
        }
        Ok(())
    }
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

async fn authenticate(
    state: web::Data<AppState>,
    bearer: Option<String>,
    api_key: Option<String>,
) -> ApiResult<Caller> {
    let mut conn = state.db.pool.acquire().await.map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(token) = bearer {
        let claims = state
            .jwt
            .verify(&token)
            .filter(|c| c.typ == tokens::STAFF)
            .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
        let principal = sessions::principal(&mut conn, &claims.sid, &claims.sub)
            .await?
            .ok_or(ApiError::Unauthorized("this session has ended; sign in again"))?;
        let role = Role::parse(&principal.role)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role in database")))?;
        return Ok(Caller {
            org_id: principal.org_id,
            actor: Actor::Staff {
                user_id: principal.user_id,
                role,
                permissions: Scope::parse_json_list(&principal.permissions),
                session_id: claims.sid,
            },
        });
    }
    if let Some(key) = api_key {
        let now = now_ms();
        let row = api_keys::find_usable(&mut conn, &tokens::digest(&key), now)
            .await?
            .ok_or(ApiError::Unauthorized("unknown, revoked, expired or used API key"))?;
        api_keys::touch(&mut conn, &row.id, now).await?;
        return Ok(Caller {
            org_id: row.org_id,
            actor: Actor::ApiKey {
                key_id: row.id,
                scopes: Scope::parse_json_list(&row.scopes),
                single_use: row.single_use != 0,
            },
        });
    }
    Err(ApiError::Unauthorized("sign in (Authorization: Bearer) or send an X-API-Key"))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Caller>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = bearer(req).map(str::to_string);
        let api_key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
            authenticate(state, bearer, api_key).await
        })
    }
}

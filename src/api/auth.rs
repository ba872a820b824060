//! Staff sign-in: password login (JSON, or the OAuth2 password grant that Swagger UI's
//! Authorize dialog speaks), refresh-token rotation with reuse detection, logout.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{FormBody, JsonBody};
use crate::api::problem_responses::{TooManyRequests, Unauthorized};
use crate::auth::tokens::{self, ACCESS_TTL_SECS, REFRESH_TTL_MS};
use crate::auth::{Actor, Caller, password};
use crate::db::now_ms;
use crate::db::repositories::{sessions, users};
use crate::error::{ApiError, ApiResult, Problem};
use crate::idempotency::not_kept;
use crate::state::AppState;
use crate::throttle;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login).service(token).service(refresh).service(logout);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "admin@school.example.jp")]
    pub email: String,
    #[schema(example = "correct horse battery", format = Password)]
    pub password: String,
}

/// The OAuth2 resource-owner password grant (RFC 6749 §4.3). Extra fields that OAuth2
/// clients send (`client_id`, `scope`) are accepted and ignored.
#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    #[schema(example = "password")]
    pub grant_type: String,
    #[schema(example = "admin@school.example.jp")]
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Single use: each refresh answers a new one. Presenting a used one ends the session.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

fn required(field: &str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty() { Err(ApiError::field(field, "is required")) } else { Ok(()) }
}

/// Signs in the account with this address whose password matches. Addresses are unique
/// per organisation only, so one address may hold accounts at several schools; each is
/// checked (the oldest first wins if two share the password). The attempt is counted for
/// (address, client) and for the client before any password is checked, and no database
/// connection is held while argon2 runs. Unknown addresses cost the same work and get the
/// same answer as wrong passwords.
async fn sign_in(state: &AppState, client: String, email: &str, password: &str) -> ApiResult<TokenResponse> {
    let email_key = email.trim().to_lowercase();
    let pair =
        throttle::reserve(state, &throttle::SIGN_IN, &format!("{}:{client}", tokens::digest(&email_key))).await?;
    let from_client = match throttle::reserve(state, &throttle::SIGN_IN_CLIENT, &client).await {
        Ok(reservation) => reservation,
        Err(refused) => {
            pair.refund(state).await?;
            return Err(refused);
        }
    };
    let mut candidates = {
        let mut conn = state.db.pool.acquire().await?;
        users::find_for_login(&mut conn, &email_key).await?
    };
    let hashes = candidates.iter().map(|row| row.password_hash.clone()).collect();
    let Some(found) = password::first_match(password.to_string(), hashes).await? else {
        tracing::info!(client_ip = %client, "sign-in failed");
        return Err(ApiError::InvalidGrant);
    };
    let user = candidates.swap_remove(found).user;
    pair.forgive(state).await?;
    from_client.refund(state).await?;
    let mut tx = state.db.begin().await?;
    let session_id = sessions::create(&mut tx, &user.id, now_ms() + REFRESH_TTL_MS).await?;
    let response = issue(state, &mut tx, &user.id, &user.org_id, &user.role, &session_id).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok(response)
}

/// A new access token and a new refresh token in the session.
async fn issue(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    org_id: &str,
    role: &str,
    session_id: &str,
) -> ApiResult<TokenResponse> {
    let refresh_token = tokens::random_secret("rk_rt_");
    sessions::add_refresh_token(conn, session_id, &tokens::digest(&refresh_token)).await?;
    Ok(TokenResponse {
        access_token: state.jwt.issue(user_id, org_id, role, session_id)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    })
}

/// Sign in with e-mail address and password.
#[utoipa::path(tag = "auth", request_body = LoginRequest, security(), responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "Wrong address or password", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A field is missing or empty", body = Problem, content_type = "application/problem+json"),
    TooManyRequests,
))]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    required("email", &body.email)?;
    required("password", &body.password)?;
    let tokens = sign_in(&state, throttle::client(&req), &body.email, &body.password).await?;
    Ok(not_kept(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(tokens)))
}

/// The same sign-in as an OAuth2 password grant, for Swagger UI's Authorize dialog and
/// OAuth2 client libraries.
#[utoipa::path(tag = "auth", request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(), responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "Wrong address or password (`error: invalid_grant`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A field is missing, or `grant_type` is not `password`", body = Problem, content_type = "application/problem+json"),
    TooManyRequests,
))]
#[post("/auth/token")]
pub async fn token(state: web::Data<AppState>, req: HttpRequest, form: FormBody<TokenForm>) -> ApiResult<HttpResponse> {
    let form = form.0;
    if form.grant_type != "password" {
        return Err(ApiError::field("grant_type", "only the password grant is supported"));
    }
    required("username", &form.username)?;
    required("password", &form.password)?;
    let tokens = sign_in(&state, throttle::client(&req), &form.username, &form.password).await?;
    Ok(not_kept(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(tokens)))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting one
/// again (a sign that it was copied) ends the whole session.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, security(), responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
))]
#[post("/auth/refresh")]
pub async fn refresh(state: web::Data<AppState>, body: JsonBody<RefreshRequest>) -> ApiResult<HttpResponse> {
    let presented = tokens::digest(body.0.refresh_token.trim());
    let mut tx = state.db.begin().await?;
    let row = sessions::find_refresh_token(&mut tx, &presented)
        .await?
        .ok_or(ApiError::Unauthorized("unknown refresh token"))?;
    if row.revoked_at.is_some() || row.expires_at <= now_ms() {
        return Err(ApiError::Unauthorized("this session has ended; sign in again"));
    }
    if row.used_at.is_some() || !sessions::use_refresh_token(&mut tx, &row.id).await? {
        sessions::revoke(&mut tx, &row.session_id).await?;
        tx.commit().await?;
        tracing::warn!(session_id = %row.session_id, "refresh token reused; session revoked");
        return Err(ApiError::Unauthorized("this refresh token was already used; the session has been ended"));
    }
    let principal = sessions::principal(&mut tx, &row.session_id, &row.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("this session has ended; sign in again"))?;
    let tokens =
        issue(&state, &mut tx, &principal.user_id, &principal.org_id, &principal.role, &row.session_id).await?;
    tx.commit().await?;
    Ok(not_kept(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(tokens)))
}

/// End the session: its access token and refresh tokens stop working at once.
#[utoipa::path(tag = "auth", security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 204, description = "Signed out"),
    (status = 403, description = "API keys have no session to end", body = Problem, content_type = "application/problem+json"),
    Unauthorized,
))]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let Actor::Staff { session_id, .. } = &caller.actor else {
        return Err(ApiError::Forbidden("API keys have no session; revoke the key instead".into()));
    };
    let mut conn = state.db.pool.acquire().await?;
    sessions::revoke(&mut conn, session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

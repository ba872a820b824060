//! Staff accounts of the caller's organisation. Admins manage them; everyone may change
//! their own name and password.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, QueryParams};
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{Forbidden, NotFound, TooManyRequests, Validation};
use crate::api::{Checks, time};
use crate::auth::{Caller, password};
use crate::db::repositories::users::{self, NewUser, UserChanges, UserRow};
use crate::db::repositories::{organizations, sessions};
use crate::domain::staff::STAFF_PERMISSIONS;
use crate::domain::{EmailAddress, Password, PersonName, Role, Scope};
use crate::error::{ApiError, ApiResult, OrNotFound, Problem};
use crate::state::AppState;
use crate::throttle;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users).service(create_user).service(get_user).service(update_user).service(delete_user);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "sato@school.example.jp")]
    pub email: String,
    /// 10 to 200 characters.
    #[schema(example = "a long passphrase", format = Password, min_length = 10, max_length = 200)]
    pub password: String,
    /// 1 to 50 characters.
    #[schema(example = "佐藤 先生")]
    pub name: String,
    pub role: Role,
    /// Beyond the role; only `contacts:read` is grantable.
    #[serde(default)]
    #[schema(example = json!(["contacts:read"]))]
    pub permissions: Vec<Scope>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub name: Option<String>,
    /// 10 to 200 characters.
    #[schema(format = Password, min_length = 10, max_length = 200)]
    pub password: Option<String>,
    /// Required with `password` when you change your own: a stolen access token alone
    /// cannot take the account over. An admin resetting someone else's needs none.
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// Admins only; the last admin cannot be demoted.
    pub role: Option<Role>,
    /// Admins only; replaces the list.
    pub permissions: Option<Vec<Scope>>,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub permissions: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for UserResponse {
    fn from(row: UserRow) -> UserResponse {
        UserResponse {
            permissions: Scope::parse_json_list(&row.permissions),
            role: Role::parse(&row.role).unwrap_or(Role::Viewer),
            id: row.id,
            email: row.email,
            name: row.name,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
        }
    }
}

fn check_permissions(checks: &mut Checks, permissions: &[Scope]) {
    for (i, scope) in permissions.iter().enumerate() {
        if !STAFF_PERMISSIONS.contains(scope) {
            checks.fail(
                &format!("permissions[{i}]"),
                format!("{} comes with a role; only contacts:read is granted separately", scope.as_str()),
            );
        }
    }
}

/// Staff of the organisation, oldest first.
#[utoipa::path(tag = "users", params(PageQuery), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, body = Page<UserResponse>),
    Forbidden,
))]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<PageQuery>,
) -> ApiResult<web::Json<Page<UserResponse>>> {
    caller.require_admin()?;
    let page = query.0.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    let rows = users::list(&mut conn, &caller.org_id, page.after.as_deref(), page.fetch()).await?;
    Ok(web::Json(page.page(rows, |r| &r.id, UserResponse::from)))
}

/// Add a staff member.
#[utoipa::path(tag = "users", request_body = CreateUserRequest, security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 201, body = UserResponse),
    (status = 409, description = "The address belongs to another account", body = Problem, content_type = "application/problem+json"),
    Forbidden, Validation,
))]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let body = body.0;
    let mut checks = Checks::default();
    let email = checks.check("email", EmailAddress::parse(&body.email));
    let password = checks.check("password", Password::parse(&body.password));
    let name = checks.check("name", PersonName::parse(&body.name));
    check_permissions(&mut checks, &body.permissions);
    checks.finish()?;
    let (Some(email), Some(password), Some(name)) = (email, password, name) else { unreachable!("checked above") };
    let password_hash = password::hash(password.expose().to_string()).await?;
    let mut conn = state.db.pool.acquire().await?;
    let row = users::create(
        &mut conn,
        NewUser {
            org_id: &caller.org_id,
            email: email.as_str(),
            email_key: &email.key(),
            name: name.as_str(),
            role: body.role.as_str(),
            permissions: &Scope::to_json_list(&body.permissions),
            password_hash: &password_hash,
        },
    )
    .await?;
    // The request held a password.
    Ok(crate::idempotency::not_kept(HttpResponse::Created().json(UserResponse::from(row))))
}

/// One staff member; admins see anyone, others only themselves.
#[utoipa::path(tag = "users", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, body = UserResponse),
    NotFound,
))]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<UserResponse>> {
    if caller.user_id() != Some(id.as_str()) {
        caller.require_admin()?;
    }
    let mut conn = state.db.pool.acquire().await?;
    let row = users::find(&mut conn, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(web::Json(row.into()))
}

/// Change a staff member. Name and password: the member or an admin; role and
/// permissions: an admin. An organisation always keeps at least one admin.
///
/// A new password ends the member's other sessions (all of them when an admin sets it).
#[utoipa::path(tag = "users", params(("id" = String, Path)), request_body = UpdateUserRequest, security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, body = UserResponse),
    (status = 409, description = "This would leave the organisation without an admin", body = Problem, content_type = "application/problem+json"),
    Forbidden, NotFound, Validation, TooManyRequests,
))]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<UpdateUserRequest>,
) -> ApiResult<web::Json<UserResponse>> {
    let body = body.0;
    let own = caller.user_id() == Some(id.as_str());
    if !own || body.role.is_some() || body.permissions.is_some() {
        caller.require_admin()?;
    }
    let mut checks = Checks::default();
    let name = body.name.as_deref().and_then(|n| checks.check("name", PersonName::parse(n)));
    let password = body.password.as_deref().and_then(|p| checks.check("password", Password::parse(p)));
    if let Some(permissions) = &body.permissions {
        check_permissions(&mut checks, permissions);
    }
    if password.is_some() && own && body.current_password.is_none() {
        checks.fail("current_password", "is required to change your own password");
    }
    checks.finish()?;
    if let (Some(_), true, Some(current)) = (&password, own, &body.current_password) {
        // Counted per sign-in session before the check: a stolen access token gets as few
        // guesses as a client signing in.
        let session = caller.session_id().unwrap_or_default();
        let attempt = throttle::reserve(&state, &throttle::CURRENT_PASSWORD, session).await?;
        let stored = {
            let mut conn = state.db.pool.acquire().await?;
            users::password_hash(&mut conn, &caller.org_id, &id).await?
        };
        if !password::verify(current.clone(), stored).await? {
            return Err(ApiError::field("current_password", "is not your current password"));
        }
        attempt.forgive(&state).await?;
    }
    let password_hash = match password {
        Some(p) => Some(password::hash(p.expose().to_string()).await?),
        None => None,
    };
    let mut tx = state.db.begin().await?;
    if body.role.is_some_and(|r| r != Role::Admin) {
        ensure_not_last_admin(&mut tx, &caller.org_id, &id, "role").await?;
    }
    let row = users::update(
        &mut tx,
        &caller.org_id,
        &id,
        UserChanges {
            name: name.map(|n| n.as_str().to_string()),
            role: body.role.map(|r| r.as_str().to_string()),
            permissions: body.permissions.as_deref().map(Scope::to_json_list),
            password_hash,
        },
    )
    .await
    .or_not_found("user")?;
    if body.password.is_some() {
        let keep = if own { caller.session_id() } else { None };
        sessions::revoke_all_of(&mut tx, &id, keep).await?;
    }
    tx.commit().await?;
    Ok(web::Json(row.into()))
}

/// Remove a staff member; their sessions end with them.
#[utoipa::path(tag = "users", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 409, description = "The last admin cannot be removed", body = Problem, content_type = "application/problem+json"),
    Forbidden, NotFound,
))]
#[delete("/users/{id}")]
pub async fn delete_user(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let mut tx = state.db.begin().await?;
    ensure_not_last_admin(&mut tx, &caller.org_id, &id, "id").await?;
    users::delete(&mut tx, &caller.org_id, &id).await.or_not_found("user")?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Refuses when `id` is the organisation's only admin. The organisation row is locked
/// first, so two admins demoting each other at once cannot both succeed.
async fn ensure_not_last_admin(conn: &mut sqlx::AnyConnection, org_id: &str, id: &str, field: &str) -> ApiResult<()> {
    organizations::lock(conn, org_id).await?;
    let target = users::find(conn, org_id, id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    if target.role == Role::Admin.as_str() && users::count_admins(conn, org_id).await? <= 1 {
        return Err(ApiError::Conflict {
            detail: "an organisation must keep at least one admin".into(),
            field: Some(field.into()),
        });
    }
    Ok(())
}

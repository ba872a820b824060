//! Guardian self-service through the official app, and the staff side of it: invitations,
//! join codes (self-registration, approved by staff) and the double opt-in of addresses
//! that guardians add themselves.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::confirmations;
use crate::api::devices::{DeviceResponse, RegisterDeviceRequest, device_response, register_device_for};
use crate::api::extract::JsonBody;
use crate::api::members::{EmailResponse, member_response};
use crate::api::problem_responses::{NotFound, TooManyRequests, Unauthorized, Validation};
use crate::auth::tokens::{self, GUARDIAN_TTL_SECS};
use crate::auth::{Caller, Guardian};
use crate::db::now_ms;
use crate::db::repositories::members::MemberRecord;
use crate::db::repositories::{devices, guardians, lists, members, organizations};
use crate::delivery::notices;
use crate::domain::member::{EmailStatus, MAX_EMAILS, MemberStatus, RawProfile};
use crate::domain::{EmailAddress, Scope};
use crate::error::{ApiError, ApiResult, OrNotFound, Problem};
use crate::state::AppState;
use crate::throttle;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_invitation)
        .service(set_join_code)
        .service(remove_join_code)
        .service(open_session)
        .service(register)
        .service(logout)
        .service(get_profile)
        .service(update_profile)
        .service(add_email)
        .service(remove_email)
        .service(add_device)
        .service(remove_device);
}

/// Crockford's base32 without I, L, O, U: codes people read off paper and type.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const INVITATION_TTL: Duration = Duration::days(14);

fn random_code(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect()
}

/// Upper-cases and drops separators, so `abcd-efgh-jkmn` and `ABCDEFGHJKMN` are one code.
fn normalise_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

#[derive(Serialize, ToSchema)]
pub struct InvitationResponse {
    /// For the guardian to type into the app, once; valid 14 days.
    #[schema(example = "7KQ2-M9XD-4HTA")]
    pub code: String,
    /// The same as a link the app opens.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Invite a guardian to the app. Print or send the code; it works once. Needs
/// `members:write` and `contacts:read`: the code opens an app session as the guardian,
/// which sees their addresses. The guardian's earlier unused codes stop working and their
/// open app session ends (how staff sign out a lost phone).
#[utoipa::path(tag = "app", params(("id" = String, Path)), responses(
    (status = 201, body = InvitationResponse),
    (status = 403, description = "The caller lacks `members:write` or `contacts:read`", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The guardian is suspended: resume them first", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/members/{id}/invitations")]
pub async fn create_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MembersWrite)?;
    caller.require(Scope::ContactsRead)?;
    let mut tx = state.db.begin().await?;
    if !members::lock(&mut tx, &caller.org_id, &id).await? {
        return Err(ApiError::not_found("member"));
    }
    let member = members::find(&mut tx, &caller.org_id, &id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    if MemberStatus::parse(&member.row.status) == Some(MemberStatus::Suspended) {
        return Err(ApiError::Conflict {
            detail: "a suspended guardian cannot be invited; resume them first".into(),
            field: Some("status".into()),
        });
    }
    guardians::void_unused_invitations(&mut tx, &id).await?;
    guardians::end_sessions(&mut tx, &id).await?;
    let code = random_code(12);
    let expires_at = Utc::now() + INVITATION_TTL;
    guardians::create_invitation(
        &mut tx,
        &caller.org_id,
        &id,
        &tokens::digest(&code),
        expires_at.timestamp_millis(),
        caller.user_id(),
    )
    .await?;
    tx.commit().await?;
    let display = format!("{}-{}-{}", &code[..4], &code[4..8], &code[8..]);
    let url = state.config.public_link(&format!("invite/{display}"));
    Ok(crate::idempotency::not_kept(HttpResponse::Created().json(InvitationResponse {
        code: display,
        url,
        expires_at,
    })))
}

#[derive(Serialize, ToSchema)]
pub struct JoinCodeResponse {
    /// Guardians who register in the app with this code join the list as pending.
    #[schema(example = "R8K2QW4N")]
    pub join_code: String,
}

/// Give the list a new join code (the old one stops working).
#[utoipa::path(tag = "app", params(("id" = String, Path)), responses(
    (status = 200, body = JoinCodeResponse),
    NotFound,
))]
#[put("/lists/{id}/join-code")]
pub async fn set_join_code(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<JoinCodeResponse>> {
    caller.require(Scope::ListsWrite)?;
    let join_code = random_code(8);
    let mut conn = state.db.pool.acquire().await?;
    lists::set_join_code(&mut conn, &caller.org_id, &id, Some(&join_code)).await.or_not_found("list")?;
    Ok(web::Json(JoinCodeResponse { join_code }))
}

/// Stop self-registration for the list.
#[utoipa::path(tag = "app", params(("id" = String, Path)), responses(
    (status = 204, description = "The list has no join code"),
    NotFound,
))]
#[delete("/lists/{id}/join-code")]
pub async fn remove_join_code(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::ListsWrite)?;
    let mut conn = state.db.pool.acquire().await?;
    lists::set_join_code(&mut conn, &caller.org_id, &id, None).await.or_not_found("list")?;
    Ok(HttpResponse::NoContent().finish())
}

/// A guardian's own view of themselves: their addresses unmasked, their devices' tokens
/// masked (an app knows its own token; it need not learn the others'), nothing of other
/// guardians.
#[derive(Serialize, ToSchema)]
pub struct AppProfile {
    pub id: String,
    pub org_name: String,
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    /// `pending` until staff approve a self-registration.
    pub status: MemberStatus,
    pub emails: Vec<EmailResponse>,
    pub devices: Vec<DeviceResponse>,
}

#[derive(Serialize, ToSchema)]
pub struct AppSessionResponse {
    /// Send as `Authorization: Bearer …` to `/api/v1/app/…`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: i64,
    pub profile: AppProfile,
}

async fn profile(conn: &mut sqlx::AnyConnection, org_id: &str, member_id: &str) -> ApiResult<AppProfile> {
    let record: MemberRecord =
        members::find(conn, org_id, member_id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let org = organizations::find(conn, org_id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
    let devices = record.devices.iter().cloned().map(|d| device_response(d, false)).collect();
    let member = member_response(record, true);
    Ok(AppProfile {
        id: member.id,
        org_name: org.name,
        name: member.name,
        name_kana: member.name_kana,
        student_name: member.student_name,
        relation: member.relation,
        locale: member.locale,
        status: member.status,
        emails: member.emails,
        devices,
    })
}

async fn start_session(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    member_id: &str,
) -> ApiResult<AppSessionResponse> {
    let expires_at = now_ms() + GUARDIAN_TTL_SECS * 1000;
    let session_id = guardians::create_session(conn, org_id, member_id, expires_at).await?;
    Ok(AppSessionResponse {
        access_token: state.jwt.issue_guardian(member_id, org_id, &session_id)?,
        token_type: "Bearer",
        expires_in: GUARDIAN_TTL_SECS,
        profile: profile(conn, org_id, member_id).await?,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// The invitation code, with or without dashes.
    #[schema(example = "7KQ2-M9XD-4HTA")]
    pub code: String,
}

/// Sign the app in with an invitation code (once per code). The guardian's other app
/// sessions end (one app session per guardian), and their confirmed addresses are told that
/// an app signed in as them.
#[utoipa::path(tag = "app", request_body = OpenSessionRequest, security(), responses(
    (status = 201, body = AppSessionResponse),
    (status = 401, description = "Unknown, used or expired code", body = Problem, content_type = "application/problem+json"),
    TooManyRequests,
))]
#[post("/app/session")]
pub async fn open_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<OpenSessionRequest>,
) -> ApiResult<HttpResponse> {
    let code = normalise_code(&body.0.code);
    let attempt = throttle::reserve(&state, &throttle::GUARDIAN_CODES, &throttle::client(&req)).await?;
    let mut tx = state.db.begin().await?;
    let (org_id, member_id) = guardians::redeem_invitation(&mut tx, &tokens::digest(&code))
        .await?
        .ok_or(ApiError::Unauthorized("this invitation code is unknown, used or expired"))?;
    guardians::end_sessions(&mut tx, &member_id).await?;
    let session = start_session(&state, &mut tx, &org_id, &member_id).await?;
    tx.commit().await?;
    attempt.refund(&state).await?;
    let confirmed: Vec<EmailAddress> = session
        .profile
        .emails
        .iter()
        .filter(|e| e.status == EmailStatus::Active)
        .filter_map(|e| EmailAddress::parse(&e.address).ok())
        .collect();
    notices::app_signed_in(&state, &session.profile.org_name, &session.profile.name, &confirmed).await;
    Ok(crate::idempotency::not_kept(HttpResponse::Created().json(session)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The list's join code.
    pub join_code: String,
    #[schema(example = "山田 花子")]
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    /// Optional; receives a confirmation link and nothing else until confirmed.
    pub email: Option<String>,
}

/// Register in the app with a list's join code. The guardian is `pending` and receives
/// nothing until staff approve.
#[utoipa::path(tag = "app", request_body = RegisterRequest, security(), responses(
    (status = 201, body = AppSessionResponse),
    (status = 401, description = "Unknown join code", body = Problem, content_type = "application/problem+json"),
    Validation, TooManyRequests,
))]
#[post("/app/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let emails: Vec<(String, &str)> = body.email.iter().map(|e| ("email".to_string(), e.as_str())).collect();
    let profile = RawProfile {
        name: Some(&body.name),
        name_kana: body.name_kana.as_deref(),
        student_name: body.student_name.as_deref(),
        relation: body.relation.as_deref(),
        locale: body.locale.as_deref(),
        external_id: None,
        emails,
        attributes: vec![],
    }
    .parse()?;
    let join_code = normalise_code(&body.join_code);
    let client = throttle::client(&req);
    let attempt = throttle::reserve(&state, &throttle::GUARDIAN_CODES, &client).await?;
    if !profile.emails.is_empty() {
        let _mail = throttle::reserve(&state, &throttle::CONFIRMATION_MAILS_PER_CLIENT, &client).await?;
    }
    let mut tx = state.db.begin().await?;
    let (org_id, list_id) = lists::find_by_join_code(&mut tx, &join_code)
        .await?
        .ok_or(ApiError::Unauthorized("this join code is unknown; ask the school for the current one"))?;
    let addresses = profile.emails.clone();
    let without_emails = crate::domain::member::MemberProfile { emails: vec![], ..profile };
    // Inserted without addresses first: an address a guardian gives starts unconfirmed.
    let member_id = members::insert(&mut tx, &org_id, &without_emails, MemberStatus::Pending).await?;
    lists::add_members(&mut tx, &org_id, &list_id, std::slice::from_ref(&member_id)).await?;
    let mut confirmations = Vec::new();
    if !addresses.is_empty() {
        let profile = crate::domain::member::MemberProfile { emails: addresses.clone(), ..without_emails };
        members::update_profile(&mut tx, &org_id, &member_id, &profile, EmailStatus::Unconfirmed).await?;
        for address in addresses {
            let token = confirmations::prepare(&mut tx, &org_id, &member_id, &address).await?;
            confirmations.push((address, token));
        }
    }
    let session = start_session(&state, &mut tx, &org_id, &member_id).await?;
    tx.commit().await?;
    for (address, token) in confirmations {
        confirmations::send(&state, &address, &token).await;
    }
    attempt.refund(&state).await?;
    tracing::info!(member_id = %member_id, "guardian registered with a join code; pending approval");
    Ok(crate::idempotency::not_kept(HttpResponse::Created().json(session)))
}

/// Counts a confirmation mail a guardian's request is about to send, per app session and
/// per client (a day each; see `throttle`): anyone may type any address.
pub async fn count_confirmation_mail(
    state: &AppState,
    req: &HttpRequest,
    guardian: &Guardian,
) -> ApiResult<[throttle::Reservation; 2]> {
    let session = throttle::reserve(state, &throttle::CONFIRMATION_MAILS_PER_SESSION, &guardian.session_id).await?;
    let client = match throttle::reserve(state, &throttle::CONFIRMATION_MAILS_PER_CLIENT, &throttle::client(req)).await
    {
        Ok(client) => client,
        Err(refused) => {
            session.refund(state).await?;
            return Err(refused);
        }
    };
    Ok([session, client])
}

/// End this app session.
#[utoipa::path(tag = "app", security(("bearer" = [])), responses(
    (status = 204, description = "Signed out"),
    Unauthorized,
))]
#[post("/app/logout")]
pub async fn logout(state: web::Data<AppState>, guardian: Guardian) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    guardians::revoke_session(&mut conn, &guardian.session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "app", security(("bearer" = [])), responses(
    (status = 200, body = AppProfile),
    Unauthorized,
))]
#[get("/app/me")]
pub async fn get_profile(state: web::Data<AppState>, guardian: Guardian) -> ApiResult<web::Json<AppProfile>> {
    let mut conn = state.db.pool.acquire().await?;
    Ok(web::Json(profile(&mut conn, &guardian.org_id, &guardian.member_id).await?))
}

/// Only the fields present change; an empty string clears. Attributes, lists and the
/// external id belong to the school and are not changed here.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
}

#[utoipa::path(tag = "app", request_body = UpdateProfileRequest, security(("bearer" = [])), responses(
    (status = 200, body = AppProfile),
    Validation,
))]
#[patch("/app/me")]
pub async fn update_profile(
    state: web::Data<AppState>,
    guardian: Guardian,
    body: JsonBody<UpdateProfileRequest>,
) -> ApiResult<web::Json<AppProfile>> {
    let body = body.0;
    let mut tx = state.db.begin().await?;
    let current = members::find(&mut tx, &guardian.org_id, &guardian.member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let stored = current.profile();
    let pick = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
    let name_kana = pick(&body.name_kana, &stored.name_kana);
    let student_name = pick(&body.student_name, &stored.student_name);
    let relation = pick(&body.relation, &stored.relation);
    let locale = pick(&body.locale, &stored.locale);
    let emails: Vec<(String, &str)> =
        stored.emails.iter().enumerate().map(|(i, e)| (format!("emails[{i}]"), e.as_str())).collect();
    let profile = RawProfile {
        name: Some(body.name.as_deref().unwrap_or(&stored.name)),
        name_kana: name_kana.as_deref(),
        student_name: student_name.as_deref(),
        relation: relation.as_deref(),
        locale: locale.as_deref(),
        external_id: stored.external_id.as_deref(),
        emails,
        attributes: stored.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    }
    .parse()?;
    members::update_profile(&mut tx, &guardian.org_id, &guardian.member_id, &profile, EmailStatus::Unconfirmed).await?;
    let answer = profile_of(&mut tx, &guardian).await?;
    tx.commit().await?;
    Ok(web::Json(answer))
}

async fn profile_of(conn: &mut sqlx::AnyConnection, guardian: &Guardian) -> ApiResult<AppProfile> {
    profile(conn, &guardian.org_id, &guardian.member_id).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddEmailRequest {
    #[schema(example = "hanako.yamada@example.jp")]
    pub address: String,
}

/// Add an address (at most 4). It receives a confirmation link and nothing else until the
/// link is opened.
#[utoipa::path(tag = "app", request_body = AddEmailRequest, security(("bearer" = [])), responses(
    (status = 201, body = AppProfile),
    (status = 409, description = "Already one of the guardian's addresses", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Not an address, or a fifth one", body = Problem, content_type = "application/problem+json"),
    TooManyRequests,
))]
#[post("/app/me/emails")]
pub async fn add_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    guardian: Guardian,
    body: JsonBody<AddEmailRequest>,
) -> ApiResult<HttpResponse> {
    let address = EmailAddress::parse(&body.0.address).map_err(|e| ApiError::field("address", e.to_string()))?;
    let counted = count_confirmation_mail(&state, &req, &guardian).await?;
    let added = add_unconfirmed_email(&state, &guardian, address).await;
    if added.is_err() {
        // Refused (a duplicate, a fifth address): no mail went out, so none is counted.
        for attempt in counted {
            attempt.refund(&state).await?;
        }
    }
    added
}

/// Adds the address as unconfirmed and sends its confirmation link.
async fn add_unconfirmed_email(
    state: &AppState,
    guardian: &Guardian,
    address: EmailAddress,
) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let current = members::find(&mut tx, &guardian.org_id, &guardian.member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let mut profile = current.profile();
    if profile.emails.iter().any(|e| e.key() == address.key()) {
        return Err(ApiError::Conflict {
            detail: "this address is already yours".into(),
            field: Some("address".into()),
        });
    }
    if profile.emails.len() >= MAX_EMAILS {
        return Err(ApiError::field(
            "address",
            format!("a guardian has at most {MAX_EMAILS} e-mail addresses; remove one first"),
        ));
    }
    profile.emails.push(address.clone());
    members::update_profile(&mut tx, &guardian.org_id, &guardian.member_id, &profile, EmailStatus::Unconfirmed).await?;
    let token = confirmations::prepare(&mut tx, &guardian.org_id, &guardian.member_id, &address).await?;
    let answer = profile_of(&mut tx, guardian).await?;
    tx.commit().await?;
    // Not sent: the address stays unconfirmed and the app can ask again (…/confirmation).
    confirmations::send(state, &address, &token).await;
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(tag = "app", params(("address" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    NotFound,
))]
#[delete("/app/me/emails/{address}")]
pub async fn remove_email(
    state: web::Data<AppState>,
    guardian: Guardian,
    address: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = address.trim().to_lowercase();
    let mut tx = state.db.begin().await?;
    let current = members::find(&mut tx, &guardian.org_id, &guardian.member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let mut profile = current.profile();
    let before = profile.emails.len();
    profile.emails.retain(|e| e.key() != key);
    if profile.emails.len() == before {
        return Err(ApiError::NotFound("no such address among yours".into()));
    }
    members::update_profile(&mut tx, &guardian.org_id, &guardian.member_id, &profile, EmailStatus::Unconfirmed).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Register this phone for push (at most 4 devices).
#[utoipa::path(tag = "app", request_body = RegisterDeviceRequest, security(("bearer" = [])), responses(
    (status = 201, body = DeviceResponse),
    (status = 409, description = "Four devices already", body = Problem, content_type = "application/problem+json"),
    Validation,
))]
#[post("/app/me/devices")]
pub async fn add_device(
    state: web::Data<AppState>,
    guardian: Guardian,
    body: JsonBody<RegisterDeviceRequest>,
) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let device = register_device_for(&mut tx, &guardian.org_id, &guardian.member_id, &body.0, true).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(device))
}

#[utoipa::path(tag = "app", params(("device_id" = String, Path)), security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    NotFound,
))]
#[delete("/app/me/devices/{device_id}")]
pub async fn remove_device(
    state: web::Data<AppState>,
    guardian: Guardian,
    device_id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    devices::delete_device(&mut conn, &guardian.org_id, &guardian.member_id, &device_id)
        .await
        .or_not_found("device")?;
    Ok(HttpResponse::NoContent().finish())
}

//! Double opt-in for addresses guardians add themselves: the confirmation e-mail, the page
//! its link opens, and the confirmation that page's button posts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{Duration, Utc};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::guardian_page::html_page;
use crate::auth::{Guardian, tokens};
use crate::db::repositories::{guardians, members};
use crate::delivery::email::{OutgoingEmail, SendOutcome};
use crate::domain::EmailAddress;
use crate::domain::member::EmailStatus;
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resend_confirmation);
}

/// The page is outside /api/v1: it is opened from a mail client, not called by the app.
pub fn configure_pages(cfg: &mut ServiceConfig) {
    cfg.service(confirm_page).service(confirm);
}

const CONFIRMATION_TTL: Duration = Duration::days(3);

/// Stores a new confirmation token for the address; returns the token for the link.
pub async fn prepare(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    member_id: &str,
    address: &EmailAddress,
) -> ApiResult<String> {
    let token = tokens::random_secret("");
    let expires_at = (Utc::now() + CONFIRMATION_TTL).timestamp_millis();
    guardians::create_confirmation(conn, org_id, member_id, &address.key(), &tokens::digest(&token), expires_at)
        .await?;
    Ok(token)
}

/// Sends the link. Called after the address is committed, so that no database lock is held
/// during SMTP; a failure leaves the address unconfirmed, and the app can ask again.
pub async fn send(state: &AppState, address: &EmailAddress, token: &str) -> bool {
    let link = state.config.public_link(&format!("confirm-email/{token}"));
    let email = OutgoingEmail {
        to: address.clone(),
        subject: "メールアドレスの確認 / Please confirm your e-mail address".into(),
        text_body: format!(
            "連絡網アプリでこのメールアドレスが登録されました。\n\
             学校からの連絡をこのアドレスで受け取るには、3日以内に次のリンクを開いてください。\n\n{link}\n\n\
             心当たりがない場合は、このメールを無視してください。このアドレスには何も届きません。\n\n\
             This address was added in the school contact app. Open the link above within 3 days to receive \
             messages here; if you did not add it, ignore this e-mail.\n"
        ),
        message_id: format!("<confirm.{}@renrakumo>", &tokens::digest(token)[..24]),
        attachments: vec![],
    };
    match state.mailer.send(&email).await {
        SendOutcome::Delivered => true,
        outcome => {
            tracing::warn!(outcome = outcome.kind(), "confirmation e-mail not sent");
            false
        }
    }
}

/// Send the confirmation link for one of the guardian's unconfirmed addresses again.
#[utoipa::path(tag = "app", params(("address" = String, Path)), security(("bearer" = [])), responses(
    (status = 202, description = "Sent"),
    (status = 404, description = "Not an unconfirmed address of yours", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The mail server did not take it; try later", body = Problem, content_type = "application/problem+json"),
    crate::api::problem_responses::TooManyRequests,
))]
#[post("/app/me/emails/{address}/confirmation")]
pub async fn resend_confirmation(
    state: web::Data<AppState>,
    req: HttpRequest,
    guardian: Guardian,
    address: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = address.trim().to_lowercase();
    let _counted = crate::api::app::count_confirmation_mail(&state, &req, &guardian).await?;
    let mut conn = state.db.pool.acquire().await?;
    let record = members::find(&mut conn, &guardian.org_id, &guardian.member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let email = record
        .emails
        .iter()
        .find(|e| e.address.to_lowercase() == key && e.status == EmailStatus::Unconfirmed.as_str())
        .and_then(|e| EmailAddress::parse(&e.address).ok())
        .ok_or_else(|| ApiError::NotFound("no unconfirmed address of yours with that value".into()))?;
    let token = prepare(&mut conn, &guardian.org_id, &guardian.member_id, &email).await?;
    drop(conn);
    if send(&state, &email, &token).await {
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(ApiError::Unavailable("the mail server did not take the message; try again later".into()))
    }
}

/// A small page for a phone's browser, Japanese first. Fixed texts only: nothing from the
/// request is echoed into it (the form posts back to the page's own address).
fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    html_page(
        status,
        format!(
            "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"referrer\" content=\"same-origin\"><title>{title}</title><style>\
             *,::before,::after{{box-sizing:border-box}} html{{-webkit-text-size-adjust:100%;text-size-adjust:100%}}\
             body{{font-family:sans-serif;font-size:16px;line-height:1.6;max-width:32em;margin:0 auto;padding:1em;\
             color:#222;overflow-wrap:break-word;overflow-wrap:anywhere}}\
             h1{{font-size:1.3em}} .en{{color:#555}}\
             button{{font:inherit;font-size:1.1em;min-height:44px;padding:.7em 1.4em;margin:.5em 0;width:100%}}</style></head>\
             <body><main><h1>{title}</h1>{body}</main></body></html>"
        ),
    )
}

fn unusable_page() -> HttpResponse {
    page(
        StatusCode::NOT_FOUND,
        "このリンクは使えません",
        "<p>リンクの期限が切れたか、すでに使われています。アプリから確認メールを再送してください。</p>\
         <p class=\"en\">This link has expired or was used already. Ask for a new one in the app.</p>",
    )
}

/// The page the confirmation link opens. It confirms nothing by itself (mail scanners open
/// links): its button posts the confirmation.
#[utoipa::path(tag = "app", params(("token" = String, Path)), security(), responses(
    (status = 200, description = "A page with a button that confirms the address", body = String, content_type = "text/html"),
    (status = 404, description = "A page saying the link is unknown, expired or used", body = String, content_type = "text/html"),
))]
#[get("/confirm-email/{token}")]
pub async fn confirm_page(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    if !guardians::confirmation_is_pending(&mut conn, &tokens::digest(&token)).await? {
        return Ok(unusable_page());
    }
    Ok(page(
        StatusCode::OK,
        "メールアドレスの確認",
        "<p>連絡網アプリで登録されたこのメールアドレスで、学校からの連絡を受け取るには、下のボタンを押してください。</p>\
         <form method=\"post\"><button type=\"submit\">このアドレスで受け取る</button></form>\
         <p>心当たりがない場合は、このページを閉じてください。このアドレスには何も届きません。</p>\
         <p class=\"en\">To receive the school's messages at this address, press the button. \
         If you did not add it, close this page: nothing will be sent here.</p>",
    ))
}

/// Confirms the address the link was sent to (double opt-in), once.
#[utoipa::path(tag = "app", params(("token" = String, Path)), security(), responses(
    (status = 200, description = "A page saying the address is confirmed", body = String, content_type = "text/html"),
    (status = 404, description = "A page saying the link is unknown, expired or used", body = String, content_type = "text/html"),
))]
#[post("/confirm-email/{token}")]
pub async fn confirm(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let confirmed = guardians::confirm_email(&mut tx, &tokens::digest(&token)).await?;
    tx.commit().await?;
    if !confirmed {
        return Ok(unusable_page());
    }
    Ok(page(
        StatusCode::OK,
        "メールアドレスを確認しました",
        "<p>このアドレスで学校からの連絡を受け取ります。</p><p class=\"en\">Your address is confirmed.</p>",
    ))
}

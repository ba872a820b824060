//! The guardian app's inbox: the messages a guardian received, read, acknowledged and
//! answered from the app.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, QueryParams};
use crate::api::pagination::PageQuery;
use crate::api::problem_responses::{Conflict, NotFound, Unauthorized, Validation};
use crate::api::receipts::{
    AnswersRequest, ReceiptResponse, acknowledge_receipt, load, receipt_response, store_answers,
};
use crate::api::time;
use crate::auth::Guardian;
use crate::db::repositories::receipts;
use crate::domain::message::Priority;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(inbox).service(message).service(acknowledge).service(answer).service(attachment);
}

#[derive(Serialize, ToSchema)]
pub struct InboxItem {
    pub id: String,
    pub subject: String,
    pub priority: Priority,
    pub sent_at: Option<DateTime<Utc>>,
    pub answer_required: bool,
    pub answer_deadline: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub next_cursor: Option<String>,
    /// Over the whole inbox, not this page.
    pub unread_count: i64,
}

/// The guardian's messages, newest first.
#[utoipa::path(tag = "app", params(PageQuery), security(("bearer" = [])), responses(
    (status = 200, body = InboxPage),
    Unauthorized,
))]
#[get("/app/messages")]
pub async fn inbox(
    state: web::Data<AppState>,
    guardian: Guardian,
    query: QueryParams<PageQuery>,
) -> ApiResult<web::Json<InboxPage>> {
    let page = query.0.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    let rows = receipts::inbox(&mut conn, &guardian.member_id, page.after.as_deref(), page.fetch()).await?;
    let unread_count = receipts::unread_count(&mut conn, &guardian.member_id).await?;
    let page = page.page(
        rows,
        |r| &r.message_id,
        |r| InboxItem {
            id: r.message_id,
            subject: r.subject,
            priority: r.priority,
            sent_at: r.sent_at.map(time),
            answer_required: r.answer_required != 0,
            answer_deadline: r.answer_deadline.map(time),
            read_at: r.read_at.map(time),
            acknowledged_at: r.acknowledged_at.map(time),
            answered_at: r.answered_at.map(time),
        },
    );
    Ok(web::Json(InboxPage { items: page.items, next_cursor: page.next_cursor, unread_count }))
}

async fn view(state: &AppState, guardian: &Guardian, id: &str) -> ApiResult<web::Json<ReceiptResponse>> {
    let mut conn = state.db.pool.acquire().await?;
    let receipt = load(&mut conn, id, &guardian.member_id).await?;
    let url = |file_id: &str| state.config.public_link(&format!("api/v1/app/messages/{id}/attachments/{file_id}"));
    Ok(web::Json(receipt_response(&mut conn, receipt, url).await?))
}

/// One message; opening it records it as read.
#[utoipa::path(tag = "app", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ReceiptResponse),
    NotFound,
))]
#[get("/app/messages/{id}")]
pub async fn message(
    state: web::Data<AppState>,
    guardian: Guardian,
    id: web::Path<String>,
) -> ApiResult<web::Json<ReceiptResponse>> {
    {
        let mut conn = state.db.pool.acquire().await?;
        load(&mut conn, &id, &guardian.member_id).await?;
        receipts::mark_read(&mut conn, &id, &guardian.member_id).await?;
    }
    view(&state, &guardian, &id).await
}

/// Acknowledge (idempotent).
#[utoipa::path(tag = "app", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ReceiptResponse),
    NotFound,
))]
#[post("/app/messages/{id}/ack")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    guardian: Guardian,
    id: web::Path<String>,
) -> ApiResult<web::Json<ReceiptResponse>> {
    {
        // Answers 404 for a message the guardian did not receive, before anything is queued.
        let mut conn = state.db.pool.acquire().await?;
        load(&mut conn, &id, &guardian.member_id).await?;
    }
    acknowledge_receipt(&state, &id, &guardian.member_id).await?;
    view(&state, &guardian, &id).await
}

/// Answer the survey (replaces earlier answers until the deadline).
#[utoipa::path(tag = "app", params(("id" = String, Path)), request_body = AnswersRequest, security(("bearer" = [])), responses(
    (status = 200, body = ReceiptResponse),
    NotFound, Conflict, Validation,
))]
#[put("/app/messages/{id}/answers")]
pub async fn answer(
    state: web::Data<AppState>,
    guardian: Guardian,
    id: web::Path<String>,
    body: JsonBody<AnswersRequest>,
) -> ApiResult<web::Json<ReceiptResponse>> {
    {
        let mut tx = state.db.begin().await?;
        let receipt = load(&mut tx, &id, &guardian.member_id).await?;
        store_answers(&mut tx, &receipt, &body.0.answers).await?;
        tx.commit().await?;
    }
    view(&state, &guardian, &id).await
}

#[utoipa::path(tag = "app", params(("id" = String, Path), ("attachment_id" = String, Path)), security(("bearer" = [])), responses(
    crate::api::attachments::AttachmentFile,
    NotFound,
))]
#[get("/app/messages/{id}/attachments/{attachment_id}")]
pub async fn attachment(
    state: web::Data<AppState>,
    guardian: Guardian,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, attachment_id) = path.into_inner();
    let mut conn = state.db.pool.acquire().await?;
    let receipt = load(&mut conn, &id, &guardian.member_id).await.map_err(|_| ApiError::not_found("message"))?;
    crate::api::attachments::download(&mut conn, &receipt.message.org_id, &receipt.message.id, &attachment_id).await
}

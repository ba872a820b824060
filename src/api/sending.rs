//! Sending: preview whom a message reaches, send it now or schedule it, cancel a
//! scheduled one, and send again to those who have not responded or were not reached. Each
//! goes through `delivery::queue`.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, OptionalJsonBody};
use crate::api::messages::{MessageResponse, find};
use crate::api::problem_responses::NotFound;
use crate::auth::Caller;
use crate::db::repositories::messages;
use crate::delivery::queue;
use crate::domain::Scope;
use crate::domain::message::{Channel, FollowUp, MessageStatus};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(preview).service(send_message).service(cancel_message).service(resend);
}

#[derive(Serialize, ToSchema)]
pub struct PreviewResponse {
    /// Guardians the message would reach now (active members, each once).
    pub recipients: i64,
    /// Of their addresses, those that receive (not disabled, not unconfirmed).
    pub email: i64,
    /// Their app devices.
    pub push: i64,
}

/// How many guardians, addresses and devices a send would reach now.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 200, body = PreviewResponse),
    NotFound,
))]
#[get("/messages/{id}/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<PreviewResponse>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    let message = find(&mut conn, &caller, &id).await?;
    let reach = messages::preview(&mut conn, &caller.org_id, &message.content.targets).await?;
    Ok(web::Json(PreviewResponse {
        recipients: reach.guardians,
        email: if message.sends_by(Channel::Email) { reach.addresses } else { 0 },
        push: if message.sends_by(Channel::Push) { reach.devices } else { 0 },
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Send later (予約配信); now when absent or past. A scheduled message sent again is
    /// rescheduled.
    pub send_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct SendResponse {
    pub status: MessageStatus,
    /// Guardians reached (for a scheduled message: as the roster stands now).
    pub recipient_count: i64,
    pub send_at: Option<DateTime<Utc>>,
}

/// Send now or schedule. Recipients and their delivery jobs are written in one
/// transaction before the answer; workers deliver them.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), request_body = Option<SendRequest>, responses(
    (status = 202, body = SendResponse),
    (status = 409, description = "Already sent or cancelled", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No targets, or a deadline already past", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/messages/{id}/send")]
pub async fn send_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: OptionalJsonBody<SendRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let send_at = body.0.unwrap_or_default().send_at.filter(|t| *t > Utc::now());
    let mut tx = state.db.begin().await?;
    let message = find(&mut tx, &caller, &id).await?;
    if !matches!(message.status, MessageStatus::Draft | MessageStatus::Scheduled) {
        return Err(ApiError::Conflict {
            detail: format!("the message is {} already", message.status.as_str()),
            field: Some("status".into()),
        });
    }
    if message.content.targets.is_empty() {
        return Err(ApiError::field("targets", "name lists, members or attributes to send to"));
    }
    if message.deadline_passed(send_at.unwrap_or_else(Utc::now)) {
        return Err(ApiError::field("answer_deadline", "is before the message would go out"));
    }
    caller.spend_single_use(&mut tx).await?;
    let from = [MessageStatus::Draft, MessageStatus::Scheduled];
    let response = match send_at {
        Some(at) => {
            messages::transition(&mut tx, &caller.org_id, &id, &from, MessageStatus::Scheduled, Some(at)).await?;
            let reach = messages::preview(&mut tx, &caller.org_id, &message.content.targets).await?;
            tx.commit().await?;
            SendResponse { status: MessageStatus::Scheduled, recipient_count: reach.guardians, send_at: Some(at) }
        }
        None => {
            if !messages::transition(&mut tx, &caller.org_id, &id, &from, MessageStatus::Sending, None).await? {
                return Err(ApiError::Conflict {
                    detail: "the message is being sent already".into(),
                    field: Some("status".into()),
                });
            }
            let recipients = queue::send(&state, tx, &message).await?;
            SendResponse { status: MessageStatus::Sending, recipient_count: recipients, send_at: None }
        }
    };
    tracing::info!(message_id = %id, status = response.status.as_str(), recipients = response.recipient_count, "message sent");
    Ok(HttpResponse::Accepted().json(response))
}

/// Cancel a scheduled message; it will not go out.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 200, body = MessageResponse),
    (status = 409, description = "Not scheduled (sending has started, or it never was)", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/messages/{id}/cancel")]
pub async fn cancel_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MessageResponse>> {
    caller.require(Scope::MessagesSend)?;
    let mut tx = state.db.begin().await?;
    find(&mut tx, &caller, &id).await?;
    if !messages::transition(&mut tx, &caller.org_id, &id, &[MessageStatus::Scheduled], MessageStatus::Cancelled, None)
        .await?
    {
        return Err(ApiError::Conflict {
            detail: "only a scheduled message can be cancelled".into(),
            field: Some("status".into()),
        });
    }
    let message = find(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(web::Json(message.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// `unacknowledged`, `unanswered` or `failed` (DESIGN.md); `unread` is a recipients
    /// filter only.
    #[schema(schema_with = resend_audience)]
    pub to: FollowUp,
}

/// The follow-ups a resend may name.
fn resend_audience() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["unacknowledged", "unanswered", "failed"]))
        .build()
}

/// Send again, on all their channels and with the same personal link, to those who have
/// not acknowledged, not answered, or were not reached.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), request_body = ResendRequest, responses(
    (status = 202, body = SendResponse),
    (status = 409, description = "Not sent yet", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[post("/messages/{id}/resend")]
pub async fn resend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<ResendRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let mut tx = state.db.begin().await?;
    let message = find(&mut tx, &caller, &id).await?;
    if !matches!(message.status, MessageStatus::Sending | MessageStatus::Sent) {
        return Err(ApiError::Conflict {
            detail: "only a sent message can be sent again".into(),
            field: Some("status".into()),
        });
    }
    let who = body.0.to;
    if who == FollowUp::Unread {
        return Err(ApiError::field("to", "a resend goes to unacknowledged, unanswered or failed recipients"));
    }
    // A resend is a send: a single-use pass makes one, whichever.
    caller.spend_single_use(&mut tx).await?;
    let count = queue::follow_up(&mut tx, &state, &message, who).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(SendResponse {
        status: MessageStatus::Sending,
        recipient_count: count,
        send_at: None,
    }))
}

//! Messages: compose, target, preview, send now or later, and follow the delivery.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, OptionalJsonBody, QueryParams};
use crate::api::members::check_list_ids;
use crate::api::pagination::{Page, PageQuery};
use crate::api::time;
use crate::auth::Caller;
use crate::db::now_ms;
use crate::db::repositories::members;
use crate::db::repositories::messages::{self, MessageContent, MessageFilter, MessageRow};
use crate::db::repositories::queue;
use crate::db::repositories::receipts::Followers;
use crate::delivery::worker::{Worker, WorkerSettings, fan_out};
use crate::domain::member::mask_token;
use crate::domain::message::{self as rules, Channel, MessageStatus, Priority, Survey, Targets};
use crate::domain::{EmailAddress, FieldError, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_messages)
        .service(create_message)
        .service(bulk_delete)
        .service(get_message)
        .service(update_message)
        .service(delete_message)
        .service(copy_message)
        .service(preview)
        .service(send_message)
        .service(cancel_message)
        .service(stats)
        .service(list_recipients);
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// At most 100 characters.
    #[schema(example = "運動会の開催について")]
    pub subject: Option<String>,
    /// At most 5,000 characters.
    #[schema(example = "明日の運動会は予定どおり開催します。")]
    pub body: Option<String>,
    /// Shown as the sender; at most 50 characters.
    #[schema(example = "さくら小学校 教頭")]
    pub from_name: Option<String>,
    pub priority: Option<Priority>,
    pub answer_required: Option<bool>,
    pub answer_deadline: Option<DateTime<Utc>>,
    pub survey: Option<Survey>,
    pub targets: Option<Targets>,
    /// `email`, `push` or both (the default).
    pub channels: Option<Vec<Channel>>,
    /// E-mail the sender a copy when the message goes out.
    pub copy_to_sender: Option<bool>,
    /// Answer-required messages: remind, once, those who have not acknowledged after this
    /// many minutes (1 to 10,080).
    #[schema(example = 60)]
    pub remind_after: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub id: String,
    pub subject: String,
    pub body: String,
    pub from_name: Option<String>,
    pub priority: Priority,
    pub answer_required: bool,
    pub answer_deadline: Option<DateTime<Utc>>,
    pub survey: Option<Survey>,
    pub targets: Targets,
    pub channels: Vec<Channel>,
    pub copy_to_sender: bool,
    pub status: MessageStatus,
    /// When a scheduled message goes out.
    pub send_at: Option<DateTime<Utc>>,
    /// When sending started.
    pub sent_at: Option<DateTime<Utc>>,
    /// When every delivery had an outcome.
    pub completed_at: Option<DateTime<Utc>>,
    pub recipient_count: i64,
    pub remind_after: Option<i64>,
    pub reminded_at: Option<DateTime<Utc>>,
    /// The staff user who composed it (absent for API keys).
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<MessageRow> for MessageResponse {
    fn from(row: MessageRow) -> MessageResponse {
        MessageResponse {
            priority: Priority::parse(&row.priority),
            answer_required: row.answer_required != 0,
            answer_deadline: row.answer_deadline.map(time),
            survey: row.survey.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            targets: serde_json::from_str(&row.targets).unwrap_or_default(),
            channels: serde_json::from_str(&row.channels).unwrap_or_default(),
            copy_to_sender: row.copy_to_sender != 0,
            status: MessageStatus::parse(&row.status).unwrap_or(MessageStatus::Draft),
            send_at: row.send_at.map(time),
            sent_at: row.sent_at.map(time),
            completed_at: row.completed_at.map(time),
            recipient_count: row.recipient_count,
            remind_after: row.remind_after_minutes,
            reminded_at: row.reminded_at.map(time),
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            id: row.id,
            subject: row.subject,
            body: row.body,
            from_name: row.from_name,
            created_by: row.created_by,
        }
    }
}

/// Checks a complete message (a create, or a stored one with a patch applied).
async fn content(conn: &mut sqlx::AnyConnection, org_id: &str, request: MessageRequest) -> ApiResult<MessageContent> {
    let mut errors: Vec<FieldError> = Vec::new();
    let subject = request.subject.unwrap_or_default();
    let body = request.body.unwrap_or_default();
    let from_name = request.from_name.filter(|n| !n.trim().is_empty());
    rules::check_subject_body(&mut errors, &subject, &body, from_name.as_deref());
    if let Some(survey) = &request.survey {
        rules::check_survey(&mut errors, survey);
    }
    let targets = request.targets.unwrap_or_default();
    rules::check_targets(&mut errors, &targets);
    let mut channels = request.channels.unwrap_or_else(|| vec![Channel::Email, Channel::Push]);
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        errors.push(FieldError::new("channels", "name email, push or both"));
    }
    let answer_required = request.answer_required.unwrap_or(false);
    match request.remind_after {
        Some(minutes) if !(1..=10_080).contains(&minutes) => {
            errors.push(FieldError::new("remind_after", "must be 1 to 10,080 minutes"))
        }
        Some(_) if !answer_required => {
            errors.push(FieldError::new("remind_after", "reminders are for answer-required messages"))
        }
        _ => {}
    }
    if request.answer_deadline.is_some_and(|d| d <= Utc::now()) && errors.iter().all(|e| e.field != "answer_deadline") {
        errors.push(FieldError::new("answer_deadline", "must be in the future"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    check_list_ids(conn, org_id, &targets.list_ids, "targets.list_ids").await?;
    let known = members::existing(conn, org_id, &targets.member_ids).await?;
    let unknown: Vec<FieldError> = targets
        .member_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .take(20)
        .map(|(i, _)| FieldError::new(format!("targets.member_ids[{i}]"), "no member with that id"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    Ok(MessageContent {
        subject: subject.trim().to_string(),
        body,
        from_name,
        priority: request.priority.unwrap_or_default().as_str().to_string(),
        answer_required,
        answer_deadline: request.answer_deadline.map(|d| d.timestamp_millis()),
        survey: request.survey.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
        targets: serde_json::to_string(&targets).unwrap_or_default(),
        channels: serde_json::to_string(&channels).unwrap_or_default(),
        copy_to_sender: request.copy_to_sender.unwrap_or(false),
        remind_after_minutes: request.remind_after,
    })
}

async fn find(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<MessageRow> {
    messages::find(conn, &caller.org_id, id).await?.ok_or_else(|| ApiError::not_found("message"))
}

fn api_key_id(caller: &Caller) -> Option<&str> {
    match &caller.actor {
        crate::auth::Actor::ApiKey { key_id, .. } => Some(key_id),
        _ => None,
    }
}

/// Compose a draft.
#[utoipa::path(tag = "messages", request_body = MessageRequest, security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 201, body = MessageResponse),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "E.g. an 11th question: `survey.questions[10]`", body = Problem, content_type = "application/problem+json"),
))]
#[post("/messages")]
pub async fn create_message(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<MessageRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let mut conn = state.db.pool.acquire().await?;
    let content = content(&mut conn, &caller.org_id, body.0).await?;
    let row = messages::create(&mut conn, &caller.org_id, caller.user_id(), api_key_id(&caller), &content).await?;
    Ok(HttpResponse::Created().json(MessageResponse::from(row)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    pub status: Option<MessageStatus>,
    /// The id of the staff user who composed it.
    pub sender: Option<String>,
    /// Sent (or scheduled, or created) at or after.
    pub from: Option<DateTime<Utc>>,
    /// … and before.
    pub to: Option<DateTime<Utc>>,
    /// Partial match on subject and body.
    pub q: Option<String>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// History: who sent what, newest first.
#[utoipa::path(tag = "messages", params(MessageQuery), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = Page<MessageResponse>),
    (status = 403, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<MessageQuery>,
) -> ApiResult<web::Json<Page<MessageResponse>>> {
    caller.require(Scope::MessagesRead)?;
    let query = query.0;
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.parse()?;
    let filter = MessageFilter {
        status: query.status.map(|s| s.as_str().to_string()),
        created_by: query.sender,
        from: query.from.map(|t| t.timestamp_millis()),
        to: query.to.map(|t| t.timestamp_millis()),
        q: query.q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()),
    };
    let mut conn = state.db.pool.acquire().await?;
    let rows = messages::list(&mut conn, &caller.org_id, &filter, page.after.as_deref(), page.fetch()).await?;
    Ok(web::Json(page.page(rows, |r| &r.id, MessageResponse::from)))
}

#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = MessageResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}")]
pub async fn get_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<MessageResponse>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(web::Json(find(&mut conn, &caller, &id).await?.into()))
}

/// Edit a draft or a scheduled message: the fields present replace the stored ones.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), request_body = MessageRequest,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = MessageResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Already sent or cancelled", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
#[patch("/messages/{id}")]
pub async fn update_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<MessageRequest>,
) -> ApiResult<web::Json<MessageResponse>> {
    caller.require(Scope::MessagesSend)?;
    let patch = body.0;
    let mut tx = state.db.begin().await?;
    let stored: MessageResponse = find(&mut tx, &caller, &id).await?.into();
    let merged = MessageRequest {
        subject: patch.subject.or(Some(stored.subject)),
        body: patch.body.or(Some(stored.body)),
        from_name: patch.from_name.or(stored.from_name),
        priority: patch.priority.or(Some(stored.priority)),
        answer_required: patch.answer_required.or(Some(stored.answer_required)),
        answer_deadline: patch.answer_deadline.or(stored.answer_deadline),
        survey: patch.survey.or(stored.survey),
        targets: patch.targets.or(Some(stored.targets)),
        channels: patch.channels.or(Some(stored.channels)),
        copy_to_sender: patch.copy_to_sender.or(Some(stored.copy_to_sender)),
        remind_after: patch.remind_after.or(stored.remind_after),
    };
    let content = content(&mut tx, &caller.org_id, merged).await?;
    if !messages::update_content(&mut tx, &caller.org_id, &id, &content).await? {
        return Err(ApiError::Conflict {
            detail: "only drafts and scheduled messages can be edited".into(),
            field: Some("status".into()),
        });
    }
    let row = find(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(web::Json(row.into()))
}

/// Delete a draft.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not a draft: sent messages stay in the history", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/messages/{id}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let mut tx = state.db.begin().await?;
    find(&mut tx, &caller, &id).await?;
    if messages::delete_drafts(&mut tx, &caller.org_id, std::slice::from_ref(&id)).await? == 0 {
        return Err(ApiError::Conflict {
            detail: "only drafts can be deleted; sent messages stay in the history".into(),
            field: Some("status".into()),
        });
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// Up to 1,000 message ids; those that are not drafts are left alone.
    pub ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkDeleteResponse {
    pub deleted: u64,
}

/// Delete many drafts at once.
#[utoipa::path(tag = "messages", request_body = BulkDeleteRequest, security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = BulkDeleteResponse),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
#[post("/messages/bulk-delete")]
pub async fn bulk_delete(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<BulkDeleteRequest>,
) -> ApiResult<web::Json<BulkDeleteResponse>> {
    caller.require(Scope::MessagesSend)?;
    if body.0.ids.is_empty() || body.0.ids.len() > 1000 {
        return Err(ApiError::field("ids", "name 1 to 1,000 messages"));
    }
    let mut conn = state.db.pool.acquire().await?;
    let deleted = messages::delete_drafts(&mut conn, &caller.org_id, &body.0.ids).await?;
    Ok(web::Json(BulkDeleteResponse { deleted }))
}

/// Copy any message (sent ones too) into a new draft.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 201, body = MessageResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[post("/messages/{id}/copy")]
pub async fn copy_message(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesSend)?;
    let mut conn = state.db.pool.acquire().await?;
    let source = find(&mut conn, &caller, &id).await?;
    let deadline_passed = source.answer_deadline.is_some_and(|d| d <= now_ms());
    let content = MessageContent {
        subject: source.subject,
        body: source.body,
        from_name: source.from_name,
        priority: source.priority,
        answer_required: source.answer_required != 0,
        // A deadline in the past would make the copy unsendable as it stands.
        answer_deadline: source.answer_deadline.filter(|_| !deadline_passed),
        survey: source.survey,
        targets: source.targets,
        channels: source.channels,
        copy_to_sender: source.copy_to_sender != 0,
        remind_after_minutes: source.remind_after_minutes,
    };
    let row = messages::create(&mut conn, &caller.org_id, caller.user_id(), api_key_id(&caller), &content).await?;
    Ok(HttpResponse::Created().json(MessageResponse::from(row)))
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
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = PreviewResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<PreviewResponse>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    let message: MessageResponse = find(&mut conn, &caller, &id).await?.into();
    let (recipients, email, push) = messages::preview(&mut conn, &caller.org_id, &message.targets).await?;
    Ok(web::Json(PreviewResponse {
        recipients,
        email: if message.channels.contains(&Channel::Email) { email } else { 0 },
        push: if message.channels.contains(&Channel::Push) { push } else { 0 },
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
#[utoipa::path(tag = "messages", params(("id" = String, Path)), request_body = Option<SendRequest>,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 202, body = SendResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Already sent or cancelled", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No targets, or a deadline already past", body = Problem, content_type = "application/problem+json"),
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
    let view: MessageResponse = message.clone().into();
    if !matches!(view.status, MessageStatus::Draft | MessageStatus::Scheduled) {
        return Err(ApiError::Conflict {
            detail: format!("the message is {} already", view.status.as_str()),
            field: Some("status".into()),
        });
    }
    if view.targets.is_empty() {
        return Err(ApiError::field("targets", "name lists, members or attributes to send to"));
    }
    if view.answer_deadline.is_some_and(|d| d <= send_at.unwrap_or_else(Utc::now)) {
        return Err(ApiError::field("answer_deadline", "is before the message would go out"));
    }
    caller.spend_single_use(&mut tx).await?;
    let from = [MessageStatus::Draft.as_str(), MessageStatus::Scheduled.as_str()];
    let response = match send_at {
        Some(at) => {
            messages::transition(&mut tx, &caller.org_id, &id, &from, "scheduled", Some(at.timestamp_millis())).await?;
            let (recipients, _, _) = messages::preview(&mut tx, &caller.org_id, &view.targets).await?;
            SendResponse { status: MessageStatus::Scheduled, recipient_count: recipients, send_at: Some(at) }
        }
        None => {
            if !messages::transition(&mut tx, &caller.org_id, &id, &from, "sending", None).await? {
                return Err(ApiError::Conflict {
                    detail: "the message is being sent already".into(),
                    field: Some("status".into()),
                });
            }
            let count = fan_out(&mut tx, &message).await?;
            SendResponse { status: MessageStatus::Sending, recipient_count: count, send_at: None }
        }
    };
    tx.commit().await?;
    if response.status == MessageStatus::Sending {
        let mut conn = state.db.pool.acquire().await?;
        let started = find(&mut conn, &caller, &id).await?;
        drop(conn);
        let worker = Worker::new(state.get_ref().clone(), WorkerSettings::default());
        // The copy to the sender goes over SMTP: not on the request's time.
        tokio::spawn(async move { worker.after_start(&started).await });
    }
    tracing::info!(message_id = %id, status = response.status.as_str(), recipients = response.recipient_count, "message sent");
    Ok(HttpResponse::Accepted().json(response))
}

/// Cancel a scheduled message; it will not go out.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = MessageResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not scheduled (sending has started, or it never was)", body = Problem, content_type = "application/problem+json"),
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
    if !messages::transition(&mut tx, &caller.org_id, &id, &["scheduled"], "cancelled", None).await? {
        return Err(ApiError::Conflict {
            detail: "only a scheduled message can be cancelled".into(),
            field: Some("status".into()),
        });
    }
    let row = find(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(web::Json(row.into()))
}

#[derive(Serialize, ToSchema, Default)]
pub struct EmailCounts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
}

#[derive(Serialize, ToSchema, Default)]
pub struct PushCounts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    /// Dead device tokens (removed from the roster).
    pub invalid: i64,
    /// The platform is not configured on this instance.
    pub skipped: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub email: EmailCounts,
    pub push: PushCounts,
}

#[derive(Serialize, ToSchema)]
pub struct StatsResponse {
    pub status: MessageStatus,
    pub recipients: i64,
    pub read: i64,
    pub acknowledged: i64,
    pub answered: i64,
    pub deliveries: DeliveryCounts,
}

/// Progress of a message: deliveries per channel, and who read and acknowledged it.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = StatsResponse),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<StatsResponse>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    let message = find(&mut conn, &caller, &id).await?;
    let (recipients, read, acknowledged, answered) = messages::response_counts(&mut conn, &id).await?;
    let tallies = queue::tallies(&mut conn, &id).await?;
    let email = tallies.get("email").copied().unwrap_or_default();
    let email = EmailCounts {
        queued: email.queued,
        sent: email.sent,
        failed: email.failed + email.invalid + email.skipped,
        bounced: email.bounced,
    };
    let push = tallies.get("push").copied().unwrap_or_default();
    let push = PushCounts {
        queued: push.queued,
        sent: push.sent,
        failed: push.failed + push.bounced,
        invalid: push.invalid,
        skipped: push.skipped,
    };
    Ok(web::Json(StatsResponse {
        status: MessageStatus::parse(&message.status).unwrap_or(MessageStatus::Draft),
        recipients,
        read,
        acknowledged,
        answered,
        deliveries: DeliveryCounts { email, push },
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Queued,
    Sent,
    Failed,
    Bounced,
    Invalid,
    Skipped,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub channel: Channel,
    /// The address (masked without `contacts:read`) or the device token (masked).
    pub to: String,
    /// `apns` or `fcm` for push.
    pub platform: Option<String>,
    pub state: DeliveryState,
    pub attempts: i64,
    /// The last error or the receiving server's reply.
    pub detail: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct RecipientResponse {
    pub member_id: String,
    pub name: String,
    pub read_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// The guardian's current survey answers.
    pub answers: Vec<crate::domain::message::Answer>,
    pub deliveries: Vec<DeliveryResponse>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// Only the guardians who have not read, acknowledged or answered it, or whom it
    /// failed to reach on some address or device.
    #[param(inline)]
    pub status: Option<RecipientFilter>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecipientFilter {
    Unread,
    Unacknowledged,
    Unanswered,
    Failed,
}

impl From<RecipientFilter> for Followers {
    fn from(filter: RecipientFilter) -> Followers {
        match filter {
            RecipientFilter::Unread => Followers::Unread,
            RecipientFilter::Unacknowledged => Followers::Unacknowledged,
            RecipientFilter::Unanswered => Followers::Unanswered,
            RecipientFilter::Failed => Followers::Failed,
        }
    }
}

/// Per guardian: each address and device with its delivery state.
#[utoipa::path(tag = "messages", params(("id" = String, Path), RecipientQuery), security(("bearer" = []), ("oauth2" = []), ("api_key" = [])), responses(
    (status = 200, body = Page<RecipientResponse>),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/recipients")]
pub async fn list_recipients(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: QueryParams<RecipientQuery>,
) -> ApiResult<web::Json<Page<RecipientResponse>>> {
    caller.require(Scope::MessagesRead)?;
    let query = query.0;
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    find(&mut conn, &caller, &id).await?;
    let (rows, jobs) =
        messages::recipients(&mut conn, &id, query.status.map(Followers::from), page.after.as_deref(), page.fetch())
            .await?;
    let answers = crate::db::repositories::receipts::answers(&mut conn, &id, None).await?;
    let unmasked = caller.has(Scope::ContactsRead);
    let page = page.page(
        rows,
        |r| &r.member_id,
        |r| RecipientResponse {
            deliveries: jobs
                .iter()
                .filter(|j| j.member_id == r.member_id)
                .map(|j| DeliveryResponse {
                    channel: if j.channel == "email" { Channel::Email } else { Channel::Push },
                    to: match (j.channel.as_str(), unmasked) {
                        ("email", true) => j.address.clone(),
                        ("email", false) => EmailAddress::parse(&j.address).map(|a| a.masked()).unwrap_or_default(),
                        _ => mask_token(&j.address),
                    },
                    platform: j.platform.clone(),
                    state: match j.status {
                        queue::QUEUED | queue::CLAIMED => DeliveryState::Queued,
                        queue::SENT => DeliveryState::Sent,
                        queue::BOUNCED => DeliveryState::Bounced,
                        queue::INVALID => DeliveryState::Invalid,
                        queue::SKIPPED => DeliveryState::Skipped,
                        _ => DeliveryState::Failed,
                    },
                    attempts: j.attempts,
                    detail: j.last_error.clone(),
                    updated_at: time(j.updated_at),
                })
                .collect(),
            answers: answers.iter().filter(|a| a.member_id == r.member_id).map(|a| a.to_answer()).collect(),
            member_id: r.member_id,
            name: r.name,
            read_at: r.read_at.map(time),
            acknowledged_at: r.acknowledged_at.map(time),
            answered_at: r.answered_at.map(time),
        },
    );
    Ok(web::Json(page))
}

//! Messages as staff write them: compose, edit, list, copy and delete drafts. Sending is
//! `sending.rs`; following a delivery, `progress.rs` and `results.rs`.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JsonBody, QueryParams};
use crate::api::members::check_list_ids;
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{Forbidden, NotFound, Validation};
use crate::auth::Caller;
use crate::db::repositories::members;
use crate::db::repositories::messages::{self, MessageFilter};
use crate::domain::message::{self as rules, Channel, Message, MessageContent, MessageStatus, Priority, Targets};
use crate::domain::survey::Survey;
use crate::domain::{FieldError, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_messages)
        .service(create_message)
        .service(bulk_delete)
        .service(get_message)
        .service(update_message)
        .service(delete_message)
        .service(copy_message);
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

impl From<Message> for MessageResponse {
    fn from(message: Message) -> MessageResponse {
        let content = message.content;
        MessageResponse {
            id: message.id,
            subject: content.subject,
            body: content.body,
            from_name: content.from_name,
            priority: content.priority,
            answer_required: content.answer_required,
            answer_deadline: content.answer_deadline,
            survey: content.survey,
            targets: content.targets,
            channels: content.channels,
            copy_to_sender: content.copy_to_sender,
            status: message.status,
            send_at: message.send_at,
            sent_at: message.sent_at,
            completed_at: message.completed_at,
            recipient_count: message.recipient_count,
            remind_after: content.remind_after_minutes,
            reminded_at: message.reminded_at,
            created_by: message.created_by,
            created_at: message.created_at,
            updated_at: message.updated_at,
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
        crate::domain::survey::check_survey(&mut errors, survey);
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
        priority: request.priority.unwrap_or_default(),
        answer_required,
        answer_deadline: request.answer_deadline,
        survey: request.survey,
        targets,
        channels,
        copy_to_sender: request.copy_to_sender.unwrap_or(false),
        remind_after_minutes: request.remind_after,
    })
}

pub(crate) async fn find(conn: &mut sqlx::AnyConnection, caller: &Caller, id: &str) -> ApiResult<Message> {
    messages::find(conn, &caller.org_id, id).await?.ok_or_else(|| ApiError::not_found("message"))
}

fn api_key_id(caller: &Caller) -> Option<&str> {
    match &caller.actor {
        crate::auth::Actor::ApiKey { key_id, .. } => Some(key_id),
        _ => None,
    }
}

/// Compose a draft.
#[utoipa::path(tag = "messages", request_body = MessageRequest, responses(
    (status = 201, body = MessageResponse),
    (status = 422, description = "E.g. an 11th question: `survey.questions[10]`", body = Problem, content_type = "application/problem+json"),
    Forbidden,
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
    let message = messages::create(&mut conn, &caller.org_id, caller.user_id(), api_key_id(&caller), &content).await?;
    Ok(HttpResponse::Created().json(MessageResponse::from(message)))
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
#[utoipa::path(tag = "messages", params(MessageQuery), responses(
    (status = 200, body = Page<MessageResponse>),
    Forbidden,
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
        status: query.status,
        created_by: query.sender,
        from: query.from.map(|t| t.timestamp_millis()),
        to: query.to.map(|t| t.timestamp_millis()),
        q: query.q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()),
    };
    let mut conn = state.db.pool.acquire().await?;
    let found = messages::list(&mut conn, &caller.org_id, &filter, page.after.as_deref(), page.fetch()).await?;
    Ok(web::Json(page.page(found, |m| &m.id, MessageResponse::from)))
}

#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 200, body = MessageResponse),
    NotFound,
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
#[utoipa::path(tag = "messages", params(("id" = String, Path)), request_body = MessageRequest, responses(
    (status = 200, body = MessageResponse),
    (status = 409, description = "Already sent or cancelled", body = Problem, content_type = "application/problem+json"),
    NotFound, Validation,
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
    let stored = find(&mut tx, &caller, &id).await?;
    // A scheduled message goes out as edited: for a single-use pass that is its one send.
    if stored.status == MessageStatus::Scheduled {
        caller.spend_single_use(&mut tx).await?;
    }
    let stored = stored.content;
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
        remind_after: patch.remind_after.or(stored.remind_after_minutes),
    };
    let content = content(&mut tx, &caller.org_id, merged).await?;
    if !messages::update_content(&mut tx, &caller.org_id, &id, &content).await? {
        return Err(ApiError::Conflict {
            detail: "only drafts and scheduled messages can be edited".into(),
            field: Some("status".into()),
        });
    }
    let message = find(&mut tx, &caller, &id).await?;
    tx.commit().await?;
    Ok(web::Json(message.into()))
}

/// Delete a draft.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 409, description = "Not a draft: sent messages stay in the history", body = Problem, content_type = "application/problem+json"),
    NotFound,
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
#[utoipa::path(tag = "messages", request_body = BulkDeleteRequest, responses(
    (status = 200, body = BulkDeleteResponse),
    Validation,
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
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 201, body = MessageResponse),
    NotFound,
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
    let deadline_passed = source.deadline_passed(Utc::now());
    let mut content = source.content;
    // A deadline in the past would make the copy unsendable as it stands.
    if deadline_passed {
        content.answer_deadline = None;
    }
    let copy = messages::create(&mut conn, &caller.org_id, caller.user_id(), api_key_id(&caller), &content).await?;
    Ok(HttpResponse::Created().json(MessageResponse::from(copy)))
}

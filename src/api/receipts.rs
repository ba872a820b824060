//! The guardian's side of a message, through the personal link in every e-mail: the
//! receipt (a message as one guardian reached by it sees it), acknowledging and answering
//! it, and the same as JSON (`/api/v1/receipts/{token}`) for other clients. The page a
//! phone opens is `guardian_page.rs`; the app's inbox, `inbox.rs`.
//!
//! The token itself is the credential: unguessable, signed, bound to one (message,
//! guardian). Anything forged, altered or foreign answers 404, never saying which part was
//! wrong.

use actix_web::{get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::JsonBody;
use crate::api::problem_responses::NotFound;
use crate::api::time;
use crate::db::repositories::{attachments, members, messages, organizations, receipts};
use crate::domain::message::{Message, Priority};
use crate::domain::survey::{Survey, SurveyAnswer, check_answers};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_receipt).service(acknowledge).service(answer);
}

/// A message as one guardian reached by it sees it.
pub struct Receipt {
    pub message: Message,
    pub member_id: String,
    pub member_name: String,
    pub org_name: String,
    pub state: receipts::RecipientState,
    pub answers: Vec<SurveyAnswer>,
}

pub(crate) const NOT_FOUND: &str = "this link is not valid";

/// Resolves a personal-link token; every failure is the same 404.
pub async fn resolve(state: &AppState, conn: &mut sqlx::AnyConnection, token: &str) -> ApiResult<Receipt> {
    let (message_id, member_id) =
        state.jwt.verify_receipt_token(token).ok_or_else(|| ApiError::NotFound(NOT_FOUND.into()))?;
    load(conn, &message_id, &member_id).await
}

/// The receipt of a member known to be the caller (personal link or guardian app).
pub async fn load(conn: &mut sqlx::AnyConnection, message_id: &str, member_id: &str) -> ApiResult<Receipt> {
    let not_found = || ApiError::NotFound(NOT_FOUND.into());
    let message = messages::find_unscoped(conn, message_id).await?.ok_or_else(not_found)?;
    let state = receipts::find(conn, message_id, member_id).await?.ok_or_else(not_found)?;
    let member = members::find(conn, &message.org_id, member_id).await?.ok_or_else(not_found)?;
    let org = organizations::find(conn, &message.org_id).await?.ok_or_else(not_found)?;
    let answers = receipts::answers(conn, message_id, Some(member_id)).await?.into_iter().map(|a| a.answer).collect();
    Ok(Receipt {
        member_name: member.row.name,
        org_name: org.name,
        member_id: member_id.to_string(),
        state,
        answers,
        message,
    })
}

impl Receipt {
    pub fn survey(&self) -> Option<&Survey> {
        self.message.content.survey.as_ref()
    }

    pub fn deadline_passed(&self) -> bool {
        self.message.deadline_passed(Utc::now())
    }
}

/// Acknowledges (確認) for every address and device of the guardian at once (one row):
/// the one way in for the JSON link, the page's form and the app, batched with every other
/// acknowledgement arriving meanwhile (`db::ack_writer`). Answers the recipient's state;
/// 404 when the guardian did not receive the message.
pub async fn acknowledge_receipt(
    state: &AppState,
    message_id: &str,
    member_id: &str,
) -> ApiResult<receipts::RecipientState> {
    state.acks.acknowledge(message_id, member_id).await?.ok_or_else(|| ApiError::NotFound(NOT_FOUND.into()))
}

/// Checks and stores a complete set of answers; answering an answer-required message also
/// acknowledges it.
pub async fn store_answers(
    conn: &mut sqlx::AnyConnection,
    receipt: &Receipt,
    answers: &[SurveyAnswer],
) -> ApiResult<()> {
    let survey = receipt.survey().ok_or_else(|| ApiError::Conflict {
        detail: "this message has no survey".into(),
        field: Some("answers".into()),
    })?;
    if receipt.deadline_passed() {
        return Err(ApiError::Conflict {
            detail: "the answer deadline has passed; answers can no longer change".into(),
            field: Some("answers".into()),
        });
    }
    let answers = check_answers(survey, answers).map_err(ApiError::Validation)?;
    receipts::save_answers(conn, &receipt.message.org_id, &receipt.message.id, &receipt.member_id, &answers).await?;
    if receipt.message.content.answer_required {
        receipts::acknowledge(conn, &receipt.message.id, &receipt.member_id).await?;
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct AttachmentLink {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Downloadable with the personal link itself.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptMessage {
    pub id: String,
    pub org_name: String,
    pub subject: String,
    pub body: String,
    pub from_name: Option<String>,
    pub priority: Priority,
    pub sent_at: Option<DateTime<Utc>>,
    pub answer_required: bool,
    pub answer_deadline: Option<DateTime<Utc>>,
    pub survey: Option<Survey>,
    pub attachments: Vec<AttachmentLink>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptResponse {
    pub message: ReceiptMessage,
    /// The guardian's name, so a shared phone shows whose link this is.
    pub name: String,
    pub read_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answers: Vec<SurveyAnswer>,
}

pub async fn receipt_response(
    conn: &mut sqlx::AnyConnection,
    receipt: Receipt,
    attachment_url: impl Fn(&str) -> String,
) -> ApiResult<ReceiptResponse> {
    let files = attachments::attachments(conn, &receipt.message.id).await?;
    let m = receipt.message;
    let c = m.content;
    Ok(ReceiptResponse {
        message: ReceiptMessage {
            attachments: files
                .into_iter()
                .map(|a| AttachmentLink {
                    url: attachment_url(&a.id),
                    id: a.id,
                    filename: a.filename,
                    content_type: a.content_type,
                    size: a.size,
                })
                .collect(),
            priority: c.priority,
            sent_at: m.sent_at,
            answer_required: c.answer_required,
            answer_deadline: c.answer_deadline,
            survey: c.survey,
            id: m.id,
            org_name: receipt.org_name,
            subject: c.subject,
            body: c.body,
            from_name: c.from_name,
        },
        name: receipt.member_name,
        read_at: receipt.state.read_at.map(time),
        acknowledged_at: receipt.state.acknowledged_at.map(time),
        answered_at: receipt.state.answered_at.map(time),
        answers: receipt.answers,
    })
}

async fn json_view(state: &AppState, token: &str) -> ApiResult<web::Json<ReceiptResponse>> {
    let mut conn = state.db.pool.acquire().await?;
    let receipt = resolve(state, &mut conn, token).await?;
    Ok(web::Json(
        receipt_response(&mut conn, receipt, |id| state.config.public_link(&format!("r/{token}/attachments/{id}")))
            .await?,
    ))
}

/// The message behind a personal link; the first call records it as read.
#[utoipa::path(tag = "receipts", params(("token" = String, Path, description = "From the personal link")),
    security(), responses(
    (status = 200, body = ReceiptResponse),
    (status = 404, description = "Not a valid link", body = Problem, content_type = "application/problem+json"),
))]
#[get("/receipts/{token}")]
pub async fn get_receipt(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<web::Json<ReceiptResponse>> {
    {
        let mut conn = state.db.pool.acquire().await?;
        let receipt = resolve(&state, &mut conn, &token).await?;
        receipts::mark_read(&mut conn, &receipt.message.id, &receipt.member_id).await?;
    }
    json_view(&state, &token).await
}

#[derive(Serialize, ToSchema)]
pub struct AcknowledgeResponse {
    pub message_id: String,
    pub read_at: Option<DateTime<Utc>>,
    /// The first acknowledgement's time; acknowledging again changes nothing.
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Acknowledge (確認). Idempotent; covers all of the guardian's addresses and devices.
/// One signature check and a share of one batched statement: the path a whole school takes
/// within minutes.
#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(), responses(
    (status = 200, body = AcknowledgeResponse),
    NotFound,
))]
#[post("/receipts/{token}/ack")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<web::Json<AcknowledgeResponse>> {
    let (message_id, member_id) =
        state.jwt.verify_receipt_token(&token).ok_or_else(|| ApiError::NotFound(NOT_FOUND.into()))?;
    let acknowledged = acknowledge_receipt(&state, &message_id, &member_id).await?;
    Ok(web::Json(AcknowledgeResponse {
        message_id,
        read_at: acknowledged.read_at.map(time),
        acknowledged_at: acknowledged.acknowledged_at.map(time),
        answered_at: acknowledged.answered_at.map(time),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersRequest {
    /// The complete set: it replaces earlier answers (until the deadline).
    #[schema(example = json!([{"question": 0, "choices": [1]}, {"question": 2, "text": "よろしくお願いします"}]))]
    pub answers: Vec<SurveyAnswer>,
}

/// Answer the survey; replaces earlier answers until the deadline.
#[utoipa::path(tag = "receipts", params(("token" = String, Path)), request_body = AnswersRequest, security(), responses(
    (status = 200, body = ReceiptResponse),
    (status = 409, description = "No survey, or the deadline has passed", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Answers that do not fit the survey", body = Problem, content_type = "application/problem+json"),
    NotFound,
))]
#[put("/receipts/{token}/answers")]
pub async fn answer(
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: JsonBody<AnswersRequest>,
) -> ApiResult<web::Json<ReceiptResponse>> {
    {
        let mut tx = state.db.begin().await?;
        let receipt = resolve(&state, &mut tx, &token).await?;
        store_answers(&mut tx, &receipt, &body.0.answers).await?;
        tx.commit().await?;
    }
    json_view(&state, &token).await
}

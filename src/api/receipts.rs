//! The guardian's side of a message, through the personal link in every e-mail: a small
//! server-rendered page that works on any phone without JavaScript (`/r/{token}`), and the
//! same as JSON (`/api/v1/receipts/{token}`) for other clients.
//!
//! The token itself is the credential: unguessable, signed, bound to one (message,
//! guardian). Anything forged, altered or foreign answers 404, never saying which part was
//! wrong. Form posts also carry a second value derived from the token (and are refused
//! from another site's Origin), so a page elsewhere cannot post in the guardian's name.

use std::fmt::Write;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JSON_LIMIT, JsonBody, read_body};
use crate::api::problem_responses::NotFound;
use crate::api::time;
use crate::db::repositories::{attachments, members, messages, organizations, receipts};
use crate::domain::message::{Message, Priority};
use crate::domain::survey::{QuestionKind, Survey, SurveyAnswer, check_answers};
use crate::domain::{FieldError, jst};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_receipt).service(acknowledge).service(answer);
}

pub fn configure_pages(cfg: &mut ServiceConfig) {
    cfg.service(page).service(page_ack).service(page_answers).service(page_attachment);
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

const NOT_FOUND: &str = "this link is not valid";

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

    fn deadline_passed(&self) -> bool {
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

// ---- The page ----------------------------------------------------------------------

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The form value that proves a post came from the page the token opened.
fn csrf_value(state: &AppState, token: &str) -> String {
    state.jwt.form_key(token)
}

fn render(
    state: &AppState,
    token: &str,
    receipt: &Receipt,
    files: &[attachments::AttachmentRow],
    errors: &[FieldError],
    notice: Option<&str>,
) -> HttpResponse {
    let m = &receipt.message.content;
    let survey = receipt.survey();
    let emergency = receipt.message.is_emergency();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>\
         body{{font-family:sans-serif;line-height:1.6;max-width:40em;margin:0 auto;padding:1em;color:#222}}\
         .org{{color:#555;margin:0}} h1{{font-size:1.3em;margin:.3em 0}} .meta{{color:#666;font-size:.9em}}\
         .emergency{{color:#b00020}} .body{{white-space:pre-wrap;border-top:1px solid #ddd;padding-top:1em}}\
         fieldset{{border:1px solid #ccc;margin:1em 0;padding:.5em 1em}} .error{{color:#b00020}}\
         button{{font-size:1.1em;padding:.6em 1.4em;margin:.5em 0}} .done{{color:#1b5e20;font-weight:bold}}\
         textarea{{width:100%;min-height:5em}}</style></head><body><main>",
        escape(&m.subject)
    );
    let _ = write!(html, "<p class=\"org\">{}</p>", escape(&receipt.org_name));
    let _ = write!(
        html,
        "<h1{}>{}{}</h1>",
        if emergency { " class=\"emergency\"" } else { "" },
        if emergency { "【緊急】" } else { "" },
        escape(&m.subject)
    );
    let _ = write!(
        html,
        "<p class=\"meta\">{}{}<br>{} 様</p>",
        m.from_name.as_deref().map(|f| format!("{} ・ ", escape(f))).unwrap_or_default(),
        receipt.message.sent_at.map(jst::format_datetime).unwrap_or_default(),
        escape(&receipt.member_name)
    );
    if let Some(notice) = notice {
        let _ = write!(html, "<p class=\"done\">{}</p>", escape(notice));
    }
    let _ = write!(html, "<div class=\"body\">{}</div>", escape(&m.body));
    if !files.is_empty() {
        html.push_str("<h2>添付ファイル</h2><ul>");
        for file in files {
            let _ = write!(
                html,
                "<li><a href=\"{}\">{}</a> ({} KB)</li>",
                escape(&state.config.public_link(&format!("r/{token}/attachments/{}", file.id))),
                escape(&file.filename),
                (file.size + 1023) / 1024
            );
        }
        html.push_str("</ul>");
    }
    let csrf = csrf_value(state, token);
    let page_url = escape(&state.config.public_link(&format!("r/{token}")));
    match receipt.state.acknowledged_at {
        Some(at) => {
            let _ = write!(html, "<p class=\"done\">確認済み（{}）</p>", jst::format_datetime(time(at)));
        }
        None => {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"{page_url}/ack\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">確認しました</button></form>"
            );
        }
    }
    if let Some(survey) = survey {
        html.push_str("<h2>アンケート</h2>");
        if let Some(deadline) = m.answer_deadline {
            let _ = write!(html, "<p>回答期限: {}</p>", jst::format_datetime(deadline));
        }
        for error in errors {
            let _ = write!(html, "<p class=\"error\">{}</p>", escape(&page_error(survey, error)));
        }
        let closed = receipt.deadline_passed();
        let _ = write!(
            html,
            "<form method=\"post\" action=\"{page_url}/answers\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        );
        for (i, question) in survey.questions.iter().enumerate() {
            let current = receipt.answers.iter().find(|a| a.question == i);
            let _ = write!(
                html,
                "<fieldset><legend>{}{}</legend>",
                escape(&question.text),
                if question.required { "（必須）" } else { "" }
            );
            match question.kind {
                QuestionKind::Text => {
                    let _ = write!(
                        html,
                        "<textarea name=\"q{i}\" maxlength=\"1000\"{}>{}</textarea>",
                        if closed { " disabled" } else { "" },
                        escape(current.and_then(|a| a.text.as_deref()).unwrap_or(""))
                    );
                }
                kind => {
                    let input = if kind == QuestionKind::Single { "radio" } else { "checkbox" };
                    for (j, option) in question.options.iter().enumerate() {
                        let checked = current.and_then(|a| a.choices.as_ref()).is_some_and(|c| c.contains(&j));
                        let _ = write!(
                            html,
                            "<label><input type=\"{input}\" name=\"q{i}\" value=\"{j}\"{}{}> {}</label><br>",
                            if checked { " checked" } else { "" },
                            if closed { " disabled" } else { "" },
                            escape(option)
                        );
                    }
                }
            }
            html.push_str("</fieldset>");
        }
        if closed {
            html.push_str("<p>回答期限を過ぎたため、回答は変更できません。</p></form>");
        } else {
            let label = if receipt.state.answered_at.is_some() { "回答を変更する" } else { "回答する" };
            let _ = write!(html, "<button type=\"submit\">{label}</button></form>");
        }
    }
    html.push_str("</main></body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"))
        .body(html)
}

/// The page speaks of question numbers as people count them, in Japanese.
fn page_error(survey: &Survey, error: &FieldError) -> String {
    // `answers[i]…`: the page posts every question in order, so i is the question. A missing
    // required answer is reported on `answers` as "question N (…) is required".
    let indexed = error
        .field
        .strip_prefix("answers[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    let required = error
        .message
        .strip_prefix("question ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|i| i.parse::<usize>().ok());
    match (indexed, required) {
        (_, Some(i)) if error.message.ends_with("is required") => match survey.questions.get(i) {
            Some(q) => format!("質問{}（{}）に回答してください。", i + 1, q.text),
            None => error.message.clone(),
        },
        (Some(i), _) => match survey.questions.get(i) {
            Some(q) => format!("質問{}（{}）: {}", i + 1, q.text, error.message),
            None => error.message.clone(),
        },
        _ => error.message.clone(),
    }
}

async fn show(state: &AppState, token: &str, errors: &[FieldError], notice: Option<&str>) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    let receipt = resolve(state, &mut conn, token).await.map_err(|_| ApiError::NotFound(NOT_FOUND.into()))?;
    let files = attachments::attachments(&mut conn, &receipt.message.id).await?;
    Ok(render(state, token, &receipt, &files, errors, notice))
}

fn not_found_page() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
               <title>リンクが無効です</title></head><body><p>このリンクは無効です。メールに書かれたリンクをそのまま開いてください。</p>\
               <p>This link is not valid.</p></body></html>")
}

/// The guardian's page for one message: read it, acknowledge, answer. Opening it records
/// the message as read.
#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(), responses(
    (status = 200, description = "The page", body = String, content_type = "text/html"),
    (status = 404, description = "Not a valid link", body = String, content_type = "text/html"),
))]
#[get("/r/{token}")]
pub async fn page(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    let Ok(receipt) = resolve(&state, &mut conn, &token).await else { return Ok(not_found_page()) };
    receipts::mark_read(&mut conn, &receipt.message.id, &receipt.member_id).await?;
    drop(conn);
    show(&state, &token, &[], None).await
}

/// Reads the posted form after checking where it came from.
async fn posted_form(
    state: &AppState,
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
    token: &str,
) -> ApiResult<Vec<(String, String)>> {
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let ours = state.config.public_url.origin().ascii_serialization();
        let host = req.connection_info().host().to_string();
        if origin != ours && !origin.ends_with(&format!("//{host}")) {
            return Err(ApiError::Forbidden("this form was posted from another site".into()));
        }
    }
    let body = read_body(req, payload, &["application/x-www-form-urlencoded"], JSON_LIMIT).await?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if csrf != Some(csrf_value(state, token).as_str()) {
        return Err(ApiError::Forbidden("the form is not from this page; open the link again".into()));
    }
    Ok(fields)
}

fn back_to_page(state: &AppState, token: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, state.config.public_link(&format!("r/{token}")))).finish()
}

#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(), responses(
    (status = 303, description = "Back to the page"),
    (status = 403, description = "Posted from elsewhere", body = Problem, content_type = "application/problem+json"),
))]
#[post("/r/{token}/ack")]
pub async fn page_ack(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    let Ok(receipt) = resolve(&state, &mut conn, &token).await else { return Ok(not_found_page()) };
    drop(conn);
    posted_form(&state, &req, &mut payload.into_inner(), &token).await?;
    acknowledge_receipt(&state, &receipt.message.id, &receipt.member_id).await?;
    Ok(back_to_page(&state, &token))
}

#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(), responses(
    (status = 200, description = "The page again, with what was wrong", body = String, content_type = "text/html"),
    (status = 303, description = "Saved; back to the page"),
))]
#[post("/r/{token}/answers")]
pub async fn page_answers(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let Ok(receipt) = resolve(&state, &mut tx, &token).await else { return Ok(not_found_page()) };
    let fields = posted_form(&state, &req, &mut payload.into_inner(), &token).await?;
    let Some(survey) = receipt.survey() else { return Ok(back_to_page(&state, &token)) };
    let answers: Vec<SurveyAnswer> = survey
        .questions
        .iter()
        .enumerate()
        .map(|(i, question)| {
            let values: Vec<&str> =
                fields.iter().filter(|(k, _)| *k == format!("q{i}")).map(|(_, v)| v.as_str()).collect();
            match question.kind {
                QuestionKind::Text => SurveyAnswer {
                    question: i,
                    choices: None,
                    text: Some(values.first().copied().unwrap_or("").to_string()),
                },
                _ => SurveyAnswer {
                    question: i,
                    choices: Some(values.iter().filter_map(|v| v.parse().ok()).collect()),
                    text: None,
                },
            }
        })
        .collect();
    match store_answers(&mut tx, &receipt, &answers).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to_page(&state, &token))
        }
        Err(ApiError::Validation(errors)) => show(&state, &token, &errors, None).await,
        Err(ApiError::Conflict { detail, .. }) => {
            show(&state, &token, &[FieldError::new("answers", detail)], None).await
        }
        Err(other) => Err(other),
    }
}

/// An attachment, for the guardians who received the message.
#[utoipa::path(tag = "receipts", params(("token" = String, Path), ("attachment_id" = String, Path)), security(), responses(
    (status = 200, description = "The file", body = Vec<u8>, content_type = "application/octet-stream"),
    NotFound,
))]
#[get("/r/{token}/attachments/{attachment_id}")]
pub async fn page_attachment(state: web::Data<AppState>, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let (token, attachment_id) = path.into_inner();
    let mut conn = state.db.pool.acquire().await?;
    let receipt = resolve(&state, &mut conn, &token).await?;
    crate::api::attachments::download(&mut conn, &receipt.message.org_id, &receipt.message.id, &attachment_id).await
}

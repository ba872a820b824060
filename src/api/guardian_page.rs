//! The guardian's page for one message (`/r/{token}`): a small server-rendered page that
//! works on any phone without JavaScript, to read, acknowledge (確認) and answer. Form posts
//! carry a second value derived from the token (and are refused from another site's
//! Origin), so a page elsewhere cannot post in the guardian's name.

use std::fmt::Write;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::{JSON_LIMIT, read_body};
use crate::api::problem_responses::NotFound;
use crate::api::receipts::{NOT_FOUND, Receipt, acknowledge_receipt, resolve, store_answers};
use crate::api::time;
use crate::db::repositories::{attachments, receipts};
use crate::domain::survey::{QuestionKind, Survey, SurveyAnswer};
use crate::domain::{FieldError, jst};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(page).service(page_ack).service(page_answers).service(page_attachment);
}

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
    posted: Option<&[SurveyAnswer]>,
    notice: Option<&str>,
) -> HttpResponse {
    let m = &receipt.message.content;
    // After a refused post, what the guardian had filled in, so that nothing is typed twice.
    let answers = posted.unwrap_or(&receipt.answers);
    let survey = receipt.survey();
    let emergency = receipt.message.is_emergency();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"same-origin\"><title>{}</title><style>\
         *,::before,::after{{box-sizing:border-box}} html{{-webkit-text-size-adjust:100%;text-size-adjust:100%}}\
         body{{font-family:sans-serif;font-size:16px;line-height:1.6;max-width:40em;margin:0 auto;padding:1em;color:#222;\
         overflow-wrap:break-word;overflow-wrap:anywhere}}\
         .org{{color:#555;margin:0}} h1{{font-size:1.3em;margin:.3em 0}} .meta{{color:#555}}\
         .emergency{{color:#b00020}} .body{{white-space:pre-wrap;border-top:1px solid #ddd;padding-top:1em}}\
         .files{{padding-left:1.2em}} .files a{{display:inline-block;min-height:44px;padding:.6em 0}}\
         fieldset{{border:1px solid #ccc;margin:1em 0;padding:.5em 1em;min-width:0}} .error{{color:#b00020;font-weight:bold}}\
         .option{{display:flex;align-items:center;gap:.6em;min-height:44px}} .option input{{width:1.4em;height:1.4em;margin:0;flex:none}}\
         button,textarea{{font:inherit}} button{{font-size:1.1em;width:100%;min-height:44px;padding:.6em 1.4em;margin:.5em 0}}\
         .done{{color:#1b5e20;font-weight:bold}} textarea{{width:100%;min-height:5em;padding:.4em}}</style></head><body><main>",
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
        html.push_str("<h2>添付ファイル</h2><ul class=\"files\">");
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
        html.push_str("<h2 id=\"survey\">アンケート</h2>");
        if let Some(deadline) = m.answer_deadline {
            let _ = write!(html, "<p>回答期限: {}</p>", jst::format_datetime(deadline));
        }
        // An error about one question is shown in that question's box; others above the form.
        for error in errors.iter().filter(|e| question_of(e).is_none_or(|i| i >= survey.questions.len())) {
            let _ = write!(html, "<p class=\"error\">{}</p>", escape(&page_error(survey, error)));
        }
        let closed = receipt.deadline_passed();
        let _ = write!(
            html,
            // `#survey`: the page the post leads to (errors, or the answers saved) opens at the
            // survey, not at the top, where the guardian would not see what happened.
            "<form method=\"post\" action=\"{page_url}/answers#survey\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        );
        for (i, question) in survey.questions.iter().enumerate() {
            let current = answers.iter().find(|a| a.question == i);
            let _ = write!(
                html,
                "<fieldset><legend>{}{}</legend>",
                escape(&question.text),
                if question.required { "（必須）" } else { "" }
            );
            for error in errors.iter().filter(|e| question_of(e) == Some(i)) {
                let _ = write!(html, "<p class=\"error\">{}</p>", escape(&page_error(survey, error)));
            }
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
                            "<label class=\"option\"><input type=\"{input}\" name=\"q{i}\" value=\"{j}\"{}{}>{}</label>",
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
    html_page(StatusCode::OK, html)
}

/// The address of a guardian's page holds their token, so no other site may see it as a
/// referrer. But not `no-referrer` (the default of every other answer): under it a browser
/// posts the page's own forms with `Origin: null` (Fetch standard, "append a request `Origin`
/// header"), which `posted_form` must refuse. The pages' `<meta name="referrer">` says the same.
const REFERRER_POLICY: &str = "same-origin";

/// A page for a guardian's browser (this one, the address confirmation): about one person,
/// so never stored; never in a frame; no scripts and nothing fetched from elsewhere; forms
/// post only back here.
pub(crate) fn html_page(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((header::REFERRER_POLICY, REFERRER_POLICY))
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"))
        .body(html)
}

/// The question (0-based) an answer error is about, if it is about one.
fn question_of(error: &FieldError) -> Option<usize> {
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
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|_| error.message.ends_with("is required"));
    required.or(indexed)
}

/// The page speaks of question numbers as people count them, in Japanese.
fn page_error(survey: &Survey, error: &FieldError) -> String {
    let required = error.message.ends_with("is required");
    match question_of(error).and_then(|i| Some((i, survey.questions.get(i)?))) {
        Some((i, q)) if required => format!("質問{}（{}）に回答してください。", i + 1, q.text),
        Some((i, q)) => format!("質問{}（{}）: {}", i + 1, q.text, error.message),
        None => error.message.clone(),
    }
}

async fn show(
    state: &AppState,
    token: &str,
    errors: &[FieldError],
    posted: Option<&[SurveyAnswer]>,
    notice: Option<&str>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.pool.acquire().await?;
    let receipt = resolve(state, &mut conn, token).await.map_err(|_| ApiError::NotFound(NOT_FOUND.into()))?;
    let files = attachments::attachments(&mut conn, &receipt.message.id).await?;
    Ok(render(state, token, &receipt, &files, errors, posted, notice))
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
    show(&state, &token, &[], None, None).await
}

/// The receipt a link names and the form posted to it (checked as `posted_form` checks
/// it), or `None` for a link that is not valid. No connection is held while the form
/// arrives: a slow client must hold nothing, least of all SQLite's one writer.
async fn receipt_and_form(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    token: &str,
) -> ApiResult<Option<(Receipt, Vec<(String, String)>)>> {
    let receipt = {
        let mut conn = state.db.pool.acquire().await?;
        let Ok(receipt) = resolve(state, &mut conn, token).await else { return Ok(None) };
        receipt
    };
    let fields = posted_form(state, req, &mut payload.into_inner(), token).await?;
    Ok(Some((receipt, fields)))
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

/// What the page's forms post (documentation only: `posted_form` reads them).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PageForm {
    /// The value the page put in its form; any other is a 403.
    csrf: String,
    /// The answer to question `N` (0-based) is posted as `qN`: the text, or an option's
    /// index, repeated for several choices.
    q0: Option<String>,
}

#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"), responses(
    (status = 303, description = "Back to the page"),
    (status = 403, description = "Posted from elsewhere", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not a valid link", body = String, content_type = "text/html"),
))]
#[post("/r/{token}/ack")]
pub async fn page_ack(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let Some((receipt, _)) = receipt_and_form(&state, &req, payload, &token).await? else {
        return Ok(not_found_page());
    };
    acknowledge_receipt(&state, &receipt.message.id, &receipt.member_id).await?;
    Ok(back_to_page(&state, &token))
}

#[utoipa::path(tag = "receipts", params(("token" = String, Path)), security(),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"), responses(
    (status = 200, description = "The page again, with what was wrong", body = String, content_type = "text/html"),
    (status = 403, description = "Posted from elsewhere", body = Problem, content_type = "application/problem+json"),
    (status = 303, description = "Saved; back to the page"),
    (status = 404, description = "Not a valid link", body = String, content_type = "text/html"),
))]
#[post("/r/{token}/answers")]
pub async fn page_answers(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    // Read whole before the write transaction below.
    let Some((receipt, fields)) = receipt_and_form(&state, &req, payload, &token).await? else {
        return Ok(not_found_page());
    };
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
    let mut tx = state.db.begin().await?;
    match store_answers(&mut tx, &receipt, &answers).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to_page(&state, &token))
        }
        Err(ApiError::Validation(errors)) => show(&state, &token, &errors, Some(answers.as_slice()), None).await,
        Err(ApiError::Conflict { detail, .. }) => {
            show(&state, &token, &[FieldError::new("answers", detail)], None, None).await
        }
        Err(other) => Err(other),
    }
}

/// An attachment, for the guardians who received the message.
#[utoipa::path(tag = "receipts", params(("token" = String, Path), ("attachment_id" = String, Path)), security(), responses(
    crate::api::attachments::AttachmentFile,
    NotFound,
))]
#[get("/r/{token}/attachments/{attachment_id}")]
pub async fn page_attachment(state: web::Data<AppState>, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let (token, attachment_id) = path.into_inner();
    let mut conn = state.db.pool.acquire().await?;
    let receipt = resolve(&state, &mut conn, &token).await?;
    crate::api::attachments::download(&mut conn, &receipt.message.org_id, &receipt.message.id, &attachment_id).await
}

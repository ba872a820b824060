//! For staff: survey results (JSON or CSV for Excel) and follow-up of those who have not
//! answered.

use std::collections::HashMap;

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::QueryParams;
use crate::api::messages::find;
use crate::api::problem_responses::{NotFound, Validation};
use crate::api::time;
use crate::auth::Caller;
use crate::db::repositories::receipts::{self, GuardianAnswer};
use crate::domain::Scope;
use crate::domain::roster_csv::neutralise;
use crate::domain::survey::{QuestionKind, Survey};
use crate::error::ApiResult;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(results);
}

#[derive(Serialize, ToSchema)]
pub struct OptionCount {
    pub option: String,
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TextAnswer {
    pub member_id: String,
    pub name: String,
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct QuestionResult {
    pub question: usize,
    pub text: String,
    pub kind: QuestionKind,
    /// Choice questions: guardians per option (their latest answers, each once).
    pub options: Vec<OptionCount>,
    /// Text questions: every answer.
    pub texts: Vec<TextAnswer>,
    /// Guardians who answered this question.
    pub answered: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ResultsResponse {
    pub recipients: i64,
    pub answered: i64,
    pub questions: Vec<QuestionResult>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// `csv`: one row per guardian, UTF-8 with BOM for Excel; `json` when absent.
    #[param(inline)]
    pub format: Option<ResultsFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultsFormat {
    Json,
    Csv,
}

/// Survey tallies per question; `?format=csv` for one row per guardian.
#[utoipa::path(tag = "messages", params(("id" = String, Path), ResultsQuery), responses(
    (status = 200, description = "JSON, or with `format=csv` the answers as CSV (`Content-Disposition: attachment`)",
        content((ResultsResponse = "application/json"), (String = "text/csv"))),
    NotFound, Validation,
))]
#[get("/messages/{id}/results")]
pub async fn results(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: QueryParams<ResultsQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Scope::MessagesRead)?;
    let csv = query.0.format == Some(ResultsFormat::Csv);
    let mut conn = state.db.pool.acquire().await?;
    let message = find(&mut conn, &caller, &id).await?;
    let survey = message.content.survey.unwrap_or(Survey { questions: vec![] });
    let rows = receipts::result_rows(&mut conn, &id).await?;
    let answers = receipts::answers(&mut conn, &id, None).await?;
    let names: HashMap<&str, &str> = rows.iter().map(|r| (r.member_id.as_str(), r.name.as_str())).collect();
    if csv {
        return Ok(results_csv(&survey, &rows, &answers));
    }
    let questions = survey
        .questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let of_question: Vec<_> =
                answers.iter().filter(|a| a.answer.question == i).map(|a| (a.member_id.as_str(), &a.answer)).collect();
            QuestionResult {
                question: i,
                text: q.text.clone(),
                kind: q.kind,
                options: q
                    .options
                    .iter()
                    .enumerate()
                    .map(|(j, option)| OptionCount {
                        option: option.clone(),
                        count: of_question
                            .iter()
                            .filter(|(_, a)| a.choices.as_ref().is_some_and(|c| c.contains(&j)))
                            .count() as i64,
                    })
                    .collect(),
                texts: of_question
                    .iter()
                    .filter_map(|(member, a)| {
                        a.text.clone().map(|text| TextAnswer {
                            member_id: member.to_string(),
                            name: names.get(member).unwrap_or(&"").to_string(),
                            text,
                        })
                    })
                    .collect(),
                answered: of_question.len() as i64,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ResultsResponse {
        recipients: rows.len() as i64,
        answered: rows.iter().filter(|r| r.answered_at.is_some()).count() as i64,
        questions,
    }))
}

fn results_csv(survey: &Survey, rows: &[receipts::ResultRow], answers: &[GuardianAnswer]) -> HttpResponse {
    let stamp = |ms: Option<i64>| ms.map(|t| time(t).to_rfc3339()).unwrap_or_default();
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let mut header: Vec<String> =
        ["name", "student_name", "external_id", "read_at", "acknowledged_at", "answered_at"].map(String::from).to_vec();
    header.extend(survey.questions.iter().enumerate().map(|(i, q)| format!("Q{} {}", i + 1, q.text)));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![
            row.name.clone(),
            row.student_name.clone().unwrap_or_default(),
            row.external_id.clone().unwrap_or_default(),
            stamp(row.read_at),
            stamp(row.acknowledged_at),
            stamp(row.answered_at),
        ];
        for (i, question) in survey.questions.iter().enumerate() {
            let answer = answers
                .iter()
                .find(|a| a.member_id == row.member_id && a.answer.question == i)
                .map(|a| a.answer.clone());
            line.push(match answer {
                Some(a) => match (a.text, a.choices) {
                    (Some(text), _) => text,
                    (_, Some(choices)) => {
                        choices.iter().filter_map(|c| question.options.get(*c).cloned()).collect::<Vec<_>>().join(";")
                    }
                    _ => String::new(),
                },
                None => String::new(),
            });
        }
        lines.push(line);
    }
    for line in lines {
        let cells: Vec<String> = line.iter().map(|c| neutralise(c).into_owned()).collect();
        let _ = writer.write_record(&cells);
    }
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend(writer.into_inner().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"results.csv\""))
        .body(body)
}

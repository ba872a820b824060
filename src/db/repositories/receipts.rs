//! What guardians do with a message: read it, acknowledge it, answer its survey.

use std::collections::{BTreeSet, HashMap};

use sqlx::AnyConnection;

use crate::db::sql::Sql;
use crate::db::{RepoError, RepoResult, now_ms};
use crate::domain::message::Priority;
use crate::domain::survey::SurveyAnswer;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientState {
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub answered_at: Option<i64>,
}

pub async fn find(conn: &mut AnyConnection, message_id: &str, member_id: &str) -> RepoResult<Option<RecipientState>> {
    Ok(sqlx::query_as(
        "SELECT read_at, acknowledged_at, answered_at FROM recipients WHERE message_id = $1 AND member_id = $2",
    )
    .bind(message_id)
    .bind(member_id)
    .fetch_optional(conn)
    .await?)
}

/// The first opening counts; later ones change nothing.
pub async fn mark_read(conn: &mut AnyConnection, message_id: &str, member_id: &str) -> RepoResult<()> {
    sqlx::query("UPDATE recipients SET read_at = $3 WHERE message_id = $1 AND member_id = $2 AND read_at IS NULL")
        .bind(message_id)
        .bind(member_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// One guardian among a message's recipients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientKey {
    pub message_id: String,
    pub member_id: String,
}

/// Idempotent: the first acknowledgement's time stays. Acknowledging implies reading.
/// Answers the recipient's state (None: no such recipient).
pub async fn acknowledge(
    conn: &mut AnyConnection,
    message_id: &str,
    member_id: &str,
) -> RepoResult<Option<RecipientState>> {
    let key = RecipientKey { message_id: message_id.to_string(), member_id: member_id.to_string() };
    let mut states = acknowledge_many(conn, &[&key]).await?;
    Ok(states.remove(&key))
}

#[derive(sqlx::FromRow)]
struct AcknowledgedRow {
    message_id: String,
    member_id: String,
    read_at: Option<i64>,
    acknowledged_at: Option<i64>,
    answered_at: Option<i64>,
}

/// [`acknowledge`] for many recipients in one statement: the states of those that exist.
/// Repeated keys are harmless.
pub async fn acknowledge_many(
    conn: &mut AnyConnection,
    keys: &[&RecipientKey],
) -> RepoResult<HashMap<RecipientKey, RecipientState>> {
    let now = now_ms();
    let distinct: Vec<&RecipientKey> = keys.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let mut states = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(500) {
        let mut sql = Sql::new("UPDATE recipients SET acknowledged_at = COALESCE(acknowledged_at, ");
        sql.bind(now).push("), read_at = COALESCE(read_at, ").bind(now).push(") FROM (VALUES ");
        for (i, key) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(key.message_id.as_str())
                .push(", ")
                .bind(key.member_id.as_str())
                .push(")");
        }
        sql.push(
            ") AS v WHERE recipients.message_id = v.column1 AND recipients.member_id = v.column2 \
             RETURNING recipients.message_id, recipients.member_id, read_at, acknowledged_at, answered_at",
        );
        let rows: Vec<AcknowledgedRow> = sql.query_as(conn).fetch_all(&mut *conn).await?;
        for row in rows {
            let state = RecipientState {
                read_at: row.read_at,
                acknowledged_at: row.acknowledged_at,
                answered_at: row.answered_at,
            };
            states.insert(RecipientKey { message_id: row.message_id, member_id: row.member_id }, state);
        }
    }
    Ok(states)
}

/// Replaces the guardian's answers with these.
pub async fn save_answers(
    conn: &mut AnyConnection,
    org_id: &str,
    message_id: &str,
    member_id: &str,
    answers: &[SurveyAnswer],
) -> RepoResult<()> {
    let now = now_ms();
    sqlx::query("DELETE FROM answers WHERE message_id = $1 AND member_id = $2")
        .bind(message_id)
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    if !answers.is_empty() {
        let mut sql = Sql::new(
            "INSERT INTO answers (message_id, member_id, org_id, question, choices, text, answered_at) VALUES ",
        );
        for (i, answer) in answers.iter().enumerate() {
            let choices = answer.choices.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default());
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(message_id)
                .push(", ")
                .bind(member_id)
                .push(", ")
                .bind(org_id)
                .push(", ")
                .bind(answer.question as i64)
                .push(", ");
            sql.bind(choices).push(", ").bind(answer.text.clone()).push(", ").bind(now).push(")");
        }
        sql.query(conn).execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE recipients SET answered_at = $3, read_at = COALESCE(read_at, $3) WHERE message_id = $1 AND member_id = $2")
        .bind(message_id)
        .bind(member_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct AnswerRow {
    member_id: String,
    question: i64,
    choices: Option<String>,
    text: Option<String>,
}

/// One guardian's answer to one question.
#[derive(Debug, Clone)]
pub struct GuardianAnswer {
    pub member_id: String,
    pub answer: SurveyAnswer,
}

impl TryFrom<AnswerRow> for GuardianAnswer {
    type Error = RepoError;

    fn try_from(row: AnswerRow) -> RepoResult<GuardianAnswer> {
        let choices = row
            .choices
            .as_deref()
            .map(|c| serde_json::from_str(c).map_err(|e| RepoError::corrupt("answer choices", e)))
            .transpose()?;
        let question = usize::try_from(row.question).map_err(|e| RepoError::corrupt("answer question", e))?;
        Ok(GuardianAnswer { member_id: row.member_id, answer: SurveyAnswer { question, choices, text: row.text } })
    }
}

/// The answers of one guardian, or of everyone (`member_id` None), by member and question.
pub async fn answers(
    conn: &mut AnyConnection,
    message_id: &str,
    member_id: Option<&str>,
) -> RepoResult<Vec<GuardianAnswer>> {
    let mut sql = Sql::new("SELECT member_id, question, choices, text FROM answers WHERE message_id = ");
    sql.bind(message_id);
    if let Some(member_id) = member_id {
        sql.push(" AND member_id = ").bind(member_id);
    }
    sql.push(" ORDER BY member_id, question");
    let rows: Vec<AnswerRow> = sql.query_as(conn).fetch_all(conn).await?;
    rows.into_iter().map(GuardianAnswer::try_from).collect()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    pub message_id: String,
    pub subject: String,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub sent_at: Option<i64>,
    pub answer_required: i64,
    pub answer_deadline: Option<i64>,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub answered_at: Option<i64>,
}

/// A guardian's messages, newest first (message ids are time-ordered).
pub async fn inbox(
    conn: &mut AnyConnection,
    member_id: &str,
    before: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<InboxRow>> {
    let mut sql = Sql::new(
        "SELECT r.message_id, m.subject, m.priority, m.sent_at, m.answer_required, m.answer_deadline, r.read_at, r.acknowledged_at, r.answered_at \
         FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.member_id = ",
    );
    sql.bind(member_id);
    if let Some(before) = before {
        sql.push(" AND r.message_id < ").bind(before);
    }
    sql.push(" ORDER BY r.message_id DESC LIMIT ").bind(limit);
    Ok(sql.query_as(conn).fetch_all(conn).await?)
}

pub async fn unread_count(conn: &mut AnyConnection, member_id: &str) -> RepoResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recipients WHERE member_id = $1 AND read_at IS NULL")
        .bind(member_id)
        .fetch_one(conn)
        .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResultRow {
    pub member_id: String,
    pub name: String,
    pub student_name: Option<String>,
    pub external_id: Option<String>,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub answered_at: Option<i64>,
}

/// Every recipient of a message with their response times, by name.
pub async fn result_rows(conn: &mut AnyConnection, message_id: &str) -> RepoResult<Vec<ResultRow>> {
    Ok(sqlx::query_as(
        "SELECT r.member_id, m.name, m.student_name, m.external_id, r.read_at, r.acknowledged_at, r.answered_at \
         FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = $1 ORDER BY m.name, r.member_id",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?)
}

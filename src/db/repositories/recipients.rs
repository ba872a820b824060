//! A message's recipients as staff follow them: how many read, acknowledged and answered,
//! and a page of recipients with each of their jobs.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::jobs::follow_up_condition;
use super::messages::stored_time;
use crate::db::sql::Sql;
use crate::db::{RepoError, RepoResult};
use crate::domain::delivery::JobStatus;
use crate::domain::member::Platform;
use crate::domain::message::{Channel, FollowUp};

/// How the recipients of a message responded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponseCounts {
    pub recipients: i64,
    pub read: i64,
    pub acknowledged: i64,
    pub answered: i64,
}

pub async fn response_counts(conn: &mut AnyConnection, message_id: &str) -> RepoResult<ResponseCounts> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*) AS recipients, COUNT(read_at) AS read, COUNT(acknowledged_at) AS acknowledged, \
         COUNT(answered_at) AS answered FROM recipients WHERE message_id = $1",
    )
    .bind(message_id)
    .fetch_one(conn)
    .await?)
}

#[derive(Debug, sqlx::FromRow)]
pub struct RecipientRow {
    pub member_id: String,
    pub name: String,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub answered_at: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    member_id: String,
    channel: String,
    address: String,
    platform: Option<String>,
    status: i64,
    attempts: i64,
    last_error: Option<String>,
    updated_at: i64,
}

/// One job of a recipient as the recipients page shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub member_id: String,
    pub channel: Channel,
    /// The address or device token.
    pub address: String,
    pub platform: Option<Platform>,
    pub status: JobStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = RepoError;

    fn try_from(row: DeliveryRow) -> RepoResult<Delivery> {
        Ok(Delivery {
            channel: Channel::parse(&row.channel).ok_or_else(|| RepoError::corrupt("job channel", &row.channel))?,
            platform: row
                .platform
                .map(|p| Platform::parse(&p).ok_or_else(|| RepoError::corrupt("job platform", p)))
                .transpose()?,
            status: JobStatus::from_code(row.status).ok_or_else(|| RepoError::corrupt("job status", row.status))?,
            updated_at: stored_time("job time", row.updated_at)?,
            member_id: row.member_id,
            address: row.address,
            attempts: row.attempts,
            last_error: row.last_error,
        })
    }
}

/// A page of recipients (by member id), all or only those `who` selects, with their jobs.
pub async fn page(
    conn: &mut AnyConnection,
    message_id: &str,
    who: Option<FollowUp>,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<(Vec<RecipientRow>, Vec<Delivery>)> {
    let mut sql = Sql::new(
        "SELECT r.member_id, m.name, r.read_at, r.acknowledged_at, r.answered_at FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = ",
    );
    sql.bind(message_id).push(" AND r.member_id > ").bind(after.unwrap_or(""));
    if let Some(who) = who {
        sql.push(" AND ").push(follow_up_condition(who));
    }
    sql.push(" ORDER BY r.member_id LIMIT ").bind(limit);
    let rows: Vec<RecipientRow> = sql.query_as(conn).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok((rows, vec![]));
    }
    let mut jobs = Sql::new(
        "SELECT member_id, channel, address, platform, status, attempts, last_error, updated_at FROM delivery_jobs WHERE message_id = ",
    );
    jobs.bind(message_id)
        .push(" AND member_id IN (")
        .bind_list(rows.iter().map(|r| r.member_id.as_str()))
        .push(") ORDER BY member_id, id");
    let jobs: Vec<DeliveryRow> = jobs.query_as(conn).fetch_all(conn).await?;
    let jobs = jobs.into_iter().map(Delivery::try_from).collect::<RepoResult<_>>()?;
    Ok((rows, jobs))
}

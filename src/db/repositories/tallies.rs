//! Each message's delivery progress per channel, kept as rows of deltas
//! (migrations/sqlite/0006_delivery_progress.sql): the statements that queue or finish
//! jobs append what they changed, and progress is the sum of a message's few rows instead
//! of a count over its jobs.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use crate::db::sql::Sql;
use crate::db::{RepoError, RepoResult};
use crate::domain::delivery::JobStatus;
use crate::domain::message::Channel;

/// A message's jobs of one channel by state: the change one statement made, or a sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Waiting or being sent.
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
    pub invalid: i64,
    pub skipped: i64,
}

/// Changes to the tallies of (message id, channel), collected in a transaction and written
/// with [`write`] before it commits.
#[derive(Debug, Default)]
pub struct Tallies(BTreeMap<(String, Channel), Tally>);

impl Tallies {
    pub fn queued(&mut self, message_id: &str, channel: Channel, jobs: i64) {
        self.0.entry((message_id.to_string(), channel)).or_default().queued += jobs;
    }

    /// One job of the message left the queue with `outcome`.
    pub fn finished(&mut self, message_id: String, channel: Channel, outcome: JobStatus) {
        let tally = self.0.entry((message_id, channel)).or_default();
        tally.queued -= 1;
        match outcome {
            JobStatus::Sent => tally.sent += 1,
            JobStatus::Bounced => tally.bounced += 1,
            JobStatus::Invalid => tally.invalid += 1,
            JobStatus::Skipped => tally.skipped += 1,
            JobStatus::Failed | JobStatus::Queued | JobStatus::Claimed => tally.failed += 1,
        }
    }
}

/// Appends the changes as rows.
pub async fn write(conn: &mut AnyConnection, tallies: Tallies) -> RepoResult<()> {
    let rows: Vec<_> = tallies.0.into_iter().filter(|(_, tally)| *tally != Tally::default()).collect();
    for chunk in rows.chunks(100) {
        let mut sql = Sql::new(
            "INSERT INTO delivery_tallies (message_id, channel, queued, sent, failed, bounced, invalid, skipped) VALUES ",
        );
        for (i, ((message_id, channel), t)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(message_id.as_str()).push(", ").bind(channel.as_str());
            for count in [t.queued, t.sent, t.failed, t.bounced, t.invalid, t.skipped] {
                sql.push(", ").bind(count);
            }
            sql.push(")");
        }
        sql.query(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TallyRow {
    channel: String,
    queued: i64,
    sent: i64,
    failed: i64,
    bounced: i64,
    invalid: i64,
    skipped: i64,
}

/// The message's jobs by channel and state, summed from its tally rows.
pub async fn of_message(conn: &mut AnyConnection, message_id: &str) -> RepoResult<BTreeMap<Channel, Tally>> {
    // CAST: PostgreSQL sums BIGINT as NUMERIC, which the Any driver does not carry.
    let rows: Vec<TallyRow> = sqlx::query_as(
        "SELECT channel, CAST(SUM(queued) AS BIGINT) AS queued, CAST(SUM(sent) AS BIGINT) AS sent, \
         CAST(SUM(failed) AS BIGINT) AS failed, CAST(SUM(bounced) AS BIGINT) AS bounced, \
         CAST(SUM(invalid) AS BIGINT) AS invalid, CAST(SUM(skipped) AS BIGINT) AS skipped \
         FROM delivery_tallies WHERE message_id = $1 GROUP BY channel",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let channel =
                Channel::parse(&row.channel).ok_or_else(|| RepoError::corrupt("tally channel", &row.channel))?;
            let TallyRow { queued, sent, failed, bounced, invalid, skipped, .. } = row;
            Ok((channel, Tally { queued, sent, failed, bounced, invalid, skipped }))
        })
        .collect()
}

/// How many of the message's jobs are still waiting or being sent.
pub async fn pending(conn: &mut AnyConnection, message_id: &str) -> RepoResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) FROM delivery_tallies WHERE message_id = $1",
    )
    .bind(message_id)
    .fetch_one(conn)
    .await?)
}

//! The delivery queue: the one place a job's life is decided, from the send that queues it
//! to the outcome that ends it.
//!
//! - [`send`]: a message starts; one recipient per guardian and one job per address and
//!   device, in the caller's transaction (the handler's send and the scheduler's due
//!   messages alike);
//! - [`follow_up`]: a resend or a reminder queues new jobs for some recipients;
//! - [`claim`]: a worker takes a batch under a short lease (expired leases go back first),
//!   which it [`renew`]s while it still holds the jobs, so that the jobs of a worker that
//!   died go back within one lease;
//! - [`record`]: the outcomes of a batch, with retries after a backoff, bounces and dead
//!   device tokens; messages whose last job ended are completed and their senders told;
//! - [`release`]: a stopping worker gives back what it claimed but did not send.
//!
//! The SQL is in `db::repositories::jobs`; what is due when comes from `state.clock`.

use std::time::Duration;

use rand::Rng;

use crate::db::repositories::jobs::{self, AddressKey};
use crate::db::repositories::tallies::{self, Tallies};
use crate::db::repositories::{devices, messages};
use crate::db::{Db, RepoResult};
use crate::delivery::notices;
use crate::domain::delivery::{Destination, Job, JobStatus};
use crate::domain::message::{FollowUp, Message};
use crate::state::AppState;

/// How one delivery attempt ended, as a worker hands it to [`record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Try again later; not before `after` when the service named a time.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// A dead device token: the device is removed from the roster.
    Invalid(String),
    Failed(String),
    /// The receiving mail server refused the address.
    Bounced(String),
    /// The channel is not configured on this instance.
    Skipped(String),
}

/// When a transient failure is tried again, and when it becomes final: a job keeps trying
/// (a relay down for hours, a push service throttling) until `max_age` after it was queued
/// (`RENRAKUMO_DELIVERY_MAX_AGE`), or `max_attempts`, whichever comes first.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// A safeguard against a job retried without end; with the default backoff, 24 hours
    /// take about 30 attempts.
    pub max_attempts: i64,
    /// First retry delay; doubled per attempt up to `cap`, with jitter.
    pub base: Duration,
    pub cap: Duration,
    pub max_age: Duration,
}

pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 100,
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl RetryPolicy {
    /// When a job that failed transiently at `now` goes again, or `None` when it has tried
    /// long enough. The last try is at its deadline, not after.
    fn next_attempt(&self, job: &Job, now: i64, after: Option<Duration>) -> Option<i64> {
        let deadline = job.queued_at.saturating_add(self.max_age.as_millis() as i64);
        if job.attempts >= self.max_attempts || now >= deadline {
            return None;
        }
        Some((now + self.delay_ms(job.attempts, after)).min(deadline))
    }

    /// Milliseconds until the next attempt after `attempts` (at least the service's `after`).
    fn delay_ms(&self, attempts: i64, after: Option<Duration>) -> i64 {
        let exponent = (attempts.max(1) - 1).min(20) as u32;
        let base = self.base.as_millis() as i64;
        let delay = base.saturating_mul(1 << exponent).min(self.cap.as_millis() as i64);
        // Full jitter on half the delay: retries of one burst spread out instead of
        // hitting the throttling server together again.
        let jittered = delay / 2 + rand::rng().random_range(0..=delay / 2);
        jittered.max(after.map_or(0, |after| after.as_millis() as i64))
    }
}

/// Starts sending `message` (already moved to `sending`): writes its recipients and jobs in
/// `tx` and commits. A message that reaches no address at all is complete at once. Then, off
/// the caller's time, the copy its sender asked for and, when complete, the summary.
/// Returns how many guardians it reaches.
pub async fn send(
    state: &AppState,
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    message: &Message,
) -> anyhow::Result<i64> {
    let now = state.clock.now_ms();
    let recipients = jobs::fan_out(&mut tx, message, now).await?;
    let completed = messages::complete_finished(&mut tx, std::slice::from_ref(&message.id), now).await?;
    tx.commit().await?;
    let started = Message { recipient_count: recipients, ..message.clone() };
    let state = state.clone();
    tokio::spawn(async move {
        notices::copy_to_sender(&state, &started).await;
        if !completed.is_empty() {
            notices::summary(&state, &started.id).await;
        }
    });
    Ok(recipients)
}

/// Queues the message again, on its channels, for the recipients `who` selects (a resend,
/// a reminder), in the caller's transaction; returns how many guardians.
pub async fn follow_up(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    message: &Message,
    who: FollowUp,
) -> RepoResult<i64> {
    jobs::follow_up(conn, message, who, state.clock.now_ms()).await
}

/// Puts jobs whose lease expired back in the queue, then claims up to `limit` due jobs,
/// emergency first, under a lease of `lease`.
pub async fn claim(state: &AppState, limit: i64, lease: Duration) -> RepoResult<Vec<Job>> {
    let now = state.clock.now_ms();
    let mut conn = state.db.pool.acquire().await?;
    jobs::reclaim_expired(&mut conn, now).await?;
    jobs::claim(&mut conn, limit, now, now + lease.as_millis() as i64).await
}

/// Extends the lease of jobs a worker still holds (sending them, or recording their
/// outcomes).
pub async fn renew(state: &AppState, held: &[Job], lease: Duration) -> RepoResult<()> {
    if held.is_empty() {
        return Ok(());
    }
    let until = state.clock.now_ms() + lease.as_millis() as i64;
    let mut conn = state.db.pool.acquire().await?;
    jobs::renew(&mut conn, held, until).await
}

/// A guardian left the roster (in the caller's transaction): their jobs still waiting end
/// as failed, so nothing more goes to them; returns the messages that are now complete.
pub async fn forget_guardian(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    member_id: &str,
) -> RepoResult<Vec<String>> {
    let now = state.clock.now_ms();
    let touched =
        jobs::fail_pending_of_member(conn, member_id, "the guardian was removed from the roster", now).await?;
    messages::complete_finished(conn, &touched, now).await
}

/// Tells the senders of messages completed outside a worker's round (off the caller's
/// time).
pub fn announce_completed(state: &AppState, completed: Vec<String>) {
    if completed.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for id in completed {
            notices::summary(&state, &id).await;
        }
    });
}

/// Gives claimed jobs back to the queue untried.
pub async fn release(db: &Db, claimed: &[Job]) -> RepoResult<()> {
    if claimed.is_empty() {
        return Ok(());
    }
    let mut conn = db.pool.acquire().await?;
    jobs::release(&mut conn, claimed).await
}

/// Records a batch's outcomes in one transaction, then tells the senders of the messages it
/// completed.
pub async fn record(state: &AppState, retry: &RetryPolicy, outcomes: &[(Job, Outcome)]) -> anyhow::Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut tallies = Tallies::default();
    let mut sent = Vec::new();
    let mut delivered_addresses = Vec::new();
    let mut message_ids: Vec<String> = Vec::new();
    for (job, outcome) in outcomes {
        if !message_ids.contains(&job.message_id) {
            message_ids.push(job.message_id.clone());
        }
        match outcome {
            Outcome::Sent => {
                sent.push(job);
                if let Destination::Email { address } = &job.destination {
                    delivered_addresses
                        .push(AddressKey { member_id: job.member_id.as_str(), address_key: address.to_lowercase() });
                }
            }
            Outcome::Retry { reason, after } => match retry.next_attempt(job, now, *after) {
                Some(run_after) => jobs::retry_later(&mut tx, job, run_after, reason, now).await?,
                None => {
                    let hours = (now - job.queued_at) as f64 / 3_600_000.0;
                    let gave_up = format!("gave up after {} attempts in {hours:.1} h: {reason}", job.attempts);
                    jobs::finish(&mut tx, &[job], JobStatus::Failed, Some(&gave_up), now, &mut tallies).await?;
                }
            },
            Outcome::Failed(reason) => {
                jobs::finish(&mut tx, &[job], JobStatus::Failed, Some(reason), now, &mut tallies).await?;
            }
            Outcome::Invalid(reason) => {
                jobs::finish(&mut tx, &[job], JobStatus::Invalid, Some(reason), now, &mut tallies).await?;
                if let Destination::Device { device_id, .. } = &job.destination
                    && let Some(message) = messages::find_unscoped(&mut tx, &job.message_id).await?
                {
                    // Gone from the roster; the recipients list still shows why.
                    let _ = devices::delete_device(&mut tx, &message.org_id, &job.member_id, device_id).await;
                    tracing::info!(device_id = %device_id, "dead device token removed");
                }
            }
            Outcome::Bounced(reply) => {
                jobs::finish(&mut tx, &[job], JobStatus::Bounced, Some(reply), now, &mut tallies).await?;
                if let Destination::Email { address } = &job.destination {
                    jobs::record_bounce(&mut tx, &job.member_id, &address.to_lowercase()).await?;
                }
            }
            Outcome::Skipped(reason) => {
                jobs::finish(&mut tx, &[job], JobStatus::Skipped, Some(reason), now, &mut tallies).await?
            }
        }
    }
    jobs::finish(&mut tx, &sent, JobStatus::Sent, None, now, &mut tallies).await?;
    jobs::record_delivered(&mut tx, &delivered_addresses).await?;
    tallies::write(&mut tx, tallies).await?;
    let completed = messages::complete_finished(&mut tx, &message_ids, now).await?;
    tx.commit().await?;
    for id in completed {
        notices::summary(state, &id).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(queued_at: i64, attempts: i64) -> Job {
        Job {
            id: 1,
            message_id: "m".into(),
            member_id: "g".into(),
            destination: Destination::Email { address: "a@example.jp".into() },
            attempts,
            queued_at,
        }
    }

    #[test]
    fn a_job_keeps_trying_until_its_maximum_age_and_tries_last_at_its_deadline() {
        let policy = RetryPolicy::default();
        let hour = 3_600_000;
        let queued = 1_000_000;
        let next = policy.next_attempt(&job(queued, 1), queued + 10 * 60_000, None).unwrap();
        assert!(next > queued + 10 * 60_000 && next <= queued + 11 * 60_000, "soon after the first failure: {next}");
        // Late in the day the wait is capped by the deadline, and at it the job gives up.
        let late = queued + 24 * hour - 5 * 60_000;
        assert_eq!(policy.next_attempt(&job(queued, 25), late, None), Some(queued + 24 * hour));
        assert_eq!(policy.next_attempt(&job(queued, 26), queued + 24 * hour, None), None);
        // A Retry-After beyond the deadline does not stretch it.
        let far = Some(Duration::from_secs(48 * 3600));
        assert_eq!(policy.next_attempt(&job(queued, 2), queued + hour, far), Some(queued + 24 * hour));
        // The attempts safeguard.
        assert_eq!(policy.next_attempt(&job(queued, 100), queued + hour, None), None);
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        let policy =
            RetryPolicy { base: Duration::from_secs(30), cap: Duration::from_secs(3600), ..Default::default() };
        for (attempts, full) in [(1, 30_000), (2, 60_000), (3, 120_000), (10, 3_600_000), (40, 3_600_000)] {
            let delay = policy.delay_ms(attempts, None);
            assert!((full / 2..=full).contains(&delay), "attempt {attempts}: {delay} ms");
        }
        // A service's Retry-After is honoured when it is longer.
        assert_eq!(policy.delay_ms(1, Some(Duration::from_secs(600))), 600_000);
        let zero = RetryPolicy { base: Duration::ZERO, ..policy };
        assert_eq!(zero.delay_ms(3, None), 0);
    }
}

//! A delivery worker: round after round, start what is due, claim a batch of jobs, send
//! each through its channel, and record the outcomes (all through `queue`). `run_once`
//! does one round and reports how much it did, so tests drain the queue deterministically
//! instead of sleeping.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::db::repositories::{attachments, messages};
use crate::delivery::compose::Composed;
use crate::delivery::email::{Attachment, SendOutcome};
use crate::delivery::push::PushOutcome;
use crate::delivery::queue::{self, Outcome, RetryPolicy};
use crate::delivery::scheduler;
use crate::domain::EmailAddress;
use crate::domain::delivery::{Destination, Job};
use crate::domain::member::Platform;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs claimed per round.
    pub batch: i64,
    /// How long a claim holds before another instance may take the job over, unless the
    /// worker renews it: short, so that the jobs of an instance that died go out again soon.
    pub lease: Duration,
    /// How often a worker renews the leases of the jobs it still holds (well within `lease`).
    pub renew_every: Duration,
    pub retry: RetryPolicy,
    /// Sleep when a round found nothing to do.
    pub idle: Duration,
    /// Sends in flight per worker (per receiving domain, the mailer bounds them).
    pub concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch: 500,
            lease: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            idle: Duration::from_millis(250),
            concurrency: 64,
        }
    }
}

/// The guard of a mutex that no panic can poison for good: its data (jobs held) stays valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The database failing round after round: pauses that grow to `MAX_PAUSE`, one error in
/// the log when it starts and one line when it ends, not one per round.
#[derive(Default)]
struct Outage {
    rounds: u32,
}

impl Outage {
    const FIRST_PAUSE: Duration = Duration::from_millis(250);
    const MAX_PAUSE: Duration = Duration::from_secs(5);

    fn next_pause(&mut self, error: &anyhow::Error, unrecorded: usize, unsent: usize) -> Duration {
        if self.rounds == 0 {
            tracing::error!(error = ?error, unrecorded, unsent, "the database failed; delivery pauses and resumes when it answers");
        } else {
            tracing::debug!(error = %error, "the database still fails");
        }
        self.rounds += 1;
        Self::FIRST_PAUSE.saturating_mul(1 << self.rounds.min(5)).min(Self::MAX_PAUSE)
    }

    fn end(&mut self) {
        if self.rounds > 0 {
            tracing::info!(rounds = self.rounds, "the database answers again; delivery resumes");
        }
        self.rounds = 0;
    }
}

impl WorkerSettings {
    /// The defaults, with what the operator configured.
    pub fn from_config(config: &crate::config::Config) -> WorkerSettings {
        let retry = RetryPolicy { max_age: config.delivery_max_age, ..Default::default() };
        WorkerSettings { retry, ..Default::default() }
    }
}

pub struct Worker {
    state: AppState,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(state: AppState, settings: WorkerSettings) -> Worker {
        Worker { state, settings }
    }

    /// One round: what is due started, one batch of jobs claimed, delivered and recorded.
    /// Returns the number of messages and reminders started plus jobs handled (0 = nothing
    /// to do).
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let (started, jobs) = self.claim_round().await?;
        let outcomes = self.deliver_all(jobs).await.map_err(|(_, error)| error)?;
        queue::record(&self.state, &self.settings.retry, &outcomes).await?;
        let handled = outcomes.len();
        Ok(started + handled)
    }

    /// The database's part of a round before sending: what is due, and a batch of jobs.
    async fn claim_round(&self) -> anyhow::Result<(usize, Vec<Job>)> {
        let started = scheduler::run_due(&self.state).await?;
        let jobs = queue::claim(&self.state, self.settings.batch, self.settings.lease).await?;
        Ok((started, jobs))
    }

    /// Runs rounds until `shutdown` turns true; then records the round in flight, releases
    /// the batch claimed for the next one (none of its jobs is left claimed) and returns.
    ///
    /// While a batch is being sent, the previous one is recorded and the next one claimed:
    /// the database's share of a round overlaps the sending instead of adding to it.
    ///
    /// When the database is away (restarting, unreachable), nothing sent is forgotten: the
    /// outcomes wait to be recorded, the jobs claimed but not sent wait to be given back,
    /// and the rounds back off until the database answers again.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut sending: Vec<Job> = Vec::new();
        let mut unrecorded: Vec<(Job, Outcome)> = Vec::new();
        let mut unsent: Vec<Job> = Vec::new();
        let mut outage = Outage::default();
        while !*shutdown.borrow() {
            let previous = std::mem::take(&mut unrecorded);
            let batch = std::mem::take(&mut sending);
            let give_back = std::mem::take(&mut unsent);
            let idle = batch.is_empty();
            let held = Mutex::new(
                batch.iter().chain(previous.iter().map(|(job, _)| job)).chain(&give_back).cloned().collect::<Vec<_>>(),
            );
            // After an outage the leases of the outcomes kept may have ended: they are
            // recorded before anything is claimed, so this worker does not take them again.
            let recovering = outage.rounds > 0;
            let record_and_release = async {
                tokio::join!(
                    queue::record(&self.state, &self.settings.retry, &previous),
                    queue::release(&self.state.db, &give_back)
                )
            };
            let claim = async {
                let claimed = self.claim_round().await;
                if let Ok((_, jobs)) = &claimed {
                    lock(&held).extend(jobs.iter().cloned());
                }
                claimed
            };
            let database_work = async {
                if recovering {
                    let done = record_and_release.await;
                    (done, claim.await)
                } else {
                    tokio::join!(record_and_release, claim)
                }
            };
            let round = async {
                let (sent, ((recorded, released), claimed)) = tokio::join!(self.deliver_all(batch), database_work);
                (sent, recorded, released, claimed)
            };
            let (sent, recorded, released, claimed) = tokio::select! {
                results = round => results,
                never = self.keep_leases(&held) => match never {},
            };
            let mut failure = None;
            if let Err(error) = recorded {
                failure = Some(error.context("recording delivery outcomes"));
                unrecorded = previous;
            }
            if let Err(error) = released {
                failure = Some(anyhow::Error::from(error).context("giving back claimed jobs"));
                unsent = give_back;
            }
            match sent {
                Ok(outcomes) => unrecorded.extend(outcomes),
                Err((jobs, error)) => {
                    failure = Some(error.context("preparing a batch"));
                    unsent.extend(jobs);
                }
            }
            match claimed {
                Ok((started, jobs)) => {
                    let nothing_to_do = idle && started == 0 && jobs.is_empty() && unrecorded.is_empty();
                    sending = jobs;
                    if nothing_to_do && failure.is_none() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.settings.idle) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
                Err(error) => failure = Some(error.context("claiming delivery jobs")),
            }
            match failure {
                None => outage.end(),
                Some(error) => {
                    let pause = outage.next_pause(&error, unrecorded.len(), unsent.len());
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        if let Err(error) = queue::record(&self.state, &self.settings.retry, &unrecorded).await {
            tracing::error!(error = ?error, "recording the last delivery outcomes failed; those jobs go again when their lease ends");
        }
        unsent.append(&mut sending);
        if let Err(error) = queue::release(&self.state.db, &unsent).await {
            tracing::error!(error = ?error, "releasing claimed jobs failed; they go again when their lease ends");
        }
    }

    /// Renews the leases of the jobs in `held` every `renew_every`, for as long as it is
    /// polled (a round that outlasts a lease: a slow relay, a large batch).
    async fn keep_leases(&self, held: &Mutex<Vec<Job>>) -> Infallible {
        let period = self.settings.renew_every;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            let jobs = lock(held).clone();
            if let Err(error) = queue::renew(&self.state, &jobs, self.settings.lease).await {
                tracing::warn!(error = ?error, jobs = jobs.len(), "renewing the leases of jobs in flight failed");
            }
        }
    }

    /// Sends every job; when the messages cannot be read (the database is away), hands the
    /// jobs back unsent.
    async fn deliver_all(&self, jobs: Vec<Job>) -> Result<Vec<(Job, Outcome)>, (Vec<Job>, anyhow::Error)> {
        if jobs.is_empty() {
            return Ok(vec![]);
        }
        let composed = match self.compose(&jobs).await {
            Ok(composed) => composed,
            Err(error) => return Err((jobs, error)),
        };
        Ok(futures_util::stream::iter(jobs)
            .map(|job| async {
                let outcome = self.deliver(&job, &composed).await;
                (job, outcome)
            })
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await)
    }

    /// The text of every message the jobs belong to, composed once for the batch.
    async fn compose(&self, jobs: &[Job]) -> anyhow::Result<HashMap<String, Composed>> {
        let ids: HashSet<&str> = jobs.iter().map(|j| j.message_id.as_str()).collect();
        let mut composed = HashMap::new();
        let mut conn = self.state.db.pool.acquire().await?;
        for id in ids {
            let Some(message) = messages::find_unscoped(&mut conn, id).await? else { continue };
            let files = attachments::attachments_with_content(&mut conn, id)
                .await?
                .into_iter()
                .map(|a| Attachment { filename: a.filename, content_type: a.content_type, bytes: a.content })
                .collect();
            composed.insert(id.to_string(), Composed::new(&message, files));
        }
        Ok(composed)
    }

    async fn deliver(&self, job: &Job, composed: &HashMap<String, Composed>) -> Outcome {
        let Some(message) = composed.get(&job.message_id) else {
            return Outcome::Failed("the message was deleted".into());
        };
        match &job.destination {
            Destination::Email { address } => {
                let Ok(to) = EmailAddress::parse(address) else {
                    return Outcome::Bounced("the stored address is no longer valid".into());
                };
                let token = match self.state.jwt.receipt_token(&job.message_id, &job.member_id) {
                    Ok(token) => token,
                    Err(error) => {
                        tracing::error!(error = ?error, "no personal link for a job");
                        return Outcome::Failed(format!("{error:#}"));
                    }
                };
                let link = self.state.config.public_link(&format!("r/{token}"));
                match self.state.mailer.send(&message.email(&job.member_id, to, &link)).await {
                    SendOutcome::Delivered => Outcome::Sent,
                    SendOutcome::Rejected(reply) => Outcome::Bounced(reply),
                    SendOutcome::Transient(reason) => Outcome::Retry { reason, after: None },
                }
            }
            Destination::Device { platform, token, .. } => {
                let notification = message.notification(job.id, token);
                let outcome = match platform {
                    Platform::Apns => match &self.state.push.apns {
                        Some(client) => client.send(&notification).await,
                        None => {
                            return Outcome::Skipped(
                                "APNs is not configured on this instance (RENRAKUMO_APNS_KEY_FILE)".into(),
                            );
                        }
                    },
                    Platform::Fcm => match &self.state.push.fcm {
                        Some(client) => client.send(&notification).await,
                        None => {
                            return Outcome::Skipped(
                                "FCM is not configured on this instance (RENRAKUMO_FCM_CREDENTIALS)".into(),
                            );
                        }
                    },
                };
                match outcome {
                    PushOutcome::Delivered => Outcome::Sent,
                    PushOutcome::Retry { reason, after } => Outcome::Retry { reason, after },
                    PushOutcome::InvalidToken(reason) => Outcome::Invalid(reason),
                    PushOutcome::Failed(reason) => Outcome::Failed(reason),
                }
            }
        }
    }
}

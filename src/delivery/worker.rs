//! Delivery workers: start due scheduled messages, claim jobs, send, record outcomes.
//! `run_once` does one round and reports how much it did, so tests drain the queue
//! deterministically instead of sleeping.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::db::repositories::queue::{self, Job};
use crate::db::repositories::{attachments, members, messages, receipts, users};
use crate::db::{Db, now_ms};
use crate::delivery::email::{Attachment, OutgoingEmail, SendOutcome};
use crate::delivery::push::{Notification, PushOutcome};
use crate::domain::EmailAddress;
use crate::domain::message::{Priority, Targets};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs claimed per round.
    pub batch: i64,
    /// How long a claim holds before another instance may take the job over.
    pub lease: Duration,
    /// Attempts before a transient failure becomes final.
    pub max_attempts: i64,
    /// First retry delay; doubled per attempt up to `retry_cap`, with jitter.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Sleep when a round found nothing to do.
    pub idle: Duration,
    /// Sends in flight per worker (per receiving domain, the mailer bounds them).
    pub concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch: 500,
            lease: Duration::from_secs(300),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(3600),
            idle: Duration::from_millis(250),
            concurrency: 64,
        }
    }
}

enum Outcome {
    Sent,
    /// Try again, not before the given delay when the service named one.
    Retry(String),
    RetryAfter(String, Duration),
    /// A dead device token: the device is removed from the roster.
    Invalid(String),
    Failed(String),
    Bounced(String),
    Skipped(String),
}

/// What every job of one message needs, loaded once per round.
struct Prepared {
    subject: String,
    body: String,
    attachments: Vec<Attachment>,
    /// For push: the subject as written, and the start of the body.
    push_title: String,
    push_body: String,
    emergency: bool,
}

pub struct Worker {
    state: AppState,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(state: AppState, settings: WorkerSettings) -> Worker {
        Worker { state, settings }
    }

    fn db(&self) -> &Db {
        &self.state.db
    }

    /// One round: due scheduled messages, expired leases, one batch of jobs delivered and
    /// recorded. Returns the number of messages started plus jobs handled (0 = nothing to do).
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let (started, jobs) = self.claim_round().await?;
        let outcomes = self.deliver_all(jobs).await?;
        let handled = outcomes.len();
        self.record(outcomes).await?;
        Ok(started + handled)
    }

    /// The database's part of a round before sending: due scheduled messages and reminders,
    /// expired leases, and a batch of jobs claimed. Returns (messages started, jobs).
    async fn claim_round(&self) -> anyhow::Result<(usize, Vec<Job>)> {
        let started = self.start_due_messages().await? + self.send_due_reminders().await?;
        queue::reclaim_expired(self.db()).await?;
        let jobs = queue::claim(self.db(), self.settings.batch, self.settings.lease).await?;
        Ok((started, jobs))
    }

    async fn deliver_all(&self, jobs: Vec<Job>) -> anyhow::Result<Vec<(Job, Outcome)>> {
        if jobs.is_empty() {
            return Ok(vec![]);
        }
        let prepared = self.prepare(&jobs).await?;
        Ok(futures_util::stream::iter(jobs)
            .map(|job| async {
                let outcome = self.deliver(&job, &prepared).await;
                (job, outcome)
            })
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await)
    }

    /// Runs rounds until `shutdown` turns true; then records the round in flight, releases
    /// the batch claimed for the next one (none of its jobs is left claimed) and returns.
    ///
    /// While a batch is being sent, the previous one is recorded and the next one claimed:
    /// the database's share of a round (on PostgreSQL about a third of a round of 500
    /// e-mails) overlaps the sending instead of adding to it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut sending: Vec<Job> = Vec::new();
        let mut unrecorded: Vec<(Job, Outcome)> = Vec::new();
        while !*shutdown.borrow() {
            let previous = std::mem::take(&mut unrecorded);
            let batch = std::mem::take(&mut sending);
            let idle = batch.is_empty();
            let (sent, recorded, claimed) =
                tokio::join!(self.deliver_all(batch), self.record(previous), self.claim_round());
            if let Err(error) = recorded {
                tracing::error!(error = ?error, "recording delivery outcomes failed; those jobs go again when their lease ends");
            }
            match sent {
                Ok(outcomes) => unrecorded = outcomes,
                Err(error) => {
                    tracing::error!(error = ?error, "delivering a batch failed; its jobs go again when their lease ends")
                }
            }
            match claimed {
                Ok((started, jobs)) => {
                    if idle && started == 0 && jobs.is_empty() && unrecorded.is_empty() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.settings.idle) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    sending = jobs;
                }
                Err(error) => {
                    tracing::error!(error = ?error, "claiming delivery jobs failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if let Err(error) = self.record(unrecorded).await {
            tracing::error!(error = ?error, "recording the last delivery outcomes failed; those jobs go again when their lease ends");
        }
        if let Err(error) = queue::release(self.db(), &sending).await {
            tracing::error!(error = ?error, "releasing claimed jobs failed; they go again when their lease ends");
        }
    }

    async fn start_due_messages(&self) -> anyhow::Result<usize> {
        let mut started = 0;
        loop {
            let mut tx = self.db().begin().await?;
            let Some((id, org_id)) = queue::take_due_scheduled(&mut tx).await? else { break };
            let message =
                messages::find(&mut tx, &org_id, &id).await?.ok_or_else(|| anyhow::anyhow!("message vanished"))?;
            let count = fan_out(&mut tx, &message).await?;
            tx.commit().await?;
            tracing::info!(message_id = %id, recipients = count, "scheduled message started");
            self.after_start(&message).await;
            started += 1;
        }
        Ok(started)
    }

    /// One reminder per answer-required message that asked for it, to those who have not
    /// acknowledged by then.
    async fn send_due_reminders(&self) -> anyhow::Result<usize> {
        let due = {
            let mut conn = self.db().pool.acquire().await?;
            receipts::due_reminders(&mut conn).await?
        };
        let mut sent = 0;
        for (id, org_id) in due {
            let mut tx = self.db().begin().await?;
            if !receipts::claim_reminder(&mut tx, &id).await? {
                continue;
            }
            let Some(message) = messages::find(&mut tx, &org_id, &id).await? else { continue };
            let guardians = requeue(&mut tx, &message, receipts::Followers::Unacknowledged).await?;
            tx.commit().await?;
            tracing::info!(message_id = %id, guardians, "reminder queued");
            sent += 1;
        }
        Ok(sent)
    }

    /// After a message starts: a copy to its sender when asked for, and completion for a
    /// message that reached no address at all.
    pub async fn after_start(&self, message: &messages::MessageRow) {
        if message.copy_to_sender != 0
            && let Some(to) = self.sender_address(message).await
        {
            let email = OutgoingEmail {
                to,
                subject: format!("[送信控え] {}", message.subject),
                text_body: format!(
                    "次のメッセージを {} 人に送信しました。\n\n{}",
                    message.recipient_count, message.body
                ),
                message_id: format!("<{}.copy@renrakumo>", message.id),
                attachments: vec![],
            };
            self.state.mailer.send(&email).await;
        }
        if let Ok(mut conn) = self.db().pool.acquire().await
            && let Ok(done) = queue::complete_messages(&mut conn, std::slice::from_ref(&message.id)).await
        {
            drop(conn);
            for id in done {
                self.send_summary(&id).await;
            }
        }
    }

    async fn sender_address(&self, message: &messages::MessageRow) -> Option<EmailAddress> {
        let user_id = message.created_by.as_deref()?;
        let mut conn = self.db().pool.acquire().await.ok()?;
        let user = users::find(&mut conn, &message.org_id, user_id).await.ok()??;
        EmailAddress::parse(&user.email).ok()
    }

    async fn prepare(&self, jobs: &[Job]) -> anyhow::Result<HashMap<String, Prepared>> {
        let ids: HashSet<&str> = jobs.iter().map(|j| j.message_id.as_str()).collect();
        let mut prepared = HashMap::new();
        let mut conn = self.db().pool.acquire().await?;
        for id in ids {
            let Some(message) = messages::find_any(&mut conn, id).await? else { continue };
            let attachments = attachments::attachments_with_content(&mut conn, id)
                .await?
                .into_iter()
                .map(|a| Attachment { filename: a.filename, content_type: a.content_type, bytes: a.content })
                .collect();
            let subject = match Priority::parse(&message.priority) {
                Priority::Emergency => format!("【緊急】{}", message.subject),
                Priority::Normal => message.subject.clone(),
            };
            let mut body = message.body.clone();
            body.push_str("\n\n――――――――――\n");
            if message.answer_required != 0 {
                body.push_str("このお知らせは回答が必要です。");
                if let Some(deadline) = message.answer_deadline.and_then(chrono::DateTime::from_timestamp_millis) {
                    let jst = deadline.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"));
                    body.push_str(&format!("（回答期限: {}）", jst.format("%Y年%m月%d日 %H:%M")));
                }
                body.push('\n');
            }
            body.push_str("確認・回答はこちら / Confirm and answer:\n{link}\n");
            if let Some(from) = &message.from_name {
                body.push_str(&format!("\n送信者: {from}\n"));
            }
            let emergency = Priority::parse(&message.priority) == Priority::Emergency;
            let push_body: String = message.body.chars().take(200).collect();
            prepared.insert(
                id.to_string(),
                Prepared { push_title: subject.clone(), subject, body, attachments, push_body, emergency },
            );
        }
        Ok(prepared)
    }

    async fn deliver(&self, job: &Job, prepared: &HashMap<String, Prepared>) -> Outcome {
        let Some(message) = prepared.get(&job.message_id) else {
            return Outcome::Failed("the message was deleted".into());
        };
        match job.channel.as_str() {
            "email" => {
                let Ok(to) = EmailAddress::parse(&job.address) else {
                    return Outcome::Bounced("the stored address is no longer valid".into());
                };
                let token = self.state.jwt.receipt_token(&job.message_id, &job.member_id);
                let link = self.state.config.public_link(&format!("r/{token}"));
                let address_tag = &hex::encode(Sha256::digest(to.key().as_bytes()))[..12];
                let email = OutgoingEmail {
                    to,
                    subject: message.subject.clone(),
                    text_body: message.body.replace("{link}", &link),
                    // The same id on every attempt, so a resend after a crash is recognisable.
                    message_id: format!("<{}.{}.{address_tag}@renrakumo>", job.message_id, job.member_id),
                    attachments: message.attachments.clone(),
                };
                match self.state.mailer.send(&email).await {
                    SendOutcome::Delivered => Outcome::Sent,
                    SendOutcome::Rejected(reply) => Outcome::Bounced(reply),
                    SendOutcome::Transient(reason) => Outcome::Retry(reason),
                }
            }
            _ => {
                let notification = Notification {
                    token: job.address.clone(),
                    title: message.push_title.clone(),
                    body: message.push_body.clone(),
                    message_id: job.message_id.clone(),
                    emergency: message.emergency,
                    collapse_id: job.message_id.clone(),
                    // The same id on every attempt of this job.
                    apns_id: Some(uuid::Uuid::new_v5(
                        &uuid::Uuid::NAMESPACE_OID,
                        format!("renrakumo-job-{}", job.id).as_bytes(),
                    )),
                };
                let outcome = match job.platform.as_deref() {
                    Some("apns") => match &self.state.push.apns {
                        Some(client) => client.send(&notification).await,
                        None => {
                            return Outcome::Skipped(
                                "APNs is not configured on this instance (RENRAKUMO_APNS_KEY_FILE)".into(),
                            );
                        }
                    },
                    _ => match &self.state.push.fcm {
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
                    PushOutcome::Retry { reason, after: Some(after) } => Outcome::RetryAfter(reason, after),
                    PushOutcome::Retry { reason, after: None } => Outcome::Retry(reason),
                    PushOutcome::InvalidToken(reason) => Outcome::Invalid(reason),
                    PushOutcome::Failed(reason) => Outcome::Failed(reason),
                }
            }
        }
    }

    fn backoff(&self, attempts: i64) -> i64 {
        let exponent = (attempts.max(1) - 1).min(20) as u32;
        let base = self.settings.retry_base.as_millis() as i64;
        let delay = base.saturating_mul(1 << exponent).min(self.settings.retry_cap.as_millis() as i64);
        // Full jitter on half the delay: retries of one burst spread out instead of
        // hitting the throttling server together again.
        delay / 2 + rand::rng().random_range(0..=delay / 2)
    }

    async fn record(&self, outcomes: Vec<(Job, Outcome)>) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.db().begin().await?;
        let mut tallies = queue::Tallies::default();
        let mut sent = Vec::new();
        let mut delivered_addresses = Vec::new();
        let mut message_ids: Vec<String> = Vec::new();
        for (job, outcome) in &outcomes {
            if !message_ids.contains(&job.message_id) {
                message_ids.push(job.message_id.clone());
            }
            match outcome {
                Outcome::Sent => {
                    sent.push(job);
                    if job.channel == "email" {
                        delivered_addresses.push((job.member_id.as_str(), job.address.to_lowercase()));
                    }
                }
                Outcome::Retry(reason) if job.attempts < self.settings.max_attempts => {
                    queue::retry_later(&mut tx, job, now_ms() + self.backoff(job.attempts), reason).await?;
                }
                Outcome::RetryAfter(reason, after) if job.attempts < self.settings.max_attempts => {
                    let delay = self.backoff(job.attempts).max(after.as_millis() as i64);
                    queue::retry_later(&mut tx, job, now_ms() + delay, reason).await?;
                }
                Outcome::Retry(reason) | Outcome::RetryAfter(reason, _) | Outcome::Failed(reason) => {
                    queue::finish(&mut tx, &[job], queue::FAILED, Some(reason), &mut tallies).await?;
                }
                Outcome::Invalid(reason) => {
                    queue::finish(&mut tx, &[job], queue::INVALID, Some(reason), &mut tallies).await?;
                    if let Some(device_id) = &job.device_id
                        && let Some(message) = messages::find_any(&mut tx, &job.message_id).await?
                    {
                        // Gone from the roster; the recipients list still shows why.
                        let _ = members::delete_device(&mut tx, &message.org_id, &job.member_id, device_id).await;
                        tracing::info!(device_id = %device_id, "dead device token removed");
                    }
                }
                Outcome::Bounced(reply) => {
                    queue::finish(&mut tx, &[job], queue::BOUNCED, Some(reply), &mut tallies).await?;
                    queue::record_bounce(&mut tx, &job.member_id, &job.address.to_lowercase()).await?;
                }
                Outcome::Skipped(reason) => {
                    queue::finish(&mut tx, &[job], queue::SKIPPED, Some(reason), &mut tallies).await?
                }
            }
        }
        queue::finish(&mut tx, &sent, queue::SENT, None, &mut tallies).await?;
        queue::record_delivered(&mut tx, &delivered_addresses).await?;
        queue::write_tallies(&mut tx, tallies).await?;
        let completed = queue::complete_messages(&mut tx, &message_ids).await?;
        tx.commit().await?;
        for id in completed {
            self.send_summary(&id).await;
        }
        Ok(())
    }

    /// Tells the sender how their message went, once every job has an outcome.
    async fn send_summary(&self, message_id: &str) {
        let Ok(mut conn) = self.db().pool.acquire().await else { return };
        let Ok(Some(message)) = messages::find_any(&mut conn, message_id).await else { return };
        let Ok(tallies) = queue::tallies(&mut conn, message_id).await else { return };
        drop(conn);
        let Some(to) = self.sender_address(&message).await else { return };
        let count = |state: fn(&queue::Tally) -> i64| tallies.values().map(state).sum::<i64>();
        let email = OutgoingEmail {
            to,
            subject: format!("[配信完了] {}", message.subject),
            text_body: format!(
                "「{}」の配信が終わりました。\n\n宛先: {} 人\n配信済み: {}\n失敗: {}\n不達: {}\n対象外（未設定のチャネル）: {}\n",
                message.subject,
                message.recipient_count,
                count(|t| t.sent),
                count(|t| t.failed + t.invalid),
                count(|t| t.bounced),
                count(|t| t.skipped),
            ),
            message_id: format!("<{message_id}.summary@renrakumo>"),
            attachments: vec![],
        };
        let outcome = self.state.mailer.send(&email).await;
        tracing::info!(message_id, outcome = outcome.kind(), "delivery summary sent");
    }
}

/// Writes a message's recipients and jobs (the caller's transaction) and returns how many
/// guardians it reaches.
pub async fn fan_out(conn: &mut sqlx::AnyConnection, message: &messages::MessageRow) -> anyhow::Result<i64> {
    let targets: Targets = serde_json::from_str(&message.targets)?;
    let channels: Vec<String> = serde_json::from_str(&message.channels)?;
    let priority = if message.priority == "emergency" { 1 } else { 0 };
    Ok(messages::fan_out(
        conn,
        &message.org_id,
        &message.id,
        &targets,
        channels.iter().any(|c| c == "email"),
        channels.iter().any(|c| c == "push"),
        priority,
    )
    .await?)
}

/// Queues a sent message again, on its channels, for some of its recipients (resend and
/// reminders); returns how many guardians.
pub async fn requeue(
    conn: &mut sqlx::AnyConnection,
    message: &messages::MessageRow,
    who: receipts::Followers,
) -> anyhow::Result<i64> {
    let channels: Vec<String> = serde_json::from_str(&message.channels)?;
    let priority = if message.priority == "emergency" { 1 } else { 0 };
    Ok(receipts::requeue(
        conn,
        &message.id,
        who,
        channels.iter().any(|c| c == "email"),
        channels.iter().any(|c| c == "push"),
        priority,
    )
    .await?)
}

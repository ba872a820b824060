//! The e-mail channel: one message per address, over SMTP or into `.eml` files. [`Mailer`]
//! is the façade the delivery engine holds: it bounds the sends per receiving domain, builds
//! the message and hands it to the SMTP pool or the outbox.
//!
//! - `message`: the SMTP address and the MIME message (lettre's builder), no network;
//! - `smtp`: the relay's URL, connecting, and the pipelined exchange for one message;
//! - `pool`: the bounded set of open SMTP connections, reused while fresh;
//! - `outbox`: `.eml` files when no relay is configured.
//!
//! One message has exactly one RCPT: a single refused address must not fail the others, and
//! the outcome then belongs to exactly one delivery job.
//!
//! Privacy: addresses, subjects and bodies never reach the logs; only the message id and the
//! outcome do. The reply text inside [`SendOutcome`] may quote the address (servers echo it),
//! so callers store it with the delivery and do not log it either.

mod message;
mod outbox;
mod pool;
mod smtp;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lettre::message::Mailbox;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::domain::EmailAddress;

pub use pool::DEFAULT_MAX_CONNECTIONS;
use pool::SmtpPool;
use smtp::Endpoint;

/// One e-mail to one address, as the delivery engine hands it over.
#[derive(Clone)]
pub struct OutgoingEmail {
    pub to: EmailAddress,
    pub subject: String,
    pub text_body: String,
    /// Deterministic per (message, recipient, address), e.g. `<msg>.<recipient>.<n>@renrakumo`,
    /// so that a resend after a crash carries the same id and clients can fold duplicates.
    /// Angle brackets are optional.
    pub message_id: String,
    pub attachments: Vec<Attachment>,
}

/// Debug output without the address or the text: it may end up in a log line.
impl fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &self.to.masked())
            .field("message_id", &self.message_id)
            .field("attachments", &self.attachments.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the engine does next with the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The relay took responsibility (2xx after the data, or the .eml file was written).
    Delivered,
    /// Try again later: 4xx replies, connection, TLS and timeout failures, a refused sender.
    Transient(String),
    /// Give up on this address (bounce): a 5xx reply to RCPT or DATA, or an address no relay
    /// can be asked to deliver to. Carries the server's reply, e.g. `550 5.1.1 user unknown`.
    Rejected(String),
}

impl SendOutcome {
    /// A fixed word for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SendOutcome::Delivered => "delivered",
            SendOutcome::Transient(_) => "transient",
            SendOutcome::Rejected(_) => "rejected",
        }
    }
}

/// Sends in flight to one receiving domain from this instance (all delivery tasks together).
pub const DEFAULT_PER_DOMAIN: usize = 16;
/// Japanese carriers answer bursts with 4xx deferrals: their domains get a tighter bound.
const CARRIER_PER_DOMAIN: usize = 4;
const CARRIER_DOMAINS: [&str; 6] =
    ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "ymobile.ne.jp"];

/// Sends [`OutgoingEmail`]s; cheap to share behind an `Arc` across delivery tasks, which
/// then share its bounds (connections, sends per domain).
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    per_domain: usize,
    domains: Mutex<HashMap<String, Arc<Semaphore>>>,
}

enum Transport {
    Smtp(SmtpPool),
    Outbox(PathBuf),
}

/// Leaves out the SMTP credentials.
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(pool) => format!(
                "smtp {}:{} ({:?}, max {} connections)",
                pool.endpoint.host, pool.endpoint.port, pool.endpoint.security, pool.max_connections
            ),
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
        };
        f.debug_struct("Mailer").field("transport", &transport).finish_non_exhaustive()
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is set, otherwise `.eml` files in `outbox_dir`.
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("RENRAKUMO_MAIL_FROM: not a mailbox like `name <addr@host>` ({e})"))?;
        let transport = match &config.smtp_url {
            Some(url) => {
                Transport::Smtp(SmtpPool::new(Endpoint::from_url(url, &config.smtp_roots)?, DEFAULT_MAX_CONNECTIONS))
            }
            None => Transport::Outbox(config.outbox_dir.clone()),
        };
        Ok(Mailer { from, transport, per_domain: DEFAULT_PER_DOMAIN, domains: Default::default() })
    }

    /// Bounds the sends in flight per receiving domain (carrier domains: at most
    /// `CARRIER_PER_DOMAIN`); the default is [`DEFAULT_PER_DOMAIN`].
    pub fn with_per_domain(mut self, per_domain: usize) -> Mailer {
        self.per_domain = per_domain.max(1);
        self.domains = Default::default();
        self
    }

    fn domain_permits(&self, to: &EmailAddress) -> Arc<Semaphore> {
        let domain = to.as_str().rsplit('@').next().unwrap_or_default().to_lowercase();
        let limit = if CARRIER_DOMAINS.contains(&domain.as_str()) {
            self.per_domain.min(CARRIER_PER_DOMAIN)
        } else {
            self.per_domain
        };
        let mut domains = self.domains.lock().expect("domain limits");
        Arc::clone(domains.entry(domain).or_insert_with(|| Arc::new(Semaphore::new(limit))))
    }

    /// Bounds the open SMTP connections (at least one); the default is
    /// [`DEFAULT_MAX_CONNECTIONS`]. Sends beyond it wait for a free connection.
    pub fn with_max_connections(mut self, max_connections: usize) -> Mailer {
        if let Transport::Smtp(pool) = &mut self.transport {
            *pool = SmtpPool::new(pool.endpoint.clone(), max_connections);
        }
        self
    }

    /// Sends one message to its one address. Never fails: every problem is an outcome.
    #[tracing::instrument(name = "send_email", skip_all, fields(message_id = %email.message_id, outcome))]
    pub async fn send(&self, email: &OutgoingEmail) -> SendOutcome {
        let permits = self.domain_permits(&email.to);
        let _permit = permits.acquire().await;
        let outcome = self.send_inner(email).await;
        tracing::Span::current().record("outcome", outcome.kind());
        match &outcome {
            SendOutcome::Delivered => tracing::debug!("e-mail delivered"),
            SendOutcome::Transient(_) => tracing::info!("e-mail deferred"),
            SendOutcome::Rejected(_) => tracing::info!("e-mail rejected"),
        }
        outcome
    }

    async fn send_inner(&self, email: &OutgoingEmail) -> SendOutcome {
        let to = match message::smtp_address(&email.to) {
            Ok(to) => to,
            // No relay could be asked to deliver to it, now or later.
            Err(e) => return SendOutcome::Rejected(format!("address not accepted: {e}")),
        };
        let message = match message::build(&self.from, email, to.clone()) {
            Ok(message) => message,
            // A bug or bad content, not a network problem; retrying cannot help.
            Err(e) => return SendOutcome::Rejected(format!("message could not be built: {e:#}")),
        };
        match &self.transport {
            Transport::Smtp(pool) => pool.send(self.from.email.clone(), to, &message.formatted()).await,
            Transport::Outbox(dir) => outbox::write(dir, &email.message_id, message.formatted()).await,
        }
    }

    /// The RFC 5322 bytes exactly as they would be sent (Date is the current time).
    pub fn render(&self, email: &OutgoingEmail) -> anyhow::Result<Vec<u8>> {
        let to = message::smtp_address(&email.to)?;
        Ok(message::build(&self.from, email, to)?.formatted())
    }
}

#[cfg(test)]
mod tests {
    use super::message::tests::email;

    #[test]
    fn debug_output_hides_the_address() {
        let shown = format!("{:?}", email("taro@example.jp"));
        assert!(!shown.contains("taro@"), "{shown}");
        assert!(!shown.contains("休校"), "{shown}");
    }
}

//! The e-mail channel: one message per address, over SMTP or into `.eml` files.
//!
//! Why not `lettre::AsyncSmtpTransport`: lettre never sets TCP_NODELAY and writes the body
//! and the final `.` separately, so every message waits ~40 ms for a delayed ACK (about 23
//! messages/s per connection, CRATES.md); its pool sends a NOOP on every checkout; and its
//! `send` QUITs the connection on any negative reply, so each bouncing address would cost a
//! reconnect. Instead we open the TCP stream ourselves with TCP_NODELAY, let lettre speak the
//! protocol on it (`connect_with_transport`, `command`, `message`), and keep a small bounded
//! pool of connections, resetting (RSET) rather than closing after a refused recipient.
//!
//! One message has exactly one RCPT: a single refused address must not fail the others, and
//! the outcome then belongs to exactly one delivery job.
//!
//! Privacy: addresses, subjects and bodies never reach the logs; only the message id and the
//! outcome do. The reply text inside [`SendOutcome`] may quote the address (servers echo it),
//! so callers store it with the delivery and do not log it either.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lettre::Address;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::Config;
use crate::domain::EmailAddress;

mod message;
mod outbox;

/// Connections kept open to the relay. Measured with bench/delivery.sh (2 cores, smtp-sink
/// on loopback, 4 workers, 40,000 personalised e-mails, 2026-11-23): 8 connections left the
/// server waiting on round trips with CPU to spare, at 7,100-7,400 messages/s; 16 gave
/// 7,800-9,900 (+10-35 % in three interleaved pairs), 32 no more than 16. 16 stays below
/// the per-client limits relays commonly apply (Postfix's default is 50).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// TCP connect, greeting, EHLO, TLS and AUTH together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// MAIL to the reply after the final dot. RFC 5321 §4.5.3.2 allows the server up to 10
/// minutes after the dot; a relay that slow is better retried later than waited for.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Servers drop idle clients (Postfix after 300 s); an older connection is not reused.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

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

// ---------------------------------------------------------------------------------------
// SMTP

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtp://`: no encryption (a relay on the same host or network).
    Plain,
    /// `smtp://…?tls=starttls` (or `required`): upgrade after EHLO, fail if not offered.
    StartTls,
    /// `smtps://`: TLS from the first byte (RFC 8314).
    Implicit,
}

#[derive(Clone)]
struct Endpoint {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Built once: loading the root store per connection would cost more than the handshake.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The same trust for lettre's STARTTLS upgrade.
    starttls: Option<TlsParameters>,
}

impl Endpoint {
    /// `extra_roots` are trusted besides the webpki roots (RENRAKUMO_SMTP_CA_FILE).
    fn from_url(url: &Url, extra_roots: &[CertificateDer<'static>]) -> anyhow::Result<Endpoint> {
        const VAR: &str = "RENRAKUMO_SMTP_URL";
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => anyhow::bail!("{VAR}: no host"),
        };
        let tls_param = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let security = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None | Some("none") | Some("off")) => Security::Plain,
            ("smtp", Some("starttls") | Some("required")) => Security::StartTls,
            ("smtps", None | Some("implicit") | Some("tls")) => Security::Implicit,
            (scheme, Some(other)) => anyhow::bail!("{VAR}: tls={other} is not known with {scheme}:// (use starttls)"),
            (scheme, None) => anyhow::bail!("{VAR}: unknown scheme {scheme}"),
        };
        let port = url.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        });
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            Some(Credentials::new(decode(url.username()), decode(url.password().unwrap_or_default())))
        };
        let tls = match security {
            Security::Implicit => Some(Arc::new(super::tls::client_config(extra_roots, &[])?)),
            Security::Plain | Security::StartTls => None,
        };
        let starttls = match security {
            Security::StartTls => {
                let mut builder = TlsParameters::builder(host.clone());
                for der in extra_roots {
                    let cert = lettre::transport::smtp::client::Certificate::from_der(der.to_vec())
                        .context("RENRAKUMO_SMTP_CA_FILE: a certificate lettre cannot read")?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build_rustls().context("STARTTLS parameters")?)
            }
            Security::Plain | Security::Implicit => None,
        };
        Ok(Endpoint { host, port, security, credentials, hello: ClientId::default(), tls, starttls })
    }

    /// TCP with TCP_NODELAY, then TLS if asked, greeting and EHLO, STARTTLS, AUTH.
    async fn connect(&self) -> Result<SmtpConnection, SendOutcome> {
        let transient = |what: &str, e: &dyn fmt::Display| SendOutcome::Transient(format!("{what}: {e}"));
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transient(&format!("connecting to {}:{}", self.host, self.port), &e))?;
        // The point of opening the stream ourselves (module comment).
        tcp.set_nodelay(true).map_err(|e| transient("TCP_NODELAY", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| transient("TLS server name", &e))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transient("TLS handshake", &e))?;
                Box::new(TlsTcpStream(tls))
            }
            None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| SendOutcome::Transient(describe("greeting", &e)))?;
        if let Some(params) = &self.starttls {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| SendOutcome::Transient(describe("STARTTLS", &e)))?;
        }
        // lettre keeps only the EHLO keywords it uses; PIPELINING is not among them, so the
        // server is asked again (before AUTH, which a later EHLO could reset).
        let capabilities = conn
            .command(Ehlo::new(self.hello.clone()))
            .await
            .map_err(|e| SendOutcome::Transient(describe("EHLO", &e)))?;
        let pipelining = capabilities.message().any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        if let Some(credentials) = &self.credentials {
            // A refused login is our configuration, not the recipient: retry later.
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| SendOutcome::Transient(describe("AUTH", &e)))?;
        }
        Ok(SmtpConnection { smtp: conn, pipelining })
    }
}

/// lettre's stream trait wants `peer_addr`, which tokio-rustls' stream does not have.
#[derive(Debug)]
struct TlsTcpStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTcpStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsTcpStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsTcpStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `550 5.1.1 user unknown` for replies, `network error: …` for the rest.
fn describe(stage: &str, e: &lettre::transport::smtp::Error) -> String {
    match (e.status(), std::error::Error::source(e)) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code.to_string(),
        (None, _) => format!("{stage}: {e}"),
    }
}

fn reply_code(e: &lettre::transport::smtp::Error) -> Option<u16> {
    e.status().map(u16::from)
}

/// A session ready for its next transaction.
struct SmtpConnection {
    smtp: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
}

struct IdleConnection {
    conn: SmtpConnection,
    since: Instant,
}

/// At most `max_connections` connections exist at once (each belongs to a semaphore permit);
/// after a send the connection goes back to `idle` unless something went wrong with it.
struct SmtpPool {
    endpoint: Endpoint,
    max_connections: usize,
    slots: Semaphore,
    idle: Mutex<Vec<IdleConnection>>,
}

/// What a transaction leaves behind besides its outcome.
struct Transaction {
    outcome: SendOutcome,
    /// The connection is in a clean state for the next message.
    reusable: bool,
    /// It failed before the server accepted MAIL in a way a closed connection fails: safe
    /// to repeat on a fresh connection, since nothing of the message was sent.
    stale: bool,
}

impl SmtpPool {
    fn new(endpoint: Endpoint, max_connections: usize) -> SmtpPool {
        let max_connections = max_connections.max(1);
        SmtpPool { endpoint, max_connections, slots: Semaphore::new(max_connections), idle: Mutex::new(Vec::new()) }
    }

    fn take_idle(&self) -> Option<SmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Most recently used first; older ones age out instead of being kept warm.
        while let Some(IdleConnection { conn, since }) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT && !conn.smtp.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: SmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.push(IdleConnection { conn, since: Instant::now() });
    }

    async fn send(&self, from: Address, to: Address, bytes: &[u8]) -> SendOutcome {
        // The permit is this send's right to hold a connection; waiting for it is queueing,
        // not a failure, so it has no timeout.
        let _permit = self.slots.acquire().await.expect("the semaphore is never closed");
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => match tokio::time::timeout(CONNECT_TIMEOUT, self.endpoint.connect()).await {
                    Ok(Ok(conn)) => (conn, false),
                    Ok(Err(outcome)) => return outcome,
                    Err(_) => return SendOutcome::Transient("timed out connecting to the SMTP server".into()),
                },
            };
            let transaction = tokio::time::timeout(TRANSACTION_TIMEOUT, transact(&mut conn, &from, &to, bytes)).await;
            let Ok(transaction) = transaction else {
                // Dropping the connection mid-transaction aborts it on the server side.
                return SendOutcome::Transient("timed out waiting for the SMTP server".into());
            };
            if transaction.stale && reused {
                // The server closed it while idle (timeout, restart): try the next one.
                continue;
            }
            if transaction.reusable {
                self.put_idle(conn);
            }
            return transaction.outcome;
        }
    }
}

/// MAIL, RCPT, DATA, message. Replies are classified here; the connection is kept after a
/// refusal once RSET has cleared the half-done transaction.
async fn transact(conn: &mut SmtpConnection, from: &Address, to: &Address, bytes: &[u8]) -> Transaction {
    let pipelined = conn.pipelining;
    let conn = &mut conn.smtp;
    let info = conn.server_info();
    let mut parameters = Vec::new();
    let ascii = |address: &Address| AsRef::<str>::as_ref(address).is_ascii();
    if !ascii(from) || !ascii(to) {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            // This relay can never take it; a bounce tells staff why the address fails.
            return Transaction {
                outcome: SendOutcome::Rejected(
                    "internationalised address, but the SMTP server does not offer SMTPUTF8".into(),
                ),
                reusable: true,
                stale: false,
            };
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    // Only an internationalised address in the To header makes the bytes 8-bit (the body
    // is base64), and SMTPUTF8 implies 8BITMIME.
    if !bytes.is_ascii() && info.supports_feature(Extension::EightBitMime) {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }

    let mail = Mail::new(Some(from.clone()), parameters);
    let rcpt = Rcpt::new(to.clone(), vec![]);
    // Pipelined, the three commands leave in one write (half the round trips of a message)
    // and their replies are read in order; lettre sends what `command` is given and reads
    // one reply, so the other two are read after it.
    let mail_reply =
        if pipelined { conn.command(format!("{mail}{rcpt}{Data}")).await } else { conn.command(mail).await };
    if let Err(e) = mail_reply {
        // A refused sender is about our From or our account, not about this address:
        // marking the address bounced would be wrong, so it is retried later.
        let outcome = SendOutcome::Transient(describe("MAIL", &e));
        return match reply_code(&e) {
            Some(code) if code >= 500 => {
                if pipelined && !both_refused(conn).await {
                    return Transaction { outcome, reusable: false, stale: false };
                }
                after_refusal(conn, outcome).await
            }
            // 421 or no reply at all: the connection is gone.
            _ => Transaction { outcome, reusable: false, stale: true },
        };
    }
    let rcpt_reply = if pipelined { conn.read_response().await } else { conn.command(rcpt).await };
    if let Err(e) = rcpt_reply {
        if pipelined && !refused_reply(conn.read_response().await) {
            return Transaction { outcome: classify(&e, "RCPT"), reusable: false, stale: false };
        }
        return refused(conn, "RCPT", &e).await;
    }
    let data_reply = if pipelined { conn.read_response().await } else { conn.command(Data).await };
    if let Err(e) = data_reply {
        return refused(conn, "DATA", &e).await;
    }
    match conn.message(bytes).await {
        Ok(_) => Transaction { outcome: SendOutcome::Delivered, reusable: true, stale: false },
        // The transaction is over either way; no RSET needed.
        Err(e) => {
            let outcome = classify(&e, "end of data");
            Transaction { outcome, reusable: reply_code(&e).is_some_and(|c| c != 421), stale: false }
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error, stage: &str) -> SendOutcome {
    match reply_code(e) {
        Some(code) if code >= 500 => SendOutcome::Rejected(describe(stage, e)),
        _ => SendOutcome::Transient(describe(stage, e)),
    }
}

/// After a pipelined command was refused: the replies to what followed it must be refusals
/// too. A 354 (the server would take a message with no valid recipient) or a lost
/// connection leaves the session unusable.
fn refused_reply(reply: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>) -> bool {
    matches!(reply, Err(e) if reply_code(&e).is_some())
}

/// The replies to RCPT and DATA after a pipelined MAIL was refused.
async fn both_refused(conn: &mut AsyncSmtpConnection) -> bool {
    refused_reply(conn.read_response().await) && refused_reply(conn.read_response().await)
}

async fn refused(conn: &mut AsyncSmtpConnection, stage: &str, e: &lettre::transport::smtp::Error) -> Transaction {
    let outcome = classify(e, stage);
    match reply_code(e) {
        Some(code) if code != 421 => after_refusal(conn, outcome).await,
        _ => Transaction { outcome, reusable: false, stale: false },
    }
}

async fn after_refusal(conn: &mut AsyncSmtpConnection, outcome: SendOutcome) -> Transaction {
    let reusable = conn.command(Rset).await.is_ok();
    Transaction { outcome, reusable, stale: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(to: &str) -> OutgoingEmail {
        OutgoingEmail {
            to: EmailAddress::parse(to).unwrap(),
            subject: "【重要】臨時休校のお知らせ".into(),
            text_body: "保護者各位\n明日は臨時休校です。\n".into(),
            message_id: "<m1.r1.1@renrakumo>".into(),
            attachments: vec![],
        }
    }

    #[test]
    fn smtp_urls_pick_security_port_and_credentials() {
        let endpoint = |s: &str| Endpoint::from_url(&Url::parse(s).unwrap(), &[]);
        let plain = endpoint("smtp://mail.example.jp").unwrap();
        assert_eq!((plain.port, plain.security), (25, Security::Plain));
        assert!(plain.credentials.is_none());
        let starttls = endpoint("smtp://mail.example.jp?tls=starttls").unwrap();
        assert_eq!((starttls.port, starttls.security), (587, Security::StartTls));
        let implicit = endpoint("smtps://user%40example.jp:p%2Bss@mail.example.jp").unwrap();
        assert_eq!((implicit.port, implicit.security), (465, Security::Implicit));
        assert!(implicit.credentials.is_some());
        assert!(endpoint("smtp://mail.example.jp?tls=maybe").is_err());
    }

    #[test]
    fn debug_output_hides_the_address() {
        let shown = format!("{:?}", email("taro@example.jp"));
        assert!(!shown.contains("taro@"), "{shown}");
        assert!(!shown.contains("休校"), "{shown}");
    }
}

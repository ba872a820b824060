//! Speaking SMTP to the relay: the endpoint parsed from RENRAKUMO_SMTP_URL, opening a
//! connection (TCP with TCP_NODELAY, TLS, EHLO, STARTTLS, AUTH), and the pipelined exchange
//! that sends one message to one address on it and classifies the server's replies.
//!
//! Why not `lettre::AsyncSmtpTransport`: lettre never sets TCP_NODELAY and writes the body
//! and the final `.` separately, so every message waits ~40 ms for a delayed ACK (about 23
//! messages/s per connection); and its `send` QUITs the connection on any negative
//! reply, so each bouncing address would cost a reconnect. Instead we open the TCP stream
//! ourselves with TCP_NODELAY, let lettre speak the protocol on it (`connect_with_transport`,
//! `command`, `message`), and reset (RSET) rather than close after a refused recipient.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use url::Url;

use super::SendOutcome;

/// TCP connect, greeting, EHLO, TLS and AUTH together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// MAIL to the reply after the final dot. RFC 5321 §4.5.3.2 allows the server up to 10
/// minutes after the dot; a relay that slow is better retried later than waited for.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Security {
    /// `smtp://`: no encryption (a relay on the same host or network).
    Plain,
    /// `smtp://…?tls=starttls` (or `required`): upgrade after EHLO, fail if not offered.
    StartTls,
    /// `smtps://`: TLS from the first byte (RFC 8314).
    Implicit,
}

#[derive(Clone)]
pub(super) struct Endpoint {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Built once: loading the root store per connection would cost more than the handshake.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The same trust for lettre's STARTTLS upgrade.
    starttls: Option<TlsParameters>,
}

impl Endpoint {
    /// `extra_roots` are trusted besides the webpki roots (RENRAKUMO_SMTP_CA_FILE).
    pub(super) fn from_url(url: &Url, extra_roots: &[CertificateDer<'static>]) -> anyhow::Result<Endpoint> {
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
            Security::Implicit => Some(Arc::new(crate::delivery::tls::client_config(extra_roots, &[])?)),
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

    /// A new session, ready for its first message, within [`CONNECT_TIMEOUT`].
    pub(super) async fn connect(&self) -> Result<SmtpConnection, SendOutcome> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(opened) => opened,
            Err(_) => Err(SendOutcome::Transient("timed out connecting to the SMTP server".into())),
        }
    }

    /// TCP with TCP_NODELAY, then TLS if asked, greeting and EHLO, STARTTLS, AUTH.
    async fn open(&self) -> Result<SmtpConnection, SendOutcome> {
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

/// A session ready for its next message.
pub(super) struct SmtpConnection {
    smtp: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
}

/// How the exchange for one message ended: the job's outcome, and what the connection is
/// good for afterwards.
pub(super) struct ExchangeResult {
    pub(super) outcome: SendOutcome,
    pub(super) connection: ConnectionState,
}

/// The connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnectionState {
    /// In a clean state for the next message.
    Reusable,
    /// Closed, or out of step with the server: not to be used again.
    Unusable,
    /// It failed before the server accepted MAIL in a way a closed connection fails: not to
    /// be used again, and the message is safe to repeat on a fresh connection, since nothing
    /// of it was sent.
    Stale,
}

impl SmtpConnection {
    /// lettre gave up on this session (it aborts one after some of its own failures).
    pub(super) fn has_broken(&self) -> bool {
        self.smtp.has_broken()
    }

    /// Sends one message to one address within [`TRANSACTION_TIMEOUT`].
    pub(super) async fn send_message(&mut self, from: &Address, to: &Address, bytes: &[u8]) -> ExchangeResult {
        match tokio::time::timeout(TRANSACTION_TIMEOUT, exchange(self, from, to, bytes)).await {
            Ok(result) => result,
            // Dropping the connection mid-transaction aborts it on the server side.
            Err(_) => ExchangeResult {
                outcome: SendOutcome::Transient("timed out waiting for the SMTP server".into()),
                connection: ConnectionState::Unusable,
            },
        }
    }
}

/// MAIL, RCPT, DATA, message. Replies are classified here; the connection is kept after a
/// refusal once RSET has cleared the half-done transaction.
async fn exchange(conn: &mut SmtpConnection, from: &Address, to: &Address, bytes: &[u8]) -> ExchangeResult {
    let pipelined = conn.pipelining;
    let conn = &mut conn.smtp;
    let info = conn.server_info();
    let mut parameters = Vec::new();
    let ascii = |address: &Address| AsRef::<str>::as_ref(address).is_ascii();
    if !ascii(from) || !ascii(to) {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            // This relay can never take it; a bounce tells staff why the address fails.
            return ExchangeResult {
                outcome: SendOutcome::Rejected(
                    "internationalised address, but the SMTP server does not offer SMTPUTF8".into(),
                ),
                connection: ConnectionState::Reusable,
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
                    return ExchangeResult { outcome, connection: ConnectionState::Unusable };
                }
                after_refusal(conn, outcome).await
            }
            // 421 or no reply at all: the connection is gone.
            _ => ExchangeResult { outcome, connection: ConnectionState::Stale },
        };
    }
    let rcpt_reply = if pipelined { conn.read_response().await } else { conn.command(rcpt).await };
    if let Err(e) = rcpt_reply {
        if pipelined && !refused_reply(conn.read_response().await) {
            return ExchangeResult { outcome: classify(&e, "RCPT"), connection: ConnectionState::Unusable };
        }
        return refused(conn, "RCPT", &e).await;
    }
    let data_reply = if pipelined { conn.read_response().await } else { conn.command(Data).await };
    if let Err(e) = data_reply {
        return refused(conn, "DATA", &e).await;
    }
    match conn.message(bytes).await {
        Ok(_) => ExchangeResult { outcome: SendOutcome::Delivered, connection: ConnectionState::Reusable },
        // The transaction is over either way; no RSET needed.
        Err(e) => {
            let outcome = classify(&e, "end of data");
            let connection = match reply_code(&e) {
                Some(code) if code != 421 => ConnectionState::Reusable,
                _ => ConnectionState::Unusable,
            };
            ExchangeResult { outcome, connection }
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

async fn refused(conn: &mut AsyncSmtpConnection, stage: &str, e: &lettre::transport::smtp::Error) -> ExchangeResult {
    let outcome = classify(e, stage);
    match reply_code(e) {
        Some(code) if code != 421 => after_refusal(conn, outcome).await,
        _ => ExchangeResult { outcome, connection: ConnectionState::Unusable },
    }
}

async fn after_refusal(conn: &mut AsyncSmtpConnection, outcome: SendOutcome) -> ExchangeResult {
    let connection =
        if conn.command(Rset).await.is_ok() { ConnectionState::Reusable } else { ConnectionState::Unusable };
    ExchangeResult { outcome, connection }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! What the push channels share: the notification handed over by the delivery engine, the
//! outcome handed back, and the HTTP/2 plumbing both APNs and FCM ride on.
//!
//! Both clients keep a small, fixed number of HTTP/2 connections (one `reqwest::Client` per
//! connection, each with HTTP/2 prior knowledge, so it never opens a second one) and put many
//! concurrent streams on them. `https://` negotiates `h2` by ALPN; `http://` speaks HTTP/2
//! without TLS (h2c, for local servers). TLS uses rustls with the ring provider chosen
//! explicitly and the webpki roots, so neither the process-wide provider nor the OS
//! certificate store matters.
//!
//! Privacy: device tokens, titles and bodies never reach the logs; the `Debug` output of a
//! [`Notification`] masks the token.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::HeaderMap;
use url::Url;

use crate::clock::Clock;

/// One notification to one device, as the delivery engine hands it over.
#[derive(Clone)]
pub struct Notification {
    /// The device token (APNs: hex; FCM: registration token).
    pub token: String,
    pub title: String,
    pub body: String,
    /// The message the notification announces: APNs `thread-id` and `message_id`, FCM
    /// `data.message_id`, so that the app opens the right message.
    pub message_id: String,
    /// Emergency messages: APNs `interruption-level: time-sensitive`, FCM Android priority high.
    pub emergency: bool,
    /// Notifications with the same collapse id replace each other on the device (APNs
    /// `apns-collapse-id`, at most 64 bytes; FCM `android.collapse_key`). Empty: none.
    pub collapse_id: String,
    /// APNs `apns-id`: deterministic per job so that a resend after a crash carries the
    /// same id. `None` lets Apple assign one.
    pub apns_id: Option<uuid::Uuid>,
}

/// Debug output without the token or the text: it may end up in a log line.
impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("token", &mask_token(&self.token))
            .field("message_id", &self.message_id)
            .field("emergency", &self.emergency)
            .field("apns_id", &self.apns_id)
            .finish_non_exhaustive()
    }
}

/// What the engine does next with the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service accepted the notification.
    Delivered,
    /// Try again later: 429, 5xx, connection failures and timeouts, an authentication that
    /// failed again after renewal. `after` is the service's `Retry-After`, when it sent one.
    Retry { reason: String, after: Option<Duration> },
    /// The token is dead (APNs 410 / BadDeviceToken / DeviceTokenNotForTopic, FCM
    /// UNREGISTERED / INVALID_ARGUMENT about the token): remove the device. Carries the reason.
    InvalidToken(String),
    /// Any other refusal: give up on this job, the reason is recorded.
    Failed(String),
}

impl PushOutcome {
    /// A fixed word for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PushOutcome::Delivered => "delivered",
            PushOutcome::Retry { .. } => "retry",
            PushOutcome::InvalidToken(_) => "invalid_token",
            PushOutcome::Failed(_) => "failed",
        }
    }

    pub(crate) fn retry(reason: impl Into<String>, after: Option<Duration>) -> PushOutcome {
        PushOutcome::Retry { reason: reason.into(), after }
    }
}

/// `abcd…wxyz` for logs: enough to tell tokens apart, not enough to use one.
pub fn mask_token(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 8 {
        return "***".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// How the push clients connect; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// HTTP/2 connections per client, each carrying many concurrent streams. On two cores one
    /// connection already saturates the CPU (16–21k requests/s with 64–1,000 in flight; more
    /// connections added nothing); a second one keeps notifications flowing while the other
    /// reconnects after a GOAWAY.
    pub connections: usize,
    /// Extra trusted root certificates (PEM) next to the webpki roots, e.g. a test CA.
    pub root_certificates_pem: Vec<Vec<u8>>,
    /// Whole request, from sending to the end of the answer.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// When credentials (APNs provider tokens, FCM access tokens) are old enough to renew.
    pub clock: Clock,
}

pub const DEFAULT_CONNECTIONS: usize = 2;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connections: DEFAULT_CONNECTIONS,
            root_certificates_pem: Vec::new(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            clock: Clock::system(),
        }
    }
}

impl ClientOptions {
    /// Trusts `pem` (one or more certificates) in addition to the webpki roots.
    pub fn with_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates_pem.push(pem.into());
        self
    }

    pub fn with_connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }
}

/// A fixed set of HTTP/2 connections, used round-robin.
pub(crate) struct H2Pool {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
}

impl H2Pool {
    pub(crate) fn new(base: &Url, options: &ClientOptions) -> anyhow::Result<H2Pool> {
        let tls = tls_config(options, &[b"h2"])?;
        let clients = (0..options.connections.max(1))
            .map(|_| {
                let builder = reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .tcp_nodelay(true)
                    .connect_timeout(options.connect_timeout)
                    .timeout(options.request_timeout)
                    .http2_keep_alive_interval(Duration::from_secs(60))
                    .http2_keep_alive_timeout(Duration::from_secs(20))
                    .http2_keep_alive_while_idle(true)
                    .user_agent(USER_AGENT)
                    .tls_backend_preconfigured(tls.clone());
                let builder = if base.scheme() == "http" { builder.no_proxy() } else { builder };
                builder.build().context("building the HTTP/2 client")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(H2Pool { clients, next: AtomicUsize::new(0) })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[i]
    }
}

/// A plain client (HTTP/1.1, or h2 by ALPN) for OAuth token endpoints.
pub(crate) fn plain_client(options: &ClientOptions) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(USER_AGENT)
        .tls_backend_preconfigured(tls_config(options, &[b"h2", b"http/1.1"])?)
        .build()
        .context("building the HTTP client")
}

const USER_AGENT: &str = concat!("renrakumo/", env!("CARGO_PKG_VERSION"));

fn tls_config(options: &ClientOptions, alpn: &[&[u8]]) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = Vec::new();
    for pem in &options.root_certificates_pem {
        roots.extend(super::tls::pem_certificates(pem).context("a root certificate PEM")?);
    }
    super::tls::client_config(&roots, alpn)
}

/// Checks the scheme and drops a trailing slash, so that `{base}/3/device/…` is well formed.
pub(crate) fn base_string(base: &Url) -> anyhow::Result<String> {
    anyhow::ensure!(
        matches!(base.scheme(), "http" | "https"),
        "{base}: push endpoints are https:// (TLS) or http:// (HTTP/2 without TLS)"
    );
    anyhow::ensure!(base.query().is_none() && base.fragment().is_none(), "{base}: no query or fragment allowed");
    Ok(base.as_str().trim_end_matches('/').to_owned())
}

/// `Retry-After` as delay-seconds or an HTTP date; capped at one day.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(Duration::from_secs(86_400)))
}

/// A reqwest error without the URL (it carries the device token on APNs), with its causes:
/// reqwest's own text is often just "error sending request".
pub(crate) fn describe_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What is percent-encoded in a path segment: all but RFC 3986's unreserved characters.
pub(crate) const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub(crate) const ELLIPSIS: &str = "…";

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{08}' | '\u{0c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Shortens `text` so that its JSON form is at least `excess` bytes shorter, cutting at a
/// character boundary and ending in an ellipsis. `None` when even the empty text plus the
/// ellipsis would not save enough.
pub(crate) fn shorten(text: &str, excess: usize) -> Option<Cow<'_, str>> {
    if excess == 0 {
        return Some(Cow::Borrowed(text));
    }
    let need = excess + ELLIPSIS.len();
    let mut saved = 0;
    for (i, c) in text.char_indices().rev() {
        saved += json_len(c);
        if saved >= need {
            return Some(Cow::Owned(format!("{}{ELLIPSIS}", &text[..i])));
        }
    }
    None
}

/// A payload that fits, with the texts it was rendered from (cut or not).
pub(crate) struct Fitted<'a> {
    pub title: Cow<'a, str>,
    pub body: Cow<'a, str>,
    pub bytes: Vec<u8>,
}

/// Serialises a payload built from `(title, body)` within `limit` bytes: when it is too long
/// the body is cut (at a character boundary, with an ellipsis), then, only if that is not
/// enough, the title as well. Fails when not even empty texts fit.
pub(crate) fn fit_payload<'a>(
    title: &'a str,
    body: &'a str,
    limit: usize,
    render: impl Fn(&str, &str) -> Vec<u8>,
) -> Result<Fitted<'a>, String> {
    let full = render(title, body);
    if full.len() <= limit {
        return Ok(Fitted { title: Cow::Borrowed(title), body: Cow::Borrowed(body), bytes: full });
    }
    let too_long = || format!("payload does not fit in {limit} bytes");
    let (title, body) = match shorten(body, full.len() - limit) {
        Some(body) => (Cow::Borrowed(title), body),
        None => {
            // The body goes entirely; the title pays for the rest.
            let excess = render(title, "").len().saturating_sub(limit);
            (shorten(title, excess).ok_or_else(too_long)?, Cow::Borrowed(""))
        }
    };
    let bytes = render(&title, &body);
    if bytes.len() <= limit { Ok(Fitted { title, body, bytes }) } else { Err(too_long()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_at_character_boundaries() {
        let text = "あいうえお";
        // Each kana is 3 bytes; saving 1 byte needs 1 + 3 (ellipsis) = 4 bytes: two kana go.
        assert_eq!(shorten(text, 1).unwrap(), "あいう…");
        assert_eq!(shorten(text, 0).unwrap(), "あいうえお");
        assert!(shorten(text, 13).is_none());
        assert_eq!(shorten(text, 12).unwrap(), "…");
    }

    #[test]
    fn shorten_counts_json_escapes() {
        // `"` takes 2 bytes in JSON, a control character 6.
        assert_eq!(shorten("ab\"\"", 1).unwrap(), "ab…");
        assert_eq!(shorten("abc\u{1}", 3).unwrap(), "abc…");
    }

    #[test]
    fn fit_payload_keeps_within_the_limit() {
        let render = |t: &str, b: &str| serde_json::to_vec(&serde_json::json!({"t": t, "b": b})).unwrap();
        let body = "連絡".repeat(1000) + "\"\n";
        let out = fit_payload("件名", &body, 200, render).unwrap().bytes;
        assert!(out.len() <= 200 && out.len() > 190, "{}", out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["b"].as_str().unwrap().ends_with('…'));
        let title = "題".repeat(200);
        let out = fit_payload(&title, &body, 100, render).unwrap().bytes;
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["b"], "");
        assert!(v["t"].as_str().unwrap().ends_with('…'));
        assert!(fit_payload("x", "y", 5, render).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        headers.insert("retry-after", later.format("%a, %d %b %Y %H:%M:%S GMT").to_string().parse().unwrap());
        let d = retry_after(&headers).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28), "{d:?}");
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn tokens_are_masked() {
        assert_eq!(mask_token("0123456789abcdef"), "0123…cdef");
        assert_eq!(mask_token("short"), "***");
    }
}

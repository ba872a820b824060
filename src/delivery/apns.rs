//! Apple Push Notification service: our own client on reqwest over HTTP/2, with token-based
//! provider authentication (ES256 JWT from a `.p8` key).
//!
//! Why not `a2`: it only knows Apple's production and sandbox hosts and keeps its builder
//! private, so it cannot be pointed at a local server and tested.
//!
//! The provider JWT is signed once and reused by every request until it is 40 minutes old
//! (Apple refuses tokens older than 60 minutes and answers `TooManyProviderTokenUpdates` when
//! they change more often than every 20 minutes). A `403 ExpiredProviderToken` renews it at
//! once, only once for all requests that carried the same token, and the request is retried
//! once with the new token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use percent_encoding::utf8_percent_encode;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::Clock;
use crate::config::ApnsConfig;
use crate::delivery::push::{self, ClientOptions, H2Pool, Notification, PushOutcome};

/// Apple's limit for an alert payload.
pub const MAX_PAYLOAD: usize = 4096;
/// `apns-collapse-id` may not exceed 64 bytes.
pub const MAX_COLLAPSE_ID: usize = 64;
/// A provider token is renewed when it is this old (Apple accepts 60 minutes).
pub const TOKEN_REFRESH: Duration = Duration::from_secs(40 * 60);
/// How long Apple keeps trying to reach an offline device (`apns-expiration`).
pub const EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Sends notifications to APNs; cheap to share behind an `Arc` across delivery tasks.
pub struct ApnsClient {
    pool: H2Pool,
    /// `{base}/3/device/`
    device_url: String,
    topic: HeaderValue,
    provider: ProviderToken,
}

impl std::fmt::Debug for ApnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsClient")
            .field("device_url", &self.device_url)
            .field("topic", &self.topic)
            .field("key_id", &self.provider.key_id)
            .finish_non_exhaustive()
    }
}

impl ApnsClient {
    /// `base_url`: `https://api.push.apple.com` (TLS, ALPN h2) or `http://host:port` (HTTP/2
    /// without TLS, for local servers).
    pub fn new(config: &ApnsConfig, base_url: &Url) -> anyhow::Result<ApnsClient> {
        ApnsClient::with_options(config, base_url, &ClientOptions::default())
    }

    /// [`ApnsClient::new`] with other connection settings, e.g. a test CA.
    pub fn with_options(config: &ApnsConfig, base_url: &Url, options: &ClientOptions) -> anyhow::Result<ApnsClient> {
        let base = push::base_string(base_url)?;
        let topic = HeaderValue::from_str(&config.topic).context("RENRAKUMO_APNS_TOPIC: not a valid header value")?;
        let provider = ProviderToken::new(config, options.clock.clone())?;
        Ok(ApnsClient {
            pool: H2Pool::new(base_url, options)?,
            device_url: format!("{base}/3/device/"),
            topic,
            provider,
        })
    }

    /// Renews the provider token when it reaches this age instead of [`TOKEN_REFRESH`].
    pub fn with_token_refresh(mut self, age: Duration) -> ApnsClient {
        self.provider.refresh = age;
        self
    }

    /// Provider tokens signed so far (the first one included).
    pub fn provider_tokens_signed(&self) -> u64 {
        self.provider.signed.load(Ordering::Relaxed)
    }

    /// Sends one notification to one device; never panics, every failure is an outcome.
    pub async fn send(&self, n: &Notification) -> PushOutcome {
        let payload = match payload(n) {
            Ok(payload) => payload,
            Err(reason) => return PushOutcome::Failed(reason),
        };
        let jwt = match self.provider.current() {
            Ok(jwt) => jwt,
            Err(reason) => return PushOutcome::retry(reason, None),
        };
        match self.post(n, payload.clone(), &jwt).await {
            ApnsReply::Done(outcome) => outcome,
            ApnsReply::ExpiredProviderToken => {
                let jwt = match self.provider.renew(&jwt) {
                    Ok(jwt) => jwt,
                    Err(reason) => return PushOutcome::retry(reason, None),
                };
                match self.post(n, payload, &jwt).await {
                    ApnsReply::Done(outcome) => outcome,
                    ApnsReply::ExpiredProviderToken => {
                        PushOutcome::retry("403 ExpiredProviderToken, again after renewing the provider token", None)
                    }
                }
            }
        }
    }

    async fn post(&self, n: &Notification, payload: Vec<u8>, jwt: &SignedToken) -> ApnsReply {
        let url = format!("{}{}", self.device_url, utf8_percent_encode(&n.token, push::PATH_SEGMENT));
        let expiration = self.provider.clock.now_secs() + EXPIRATION.as_secs() as i64;
        let mut request = self
            .pool
            .client()
            .post(url)
            .header(AUTHORIZATION, jwt.header.clone())
            .header("apns-topic", self.topic.clone())
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", expiration.to_string())
            .header(CONTENT_TYPE, "application/json");
        if let Some(collapse_id) = collapse_id(&n.collapse_id) {
            request = request.header("apns-collapse-id", collapse_id);
        }
        if let Some(id) = n.apns_id {
            request = request.header("apns-id", id.hyphenated().to_string());
        }
        let response = match request.body(payload).send().await {
            Ok(response) => response,
            Err(e) => return ApnsReply::Done(PushOutcome::retry(format!("APNs {}", push::describe_error(e)), None)),
        };
        let status = response.status();
        if status == StatusCode::OK {
            // Read the (empty or tiny) body to the end: a dropped one resets the stream.
            let _ = response.bytes().await;
            return ApnsReply::Done(PushOutcome::Delivered);
        }
        let after = push::retry_after(response.headers());
        let reason = match response.bytes().await {
            Ok(body) => serde_json::from_slice::<ApnsError>(&body).ok().and_then(|e| e.reason),
            Err(_) => None,
        };
        classify(status, reason, after)
    }
}

/// APNs' reply to one request, classified: the job's outcome, or a provider token Apple
/// called expired (renew it and send once more).
enum ApnsReply {
    Done(PushOutcome),
    ExpiredProviderToken,
}

#[derive(Deserialize)]
struct ApnsError {
    reason: Option<String>,
}

fn classify(status: StatusCode, reason: Option<String>, after: Option<Duration>) -> ApnsReply {
    let code = status.as_u16();
    let reason_or = |default: &str| reason.clone().unwrap_or_else(|| default.to_owned());
    let outcome = match code {
        410 => PushOutcome::InvalidToken(reason_or("Unregistered")),
        400 if matches!(reason.as_deref(), Some("BadDeviceToken" | "DeviceTokenNotForTopic")) => {
            PushOutcome::InvalidToken(reason_or(""))
        }
        403 if reason.as_deref() == Some("ExpiredProviderToken") => return ApnsReply::ExpiredProviderToken,
        // Our credentials refused (InvalidProviderToken: wrong key, key id or team): the
        // configuration, not this device. Retried with the engine's backoff (about an hour
        // in all), so the notifications still go out once the key is fixed.
        403 => PushOutcome::retry(format!("403 {}", reason_or("Forbidden")), after),
        429 => PushOutcome::retry(format!("429 {}", reason_or("TooManyRequests")), after),
        500..=599 => PushOutcome::retry(format!("{code} {}", reason_or("server error")), after),
        400..=499 => PushOutcome::Failed(reason_or(&format!("HTTP {code}"))),
        _ => PushOutcome::retry(format!("unexpected HTTP {code}"), after),
    };
    ApnsReply::Done(outcome)
}

/// The collapse id cut to 64 bytes at a character boundary; `None` when empty or unusable.
fn collapse_id(id: &str) -> Option<HeaderValue> {
    let mut end = id.len().min(MAX_COLLAPSE_ID);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    let id = id[..end].trim();
    if id.is_empty() { None } else { HeaderValue::from_str(id).ok() }
}

#[derive(Serialize)]
struct Payload<'a> {
    aps: Aps<'a>,
    message_id: &'a str,
}

#[derive(Serialize)]
struct Aps<'a> {
    alert: Alert<'a>,
    sound: &'static str,
    #[serde(rename = "thread-id")]
    thread_id: &'a str,
    #[serde(rename = "interruption-level", skip_serializing_if = "Option::is_none")]
    interruption_level: Option<&'static str>,
}

#[derive(Serialize)]
struct Alert<'a> {
    title: &'a str,
    body: &'a str,
}

/// The JSON payload, at most [`MAX_PAYLOAD`] bytes: a longer body is cut at a character
/// boundary and ends in an ellipsis.
pub fn payload(n: &Notification) -> Result<Vec<u8>, String> {
    let interruption_level = n.emergency.then_some("time-sensitive");
    push::fit_payload(&n.title, &n.body, MAX_PAYLOAD, |title, body| {
        let payload = Payload {
            aps: Aps { alert: Alert { title, body }, sound: "default", thread_id: &n.message_id, interruption_level },
            message_id: &n.message_id,
        };
        serde_json::to_vec(&payload).expect("serialising strings cannot fail")
    })
    .map(|fitted| fitted.bytes)
}

/// The provider authentication token, shared by all requests.
struct ProviderToken {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    refresh: Duration,
    clock: Clock,
    current: RwLock<Option<Arc<SignedToken>>>,
    signed: AtomicU64,
}

struct SignedToken {
    /// `bearer <jwt>`
    header: HeaderValue,
    /// Epoch milliseconds by the client's clock.
    signed_at: i64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

impl ProviderToken {
    fn new(config: &ApnsConfig, clock: Clock) -> anyhow::Result<ProviderToken> {
        let key = EncodingKey::from_ec_pem(config.key_pem.as_bytes())
            .context("RENRAKUMO_APNS_KEY_FILE: not a PKCS#8 EC P-256 private key (.p8)")?;
        let token = ProviderToken {
            key,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            refresh: TOKEN_REFRESH,
            clock,
            current: RwLock::new(None),
            signed: AtomicU64::new(0),
        };
        // Sign once now: a key that cannot sign should stop the start, not every job.
        let first = token.sign().map_err(|e| anyhow::anyhow!(e)).context("RENRAKUMO_APNS_KEY_FILE")?;
        *token.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(first));
        Ok(token)
    }

    fn sign(&self) -> Result<SignedToken, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let signed_at = self.clock.now_ms();
        let iat = signed_at.div_euclid(1000);
        let jwt = jsonwebtoken::encode(&header, &Claims { iss: &self.team_id, iat }, &self.key)
            .map_err(|e| format!("signing the APNs provider token: {e}"))?;
        let header = HeaderValue::from_str(&format!("bearer {jwt}")).map_err(|e| e.to_string())?;
        self.signed.fetch_add(1, Ordering::Relaxed);
        Ok(SignedToken { header, signed_at })
    }

    fn fresh(&self, token: &SignedToken) -> bool {
        self.clock.now_ms() - token.signed_at < self.refresh.as_millis() as i64
    }

    /// The token to use now, renewed when it has reached `refresh`.
    fn current(&self) -> Result<Arc<SignedToken>, String> {
        if let Some(token) = self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && self.fresh(token)
        {
            return Ok(token.clone());
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = current.as_ref()
            && self.fresh(token)
        {
            return Ok(token.clone());
        }
        let token = Arc::new(self.sign()?);
        *current = Some(token.clone());
        Ok(token)
    }

    /// Apple called `rejected` expired: sign a new one unless another request already did.
    fn renew(&self, rejected: &Arc<SignedToken>) -> Result<Arc<SignedToken>, String> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = current.as_ref()
            && !Arc::ptr_eq(token, rejected)
        {
            return Ok(token.clone());
        }
        let token = Arc::new(self.sign()?);
        *current = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(body: &str, emergency: bool) -> Notification {
        Notification {
            token: "ab".repeat(32),
            title: "お知らせ".into(),
            body: body.into(),
            message_id: "m1".into(),
            emergency,
            collapse_id: "m1".into(),
            apns_id: None,
        }
    }

    #[test]
    fn payload_has_the_alert_and_the_level_only_for_emergencies() {
        let v: serde_json::Value = serde_json::from_slice(&payload(&notification("本文", false)).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"aps": {"alert": {"title": "お知らせ", "body": "本文"}, "sound": "default",
                "thread-id": "m1"}, "message_id": "m1"})
        );
        let v: serde_json::Value = serde_json::from_slice(&payload(&notification("本文", true)).unwrap()).unwrap();
        assert_eq!(v["aps"]["interruption-level"], "time-sensitive");
    }

    #[test]
    fn long_bodies_are_cut_to_4096_bytes() {
        let body = "緊急連絡です。".repeat(400);
        let bytes = payload(&notification(&body, true)).unwrap();
        assert!(bytes.len() <= MAX_PAYLOAD && bytes.len() > MAX_PAYLOAD - 4, "{}", bytes.len());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let cut = v["aps"]["alert"]["body"].as_str().unwrap();
        assert!(cut.ends_with('…'));
        assert!(body.starts_with(cut.trim_end_matches('…')));
    }

    #[test]
    fn collapse_ids_are_cut_at_64_bytes() {
        assert_eq!(collapse_id(&"x".repeat(70)).unwrap().len(), 64);
        assert_eq!(collapse_id(&"あ".repeat(30)).unwrap().len(), 63);
        assert!(collapse_id("").is_none());
    }

    #[test]
    fn replies_map_to_outcomes() {
        let done = |a: ApnsReply| match a {
            ApnsReply::Done(o) => o,
            ApnsReply::ExpiredProviderToken => panic!("expired"),
        };
        let r = |s: &str| Some(s.to_owned());
        assert_eq!(
            done(classify(StatusCode::GONE, r("Unregistered"), None)),
            PushOutcome::InvalidToken("Unregistered".into())
        );
        assert_eq!(
            done(classify(StatusCode::BAD_REQUEST, r("BadDeviceToken"), None)),
            PushOutcome::InvalidToken("BadDeviceToken".into())
        );
        assert_eq!(
            done(classify(StatusCode::BAD_REQUEST, r("BadTopic"), None)),
            PushOutcome::Failed("BadTopic".into())
        );
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, r("ExpiredProviderToken"), None),
            ApnsReply::ExpiredProviderToken
        ));
        assert_eq!(
            done(classify(StatusCode::FORBIDDEN, r("InvalidProviderToken"), None)),
            PushOutcome::retry("403 InvalidProviderToken", None)
        );
        assert!(matches!(
            done(classify(StatusCode::TOO_MANY_REQUESTS, None, Some(Duration::from_secs(5)))),
            PushOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(5)
        ));
        assert!(matches!(done(classify(StatusCode::SERVICE_UNAVAILABLE, None, None)), PushOutcome::Retry { .. }));
    }
}

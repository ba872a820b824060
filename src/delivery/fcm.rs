//! Firebase Cloud Messaging, HTTP v1 API: one `messages:send` per device token, many at once
//! over a small, fixed set of HTTP/2 connections.
//!
//! Authentication is a Google service account: we sign the OAuth2 JWT-bearer grant
//! (RFC 7523, RS256, `iss` = the account's `client_email`, `aud` = its `token_uri`, scope
//! `firebase.messaging`) and exchange it at the JSON's `token_uri`, which is honoured, so a
//! local server can stand in for Google. The access token is shared by all requests and
//! renewed shortly before `expires_in`, or at once after a 401 (then the request is retried
//! once). One fetch at a time: concurrent requests wait for it rather than stampeding.
//!
//! Why not `gcp_auth`: it brings its own HTTP client that needs the OS certificate store even
//! for `http://` token endpoints; the grant is a dozen lines on the
//! `jsonwebtoken` and `reqwest` we already use.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::Clock;
use crate::delivery::push::{self, ClientOptions, H2Pool, Notification, PushOutcome};

pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// FCM refuses notification + data payloads over 4096 bytes; we keep the whole `message`
/// object (without the token) within that, cutting the body when needed.
pub const MAX_PAYLOAD: usize = 4096;
/// An access token is renewed this long before it expires (at most half its lifetime).
pub const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// After a failed token fetch, requests within this time share its outcome.
const FAILURE_HOLD: Duration = Duration::from_secs(5);
/// Lifetime asked for in the JWT-bearer assertion (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;

/// Sends notifications through FCM; cheap to share behind an `Arc` across delivery tasks.
pub struct FcmClient {
    pool: H2Pool,
    send_url: String,
    auth: AccessTokens,
}

impl std::fmt::Debug for FcmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmClient")
            .field("send_url", &self.send_url)
            .field("client_email", &self.auth.client_email)
            .field("token_uri", &self.auth.token_uri)
            .finish_non_exhaustive()
    }
}

/// The fields of a service-account JSON we use.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

impl FcmClient {
    /// `credentials_path`: a service-account JSON; `base_url`: `https://fcm.googleapis.com`
    /// or `http://host:port` (HTTP/2 without TLS, for local servers).
    pub fn new(credentials_path: &Path, base_url: &Url) -> anyhow::Result<FcmClient> {
        FcmClient::with_options(credentials_path, base_url, &ClientOptions::default())
    }

    /// [`FcmClient::new`] with other connection settings, e.g. a test CA.
    pub fn with_options(credentials_path: &Path, base_url: &Url, options: &ClientOptions) -> anyhow::Result<FcmClient> {
        let what = || format!("RENRAKUMO_FCM_CREDENTIALS: {}", credentials_path.display());
        let text = std::fs::read_to_string(credentials_path).with_context(what)?;
        let account: ServiceAccount =
            serde_json::from_str(&text).with_context(|| format!("{}: not a service-account JSON", what()))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .with_context(|| format!("{}: private_key is not an RSA key in PEM", what()))?;
        let token_uri: Url = account.token_uri.parse().with_context(|| format!("{}: token_uri", what()))?;
        anyhow::ensure!(matches!(token_uri.scheme(), "http" | "https"), "{}: token_uri must be http(s)", what());
        let project = percent_encoding::utf8_percent_encode(&account.project_id, push::PATH_SEGMENT);
        let base = push::base_string(base_url)?;
        let auth = AccessTokens {
            http: push::plain_client(options)?,
            token_uri,
            client_email: account.client_email,
            key_id: account.private_key_id.filter(|id| !id.is_empty()),
            key,
            clock: options.clock.clone(),
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
            fetched: std::sync::atomic::AtomicU64::new(0),
        };
        // Sign once now: a key that cannot sign should stop the start, not every job.
        auth.assertion().map_err(|e| anyhow::anyhow!(e)).with_context(what)?;
        Ok(FcmClient {
            pool: H2Pool::new(base_url, options)?,
            send_url: format!("{base}/v1/projects/{project}/messages:send"),
            auth,
        })
    }

    /// Access tokens obtained from the token endpoint so far.
    pub fn access_tokens_fetched(&self) -> u64 {
        self.auth.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one notification to one device; never panics, every failure is an outcome.
    pub async fn send(&self, n: &Notification) -> PushOutcome {
        let body = match message(n) {
            Ok(body) => body,
            Err(reason) => return PushOutcome::Failed(reason),
        };
        let token = match self.auth.token().await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        match self.post(body.clone(), &token).await {
            FcmReply::Done(outcome) => outcome,
            FcmReply::Unauthorized => {
                self.auth.invalidate(&token);
                let token = match self.auth.token().await {
                    Ok(token) => token,
                    Err(outcome) => return outcome,
                };
                match self.post(body, &token).await {
                    FcmReply::Done(outcome) => outcome,
                    FcmReply::Unauthorized => {
                        PushOutcome::retry("401 UNAUTHENTICATED, again with a new access token", None)
                    }
                }
            }
        }
    }

    async fn post(&self, body: Vec<u8>, token: &AccessToken) -> FcmReply {
        let request = self
            .pool
            .client()
            .post(&self.send_url)
            .header(AUTHORIZATION, token.header.clone())
            .header(CONTENT_TYPE, "application/json; charset=UTF-8")
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return FcmReply::Done(PushOutcome::retry(format!("FCM {}", push::describe_error(e)), None)),
        };
        let status = response.status();
        if status == StatusCode::OK {
            // Read the (empty or tiny) body to the end: a dropped one resets the stream.
            let _ = response.bytes().await;
            return FcmReply::Done(PushOutcome::Delivered);
        }
        let after = push::retry_after(response.headers());
        let error = match response.bytes().await {
            Ok(body) => serde_json::from_slice::<ErrorBody>(&body).map(|b| b.error).unwrap_or_default(),
            Err(_) => FcmError::default(),
        };
        classify(status, &error, after)
    }
}

/// FCM's reply to one `messages:send`, classified: the job's outcome, or a 401 (renew the
/// access token and send once more).
enum FcmReply {
    Done(PushOutcome),
    Unauthorized,
}

/// `{"error": {"code", "message", "status", "details": [{"@type", "errorCode", "fieldViolations"}]}}`
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: FcmError,
}

#[derive(Deserialize, Default)]
struct FcmError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize, Default)]
struct FieldViolation {
    #[serde(default)]
    field: String,
}

impl FcmError {
    /// FCM's own code (`UNREGISTERED`, `INVALID_ARGUMENT`, …) or else the RPC status.
    fn code(&self) -> &str {
        self.details.iter().find_map(|d| d.error_code.as_deref()).unwrap_or(&self.status)
    }

    fn about_the_token(&self) -> bool {
        self.details.iter().flat_map(|d| &d.field_violations).any(|v| v.field == "message.token")
            || self.message.to_ascii_lowercase().contains("registration token")
    }

    fn describe(&self, status: StatusCode) -> String {
        match (self.code(), self.message.as_str()) {
            ("", "") => format!("HTTP {}", status.as_u16()),
            (code, "") => code.to_owned(),
            ("", message) => message.to_owned(),
            (code, message) => format!("{code}: {message}"),
        }
    }
}

fn classify(status: StatusCode, error: &FcmError, after: Option<Duration>) -> FcmReply {
    let code = status.as_u16();
    let outcome = match code {
        401 => return FcmReply::Unauthorized,
        404 if error.code() == "UNREGISTERED" => PushOutcome::InvalidToken(error.describe(status)),
        400 if (error.code() == "INVALID_ARGUMENT" || error.status == "INVALID_ARGUMENT")
            && error.about_the_token() =>
        {
            PushOutcome::InvalidToken(error.describe(status))
        }
        429 | 500..=599 => PushOutcome::retry(format!("{code} {}", error.describe(status)), after),
        400..=499 => PushOutcome::Failed(error.describe(status)),
        _ => PushOutcome::retry(format!("unexpected HTTP {code}"), after),
    };
    FcmReply::Done(outcome)
}

#[derive(Serialize)]
struct Send<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    token: &'a str,
    notification: Content<'a>,
    data: Data<'a>,
    android: Android<'a>,
}

#[derive(Serialize)]
struct Content<'a> {
    title: &'a str,
    body: &'a str,
}

#[derive(Serialize)]
struct Data<'a> {
    message_id: &'a str,
}

#[derive(Serialize)]
struct Android<'a> {
    priority: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    collapse_key: &'a str,
}

/// The `messages:send` body; a body too long for FCM is cut at a character boundary and ends
/// in an ellipsis.
pub fn message(n: &Notification) -> Result<Vec<u8>, String> {
    let render = |token: &str, title: &str, body: &str| {
        let send = Send {
            message: Message {
                token,
                notification: Content { title, body },
                data: Data { message_id: &n.message_id },
                android: Android {
                    priority: if n.emergency { "high" } else { "normal" },
                    collapse_key: &n.collapse_id,
                },
            },
        };
        serde_json::to_vec(&send).expect("serialising strings cannot fail")
    };
    // Fit without the token (FCM does not count it), then render with it.
    let fitted = push::fit_payload(&n.title, &n.body, MAX_PAYLOAD, |title, body| render("", title, body))?;
    Ok(render(&n.token, &fitted.title, &fitted.body))
}

/// OAuth2 access tokens from the service account's `token_uri`.
struct AccessTokens {
    http: reqwest::Client,
    token_uri: Url,
    client_email: String,
    key_id: Option<String>,
    key: EncodingKey,
    clock: Clock,
    current: RwLock<Option<Arc<AccessToken>>>,
    /// Held while fetching, so that one request fetches and the others wait for it. Holds the
    /// last failure: requests that waited for a fetch that failed share its outcome instead
    /// of each trying again (and each waiting for a timeout) in turn.
    fetching: tokio::sync::Mutex<Option<(Instant, PushOutcome)>>,
    fetched: std::sync::atomic::AtomicU64,
}

struct AccessToken {
    /// `Bearer <token>`
    header: HeaderValue,
    /// Epoch milliseconds by the client's clock.
    renew_at: i64,
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The token endpoint's JSON on success.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AccessTokens {
    fn cached(&self) -> Option<Arc<AccessToken>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|t| self.clock.now_ms() < t.renew_at).cloned()
    }

    async fn token(&self) -> Result<Arc<AccessToken>, PushOutcome> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let mut last_failure = self.fetching.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        if let Some((at, outcome)) = last_failure.as_ref()
            && at.elapsed() < FAILURE_HOLD
        {
            return Err(outcome.clone());
        }
        match self.fetch().await {
            Ok(token) => {
                let token = Arc::new(token);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
                *last_failure = None;
                Ok(token)
            }
            Err(outcome) => {
                *last_failure = Some((Instant::now(), outcome.clone()));
                Err(outcome)
            }
        }
    }

    /// FCM refused `rejected`: forget it unless another request already replaced it.
    fn invalidate(&self, rejected: &Arc<AccessToken>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|t| Arc::ptr_eq(t, rejected)) {
            *current = None;
        }
    }

    fn assertion(&self) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let iat = self.clock.now_secs();
        let claims = GrantClaims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: self.token_uri.as_str(),
            iat,
            exp: iat + ASSERTION_LIFETIME as i64,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("signing the FCM token request: {e}"))
    }

    async fn fetch(&self) -> Result<AccessToken, PushOutcome> {
        let retry = |reason: String| PushOutcome::retry(format!("FCM access token: {reason}"), None);
        let assertion = self.assertion().map_err(retry)?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ])
        .map_err(|e| retry(e.to_string()))?;
        let started = self.clock.now_ms();
        let response = self
            .http
            .post(self.token_uri.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| retry(push::describe_error(e)))?;
        let status = response.status();
        let after = push::retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| retry(push::describe_error(e)))?;
        if !status.is_success() {
            // `{"error": "invalid_grant", "error_description": "…"}`: shown, it names the problem.
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(PushOutcome::retry(format!("FCM access token: HTTP {}: {text}", status.as_u16()), after));
        }
        let granted: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| retry(format!("unexpected answer from the token endpoint: {e}")))?;
        let header = HeaderValue::from_str(&format!("Bearer {}", granted.access_token))
            .map_err(|_| retry("the access token is not a valid header value".into()))?;
        let lifetime = Duration::from_secs(granted.expires_in.unwrap_or(3600));
        let renew_at = started + (lifetime - TOKEN_MARGIN.min(lifetime / 2)).as_millis() as i64;
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(AccessToken { header, renew_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: serde_json::Value) -> FcmError {
        serde_json::from_value::<ErrorBody>(json).unwrap().error
    }

    fn done(reply: FcmReply) -> PushOutcome {
        match reply {
            FcmReply::Done(outcome) => outcome,
            FcmReply::Unauthorized => panic!("unauthorized"),
        }
    }

    #[test]
    fn replies_map_to_outcomes() {
        let unregistered =
            error(serde_json::json!({"error": {"code": 404, "message": "Requested entity was not found.",
            "status": "NOT_FOUND", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "UNREGISTERED"}]}}));
        assert!(matches!(done(classify(StatusCode::NOT_FOUND, &unregistered, None)), PushOutcome::InvalidToken(r)
            if r.starts_with("UNREGISTERED")));
        let bad_token = error(serde_json::json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
            "message": "The registration token is not a valid FCM registration token"}}));
        assert!(matches!(done(classify(StatusCode::BAD_REQUEST, &bad_token, None)), PushOutcome::InvalidToken(_)));
        let bad_payload = error(serde_json::json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
            "message": "Invalid value at 'message.android.priority'"}}));
        assert!(matches!(done(classify(StatusCode::BAD_REQUEST, &bad_payload, None)), PushOutcome::Failed(_)));
        let not_found = error(serde_json::json!({"error": {"code": 404, "status": "NOT_FOUND", "message": "x"}}));
        assert!(matches!(done(classify(StatusCode::NOT_FOUND, &not_found, None)), PushOutcome::Failed(_)));
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, &FcmError::default(), None), FcmReply::Unauthorized));
        let after = Some(Duration::from_secs(7));
        assert!(matches!(done(classify(StatusCode::TOO_MANY_REQUESTS, &FcmError::default(), after)),
            PushOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)));
        assert!(matches!(
            done(classify(StatusCode::SERVICE_UNAVAILABLE, &FcmError::default(), None)),
            PushOutcome::Retry { .. }
        ));
    }

    #[test]
    fn long_bodies_are_cut() {
        let n = Notification {
            token: "t".repeat(150),
            title: "件名".into(),
            body: "本文".repeat(2000),
            message_id: "m".into(),
            emergency: true,
            collapse_id: String::new(),
            apns_id: None,
        };
        let bytes = message(&n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["message"]["token"], n.token);
        assert_eq!(v["message"]["android"], serde_json::json!({"priority": "high"}));
        assert!(bytes.len() <= MAX_PAYLOAD + n.token.len());
        assert!(v["message"]["notification"]["body"].as_str().unwrap().ends_with('…'));
    }
}

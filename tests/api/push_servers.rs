//! In-process APNs and FCM servers that speak the real wire protocols, for the push tests
//! and the push benchmark (`examples/push_bench_server.rs` includes this file).
//!
//! - [`ApnsServer`]: HTTP/2 only (h2c, or TLS with ALPN h2 and a test CA), `POST
//!   /3/device/{token}`; verifies the ES256 provider JWT against the test key's public key
//!   (`kid`, `iss`, `iat` no older than an hour), the `apns-*` headers and the payload, and
//!   answers like Apple (`{"reason": …}`), per token as told.
//! - [`FcmServer`]: `POST /token` (OAuth2 JWT-bearer grant, RS256 assertion checked against the
//!   service account's public key) and `POST /v1/projects/{id}/messages:send` (bearer token
//!   checked, message checked), answering like FCM HTTP v1, per token as told.
//!
//! Both count TCP connections and record which connection every request came on. What a
//! client did wrong is answered like the real service would and also listed in
//! `problems()`, so that tests can assert there were none.
//!
//! Keys are generated at run time, once per process.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use renrakumo::config::ApnsConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

pub const APNS_KEY_ID: &str = "KEYID12345";
pub const APNS_TEAM_ID: &str = "TEAMID6789";
pub const APNS_TOPIC: &str = "jp.renrakumo.app";
pub const FCM_PROJECT: &str = "renrakumo-test";
pub const FCM_CLIENT_EMAIL: &str = "push@renrakumo-test.iam.gserviceaccount.com";
pub const FCM_KEY_ID: &str = "0123456789abcdef";
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// HTTP/2 streams a connection may carry at once; Apple advertises 1,000.
pub const MAX_CONCURRENT_STREAMS: u32 = 1000;

// ---------------------------------------------------------------------------------------
// Keys and the test CA

pub struct TestKeys {
    /// APNs `.p8`: PKCS#8 PEM of a P-256 key.
    pub apns_p8: String,
    pub apns_public_pem: String,
    /// Service account: PKCS#8 PEM of a 2048-bit RSA key.
    pub fcm_private_pem: String,
    pub fcm_public_pem: String,
}

/// Generated once per process.
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let apns = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let rsa_key = rsa_key_from_openssl()
            .unwrap_or_else(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key"));
        TestKeys {
            apns_p8: apns.serialize_pem(),
            apns_public_pem: apns.public_key_pem(),
            fcm_private_pem: rsa_key.to_pkcs8_pem(LineEnding::LF).expect("RSA PEM").to_string(),
            fcm_public_pem: rsa_key.to_public_key().to_public_key_pem(LineEnding::LF).expect("RSA public PEM"),
        }
    })
}

/// The `rsa` crate needs 2–30 s for a 2048-bit key in a debug build (prime search in
/// unoptimised big-number code); `openssl`, when installed, takes milliseconds.
fn rsa_key_from_openssl() -> Option<rsa::RsaPrivateKey> {
    use rsa::pkcs8::DecodePrivateKey;
    let output = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let pem = String::from_utf8(output.stdout).ok()?;
    rsa::RsaPrivateKey::from_pkcs8_pem(&pem).ok()
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it.
pub struct TestCa {
    /// What the client must trust.
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// The server side of the test certificate (also offers HTTP/2 by ALPN).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server)
    }
}

pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "renrakumo test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::from_params(&ca, &ca_key);
        let leaf_key = KeyPair::generate().expect("server key");
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        leaf.distinguished_name.push(DnType::CommonName, "push test server");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("server certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
                .expect("server TLS config");
        server.alpn_protocols = vec![b"h2".to_vec()];
        TestCa { ca_pem: ca_cert.pem(), server: Arc::new(server) }
    })
}

// ---------------------------------------------------------------------------------------
// The HTTP server underneath both

type Reply = Response<Full<Bytes>>;
type Handler = Arc<dyn Fn(Request<Incoming>, usize) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

struct Listening {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

/// Serves `handler`: HTTP/2 only or HTTP/1.1 and h2c, over TLS when given.
fn listen(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, h2_only: bool, handler: Handler) -> Listening {
    let addr = listener.local_addr().expect("local addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let id = counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = handler(req, id);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().max_concurrent_streams(MAX_CONCURRENT_STREAMS);
                let builder = if h2_only { builder.http2_only() } else { builder };
                match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else { return };
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    Listening { addr, connections, task }
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: Value) -> Reply {
    let mut response = Response::builder().status(status).header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    response.body(Full::new(body)).expect("response")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// APNs

/// How the APNs server answers a device token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApnsAnswer {
    /// 410 `Unregistered`.
    Unregistered,
    /// 400 `BadDeviceToken`.
    BadDeviceToken,
    /// 400 `DeviceTokenNotForTopic`.
    DeviceTokenNotForTopic,
    /// 400 `BadTopic`: a 4xx that is not about the token.
    BadTopic,
    /// 403 `ExpiredProviderToken` once, then accepted.
    ExpiredProviderTokenOnce,
    /// 429 `TooManyRequests`, with `retry-after` seconds when given.
    TooManyRequests(Option<u64>),
    /// 500 `InternalServerError`.
    InternalServerError,
    /// 503 `ServiceUnavailable` with `retry-after` seconds.
    ServiceUnavailable(u64),
}

/// One notification the APNs server accepted.
#[derive(Debug, Clone)]
pub struct ApnsReceived {
    pub token: String,
    pub headers: HeaderMap,
    pub payload: Value,
    pub payload_bytes: usize,
    /// The provider JWT it carried.
    pub jwt: String,
    pub connection: usize,
}

#[derive(Default)]
struct ApnsState {
    answers: Mutex<HashMap<String, ApnsAnswer>>,
    received: Mutex<Vec<ApnsReceived>>,
    /// Every request, answered or not: (token, status).
    requests: Mutex<Vec<(String, u16)>>,
    /// Provider tokens verified so far, in order of first use.
    jwts: Mutex<Vec<String>>,
    verified: Mutex<HashSet<String>>,
    expired: Mutex<HashSet<String>>,
    problems: Mutex<Vec<String>>,
    count: AtomicU64,
    /// The benchmark turns off recording to measure the server alone.
    quiet: AtomicBool,
}

pub struct ApnsServer {
    pub url: Url,
    state: Arc<ApnsState>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for ApnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApnsServer {
    /// HTTP/2 without TLS (h2c).
    pub async fn start() -> ApnsServer {
        ApnsServer::start_with(None).await
    }

    /// HTTPS with ALPN h2 and a certificate from [`test_ca`].
    pub async fn start_tls() -> ApnsServer {
        ApnsServer::start_with(Some(test_ca().server.clone())).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> ApnsServer {
        let decoding = DecodingKey::from_ec_pem(keys().apns_public_pem.as_bytes()).expect("APNs public key");
        let state = Arc::new(ApnsState::default());
        let for_handler = state.clone();
        let handler: Handler = Arc::new(move |req, connection| {
            let state = for_handler.clone();
            let decoding = decoding.clone();
            Box::pin(async move { apns_handle(&state, &decoding, req, connection).await })
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listening = listen(bind().await, tls, true, handler);
        ApnsServer {
            url: format!("{scheme}://{}", listening.addr).parse().expect("url"),
            state,
            connections: listening.connections,
            task: listening.task,
        }
    }

    /// What the client needs: the test key and the ids the server checks.
    pub fn config(&self) -> ApnsConfig {
        ApnsConfig {
            key_pem: keys().apns_p8.clone(),
            key_id: APNS_KEY_ID.to_owned(),
            team_id: APNS_TEAM_ID.to_owned(),
            topic: APNS_TOPIC.to_owned(),
        }
    }

    pub fn answer(&self, token: &str, answer: ApnsAnswer) {
        lock(&self.state.answers).insert(token.to_owned(), answer);
    }

    /// From now on every provider token seen so far is answered `403 ExpiredProviderToken`.
    pub fn expire_provider_tokens(&self) {
        let seen = lock(&self.state.jwts).clone();
        lock(&self.state.expired).extend(seen);
    }

    pub fn received(&self) -> Vec<ApnsReceived> {
        lock(&self.state.received).clone()
    }

    /// Every request as (token, HTTP status), in order of arrival.
    pub fn requests(&self) -> Vec<(String, u16)> {
        lock(&self.state.requests).clone()
    }

    /// Distinct provider tokens, in order of first use.
    pub fn provider_tokens(&self) -> Vec<String> {
        lock(&self.state.jwts).clone()
    }

    /// What clients did wrong; empty when everything was as Apple wants it.
    pub fn problems(&self) -> Vec<String> {
        lock(&self.state.problems).clone()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Distinct connections that carried accepted notifications.
    pub fn request_connections(&self) -> usize {
        lock(&self.state.received).iter().map(|r| r.connection).collect::<HashSet<_>>().len()
    }

    /// Notifications accepted so far (also counted when quiet).
    pub fn accepted(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Stops recording notifications and requests (the benchmark's long runs).
    pub fn quiet(&self) {
        self.state.quiet.store(true, Ordering::Relaxed);
    }
}

fn apns_error(status: StatusCode, reason: &str, headers: &[(&str, String)]) -> Reply {
    let body = if status == StatusCode::GONE {
        json!({"reason": reason, "timestamp": now_secs() * 1000})
    } else {
        json!({"reason": reason})
    };
    reply(status, headers, body)
}

async fn apns_handle(state: &ApnsState, decoding: &DecodingKey, req: Request<Incoming>, connection: usize) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let token = parts.uri.path().strip_prefix("/3/device/").unwrap_or("").to_owned();
    let (status, response) = apns_answer(state, decoding, &parts, &body, &token, connection);
    if !state.quiet.load(Ordering::Relaxed) {
        lock(&state.requests).push((token, status.as_u16()));
    }
    response
}

fn apns_answer(
    state: &ApnsState,
    decoding: &DecodingKey,
    parts: &hyper::http::request::Parts,
    body: &Bytes,
    token: &str,
    connection: usize,
) -> (StatusCode, Reply) {
    let problem = |status: StatusCode, reason: &str, detail: String| {
        lock(&state.problems).push(format!("{status} {reason}: {detail}"));
        (status, apns_error(status, reason, &[]))
    };
    if parts.version != Version::HTTP_2 {
        return problem(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "BadVersion", format!("{:?}", parts.version));
    }
    if parts.method != Method::POST {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", parts.method.to_string());
    }
    if token.is_empty() || token.contains('/') {
        return problem(StatusCode::NOT_FOUND, "BadPath", parts.uri.path().to_owned());
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);

    // Provider authentication.
    let Some(authorization) = header("authorization") else {
        return problem(StatusCode::FORBIDDEN, "MissingProviderToken", "no authorization header".into());
    };
    let Some(jwt) = authorization.strip_prefix("bearer ") else {
        return problem(StatusCode::FORBIDDEN, "InvalidProviderToken", format!("not `bearer <jwt>`: {authorization}"));
    };
    if lock(&state.expired).contains(jwt) {
        return (StatusCode::FORBIDDEN, apns_error(StatusCode::FORBIDDEN, "ExpiredProviderToken", &[]));
    }
    if !lock(&state.verified).contains(jwt) {
        match verify_provider_token(jwt, decoding) {
            // Two streams may verify the same new token at once: record it once.
            Ok(()) => {
                if lock(&state.verified).insert(jwt.to_owned()) {
                    lock(&state.jwts).push(jwt.to_owned());
                }
            }
            Err((reason, detail)) => return problem(StatusCode::FORBIDDEN, reason, detail),
        }
    }

    // Headers.
    match header("apns-topic") {
        None => return problem(StatusCode::BAD_REQUEST, "MissingTopic", "no apns-topic".into()),
        Some(topic) if topic != APNS_TOPIC => return problem(StatusCode::BAD_REQUEST, "TopicDisallowed", topic),
        Some(_) => {}
    }
    if header("apns-push-type").as_deref() != Some("alert") {
        return problem(StatusCode::BAD_REQUEST, "InvalidPushType", format!("{:?}", header("apns-push-type")));
    }
    if header("apns-priority").as_deref() != Some("10") {
        return problem(StatusCode::BAD_REQUEST, "BadPriority", format!("{:?}", header("apns-priority")));
    }
    match header("apns-expiration").map(|e| e.parse::<u64>()) {
        Some(Ok(at)) if at > now_secs() => {}
        other => return problem(StatusCode::BAD_REQUEST, "BadExpirationDate", format!("{other:?}")),
    }
    if let Some(id) = header("apns-id")
        && (uuid::Uuid::parse_str(&id).is_err() || id.len() != 36)
    {
        return problem(StatusCode::BAD_REQUEST, "BadMessageId", id);
    }
    if let Some(id) = header("apns-collapse-id")
        && id.len() > 64
    {
        return problem(StatusCode::BAD_REQUEST, "BadCollapseId", id);
    }

    // Payload.
    if body.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "PayloadEmpty", String::new());
    }
    if body.len() > 4096 {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", format!("{} bytes", body.len()));
    }
    let payload: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "BadPayload", e.to_string()),
    };
    let alert = &payload["aps"]["alert"];
    if !alert["title"].is_string() || !alert["body"].is_string() || !payload["aps"]["thread-id"].is_string() {
        return problem(StatusCode::BAD_REQUEST, "BadPayload", format!("aps: {}", payload["aps"]));
    }

    // What this token is to get.
    let answer = {
        let mut answers = lock(&state.answers);
        let answer = answers.get(token).cloned();
        if answer == Some(ApnsAnswer::ExpiredProviderTokenOnce) {
            answers.remove(token);
        }
        answer
    };
    let error = |status: StatusCode, reason: &str| (status, apns_error(status, reason, &[]));
    match answer {
        Some(ApnsAnswer::Unregistered) => return error(StatusCode::GONE, "Unregistered"),
        Some(ApnsAnswer::BadDeviceToken) => return error(StatusCode::BAD_REQUEST, "BadDeviceToken"),
        Some(ApnsAnswer::DeviceTokenNotForTopic) => return error(StatusCode::BAD_REQUEST, "DeviceTokenNotForTopic"),
        Some(ApnsAnswer::BadTopic) => return error(StatusCode::BAD_REQUEST, "BadTopic"),
        Some(ApnsAnswer::ExpiredProviderTokenOnce) => return error(StatusCode::FORBIDDEN, "ExpiredProviderToken"),
        Some(ApnsAnswer::TooManyRequests(after)) => {
            let headers: Vec<_> = after.map(|s| ("retry-after", s.to_string())).into_iter().collect();
            let status = StatusCode::TOO_MANY_REQUESTS;
            return (status, apns_error(status, "TooManyRequests", &headers));
        }
        Some(ApnsAnswer::InternalServerError) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError");
        }
        Some(ApnsAnswer::ServiceUnavailable(after)) => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return (status, apns_error(status, "ServiceUnavailable", &[("retry-after", after.to_string())]));
        }
        None => {}
    }

    state.count.fetch_add(1, Ordering::Relaxed);
    let apns_id = header("apns-id").unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase());
    if !state.quiet.load(Ordering::Relaxed) {
        lock(&state.received).push(ApnsReceived {
            token: token.to_owned(),
            headers: parts.headers.clone(),
            payload,
            payload_bytes: body.len(),
            jwt: jwt.to_owned(),
            connection,
        });
    }
    let response = Response::builder().status(StatusCode::OK).header("apns-id", apns_id);
    (StatusCode::OK, response.body(Full::new(Bytes::new())).expect("response"))
}

#[derive(serde::Deserialize)]
struct ProviderClaims {
    iss: String,
    iat: u64,
}

/// Apple's checks: ES256 signed by the key named in `kid`, `iss` the team, `iat` within the hour.
fn verify_provider_token(jwt: &str, decoding: &DecodingKey) -> Result<(), (&'static str, String)> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| ("InvalidProviderToken", e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(("InvalidProviderToken", format!("alg {:?}", header.alg)));
    }
    if header.kid.as_deref() != Some(APNS_KEY_ID) {
        return Err(("InvalidProviderToken", format!("kid {:?}", header.kid)));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::new();
    validation.set_issuer(&[APNS_TEAM_ID]);
    let claims = jsonwebtoken::decode::<ProviderClaims>(jwt, decoding, &validation)
        .map_err(|e| ("InvalidProviderToken", e.to_string()))?
        .claims;
    if claims.iss != APNS_TEAM_ID {
        return Err(("InvalidProviderToken", format!("iss {}", claims.iss)));
    }
    let now = now_secs();
    if claims.iat > now + 60 {
        return Err(("InvalidProviderToken", format!("iat {} in the future", claims.iat)));
    }
    if claims.iat + 3600 < now {
        return Err(("ExpiredProviderToken", format!("iat {}", claims.iat)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// FCM

/// How the FCM server answers a registration token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcmAnswer {
    /// 404 NOT_FOUND with errorCode UNREGISTERED.
    Unregistered,
    /// 400 INVALID_ARGUMENT about the registration token.
    InvalidToken,
    /// 400 INVALID_ARGUMENT about something else than the token.
    InvalidPayload,
    /// 403 SENDER_ID_MISMATCH.
    SenderIdMismatch,
    /// 429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED with `Retry-After` seconds.
    QuotaExceeded(u64),
    /// 503 UNAVAILABLE, with `Retry-After` seconds when given.
    Unavailable(Option<u64>),
    /// 500 INTERNAL.
    Internal,
}

/// One message the FCM server accepted.
#[derive(Debug, Clone)]
pub struct FcmReceived {
    pub token: String,
    pub message: Value,
    pub access_token: String,
    pub connection: usize,
    pub version: Version,
}

struct FcmState {
    token_uri: String,
    answers: Mutex<HashMap<String, FcmAnswer>>,
    received: Mutex<Vec<FcmReceived>>,
    requests: Mutex<Vec<(String, u16)>>,
    /// Access token → when it expires.
    issued: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    expires_in: AtomicU64,
    unauthorized_once: AtomicBool,
    problems: Mutex<Vec<String>>,
    count: AtomicU64,
    quiet: AtomicBool,
}

pub struct FcmServer {
    pub url: Url,
    state: Arc<FcmState>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FcmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FcmServer {
    /// HTTP/1.1 and h2c on one port: the token endpoint is HTTP/1.1 to most clients.
    pub async fn start() -> FcmServer {
        let listener = bind().await;
        let addr = listener.local_addr().expect("local addr");
        let url: Url = format!("http://{addr}").parse().expect("url");
        let decoding = DecodingKey::from_rsa_pem(keys().fcm_public_pem.as_bytes()).expect("RSA public key");
        let state = Arc::new(FcmState {
            token_uri: format!("{url}token"),
            answers: Mutex::default(),
            received: Mutex::default(),
            requests: Mutex::default(),
            issued: Mutex::default(),
            token_requests: AtomicUsize::new(0),
            expires_in: AtomicU64::new(3600),
            unauthorized_once: AtomicBool::new(false),
            problems: Mutex::default(),
            count: AtomicU64::new(0),
            quiet: AtomicBool::new(false),
        });
        let for_handler = state.clone();
        let handler: Handler = Arc::new(move |req, connection| {
            let state = for_handler.clone();
            let decoding = decoding.clone();
            Box::pin(async move { fcm_handle(&state, &decoding, req, connection).await })
        });
        let listening = listen(listener, None, false, handler);
        FcmServer { url, state, connections: listening.connections, task: listening.task }
    }

    /// Writes the service-account JSON for this server into `dir`.
    pub fn write_credentials(&self, dir: &Path) -> PathBuf {
        let path = dir.join("service-account.json");
        let json = json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": FCM_KEY_ID,
            "private_key": keys().fcm_private_pem,
            "client_email": FCM_CLIENT_EMAIL,
            "client_id": "123456789",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.state.token_uri,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json")).expect("write credentials");
        path
    }

    pub fn answer(&self, token: &str, answer: FcmAnswer) {
        lock(&self.state.answers).insert(token.to_owned(), answer);
    }

    /// From now on the token's notifications are accepted again.
    pub fn accept(&self, token: &str) {
        lock(&self.state.answers).remove(token);
    }

    /// Lifetime (`expires_in`) of the access tokens issued from now on.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// Every access token issued so far stops working (401).
    pub fn revoke_access_tokens(&self) {
        lock(&self.state.issued).clear();
    }

    /// The next `messages:send` is answered 401 whatever its token.
    pub fn unauthorized_once(&self) {
        self.state.unauthorized_once.store(true, Ordering::SeqCst);
    }

    /// An access token as if granted at `/token` (for load generators such as h2load).
    pub fn issue_access_token(&self) -> String {
        let token = format!("ya29.bench-{}", uuid::Uuid::new_v4().simple());
        lock(&self.state.issued).insert(token.clone(), Instant::now() + Duration::from_secs(24 * 3600));
        token
    }

    /// Grants issued at `/token`.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<FcmReceived> {
        lock(&self.state.received).clone()
    }

    /// Every `messages:send` as (registration token, HTTP status), in order of arrival.
    pub fn requests(&self) -> Vec<(String, u16)> {
        lock(&self.state.requests).clone()
    }

    pub fn problems(&self) -> Vec<String> {
        lock(&self.state.problems).clone()
    }

    /// TCP connections accepted, the token endpoint's included.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Distinct connections that carried `messages:send` requests.
    pub fn send_connections(&self) -> usize {
        lock(&self.state.received).iter().map(|r| r.connection).collect::<HashSet<_>>().len()
    }

    pub fn accepted(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    pub fn quiet(&self) {
        self.state.quiet.store(true, Ordering::Relaxed);
    }
}

fn fcm_error(status: StatusCode, rpc_status: &str, message: &str, error_code: Option<&str>) -> Value {
    let details: Vec<Value> = error_code
        .map(|code| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}))
        .into_iter()
        .collect();
    json!({"error": {"code": status.as_u16(), "message": message, "status": rpc_status, "details": details}})
}

async fn fcm_handle(state: &FcmState, decoding: &DecodingKey, req: Request<Incoming>, connection: usize) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path();
    if path == "/token" {
        return fcm_token(state, decoding, &parts, &body);
    }
    let send_path = format!("/v1/projects/{FCM_PROJECT}/messages:send");
    if path != send_path {
        lock(&state.problems).push(format!("404: {} {path}", parts.method));
        let status = StatusCode::NOT_FOUND;
        return reply(status, &[], fcm_error(status, "NOT_FOUND", "Requested entity was not found.", None));
    }
    let (token, status, response) = fcm_send(state, &parts, &body, connection);
    if !state.quiet.load(Ordering::Relaxed) {
        lock(&state.requests).push((token, status.as_u16()));
    }
    response
}

#[derive(serde::Deserialize)]
struct GrantClaims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn fcm_token(state: &FcmState, decoding: &DecodingKey, parts: &hyper::http::request::Parts, body: &Bytes) -> Reply {
    let refuse = |error: &str, detail: String| {
        lock(&state.problems).push(format!("token: {error}: {detail}"));
        reply(StatusCode::BAD_REQUEST, &[], json!({"error": error, "error_description": detail}))
    };
    if parts.method != Method::POST {
        return refuse("invalid_request", format!("method {}", parts.method));
    }
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return refuse("invalid_request", format!("content-type {content_type}"));
    }
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(body) {
        Ok(form) => form,
        Err(e) => return refuse("invalid_request", e.to_string()),
    };
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse("unsupported_grant_type", format!("{:?}", form.get("grant_type")));
    }
    let Some(assertion) = form.get("assertion") else {
        return refuse("invalid_request", "no assertion".into());
    };
    match jsonwebtoken::decode_header(assertion) {
        Ok(header) if header.alg == Algorithm::RS256 && header.kid.as_deref() == Some(FCM_KEY_ID) => {}
        Ok(header) => return refuse("invalid_grant", format!("header alg {:?} kid {:?}", header.alg, header.kid)),
        Err(e) => return refuse("invalid_grant", e.to_string()),
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_uri]);
    validation.set_issuer(&[FCM_CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let claims = match jsonwebtoken::decode::<GrantClaims>(assertion, decoding, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse("invalid_grant", format!("assertion: {e}")),
    };
    let now = now_secs();
    if claims.scope.split(' ').all(|s| s != FCM_SCOPE) {
        return refuse("invalid_scope", claims.scope);
    }
    if claims.iat > now + 60 || claims.exp > claims.iat + 3600 || claims.aud != state.token_uri {
        return refuse("invalid_grant", format!("iat {} exp {} aud {}", claims.iat, claims.exp, claims.aud));
    }
    let _ = claims.iss;
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("ya29.test-{n}-{}", uuid::Uuid::new_v4().simple());
    let expires_in = state.expires_in.load(Ordering::SeqCst);
    lock(&state.issued).insert(access_token.clone(), Instant::now() + Duration::from_secs(expires_in));
    reply(StatusCode::OK, &[], json!({"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}))
}

fn fcm_send(
    state: &FcmState,
    parts: &hyper::http::request::Parts,
    body: &Bytes,
    connection: usize,
) -> (String, StatusCode, Reply) {
    let problem = |status: StatusCode, rpc: &str, message: String| {
        lock(&state.problems).push(format!("{status} {rpc}: {message}"));
        (String::new(), status, reply(status, &[], fcm_error(status, rpc, &message, None)))
    };
    if parts.method != Method::POST {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", parts.method.to_string());
    }
    if parts.version != Version::HTTP_2 {
        lock(&state.problems).push(format!("messages:send over {:?}, not HTTP/2", parts.version));
    }

    // Authentication.
    let unauthorized = || {
        let status = StatusCode::UNAUTHORIZED;
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
                       or other valid authentication credential.";
        let www = ("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"".to_owned());
        (String::new(), status, reply(status, &[www], fcm_error(status, "UNAUTHENTICATED", message, None)))
    };
    let access_token = match parts.headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) => match value.strip_prefix("Bearer ") {
            Some(token) => token.to_owned(),
            None => return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", format!("not `Bearer`: {value}")),
        },
        None => return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "no authorization header".into()),
    };
    if state.unauthorized_once.swap(false, Ordering::SeqCst) {
        return unauthorized();
    }
    match lock(&state.issued).get(&access_token) {
        Some(expires) if Instant::now() < *expires => {}
        _ => return unauthorized(),
    }

    // The message.
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("content-type {content_type}"));
    }
    let send: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("Invalid JSON payload: {e}")),
    };
    let message = &send["message"];
    let Some(token) = message["token"].as_str().map(str::to_owned) else {
        return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("no message.token: {send}"));
    };
    let notification = &message["notification"];
    if !notification["title"].is_string()
        || !notification["body"].is_string()
        || !message["data"]["message_id"].is_string()
    {
        return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("notification or data: {message}"));
    }
    if !matches!(message["android"]["priority"].as_str(), Some("high" | "normal")) {
        return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("android: {}", message["android"]));
    }
    let payload_bytes = notification.to_string().len() + message["data"].to_string().len();
    if payload_bytes > 4096 {
        return problem(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("Message is too big: {payload_bytes}"));
    }

    let answer = lock(&state.answers).get(&token).cloned();
    let error = |status: StatusCode, rpc: &str, message: &str, code: Option<&str>, headers: &[(&str, String)]| {
        (token.clone(), status, reply(status, headers, fcm_error(status, rpc, message, code)))
    };
    match answer {
        Some(FcmAnswer::Unregistered) => {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Requested entity was not found.",
                Some("UNREGISTERED"),
                &[],
            );
        }
        Some(FcmAnswer::InvalidToken) => {
            let message = "The registration token is not a valid FCM registration token";
            return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, Some("INVALID_ARGUMENT"), &[]);
        }
        Some(FcmAnswer::InvalidPayload) => {
            let message = "Invalid value at 'message.data[0].value' (TYPE_STRING), 12";
            return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, Some("INVALID_ARGUMENT"), &[]);
        }
        Some(FcmAnswer::SenderIdMismatch) => {
            let message = "SenderId mismatch";
            return error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message, Some("SENDER_ID_MISMATCH"), &[]);
        }
        Some(FcmAnswer::QuotaExceeded(after)) => {
            let message = "Quota exceeded for quota metric 'Send requests'";
            let headers = [("retry-after", after.to_string())];
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                message,
                Some("QUOTA_EXCEEDED"),
                &headers,
            );
        }
        Some(FcmAnswer::Unavailable(after)) => {
            let headers: Vec<_> = after.map(|s| ("retry-after", s.to_string())).into_iter().collect();
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return error(
                status,
                "UNAVAILABLE",
                "The service is currently unavailable.",
                Some("UNAVAILABLE"),
                &headers,
            );
        }
        Some(FcmAnswer::Internal) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            return error(status, "INTERNAL", "Internal error encountered.", Some("INTERNAL"), &[]);
        }
        None => {}
    }

    let n = state.count.fetch_add(1, Ordering::Relaxed) + 1;
    if !state.quiet.load(Ordering::Relaxed) {
        lock(&state.received).push(FcmReceived {
            token: token.clone(),
            message: message.clone(),
            access_token,
            connection,
            version: parts.version,
        });
    }
    let name = format!("projects/{FCM_PROJECT}/messages/0:{n}%{}", uuid::Uuid::new_v4().simple());
    (token, StatusCode::OK, reply(StatusCode::OK, &[], json!({"name": name})))
}

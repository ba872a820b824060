//! The push channels (APNs and FCM HTTP v1) against in-process servers that speak the real
//! protocols (`push_servers`); no database involved.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use renrakumo::clock::Clock;
use renrakumo::delivery::apns::ApnsClient;
use renrakumo::delivery::fcm::FcmClient;
use renrakumo::delivery::push::{ClientOptions, DEFAULT_CONNECTIONS, Notification, PushOutcome};
use serde_json::json;
use tempfile::TempDir;

use crate::push_servers::{ApnsAnswer, ApnsServer, FcmAnswer, FcmServer, test_ca};

const TITLE: &str = "【重要】台風接近に伴う臨時休校のお知らせ";
const BODY: &str = "保護者各位\n台風の接近に伴い、明日は臨時休校とします。\"受信確認\"をお願いします。";

fn apns_token(n: usize) -> String {
    format!("{n:08x}{}", "a1b2c3d4".repeat(7))
}

/// Deterministic per (message, device), as the engine derives it.
fn job_uuid(token: &str) -> uuid::Uuid {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(token.as_bytes());
    uuid::Builder::from_custom_bytes(hash[..16].try_into().unwrap()).into_uuid()
}

fn notification(token: &str, emergency: bool) -> Notification {
    Notification {
        token: token.to_owned(),
        title: TITLE.to_owned(),
        body: BODY.to_owned(),
        message_id: "0190b2c4-7d2a-7c3e-8f00-5a1b2c3d4e5f".to_owned(),
        emergency,
        collapse_id: "0190b2c4-7d2a-7c3e-8f00-5a1b2c3d4e5f".to_owned(),
        apns_id: Some(job_uuid(token)),
    }
}

fn apns_client(server: &ApnsServer) -> ApnsClient {
    ApnsClient::new(&server.config(), &server.url).expect("APNs client")
}

/// A client whose provider tokens age by `clock`, which the test moves instead of sleeping.
fn apns_client_on(server: &ApnsServer, clock: &Clock) -> ApnsClient {
    let options = ClientOptions { clock: clock.clone(), ..Default::default() };
    ApnsClient::with_options(&server.config(), &server.url, &options).expect("APNs client")
}

fn fcm_client(server: &FcmServer) -> (FcmClient, TempDir) {
    fcm_client_on(server, &Clock::system())
}

/// A client whose access tokens age by `clock`.
fn fcm_client_on(server: &FcmServer, clock: &Clock) -> (FcmClient, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let credentials = server.write_credentials(dir.path());
    let options = ClientOptions { clock: clock.clone(), ..Default::default() };
    (FcmClient::with_options(&credentials, &server.url, &options).expect("FCM client"), dir)
}

fn retry_after(outcome: &PushOutcome) -> Option<Duration> {
    match outcome {
        PushOutcome::Retry { after, .. } => *after,
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

// --- APNs ----------------------------------------------------------------------------------

#[tokio::test]
async fn apns_notification_arrives_with_jwt_headers_and_payload() {
    let server = ApnsServer::start().await;
    let client = apns_client(&server);
    let normal = notification(&apns_token(1), false);
    let emergency = notification(&apns_token(2), true);
    assert_eq!(client.send(&normal).await, PushOutcome::Delivered);
    assert_eq!(client.send(&emergency).await, PushOutcome::Delivered);
    assert_eq!(server.problems(), Vec::<String>::new());

    let received = server.received();
    assert_eq!(received.len(), 2);
    let first = &received[0];
    assert_eq!(first.token, normal.token);
    let header = |name: &str| first.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("apns-topic").as_deref(), Some("jp.renrakumo.app"));
    assert_eq!(header("apns-push-type").as_deref(), Some("alert"));
    assert_eq!(header("apns-priority").as_deref(), Some("10"));
    assert_eq!(header("apns-collapse-id").as_deref(), Some(normal.collapse_id.as_str()));
    assert_eq!(header("apns-id"), Some(normal.apns_id.unwrap().hyphenated().to_string()));
    let expiration: u64 = header("apns-expiration").unwrap().parse().unwrap();
    let day = now_secs() + 86_400;
    assert!(expiration.abs_diff(day) <= 5, "apns-expiration {expiration}, expected about {day}");
    assert!(header("authorization").unwrap().starts_with("bearer "));
    assert_eq!(
        first.payload,
        json!({"aps": {"alert": {"title": TITLE, "body": BODY}, "sound": "default",
            "thread-id": normal.message_id}, "message_id": normal.message_id})
    );

    // The server verified the signature; the claims are also what Apple documents.
    let header = jsonwebtoken::decode_header(&first.jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("KEYID12345"));
    let claims: serde_json::Value = {
        use base64::Engine as _;
        let part = first.jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    assert_eq!(claims["iss"], "TEAMID6789");
    assert!(claims["iat"].as_u64().unwrap().abs_diff(now_secs()) <= 5);

    let second = &received[1];
    assert_eq!(second.payload["aps"]["interruption-level"], "time-sensitive");
    assert!(first.payload["aps"].get("interruption-level").is_none());
}

#[tokio::test]
async fn apns_without_apns_id_or_collapse_id_leaves_the_headers_out() {
    let server = ApnsServer::start().await;
    let client = apns_client(&server);
    let mut n = notification(&apns_token(1), false);
    n.apns_id = None;
    n.collapse_id = String::new();
    assert_eq!(client.send(&n).await, PushOutcome::Delivered);
    let received = server.received();
    assert!(received[0].headers.get("apns-id").is_none());
    assert!(received[0].headers.get("apns-collapse-id").is_none());
    // A collapse id longer than Apple's 64 bytes is cut, not refused.
    n.collapse_id = "連絡".repeat(20);
    assert_eq!(client.send(&n).await, PushOutcome::Delivered);
    let collapse = server.received()[1].headers["apns-collapse-id"].clone();
    assert_eq!(collapse.len(), 63);
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn apns_payload_is_cut_to_4kb_at_a_character_boundary() {
    let server = ApnsServer::start().await;
    let client = apns_client(&server);
    // 3-byte kana and kanji, 4-byte emoji, and characters JSON escapes.
    let body = "運動会は雨天のため延期します🏫。\"詳細\"は\nリンクから。".repeat(200);
    let mut n = notification(&apns_token(7), true);
    n.body = body.clone();
    assert_eq!(client.send(&n).await, PushOutcome::Delivered);
    assert_eq!(server.problems(), Vec::<String>::new());
    let received = &server.received()[0];
    assert!(received.payload_bytes <= 4096, "{} bytes", received.payload_bytes);
    assert!(received.payload_bytes > 4096 - 8, "cut too much: {} bytes", received.payload_bytes);
    let cut = received.payload["aps"]["alert"]["body"].as_str().unwrap();
    assert!(cut.ends_with('…'), "no ellipsis");
    assert!(body.starts_with(cut.strip_suffix('…').unwrap()));
    assert_eq!(received.payload["aps"]["alert"]["title"], TITLE);
    assert_eq!(received.payload["aps"]["interruption-level"], "time-sensitive");

    // A short body is left alone.
    let short = notification(&apns_token(8), false);
    assert_eq!(client.send(&short).await, PushOutcome::Delivered);
    assert_eq!(server.received()[1].payload["aps"]["alert"]["body"], BODY);
}

#[tokio::test]
async fn apns_error_answers_map_to_outcomes() {
    let server = ApnsServer::start().await;
    let client = apns_client(&server);
    let cases = [
        (ApnsAnswer::Unregistered, PushOutcome::InvalidToken("Unregistered".into())),
        (ApnsAnswer::BadDeviceToken, PushOutcome::InvalidToken("BadDeviceToken".into())),
        (ApnsAnswer::DeviceTokenNotForTopic, PushOutcome::InvalidToken("DeviceTokenNotForTopic".into())),
        (ApnsAnswer::BadTopic, PushOutcome::Failed("BadTopic".into())),
    ];
    for (i, (answer, expected)) in cases.into_iter().enumerate() {
        let token = apns_token(100 + i);
        server.answer(&token, answer.clone());
        assert_eq!(client.send(&notification(&token, false)).await, expected, "{answer:?}");
    }

    let retries = [
        (ApnsAnswer::TooManyRequests(Some(30)), Some(Duration::from_secs(30))),
        (ApnsAnswer::TooManyRequests(None), None),
        (ApnsAnswer::InternalServerError, None),
        (ApnsAnswer::ServiceUnavailable(5), Some(Duration::from_secs(5))),
    ];
    for (i, (answer, after)) in retries.into_iter().enumerate() {
        let token = apns_token(200 + i);
        server.answer(&token, answer.clone());
        let outcome = client.send(&notification(&token, false)).await;
        assert_eq!(retry_after(&outcome), after, "{answer:?}: {outcome:?}");
    }
    // No error is retried inside the client (the engine backs off), and nothing was accepted.
    assert_eq!(server.requests().len(), 8);
    assert!(server.received().is_empty());
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn apns_provider_token_is_reused_and_renewed_after_expired_provider_token() {
    let server = ApnsServer::start().await;
    let clock = Clock::system();
    let client = apns_client_on(&server, &clock);
    for i in 0..5 {
        assert_eq!(client.send(&notification(&apns_token(i), false)).await, PushOutcome::Delivered);
    }
    assert_eq!(server.provider_tokens().len(), 1, "one JWT for all sends");
    assert_eq!(client.provider_tokens_signed(), 1);

    // Apple calls the token expired: the client signs a new one and retries once. (`iat` has
    // a resolution of one second: a second later the new JWT differs.)
    server.expire_provider_tokens();
    clock.advance(Duration::from_secs(1));
    let token = apns_token(10);
    assert_eq!(client.send(&notification(&token, false)).await, PushOutcome::Delivered);
    let answers: Vec<u16> = server.requests().into_iter().filter(|(t, _)| *t == token).map(|(_, s)| s).collect();
    assert_eq!(answers, [403, 200]);
    assert_eq!(server.provider_tokens().len(), 2);

    // Many requests rejected together renew the token once, not once each.
    server.expire_provider_tokens();
    clock.advance(Duration::from_secs(1));
    let client = Arc::new(client);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = client.clone();
        tasks.spawn(async move { client.send(&notification(&apns_token(1000 + i), false)).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), PushOutcome::Delivered);
    }
    assert_eq!(client.provider_tokens_signed(), 3);
    assert_eq!(server.provider_tokens().len(), 3);

    // A per-device 403 ExpiredProviderToken: renewed and retried once.
    let token = apns_token(20);
    server.answer(&token, ApnsAnswer::ExpiredProviderTokenOnce);
    assert_eq!(client.send(&notification(&token, false)).await, PushOutcome::Delivered);
    let answers: Vec<u16> = server.requests().into_iter().filter(|(t, _)| *t == token).map(|(_, s)| s).collect();
    assert_eq!(answers, [403, 200]);
    assert_eq!(client.provider_tokens_signed(), 4);
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn apns_provider_token_is_renewed_by_age() {
    let server = ApnsServer::start().await;
    let clock = Clock::system();
    let client = apns_client_on(&server, &clock).with_token_refresh(Duration::from_secs(2));
    assert_eq!(client.send(&notification(&apns_token(1), false)).await, PushOutcome::Delivered);
    clock.advance(Duration::from_millis(1900));
    assert_eq!(client.send(&notification(&apns_token(2), false)).await, PushOutcome::Delivered);
    assert_eq!(server.provider_tokens().len(), 1, "not renewed before its age");
    clock.advance(Duration::from_millis(200));
    assert_eq!(client.send(&notification(&apns_token(3), false)).await, PushOutcome::Delivered);
    assert_eq!(server.provider_tokens().len(), 2);
    // Renewed ahead of time, never refused.
    assert!(server.requests().iter().all(|(_, status)| *status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_many_concurrent_sends_share_few_connections() {
    let server = ApnsServer::start().await;
    let client = Arc::new(apns_client(&server));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let client = client.clone();
        tasks.spawn(async move { client.send(&notification(&apns_token(i), i % 2 == 0)).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), PushOutcome::Delivered);
    }
    let received = server.received();
    assert_eq!(received.iter().map(|r| r.token.clone()).collect::<HashSet<_>>().len(), 500);
    // All streams went over the client's connections. (On a multi-threaded runtime hyper's pool
    // may, rarely, open one more connection in a race at start-up and close it at once unused,
    // so the accepted count is not asserted.)
    let used = server.request_connections();
    assert!(used <= DEFAULT_CONNECTIONS, "{used} connections carried notifications");
    assert_eq!(server.provider_tokens().len(), 1);
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn apns_over_tls_with_alpn_h2() {
    let server = ApnsServer::start_tls().await;
    assert_eq!(server.url.scheme(), "https");
    let options = ClientOptions::default().with_root_certificate(test_ca().ca_pem.clone());
    let client = ApnsClient::with_options(&server.config(), &server.url, &options).unwrap();
    assert_eq!(client.send(&notification(&apns_token(1), true)).await, PushOutcome::Delivered);
    assert_eq!(client.send(&notification(&apns_token(2), false)).await, PushOutcome::Delivered);
    assert_eq!(server.received().len(), 2);
    assert_eq!(server.connections(), DEFAULT_CONNECTIONS.min(2));
    assert_eq!(server.problems(), Vec::<String>::new());

    // Without the test CA the certificate is not trusted: try again later, nothing sent.
    let untrusting = apns_client(&server);
    let outcome = untrusting.send(&notification(&apns_token(3), false)).await;
    assert!(matches!(&outcome, PushOutcome::Retry { reason, .. } if reason.contains("certificate")), "{outcome:?}");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn apns_unreachable_server_means_retry() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = ApnsServer::start().await;
    let client = ApnsClient::new(&server.config(), &format!("http://127.0.0.1:{port}").parse().unwrap()).unwrap();
    let outcome = client.send(&notification(&apns_token(1), false)).await;
    let PushOutcome::Retry { reason, after: None } = outcome else { panic!("{outcome:?}") };
    assert!(reason.starts_with("APNs connection failed"), "{reason}");
    assert!(!reason.contains(&apns_token(1)), "the device token leaked into the reason: {reason}");
}

#[tokio::test]
async fn apns_refusing_our_provider_key_means_retry_not_failure() {
    let server = ApnsServer::start().await;
    let mut config = server.config();
    config.key_id = "WRONGKEY01".into();
    let client = ApnsClient::new(&config, &server.url).expect("APNs client");

    let outcome = client.send(&notification(&apns_token(1), false)).await;

    let PushOutcome::Retry { reason, .. } = outcome else { panic!("expected Retry, got {outcome:?}") };
    assert!(reason.starts_with("403 InvalidProviderToken"), "{reason}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn apns_client_refuses_a_bad_key_or_url() {
    let server = ApnsServer::start().await;
    let mut config = server.config();
    config.key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    assert!(ApnsClient::new(&config, &server.url).is_err());
    assert!(ApnsClient::new(&server.config(), &"ftp://127.0.0.1/".parse().unwrap()).is_err());
}

// --- FCM -----------------------------------------------------------------------------------

fn fcm_token(n: usize) -> String {
    format!("fcm-{n}:APA91b{}", "Xy_z-0".repeat(24))
}

#[tokio::test]
async fn fcm_message_arrives_with_notification_data_and_priority() {
    let server = FcmServer::start().await;
    let (client, _dir) = fcm_client(&server);
    let normal = notification(&fcm_token(1), false);
    let emergency = notification(&fcm_token(2), true);
    assert_eq!(client.send(&normal).await, PushOutcome::Delivered);
    assert_eq!(client.send(&emergency).await, PushOutcome::Delivered);
    assert_eq!(server.problems(), Vec::<String>::new());

    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].message,
        json!({"token": normal.token, "notification": {"title": TITLE, "body": BODY},
            "data": {"message_id": normal.message_id},
            "android": {"priority": "normal", "collapse_key": normal.collapse_id}})
    );
    assert_eq!(received[1].message["android"]["priority"], "high");
    assert!(received.iter().all(|r| r.version == hyper::Version::HTTP_2));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(received[0].access_token, received[1].access_token);
}

#[tokio::test]
async fn fcm_long_body_is_cut_to_fit() {
    let server = FcmServer::start().await;
    let (client, _dir) = fcm_client(&server);
    let mut n = notification(&fcm_token(1), false);
    n.body = "避難所は体育館です🏫。".repeat(500);
    assert_eq!(client.send(&n).await, PushOutcome::Delivered);
    assert_eq!(server.problems(), Vec::<String>::new());
    let body = server.received()[0].message["notification"]["body"].as_str().unwrap().to_owned();
    assert!(body.ends_with('…'));
    assert!(n.body.starts_with(body.strip_suffix('…').unwrap()));
}

#[tokio::test]
async fn fcm_error_answers_map_to_outcomes() {
    let server = FcmServer::start().await;
    let (client, _dir) = fcm_client(&server);
    type Check = fn(&PushOutcome) -> bool;
    let cases: [(FcmAnswer, Check); 4] = [
        (FcmAnswer::Unregistered, |o| matches!(o, PushOutcome::InvalidToken(r) if r.contains("UNREGISTERED"))),
        (FcmAnswer::InvalidToken, |o| matches!(o, PushOutcome::InvalidToken(r) if r.contains("registration token"))),
        (FcmAnswer::InvalidPayload, |o| matches!(o, PushOutcome::Failed(r) if r.contains("INVALID_ARGUMENT"))),
        (FcmAnswer::SenderIdMismatch, |o| matches!(o, PushOutcome::Failed(r) if r.contains("SENDER_ID_MISMATCH"))),
    ];
    for (i, (answer, expected)) in cases.into_iter().enumerate() {
        let token = fcm_token(100 + i);
        server.answer(&token, answer.clone());
        let outcome = client.send(&notification(&token, false)).await;
        assert!(expected(&outcome), "{answer:?}: {outcome:?}");
    }
    let retries = [
        (FcmAnswer::QuotaExceeded(30), Some(Duration::from_secs(30))),
        (FcmAnswer::Unavailable(Some(2)), Some(Duration::from_secs(2))),
        (FcmAnswer::Unavailable(None), None),
        (FcmAnswer::Internal, None),
    ];
    for (i, (answer, after)) in retries.into_iter().enumerate() {
        let token = fcm_token(200 + i);
        server.answer(&token, answer.clone());
        let outcome = client.send(&notification(&token, false)).await;
        assert_eq!(retry_after(&outcome), after, "{answer:?}: {outcome:?}");
    }
    assert_eq!(server.requests().len(), 8);
    assert!(server.received().is_empty());
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_access_token_is_fetched_once_and_renewed_after_401() {
    let server = FcmServer::start().await;
    let (client, _dir) = fcm_client(&server);
    let client = Arc::new(client);
    let send_many = |from: usize| {
        let client = client.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in from..from + 50 {
                let client = client.clone();
                tasks.spawn(async move { client.send(&notification(&fcm_token(i), false)).await });
            }
            while let Some(outcome) = tasks.join_next().await {
                assert_eq!(outcome.unwrap(), PushOutcome::Delivered);
            }
        }
    };
    // 50 concurrent first sends: one grant.
    send_many(0).await;
    assert_eq!(server.token_requests(), 1);
    assert_eq!(client.access_tokens_fetched(), 1);

    // The token stops working: one 401, one new grant, the send retried once.
    server.revoke_access_tokens();
    let token = fcm_token(500);
    assert_eq!(client.send(&notification(&token, false)).await, PushOutcome::Delivered);
    let answers: Vec<u16> =
        server.requests().into_iter().filter(|(t, _)| t.is_empty() || *t == token).map(|(_, s)| s).collect();
    assert_eq!(answers, [401, 200]);
    assert_eq!(server.token_requests(), 2);

    // Revoked while 50 are under way: still one new grant.
    server.revoke_access_tokens();
    send_many(1000).await;
    assert_eq!(server.token_requests(), 3);

    // A single 401: renewed, retried, delivered.
    server.unauthorized_once();
    assert_eq!(client.send(&notification(&fcm_token(600), false)).await, PushOutcome::Delivered);
    assert_eq!(server.token_requests(), 4);
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn fcm_access_token_is_renewed_before_it_expires() {
    let server = FcmServer::start().await;
    server.set_expires_in(4);
    let clock = Clock::system();
    let (client, _dir) = fcm_client_on(&server, &clock);
    assert_eq!(client.send(&notification(&fcm_token(1), false)).await, PushOutcome::Delivered);
    clock.advance(Duration::from_millis(1500));
    assert_eq!(client.send(&notification(&fcm_token(2), false)).await, PushOutcome::Delivered);
    assert_eq!(server.token_requests(), 1, "not renewed before half its lifetime");
    // Renewed halfway through its four seconds (the margin is at most half), without a 401.
    clock.advance(Duration::from_millis(600));
    assert_eq!(client.send(&notification(&fcm_token(3), false)).await, PushOutcome::Delivered);
    assert_eq!(server.token_requests(), 2);
    assert!(server.requests().iter().all(|(_, status)| *status == 200), "{:?}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_many_concurrent_sends_share_few_connections() {
    let server = FcmServer::start().await;
    let (client, _dir) = fcm_client(&server);
    let client = Arc::new(client);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let client = client.clone();
        tasks.spawn(async move { client.send(&notification(&fcm_token(i), i % 3 == 0)).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), PushOutcome::Delivered);
    }
    let received = server.received();
    assert_eq!(received.iter().map(|r| r.token.clone()).collect::<HashSet<_>>().len(), 500);
    // All messages went over the client's connections (see the APNs test above for why the
    // accepted count, token endpoint included, is not asserted).
    let used = server.send_connections();
    assert!(used <= DEFAULT_CONNECTIONS, "{used} connections carried messages");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_token_endpoint_down_or_refusing_means_retry() {
    let server = FcmServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = server.write_credentials(dir.path());
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut json = original.clone();
    json["token_uri"] = format!("http://127.0.0.1:{port}/token").into();
    std::fs::write(&credentials, json.to_string()).unwrap();
    let client = Arc::new(FcmClient::new(&credentials, &server.url).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let client = client.clone();
        tasks.spawn(async move { client.send(&notification(&fcm_token(i), false)).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        let outcome = outcome.unwrap();
        assert!(
            matches!(&outcome, PushOutcome::Retry { reason, .. } if reason.starts_with("FCM access token")),
            "{outcome:?}"
        );
    }
    assert!(server.requests().is_empty());

    // The token endpoint refuses the grant (a key id it does not know): retry, with its words.
    let mut json = original;
    json["private_key_id"] = "unknown-key".into();
    std::fs::write(&credentials, json.to_string()).unwrap();
    let client = FcmClient::new(&credentials, &server.url).unwrap();
    let outcome = client.send(&notification(&fcm_token(1), false)).await;
    assert!(matches!(&outcome, PushOutcome::Retry { reason, .. } if reason.contains("invalid_grant")), "{outcome:?}");
    assert!(server.requests().is_empty());
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn fcm_client_refuses_bad_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.json");
    let url: url::Url = "http://127.0.0.1:1".parse().unwrap();
    assert!(FcmClient::new(&path, &url).is_err(), "missing file");
    std::fs::write(&path, "{}").unwrap();
    assert!(FcmClient::new(&path, &url).is_err(), "no fields");
    let json = json!({"project_id": "p", "client_email": "e", "token_uri": "http://127.0.0.1:1/token",
        "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"});
    std::fs::write(&path, json.to_string()).unwrap();
    assert!(FcmClient::new(&path, &url).is_err(), "bad key");
}

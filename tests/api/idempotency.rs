//! `Idempotency-Key` on POST: a retried request gets the first answer, once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    a_retried_post_gets_the_first_answer_and_does_it_once,
    a_retried_send_answers_its_first_202_not_a_conflict,
    a_key_is_checked_and_belongs_to_its_credential,
    no_spelling_of_a_secret_returning_path_keeps_its_secret,
    a_request_without_a_genuine_credential_keeps_nothing,
);

/// Every stored answer body, as text.
async fn stored_bodies(app: &TestApp) -> Vec<String> {
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    let rows: Vec<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT body FROM idempotency_keys").fetch_all(&mut *conn).await.unwrap();
    rows.into_iter().map(|(body,)| String::from_utf8_lossy(&body.unwrap_or_default()).into_owned()).collect()
}

async fn stored_count(app: &TestApp) -> i64 {
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(&mut *conn).await.unwrap()
}

async fn post_with_key(app: &TestApp, path: &str, auth: Auth<'_>, key: &str, body: Value) -> Reply {
    let request = app.client.request(Method::POST, app.url(path)).header("Idempotency-Key", key).json(&body);
    let request = match auth {
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::ApiKey(secret) => request.header("X-API-Key", secret),
        Auth::None => request,
    };
    Reply::from(request.send().await.unwrap()).await
}

fn replayed(answer: &Reply) -> bool {
    answer.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

async fn message_count(app: &TestApp, token: &str) -> usize {
    app.get("/api/v1/messages", token).await.ok(200)["items"].as_array().unwrap().len()
}

async fn a_retried_post_gets_the_first_answer_and_does_it_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Retry School").await;
    let token = &admin.access_token;
    let draft = json!({"subject": "遠足の持ち物", "body": "弁当と水筒"});
    let key = "0b6a3c1e-5f0d-4f7e-9a51-2f1d3c4b5a69";

    let first = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), key, draft.clone()).await;
    let id = first.ok(201)["id"].clone();
    assert!(!replayed(&first));
    let again = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), key, draft.clone()).await;
    assert_eq!(again.ok(201)["id"], id, "the first answer, not a second draft");
    assert!(replayed(&again));
    assert_eq!(again.headers.get("content-type").unwrap(), first.headers.get("content-type").unwrap());
    assert_eq!(message_count(&app, token).await, 1);

    // The same key for another request is a mistake the client must hear about.
    let other =
        post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), key, json!({"subject": "別件", "body": "b"}))
            .await;
    assert_eq!(other.problem(422), ["Idempotency-Key"]);
    // A refusal is an answer too: kept and replayed, not run again.
    let bad = json!({"subject": "", "body": "b"});
    let refused = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), "bad-draft", bad.clone()).await;
    assert_eq!(refused.problem(422), ["subject"]);
    let refused_again = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), "bad-draft", bad.clone()).await;
    assert_eq!(refused_again.problem(422), ["subject"]);
    assert!(replayed(&refused_again));
    // While the first request is still being handled (its key claimed, no answer kept yet),
    // a retry is told to wait, and nothing runs twice.
    let claim_unanswered = |created_at: i64| {
        sqlx::query("UPDATE idempotency_keys SET status = NULL, body = NULL, created_at = $1 WHERE key = 'bad-draft'")
            .bind(created_at)
            .execute(&app.state.db.pool)
    };
    claim_unanswered(renrakumo::db::now_ms()).await.unwrap();
    let in_flight = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), "bad-draft", bad.clone()).await;
    assert_eq!(in_flight.problem(409), ["Idempotency-Key"]);
    assert!(!replayed(&in_flight));
    // A claim left unanswered (its instance stopped mid-request) is taken over after a while.
    let stale = renrakumo::db::now_ms() - renrakumo::db::repositories::idempotency::ABANDONED_MS - 1;
    claim_unanswered(stale).await.unwrap();
    let taken_over =
        post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), "bad-draft", json!({"subject": "", "body": "b"}))
            .await;
    assert_eq!(taken_over.problem(422), ["subject"]);
    assert!(!replayed(&taken_over), "run again, not replayed");
    // Without a key, every POST is its own request.
    app.post("/api/v1/messages", token, draft.clone()).await.ok(201);
    assert_eq!(message_count(&app, token).await, 2);
}

async fn a_retried_send_answers_its_first_202_not_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Retry Send School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年1組").await;
    create_member(&app, token, json!({"name": "保護者 一", "emails": ["one@example.jp"], "list_ids": [list]})).await;
    let id = app
        .post("/api/v1/messages", token, json!({"subject": "s", "body": "b", "targets": {"list_ids": [list]}}))
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/messages/{id}/send");
    let first = post_with_key(&app, &path, Auth::Bearer(token), "send-1", json!({})).await;
    assert_eq!(first.ok(202)["recipient_count"], 1);
    let retry = post_with_key(&app, &path, Auth::Bearer(token), "send-1", json!({})).await;
    assert_eq!(retry.ok(202)["recipient_count"], 1);
    assert!(replayed(&retry));
    // A new request (no key, or another key) is told the message went already.
    app.post(&path, token, json!({})).await.problem(409);
    assert_eq!(app.deliver_all().await, 1, "one job: the retry queued nothing");
    app.assert_queue_empty().await;
}

async fn a_key_is_checked_and_belongs_to_its_credential(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Key School").await;
    let token = &admin.access_token;
    let draft = json!({"subject": "s", "body": "b"});
    for bad in ["", "has space", &"k".repeat(256), "日本語"] {
        let request = app
            .client
            .post(app.url("/api/v1/messages"))
            .bearer_auth(token)
            .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap())
            .json(&draft);
        let answer = Reply::from(request.send().await.unwrap()).await;
        assert_eq!(answer.problem(400), ["Idempotency-Key"], "{bad:?}");
    }
    assert_eq!(message_count(&app, token).await, 0, "nothing was created");

    // An integration's API key and a staff session may use the same key independently.
    let (_, secret) = app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["messages:send"]})).await;
    let by_staff = post_with_key(&app, "/api/v1/messages", Auth::Bearer(token), "k1", draft.clone()).await;
    let by_key = post_with_key(&app, "/api/v1/messages", Auth::ApiKey(&secret), "k1", draft.clone()).await;
    assert_ne!(by_staff.ok(201)["id"], by_key.ok(201)["id"]);
    assert!(!replayed(&by_key));
    let by_key_again = post_with_key(&app, "/api/v1/messages", Auth::ApiKey(&secret), "k1", draft).await;
    assert_eq!(by_key_again.ok(201)["id"], by_key.ok(201)["id"]);
    assert_eq!(message_count(&app, token).await, 2);
    // Requests whose answers hold secrets take no key: nothing of them is kept.
    let mut secrets = Vec::new();
    for _ in 0..2 {
        let created = post_with_key(
            &app,
            "/api/v1/api-keys",
            Auth::Bearer(token),
            "key-1",
            json!({"name": "n", "scopes": ["lists:read"]}),
        )
        .await;
        assert!(!replayed(&created));
        secrets.push(created.ok(201)["key"].clone());
    }
    assert_ne!(secrets[0], secrets[1], "two keys, each shown once");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'key-1'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0);
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("Idempotency-Key", "login-1")
        .json(&json!({"email": admin.email, "password": admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
}

async fn no_spelling_of_a_secret_returning_path_keeps_its_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Secret School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "山田 花子"})).await;
    let spellings = [
        "/api/v1/api-keys".to_string(),
        "/api/v1/%61pi-keys".to_string(),
        "/api/v1/api-key%73".to_string(),
        "/api/v1//api-keys".to_string(),
        "/api/v1/api-keys/".to_string(),
        format!("/api/v1/members/{member}/invitation%73"),
        format!("/api/v1/members/{member}/invitations"),
    ];
    let body = json!({"name": "SIS", "scopes": ["lists:read"]});
    let mut secrets_answered = 0;
    for (n, path) in spellings.iter().enumerate() {
        let key = format!("secret-spelling-{n}");
        let first = post_with_key(&app, path, Auth::Bearer(token), &key, body.clone()).await;
        let secret = first.body["key"].as_str().or(first.body["code"].as_str()).map(str::to_string);
        let Some(secret) = secret else { continue };
        secrets_answered += 1;
        for stored in stored_bodies(&app).await {
            assert!(!stored.contains(&secret), "{path}: the secret was kept: {stored}");
        }
        // A retry is not served from a store: it is a new request (a second key or code).
        let again = post_with_key(&app, path, Auth::Bearer(token), &key, body.clone()).await;
        assert!(!replayed(&again), "{path} was replayed");
    }
    assert!(secrets_answered >= 4, "only {secrets_answered} spellings reached a handler");
    // Signing in (whatever the credential header says) keeps nothing either.
    let login = json!({"email": admin.email, "password": PASSWORD});
    post_with_key(&app, "/api/v1/auth/login", Auth::Bearer(token), "sign-in", login).await.ok(200);
    for stored in stored_bodies(&app).await {
        assert!(!stored.contains("access_token") && !stored.contains("rk_"), "a secret was kept: {stored}");
    }
}

async fn a_request_without_a_genuine_credential_keeps_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Stranger School").await;
    let draft = json!({"subject": "件名", "body": "本文"});
    for n in 0..5 {
        let key = format!("stranger-{n}");
        post_with_key(&app, "/api/v1/messages", Auth::Bearer("forged.token.here"), &key, draft.clone())
            .await
            .problem(401);
        post_with_key(&app, "/api/v1/messages", Auth::ApiKey("rk_live_made_up"), &key, draft.clone())
            .await
            .problem(401);
        let code = json!({"code": "AAAA-BBBB-CCCC"});
        post_with_key(&app, "/api/v1/app/session", Auth::Bearer("forged"), &key, code).await.problem(401);
    }
    assert_eq!(stored_count(&app).await, 0);
    // A genuine credential's request is kept as before.
    post_with_key(&app, "/api/v1/messages", Auth::Bearer(&admin.access_token), "kept", draft).await.ok(201);
    assert_eq!(stored_count(&app).await, 1);
}

//! Throttles on the guardians' endpoints (see `src/throttle.rs`): codes typed into the app
//! and confirmation mails. Sign-in and the current password: `auth.rs`, `users.rs`.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::lists::create_member;
use crate::on_both_backends;

on_both_backends!(
    guessing_app_codes_is_throttled_per_client_but_codes_that_work_do_not_count,
    confirmation_mails_are_limited_per_app_session,
);

async fn invitation(app: &TestApp, admin: &Admin) -> String {
    let member = create_member(app, &admin.access_token, json!({"name": "山田 花子"})).await;
    let invited = app.post(&format!("/api/v1/members/{member}/invitations"), &admin.access_token, json!({})).await;
    invited.ok(201)["code"].as_str().unwrap().to_string()
}

async fn open(app: &TestApp, code: &str) -> Reply {
    app.call(Method::POST, "/api/v1/app/session", Auth::None, Some(json!({"code": code}))).await
}

async fn guessing_app_codes_is_throttled_per_client_but_codes_that_work_do_not_count(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Code School").await;
    // A whole class opening the app from one school network is not held up.
    for _ in 0..12 {
        let code = invitation(&app, &admin).await;
        open(&app, &code).await.ok(201);
    }
    for n in 0..10 {
        open(&app, &format!("GUES-SING-{n:04}")).await.problem(401);
    }
    // Not even checked now, a genuine code included; join codes share the allowance.
    let code = invitation(&app, &admin).await;
    let waiting = open(&app, &code).await;
    waiting.problem(429);
    assert_eq!(waiting.headers["retry-after"], "60");
    let join = json!({"join_code": "GUESSING", "name": "山田 花子"});
    app.call(Method::POST, "/api/v1/app/register", Auth::None, Some(join)).await.problem(429);
    app.advance_clock(std::time::Duration::from_secs(60));
    open(&app, &code).await.ok(201);
}

async fn confirmation_mails_are_limited_per_app_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Mail School").await;
    let code = invitation(&app, &admin).await;
    let session = open(&app, &code).await;
    let token = session.ok(201)["access_token"].as_str().unwrap().to_string();
    app.post("/api/v1/app/me/emails", &token, json!({"address": "someone@example.jp"})).await.ok(201);
    for _ in 0..4 {
        let path = "/api/v1/app/me/emails/someone@example.jp/confirmation";
        assert_eq!(app.post(path, &token, json!({})).await.status, 202);
    }
    let sent = app.outbox_messages().len();
    let refused = app.post("/api/v1/app/me/emails", &token, json!({"address": "victim@example.jp"})).await;
    refused.problem(429);
    let wait: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 23 * 3600 && wait <= 24 * 3600, "Retry-After {wait}");
    assert_eq!(app.outbox_messages().len(), sent, "no mail went to the victim");
}

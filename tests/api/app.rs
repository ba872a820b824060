use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    an_invitation_code_opens_the_app_once,
    app_and_staff_tokens_do_not_open_each_others_doors,
    a_guardian_edits_only_their_own_profile,
    an_added_address_receives_nothing_until_confirmed,
    a_guardian_manages_up_to_four_devices,
    self_registration_waits_for_approval,
    logout_or_removal_ends_the_app_session,
);

async fn invite(app: &TestApp, token: &str, member: &str) -> String {
    app.post(&format!("/api/v1/members/{member}/invitations"), token, json!({})).await.ok(201)["code"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn open(app: &TestApp, code: &str) -> Reply {
    app.call(Method::POST, "/api/v1/app/session", Auth::None, Some(json!({"code": code}))).await
}

/// A member of a fresh organisation, signed in to the app; (admin, member id, app token).
async fn guardian(app: &TestApp, body: Value) -> (Admin, String, String) {
    let admin = app.create_admin("App School").await;
    let member = create_member(app, &admin.access_token, body).await;
    let code = invite(app, &admin.access_token, &member).await;
    let session = open(app, &code).await;
    let token = session.ok(201)["access_token"].as_str().unwrap().to_string();
    (admin, member, token)
}

fn mail_text(raw: &str) -> String {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    message.body_text(0).unwrap().to_string()
}

async fn an_invitation_code_opens_the_app_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Invite School").await;
    let member =
        create_member(&app, &admin.access_token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"]})).await;
    let created = app.post(&format!("/api/v1/members/{member}/invitations"), &admin.access_token, json!({})).await;
    let created = created.ok(201).clone();
    let code = created["code"].as_str().unwrap();
    assert!(created["url"].as_str().unwrap().ends_with(code));
    // Typed by a person: lower case, without dashes.
    let session = open(&app, &code.replace('-', "").to_lowercase()).await;
    let session = session.ok(201);
    assert_eq!(session["profile"]["name"], "山田 花子");
    assert_eq!(session["profile"]["org_name"], "Invite School");
    assert_eq!(session["profile"]["emails"][0]["address"], "hanako@example.jp", "a guardian sees their own address");
    open(&app, code).await.problem(401);
    open(&app, "ZZZZ-ZZZZ-ZZZZ").await.problem(401);
    let expired = invite(&app, &admin.access_token, &member).await;
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE invitations SET expires_at = 1 WHERE used_at IS NULL").execute(&mut *conn).await.unwrap();
    open(&app, &expired).await.problem(401);
    let school_b = app.create_admin("School B").await;
    app.post(&format!("/api/v1/members/{member}/invitations"), &school_b.access_token, json!({})).await.problem(404);
}

async fn app_and_staff_tokens_do_not_open_each_others_doors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, member, token) = guardian(&app, json!({"name": "髙橋 一郎"})).await;
    app.get("/api/v1/me", &token).await.problem(401);
    app.get(&format!("/api/v1/members/{member}"), &token).await.problem(401);
    app.get("/api/v1/members", &token).await.problem(401);
    app.get("/api/v1/app/me", &admin.access_token).await.problem(401);
    app.call(Method::GET, "/api/v1/app/me", Auth::None, None).await.problem(401);
}

async fn a_guardian_edits_only_their_own_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, member, token) = guardian(
        &app,
        json!({"name": "山﨑 由美", "relation": "母", "attributes": {"grade": "2"}, "external_id": "S0003"}),
    )
    .await;
    let other = create_member(&app, &admin.access_token, json!({"name": "他の保護者"})).await;
    let patched = app.patch("/api/v1/app/me", &token, json!({"name_kana": "ヤマザキ ユミ", "relation": ""})).await;
    let patched = patched.ok(200);
    assert_eq!(patched["name_kana"], "ヤマザキ ユミ");
    assert!(patched["relation"].is_null());
    // The school's data stays the school's.
    assert_eq!(
        app.patch("/api/v1/app/me", &token, json!({"attributes": {"grade": "6"}})).await.problem(422),
        ["attributes"]
    );
    assert_eq!(app.patch("/api/v1/app/me", &token, json!({"name": ""})).await.problem(422), ["name"]);
    let staff_view = app.get(&format!("/api/v1/members/{member}"), &admin.access_token).await;
    let staff_view = staff_view.ok(200);
    assert_eq!(staff_view["attributes"], json!({"grade": "2"}));
    assert_eq!(staff_view["external_id"], "S0003");
    assert_eq!(staff_view["name_kana"], "ヤマザキ ユミ");
    // Another member's device cannot be removed through this session.
    let device = app
        .post(
            &format!("/api/v1/members/{other}/devices"),
            &admin.access_token,
            json!({"platform": "fcm", "token": "other"}),
        )
        .await;
    let device_id = device.ok(201)["id"].as_str().unwrap().to_string();
    app.delete(&format!("/api/v1/app/me/devices/{device_id}"), &token).await.problem(404);
}

async fn an_added_address_receives_nothing_until_confirmed(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, member, token) = guardian(&app, json!({"name": "鈴木 さくら", "emails": ["sakura@example.jp"]})).await;
    let added = app.post("/api/v1/app/me/emails", &token, json!({"address": "taro..papa@docomo.ne.jp"})).await;
    let added = added.ok(201);
    assert_eq!(added["emails"][1], json!({"address": "taro..papa@docomo.ne.jp", "status": "unconfirmed"}));
    let mails = app.outbox_messages();
    let confirmation = mails.last().unwrap();
    assert!(confirmation.contains("taro..papa"), "sent to the new address");
    let text = mail_text(confirmation);
    let link = text.lines().find(|l| l.contains("/confirm-email/")).expect("a confirmation link").trim().to_string();
    let path = &link[link.find("/confirm-email/").unwrap()..];
    let staff_view = app.get(&format!("/api/v1/members/{member}"), &admin.access_token).await;
    assert_eq!(staff_view.ok(200)["emails"][1]["status"], "unconfirmed", "staff see it is not confirmed");
    // Opening the link (as a mail scanner does) shows a button and confirms nothing.
    for _ in 0..2 {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers().clone();
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\">") && html.contains("このアドレスで受け取る"), "{html}");
        assert!(html.contains("width=device-width"), "made for a phone");
        let token = path.trim_start_matches("/confirm-email/");
        assert!(!html.contains(token), "the page does not repeat the token");
    }
    let profile = app.get("/api/v1/app/me", &token).await;
    assert_eq!(profile.ok(200)["emails"][1]["status"], "unconfirmed", "opening the link confirmed nothing");
    // The button posts the confirmation, once.
    let confirmed = app.client.post(app.url(path)).form(&[("", "")]).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("確認しました"));
    let profile = app.get("/api/v1/app/me", &token).await;
    assert_eq!(profile.ok(200)["emails"][1]["status"], "active");
    let again = app.client.post(app.url(path)).send().await.unwrap();
    assert_eq!(again.status(), 404, "a link works once");
    assert!(again.text().await.unwrap().contains("使えません"));
    let used = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(used.status(), 404);
    assert!(!used.text().await.unwrap().contains("<form"), "no button for a used link");
    for method in [Method::GET, Method::POST] {
        let forged = app.client.request(method, app.url("/confirm-email/forged")).send().await.unwrap();
        assert_eq!(forged.status(), 404);
        assert!(forged.text().await.unwrap().contains("使えません"));
    }
    // Limits and duplicates.
    assert_eq!(
        app.post("/api/v1/app/me/emails", &token, json!({"address": "SAKURA@example.jp"})).await.problem(409),
        ["address"]
    );
    assert_eq!(
        app.post("/api/v1/app/me/emails", &token, json!({"address": "not an address"})).await.problem(422),
        ["address"]
    );
    app.post("/api/v1/app/me/emails", &token, json!({"address": "c@example.jp"})).await.ok(201);
    app.post("/api/v1/app/me/emails", &token, json!({"address": "d@example.jp"})).await.ok(201);
    assert_eq!(
        app.post("/api/v1/app/me/emails", &token, json!({"address": "e@example.jp"})).await.problem(422),
        ["address"]
    );
    // Ask for the link again, then remove the address.
    let resend =
        app.call(Method::POST, "/api/v1/app/me/emails/d@example.jp/confirmation", Auth::Bearer(&token), None).await;
    assert_eq!(resend.status, 202);
    // The sign-in notice, then four confirmation links.
    assert_eq!(app.outbox_messages().len(), 5);
    app.call(Method::POST, "/api/v1/app/me/emails/sakura@example.jp/confirmation", Auth::Bearer(&token), None)
        .await
        .problem(404);
    assert_eq!(app.delete("/api/v1/app/me/emails/d@example.jp", &token).await.status, 204);
    assert_eq!(app.get("/api/v1/app/me", &token).await.ok(200)["emails"].as_array().unwrap().len(), 3);
    app.delete("/api/v1/app/me/emails/d@example.jp", &token).await.problem(404);
}

async fn a_guardian_manages_up_to_four_devices(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, token) = guardian(&app, json!({"name": "渡邊 剛"})).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let device = app
            .post("/api/v1/app/me/devices", &token, json!({"platform": "apns", "token": format!("token-{i}")}))
            .await;
        let device = device.ok(201);
        assert_eq!(device["token"], format!("token-{i}"), "own tokens unmasked");
        ids.push(device["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        app.post("/api/v1/app/me/devices", &token, json!({"platform": "fcm", "token": "fifth"})).await.problem(409),
        ["devices"]
    );
    assert_eq!(app.delete(&format!("/api/v1/app/me/devices/{}", ids[0]), &token).await.status, 204);
    app.post("/api/v1/app/me/devices", &token, json!({"platform": "fcm", "token": "fifth"})).await.ok(201);
    let devices = app.get("/api/v1/app/me", &token).await.ok(200)["devices"].clone();
    let mut tokens: Vec<&str> = devices.as_array().unwrap().iter().map(|d| d["token"].as_str().unwrap()).collect();
    tokens.sort();
    assert_eq!(tokens, ["…en-1", "…en-2", "…en-3", "…ifth"], "the profile shows no device's whole token");
}

async fn self_registration_waits_for_approval(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Join School").await;
    let list = create_list(&app, &admin.access_token, "サッカー部").await;
    let code = app
        .call(Method::PUT, &format!("/api/v1/lists/{list}/join-code"), Auth::Bearer(&admin.access_token), None)
        .await;
    let code = code.ok(200)["join_code"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&format!("/api/v1/lists/{list}"), &admin.access_token).await.ok(200)["join_code"],
        code.as_str()
    );
    let register = |body: Value| app.call(Method::POST, "/api/v1/app/register", Auth::None, Some(body));
    let registered =
        register(json!({"join_code": code.to_lowercase(), "name": "小林 悠真の母", "email": "kobayashi@example.jp"}))
            .await;
    let registered = registered.ok(201).clone();
    assert_eq!(registered["profile"]["status"], "pending");
    assert_eq!(registered["profile"]["emails"][0]["status"], "unconfirmed");
    assert_eq!(app.outbox_messages().len(), 1, "the confirmation link was sent");
    let token = registered["access_token"].as_str().unwrap();
    app.post("/api/v1/app/me/devices", token, json!({"platform": "fcm", "token": "pending-phone"})).await.ok(201);
    let pending = app.get("/api/v1/members?status=pending", &admin.access_token).await;
    let pending = pending.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["list_ids"], json!([list]));
    let id = pending[0]["id"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/api/v1/members/{id}/approve"), &admin.access_token, json!({})).await.ok(200)["status"],
        "active"
    );
    assert_eq!(app.get("/api/v1/app/me", token).await.ok(200)["status"], "active");
    assert_eq!(register(json!({"join_code": code, "name": ""})).await.problem(422), ["name"]);
    assert_eq!(app.delete(&format!("/api/v1/lists/{list}/join-code"), &admin.access_token).await.status, 204);
    register(json!({"join_code": code, "name": "遅れた保護者"})).await.problem(401);
}

async fn logout_or_removal_ends_the_app_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, member, token) = guardian(&app, json!({"name": "伊藤 結衣の母"})).await;
    assert_eq!(app.call(Method::POST, "/api/v1/app/logout", Auth::Bearer(&token), None).await.status, 204);
    app.get("/api/v1/app/me", &token).await.problem(401);
    let second = open(&app, &invite(&app, &admin.access_token, &member).await).await;
    let second = second.ok(201)["access_token"].as_str().unwrap().to_string();
    app.get("/api/v1/app/me", &second).await.ok(200);
    let unused = invite(&app, &admin.access_token, &member).await;
    assert_eq!(app.delete(&format!("/api/v1/members/{member}"), &admin.access_token).await.status, 204);
    app.get("/api/v1/app/me", &second).await.problem(401);
    open(&app, &unused).await.problem(401);
}

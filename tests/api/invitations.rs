//! Invitations and app sessions that staff cannot abuse: only callers who may read contacts
//! invite, every sign-in is announced to the guardian, and a new invitation, a suspension
//! or a removal signs the app out.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::lists::create_member;
use crate::on_both_backends;

on_both_backends!(
    only_callers_who_may_read_contacts_invite_guardians,
    a_new_app_session_is_announced_to_the_guardians_confirmed_addresses,
    a_new_invitation_signs_the_app_out_and_voids_the_earlier_codes,
    suspending_signs_the_app_out_and_resuming_does_not_sign_it_back_in,
    concurrent_device_registrations_never_pass_four,
    moving_an_external_id_onto_a_guardian_signs_their_app_out,
);

fn invite_path(member: &str) -> String {
    format!("/api/v1/members/{member}/invitations")
}

async fn invite(app: &TestApp, token: &str, member: &str) -> String {
    app.post(&invite_path(member), token, json!({})).await.ok(201)["code"].as_str().unwrap().to_string()
}

async fn open(app: &TestApp, code: &str) -> Reply {
    app.call(Method::POST, "/api/v1/app/session", Auth::None, Some(json!({"code": code}))).await
}

async fn signed_in(app: &TestApp, token: &str, member: &str) -> String {
    let code = invite(app, token, member).await;
    open(app, &code).await.ok(201)["access_token"].as_str().unwrap().to_string()
}

async fn only_callers_who_may_read_contacts_invite_guardians(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Invite School").await;
    let member =
        create_member(&app, &admin.access_token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"]})).await;
    let (sender_id, sender) = app.create_staff(&admin, "sender").await;
    let (_, members_only) = app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["members:write"]})).await;
    let (_, contacts_only) = app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["contacts:read"]})).await;
    let (_, both) =
        app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["members:write", "contacts:read"]})).await;
    let path = invite_path(&member);
    let by_key = |key: String| {
        let (app, path) = (&app, &path);
        async move { app.call(Method::POST, path, Auth::ApiKey(&key), None).await }
    };

    // A sender manages the roster but may not read contacts: an app session would show them.
    let refused = app.post(&invite_path(&member), &sender, json!({})).await;
    refused.problem(403);
    assert!(refused.body["detail"].as_str().unwrap().contains("contacts:read"), "{}", refused.body);
    let refused = by_key(members_only).await;
    refused.problem(403);
    assert!(refused.body["detail"].as_str().unwrap().contains("contacts:read"), "{}", refused.body);
    let refused = by_key(contacts_only).await;
    refused.problem(403);
    assert!(refused.body["detail"].as_str().unwrap().contains("members:write"), "{}", refused.body);
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(stored, 0, "a refused request stores no code");

    assert_eq!(by_key(both).await.ok(201)["code"].as_str().unwrap().len(), 14);
    let grant = json!({"permissions": ["contacts:read"]});
    app.patch(&format!("/api/v1/users/{sender_id}"), &admin.access_token, grant).await.ok(200);
    invite(&app, &sender, &member).await;
}

struct ReceivedMailText {
    to: String,
    subject: String,
    text: String,
}

fn parsed(received: &[crate::smtp_server::ReceivedMail]) -> Vec<ReceivedMailText> {
    received
        .iter()
        .map(|mail| {
            let message = mail_parser::MessageParser::default().parse(&mail.data).unwrap();
            ReceivedMailText {
                to: mail.to.join(","),
                subject: message.subject().unwrap_or_default().to_string(),
                text: message.body_text(0).unwrap().to_string(),
            }
        })
        .collect()
}

async fn a_new_app_session_is_announced_to_the_guardians_confirmed_addresses(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("さくら小学校").await;
    let member = create_member(
        &app,
        &admin.access_token,
        json!({"name": "山田 花子", "emails": ["hanako@example.jp", "taro..papa@docomo.ne.jp"]}),
    )
    .await;
    let before = renrakumo::domain::jst::format_datetime(chrono::Utc::now());
    let token = signed_in(&app, &admin.access_token, &member).await;
    let after = renrakumo::domain::jst::format_datetime(chrono::Utc::now());
    let notices = parsed(&smtp.received());
    let mut to: Vec<&str> = notices.iter().map(|n| n.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["\"taro..papa\"@docomo.ne.jp", "hanako@example.jp"], "one notice to each confirmed address");
    for notice in &notices {
        assert!(notice.subject.contains("ログイン"), "{}", notice.subject);
        let text = &notice.text;
        assert!(text.contains("山田 花子 様"), "{text}");
        assert!(text.contains("さくら小学校の連絡網アプリ"), "{text}");
        assert!(
            text.contains(&format!("日時: {before}（日本時間）"))
                || text.contains(&format!("日時: {after}（日本時間）")),
            "{text}"
        );
        assert!(text.contains("学校にご連絡ください"), "{text}");
    }

    // An address the app added and nobody confirmed is not told (it receives its link only).
    app.post("/api/v1/app/me/emails", &token, json!({"address": "unconfirmed@example.jp"})).await.ok(201);
    assert_eq!(smtp.received().len(), 3);
    signed_in(&app, &admin.access_token, &member).await;
    let later = parsed(&smtp.received()[3..]);
    let mut to: Vec<&str> = later.iter().map(|n| n.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["\"taro..papa\"@docomo.ne.jp", "hanako@example.jp"]);
    // A guardian who registers with a join code signs themselves in: nothing to announce.
}

async fn a_new_invitation_signs_the_app_out_and_voids_the_earlier_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Lost Phone School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "佐藤 美咲"})).await;
    let other = create_member(&app, &admin.access_token, json!({"name": "他の保護者"})).await;
    let lost_phone = signed_in(&app, &admin.access_token, &member).await;
    let other_phone = signed_in(&app, &admin.access_token, &other).await;
    app.get("/api/v1/app/me", &lost_phone).await.ok(200);

    // Re-inviting is how staff sign out a lost phone: the session ends at once.
    let first = invite(&app, &admin.access_token, &member).await;
    app.get("/api/v1/app/me", &lost_phone).await.problem(401);
    app.call(
        Method::POST,
        "/api/v1/app/me/devices",
        Auth::Bearer(&lost_phone),
        Some(json!({"platform": "fcm", "token": "x"})),
    )
    .await
    .problem(401);
    // Only the newest code opens the app.
    let second = invite(&app, &admin.access_token, &member).await;
    open(&app, &first).await.problem(401);
    let new_phone = open(&app, &second).await.ok(201)["access_token"].as_str().unwrap().to_string();
    app.get("/api/v1/app/me", &new_phone).await.ok(200);
    app.get("/api/v1/app/me", &other_phone).await.ok(200);
}

async fn suspending_signs_the_app_out_and_resuming_does_not_sign_it_back_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Suspend School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "中村 翔"})).await;
    let (suspend_path, resume_path) =
        (format!("/api/v1/members/{member}/suspend"), format!("/api/v1/members/{member}/resume"));
    let suspend = || app.post(&suspend_path, &admin.access_token, json!({}));
    let resume = || app.post(&resume_path, &admin.access_token, json!({}));
    let session = signed_in(&app, &admin.access_token, &member).await;
    assert_eq!(suspend().await.ok(200)["status"], "suspended");
    app.get("/api/v1/app/me", &session).await.problem(401);
    assert_eq!(app.post(&invite_path(&member), &admin.access_token, json!({})).await.problem(409), ["status"]);
    assert_eq!(resume().await.ok(200)["status"], "active");
    app.get("/api/v1/app/me", &session).await.problem(401);
    // A code handed out before a suspension does not open the app after it either.
    let code = invite(&app, &admin.access_token, &member).await;
    suspend().await.ok(200);
    resume().await.ok(200);
    open(&app, &code).await.problem(401);
    let again = signed_in(&app, &admin.access_token, &member).await;
    app.get("/api/v1/app/me", &again).await.ok(200);
}

async fn concurrent_device_registrations_never_pass_four(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Race School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "小林 悠真の母"})).await;
    let guardian = signed_in(&app, &admin.access_token, &member).await;
    // Staff and the app at once, each with another phone.
    let registrations = (0..12).map(|i| {
        let (path, token) = if i % 2 == 0 {
            (format!("/api/v1/members/{member}/devices"), admin.access_token.as_str())
        } else {
            ("/api/v1/app/me/devices".to_string(), guardian.as_str())
        };
        let app = &app;
        async move { app.post(&path, token, json!({"platform": "fcm", "token": format!("phone-{i}")})).await }
    });
    let replies = futures_util::future::join_all(registrations).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(reply.problem(409), ["devices"]);
    }
    assert_eq!(created, 4, "{:?}", replies.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>());
    let devices = app.get(&format!("/api/v1/members/{member}/devices"), &admin.access_token).await;
    assert_eq!(devices.ok(200).as_array().unwrap().len(), 4);
}

/// A sender without contacts:read registers a guardian of their own through a join code,
/// then gives it another family's external id: the school system's next sync would write
/// that family's addresses onto it, so its app session ends at the move (and no new one can
/// be opened without an invitation, which needs contacts:read).
async fn moving_an_external_id_onto_a_guardian_signs_their_app_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("External Id School").await;
    let (_, sender) = app.create_staff(&admin, "sender").await;
    let list = crate::lists::create_list(&app, &sender, "サッカー部").await;
    let code = app.call(Method::PUT, &format!("/api/v1/lists/{list}/join-code"), Auth::Bearer(&sender), None).await;
    let code = code.ok(200)["join_code"].as_str().unwrap().to_string();
    let registered = app
        .call(Method::POST, "/api/v1/app/register", Auth::None, Some(json!({"join_code": code, "name": "偽の保護者"})))
        .await;
    let session = registered.ok(201)["access_token"].as_str().unwrap().to_string();
    let member = registered.body["profile"]["id"].as_str().unwrap().to_string();
    // Other changes leave the session alone.
    app.patch(&format!("/api/v1/members/{member}"), &sender, json!({"relation": "母"})).await.ok(200);
    app.get("/api/v1/app/me", &session).await.ok(200);
    app.patch(&format!("/api/v1/members/{member}"), &sender, json!({"external_id": "S0001"})).await.ok(200);
    app.get("/api/v1/app/me", &session).await.problem(401);
    // The school system's sync now writes the family's addresses: nobody signed in sees them.
    let (_, sis) =
        app.create_api_key(&admin, json!({"name": "校務システム", "scopes": ["members:write", "contacts:read"]})).await;
    let synced = app
        .call(
            Method::PUT,
            "/api/v1/members/by-external-id/S0001",
            Auth::ApiKey(&sis),
            Some(json!({"name": "本当の保護者", "emails": ["family@example.jp"]})),
        )
        .await;
    assert_eq!(synced.ok(200)["id"], member.as_str());
    app.get("/api/v1/app/me", &session).await.problem(401);
}

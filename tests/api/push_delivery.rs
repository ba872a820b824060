//! Push through the delivery engine: messages reach every live iOS and Android device of
//! their guardians through the in-process APNs and FCM servers; dead tokens leave the roster.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::create_member;
use crate::on_both_backends;
use crate::push_servers::{ApnsAnswer, ApnsServer, FcmAnswer, FcmServer};

on_both_backends!(a_message_reaches_every_live_device_and_dead_tokens_leave_the_roster,);

async fn a_message_reaches_every_live_device_and_dead_tokens_leave_the_roster(backend: Backend) {
    let apns = ApnsServer::start().await;
    let fcm = FcmServer::start().await;
    let credentials_dir = tempfile::tempdir().unwrap();
    let credentials = fcm.write_credentials(credentials_dir.path());
    let (apns_config, apns_url, fcm_url) = (apns.config(), apns.url.clone(), fcm.url.clone());
    let app = spawn_app_with(backend, move |config| {
        config.apns = Some(apns_config);
        config.apns_url = apns_url;
        config.fcm_credentials = Some(credentials);
        config.fcm_url = fcm_url;
    })
    .await;
    let admin = app.create_admin("Push School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "山田 花子"})).await;
    let devices = format!("/api/v1/members/{member}/devices");
    for (platform, device_token) in
        [("apns", "a1a1a1a1"), ("apns", "b2b2b2b2"), ("apns", "dead-ios"), ("fcm", "android-live")]
    {
        app.post(&devices, token, json!({"platform": platform, "token": device_token})).await.ok(201);
    }
    let other = create_member(&app, token, json!({"name": "髙橋 一郎"})).await;
    app.post(&format!("/api/v1/members/{other}/devices"), token, json!({"platform": "fcm", "token": "android-dead"}))
        .await
        .ok(201);
    app.post(&format!("/api/v1/members/{other}/devices"), token, json!({"platform": "fcm", "token": "android-busy"}))
        .await
        .ok(201);
    apns.answer("dead-ios", ApnsAnswer::Unregistered);
    fcm.answer("android-dead", FcmAnswer::Unregistered);
    fcm.answer("android-busy", FcmAnswer::QuotaExceeded(120));

    let body = json!({"subject": "臨時休校のお知らせ", "body": "台風のため明日は休校です。", "priority": "emergency",
        "channels": ["push"], "targets": {"member_ids": [member, other]}});
    let id = app.post("/api/v1/messages", token, body).await.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{id}/send"), token, json!({})).await.ok(202);
    app.deliver_all().await;

    let mut ios: Vec<String> = apns.received().iter().map(|n| n.token.clone()).collect();
    ios.sort();
    assert_eq!(ios, ["a1a1a1a1", "b2b2b2b2"]);
    let first = &apns.received()[0];
    assert_eq!(first.payload["aps"]["alert"]["title"], "【緊急】臨時休校のお知らせ");
    assert_eq!(first.payload["aps"]["interruption-level"], "time-sensitive");
    assert_eq!(first.payload["aps"]["thread-id"], id.as_str());
    assert_eq!(first.headers["apns-collapse-id"], id.as_str());
    assert!(apns.problems().is_empty(), "{:?}", apns.problems());
    let android: Vec<Value> = fcm.received().into_iter().map(|m| m.message).collect();
    assert_eq!(android.len(), 1);
    assert_eq!(android[0]["token"], "android-live");
    assert_eq!(android[0]["android"]["priority"], "high");
    assert_eq!(android[0]["data"]["message_id"], id.as_str());
    assert!(fcm.problems().is_empty(), "{:?}", fcm.problems());

    let stats = app.get(&format!("/api/v1/messages/{id}/stats"), token).await;
    assert_eq!(
        stats.ok(200)["deliveries"]["push"],
        json!({"queued": 1, "sent": 3, "failed": 0, "invalid": 2, "skipped": 0}),
        "the quota-limited one waits for its Retry-After"
    );
    // Dead tokens are gone from the roster; the recipients list says why.
    let left: Vec<String> = app
        .get(&devices, token)
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["a1a1a1a1", "b2b2b2b2", "android-live"]);
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    let items = recipients.ok(200)["items"].as_array().unwrap().clone();
    let invalid: Vec<&Value> =
        items.iter().flat_map(|r| r["deliveries"].as_array().unwrap()).filter(|d| d["state"] == "invalid").collect();
    assert_eq!(invalid.len(), 2);
    assert!(
        invalid.iter().all(|d| d["detail"].as_str().unwrap().to_lowercase().contains("unregistered")),
        "{invalid:?}"
    );

    // The quota-limited device is tried again once its Retry-After has passed, not before.
    fcm.accept("android-busy");
    app.advance_clock(std::time::Duration::from_secs(119));
    assert_eq!(app.deliver_all().await, 0, "not before its Retry-After");
    app.advance_clock(std::time::Duration::from_secs(2));
    app.deliver_all().await;
    let android: Vec<String> =
        fcm.received().into_iter().map(|m| m.message["token"].as_str().unwrap().into()).collect();
    assert_eq!(android, ["android-live", "android-busy"]);
    let stats = app.get(&format!("/api/v1/messages/{id}/stats"), token).await;
    assert_eq!(
        stats.ok(200)["deliveries"]["push"],
        json!({"queued": 0, "sent": 4, "failed": 0, "invalid": 2, "skipped": 0})
    );
    app.assert_queue_empty().await;
}

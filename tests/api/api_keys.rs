use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_key_is_shown_once_and_then_authenticates,
    a_key_holds_only_its_scopes,
    revoked_and_expired_keys_are_refused,
    a_single_use_key_lives_at_most_a_day,
    a_spent_single_use_key_stops_working,
    a_resend_or_an_edit_of_a_scheduled_message_spends_a_single_use_key,
    bad_key_requests_name_the_field,
    another_organisations_keys_answer_404,
);

async fn me_with_key(app: &TestApp, key: &str) -> Reply {
    app.call(Method::GET, "/api/v1/me", Auth::ApiKey(key), None).await
}

async fn a_key_is_shown_once_and_then_authenticates(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Key School").await;
    let created = app
        .post(
            "/api/v1/api-keys",
            &admin.access_token,
            json!({"name": "校務支援システム", "scopes": ["lists:read", "members:write"]}),
        )
        .await;
    let created = created.ok(201).clone();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("rk_live_") && key.len() > 40);
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["status"], "active");
    assert!(created["last_used_at"].is_null());

    let me = me_with_key(&app, key).await;
    let me = me.ok(200);
    assert_eq!(me["kind"], "api_key");
    assert_eq!(me["org_id"], admin.org_id.as_str());
    assert_eq!(me["scopes"], json!(["lists:read", "members:write"]));

    let id = created["id"].as_str().unwrap();
    let fetched = app.get(&format!("/api/v1/api-keys/{id}"), &admin.access_token).await;
    let fetched = fetched.ok(200);
    assert!(fetched.get("key").is_none(), "the key is shown only at creation");
    assert!(fetched["last_used_at"].is_string(), "use is recorded");
    let listed = app.get("/api/v1/api-keys", &admin.access_token).await;
    let listed = listed.ok(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(key));
    // Only the digest is stored.
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(&mut *conn).await.unwrap();
    assert_ne!(stored, key);
}

async fn a_key_holds_only_its_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Scope School").await;
    let (_, key) = app.create_api_key(&admin, json!({"name": "roster sync", "scopes": ["lists:read"]})).await;
    // Staff and key management is for admins signed in as people, whatever the scopes.
    app.call(Method::GET, "/api/v1/users", Auth::ApiKey(&key), None).await.problem(403);
    app.call(
        Method::POST,
        "/api/v1/api-keys",
        Auth::ApiKey(&key),
        Some(json!({"name": "k", "scopes": ["contacts:read"]})),
    )
    .await
    .problem(403);
    app.call(Method::POST, "/api/v1/auth/logout", Auth::ApiKey(&key), None).await.problem(403);
    app.call(Method::GET, "/api/v1/me", Auth::ApiKey("rk_live_not-a-key"), None).await.problem(401);
}

async fn revoked_and_expired_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Expiry School").await;
    let (revoked_id, revoked) = app.create_api_key(&admin, json!({"name": "old", "scopes": ["lists:read"]})).await;
    me_with_key(&app, &revoked).await.ok(200);
    assert_eq!(app.delete(&format!("/api/v1/api-keys/{revoked_id}"), &admin.access_token).await.status, 204);
    me_with_key(&app, &revoked).await.problem(401);
    assert_eq!(
        app.get(&format!("/api/v1/api-keys/{revoked_id}"), &admin.access_token).await.ok(200)["status"],
        "revoked"
    );

    let expires_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (expiring_id, expiring) =
        app.create_api_key(&admin, json!({"name": "term", "scopes": ["lists:read"], "expires_at": expires_at})).await;
    me_with_key(&app, &expiring).await.ok(200);
    // An hour passes (moved in the database rather than waited for).
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 1)
        .bind(&expiring_id)
        .execute(&mut *conn)
        .await
        .unwrap();
    me_with_key(&app, &expiring).await.problem(401);
    assert_eq!(
        app.get(&format!("/api/v1/api-keys/{expiring_id}"), &admin.access_token).await.ok(200)["status"],
        "expired"
    );
}

async fn a_single_use_key_lives_at_most_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Pass School").await;
    let created = app
        .post(
            "/api/v1/api-keys",
            &admin.access_token,
            json!({"name": "one-day pass", "scopes": ["messages:send"], "single_use": true}),
        )
        .await;
    let created = created.ok(201);
    assert_eq!(created["single_use"], true);
    let expires_at = chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    let hours = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "expires in {hours} h");
    let too_long = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let refused = app
        .post(
            "/api/v1/api-keys",
            &admin.access_token,
            json!({"name": "pass", "scopes": ["messages:send"], "single_use": true, "expires_at": too_long}),
        )
        .await;
    assert_eq!(refused.problem(422), ["expires_at"]);
    let short = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    app.post(
        "/api/v1/api-keys",
        &admin.access_token,
        json!({"name": "pass", "scopes": ["messages:send"], "single_use": true, "expires_at": short}),
    )
    .await
    .ok(201);
}

async fn a_spent_single_use_key_stops_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Spent School").await;
    let (id, key) =
        app.create_api_key(&admin, json!({"name": "pass", "scopes": ["messages:send"], "single_use": true})).await;
    me_with_key(&app, &key).await.ok(200);
    // The send endpoint (messages issue) spends the key through this call; only the first
    // spender wins, so two concurrent sends cannot both use one pass.
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    assert!(renrakumo::db::repositories::api_keys::consume(&mut conn, &id).await.unwrap());
    assert!(!renrakumo::db::repositories::api_keys::consume(&mut conn, &id).await.unwrap());
    me_with_key(&app, &key).await.problem(401);
    let shown = app.get(&format!("/api/v1/api-keys/{id}"), &admin.access_token).await;
    let shown = shown.ok(200);
    assert_eq!(shown["status"], "used");
    assert!(shown["used_at"].is_string());
}

/// A pass sends once, whatever the endpoint: a resend and an edit of a scheduled message
/// (which goes out as edited) spend it like a send.
async fn a_resend_or_an_edit_of_a_scheduled_message_spends_a_single_use_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Pass School").await;
    let token = &admin.access_token;
    let member =
        app.post("/api/v1/members", token, json!({"name": "A", "emails": ["a@example.jp"]})).await.ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
    let body = json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}});
    let sent = app.post("/api/v1/messages", token, body.clone()).await.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{sent}/send"), token, json!({})).await.ok(202);
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let scheduled = app.post("/api/v1/messages", token, body).await.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{scheduled}/send"), token, json!({"send_at": later})).await.ok(202);

    let pass = json!({"name": "pass", "scopes": ["messages:send", "messages:read"], "single_use": true});
    let (_, key) = app.create_api_key(&admin, pass.clone()).await;
    let resend = format!("/api/v1/messages/{sent}/resend");
    let call = |method: reqwest::Method, path: String, key: String, body: serde_json::Value| {
        let app = &app;
        async move { app.call(method, &path, Auth::ApiKey(&key), Some(body)).await }
    };
    call(Method::POST, resend.clone(), key.clone(), json!({"to": "unacknowledged"})).await.ok(202);
    call(Method::POST, resend, key.clone(), json!({"to": "unacknowledged"})).await.problem(401);

    let (_, key) = app.create_api_key(&admin, pass).await;
    let edit = format!("/api/v1/messages/{scheduled}");
    call(Method::PATCH, edit.clone(), key.clone(), json!({"subject": "変更"})).await.ok(200);
    call(Method::PATCH, edit, key, json!({"subject": "再変更"})).await.problem(401);
}

async fn bad_key_requests_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Bad Key School").await;
    let cases = [
        (json!({"name": "", "scopes": ["lists:read"]}), vec!["name"]),
        (json!({"name": "k", "scopes": []}), vec!["scopes"]),
        (json!({"name": "k", "scopes": ["lists:read", "everything"]}), vec!["scopes[1]"]),
        (json!({"name": "k", "scopes": ["lists:read"], "expires_at": "2001-01-01T00:00:00Z"}), vec!["expires_at"]),
        (json!({"name": "k", "scopes": ["lists:read"], "expires_at": "tomorrow"}), vec!["expires_at"]),
        (json!({"name": "k".repeat(101), "scopes": []}), vec!["name", "scopes"]),
    ];
    for (body, fields) in cases {
        let answer = app.post("/api/v1/api-keys", &admin.access_token, body.clone()).await;
        assert_eq!(answer.problem(422), fields, "{body}");
    }
    let listed = app.get("/api/v1/api-keys", &admin.access_token).await;
    assert!(listed.ok(200)["items"].as_array().unwrap().is_empty(), "nothing half-written");
}

async fn another_organisations_keys_answer_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let school_a = app.create_admin("School A").await;
    let school_b = app.create_admin("School B").await;
    let (id, key) = app.create_api_key(&school_a, json!({"name": "a", "scopes": ["lists:read"]})).await;
    app.get(&format!("/api/v1/api-keys/{id}"), &school_b.access_token).await.problem(404);
    app.delete(&format!("/api/v1/api-keys/{id}"), &school_b.access_token).await.problem(404);
    me_with_key(&app, &key).await.ok(200);
}

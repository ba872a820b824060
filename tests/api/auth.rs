use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    login_answers_a_token_pair_that_opens_the_api,
    login_ignores_the_case_of_the_address,
    a_wrong_password_or_unknown_address_is_the_same_401,
    the_oauth2_password_grant_signs_in_like_login,
    the_oauth2_endpoint_refuses_other_grants,
    refresh_rotates_the_pair,
    a_reused_refresh_token_ends_the_whole_session,
    logout_stops_access_and_refresh_tokens_at_once,
    expired_tampered_and_unsigned_tokens_are_refused,
    a_client_guessing_one_address_waits_a_growing_delay,
    the_owner_signing_in_from_another_client_is_not_held_up,
    parallel_guesses_get_no_more_checks_than_the_allowance,
    failed_logins_are_limited_per_client_ip,
    a_successful_login_forgives_earlier_failures_of_that_address,
);

async fn login_answers_a_token_pair_that_opens_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Sakura School").await;
    let tokens = app.login(&admin.email, PASSWORD).await;
    let body = tokens.ok(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rk_rt_"));
    assert_eq!(tokens.headers["cache-control"], "no-store");
    let me = app.get("/api/v1/me", body["access_token"].as_str().unwrap()).await;
    let me = me.ok(200);
    assert_eq!(me["kind"], "user");
    assert_eq!(me["id"], admin.user_id.as_str());
    assert_eq!(me["org_id"], admin.org_id.as_str());
    assert_eq!(me["org_name"], "Sakura School");
    assert_eq!(me["role"], "admin");
    // The first admin holds contacts:read (DESIGN.md).
    assert!(me["scopes"].as_array().unwrap().contains(&json!("contacts:read")));
}

async fn login_ignores_the_case_of_the_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Case School").await;
    app.login(&admin.email.to_uppercase(), PASSWORD).await.ok(200);
}

async fn a_wrong_password_or_unknown_address_is_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Sakura School").await;
    let wrong_password = app.login(&admin.email, "not the password").await;
    wrong_password.problem(401);
    let unknown = app.login("nobody@example.jp", PASSWORD).await;
    unknown.problem(401);
    // Nothing tells an attacker which addresses have accounts.
    assert_eq!(wrong_password.body, unknown.body);
    assert_eq!(wrong_password.body["error"], "invalid_grant");
    let empty = app.login("", "").await;
    assert_eq!(empty.problem(422), ["email"]);
}

async fn the_oauth2_password_grant_signs_in_like_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Swagger School").await;
    // What Swagger UI's Authorize dialog sends.
    let form =
        [("grant_type", "password"), ("username", admin.email.as_str()), ("password", PASSWORD), ("client_id", "")];
    let answer = Reply::from(app.client.post(app.url("/api/v1/auth/token")).form(&form).send().await.unwrap()).await;
    let body = answer.ok(200);
    assert_eq!(body["token_type"], "Bearer");
    app.get("/api/v1/me", body["access_token"].as_str().unwrap()).await.ok(200);

    let form = [("grant_type", "password"), ("username", admin.email.as_str()), ("password", "wrong password")];
    let answer = Reply::from(app.client.post(app.url("/api/v1/auth/token")).form(&form).send().await.unwrap()).await;
    answer.problem(401);
    assert_eq!(answer.body["error"], "invalid_grant");
}

async fn the_oauth2_endpoint_refuses_other_grants(backend: Backend) {
    let app = spawn_app(backend).await;
    let form = [("grant_type", "client_credentials"), ("username", "a@example.jp"), ("password", PASSWORD)];
    let answer = Reply::from(app.client.post(app.url("/api/v1/auth/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(answer.problem(422), ["grant_type"]);
    let answer = Reply::from(
        app.client.post(app.url("/api/v1/auth/token")).form(&[("grant_type", "password")]).send().await.unwrap(),
    )
    .await;
    assert_eq!(answer.problem(422), ["username"]);
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    app.call(Method::POST, "/api/v1/auth/refresh", Auth::None, Some(json!({ "refresh_token": refresh_token }))).await
}

async fn refresh_rotates_the_pair(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Rotation School").await;
    let rotated = refresh(&app, &admin.refresh_token).await;
    let rotated = rotated.ok(200);
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, admin.refresh_token);
    app.get("/api/v1/me", rotated["access_token"].as_str().unwrap()).await.ok(200);
    // The new refresh token works once more, and so on.
    let again = refresh(&app, new_refresh).await;
    again.ok(200);
    refresh(&app, "rk_rt_made-up").await.problem(401);
}

async fn a_reused_refresh_token_ends_the_whole_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Reuse School").await;
    let first = refresh(&app, &admin.refresh_token).await;
    let first = first.ok(200).clone();
    // The old token comes back: someone copied it. The whole family is revoked…
    refresh(&app, &admin.refresh_token).await.problem(401);
    // …including the token issued by the legitimate rotation and its access token.
    refresh(&app, first["refresh_token"].as_str().unwrap()).await.problem(401);
    app.get("/api/v1/me", first["access_token"].as_str().unwrap()).await.problem(401);
    app.get("/api/v1/me", &admin.access_token).await.problem(401);
    // Other sign-ins of the same person are separate sessions and keep working.
    let other = app.login(&admin.email, PASSWORD).await;
    app.get("/api/v1/me", other.ok(200)["access_token"].as_str().unwrap()).await.ok(200);
}

async fn logout_stops_access_and_refresh_tokens_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Logout School").await;
    let logout = app.call(Method::POST, "/api/v1/auth/logout", Auth::Bearer(&admin.access_token), None).await;
    assert_eq!(logout.status, 204);
    app.get("/api/v1/me", &admin.access_token).await.problem(401);
    refresh(&app, &admin.refresh_token).await.problem(401);
    app.call(Method::POST, "/api/v1/auth/logout", Auth::None, None).await.problem(401);
}

fn sign(secret: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn expired_tampered_and_unsigned_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Token School").await;
    let secret = app.jwt_secret().await;
    let real: serde_json::Value = {
        let payload = admin.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let now = chrono::Utc::now().timestamp();

    // A token we sign ourselves with the real secret works: the forgeries below fail for
    // their flaw, not for some other difference.
    let mut claims = real.clone();
    claims["exp"] = json!(now + 60);
    app.get("/api/v1/me", &sign(&secret, claims.clone())).await.ok(200);

    claims["exp"] = json!(now - 5);
    app.get("/api/v1/me", &sign(&secret, claims)).await.problem(401);

    // Tampered: the organisation claim changed after signing.
    let mut parts: Vec<String> = admin.access_token.split('.').map(str::to_string).collect();
    let mut tampered = real.clone();
    tampered["org"] = json!("another-org");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap());
    app.get("/api/v1/me", &parts.join(".")).await.problem(401);

    // alg: none, no signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&real).unwrap()));
    app.get("/api/v1/me", &unsigned).await.problem(401);

    // Signed with another secret.
    let mut claims = real.clone();
    claims["exp"] = json!(now + 60);
    app.get("/api/v1/me", &sign("another secret of at least thirty-two chars", claims)).await.problem(401);
}

async fn a_client_guessing_one_address_waits_a_growing_delay(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Limit School").await;
    for _ in 0..5 {
        app.login(&admin.email, "guess guess guess").await.problem(401);
    }
    // Refused before the password is checked, even the right one: the guesser must not
    // learn it was right.
    let waiting = app.login(&admin.email, PASSWORD).await;
    waiting.problem(429);
    assert_eq!(waiting.headers["retry-after"], "30");
    // Each attempt after the wait doubles the next wait.
    app.advance_clock(std::time::Duration::from_secs(30));
    app.login(&admin.email, "guess guess guess").await.problem(401);
    let waiting = app.login(&admin.email, PASSWORD).await;
    waiting.problem(429);
    assert_eq!(waiting.headers["retry-after"], "60");
    // Another address from the same client is not held up by this one.
    let other = app.create_admin("Other School").await;
    app.login(&other.email, PASSWORD).await.ok(200);
}

async fn the_owner_signing_in_from_another_client_is_not_held_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Owner School").await;
    for _ in 0..8 {
        app.login(&admin.email, "an attacker's guess").await;
    }
    app.login(&admin.email, PASSWORD).await.problem(429);
    // No lock an attacker can trigger: the owner, from their own client, signs in.
    app.login_from("127.0.0.2", &admin.email, PASSWORD).await.ok(200);
    // A success clears only that client's count for the address.
    app.login(&admin.email, PASSWORD).await.problem(429);
}

async fn parallel_guesses_get_no_more_checks_than_the_allowance(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Parallel School").await;
    let guesses = (0..50).map(|n| {
        let app = &app;
        let email = admin.email.clone();
        async move { app.login(&email, &format!("parallel guess {n}")).await.status.as_u16() }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((checked, refused), (5, 45), "{statuses:?}");
}

async fn failed_logins_are_limited_per_client_ip(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Spray School").await;
    // One client trying many addresses, a few guesses each: no address reaches its own limit.
    for i in 0..20 {
        app.login(&format!("user{}@example.jp", i / 4), "guess guess guess").await.problem(401);
    }
    let blocked = app.login(&admin.email, PASSWORD).await;
    blocked.problem(429);
    assert!(blocked.headers.contains_key("retry-after"));
}

async fn a_successful_login_forgives_earlier_failures_of_that_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Typo School").await;
    for _ in 0..4 {
        app.login(&admin.email, "typo typo typo").await.problem(401);
    }
    app.login(&admin.email, PASSWORD).await.ok(200);
    for _ in 0..4 {
        app.login(&admin.email, "typo typo typo").await.problem(401);
    }
    app.login(&admin.email, PASSWORD).await.ok(200);
}

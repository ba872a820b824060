use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    an_admin_adds_staff_who_can_then_sign_in,
    staff_lists_paginate_with_a_cursor,
    only_admins_manage_staff,
    staff_change_their_own_name_and_password_but_not_their_role,
    the_last_admin_can_be_neither_demoted_nor_removed,
    a_demotion_takes_effect_on_the_next_request,
    a_removed_user_is_signed_out,
    an_address_is_unique_within_an_organisation_only,
    guessing_the_current_password_is_throttled_per_session,
    only_contacts_read_is_granted_as_a_permission,
    another_organisations_users_answer_404,
);

async fn an_admin_adds_staff_who_can_then_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Sakura School").await;
    let created = app
        .post(
            "/api/v1/users",
            &admin.access_token,
            json!({"email": "Sato@School.Example.JP", "password": PASSWORD, "name": "佐藤 先生", "role": "sender", "permissions": ["contacts:read"]}),
        )
        .await;
    let user = created.ok(201);
    assert_eq!(user["email"], "Sato@school.example.jp");
    assert_eq!(user["name"], "佐藤 先生");
    assert_eq!(user["role"], "sender");
    assert_eq!(user["permissions"], json!(["contacts:read"]));
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let tokens = app.login("sato@school.example.jp", PASSWORD).await;
    let me = app.get("/api/v1/me", tokens.ok(200)["access_token"].as_str().unwrap()).await;
    assert_eq!(me.ok(200)["role"], "sender");
    let fetched = app.get(&format!("/api/v1/users/{}", user["id"].as_str().unwrap()), &admin.access_token).await;
    assert_eq!(fetched.ok(200)["email"], "Sato@school.example.jp");
}

async fn staff_lists_paginate_with_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Page School").await;
    for _ in 0..4 {
        app.create_staff(&admin, "viewer").await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_string();
    loop {
        let page = app.get(&path, &admin.access_token).await;
        let page = page.ok(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "the admin and four viewers, each once");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
}

async fn only_admins_manage_staff(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Role School").await;
    let (_, sender) = app.create_staff(&admin, "sender").await;
    let (viewer_id, viewer) = app.create_staff(&admin, "viewer").await;
    let new_user = json!({"email": "new@school.example.jp", "password": PASSWORD, "name": "新人", "role": "admin"});
    app.post("/api/v1/users", &sender, new_user.clone()).await.problem(403);
    app.post("/api/v1/users", &viewer, new_user).await.problem(403);
    app.get("/api/v1/users", &viewer).await.problem(403);
    app.get(&format!("/api/v1/users/{}", admin.user_id), &sender).await.problem(403);
    app.delete(&format!("/api/v1/users/{viewer_id}"), &sender).await.problem(403);
    app.post("/api/v1/api-keys", &sender, json!({"name": "x", "scopes": ["lists:read"]})).await.problem(403);
}

async fn staff_change_their_own_name_and_password_but_not_their_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Self School").await;
    let (id, token) = app.create_staff(&admin, "viewer").await;
    let path = format!("/api/v1/users/{id}");
    let email = app.get(&path, &token).await.ok(200)["email"].as_str().unwrap().to_string();
    // The same member signed in on another device.
    let other = app.login(&email, PASSWORD).await.ok(200)["access_token"].as_str().unwrap().to_string();
    let new_password = json!({"name": "山田 先生", "password": "a brand new passphrase"});
    // A stolen access token alone cannot change the password: it takes the current one.
    assert_eq!(app.patch(&path, &token, new_password.clone()).await.problem(422), ["current_password"]);
    let mut wrong = new_password.clone();
    wrong["current_password"] = json!("not the password");
    assert_eq!(app.patch(&path, &token, wrong).await.problem(422), ["current_password"]);
    let mut right = new_password;
    right["current_password"] = json!(PASSWORD);
    let changed = app.patch(&path, &token, right).await;
    assert_eq!(changed.ok(200)["name"], "山田 先生");
    app.login(&email, PASSWORD).await.problem(401);
    app.login(&email, "a brand new passphrase").await.ok(200);
    // The other sessions end; the one that changed it goes on.
    app.get("/api/v1/me", &other).await.problem(401);
    app.get("/api/v1/me", &token).await.ok(200);
    // An admin resetting it needs no current password, and ends every session of the member.
    let reset = json!({"password": "set by the admin again"});
    app.patch(&path, &admin.access_token, reset).await.ok(200);
    app.get("/api/v1/me", &token).await.problem(401);
    app.get("/api/v1/me", &admin.access_token).await.ok(200);
    let token = app.login(&email, "set by the admin again").await.ok(200)["access_token"].as_str().unwrap().to_string();
    app.patch(&path, &token, json!({"role": "admin"})).await.problem(403);
    app.patch(&path, &token, json!({"permissions": ["contacts:read"]})).await.problem(403);
    assert_eq!(app.get(&path, &token).await.ok(200)["role"], "viewer");
}

async fn the_last_admin_can_be_neither_demoted_nor_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Last School").await;
    let own = format!("/api/v1/users/{}", admin.user_id);
    assert_eq!(app.patch(&own, &admin.access_token, json!({"role": "sender"})).await.problem(409), ["role"]);
    assert_eq!(app.delete(&own, &admin.access_token).await.problem(409), ["id"]);
    assert_eq!(app.get(&own, &admin.access_token).await.ok(200)["role"], "admin");
    // With a second admin, the first may step down.
    let (second_id, second) = app.create_staff(&admin, "admin").await;
    app.patch(&own, &admin.access_token, json!({"role": "sender"})).await.ok(200);
    // …and now the second is the last one.
    let second_path = format!("/api/v1/users/{second_id}");
    app.patch(&second_path, &second, json!({"role": "viewer"})).await.problem(409);
    app.delete(&second_path, &second).await.problem(409);
}

async fn a_demotion_takes_effect_on_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Demote School").await;
    let (id, other_admin) = app.create_staff(&admin, "admin").await;
    app.get("/api/v1/users", &other_admin).await.ok(200);
    app.patch(&format!("/api/v1/users/{id}"), &admin.access_token, json!({"role": "viewer"})).await.ok(200);
    // Same token, still valid, but the role now comes from the database.
    app.get("/api/v1/users", &other_admin).await.problem(403);
}

async fn a_removed_user_is_signed_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Remove School").await;
    let (id, token) = app.create_staff(&admin, "sender").await;
    app.get("/api/v1/me", &token).await.ok(200);
    assert_eq!(app.delete(&format!("/api/v1/users/{id}"), &admin.access_token).await.status, 204);
    app.get("/api/v1/me", &token).await.problem(401);
    app.get(&format!("/api/v1/users/{id}"), &admin.access_token).await.problem(404);
    app.delete(&format!("/api/v1/users/{id}"), &admin.access_token).await.problem(404);
}

async fn an_address_is_unique_within_an_organisation_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Unique School").await;
    let body = json!({"email": "kato@school.example.jp", "password": PASSWORD, "name": "加藤", "role": "viewer"});
    app.post("/api/v1/users", &admin.access_token, body).await.ok(201);
    let again =
        json!({"email": "KATO@school.example.jp", "password": "another passphrase", "name": "加藤", "role": "viewer"});
    assert_eq!(app.post("/api/v1/users", &admin.access_token, again.clone()).await.problem(409), ["email"]);
    // Another organisation's admin learns nothing about who has an account elsewhere: the
    // address is as free to them as any other.
    let other = app.create_admin("Other School").await;
    let created = app.post("/api/v1/users", &other.access_token, again).await;
    assert_eq!(created.ok(201)["email"], "KATO@school.example.jp");
    // The password tells the two accounts apart at sign-in.
    let first = app.login("kato@school.example.jp", PASSWORD).await;
    let first = first.ok(200)["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me", &first).await.ok(200)["org_id"], admin.org_id.as_str());
    let second = app.login("kato@school.example.jp", "another passphrase").await;
    let second = second.ok(200)["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me", &second).await.ok(200)["org_id"], other.org_id.as_str());
    app.login("kato@school.example.jp", "neither passphrase").await.problem(401);
}

async fn guessing_the_current_password_is_throttled_per_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Token Thief School").await;
    let (id, stolen) = app.create_staff(&admin, "viewer").await;
    let path = format!("/api/v1/users/{id}");
    let email = app.get(&path, &stolen).await.ok(200)["email"].as_str().unwrap().to_string();
    let guess = |n: usize| json!({"password": "taken over at last", "current_password": format!("guess number {n}")});
    for n in 0..5 {
        assert_eq!(app.patch(&path, &stolen, guess(n)).await.problem(422), ["current_password"]);
    }
    // Even the right one is not checked now: the holder of the token must wait.
    let right = json!({"password": "taken over at last", "current_password": PASSWORD});
    let refused = app.patch(&path, &stolen, right.clone()).await;
    refused.problem(429);
    assert_eq!(refused.headers["retry-after"], "30");
    app.login(&email, PASSWORD).await.ok(200);
    // The owner's own session is not held up by the thief's guesses.
    let owner = app.login(&email, PASSWORD).await.ok(200)["access_token"].as_str().unwrap().to_string();
    let mut own = right.clone();
    own["password"] = json!("the owner's new passphrase");
    app.patch(&path, &owner, own).await.ok(200);
}

async fn only_contacts_read_is_granted_as_a_permission(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Permission School").await;
    let body = json!({"email": "p@school.example.jp", "password": PASSWORD, "name": "P", "role": "viewer", "permissions": ["contacts:read", "messages:send"]});
    assert_eq!(app.post("/api/v1/users", &admin.access_token, body).await.problem(422), ["permissions[1]"]);
    let body = json!({"email": "p@school.example.jp", "password": PASSWORD, "name": "P", "role": "viewer", "permissions": ["root"]});
    assert_eq!(app.post("/api/v1/users", &admin.access_token, body).await.problem(422), ["permissions[0]"]);
    let (id, token) = app.create_staff(&admin, "viewer").await;
    let scopes = |me: &serde_json::Value| me["scopes"].as_array().unwrap().contains(&json!("contacts:read"));
    assert!(!scopes(app.get("/api/v1/me", &token).await.ok(200)));
    app.patch(&format!("/api/v1/users/{id}"), &admin.access_token, json!({"permissions": ["contacts:read"]}))
        .await
        .ok(200);
    assert!(scopes(app.get("/api/v1/me", &token).await.ok(200)));
}

async fn another_organisations_users_answer_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let school_a = app.create_admin("School A").await;
    let school_b = app.create_admin("School B").await;
    let (a_user, _) = app.create_staff(&school_a, "sender").await;
    let path = format!("/api/v1/users/{a_user}");
    app.get(&path, &school_b.access_token).await.problem(404);
    app.patch(&path, &school_b.access_token, json!({"name": "乗っ取り"})).await.problem(404);
    app.delete(&path, &school_b.access_token).await.problem(404);
    let listed = app.get("/api/v1/users", &school_b.access_token).await;
    let ids: Vec<&str> =
        listed.ok(200)["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [school_b.user_id.as_str()]);
    // Untouched in school A.
    assert_eq!(app.get(&path, &school_a.access_token).await.ok(200)["name"], "先生");
}

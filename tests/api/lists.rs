use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    lists_are_created_renamed_and_counted,
    a_list_name_is_unique_in_its_organisation,
    deleting_a_list_keeps_its_members,
    membership_is_added_and_removed_one_by_one,
    many_members_are_added_moved_copied_and_removed_in_one_call,
    a_bulk_call_with_an_unknown_member_changes_nothing,
    api_keys_need_list_scopes,
    another_organisations_lists_answer_404,
);

pub async fn create_list(app: &TestApp, token: &str, name: &str) -> String {
    app.post("/api/v1/lists", token, json!({"name": name})).await.ok(201)["id"].as_str().unwrap().to_string()
}

pub async fn create_member(app: &TestApp, token: &str, body: Value) -> String {
    app.post("/api/v1/members", token, body).await.ok(201)["id"].as_str().unwrap().to_string()
}

async fn lists_are_created_renamed_and_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("List School").await;
    let created =
        app.post("/api/v1/lists", &admin.access_token, json!({"name": "1年A組", "description": "2026年度"})).await;
    let created = created.ok(201).clone();
    assert_eq!(created["name"], "1年A組");
    assert_eq!(created["member_count"], 0);
    let id = created["id"].as_str().unwrap();
    create_member(&app, &admin.access_token, json!({"name": "山田 花子", "list_ids": [id]})).await;
    create_member(&app, &admin.access_token, json!({"name": "髙橋 一郎", "list_ids": [id]})).await;
    let path = format!("/api/v1/lists/{id}");
    assert_eq!(app.get(&path, &admin.access_token).await.ok(200)["member_count"], 2);
    let renamed = app.patch(&path, &admin.access_token, json!({"name": "2年A組", "description": ""})).await;
    let renamed = renamed.ok(200);
    assert_eq!(renamed["name"], "2年A組");
    assert!(renamed["description"].is_null());
    let found = app.get("/api/v1/lists?q=2年", &admin.access_token).await;
    assert_eq!(found.ok(200)["items"].as_array().unwrap().len(), 1);
    let none = app.get("/api/v1/lists?q=3年", &admin.access_token).await;
    assert!(none.ok(200)["items"].as_array().unwrap().is_empty());
    assert_eq!(app.post("/api/v1/lists", &admin.access_token, json!({"name": ""})).await.problem(422), ["name"]);
    assert_eq!(
        app.post("/api/v1/lists", &admin.access_token, json!({"name": "x".repeat(101)})).await.problem(422),
        ["name"]
    );
}

async fn a_list_name_is_unique_in_its_organisation(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Unique School").await;
    create_list(&app, &admin.access_token, "サッカー部").await;
    let other = create_list(&app, &admin.access_token, "野球部").await;
    assert_eq!(
        app.post("/api/v1/lists", &admin.access_token, json!({"name": "サッカー部"})).await.problem(409),
        ["name"]
    );
    assert_eq!(
        app.patch(&format!("/api/v1/lists/{other}"), &admin.access_token, json!({"name": "サッカー部"}))
            .await
            .problem(409),
        ["name"]
    );
    // Another organisation may use the same name.
    let school_b = app.create_admin("School B").await;
    create_list(&app, &school_b.access_token, "サッカー部").await;
}

async fn deleting_a_list_keeps_its_members(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Delete School").await;
    let list = create_list(&app, &admin.access_token, "3年C組").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "渡邊 剛", "list_ids": [list]})).await;
    assert_eq!(app.delete(&format!("/api/v1/lists/{list}"), &admin.access_token).await.status, 204);
    app.get(&format!("/api/v1/lists/{list}"), &admin.access_token).await.problem(404);
    let kept = app.get(&format!("/api/v1/members/{member}"), &admin.access_token).await;
    assert_eq!(kept.ok(200)["list_ids"], json!([]));
}

async fn membership_is_added_and_removed_one_by_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Member School").await;
    let list = create_list(&app, &admin.access_token, "吹奏楽部").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "山﨑 由美"})).await;
    let path = format!("/api/v1/lists/{list}/members/{member}");
    for _ in 0..2 {
        let put = app.call(reqwest::Method::PUT, &path, Auth::Bearer(&admin.access_token), None).await;
        assert_eq!(put.status, 204, "idempotent");
    }
    let listed = app.get(&format!("/api/v1/lists/{list}/members"), &admin.access_token).await;
    let listed = listed.ok(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["name"], "山﨑 由美");
    assert_eq!(app.delete(&path, &admin.access_token).await.status, 204);
    assert_eq!(app.get(&format!("/api/v1/lists/{list}"), &admin.access_token).await.ok(200)["member_count"], 0);
    let missing = format!("/api/v1/lists/{list}/members/no-such-member");
    app.call(reqwest::Method::PUT, &missing, Auth::Bearer(&admin.access_token), None).await.problem(404);
}

async fn member_ids_of(app: &TestApp, token: &str, list: &str) -> Vec<String> {
    let page = app.get(&format!("/api/v1/lists/{list}/members?limit=200"), token).await;
    let mut ids: Vec<String> =
        page.ok(200)["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

async fn many_members_are_added_moved_copied_and_removed_in_one_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Bulk School").await;
    let token = &admin.access_token;
    let a = create_list(&app, token, "1年A組").await;
    let b = create_list(&app, token, "1年B組").await;
    let c = create_list(&app, token, "北ルート").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_member(&app, token, json!({"name": format!("保護者{i}")})).await);
    }
    ids.sort();
    let bulk = |list: &str| format!("/api/v1/lists/{list}/members/bulk");
    assert_eq!(app.post(&bulk(&a), token, json!({"action": "add", "member_ids": ids})).await.ok(200)["affected"], 5);
    assert_eq!(app.post(&bulk(&a), token, json!({"action": "add", "member_ids": ids})).await.ok(200)["affected"], 0);
    // Move two from A to B.
    let moved = app.post(&bulk(&a), token, json!({"action": "move", "member_ids": &ids[..2], "to_list_id": b})).await;
    assert_eq!(moved.ok(200)["affected"], 2);
    assert_eq!(member_ids_of(&app, token, &a).await, ids[2..]);
    assert_eq!(member_ids_of(&app, token, &b).await, ids[..2]);
    // Copy everyone of A to C; members named but not in A are not copied.
    let copied = app.post(&bulk(&a), token, json!({"action": "copy", "member_ids": ids, "to_list_id": c})).await;
    assert_eq!(copied.ok(200)["affected"], 3);
    assert_eq!(member_ids_of(&app, token, &c).await, ids[2..]);
    assert_eq!(member_ids_of(&app, token, &a).await, ids[2..]);
    let removed = app.post(&bulk(&c), token, json!({"action": "remove", "member_ids": ids})).await;
    assert_eq!(removed.ok(200)["affected"], 3);
    assert!(member_ids_of(&app, token, &c).await.is_empty());
    // Bad requests name the field.
    assert_eq!(
        app.post(&bulk(&a), token, json!({"action": "move", "member_ids": ids})).await.problem(422),
        ["to_list_id"]
    );
    assert_eq!(
        app.post(&bulk(&a), token, json!({"action": "move", "member_ids": ids, "to_list_id": "nope"}))
            .await
            .problem(422),
        ["to_list_id"]
    );
    assert_eq!(
        app.post(&bulk(&a), token, json!({"action": "shuffle", "member_ids": ids})).await.problem(422),
        ["action"]
    );
    assert_eq!(
        app.post(&bulk(&a), token, json!({"action": "add", "member_ids": []})).await.problem(422),
        ["member_ids"]
    );
}

async fn a_bulk_call_with_an_unknown_member_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Atomic School").await;
    let list = create_list(&app, &admin.access_token, "1年A組").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "佐藤"})).await;
    let answer = app
        .post(
            &format!("/api/v1/lists/{list}/members/bulk"),
            &admin.access_token,
            json!({"action": "add", "member_ids": [member, "unknown"]}),
        )
        .await;
    assert_eq!(answer.problem(422), ["member_ids[1]"]);
    assert!(member_ids_of(&app, &admin.access_token, &list).await.is_empty());
}

async fn api_keys_need_list_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Scope School").await;
    create_list(&app, &admin.access_token, "1年A組").await;
    let (_, reader) = app.create_api_key(&admin, json!({"name": "reader", "scopes": ["lists:read"]})).await;
    let (_, members_only) = app.create_api_key(&admin, json!({"name": "members", "scopes": ["members:write"]})).await;
    let listed = app.call(reqwest::Method::GET, "/api/v1/lists", Auth::ApiKey(&reader), None).await;
    assert_eq!(listed.ok(200)["items"].as_array().unwrap().len(), 1);
    app.call(reqwest::Method::POST, "/api/v1/lists", Auth::ApiKey(&reader), Some(json!({"name": "x"})))
        .await
        .problem(403);
    app.call(reqwest::Method::GET, "/api/v1/lists", Auth::ApiKey(&members_only), None).await.problem(403);
    // A viewer reads but does not write.
    let (_, viewer) = app.create_staff(&admin, "viewer").await;
    app.get("/api/v1/lists", &viewer).await.ok(200);
    app.post("/api/v1/lists", &viewer, json!({"name": "x"})).await.problem(403);
}

async fn another_organisations_lists_answer_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let school_a = app.create_admin("School A").await;
    let school_b = app.create_admin("School B").await;
    let list = create_list(&app, &school_a.access_token, "1年A組").await;
    let member_b = create_member(&app, &school_b.access_token, json!({"name": "B の保護者"})).await;
    let path = format!("/api/v1/lists/{list}");
    app.get(&path, &school_b.access_token).await.problem(404);
    app.patch(&path, &school_b.access_token, json!({"name": "x"})).await.problem(404);
    app.delete(&path, &school_b.access_token).await.problem(404);
    app.get(&format!("{path}/members"), &school_b.access_token).await.problem(404);
    // Nor can B put its member in A's list, nor name A's list for its member.
    app.call(reqwest::Method::PUT, &format!("{path}/members/{member_b}"), Auth::Bearer(&school_b.access_token), None)
        .await
        .problem(404);
    assert_eq!(
        app.post("/api/v1/members", &school_b.access_token, json!({"name": "x", "list_ids": [list]}))
            .await
            .problem(422),
        ["list_ids[0]"]
    );
    assert!(app.get("/api/v1/lists", &school_b.access_token).await.ok(200)["items"].as_array().unwrap().is_empty());
}

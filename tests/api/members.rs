use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    an_upsert_by_an_external_id_with_surrounding_spaces_finds_the_member_it_stored,
    a_guardian_is_stored_with_carrier_addresses_attributes_and_lists,
    addresses_are_masked_without_contacts_read,
    a_fifth_or_repeated_or_broken_address_is_refused_by_field,
    a_patch_changes_only_what_it_names,
    addresses_that_stay_keep_their_status,
    search_matches_japanese_text_partially_and_filters,
    search_by_address_needs_contacts_read,
    devices_are_registered_updated_moved_and_limited_to_four,
    status_moves_between_active_suspended_and_pending,
    an_integration_upserts_by_external_id,
    grades_are_promoted_in_one_call_without_cascading,
    another_organisations_members_answer_404,
    a_deleted_guardian_leaves_no_trace_in_lists_messages_or_search,
);

fn names(page: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn a_guardian_is_stored_with_carrier_addresses_attributes_and_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Roster School").await;
    let list = create_list(&app, &admin.access_token, "1年A組").await;
    let created = app
        .post(
            "/api/v1/members",
            &admin.access_token,
            json!({
                "name": "山田 花子", "name_kana": "ヤマダ ハナコ", "student_name": "山田 太郎", "relation": "母",
                "external_id": "S0001",
                "emails": ["hanako.yamada@Example.JP", "taro..papa@docomo.ne.jp", "yumi.@ezweb.ne.jp"],
                "attributes": {"grade": "1", "class": "A", "役職": "学級委員"},
                "list_ids": [list]
            }),
        )
        .await;
    let member = created.ok(201);
    assert_eq!(member["status"], "active");
    // The admin holds contacts:read, so addresses come back whole, domains lower-cased.
    assert_eq!(
        member["emails"],
        json!([
            {"address": "hanako.yamada@example.jp", "status": "active"},
            {"address": "taro..papa@docomo.ne.jp", "status": "active"},
            {"address": "yumi.@ezweb.ne.jp", "status": "active"},
        ])
    );
    assert_eq!(member["attributes"], json!({"class": "A", "grade": "1", "役職": "学級委員"}));
    assert_eq!(member["list_ids"], json!([list]));
    assert_eq!(member["student_name"], "山田 太郎");
    let again = app.post("/api/v1/members", &admin.access_token, json!({"name": "別人", "external_id": "S0001"})).await;
    assert_eq!(again.problem(409), ["external_id"]);
}

async fn addresses_are_masked_without_contacts_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Mask School").await;
    let id = create_member(
        &app,
        &admin.access_token,
        json!({"name": "髙橋 一郎", "emails": ["ichiro.takahashi@example.jp"]}),
    )
    .await;
    app.post(
        &format!("/api/v1/members/{id}/devices"),
        &admin.access_token,
        json!({"platform": "apns", "token": "f0e1d2c3b4a59687a1b2"}),
    )
    .await
    .ok(201);
    let (_, sender) = app.create_staff(&admin, "sender").await;
    let path = format!("/api/v1/members/{id}");
    let masked = app.get(&path, &sender).await;
    let masked = masked.ok(200);
    assert_eq!(masked["emails"][0]["address"], "i***@example.jp");
    assert_eq!(masked["devices"][0]["token"], "…a1b2");
    let listed = app.get("/api/v1/members", &sender).await;
    assert!(!listed.ok(200).to_string().contains("ichiro.takahashi"));
    // Staff without the permission cannot replace addresses they cannot see.
    app.patch(&path, &sender, json!({"emails": []})).await.problem(403);
    let full = app.get(&path, &admin.access_token).await;
    assert_eq!(full.ok(200)["emails"][0]["address"], "ichiro.takahashi@example.jp");
    assert_eq!(full.ok(200)["devices"][0]["token"], "f0e1d2c3b4a59687a1b2");
    // An API key sees addresses only with contacts:read.
    let (_, key) = app.create_api_key(&admin, json!({"name": "sis", "scopes": ["members:read"]})).await;
    let via_key = app.call(Method::GET, &path, Auth::ApiKey(&key), None).await;
    assert_eq!(via_key.ok(200)["emails"][0]["address"], "i***@example.jp");
    let (_, key) =
        app.create_api_key(&admin, json!({"name": "sis", "scopes": ["members:read", "contacts:read"]})).await;
    let via_key = app.call(Method::GET, &path, Auth::ApiKey(&key), None).await;
    assert_eq!(via_key.ok(200)["emails"][0]["address"], "ichiro.takahashi@example.jp");
}

async fn a_fifth_or_repeated_or_broken_address_is_refused_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Limit School").await;
    let five = json!({"name": "x", "emails": ["a@x.jp", "b@x.jp", "c@x.jp", "d@x.jp", "e@x.jp"]});
    assert_eq!(app.post("/api/v1/members", &admin.access_token, five).await.problem(422), ["emails[4]"]);
    let repeated = json!({"name": "鈴木 さくら", "emails": ["sakura.suzuki@example.jp", "Sakura.Suzuki@example.jp"]});
    assert_eq!(app.post("/api/v1/members", &admin.access_token, repeated).await.problem(422), ["emails[1]"]);
    let broken = json!({"name": "", "emails": ["kenta sato@example.jp"], "attributes": {"grade": "x".repeat(201)}});
    assert_eq!(
        app.post("/api/v1/members", &admin.access_token, broken).await.problem(422),
        ["name", "emails[0]", "attributes.grade"]
    );
    let unknown_list = json!({"name": "x", "list_ids": ["nope"]});
    assert_eq!(app.post("/api/v1/members", &admin.access_token, unknown_list).await.problem(422), ["list_ids[0]"]);
    let listed = app.get("/api/v1/members", &admin.access_token).await;
    assert!(listed.ok(200)["items"].as_array().unwrap().is_empty(), "nothing half-written");
    let id = create_member(
        &app,
        &admin.access_token,
        json!({"name": "x", "emails": ["a@x.jp", "b@x.jp", "c@x.jp", "d@x.jp"]}),
    )
    .await;
    let patch = json!({"emails": ["a@x.jp", "b@x.jp", "c@x.jp", "d@x.jp", "e@x.jp"]});
    assert_eq!(
        app.patch(&format!("/api/v1/members/{id}"), &admin.access_token, patch).await.problem(422),
        ["emails[4]"]
    );
}

async fn a_patch_changes_only_what_it_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Patch School").await;
    let list = create_list(&app, &admin.access_token, "1年A組").await;
    let id = create_member(
        &app,
        &admin.access_token,
        json!({"name": "中村 ①子", "relation": "母", "emails": ["ichiko@example.jp"], "attributes": {"grade": "6", "class": "A"}, "list_ids": [list]}),
    )
    .await;
    let path = format!("/api/v1/members/{id}");
    let patched = app
        .patch(
            &path,
            &admin.access_token,
            json!({"relation": "", "attributes": {"class": "B", "grade": null, "club": "陸上部"}}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["name"], "中村 ①子");
    assert!(patched["relation"].is_null());
    assert_eq!(patched["attributes"], json!({"class": "B", "club": "陸上部"}));
    assert_eq!(patched["emails"][0]["address"], "ichiko@example.jp");
    assert_eq!(patched["list_ids"], json!([list]));
    let cleared = app.patch(&path, &admin.access_token, json!({"list_ids": []})).await;
    assert_eq!(cleared.ok(200)["list_ids"], json!([]));
    assert_eq!(app.patch(&path, &admin.access_token, json!({"name": " "})).await.problem(422), ["name"]);
    assert_eq!(app.patch(&path, &admin.access_token, json!({"nmae": "x"})).await.problem(422), ["nmae"]);
}

async fn addresses_that_stay_keep_their_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Status School").await;
    let id = create_member(
        &app,
        &admin.access_token,
        json!({"name": "伊藤", "emails": ["ito@example.jp", "ito.work@example.jp"]}),
    )
    .await;
    // Delivery marks an address bounced (the messages issue does this through the same table).
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query(
        "UPDATE member_emails SET status = 'bounced', bounce_count = 2 WHERE address_key = 'ito.work@example.jp'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let patched = app
        .patch(
            &format!("/api/v1/members/{id}"),
            &admin.access_token,
            json!({"emails": ["ito.work@example.jp", "ito.new@example.jp"]}),
        )
        .await;
    assert_eq!(
        patched.ok(200)["emails"],
        json!([
            {"address": "ito.work@example.jp", "status": "bounced"},
            {"address": "ito.new@example.jp", "status": "active"},
        ])
    );
}

async fn search_matches_japanese_text_partially_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Search School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "サッカー部").await;
    create_member(&app, token, json!({"name": "山田 花子", "name_kana": "ヤマダ ハナコ", "attributes": {"grade": "1", "class": "A", "club": "サッカー部"}, "list_ids": [list]})).await;
    create_member(
        &app,
        token,
        json!({"name": "山﨑 由美", "name_kana": "ヤマザキ ユミ", "attributes": {"grade": "2", "class": "B"}}),
    )
    .await;
    let suspended = create_member(
        &app,
        token,
        json!({"name": "髙橋 一郎", "attributes": {"grade": "1", "class": "B"}, "external_id": "S0002"}),
    )
    .await;
    app.post(&format!("/api/v1/members/{suspended}/suspend"), token, json!({})).await.ok(200);
    let search = |query: &str| format!("/api/v1/members?{query}");
    assert_eq!(names(app.get(&search("q=山"), token).await.ok(200)), ["山田 花子", "山﨑 由美"]);
    assert_eq!(names(app.get(&search("q=ヤマザ"), token).await.ok(200)), ["山﨑 由美"]);
    assert_eq!(names(app.get(&search("q=サッカー"), token).await.ok(200)), ["山田 花子"]);
    assert_eq!(names(app.get(&search("q=s0002"), token).await.ok(200)), ["髙橋 一郎"]);
    assert_eq!(
        names(app.get(&search("q=%25"), token).await.ok(200)),
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(names(app.get(&search(&format!("list_id={list}")), token).await.ok(200)), ["山田 花子"]);
    assert_eq!(names(app.get(&search("status=suspended"), token).await.ok(200)), ["髙橋 一郎"]);
    assert_eq!(names(app.get(&search("attr.grade=1"), token).await.ok(200)), ["山田 花子", "髙橋 一郎"]);
    assert_eq!(names(app.get(&search("attr.grade=1&attr.class=B"), token).await.ok(200)), ["髙橋 一郎"]);
    assert_eq!(app.get(&search("grade=1"), token).await.problem(422), ["grade"]);
    assert_eq!(app.get(&search("status=gone"), token).await.problem(422), ["status"]);
    assert_eq!(app.get(&search("limit=x"), token).await.problem(422), ["limit"]);
    // Pagination with a filter walks every match once.
    for i in 0..5 {
        create_member(&app, token, json!({"name": format!("田中 {i}"), "attributes": {"grade": "3"}})).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&search(&format!("attr.grade=3&limit=2{cursor}")), token).await;
        let page = page.ok(200).clone();
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["田中 0", "田中 1", "田中 2", "田中 3", "田中 4"]);
}

async fn search_by_address_needs_contacts_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Privacy School").await;
    create_member(&app, &admin.access_token, json!({"name": "小林", "emails": ["kobayashi@example.jp"]})).await;
    assert_eq!(names(app.get("/api/v1/members?q=kobayashi@", &admin.access_token).await.ok(200)), ["小林"]);
    let (_, sender) = app.create_staff(&admin, "sender").await;
    // Otherwise the search would reveal addresses one character at a time.
    assert!(names(app.get("/api/v1/members?q=kobayashi@", &sender).await.ok(200)).is_empty());
}

async fn devices_are_registered_updated_moved_and_limited_to_four(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Device School").await;
    let token = &admin.access_token;
    let first = create_member(&app, token, json!({"name": "一人目"})).await;
    let second = create_member(&app, token, json!({"name": "二人目"})).await;
    let devices = |id: &str| format!("/api/v1/members/{id}/devices");
    let device = app
        .post(&devices(&first), token, json!({"platform": "apns", "token": "aaaa1111", "app_id": "jp.renrakumo.app"}))
        .await;
    let device_id = device.ok(201)["id"].as_str().unwrap().to_string();
    // The same token again updates, not duplicates.
    let again = app
        .post(&devices(&first), token, json!({"platform": "apns", "token": "aaaa1111", "app_id": "jp.renrakumo.app2"}))
        .await;
    assert_eq!(again.ok(201)["id"], device_id.as_str());
    let listed = app.get(&devices(&first), token).await;
    assert_eq!(listed.ok(200).as_array().unwrap().len(), 1);
    assert_eq!(listed.ok(200)[0]["app_id"], "jp.renrakumo.app2");
    // The phone changes hands: registering it for the second member moves it.
    app.post(&devices(&second), token, json!({"platform": "apns", "token": "aaaa1111"})).await.ok(201);
    assert!(app.get(&devices(&first), token).await.ok(200).as_array().unwrap().is_empty());
    for i in 0..3 {
        app.post(&devices(&second), token, json!({"platform": "fcm", "token": format!("fcm-token-{i}")})).await.ok(201);
    }
    let fifth = app.post(&devices(&second), token, json!({"platform": "fcm", "token": "fcm-token-9"})).await;
    assert_eq!(fifth.problem(409), ["devices"]);
    // Re-registering one of the four is still fine.
    app.post(&devices(&second), token, json!({"platform": "fcm", "token": "fcm-token-0"})).await.ok(201);
    assert_eq!(
        app.post(&devices(&second), token, json!({"platform": "sms", "token": "x"})).await.problem(422),
        ["platform"]
    );
    assert_eq!(
        app.post(&devices(&second), token, json!({"platform": "fcm", "token": "has space"})).await.problem(422),
        ["token"]
    );
    let moved_id = app.get(&devices(&second), token).await.ok(200)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.delete(&format!("/api/v1/members/{second}/devices/{moved_id}"), token).await.status, 204);
    assert_eq!(app.get(&devices(&second), token).await.ok(200).as_array().unwrap().len(), 3);
    app.delete(&format!("/api/v1/members/{first}/devices/{moved_id}"), token).await.problem(404);
}

async fn status_moves_between_active_suspended_and_pending(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Status School").await;
    let token = &admin.access_token;
    let id = create_member(&app, token, json!({"name": "佐藤 ｹﾝﾀ"})).await;
    let action = |verb: &str| format!("/api/v1/members/{id}/{verb}");
    assert_eq!(app.post(&action("suspend"), token, json!({})).await.ok(200)["status"], "suspended");
    assert_eq!(app.post(&action("suspend"), token, json!({})).await.ok(200)["status"], "suspended", "idempotent");
    assert_eq!(app.post(&action("approve"), token, json!({})).await.problem(409), ["status"]);
    assert_eq!(app.post(&action("resume"), token, json!({})).await.ok(200)["status"], "active");
    // A self-registered guardian waits for approval.
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE members SET status = 'pending' WHERE id = $1").bind(&id).execute(&mut *conn).await.unwrap();
    assert_eq!(app.post(&action("resume"), token, json!({})).await.problem(409), ["status"]);
    assert_eq!(app.post(&action("approve"), token, json!({})).await.ok(200)["status"], "active");
    let (_, viewer) = app.create_staff(&admin, "viewer").await;
    app.post(&action("suspend"), &viewer, json!({})).await.problem(403);
}

async fn an_integration_upserts_by_external_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Sync School").await;
    let list = create_list(&app, &admin.access_token, "1年A組").await;
    let (_, key) =
        app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["members:write", "members:read"]})).await;
    let body = json!({"name": "鈴木 さくら", "emails": ["sakura.suzuki@example.jp"], "attributes": {"grade": "4"}, "list_ids": [list]});
    let path = "/api/v1/members/by-external-id/S0008";
    let created = app.call(Method::PUT, path, Auth::ApiKey(&key), Some(body.clone())).await;
    assert_eq!(created.ok(201)["external_id"], "S0008");
    let id = created.body["id"].clone();
    // The key lacks contacts:read: the guardian's addresses are no longer its to give.
    let same = app.call(Method::PUT, path, Auth::ApiKey(&key), Some(body.clone())).await;
    same.problem(403);
    let (_, full_key) = app
        .create_api_key(&admin, json!({"name": "SIS+", "scopes": ["members:write", "members:read", "contacts:read"]}))
        .await;
    let same = app.call(Method::PUT, path, Auth::ApiKey(&full_key), Some(body)).await;
    assert_eq!(same.ok(200)["id"], id, "the same call again changes nothing");
    let changed = app
        .call(Method::PUT, path, Auth::ApiKey(&key), Some(json!({"name": "鈴木 さくら", "attributes": {"grade": "5"}})))
        .await;
    let changed = changed.ok(200);
    assert_eq!(changed["attributes"], json!({"grade": "5"}));
    assert_eq!(changed["list_ids"], json!([list]), "lists stay when list_ids is absent");
    let all = app.get("/api/v1/members", &admin.access_token).await;
    assert_eq!(all.ok(200)["items"].as_array().unwrap().len(), 1);
    let (_, reader) = app.create_api_key(&admin, json!({"name": "ro", "scopes": ["members:read"]})).await;
    app.call(Method::PUT, path, Auth::ApiKey(&reader), Some(json!({"name": "x"}))).await.problem(403);
}

async fn an_upsert_by_an_external_id_with_surrounding_spaces_finds_the_member_it_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Sync School").await;
    let (_, key) = app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["members:write"]})).await;
    let body = json!({"name": "鈴木 さくら"});
    // The id is stored trimmed ("S0009"); the same call again must find it, not collide with it.
    let path = "/api/v1/members/by-external-id/%20S0009%20";
    let created = app.call(Method::PUT, path, Auth::ApiKey(&key), Some(body.clone())).await;
    assert_eq!(created.ok(201)["external_id"], "S0009");
    let again = app.call(Method::PUT, path, Auth::ApiKey(&key), Some(body.clone())).await;
    assert_eq!(again.ok(200)["id"], created.body["id"]);
    // A blank id names no member: refused, and nothing is created.
    let blank = app.call(Method::PUT, "/api/v1/members/by-external-id/%20", Auth::ApiKey(&key), Some(body)).await;
    assert_eq!(blank.problem(422), ["external_id"]);
    let all = app.get("/api/v1/members", &admin.access_token).await;
    assert_eq!(all.ok(200)["items"].as_array().unwrap().len(), 1);
}

async fn grades_are_promoted_in_one_call_without_cascading(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Promotion School").await;
    let token = &admin.access_token;
    for (name, grade) in [("一年生の親", "1"), ("二年生の親", "2"), ("六年生の親", "6"), ("もう一人の一年生の親", "1")]
    {
        create_member(&app, token, json!({"name": name, "attributes": {"grade": grade, "class": "A"}})).await;
    }
    let changes = json!({"1": "2", "2": "3", "6": null});
    let dry = app
        .post("/api/v1/members/promote", token, json!({"attribute": "grade", "changes": changes, "dry_run": true}))
        .await;
    assert_eq!(dry.ok(200)["matched"], json!({"1": 2, "2": 1, "6": 1}));
    assert_eq!(dry.ok(200)["total"], 4);
    assert_eq!(
        names(app.get("/api/v1/members?attr.grade=1", token).await.ok(200)).len(),
        2,
        "a dry run changes nothing"
    );
    app.post("/api/v1/members/promote", token, json!({"attribute": "grade", "changes": changes})).await.ok(200);
    assert_eq!(
        names(app.get("/api/v1/members?attr.grade=2", token).await.ok(200)),
        ["もう一人の一年生の親", "一年生の親"]
    );
    assert_eq!(names(app.get("/api/v1/members?attr.grade=3", token).await.ok(200)), ["二年生の親"]);
    let graduate = app.get("/api/v1/members?q=六年生", token).await;
    assert_eq!(graduate.ok(200)["items"][0]["attributes"], json!({"class": "A"}));
    assert_eq!(
        app.post("/api/v1/members/promote", token, json!({"attribute": "", "changes": {"1": "2"}})).await.problem(422),
        ["attribute"]
    );
    assert_eq!(
        app.post("/api/v1/members/promote", token, json!({"attribute": "grade", "changes": {}})).await.problem(422),
        ["changes"]
    );
}

async fn another_organisations_members_answer_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let school_a = app.create_admin("School A").await;
    let school_b = app.create_admin("School B").await;
    let id = create_member(&app, &school_a.access_token, json!({"name": "A の保護者", "external_id": "S1"})).await;
    let path = format!("/api/v1/members/{id}");
    let b = &school_b.access_token;
    app.get(&path, b).await.problem(404);
    app.patch(&path, b, json!({"name": "x"})).await.problem(404);
    app.post(&format!("{path}/suspend"), b, json!({})).await.problem(404);
    app.post(&format!("{path}/devices"), b, json!({"platform": "fcm", "token": "t"})).await.problem(404);
    app.delete(&path, b).await.problem(404);
    assert!(app.get("/api/v1/members?q=保護者", b).await.ok(200)["items"].as_array().unwrap().is_empty());
    // The same external id is free in another organisation.
    app.call(Method::PUT, "/api/v1/members/by-external-id/S1", Auth::Bearer(b), Some(json!({"name": "B の保護者"})))
        .await
        .ok(201);
    assert_eq!(app.get(&path, &school_a.access_token).await.ok(200)["name"], "A の保護者");
}

async fn a_deleted_guardian_leaves_no_trace_in_lists_messages_or_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Deletion School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    let leaving = create_member(
        &app,
        token,
        json!({"name": "転出 する", "emails": ["leaving@example.jp"], "attributes": {"grade": "1"}, "list_ids": [list]}),
    )
    .await;
    let staying = create_member(
        &app,
        token,
        json!({"name": "在籍 する", "emails": ["staying@example.jp"], "attributes": {"grade": "2"}, "list_ids": [list]}),
    )
    .await;
    let message = app
        .post(
            "/api/v1/messages",
            token,
            json!({"subject": "保護者会", "body": "来週です。", "targets": {"list_ids": [list]}, "channels": ["email"]}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(&format!("/api/v1/messages/{message}/send"), token, json!({})).await.ok(202);
    assert_eq!(app.deliver_all().await, 2);
    let link = app.state.jwt.receipt_token(&message, &leaving).unwrap();
    app.call(Method::GET, &format!("/api/v1/receipts/{link}"), Auth::None, None).await.ok(200);

    assert_eq!(app.delete(&format!("/api/v1/members/{leaving}"), token).await.status, 204);
    app.get(&format!("/api/v1/members/{leaving}"), token).await.problem(404);
    assert_eq!(app.get(&format!("/api/v1/lists/{list}"), token).await.ok(200)["member_count"], 1);
    let recipients = app.get(&format!("/api/v1/messages/{message}/recipients"), token).await;
    let recipients: Vec<&str> =
        recipients.ok(200)["items"].as_array().unwrap().iter().map(|r| r["member_id"].as_str().unwrap()).collect();
    assert_eq!(recipients, [staying.as_str()]);
    app.call(Method::GET, &format!("/api/v1/receipts/{link}"), Auth::None, None).await.problem(404);
    assert!(names(app.get("/api/v1/members?q=leaving", token).await.ok(200)).is_empty());
    let promotion = json!({"attribute": "grade", "changes": {"1": "2"}, "dry_run": true});
    assert_eq!(app.post("/api/v1/members/promote", token, promotion).await.ok(200)["total"], 0);
    // The address is free again: a new guardian may take it.
    create_member(&app, token, json!({"name": "新しい 保護者", "emails": ["leaving@example.jp"]})).await;
    app.delete(&format!("/api/v1/members/{leaving}"), token).await.problem(404);
    app.assert_queue_empty().await;
}

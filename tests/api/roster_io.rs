use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::create_list;
use crate::on_both_backends;

on_both_backends!(
    an_excel_shift_jis_roster_is_refused_whole_with_every_bad_row_named,
    a_partial_import_takes_the_valid_rows_and_creates_lists,
    utf8_with_bom_imports_the_same_as_shift_jis,
    a_dry_run_counts_and_writes_nothing,
    a_second_import_updates_by_external_id_and_first_address,
    file_level_problems_are_named,
    export_is_excel_ready_and_masks_without_contacts_read,
    an_exported_file_imports_back_unchanged,
    a_large_import_matches_against_the_whole_roster,
    a_hostile_csv_is_refused_at_once_naming_the_header_or_the_cell,
    without_contacts_read_an_import_neither_tells_nor_changes_addresses,
    without_contacts_read_an_upsert_neither_tells_nor_changes_addresses,
);

const SJIS: &[u8] = include_bytes!("../fixtures/roster-excel-sjis.csv");
const UTF8_BOM: &[u8] = include_bytes!("../fixtures/roster-utf8-bom.csv");

pub async fn import(app: &TestApp, token: &str, query: &str, body: &[u8]) -> Reply {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/members/import{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

fn line_fields(answer: &Reply) -> Vec<(u64, String)> {
    answer.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap().to_string()))
        .collect()
}

async fn members(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/members?limit=200{query}"), token).await.ok(200)["items"].as_array().unwrap().clone()
}

async fn an_excel_shift_jis_roster_is_refused_whole_with_every_bad_row_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Import School").await;
    let answer = import(&app, &admin.access_token, "", SJIS).await;
    answer.problem(422);
    // Line 6: an address with a space; line 8: no guardian name; line 9: a repeated address.
    assert_eq!(line_fields(&answer), [(6, "email2".to_string()), (8, "name".to_string()), (9, "email2".to_string())]);
    assert!(members(&app, &admin.access_token, "").await.is_empty(), "nothing is written");
    assert!(app.get("/api/v1/lists", &admin.access_token).await.ok(200)["items"].as_array().unwrap().is_empty());
}

async fn a_partial_import_takes_the_valid_rows_and_creates_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Partial School").await;
    let token = &admin.access_token;
    let existing = create_list(&app, token, "1年A組").await;
    let answer = import(&app, token, "?partial=true", SJIS).await;
    let report = answer.ok(200);
    assert_eq!(report["created"], 6);
    assert_eq!(report["updated"], 0);
    assert_eq!(report["encoding"], "Shift_JIS");
    assert_eq!(line_fields(&answer).len(), 3);
    assert_eq!(report["lists_created"], json!(["2年B組", "3年C組", "5年B組", "6年A組", "サッカー部", "吹奏楽部"]));
    let yamada = &members(&app, token, "&q=山田").await[0];
    assert_eq!(yamada["name_kana"], "ヤマダ ハナコ");
    assert_eq!(yamada["emails"][1]["address"], "taro..papa@docomo.ne.jp");
    assert_eq!(yamada["attributes"], json!({"class": "A", "club": "サッカー部", "grade": "1", "route": "北ルート"}));
    assert_eq!(yamada["list_ids"].as_array().unwrap().len(), 2);
    assert!(yamada["list_ids"].as_array().unwrap().contains(&json!(existing)), "joins the existing list by name");
    let cp932 = members(&app, token, "&q=髙橋").await;
    assert_eq!(cp932[0]["student_name"], "髙橋 美咲");
    assert_eq!(members(&app, token, "&q=ｹﾝﾀ").await.len(), 0, "line 6 was invalid");
    let watanabe = &members(&app, token, "&q=渡邊").await[0];
    assert_eq!(watanabe["emails"], json!([]), "a guardian reachable only through the app");
    let formula = &members(&app, token, "&q=S0009").await[0];
    assert_eq!(formula["name"], "=HYPERLINK(\"http://x\")", "kept as text");
}

async fn utf8_with_bom_imports_the_same_as_shift_jis(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Encoding School").await;
    let sjis = import(&app, &admin.access_token, "?dry_run=true", SJIS).await;
    let utf8 = import(&app, &admin.access_token, "?dry_run=true", UTF8_BOM).await;
    assert_eq!(utf8.ok(200)["encoding"], "UTF-8");
    for key in ["created", "errors", "lists_created"] {
        assert_eq!(sjis.body[key], utf8.body[key], "{key}");
    }
}

async fn a_dry_run_counts_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Dry School").await;
    let answer = import(&app, &admin.access_token, "?dry_run=true", SJIS).await;
    let report = answer.ok(200);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["created"], 6);
    assert_eq!(report["errors"].as_array().unwrap().len(), 3);
    assert!(members(&app, &admin.access_token, "").await.is_empty());
}

async fn a_second_import_updates_by_external_id_and_first_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Update School").await;
    let token = &admin.access_token;
    let first = "name,email1,grade,external_id\n山田 花子,hanako@example.jp,1,S0001\n鈴木 一郎,ichiro@example.jp,2,\n";
    assert_eq!(import(&app, token, "", first.as_bytes()).await.ok(200)["created"], 2);
    let again = import(&app, token, "", first.as_bytes()).await;
    assert_eq!((again.body["created"].clone(), again.body["unchanged"].clone()), (json!(0), json!(2)));
    // The same guardians a year later: found by external id, and by first address.
    let second = "name,email1,grade,external_id\n山田 花子,hanako.new@example.jp,2,S0001\n鈴木 一郎,ICHIRO@example.jp,3,\n佐藤 新,arata@example.jp,1,S0010\n";
    let report = import(&app, token, "", second.as_bytes()).await;
    let report = report.ok(200);
    assert_eq!((report["created"].clone(), report["updated"].clone()), (json!(1), json!(2)));
    let all = members(&app, token, "").await;
    assert_eq!(all.len(), 3);
    let yamada = &members(&app, token, "&q=山田").await[0];
    assert_eq!(yamada["emails"][0]["address"], "hanako.new@example.jp");
    assert_eq!(yamada["attributes"]["grade"], "2");
    // Columns the file lacks keep their values; an empty cell clears.
    let third = "external_id,name,grade\nS0001,山田 花子,\n";
    import(&app, token, "", third.as_bytes()).await.ok(200);
    let yamada = &members(&app, token, "&q=山田").await[0];
    assert_eq!(yamada["emails"][0]["address"], "hanako.new@example.jp");
    assert!(yamada["attributes"].get("grade").is_none());
    // Two rows for one guardian in one file: the second is refused.
    let twice = "name,external_id\nA,S0001\nB,S0001\n";
    assert_eq!(line_fields(&import(&app, token, "", twice.as_bytes()).await), [(3, "external_id".to_string())]);
}

async fn file_level_problems_are_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("File School").await;
    let token = &admin.access_token;
    let fifth = import(&app, token, "", b"name,email1,email5\nx,a@x.jp,b@x.jp\n").await;
    assert_eq!(fifth.problem(422), ["email5"]);
    assert_eq!(import(&app, token, "", b"email1\na@x.jp\n").await.problem(422), ["name"]);
    assert_eq!(import(&app, token, "", b"").await.problem(422), ["header"]);
    assert_eq!(import(&app, token, "?list_id=nope", b"name\nx\n").await.problem(422), ["list_id"]);
    assert_eq!(import(&app, token, "", &[0x82, 0xa0, 0xff, 0xff, 0x81]).await.problem(422), ["body"]);
    let mut big = b"name\n".to_vec();
    for i in 0..50_001 {
        big.extend(format!("guardian {i}\n").as_bytes());
    }
    assert_eq!(import(&app, token, "", &big).await.problem(413), ["rows"]);
    let huge = vec![b'a'; 10 * 1024 * 1024 + 1];
    assert_eq!(import(&app, token, "", &huge).await.problem(413), ["body"]);
    let json = app.call(Method::POST, "/api/v1/members/import", Auth::Bearer(token), Some(json!({"name": "x"}))).await;
    json.problem(415);
}

async fn export(app: &TestApp, auth: Auth<'_>) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let request = app.client.get(app.url("/api/v1/members/export"));
    let request = match auth {
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::ApiKey(key) => request.header("X-API-Key", key),
        Auth::None => request,
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

async fn export_is_excel_ready_and_masks_without_contacts_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Export School").await;
    import(&app, &admin.access_token, "?partial=true", SJIS).await.ok(200);
    let (headers, body) = export(&app, Auth::Bearer(&admin.access_token)).await;
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(body.starts_with("\u{feff}".as_bytes()), "UTF-8 with BOM for Excel");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "name,name_kana,student_name,relation,email1,email2,email3,email4,grade,class,club,route,external_id,lists"
    );
    assert!(text.contains("taro..papa@docomo.ne.jp"));
    assert!(text.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "formula neutralised: {text}");
    assert!(text.contains("1年A組;サッカー部"));
    let (_, sender) = app.create_staff(&admin, "sender").await;
    let (_, masked) = export(&app, Auth::Bearer(&sender)).await;
    let masked = String::from_utf8(masked).unwrap();
    assert!(!masked.contains("hanako.yamada@"), "addresses masked without contacts:read");
    assert!(masked.contains("h***@example.jp"));
    // The masked file imported into another organisation (as new guardians): the masks are
    // refused, not stored as addresses that reach nobody.
    let other = app.create_admin("Another School").await;
    let answer = import(&app, &other.access_token, "?dry_run=true", masked.as_bytes()).await;
    let errors = answer.ok(200)["errors"].as_array().unwrap().clone();
    assert!(!errors.is_empty(), "{}", answer.body);
    assert!(
        errors.iter().all(|e| e["field"].as_str().unwrap().starts_with("email")
            && e["message"].as_str().unwrap().contains("masked address")),
        "{}",
        answer.body
    );
}

async fn an_exported_file_imports_back_unchanged(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Round School").await;
    import(&app, &admin.access_token, "?partial=true", SJIS).await.ok(200);
    // An attribute name is the roster's own text, and may look like a formula.
    let member = json!({"name": "式", "external_id": "F-1", "attributes": {"=SUM(A1:A9)": "x"}});
    app.post("/api/v1/members", &admin.access_token, member).await.ok(201);
    let (_, body) = export(&app, Auth::Bearer(&admin.access_token)).await;
    let header = String::from_utf8(body[3..].to_vec()).unwrap().lines().next().unwrap().to_string();
    assert!(header.ends_with(",'=SUM(A1:A9)"), "the attribute's column is neutralised: {header}");
    let again = import(&app, &admin.access_token, "", &body).await;
    let report = again.ok(200);
    assert_eq!(
        (report["created"].clone(), report["updated"].clone(), report["unchanged"].clone()),
        (json!(0), json!(0), json!(7))
    );
}

/// From 2,000 rows on the import reads the whole roster instead of looking rows up: the
/// same matching (external id, else first address), counts and memberships.
async fn a_large_import_matches_against_the_whole_roster(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Large School").await;
    let token = &admin.access_token;
    let existing = app
        .post(
            "/api/v1/members",
            token,
            json!({"name": "旧姓 十子", "external_id": "S00010", "emails": ["old10@example.jp"]}),
        )
        .await
        .ok(201)["id"]
        .clone();
    let by_address = app
        .post("/api/v1/members", token, json!({"name": "旧姓 十一", "emails": ["g11@example.jp"]}))
        .await
        .ok(201)["id"]
        .clone();
    let roster = |promoted: bool| {
        let mut csv = String::from("name,email1,grade,class,external_id,lists\n");
        for i in 0..2_500 {
            let grade = if promoted && i % 5 == 0 { 2 } else { 1 };
            let external_id = if i % 2 == 0 { format!("S{i:05}") } else { String::new() };
            csv.push_str(&format!("保護者 {i},g{i}@example.jp,{grade},A,{external_id},{grade}年A組\n"));
        }
        csv
    };
    let first = import(&app, token, "", roster(false).as_bytes()).await;
    let first = first.ok(200);
    assert_eq!((first["created"].clone(), first["updated"].clone()), (json!(2_498), json!(2)));
    let again = import(&app, token, "", roster(false).as_bytes()).await;
    assert_eq!(again.ok(200)["unchanged"], 2_500);
    let promoted = import(&app, token, "", roster(true).as_bytes()).await;
    let promoted = promoted.ok(200);
    assert_eq!((promoted["updated"].clone(), promoted["unchanged"].clone()), (json!(500), json!(2_000)));
    assert_eq!(promoted["lists_created"], json!(["2年A組"]));

    let found = app.get(&format!("/api/v1/members/{}", existing.as_str().unwrap()), token).await;
    let found = found.ok(200);
    assert_eq!((found["name"].clone(), found["attributes"]["grade"].clone()), (json!("保護者 10"), json!("2")));
    assert_eq!(found["emails"].as_array().unwrap().len(), 1);
    assert_eq!(found["emails"][0]["address"], "g10@example.jp");
    let found = app.get(&format!("/api/v1/members/{}", by_address.as_str().unwrap()), token).await;
    assert_eq!(found.ok(200)["name"], "保護者 11", "matched by its first address");
    let lists = app.get("/api/v1/lists", token).await;
    let counts: Vec<(Value, Value)> = lists.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].clone(), l["member_count"].clone()))
        .collect();
    // Promoted guardians join 2年A組 and stay in 1年A組: an import adds memberships only.
    assert_eq!(counts.len(), 2);
    assert!(counts.contains(&(json!("1年A組"), json!(2_500))), "{counts:?}");
    assert!(counts.contains(&(json!("2年A組"), json!(500))), "{counts:?}");
}

/// The shapes that once held gigabytes: a header of 20,000 columns above 50,000 one-cell
/// rows (every row was padded to the header's width), one huge cell, a row of 100,000
/// cells. Each is refused by the reader's limits, naming where.
async fn a_hostile_csv_is_refused_at_once_naming_the_header_or_the_cell(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Hostile School").await;
    let (_, sender) = app.create_staff(&admin, "sender").await;
    let mut wide = String::from("name");
    for i in 0..20_000 {
        wide.push_str(&format!(",c{i}"));
    }
    wide.push('\n');
    wide.push_str(&"x\n".repeat(50_000));
    let answer = import(&app, &sender, "?dry_run=true", wide.as_bytes()).await;
    assert_eq!(answer.problem(422), ["header"]);
    assert_eq!(answer.body["errors"][0]["line"], 1);
    assert!(answer.body["errors"][0]["message"].as_str().unwrap().contains("at most 44 columns"), "{}", answer.body);

    let huge_cell = format!("name,grade\n山田,1\n佐藤,\"{}\"\n", "9".repeat(5 * 1024 * 1024));
    let answer = import(&app, &sender, "?dry_run=true", huge_cell.as_bytes()).await;
    assert_eq!(answer.problem(422), ["grade"]);
    assert_eq!(answer.body["errors"][0]["line"], 3);

    let wide_row = format!("name,grade\n山田,1{}\n", ",".repeat(100_000));
    let answer = import(&app, &sender, "?partial=true", wide_row.as_bytes()).await;
    assert_eq!(answer.problem(422), ["row"]);
    assert_eq!(answer.body["errors"][0]["line"], 2);
    assert!(members(&app, &admin.access_token, "").await.is_empty(), "nothing is written");
}

/// The answer as a caller compares two of them: the status and the body, less the request's
/// own id.
fn comparable(reply: &Reply) -> (u16, Value) {
    let mut body = reply.body.clone();
    if let Some(body) = body.as_object_mut() {
        body.remove("instance");
        body.remove("request_id");
    }
    (reply.status.as_u16(), body)
}

/// A sender (no contacts:read) guesses a guardian's address, rightly and wrongly, in every
/// way an import takes it: the answers must not differ, and the addresses must not change.
async fn without_contacts_read_an_import_neither_tells_nor_changes_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Oracle School").await;
    let token = &admin.access_token;
    let taro = app
        .post(
            "/api/v1/members",
            token,
            json!({"name": "山田 太郎", "external_id": "S1", "emails": ["taro@example.jp"]}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hanako =
        app.post("/api/v1/members", token, json!({"name": "佐藤 花子", "emails": ["hanako@example.jp"]})).await.ok(201)
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let (_, sender) = app.create_staff(&admin, "sender").await;

    let files = |guess: &str| {
        [
            // Matched by the first address?
            format!("name,email1\n佐藤 花子,{guess}\n"),
            format!("name,email1,grade\n佐藤 花子,{guess},1\n別の 人,{guess},2\n"),
            // Confirmed, replaced or added to an existing guardian's addresses?
            format!("name,email1,external_id\n山田 太郎,{guess},S1\n"),
            format!("name,email2,external_id\n山田 太郎,{guess},S1\n"),
            format!("name,email1,email2,external_id\n山田 太郎,t***@example.jp,{guess},S1\n"),
        ]
    };
    for query in ["?dry_run=true", "?dry_run=true&partial=true", "", "?partial=true"] {
        for (right, wrong) in files("hanako@example.jp").iter().zip(files("nobody@example.jp")) {
            let right_answer = import(&app, &sender, query, right.as_bytes()).await;
            let wrong_answer = import(&app, &sender, query, wrong.as_bytes()).await;
            assert_eq!(comparable(&right_answer), comparable(&wrong_answer), "{query}: {right}");
        }
        for (right, wrong) in files("taro@example.jp").iter().zip(files("nobody@example.jp")) {
            let right_answer = import(&app, &sender, query, right.as_bytes()).await;
            let wrong_answer = import(&app, &sender, query, wrong.as_bytes()).await;
            assert_eq!(comparable(&right_answer), comparable(&wrong_answer), "{query}: {right}");
        }
    }
    // A row with a guessed address is a new guardian, right or wrong.
    let answer = import(&app, &sender, "?dry_run=true", files("hanako@example.jp")[0].as_bytes()).await;
    assert_eq!((answer.ok(200)["created"].clone(), answer.body["updated"].clone()), (json!(1), json!(0)));
    // An existing guardian's address cells are refused unless as the sender sees them.
    let answer = import(&app, &sender, "", files("taro@example.jp")[2].as_bytes()).await;
    assert_eq!(answer.problem(422), ["email1"]);
    assert_eq!(answer.body["errors"][0]["message"], "changing a guardian's addresses needs the contacts:read scope");
    let as_shown = "name,email1,email2,external_id,grade\n山田 太郎,t***@example.jp,,S1,3\n";
    assert_eq!(import(&app, &sender, "", as_shown.as_bytes()).await.ok(200)["updated"], 1);

    // Nothing of theirs changed, and every guess above was refused or made someone new.
    let addresses = |member: Value| -> Vec<Value> {
        member["emails"].as_array().unwrap().iter().map(|e| e["address"].clone()).collect()
    };
    let stored = app.get(&format!("/api/v1/members/{taro}"), token).await.ok(200).clone();
    assert_eq!(addresses(stored.clone()), [json!("taro@example.jp")]);
    assert_eq!(stored["attributes"]["grade"], "3");
    let stored = app.get(&format!("/api/v1/members/{hanako}"), token).await.ok(200).clone();
    assert_eq!(addresses(stored.clone()), [json!("hanako@example.jp")]);
    assert!(stored["attributes"].get("grade").is_none(), "not matched by its address");

    // With contacts:read the import matches by address and changes addresses as before.
    let by_address = "name,email1,grade\n佐藤 花子,HANAKO@example.jp,4\n";
    assert_eq!(import(&app, token, "", by_address.as_bytes()).await.ok(200)["updated"], 1);
    let replaced = "name,email1,external_id\n山田 太郎,taro.new@example.jp,S1\n";
    assert_eq!(import(&app, token, "", replaced.as_bytes()).await.ok(200)["updated"], 1);
    let stored = app.get(&format!("/api/v1/members/{taro}"), token).await.ok(200).clone();
    assert_eq!(addresses(stored), [json!("taro.new@example.jp")]);
}

/// The same for `PUT /members/by-external-id/{id}`: right and wrong guesses answer the same,
/// and an existing guardian's addresses change only with contacts:read.
async fn without_contacts_read_an_upsert_neither_tells_nor_changes_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Upsert Oracle School").await;
    let path = "/api/v1/members/by-external-id/S1";
    let (_, key) =
        app.create_api_key(&admin, json!({"name": "SIS", "scopes": ["members:write", "members:read"]})).await;
    let (_, full_key) = app
        .create_api_key(&admin, json!({"name": "SIS+", "scopes": ["members:write", "members:read", "contacts:read"]}))
        .await;
    // Creating a new guardian with addresses tells nothing: it is allowed.
    let created = app
        .call(Method::PUT, path, Auth::ApiKey(&key), Some(json!({"name": "山田 太郎", "emails": ["taro@example.jp"]})))
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_string();
    for emails in [json!(["taro@example.jp"]), json!(["taro@example.jp", "new@example.jp"]), json!([])] {
        let right =
            app.call(Method::PUT, path, Auth::ApiKey(&key), Some(json!({"name": "山田 太郎", "emails": emails}))).await;
        let wrong = app
            .call(
                Method::PUT,
                path,
                Auth::ApiKey(&key),
                Some(json!({"name": "山田 太郎", "emails": ["nobody@example.jp"]})),
            )
            .await;
        assert_eq!(right.problem(403), Vec::<String>::new());
        assert_eq!(comparable(&right), comparable(&wrong), "{emails}");
        assert_eq!(right.body["detail"], "changing addresses needs the contacts:read scope");
    }
    // As the key sees them (masked), or left out: the addresses stay.
    let shown = app
        .call(
            Method::PUT,
            path,
            Auth::ApiKey(&key),
            Some(json!({"name": "山田 太郎", "emails": ["t***@example.jp"], "attributes": {"grade": "2"}})),
        )
        .await;
    assert_eq!(shown.ok(200)["attributes"]["grade"], "2");
    let left_out = app.call(Method::PUT, path, Auth::ApiKey(&key), Some(json!({"name": "山田 太郎"}))).await;
    left_out.ok(200);
    let stored = app.get(&format!("/api/v1/members/{id}"), &admin.access_token).await;
    assert_eq!(stored.ok(200)["emails"][0]["address"], "taro@example.jp");
    assert_eq!(stored.body["emails"].as_array().unwrap().len(), 1);
    // With contacts:read the upsert replaces them.
    let replaced = app
        .call(
            Method::PUT,
            path,
            Auth::ApiKey(&full_key),
            Some(json!({"name": "山田 太郎", "emails": ["taro.new@example.jp"]})),
        )
        .await;
    assert_eq!(replaced.ok(200)["emails"][0]["address"], "taro.new@example.jp");
}

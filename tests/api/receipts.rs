use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    a_guardian_reads_acknowledges_and_answers_from_the_link_in_the_email,
    forged_altered_and_foreign_links_answer_404,
    answers_are_checked_replaced_and_closed_at_the_deadline,
    one_acknowledgement_covers_every_address_and_repeats_harmlessly,
    form_posts_from_elsewhere_are_refused,
    a_slow_form_post_holds_up_no_one_else,
    results_count_latest_answers_once_and_export_to_csv,
    a_resend_reaches_only_those_who_have_not_answered,
    a_reminder_goes_once_to_those_who_have_not_acknowledged,
    the_app_inbox_reads_acknowledges_and_answers,
    acknowledgements_arriving_together_are_each_answered_and_stored,
    links_stay_under_a_public_url_with_a_path,
);

fn survey() -> Value {
    json!({"questions": [
        {"text": "出欠", "kind": "single", "options": ["出席", "欠席"], "required": true},
        {"text": "手伝える係", "kind": "multiple", "options": ["受付", "片付け", "撮影"]},
        {"text": "連絡事項", "kind": "text"}
    ]})
}

/// Sends a message with the survey to the members; returns its id.
async fn send_survey(app: &TestApp, token: &str, members: &[&str], extra: Value) -> String {
    let mut body = json!({"subject": "授業参観の出欠", "body": "10月1日に授業参観を行います。", "from_name": "1年A組 担任",
        "answer_required": true, "survey": survey(), "targets": {"member_ids": members}, "channels": ["email"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let id = app.post("/api/v1/messages", token, body).await.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{id}/send"), token, json!({})).await.ok(202);
    id
}

fn link_token(app: &TestApp, message_id: &str, member_id: &str) -> String {
    app.state.jwt.receipt_token(message_id, member_id).unwrap()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..start + 32].to_string()
}

async fn page(app: &TestApp, token: &str) -> (u16, String) {
    let response = app.client.get(app.url(&format!("/r/{token}"))).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).form(form);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request.send().await.unwrap()
}

async fn put_answers(app: &TestApp, link: &str, answers: Value) -> Reply {
    app.call(Method::PUT, &format!("/api/v1/receipts/{link}/answers"), Auth::None, Some(json!({"answers": answers})))
        .await
}

async fn stats(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/messages/{id}/stats"), token).await.ok(200).clone()
}

async fn a_guardian_reads_acknowledges_and_answers_from_the_link_in_the_email(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Link School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"]})).await;
    let id = send_survey(&app, token, &[&member], json!({})).await;
    app.deliver_all().await;
    let mail = smtp.wait_for(1).await.into_iter().find(|m| m.to == ["hanako@example.jp"]).unwrap();
    let text = mail_parser::MessageParser::default().parse(&mail.data).unwrap().body_text(0).unwrap().to_string();
    assert!(text.contains("回答が必要です"));
    let link = text.lines().find(|l| l.contains("/r/")).unwrap().trim().to_string();
    let link_token = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(stats(&app, token, &id).await["read"], 0);
    let (status, html) = page(&app, &link_token).await;
    assert_eq!(status, 200);
    for expected in [
        "授業参観の出欠",
        "10月1日に授業参観を行います。",
        "1年A組 担任",
        "山田 花子 様",
        "確認しました",
        "出欠（必須）",
        "type=\"radio\"",
        "type=\"checkbox\"",
        "<textarea",
    ] {
        assert!(html.contains(expected), "the page shows {expected}");
    }
    assert!(!html.contains("<script"), "works without JavaScript");
    assert_eq!(stats(&app, token, &id).await["read"], 1, "opening the link records it as read");
    // A required question left out: the page says so, and nothing is stored.
    let csrf = csrf_of(&html);
    let answers_path = format!("/r/{link_token}/answers");
    let refused = post_form(&app, &answers_path, &[("csrf", &csrf), ("q1", "0")], None).await;
    assert_eq!(refused.status(), 200);
    assert!(refused.text().await.unwrap().contains("質問1"), "the error names the question");
    assert_eq!(stats(&app, token, &id).await["answered"], 0);
    let saved = post_form(
        &app,
        &answers_path,
        &[("csrf", &csrf), ("q0", "0"), ("q1", "0"), ("q1", "2"), ("q2", "よろしくお願いします")],
        None,
    )
    .await;
    assert_eq!(saved.status(), 303);
    let done = stats(&app, token, &id).await;
    assert_eq!(
        (done["answered"].clone(), done["acknowledged"].clone()),
        (json!(1), json!(1)),
        "answering an answer-required message acknowledges it"
    );
    let (_, html) = page(&app, &link_token).await;
    assert!(html.contains("確認済み") && html.contains("回答を変更する") && html.contains("よろしくお願いします"));
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    assert_eq!(
        recipients.ok(200)["items"][0]["answers"],
        json!([{"question": 0, "choices": [0]}, {"question": 1, "choices": [0, 2]}, {"question": 2, "text": "よろしくお願いします"}])
    );
    app.assert_queue_empty().await;
}

async fn forged_altered_and_foreign_links_answer_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Forge School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let outsider = create_member(&app, &admin.access_token, json!({"name": "B", "emails": ["b@example.jp"]})).await;
    let id = send_survey(&app, &admin.access_token, &[&member], json!({})).await;
    let genuine = link_token(&app, &id, &member);
    let mut altered: Vec<char> = genuine.chars().collect();
    altered[10] = if altered[10] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    // Genuinely signed, but for someone the message did not reach.
    let foreign = link_token(&app, &id, &outsider);
    for bad in [altered.as_str(), foreign.as_str(), "forged", "", "%00", "../../etc/passwd"] {
        let json = app.call(Method::GET, &format!("/api/v1/receipts/{bad}"), Auth::None, None).await;
        assert_eq!(json.status, 404, "{bad}");
        let response = app.client.get(app.url(&format!("/r/{bad}"))).send().await.unwrap();
        assert_eq!(response.status(), 404, "{bad}");
        if !bad.is_empty() && !bad.contains('/') {
            // A person opened it: the answer is a page saying so, not JSON.
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{bad}");
            assert!(response.text().await.unwrap().contains("このリンクは無効です"));
        }
        let ack = app.call(Method::POST, &format!("/api/v1/receipts/{bad}/ack"), Auth::None, None).await;
        assert_eq!(ack.status, 404, "{bad}");
    }
    let answer = app.call(Method::GET, &format!("/api/v1/receipts/{genuine}"), Auth::None, None).await;
    assert_eq!(answer.ok(200)["message"]["subject"], "授業参観の出欠");
}

async fn answers_are_checked_replaced_and_closed_at_the_deadline(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Reply School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let deadline = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let id = send_survey(&app, &admin.access_token, &[&member], json!({"answer_deadline": deadline})).await;
    let link = link_token(&app, &id, &member);
    let put = |answers: Value| put_answers(&app, &link, answers);
    assert_eq!(put(json!([{"question": 0, "choices": [0, 1]}])).await.problem(422), ["answers[0].choices"]);
    assert_eq!(put(json!([{"question": 0, "choices": [5]}])).await.problem(422), ["answers[0].choices"]);
    assert_eq!(put(json!([{"question": 9, "choices": [0]}])).await.problem(422), ["answers[0].question"]);
    assert_eq!(put(json!([{"question": 1, "choices": [0]}])).await.problem(422), ["answers"]);
    assert_eq!(
        put(json!([{"question": 0, "choices": [0]}, {"question": 2, "text": "あ".repeat(1001)}])).await.problem(422),
        ["answers[1].text"]
    );
    let first = put(json!([{"question": 0, "choices": [0]}])).await;
    assert_eq!(first.ok(200)["answers"], json!([{"question": 0, "choices": [0]}]));
    let second = put(json!([{"question": 0, "choices": [1]}, {"question": 2, "text": "遅れます"}])).await;
    assert_eq!(
        second.ok(200)["answers"],
        json!([{"question": 0, "choices": [1]}, {"question": 2, "text": "遅れます"}]),
        "the new answers replace the old"
    );
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE messages SET answer_deadline = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 1)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(put(json!([{"question": 0, "choices": [0]}])).await.problem(409), ["answers"]);
    let (_, html) = page(&app, &link).await;
    assert!(html.contains("回答期限を過ぎた"));
    let kept = app.call(Method::GET, &format!("/api/v1/receipts/{link}"), Auth::None, None).await;
    assert_eq!(kept.ok(200)["answers"][0]["choices"], json!([1]));
    // A message without a survey takes no answers.
    let plain = app
        .post(
            "/api/v1/messages",
            &admin.access_token,
            json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}}),
        )
        .await;
    let plain = plain.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{plain}/send"), &admin.access_token, json!({})).await.ok(202);
    let link = link_token(&app, &plain, &member);
    let answered = app
        .call(Method::PUT, &format!("/api/v1/receipts/{link}/answers"), Auth::None, Some(json!({"answers": []})))
        .await;
    assert_eq!(answered.problem(409), ["answers"]);
}

async fn one_acknowledgement_covers_every_address_and_repeats_harmlessly(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Ack School").await;
    let member = create_member(
        &app,
        &admin.access_token,
        json!({"name": "A", "emails": ["home@example.jp", "work@example.jp"]}),
    )
    .await;
    let id = send_survey(&app, &admin.access_token, &[&member], json!({})).await;
    app.deliver_all().await;
    let mails = smtp.wait_for(2).await;
    let links: Vec<String> = mails
        .iter()
        .filter(|m| !m.to[0].starts_with("admin-"))
        .map(|m| {
            let text = mail_parser::MessageParser::default().parse(&m.data).unwrap().body_text(0).unwrap().to_string();
            text.lines().find(|l| l.contains("/r/")).unwrap().trim().to_string()
        })
        .collect();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0], links[1], "one personal link per guardian");
    let link = links[0].rsplit('/').next().unwrap().to_string();
    let first = app.call(Method::POST, &format!("/api/v1/receipts/{link}/ack"), Auth::None, None).await;
    let at = first.ok(200)["acknowledged_at"].clone();
    let again = app.call(Method::POST, &format!("/api/v1/receipts/{link}/ack"), Auth::None, None).await;
    assert_eq!(again.ok(200)["acknowledged_at"], at, "the first acknowledgement's time stays");
    assert_eq!(stats(&app, &admin.access_token, &id).await["acknowledged"], 1);
    app.assert_queue_empty().await;
}

async fn form_posts_from_elsewhere_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("CSRF School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let id = send_survey(&app, &admin.access_token, &[&member], json!({})).await;
    let link = link_token(&app, &id, &member);
    let (_, html) = page(&app, &link).await;
    let csrf = csrf_of(&html);
    // Under `no-referrer` a browser would post the forms with `Origin: null`, which is refused.
    let served = app.client.get(app.url(&format!("/r/{link}"))).send().await.unwrap();
    assert_eq!(served.headers()["referrer-policy"], "same-origin", "the page's own posts carry its origin");
    assert!(html.contains("<meta name=\"referrer\" content=\"same-origin\">"));
    let path = format!("/r/{link}/ack");
    assert_eq!(post_form(&app, &path, &[], None).await.status(), 403, "no form value");
    assert_eq!(post_form(&app, &path, &[("csrf", &csrf)], Some("null")).await.status(), 403, "an opaque origin");
    assert_eq!(post_form(&app, &path, &[("csrf", "0123456789abcdef0123456789abcdef")], None).await.status(), 403);
    assert_eq!(post_form(&app, &path, &[("csrf", &csrf)], Some("https://evil.example")).await.status(), 403);
    assert_eq!(stats(&app, &admin.access_token, &id).await["acknowledged"], 0);
    assert_eq!(post_form(&app, &path, &[("csrf", &csrf)], Some(&app.address)).await.status(), 303);
    assert_eq!(stats(&app, &admin.access_token, &id).await["acknowledged"], 1);
    let (_, html) = page(&app, &link).await;
    assert!(html.contains("確認済み"));
}

async fn results_count_latest_answers_once_and_export_to_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Results School").await;
    let token = &admin.access_token;
    let a = create_member(&app, token, json!({"name": "=CMD()", "emails": ["a@example.jp"]})).await;
    let b = create_member(&app, token, json!({"name": "鈴木", "emails": ["b@example.jp"]})).await;
    let c = create_member(&app, token, json!({"name": "佐藤", "emails": ["c@example.jp"]})).await;
    let id = send_survey(&app, token, &[&a, &b, &c], json!({})).await;
    let (link_a, link_b) = (link_token(&app, &id, &a), link_token(&app, &id, &b));
    put_answers(&app, &link_a, json!([{"question": 0, "choices": [0]}, {"question": 1, "choices": [0, 1]}]))
        .await
        .ok(200);
    put_answers(&app, &link_a, json!([{"question": 0, "choices": [1]}, {"question": 1, "choices": [1]}])).await.ok(200);
    put_answers(&app, &link_b, json!([{"question": 0, "choices": [1]}, {"question": 2, "text": "体調不良のため"}]))
        .await
        .ok(200);
    let results = app.get(&format!("/api/v1/messages/{id}/results"), token).await;
    let results = results.ok(200);
    assert_eq!((results["recipients"].clone(), results["answered"].clone()), (json!(3), json!(2)));
    assert_eq!(
        results["questions"][0]["options"],
        json!([{"option": "出席", "count": 0}, {"option": "欠席", "count": 2}]),
        "latest answers, each once"
    );
    assert_eq!(results["questions"][1]["options"][1]["count"], 1);
    assert_eq!(results["questions"][2]["texts"][0]["text"], "体調不良のため");
    let unanswered = app.get(&format!("/api/v1/messages/{id}/recipients?status=unanswered"), token).await;
    let names: Vec<&str> =
        unanswered.ok(200)["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["佐藤"]);
    let unknown = app.get(&format!("/api/v1/messages/{id}/recipients?status=everyone"), token).await;
    assert_eq!(unknown.problem(422), ["status"]);
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/messages/{id}/results?format=csv")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let bytes = csv.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert_eq!(text.lines().count(), 4, "a header and one row per guardian");
    assert!(text.contains("'=CMD()"), "formulas neutralised");
    assert!(text.contains("欠席,片付け"), "{text}");
    assert_eq!(app.get(&format!("/api/v1/messages/{id}/results?format=xml"), token).await.problem(422), ["format"]);
}

async fn a_resend_reaches_only_those_who_have_not_answered(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Resend School").await;
    let token = &admin.access_token;
    let done = create_member(&app, token, json!({"name": "回答済み", "emails": ["done@example.jp"]})).await;
    let late = create_member(&app, token, json!({"name": "未回答", "emails": ["late@example.jp"]})).await;
    let id = send_survey(&app, token, &[&done, &late], json!({})).await;
    app.deliver_all().await;
    let link = link_token(&app, &id, &done);
    app.call(
        Method::PUT,
        &format!("/api/v1/receipts/{link}/answers"),
        Auth::None,
        Some(json!({"answers": [{"question": 0, "choices": [0]}]})),
    )
    .await
    .ok(200);
    let before = smtp.received().len();
    let resent = app.post(&format!("/api/v1/messages/{id}/resend"), token, json!({"to": "unanswered"})).await;
    assert_eq!(resent.ok(202)["recipient_count"], 1);
    app.deliver_all().await;
    let after = smtp.wait_for(before + 1).await;
    let new: Vec<_> = after[before..].iter().filter(|m| !m.to[0].starts_with("admin-")).collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].to, ["late@example.jp"]);
    let text = mail_parser::MessageParser::default().parse(&new[0].data).unwrap().body_text(0).unwrap().to_string();
    assert!(text.contains(&link_token(&app, &id, &late)), "the same personal link");
    assert_eq!(
        app.post(&format!("/api/v1/messages/{id}/resend"), token, json!({"to": "everyone"})).await.problem(422),
        ["to"]
    );
    // `unread` filters the recipients page; a resend names who has not responded or was not
    // reached (DESIGN.md), so it is refused there and queues nothing.
    assert_eq!(
        app.post(&format!("/api/v1/messages/{id}/resend"), token, json!({"to": "unread"})).await.problem(422),
        ["to"]
    );
    let draft = app.post("/api/v1/messages", token, json!({"subject": "s", "body": "b"})).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.post(&format!("/api/v1/messages/{draft}/resend"), token, json!({"to": "failed"})).await.problem(409),
        ["status"]
    );
    app.assert_queue_empty().await;
}

async fn a_reminder_goes_once_to_those_who_have_not_acknowledged(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Reminder School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    let seen =
        create_member(&app, token, json!({"name": "確認済み", "emails": ["seen@example.jp"], "list_ids": [list]}))
            .await;
    create_member(&app, token, json!({"name": "未確認", "emails": ["unseen@example.jp"], "list_ids": [list]})).await;
    assert_eq!(
        app.post("/api/v1/messages", token, json!({"subject": "s", "body": "b", "remind_after": 60}))
            .await
            .problem(422),
        ["remind_after"],
        "reminders are for answer-required messages"
    );
    let id = send_survey(&app, token, &[], json!({"targets": {"list_ids": [list]}, "remind_after": 60})).await;
    app.deliver_all().await;
    let link = link_token(&app, &id, &seen);
    app.call(Method::POST, &format!("/api/v1/receipts/{link}/ack"), Auth::None, None).await.ok(200);
    let before = smtp.received().len();
    assert_eq!(app.deliver_all().await, 0, "not due before 60 minutes");
    app.advance_clock(std::time::Duration::from_secs(59 * 60));
    assert_eq!(app.deliver_all().await, 0, "not due a minute before");
    app.advance_clock(std::time::Duration::from_secs(2 * 60));
    app.deliver_all().await;
    let after = smtp.wait_for(before + 1).await;
    let reminded: Vec<_> =
        after[before..].iter().filter(|m| !m.to[0].starts_with("admin-")).map(|m| m.to[0].clone()).collect();
    assert_eq!(reminded, ["unseen@example.jp"]);
    let count = smtp.received().len();
    app.deliver_all().await;
    assert_eq!(smtp.received().len(), count, "one reminder only");
    assert!(app.get(&format!("/api/v1/messages/{id}"), token).await.ok(200)["reminded_at"].is_string());
    app.assert_queue_empty().await;
}

async fn the_app_inbox_reads_acknowledges_and_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Inbox School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A"})).await;
    let code = app.post(&format!("/api/v1/members/{member}/invitations"), token, json!({})).await.ok(201)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let session = app.call(Method::POST, "/api/v1/app/session", Auth::None, Some(json!({"code": code}))).await;
    let guardian = session.ok(201)["access_token"].as_str().unwrap().to_string();
    let first = send_survey(&app, token, &[&member], json!({"channels": ["push"]})).await;
    let second = send_survey(&app, token, &[&member], json!({"subject": "二通目", "channels": ["push"]})).await;
    let other = create_member(&app, token, json!({"name": "B"})).await;
    let not_mine = send_survey(&app, token, &[&other], json!({"channels": ["push"]})).await;
    let inbox = app.get("/api/v1/app/messages", &guardian).await;
    let inbox = inbox.ok(200).clone();
    assert_eq!(inbox["unread_count"], 2);
    let ids: Vec<&str> = inbox["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first, only the guardian's own");
    let page = app.get("/api/v1/app/messages?limit=1", &guardian).await;
    assert!(page.ok(200)["next_cursor"].is_string());
    let opened = app.get(&format!("/api/v1/app/messages/{first}"), &guardian).await;
    assert!(opened.ok(200)["read_at"].is_string());
    assert_eq!(app.get("/api/v1/app/messages", &guardian).await.ok(200)["unread_count"], 1);
    let answered = app
        .call(
            Method::PUT,
            &format!("/api/v1/app/messages/{first}/answers"),
            Auth::Bearer(&guardian),
            Some(json!({"answers": [{"question": 0, "choices": [1]}]})),
        )
        .await;
    assert!(answered.ok(200)["acknowledged_at"].is_string());
    app.call(Method::POST, &format!("/api/v1/app/messages/{second}/ack"), Auth::Bearer(&guardian), None).await.ok(200);
    let stats_first = stats(&app, token, &first).await;
    assert_eq!((stats_first["answered"].clone(), stats_first["acknowledged"].clone()), (json!(1), json!(1)));
    app.get(&format!("/api/v1/app/messages/{not_mine}"), &guardian).await.problem(404);
    app.call(Method::POST, &format!("/api/v1/app/messages/{not_mine}/ack"), Auth::Bearer(&guardian), None)
        .await
        .problem(404);
    assert_eq!(stats(&app, token, &not_mine).await["acknowledged"], 0);
}

async fn acknowledgements_arriving_together_are_each_answered_and_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Busy School").await;
    let token = &admin.access_token;
    let mut members = Vec::new();
    for i in 0..30 {
        members.push(create_member(&app, token, json!({"name": format!("保護者{i}")})).await);
    }
    let ids: Vec<&str> = members.iter().map(String::as_str).collect();
    let id = send_survey(&app, token, &ids, json!({})).await;
    // The first 20 acknowledge at once, several twice; the other 10 never do. A token of
    // another message (never sent to them) is mixed in and must still answer 404.
    let acknowledging = &members[..20];
    let app = &app;
    let mut paths: Vec<String> = acknowledging
        .iter()
        .chain(&acknowledging[..5])
        .map(|member| format!("/api/v1/receipts/{}/ack", link_token(app, &id, member)))
        .collect();
    let foreign = link_token(app, "01a00000-0000-7000-8000-000000000000", &members[0]);
    paths.push(format!("/api/v1/receipts/{foreign}/ack"));
    let mut answers = futures_util::future::join_all(
        paths.iter().map(|path| async move { app.call(Method::POST, path, Auth::None, None).await }),
    )
    .await;
    let stranger = answers.pop().unwrap();
    for answer in &answers {
        assert_eq!(answer.ok(200)["message_id"], json!(id));
        assert!(answer.ok(200)["acknowledged_at"].is_string());
    }
    stranger.problem(404);
    assert_eq!(stats(app, token, &id).await["acknowledged"], 20);
    let unacknowledged = app.get(&format!("/api/v1/messages/{id}/recipients?status=unacknowledged"), token).await;
    let mut left: Vec<String> = unacknowledged.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["member_id"].as_str().unwrap().to_string())
        .collect();
    left.sort();
    let mut expected = members[20..].to_vec();
    expected.sort();
    assert_eq!(left, expected);
}

/// Behind a reverse proxy at https://school.example.jp/renrakumo (RENRAKUMO_PUBLIC_URL
/// without a final slash), every link the guardian follows stays under it.
async fn links_stay_under_a_public_url_with_a_path(backend: Backend) {
    let smtp = crate::smtp_server::SmtpServer::start().await;
    let smtp_url = smtp.url();
    let app = spawn_app_with(backend, move |config| {
        config.smtp_url = Some(smtp_url);
        config.public_url = "https://school.example.jp/renrakumo".parse().unwrap();
    })
    .await;
    let admin = app.create_admin("Proxy School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"]})).await;
    send_survey(&app, token, &[&member], json!({})).await;
    app.deliver_all().await;
    let mail = smtp.wait_for(1).await.remove(0);
    let text = mail_parser::MessageParser::default().parse(&mail.data).unwrap().body_text(0).unwrap().to_string();
    let link = text.lines().find(|l| l.contains("/r/")).unwrap().trim().to_string();
    let link_token = link.rsplit('/').next().unwrap().to_string();
    let page_url = format!("https://school.example.jp/renrakumo/r/{link_token}");
    assert_eq!(link, page_url, "the e-mail's link");
    let (_, html) = page(&app, &link_token).await;
    assert!(html.contains(&format!("action=\"{page_url}/ack\"")), "the acknowledgement form");
    assert!(html.contains(&format!("action=\"{page_url}/answers#survey\"")), "the survey form");
    let csrf = csrf_of(&html);
    let acknowledged = post_form(&app, &format!("/r/{link_token}/ack"), &[("csrf", &csrf)], None).await;
    assert_eq!(acknowledged.status(), 303);
    assert_eq!(acknowledged.headers()["location"], page_url.as_str(), "back to the page");
    app.assert_queue_empty().await;
}

/// A guardian on a bad connection posts the answer form slowly: until the body is whole,
/// nobody else's answers may wait for it (on SQLite a write transaction is the one writer).
async fn a_slow_form_post_holds_up_no_one_else(backend: Backend) {
    use std::time::Duration;
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Slow Form School").await;
    let token = &admin.access_token;
    let slow = create_member(&app, token, json!({"name": "遅い", "emails": ["slow@example.jp"]})).await;
    let other = create_member(&app, token, json!({"name": "他", "emails": ["other@example.jp"]})).await;
    let id = send_survey(&app, token, &[&slow, &other], json!({})).await;
    let slow_link = link_token(&app, &id, &slow);
    let (_, html) = page(&app, &slow_link).await;
    let form = format!("csrf={}&q0=0", csrf_of(&html));
    let head = format!(
        "POST /r/{slow_link}/answers HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}",
        form.len()
    );
    let mut stalled = app.send_raw(&head, &form.as_bytes()[..10]).await;
    // Let the server take the request in before the other guardian answers.
    page(&app, &slow_link).await;
    let other_link = link_token(&app, &id, &other);
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        put_answers(&app, &other_link, json!([{"question": 0, "choices": [1]}])),
    )
    .await
    .expect("another guardian's answers are stored while a form is still arriving");
    answered.ok(200);
    // The slow form, once whole, is stored too.
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &form.as_bytes()[10..]).await.unwrap();
    assert_eq!(read_raw_answer(&mut stalled).await.status, 303);
    assert_eq!(stats(&app, token, &id).await["answered"], 2);
}

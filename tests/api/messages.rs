use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    a_removed_guardian_gets_nothing_more_and_the_message_completes,
    a_draft_is_checked_against_every_limit,
    drafts_are_edited_copied_and_deleted_but_sent_messages_stay,
    a_send_reaches_every_receiving_address_exactly_once,
    attribute_targets_narrow_by_every_key,
    a_preview_counts_before_sending,
    a_scheduled_message_waits_can_be_cancelled_and_goes_out_when_due,
    a_scheduled_message_is_started_once_by_instances_whose_clocks_differ,
    a_deferral_is_retried_and_a_persistent_one_fails,
    a_relay_that_drops_the_connection_at_the_end_of_data_has_not_taken_the_message,
    a_delivery_keeps_trying_for_its_maximum_age_then_fails_saying_why,
    a_refusal_bounces_and_the_third_in_a_row_disables_the_address,
    a_delivery_ends_a_run_of_bounces,
    sigterm_stops_a_worker_after_the_round_in_flight_with_nothing_left_claimed,
    sigterm_stops_serve_after_the_requests_and_the_round_in_flight,
    push_jobs_of_an_unconfigured_platform_are_skipped_with_the_reason,
    emergency_messages_are_delivered_first,
    two_workers_deliver_every_job_exactly_once,
    jobs_of_a_crashed_worker_are_delivered_after_their_lease,
    a_worker_keeps_the_jobs_it_is_still_sending,
    a_single_use_key_sends_once,
    the_sender_gets_a_copy_and_a_summary,
    history_filters_and_other_organisations,
);

async fn draft(app: &TestApp, token: &str, body: Value) -> String {
    app.post("/api/v1/messages", token, body).await.ok(201)["id"].as_str().unwrap().to_string()
}

async fn send(app: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    app.post(&format!("/api/v1/messages/{id}/send"), token, body).await
}

async fn stats(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/messages/{id}/stats"), token).await.ok(200).clone()
}

/// Where guardians' mail went (the sender's copy and summary left out), sorted.
fn rcpts(mails: &[crate::smtp_server::ReceivedMail]) -> Vec<String> {
    let mut all: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).filter(|to| !to.starts_with("admin-")).collect();
    all.sort();
    all
}

fn parsed(mail: &crate::smtp_server::ReceivedMail) -> (String, String, String) {
    let message = mail_parser::MessageParser::default().parse(&mail.data).unwrap();
    (
        message.subject().unwrap_or_default().to_string(),
        message.body_text(0).unwrap_or_default().to_string(),
        message.message_id().unwrap_or_default().to_string(),
    )
}

async fn a_draft_is_checked_against_every_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Limit School").await;
    let token = &admin.access_token;
    let question = json!({"text": "出欠", "kind": "single", "options": ["出席", "欠席"], "required": true});
    let cases = [
        (json!({"subject": "件".repeat(101), "body": "本文"}), vec!["subject"]),
        (json!({"subject": "件名", "body": "本".repeat(5001)}), vec!["body"]),
        (json!({"subject": "", "body": "", "from_name": "名".repeat(51)}), vec!["subject", "body", "from_name"]),
        (
            json!({"subject": "s", "body": "b", "survey": {"questions": vec![question.clone(); 11]}}),
            vec!["survey.questions[10]"],
        ),
        (
            json!({"subject": "s", "body": "b", "survey": {"questions": [{"text": "q", "kind": "multiple", "options": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}]}}),
            vec!["survey.questions[0].options[10]"],
        ),
        (
            json!({"subject": "s", "body": "b", "survey": {"questions": [{"text": "q", "kind": "text", "options": ["x"]}]}}),
            vec!["survey.questions[0].options"],
        ),
        (
            json!({"subject": "s", "body": "b", "survey": {"questions": [{"text": "q", "kind": "scale"}]}}),
            vec!["survey.questions[0].kind"],
        ),
        (json!({"subject": "s", "body": "b", "targets": {"list_ids": ["nope"]}}), vec!["targets.list_ids[0]"]),
        (json!({"subject": "s", "body": "b", "targets": {"member_ids": ["nope"]}}), vec!["targets.member_ids[0]"]),
        (json!({"subject": "s", "body": "b", "channels": []}), vec!["channels"]),
        (json!({"subject": "s", "body": "b", "channels": ["fax"]}), vec!["channels[0]"]),
        (json!({"subject": "s", "body": "b", "answer_deadline": "2001-01-01T00:00:00Z"}), vec!["answer_deadline"]),
        (json!({"subject": "s", "body": "b", "priority": "urgent"}), vec!["priority"]),
    ];
    for (body, fields) in cases {
        assert_eq!(app.post("/api/v1/messages", token, body.clone()).await.problem(422), fields, "{body}");
    }
    // Exactly at the limits is fine, counted in characters.
    let full = json!({"subject": "件".repeat(100), "body": "本".repeat(5000), "from_name": "名".repeat(50), "survey": {"questions": vec![question; 10]}});
    let created = app.post("/api/v1/messages", token, full).await;
    assert_eq!(created.ok(201)["status"], "draft");
    assert_eq!(created.body["channels"], json!(["email", "push"]));
    let listed = app.get("/api/v1/messages", token).await;
    assert_eq!(listed.ok(200)["items"].as_array().unwrap().len(), 1, "nothing half-written by the refusals");
}

async fn drafts_are_edited_copied_and_deleted_but_sent_messages_stay(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Draft School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    let id =
        draft(&app, token, json!({"subject": "遠足", "body": "持ち物: 弁当", "targets": {"list_ids": [list]}})).await;
    let path = format!("/api/v1/messages/{id}");
    let edited = app.patch(&path, token, json!({"body": "持ち物: 弁当、水筒", "priority": "emergency"})).await;
    let edited = edited.ok(200);
    assert_eq!(
        (edited["subject"].clone(), edited["body"].clone(), edited["priority"].clone()),
        (json!("遠足"), json!("持ち物: 弁当、水筒"), json!("emergency"))
    );
    assert_eq!(app.patch(&path, token, json!({"subject": ""})).await.problem(422), ["subject"]);
    let copy = app.post(&format!("{path}/copy"), token, json!({})).await;
    let copy_id = copy.ok(201)["id"].as_str().unwrap().to_string();
    assert_eq!(copy.body["body"], "持ち物: 弁当、水筒");
    send(&app, token, &id, json!({})).await.ok(202);
    assert_eq!(app.patch(&path, token, json!({"subject": "x"})).await.problem(409), ["status"]);
    assert_eq!(app.delete(&path, token).await.problem(409), ["status"]);
    assert_eq!(send(&app, token, &id, json!({})).await.problem(409), ["status"]);
    let copied_sent = app.post(&format!("{path}/copy"), token, json!({})).await;
    assert_eq!(copied_sent.ok(201)["status"], "draft", "a sent message copies into a new draft");
    let other = draft(&app, token, json!({"subject": "b", "body": "b"})).await;
    let bulk = app.post("/api/v1/messages/bulk-delete", token, json!({"ids": [copy_id, other, id]})).await;
    assert_eq!(bulk.ok(200)["deleted"], 2, "the sent one stays");
    app.get(&path, token).await.ok(200);
    assert_eq!(
        app.delete(&format!("/api/v1/messages/{}", copied_sent.body["id"].as_str().unwrap()), token).await.status,
        204
    );
}

async fn a_send_reaches_every_receiving_address_exactly_once(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Send School").await;
    let token = &admin.access_token;
    let a = create_list(&app, token, "1年A組").await;
    let club = create_list(&app, token, "サッカー部").await;
    let both = create_member(
        &app,
        token,
        json!({"name": "山田 花子", "emails": ["hanako@example.jp", "taro..papa@docomo.ne.jp"], "list_ids": [a, club]}),
    )
    .await;
    create_member(&app, token, json!({"name": "髙橋 一郎", "emails": ["ichiro@example.jp"], "list_ids": [a]})).await;
    let app_only = create_member(&app, token, json!({"name": "渡邊 剛", "list_ids": [club]})).await;
    let suspended =
        create_member(&app, token, json!({"name": "休止中", "emails": ["suspended@example.jp"], "list_ids": [a]}))
            .await;
    app.post(&format!("/api/v1/members/{suspended}/suspend"), token, json!({})).await.ok(200);
    let disabled = create_member(
        &app,
        token,
        json!({"name": "無効", "emails": ["dead@example.jp", "alive@example.jp"], "list_ids": [club]}),
    )
    .await;
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE member_emails SET status = 'disabled' WHERE address_key = 'dead@example.jp'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let outsider = create_member(&app, token, json!({"name": "対象外", "emails": ["outside@example.jp"]})).await;

    let id = draft(&app, token, json!({"subject": "運動会のお知らせ", "body": "明日は運動会です。", "targets": {"list_ids": [a, club]}, "channels": ["email"]})).await;
    let sent = send(&app, token, &id, json!({})).await;
    let sent = sent.ok(202);
    assert_eq!(sent["status"], "sending");
    assert_eq!(sent["recipient_count"], 4, "山田 once, 髙橋, 渡邊 and 無効; not the suspended one nor the outsider");
    let before = stats(&app, token, &id).await;
    assert_eq!(before["deliveries"]["email"]["queued"], 4, "progress is visible before delivery");
    app.deliver_all().await;
    // Four to the guardians, and the summary to the sender.
    let mails: Vec<_> = smtp.wait_for(5).await.into_iter().filter(|m| !m.to[0].starts_with("admin-")).collect();
    assert_eq!(
        rcpts(&mails),
        ["\"taro..papa\"@docomo.ne.jp", "alive@example.jp", "hanako@example.jp", "ichiro@example.jp"]
    );
    assert_eq!(mails.len(), 4, "one message per address");
    let mut links = BTreeSet::new();
    for mail in &mails {
        let (subject, body, message_id) = parsed(mail);
        assert_eq!(subject, "運動会のお知らせ");
        assert!(body.contains("明日は運動会です。"));
        assert!(message_id.starts_with(&id), "{message_id}");
        let link = body.lines().find(|l| l.contains("/r/")).expect("a personal link").trim().to_string();
        let token = link.rsplit('/').next().unwrap();
        let (message, member) = app.state.jwt.verify_receipt_token(token).expect("a genuine personal link");
        assert_eq!(message, id);
        assert_ne!(member, outsider);
        assert_ne!(member, suspended);
        links.insert(link);
    }
    assert_eq!(links.len(), 3, "both addresses of 山田 carry the same personal link");
    let after = stats(&app, token, &id).await;
    assert_eq!(after["status"], "sent");
    assert_eq!(after["recipients"], 4);
    assert_eq!(after["deliveries"]["email"], json!({"queued": 0, "sent": 4, "failed": 0, "bounced": 0}));
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    let items = recipients.ok(200)["items"].as_array().unwrap().clone();
    let yamada = items.iter().find(|r| r["member_id"] == both.as_str()).unwrap();
    assert_eq!(yamada["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(yamada["deliveries"][0]["state"], "sent");
    let watanabe = items.iter().find(|r| r["member_id"] == app_only.as_str()).unwrap();
    assert!(watanabe["deliveries"].as_array().unwrap().is_empty(), "no address, e-mail only: reached by nothing");
    assert!(
        items.iter().all(|r| r["member_id"] != disabled.as_str() || r["deliveries"].as_array().unwrap().len() == 1)
    );
    app.assert_queue_empty().await;
}

async fn attribute_targets_narrow_by_every_key(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Attribute School").await;
    let token = &admin.access_token;
    create_member(
        &app,
        token,
        json!({"name": "1A", "emails": ["1a@example.jp"], "attributes": {"grade": "1", "class": "A"}}),
    )
    .await;
    create_member(
        &app,
        token,
        json!({"name": "1B", "emails": ["1b@example.jp"], "attributes": {"grade": "1", "class": "B"}}),
    )
    .await;
    create_member(
        &app,
        token,
        json!({"name": "2A", "emails": ["2a@example.jp"], "attributes": {"grade": "2", "class": "A"}}),
    )
    .await;
    let id = draft(
        &app,
        token,
        json!({"subject": "1年A組", "body": "b", "targets": {"attributes": {"grade": ["1"], "class": ["A"]}}}),
    )
    .await;
    assert_eq!(send(&app, token, &id, json!({})).await.ok(202)["recipient_count"], 1);
    app.deliver_all().await;
    assert_eq!(rcpts(&smtp.wait_for(1).await), ["1a@example.jp"]);
    let id = draft(
        &app,
        token,
        json!({"subject": "1年", "body": "b", "targets": {"attributes": {"grade": ["1", "2"], "class": ["A"]}}}),
    )
    .await;
    assert_eq!(send(&app, token, &id, json!({})).await.ok(202)["recipient_count"], 2);
    app.deliver_all().await;
    app.assert_queue_empty().await;
}

async fn a_preview_counts_before_sending(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Preview School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    let member = create_member(
        &app,
        token,
        json!({"name": "A", "emails": ["a@example.jp", "b@example.jp"], "list_ids": [list]}),
    )
    .await;
    app.post(&format!("/api/v1/members/{member}/devices"), token, json!({"platform": "apns", "token": "t1"}))
        .await
        .ok(201);
    create_member(&app, token, json!({"name": "B", "emails": ["c@example.jp"], "list_ids": [list]})).await;
    let id = draft(
        &app,
        token,
        json!({"subject": "s", "body": "b", "targets": {"list_ids": [list], "member_ids": [member]}}),
    )
    .await;
    let preview = app.get(&format!("/api/v1/messages/{id}/preview"), token).await;
    assert_eq!(preview.ok(200).clone(), json!({"recipients": 2, "email": 3, "push": 1}));
    // A malformed schedule is refused, never taken for "send now".
    assert_eq!(send(&app, token, &id, json!({"send_at": "next monday"})).await.problem(422), ["send_at"]);
    assert_eq!(send(&app, token, &id, json!({"send_later": true})).await.problem(422), ["send_later"]);
    assert_eq!(app.get(&format!("/api/v1/messages/{id}"), token).await.ok(200)["status"], "draft");
    let no_targets = draft(&app, token, json!({"subject": "s", "body": "b"})).await;
    assert_eq!(send(&app, token, &no_targets, json!({})).await.problem(422), ["targets"]);
}

async fn a_scheduled_message_waits_can_be_cancelled_and_goes_out_when_due(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Schedule School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    create_member(&app, token, json!({"name": "A", "emails": ["a@example.jp"], "list_ids": [list]})).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let cancelled = draft(&app, token, json!({"subject": "中止", "body": "b", "targets": {"list_ids": [list]}})).await;
    let scheduled = send(&app, token, &cancelled, json!({"send_at": later})).await;
    assert_eq!(
        (scheduled.ok(202)["status"].clone(), scheduled.body["recipient_count"].clone()),
        (json!("scheduled"), json!(1))
    );
    let cancel = app.post(&format!("/api/v1/messages/{cancelled}/cancel"), token, json!({})).await;
    assert_eq!(cancel.ok(200)["status"], "cancelled");
    assert_eq!(
        app.post(&format!("/api/v1/messages/{cancelled}/cancel"), token, json!({})).await.problem(409),
        ["status"]
    );

    let id = draft(&app, token, json!({"subject": "予約配信", "body": "b", "targets": {"list_ids": [list]}})).await;
    send(&app, token, &id, json!({"send_at": later})).await.ok(202);
    // Rescheduled an hour later, and edited while it waits.
    let later = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    assert_eq!(send(&app, token, &id, json!({"send_at": later})).await.ok(202)["status"], "scheduled");
    app.patch(&format!("/api/v1/messages/{id}"), token, json!({"subject": "予約配信（変更）"})).await.ok(200);
    let scheduled_list = app.get("/api/v1/messages?status=scheduled", token).await;
    assert_eq!(scheduled_list.ok(200)["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.deliver_all().await, 0, "not due yet");
    // A guardian joins before it goes out, and is reached: recipients are resolved when due.
    create_member(&app, token, json!({"name": "B", "emails": ["b@example.jp"], "list_ids": [list]})).await;
    app.advance_clock(std::time::Duration::from_secs(2 * 3600 + 3590));
    assert_eq!(app.deliver_all().await, 0, "not due ten seconds before its time");
    app.advance_clock(std::time::Duration::from_secs(20));
    app.deliver_all().await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(rcpts(&mails), ["a@example.jp", "b@example.jp"]);
    assert_eq!(parsed(&mails[0]).0, "予約配信（変更）");
    assert_eq!(stats(&app, token, &id).await["status"], "sent");
    assert_eq!(stats(&app, token, &cancelled).await["deliveries"]["email"]["sent"], 0);
    app.assert_queue_empty().await;
}

async fn a_deferral_is_retried_and_a_persistent_one_fails(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Retry School").await;
    let token = &admin.access_token;
    let member =
        create_member(&app, token, json!({"name": "A", "emails": ["busy@docomo.ne.jp", "never@example.jp"]})).await;
    smtp.defer("busy@docomo.ne.jp", 451);
    smtp.defer("never@example.jp", 421);
    let id = draft(
        &app,
        token,
        json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}, "channels": ["email"]}),
    )
    .await;
    send(&app, token, &id, json!({})).await.ok(202);
    let worker = app.worker();
    worker.run_once().await.unwrap();
    let waiting = stats(&app, token, &id).await;
    assert_eq!(waiting["deliveries"]["email"]["queued"], 2, "deferred jobs wait for another try");
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    let delivery = &recipients.ok(200)["items"][0]["deliveries"][0];
    assert_eq!(delivery["attempts"], 1);
    assert!(delivery["detail"].as_str().unwrap().contains("451"), "{delivery}");
    smtp.accept("busy@docomo.ne.jp");
    app.deliver_all().await;
    assert_eq!(rcpts(&smtp.received()), ["busy@docomo.ne.jp"]);
    let done = stats(&app, token, &id).await;
    assert_eq!(
        done["deliveries"]["email"],
        json!({"queued": 0, "sent": 1, "failed": 1, "bounced": 0}),
        "gave up after 3 attempts"
    );
    assert_eq!(done["status"], "sent");
    app.assert_queue_empty().await;
}

async fn a_refusal_bounces_and_the_third_in_a_row_disables_the_address(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Bounce School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["gone@example.jp", "ok@example.jp"]})).await;
    smtp.reject("gone@example.jp", 550);
    for round in 1..=3 {
        let id = draft(&app, token, json!({"subject": format!("第{round}報"), "body": "b", "targets": {"member_ids": [member]}, "channels": ["email"]})).await;
        send(&app, token, &id, json!({})).await.ok(202);
        app.deliver_all().await;
        assert_eq!(stats(&app, token, &id).await["deliveries"]["email"]["bounced"], 1);
        let status = app.get(&format!("/api/v1/members/{member}"), token).await.ok(200)["emails"][0]["status"].clone();
        assert_eq!(status, if round < 3 { "bounced" } else { "disabled" }, "after bounce {round}");
        if round == 1 {
            // The server's reply quotes the address: whole for contacts:read, masked otherwise.
            let detail = |token: String| {
                let path = format!("/api/v1/messages/{id}/recipients");
                let app = &app;
                async move {
                    let page = app.get(&path, &token).await;
                    page.ok(200)["items"][0]["deliveries"][0]["detail"].as_str().unwrap().to_string()
                }
            };
            let (_, sender) = app.create_staff(&admin, "sender").await;
            let whole = detail(token.clone()).await;
            let masked = detail(sender).await;
            assert!(whole.contains("550") && whole.contains("<gone@example.jp>"), "{whole}");
            assert_eq!(masked, whole.replace("gone@example.jp", "g***@example.jp"));
        }
    }
    // A disabled address receives nothing more.
    let id = draft(
        &app,
        token,
        json!({"subject": "第4報", "body": "b", "targets": {"member_ids": [member]}, "channels": ["email"]}),
    )
    .await;
    send(&app, token, &id, json!({})).await.ok(202);
    app.deliver_all().await;
    assert_eq!(stats(&app, token, &id).await["deliveries"]["email"]["sent"], 1);
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    assert_eq!(recipients.ok(200)["items"][0]["deliveries"].as_array().unwrap().len(), 1);
    app.assert_queue_empty().await;
}

async fn a_removed_guardian_gets_nothing_more_and_the_message_completes(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Leaving School").await;
    let token = &admin.access_token;
    let staying = create_member(&app, token, json!({"name": "A", "emails": ["stay@example.jp"]})).await;
    let leaving =
        create_member(&app, token, json!({"name": "B", "emails": ["gone@example.jp", "gone2@example.jp"]})).await;
    let targets = json!({"member_ids": [staying, leaving]});
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": targets, "channels": ["email"]})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    // Removed after the send queued their e-mails, before a worker took them.
    app.delete(&format!("/api/v1/members/{leaving}"), token).await;
    app.deliver_all().await;
    assert_eq!(rcpts(&smtp.wait_for(1).await), ["stay@example.jp"]);
    let done = stats(&app, token, &id).await;
    assert_eq!(done["deliveries"]["email"], json!({"queued": 0, "sent": 1, "failed": 2, "bounced": 0}));
    assert_eq!(done["status"], "sent");
    let all = rcpts(&smtp.received());
    assert!(!all.iter().any(|to| to.starts_with("gone")), "nothing went to the removed guardian: {all:?}");
    app.assert_queue_empty().await;
}

async fn a_delivery_ends_a_run_of_bounces(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Bounce School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["full@example.jp"]})).await;
    let other = create_member(&app, token, json!({"name": "B", "emails": ["other@example.jp"]})).await;
    let send_one = async |round: u32| {
        let targets = json!({"member_ids": [member, other]});
        let id = draft(
            &app,
            token,
            json!({"subject": format!("第{round}報"), "body": "b", "targets": targets, "channels": ["email"]}),
        )
        .await;
        send(&app, token, &id, json!({})).await.ok(202);
        app.deliver_all().await;
        app.get(&format!("/api/v1/members/{member}"), token).await.ok(200)["emails"][0]["status"].clone()
    };
    smtp.reject("full@example.jp", 552);
    assert_eq!(send_one(1).await, "bounced");
    assert_eq!(send_one(2).await, "bounced");
    smtp.accept("full@example.jp");
    assert_eq!(send_one(3).await, "active", "a delivered e-mail clears the bounce");
    // The run starts again from zero: two more refusals do not disable the address.
    smtp.reject("full@example.jp", 552);
    assert_eq!(send_one(4).await, "bounced");
    assert_eq!(send_one(5).await, "bounced");
    assert_eq!(send_one(6).await, "disabled");
    app.assert_queue_empty().await;
}

/// `renrakumo worker` as an operator runs it, stopped with SIGTERM while a slow relay is
/// taking its e-mails: it stops claiming, finishes what it holds, records it and exits 0;
/// nothing stays claimed, and another worker delivers the rest, each address once.
async fn sigterm_stops_a_worker_after_the_round_in_flight_with_nothing_left_claimed(backend: Backend) {
    stopped_by_sigterm(backend, "worker").await;
}

/// `renrakumo serve` stopped the same way while it sends and while a request is still
/// arriving: the request is answered, the delivery tasks stop as a worker does, and it
/// exits 0.
async fn sigterm_stops_serve_after_the_requests_and_the_round_in_flight(backend: Backend) {
    stopped_by_sigterm(backend, "serve").await;
}

async fn stopped_by_sigterm(backend: Backend, command: &str) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Shutdown School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "全校").await;
    let guardians = 700;
    let mut csv = String::from("name,email1\n");
    for i in 0..guardians {
        csv.push_str(&format!("保護者 {i},g{i}@example.jp\n"));
    }
    let imported = crate::roster_io::import(&app, token, &format!("?list_id={list}"), csv.as_bytes()).await;
    assert_eq!(imported.ok(200)["created"], guardians);
    let id = draft(
        &app,
        token,
        json!({"subject": "s", "body": "b", "targets": {"list_ids": [list]}, "channels": ["email"]}),
    )
    .await;
    send(&app, token, &id, json!({})).await.ok(202);

    smtp.slow_down(std::time::Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let smtp_url = smtp.url().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut worker = crate::cli::renrakumo(
        dir.path(),
        &[command],
        &[
            ("RENRAKUMO_DATABASE_URL", &app.database_url),
            ("RENRAKUMO_SMTP_URL", &smtp_url),
            ("RENRAKUMO_WORKERS", "1"),
            ("RENRAKUMO_BIND", &bind),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("the process starts");
    smtp.wait_for(1).await;
    // A request whose body is still on its way when the signal comes.
    let body = br#"{"name": "shutdown"}"#;
    let mut in_flight = match command {
        "serve" => {
            use tokio::io::AsyncWriteExt;
            let mut stream = tokio::net::TcpStream::connect(&bind).await.expect("serve listens");
            let head = format!(
                "POST /api/v1/lists HTTP/1.1\r\nHost: {bind}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&body[..5]).await.unwrap();
            // The request is being read before the signal arrives.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Some(stream)
        }
        _ => None,
    };
    let signalled = std::process::Command::new("kill").arg("-TERM").arg(worker.id().to_string()).status().unwrap();
    assert!(signalled.success());
    if let Some(stream) = in_flight.as_mut() {
        tokio::io::AsyncWriteExt::write_all(stream, &body[5..]).await.unwrap();
        let answer = read_raw_answer(stream).await;
        assert_eq!(answer.status, 201, "the request in flight is answered: {}", answer.body);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = worker.kill();
            panic!("{command} did not exit within 60 s of SIGTERM");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{command} exits 0 after SIGTERM: {status}");

    let count = |status: i64| {
        let pool = app.state.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM delivery_jobs WHERE status = $1")
                .bind(status)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let received = smtp.received().len() as i64;
    assert_eq!(count(1).await, 0, "no job is left claimed");
    assert_eq!(count(2).await, received, "every e-mail the relay took is recorded as sent, and only those");
    assert!(received < guardians, "it stopped claiming: {received} of {guardians} sent");
    let untried_with_attempts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM delivery_jobs WHERE status = 0 AND attempts > 0")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(untried_with_attempts, 0, "a batch claimed ahead and given back counts no attempt");

    app.deliver_all().await;
    // (The sender's summary of the finished message goes to the admin's address.)
    let to_guardians: Vec<String> =
        smtp.received().iter().map(|m| m.to[0].clone()).filter(|to| to.starts_with('g')).collect();
    assert_eq!(to_guardians.len() as i64, guardians, "the rest went out");
    assert_eq!(to_guardians.iter().collect::<BTreeSet<_>>().len() as i64, guardians, "each address once");
    app.assert_queue_empty().await;
}

async fn push_jobs_of_an_unconfigured_platform_are_skipped_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Push School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A"})).await;
    app.post(&format!("/api/v1/members/{member}/devices"), token, json!({"platform": "apns", "token": "ios-token"}))
        .await
        .ok(201);
    app.post(&format!("/api/v1/members/{member}/devices"), token, json!({"platform": "fcm", "token": "android-token"}))
        .await
        .ok(201);
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    app.deliver_all().await;
    let done = stats(&app, token, &id).await;
    assert_eq!(done["deliveries"]["push"]["skipped"], 2);
    assert_eq!(done["status"], "sent");
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await;
    let deliveries = recipients.ok(200)["items"][0]["deliveries"].as_array().unwrap().clone();
    assert!(
        deliveries.iter().all(|d| d["state"] == "skipped" && d["detail"].as_str().unwrap().contains("not configured"))
    );
    assert!(
        deliveries.iter().all(|d| d["to"].as_str().unwrap().starts_with('…')),
        "tokens masked without contacts:read? the admin has it"
    );
    app.assert_queue_empty().await;
}

async fn emergency_messages_are_delivered_first(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Emergency School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "全校").await;
    for i in 0..5 {
        create_member(
            &app,
            token,
            json!({"name": format!("保護者{i}"), "emails": [format!("p{i}@example.jp")], "list_ids": [list]}),
        )
        .await;
    }
    let normal =
        draft(&app, token, json!({"subject": "給食だより", "body": "b", "targets": {"list_ids": [list]}})).await;
    send(&app, token, &normal, json!({})).await.ok(202);
    let emergency = draft(
        &app,
        token,
        json!({"subject": "臨時休校", "body": "b", "priority": "emergency", "targets": {"list_ids": [list]}}),
    )
    .await;
    send(&app, token, &emergency, json!({})).await.ok(202);
    // One send at a time, so the order of arrival is the order of claiming.
    let settings = renrakumo::delivery::worker::WorkerSettings { batch: 5, concurrency: 1, ..Default::default() };
    let worker = renrakumo::delivery::worker::Worker::new(app.state.clone(), settings);
    while worker.run_once().await.unwrap() > 0 {}
    let mails = smtp.wait_for(10).await;
    let subjects: Vec<String> = mails.iter().map(|m| parsed(m).0).collect();
    assert!(subjects[..5].iter().all(|s| s == "【緊急】臨時休校"), "{subjects:?}");
    app.assert_queue_empty().await;
}

async fn two_workers_deliver_every_job_exactly_once(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Scale School").await;
    let token = &admin.access_token;
    let mut rows = String::from("name,email1,email2,lists\n");
    for i in 0..150 {
        rows.push_str(&format!("保護者{i},g{i}a@example.jp,g{i}b@example.jp,全校\n"));
    }
    crate::roster_io::import(&app, token, "", rows.as_bytes()).await.ok(200);
    let list = app.get("/api/v1/lists", token).await.ok(200)["items"][0]["id"].as_str().unwrap().to_string();
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"list_ids": [list]}})).await;
    assert_eq!(send(&app, token, &id, json!({})).await.ok(202)["recipient_count"], 150);
    // A second instance: another application on the same database, with its own workers.
    let settings = renrakumo::delivery::worker::WorkerSettings { batch: 20, ..Default::default() };
    let other_state = renrakumo::startup::prepare(app.state.config.as_ref().clone()).await.unwrap();
    let first = renrakumo::delivery::worker::Worker::new(app.state.clone(), settings.clone());
    let second = renrakumo::delivery::worker::Worker::new(other_state, settings);
    let drain =
        |worker: renrakumo::delivery::worker::Worker| async move { while worker.run_once().await.unwrap() > 0 {} };
    tokio::join!(drain(first), drain(second));
    let mails = smtp.wait_for(300).await;
    let all = rcpts(&mails);
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 300, "every address once");
    assert_eq!(unique.len(), 300, "no address twice");
    let after = stats(&app, token, &id).await;
    assert_eq!(after["deliveries"]["email"], json!({"queued": 0, "sent": 300, "failed": 0, "bounced": 0}));
    // Whichever instance recorded the last jobs, the message is complete.
    assert_eq!(after["status"], "sent");
    app.assert_queue_empty().await;
}

async fn jobs_of_a_crashed_worker_are_delivered_after_their_lease(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Crash School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    // An instance claims the job and dies before recording anything: nobody renews its
    // lease, which is short.
    let lease = renrakumo::delivery::worker::WorkerSettings::default().lease;
    assert!(lease <= std::time::Duration::from_secs(15), "another instance takes over within seconds");
    let claimed = renrakumo::delivery::queue::claim(&app.state, 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(app.deliver_all().await, 0, "the lease holds");
    app.advance_clock(lease - std::time::Duration::from_secs(1));
    assert_eq!(app.deliver_all().await, 0, "the lease holds until it ends");
    app.advance_clock(std::time::Duration::from_secs(2));
    app.deliver_all().await;
    assert_eq!(rcpts(&smtp.wait_for(1).await), ["a@example.jp"]);
    assert_eq!(stats(&app, token, &id).await["status"], "sent");
    app.assert_queue_empty().await;
}

async fn a_single_use_key_sends_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Pass School").await;
    let member = create_member(&app, &admin.access_token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let (_, key) = app
        .create_api_key(
            &admin,
            json!({"name": "one-day pass", "scopes": ["messages:send", "messages:read"], "single_use": true}),
        )
        .await;
    let create = |subject: &str| {
        app.call(
            Method::POST,
            "/api/v1/messages",
            Auth::ApiKey(&key),
            Some(json!({"subject": subject, "body": "b", "targets": {"member_ids": [member]}})),
        )
    };
    let first = create("一通目").await.ok(201)["id"].as_str().unwrap().to_string();
    let second = create("二通目").await.ok(201)["id"].as_str().unwrap().to_string();
    app.call(Method::POST, &format!("/api/v1/messages/{first}/send"), Auth::ApiKey(&key), None).await.ok(202);
    app.call(Method::POST, &format!("/api/v1/messages/{second}/send"), Auth::ApiKey(&key), None).await.problem(401);
    app.call(Method::GET, "/api/v1/me", Auth::ApiKey(&key), None).await.problem(401);
    assert_eq!(app.get(&format!("/api/v1/messages/{second}"), &admin.access_token).await.ok(200)["status"], "draft");
}

async fn the_sender_gets_a_copy_and_a_summary(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Copy School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["a@example.jp", "b@example.jp"]})).await;
    smtp.reject("b@example.jp", 550);
    let id = draft(
        &app,
        token,
        json!({"subject": "授業参観", "body": "b", "copy_to_sender": true, "targets": {"member_ids": [member]}}),
    )
    .await;
    send(&app, token, &id, json!({})).await.ok(202);
    app.deliver_all().await;
    let mails = smtp.wait_for(3).await;
    let to_sender: Vec<(String, String, String)> =
        mails.iter().filter(|m| m.to == [admin.email.clone()]).map(parsed).collect();
    assert_eq!(to_sender.len(), 2, "{:?}", rcpts(&mails));
    assert!(to_sender.iter().any(|(s, _, _)| s == "[送信控え] 授業参観"));
    let summary = to_sender.iter().find(|(s, _, _)| s == "[配信完了] 授業参観").expect("a summary");
    assert!(summary.1.contains("配信済み: 1") && summary.1.contains("不達: 1"), "{}", summary.1);
    app.assert_queue_empty().await;
}

async fn history_filters_and_other_organisations(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("History School").await;
    let token = &admin.access_token;
    let (sender_id, sender) = app.create_staff(&admin, "sender").await;
    // With an address, the message stays `sending` until a worker delivers it.
    let member = create_member(&app, token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let mine =
        draft(&app, &sender, json!({"subject": "遠足のお知らせ", "body": "b", "targets": {"member_ids": [member]}}))
            .await;
    draft(&app, token, json!({"subject": "給食", "body": "献立表"})).await;
    send(&app, &sender, &mine, json!({})).await.ok(202);
    let titles = |answer: &Reply| {
        answer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&app.get(&format!("/api/v1/messages?sender={sender_id}"), token).await), ["遠足のお知らせ"]);
    assert_eq!(titles(&app.get("/api/v1/messages?q=献立", token).await), ["給食"]);
    assert_eq!(titles(&app.get("/api/v1/messages?status=sending", token).await), ["遠足のお知らせ"]);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert!(titles(&app.get(&format!("/api/v1/messages?from={tomorrow}"), token).await).is_empty());
    assert_eq!(app.get("/api/v1/messages?status=lost", token).await.problem(422), ["status"]);
    let (_, viewer) = app.create_staff(&admin, "viewer").await;
    app.get("/api/v1/messages", &viewer).await.ok(200);
    app.post("/api/v1/messages", &viewer, json!({"subject": "s", "body": "b"})).await.problem(403);
    let school_b = app.create_admin("School B").await;
    for path in ["", "/stats", "/recipients", "/preview"] {
        app.get(&format!("/api/v1/messages/{mine}{path}"), &school_b.access_token).await.problem(404);
    }
    send(&app, &school_b.access_token, &mine, json!({})).await.problem(404);
    assert_eq!(
        app.post(
            "/api/v1/messages",
            &school_b.access_token,
            json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})
        )
        .await
        .problem(422),
        ["targets.member_ids[0]"]
    );
}

/// The lease is short so that a dead instance's jobs go out again soon; a live worker whose
/// sending outlasts it (a slow relay) renews it, and no other instance takes the jobs over.
async fn a_worker_keeps_the_jobs_it_is_still_sending(backend: Backend) {
    use renrakumo::delivery::worker::{Worker, WorkerSettings};
    use std::time::Duration;
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Slow Relay School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["a@example.jp"]})).await;
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    smtp.slow_down(Duration::from_secs(3));
    let lease = Duration::from_secs(60);
    let settings = WorkerSettings { lease, renew_every: Duration::from_millis(100), ..Default::default() };
    let worker = std::sync::Arc::new(Worker::new(app.state.clone(), settings));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(std::sync::Arc::clone(&worker).run(stopped));

    // The lease a job holds, once the worker has claimed it.
    let lease_until = || async {
        let mut conn = app.state.db.pool.acquire().await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT lease_until FROM delivery_jobs WHERE status = 1")
            .fetch_optional(&mut *conn)
            .await
            .unwrap()
    };
    let claimed = async {
        loop {
            if let Some(until) = lease_until().await {
                return until;
            }
            tokio::task::yield_now().await;
        }
    };
    let mut until = tokio::time::timeout(Duration::from_secs(10), claimed).await.expect("the worker claims the job");
    // Twice the lease passes by the application's clock while the relay still takes its
    // time, in steps of half a lease (so the lease in force never ends between a step and
    // the renewal after it): each time the worker renews.
    for _ in 0..4 {
        app.advance_clock(lease / 2);
        let before = until;
        let renewed = async {
            loop {
                match lease_until().await {
                    Some(now) if now > before => return now,
                    _ => tokio::task::yield_now().await,
                }
            }
        };
        until = tokio::time::timeout(Duration::from_secs(10), renewed).await.expect("the worker renews its lease");
    }
    let taken = renrakumo::delivery::queue::claim(&app.state, 10, lease).await.unwrap();
    assert!(taken.is_empty(), "another instance cannot take over a job still being sent");

    assert_eq!(rcpts(&smtp.wait_for(1).await), ["a@example.jp"]);
    stop.send(true).unwrap();
    running.await.unwrap();
    let to_guardian = smtp.received().iter().filter(|mail| mail.to == ["a@example.jp"]).count();
    assert_eq!(to_guardian, 1, "sent once");
    assert_eq!(stats(&app, token, &id).await["status"], "sent");
    app.assert_queue_empty().await;
}

/// The database server restarts or becomes unreachable while a batch is being sent (only
/// PostgreSQL can go away while renrakumo runs; SQLite lives in its process). What was sent
/// is recorded when the database answers again, not sent a second time, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_mid_send_loses_and_repeats_nothing() {
    use renrakumo::delivery::worker::{Worker, WorkerSettings};
    use std::time::Duration;
    if !postgres_available() {
        return;
    }
    let (app, smtp) = spawn_app_with_smtp(Backend::Postgres).await;
    let admin = app.create_admin("Outage School").await;
    let token = &admin.access_token;
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(
            create_member(&app, token, json!({"name": format!("G{i}"), "emails": [format!("g{i}@example.jp")]})).await,
        );
    }
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": members}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    smtp.slow_down(Duration::from_millis(500));
    let worker = std::sync::Arc::new(Worker::new(app.state.clone(), WorkerSettings::default()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(std::sync::Arc::clone(&worker).run(stopped));

    // The batch is claimed and on its way to the relay: the database goes away.
    tokio::time::timeout(Duration::from_secs(10), async {
        while smtp.connections() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the worker starts sending");
    set_database_reachable(&app, false).await;
    let away = app.get(&format!("/api/v1/messages/{id}/stats"), token).await;
    assert_eq!(away.problem(503), Vec::<String>::new(), "the API says the database is away: {:?}", away.body);
    let asked = std::time::Instant::now();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(asked.elapsed() < Duration::from_secs(5), "a health check hears it soon: {:?}", asked.elapsed());
    assert_eq!(smtp.wait_for(20).await.len(), 20, "the batch in flight is sent");
    // The worker tries to record the outcomes, fails, and backs off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_database_reachable(&app, true).await;
    // Long enough for any job left claimed to be taken again.
    app.advance_clock(WorkerSettings::default().lease * 2);
    let done = async {
        loop {
            if stats(&app, token, &id).await["status"] == "sent" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), done).await.expect("the send completes after the outage");
    stop.send(true).unwrap();
    running.await.unwrap();
    let mut to_guardians: Vec<String> =
        smtp.received().iter().filter(|m| m.to[0].starts_with('g')).map(|m| m.to[0].clone()).collect();
    to_guardians.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("g{i}@example.jp")).collect();
    expected.sort();
    assert_eq!(to_guardians, expected, "every guardian mailed exactly once");
    let stats = stats(&app, token, &id).await;
    assert_eq!(stats["deliveries"]["email"], json!({"queued": 0, "sent": 20, "failed": 0, "bounced": 0}));
    app.assert_queue_empty().await;
}

/// Refuses (and cuts) every connection to the test's PostgreSQL database, or allows them again.
async fn set_database_reachable(app: &TestApp, reachable: bool) {
    use sqlx::Connection;
    let url = url::Url::parse(&app.database_url).unwrap();
    let name = url.path().trim_start_matches('/').to_string();
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {reachable}")))
        .execute(&mut conn)
        .await
        .unwrap();
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// A relay that defers one address for ten minutes and another for good: the first goes
/// out once the relay takes it, the second keeps trying with backoff until
/// RENRAKUMO_DELIVERY_MAX_AGE (24 h) after it was queued, then fails, saying why.
async fn a_delivery_keeps_trying_for_its_maximum_age_then_fails_saying_why(backend: Backend) {
    use renrakumo::delivery::worker::{Worker, WorkerSettings};
    use std::time::Duration;
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Patient School").await;
    let token = &admin.access_token;
    let member =
        create_member(&app, token, json!({"name": "A", "emails": ["later@example.jp", "never@example.jp"]})).await;
    smtp.defer("later@example.jp", 451);
    smtp.defer("never@example.jp", 421);
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    // The worker as `serve` runs it: real backoff, the configured maximum age.
    let worker = Worker::new(app.state.clone(), WorkerSettings::from_config(&app.state.config));
    let rounds = || async { while worker.run_once().await.unwrap() > 0 {} };
    rounds().await;
    let attempts = |recipients: &Value, address: &str| {
        recipients["items"][0]["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["to"] == address)
            .cloned()
            .unwrap_or_else(|| panic!("no delivery to {address}: {recipients}"))
    };
    for _ in 0..10 {
        app.advance_clock(Duration::from_secs(60));
        rounds().await;
    }
    smtp.accept("later@example.jp");
    for _ in 0..60 {
        app.advance_clock(Duration::from_secs(60));
        rounds().await;
    }
    assert_eq!(rcpts(&smtp.received()), ["later@example.jp"], "out once the relay takes it");
    // 22 hours after the send the other is still being tried, less and less often.
    for _ in 0..21 {
        app.advance_clock(Duration::from_secs(3600));
        rounds().await;
    }
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await.ok(200).clone();
    let never = attempts(&recipients, "never@example.jp");
    assert_eq!(never["state"], "queued", "{never}");
    let tried = never["attempts"].as_i64().unwrap();
    assert!((8..=40).contains(&tried), "backed off, not hammered: {tried} attempts in 22 h");
    app.advance_clock(Duration::from_secs(2 * 3600));
    rounds().await;
    let stats = stats(&app, token, &id).await;
    assert_eq!(stats["deliveries"]["email"], json!({"queued": 0, "sent": 1, "failed": 1, "bounced": 0}));
    assert_eq!(stats["status"], "sent");
    let recipients = app.get(&format!("/api/v1/messages/{id}/recipients"), token).await.ok(200).clone();
    let never = attempts(&recipients, "never@example.jp");
    assert_eq!(never["state"], "failed");
    let detail = never["detail"].as_str().unwrap();
    let hours: f64 = detail.split(" in ").nth(1).and_then(|rest| rest.split(" h").next()).unwrap().parse().unwrap();
    assert!(
        detail.starts_with("gave up after") && hours >= 24.0 && detail.ends_with("refused by test rule"),
        "{detail}"
    );
    app.assert_queue_empty().await;
}

/// Two instances on one database, one's clock 5 s ahead, both asking over and over whether
/// a scheduled message is due: it is started once (one recipient and one job per address).
async fn a_scheduled_message_is_started_once_by_instances_whose_clocks_differ(backend: Backend) {
    use renrakumo::delivery::scheduler;
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Two Clocks School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    for i in 0..20 {
        create_member(
            &app,
            token,
            json!({"name": format!("G{i}"), "emails": [format!("g{i}@example.jp")], "list_ids": [list]}),
        )
        .await;
    }
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"list_ids": [list]}})).await;
    let at = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    send(&app, token, &id, json!({"send_at": at})).await.ok(202);
    let other = renrakumo::startup::prepare((*app.state.config).clone()).await.unwrap();
    // Just before the time on the first instance's clock, just after on the other's.
    app.advance_clock(std::time::Duration::from_secs(598));
    other.clock.advance(std::time::Duration::from_secs(603));
    let ask = |state: renrakumo::state::AppState| async move {
        let mut started = 0;
        for _ in 0..5 {
            started += scheduler::run_due(&state).await.unwrap();
        }
        started
    };
    app.advance_clock(std::time::Duration::from_secs(4));
    let (first, second, third) = tokio::join!(ask(app.state.clone()), ask(other.clone()), ask(app.state.clone()));
    assert_eq!(first + second + third, 1, "started once");
    let stats = stats(&app, token, &id).await;
    assert_eq!((stats["recipients"].clone(), stats["deliveries"]["email"]["queued"].clone()), (json!(20), json!(20)));
}

/// The relay takes the whole message and then the connection drops before its reply: the
/// message may or may not have been taken, and only a reply says it was, so the job is
/// tried again, not counted as sent.
async fn a_relay_that_drops_the_connection_at_the_end_of_data_has_not_taken_the_message(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Dropped School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "A", "emails": ["cut@example.jp"]})).await;
    smtp.drop_after_data("cut@example.jp");
    let id = draft(&app, token, json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}})).await;
    send(&app, token, &id, json!({})).await.ok(202);
    app.worker().run_once().await.unwrap();
    let waiting = stats(&app, token, &id).await;
    assert_eq!(waiting["deliveries"]["email"], json!({"queued": 1, "sent": 0, "failed": 0, "bounced": 0}));
    smtp.accept("cut@example.jp");
    app.deliver_all().await;
    assert_eq!(rcpts(&smtp.received()), ["cut@example.jp"]);
    assert_eq!(stats(&app, token, &id).await["deliveries"]["email"]["sent"], 1);
    app.assert_queue_empty().await;
}

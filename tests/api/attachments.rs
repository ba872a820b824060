//! Attachments: multipart upload with content sniffing, the 5-file and 1 MiB limits checked
//! while the body streams in, download with its name, and delivery as MIME parts.

use std::time::Duration;

use mail_parser::MimeHeaders;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::lists::{create_list, create_member};
use crate::on_both_backends;

on_both_backends!(
    an_upload_lists_and_downloads_byte_for_byte_with_its_name,
    a_file_that_is_not_on_the_allowlist_or_not_a_file_is_refused_naming_it,
    one_mebibyte_in_total_is_accepted_and_one_byte_more_stores_nothing,
    an_oversized_upload_is_cut_off_while_it_streams,
    five_files_are_accepted_and_a_sixth_is_refused,
    attachments_freeze_when_the_message_goes_out,
    other_organisations_see_nothing_and_viewers_only_read,
    a_sent_attachment_arrives_by_email_with_its_name_and_bytes,
);

const MIB: usize = 1_048_576;
const BOUNDARY: &str = "renrakumo-test-7MA4YWxkTrZu0gW";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// One part of a multipart body: (field name, filename, declared type, bytes).
type Part<'a> = (&'a str, Option<&'a str>, &'a str, &'a [u8]);

/// A filename starting with `*=` is sent as it stands after `filename` (RFC 5987's
/// `filename*=UTF-8''…`), others quoted as browsers send them.
fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match filename {
            Some(extended) if extended.starts_with("*=") => format!("form-data; name=\"{name}\"; filename{extended}"),
            Some(filename) => format!("form-data; name=\"{name}\"; filename=\"{filename}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn path(message: &str) -> String {
    format!("/api/v1/messages/{message}/attachments")
}

async fn post_raw(app: &TestApp, token: &str, message: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let response = app
        .client
        .post(app.url(&path(message)))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

async fn post_parts(app: &TestApp, token: &str, message: &str, parts: &[Part<'_>]) -> Reply {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    post_raw(app, token, message, &content_type, multipart(parts)).await
}

/// Uploads one file as browsers do (the declared type is whatever the client guessed).
async fn upload(app: &TestApp, token: &str, message: &str, filename: &str, bytes: &[u8]) -> Reply {
    post_parts(app, token, message, &[("file", Some(filename), "application/octet-stream", bytes)]).await
}

async fn listed(app: &TestApp, token: &str, message: &str) -> Vec<Value> {
    app.get(&path(message), token).await.ok(200)["items"].as_array().unwrap().clone()
}

async fn draft(app: &TestApp, token: &str, body: Value) -> String {
    app.post("/api/v1/messages", token, body).await.ok(201)["id"].as_str().unwrap().to_string()
}

/// A PDF of exactly `size` bytes, binary after its header (every byte value, CR, LF, dots).
fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut state: u32 = 0x1234_5678;
    while bytes.len() < size {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.push((state >> 24) as u8);
    }
    bytes.truncate(size);
    bytes
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.extend_from_slice(&[0x1f, 0x15, 0xc4, 0x89]);
    bytes
}

/// A ZIP archive (stored entries, empty) holding these names: enough for the sniffer.
fn zip(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for name in names {
        let offset = out.len() as u32;
        out.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        central.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// The file name from `filename*=UTF-8''…`.
fn disposition_name(header: &str) -> String {
    let encoded = header.split("filename*=UTF-8''").nth(1).expect("a filename* parameter");
    percent_encoding::percent_decode_str(encoded.split(';').next().unwrap()).decode_utf8().unwrap().into_owned()
}

async fn an_upload_lists_and_downloads_byte_for_byte_with_its_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Upload School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "遠足", "body": "しおりを添付します。"})).await;

    let letter = pdf(200_000);
    let created = upload(&app, token, &id, "お便り_10月号.pdf", &letter).await;
    let created = created.ok(201).clone();
    assert_eq!(created["filename"], "お便り_10月号.pdf");
    assert_eq!(created["content_type"], "application/pdf", "sniffed, not the declared octet-stream");
    assert_eq!(created["size"], 200_000);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let pdf_id = created["id"].as_str().unwrap().to_string();

    // Excel's CSV on Japanese Windows is Shift_JIS; the charset is recorded.
    let (roster, _, _) = encoding_rs::SHIFT_JIS.encode("名前,学年\r\n山田 花子,1\r\n");
    let csv = upload(&app, token, &id, "名簿.csv", &roster).await;
    assert_eq!(csv.ok(201)["content_type"], "text/csv; charset=Shift_JIS");
    // An Office document is a ZIP archive: accepted under its own name.
    let docx = zip(&["[Content_Types].xml", "_rels/.rels", "word/document.xml"]);
    let document = upload(&app, token, &id, "持ち物.docx", &docx).await;
    assert_eq!(document.ok(201)["content_type"], DOCX);
    // A path, control characters and a right-to-left override are dropped; a name without
    // the right extension gets it.
    let picture = upload(&app, token, &id, "/home/sensei/運動会\u{202E}の写真", &png()).await;
    assert_eq!(picture.ok(201)["filename"], "運動会の写真.png");
    let encoded = "*=UTF-8''C%3A%5Cfakepath%5C%E9%81%A0%E8%B6%B3%07%0D%0A.pdf";
    let pdf_name = post_parts(&app, token, &id, &[("file", Some(encoded), "application/pdf", &pdf(100))]).await;
    assert_eq!(pdf_name.ok(201)["filename"], "遠足.pdf");
    app.delete(&format!("{}/{}", path(&id), pdf_name.body["id"].as_str().unwrap()), token).await.ok(204);
    assert_eq!(picture.body["content_type"], "image/png");
    let long = format!("{}.pdf", "長".repeat(250));
    let cut = upload(&app, token, &id, &long, &pdf(100)).await;
    let cut_name = cut.ok(201)["filename"].as_str().unwrap().to_string();
    assert_eq!(cut_name.chars().count(), 200);
    assert!(cut_name.ends_with("長.pdf"));

    let items = listed(&app, token, &id).await;
    let names: Vec<&str> = items.iter().map(|i| i["filename"].as_str().unwrap()).collect();
    assert_eq!(names, ["お便り_10月号.pdf", "名簿.csv", "持ち物.docx", "運動会の写真.png", cut_name.as_str()]);
    assert_eq!(items[0], created);

    let response = app.client.get(app.url(&format!("{}/{pdf_id}", path(&id)))).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let disposition = headers["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''%E3%81%8A%E4%BE%BF%E3%82%8A_10%E6%9C%88%E5%8F%B7.pdf"));
    assert_eq!(disposition_name(&disposition), "お便り_10月号.pdf");
    assert_eq!(response.bytes().await.unwrap().as_ref(), letter.as_slice(), "the bytes as uploaded");
    let csv_id = csv.body["id"].as_str().unwrap();
    let response = app.client.get(app.url(&format!("{}/{csv_id}", path(&id)))).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=Shift_JIS");
    assert_eq!(response.bytes().await.unwrap().as_ref(), roster.as_ref());

    assert_eq!(app.delete(&format!("{}/{pdf_id}", path(&id)), token).await.status, 204);
    app.get(&format!("{}/{pdf_id}", path(&id)), token).await.problem(404);
    app.delete(&format!("{}/{pdf_id}", path(&id)), token).await.problem(404);
    assert_eq!(listed(&app, token, &id).await.len(), 4);
}

async fn a_file_that_is_not_on_the_allowlist_or_not_a_file_is_refused_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Refusal School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "s", "body": "b"})).await;

    let executable = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".repeat(8);
    let html = "<html><script>alert(1)</script></html>".as_bytes();
    let refused: [(&str, &[u8], &str); 7] = [
        ("setup.exe", &executable, "an executable"),
        ("お便り.pdf", &executable, "an executable named as a PDF"),
        ("page.html", html, "HTML, although it is text"),
        ("memo.txt", &executable, "binary named as text"),
        ("archive.zip", &zip(&["a.txt"]), "a ZIP archive"),
        ("letter.docx", &zip(&["a.txt"]), "a ZIP archive named as a document"),
        ("letter.docm", &zip(&["[Content_Types].xml", "word/document.xml", "word/vbaProject.bin"]), "macros"),
    ];
    for (filename, bytes, what) in refused {
        let answer = upload(&app, token, &id, filename, bytes).await;
        assert_eq!(answer.problem(415), ["file"], "{what}");
        assert_eq!(answer.body["type"], "urn:renrakumo:problem:unsupported-media-type");
    }
    // The declared type is not believed.
    let declared = post_parts(&app, token, &id, &[("file", Some("x.pdf"), "application/pdf", &executable)]).await;
    assert_eq!(declared.problem(415), ["file"]);

    assert_eq!(upload(&app, token, &id, "empty.pdf", b"").await.problem(422), ["file"]);
    let missing = post_parts(&app, token, &id, &[]).await;
    assert_eq!(missing.problem(422), ["file"]);
    let unknown = post_parts(&app, token, &id, &[("attachment", Some("a.pdf"), "application/pdf", &pdf(100))]).await;
    assert_eq!(unknown.problem(422), ["attachment"]);
    let two = post_parts(
        &app,
        token,
        &id,
        &[("file", Some("a.pdf"), "application/pdf", &pdf(100)), ("file", Some("b.pdf"), "application/pdf", &pdf(100))],
    )
    .await;
    assert_eq!(two.problem(422), ["file"]);
    let json = app.post(&path(&id), token, json!({"file": "JVBERi0="})).await;
    assert_eq!(json.problem(415), ["Content-Type"]);
    let broken =
        post_raw(&app, token, &id, &format!("multipart/form-data; boundary={BOUNDARY}"), b"garbage".to_vec()).await;
    broken.problem(400);

    assert!(listed(&app, token, &id).await.is_empty(), "no refusal stored anything");
    app.get("/api/v1/messages/no-such-message/attachments", token).await.problem(404);
    upload(&app, token, "no-such-message", "a.pdf", &pdf(100)).await.problem(404);
}

async fn one_mebibyte_in_total_is_accepted_and_one_byte_more_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Limit School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "s", "body": "b"})).await;

    let over = upload(&app, token, &id, "big.pdf", &pdf(MIB + 1)).await;
    assert_eq!(over.problem(413), ["file"]);
    assert_eq!(over.body["type"], "urn:renrakumo:problem:payload-too-large");
    assert!(listed(&app, token, &id).await.is_empty());

    let exact = upload(&app, token, &id, "exact.pdf", &pdf(MIB)).await;
    assert_eq!(exact.ok(201)["size"], MIB);
    assert_eq!(upload(&app, token, &id, "one.txt", b"a").await.problem(413), ["file"]);
    assert_eq!(listed(&app, token, &id).await.len(), 1);

    // The limit is on the total: two halves fill it exactly, one byte more does not fit.
    app.delete(&format!("{}/{}", path(&id), exact.body["id"].as_str().unwrap()), token).await.ok(204);
    upload(&app, token, &id, "first-half.pdf", &pdf(MIB / 2)).await.ok(201);
    upload(&app, token, &id, "second-half.pdf", &pdf(MIB / 2 - 1)).await.ok(201);
    upload(&app, token, &id, "last.txt", b"z").await.ok(201);
    assert_eq!(upload(&app, token, &id, "more.txt", b"z").await.problem(413), ["file"]);
    let items = listed(&app, token, &id).await;
    assert_eq!(items.iter().map(|i| i["size"].as_u64().unwrap() as usize).sum::<usize>(), MIB);
}

/// Sends an upload by hand: the request head, then up to `send` bytes of a body that claims
/// to be 50 MB (or never ends, when chunked). Returns the status the server answered, which
/// it must do long before the body is complete.
async fn raw_oversized_upload(app: &TestApp, token: &str, message: &str, chunked: bool, send: usize) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let length = if chunked { "Transfer-Encoding: chunked".to_string() } else { "Content-Length: 52428800".into() };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length}\r\n\r\n",
        path(message)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut preamble = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    preamble.extend_from_slice(&pdf(64 * 1024));
    let filler = pdf(64 * 1024);
    let mut sent = 0;
    let mut piece = preamble;
    while sent < send {
        let framed = if chunked {
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(&piece);
            framed.extend_from_slice(b"\r\n");
            framed
        } else {
            piece.clone()
        };
        // The server may stop reading once it has answered.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        sent += piece.len();
        piece = filler.clone();
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("an answer before the body ends");
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string();
    status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {status_line:?}"))
}

async fn an_oversized_upload_is_cut_off_while_it_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Stream School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "s", "body": "b"})).await;
    // A declared length that cannot fit is refused before the body is read.
    assert_eq!(raw_oversized_upload(&app, token, &id, false, 256 * 1024).await, 413);
    // Without a length, the count stops the upload after the first MiB: the server answers
    // while the client is still sending (the body here never ends).
    assert_eq!(raw_oversized_upload(&app, token, &id, true, 2 * MIB).await, 413);
    assert!(listed(&app, token, &id).await.is_empty());
    upload(&app, token, &id, "after.pdf", &pdf(1000)).await.ok(201);
}

async fn five_files_are_accepted_and_a_sixth_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Count School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "s", "body": "b"})).await;
    for n in 1..=5 {
        upload(&app, token, &id, &format!("page-{n}.png"), &png()).await.ok(201);
    }
    let sixth = upload(&app, token, &id, "page-6.png", &png()).await;
    assert_eq!(sixth.problem(422), ["file"]);
    assert!(sixth.body["detail"].as_str().unwrap().contains('5'), "{}", sixth.body);
    assert_eq!(listed(&app, token, &id).await.len(), 5);
    let first = listed(&app, token, &id).await[0]["id"].as_str().unwrap().to_string();
    app.delete(&format!("{}/{first}", path(&id)), token).await.ok(204);
    upload(&app, token, &id, "page-6.png", &png()).await.ok(201);
}

async fn attachments_freeze_when_the_message_goes_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Freeze School").await;
    let token = &admin.access_token;
    let member = create_member(&app, token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"]})).await;
    let body = json!({"subject": "s", "body": "b", "targets": {"member_ids": [member]}, "channels": ["email"]});

    // Scheduled messages still take attachments; cancelled ones do not.
    let scheduled = draft(&app, token, body.clone()).await;
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    app.post(&format!("/api/v1/messages/{scheduled}/send"), token, json!({"send_at": later})).await.ok(202);
    let kept = upload(&app, token, &scheduled, "a.pdf", &pdf(100)).await;
    kept.ok(201);
    app.post(&format!("/api/v1/messages/{scheduled}/cancel"), token, json!({})).await.ok(200);
    assert_eq!(upload(&app, token, &scheduled, "b.pdf", &pdf(100)).await.problem(409), ["status"]);

    let id = draft(&app, token, body).await;
    let file = upload(&app, token, &id, "a.pdf", &pdf(100)).await;
    let file_id = file.ok(201)["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/messages/{id}/send"), token, json!({})).await.ok(202);
    assert_eq!(upload(&app, token, &id, "b.pdf", &pdf(100)).await.problem(409), ["status"]);
    assert_eq!(app.delete(&format!("{}/{file_id}", path(&id)), token).await.problem(409), ["status"]);
    // Sent attachments stay readable.
    assert_eq!(listed(&app, token, &id).await.len(), 1);
    let download = app.call(Method::GET, &format!("{}/{file_id}", path(&id)), Auth::Bearer(token), None).await;
    download.ok(200);
}

async fn other_organisations_see_nothing_and_viewers_only_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Tenant School").await;
    let token = &admin.access_token;
    let id = draft(&app, token, json!({"subject": "s", "body": "b"})).await;
    let file = upload(&app, token, &id, "a.pdf", &pdf(100)).await;
    let file_id = file.ok(201)["id"].as_str().unwrap().to_string();
    let file_path = format!("{}/{file_id}", path(&id));

    let other = app.create_admin("Other School").await;
    let theirs = &other.access_token;
    app.get(&path(&id), theirs).await.problem(404);
    app.get(&file_path, theirs).await.problem(404);
    app.delete(&file_path, theirs).await.problem(404);
    upload(&app, theirs, &id, "b.pdf", &pdf(100)).await.problem(404);
    // Nor does an attachment show under another message, even of the same organisation.
    let their_message = draft(&app, theirs, json!({"subject": "s", "body": "b"})).await;
    app.get(&format!("{}/{file_id}", path(&their_message)), theirs).await.problem(404);
    let sibling = draft(&app, token, json!({"subject": "s", "body": "b"})).await;
    app.get(&format!("{}/{file_id}", path(&sibling)), token).await.problem(404);

    let (_, viewer) = app.create_staff(&admin, "viewer").await;
    upload(&app, &viewer, &id, "b.pdf", &pdf(100)).await.problem(403);
    app.delete(&file_path, &viewer).await.problem(403);
    assert_eq!(listed(&app, &viewer, &id).await.len(), 1);
    let response = app.client.get(app.url(&file_path)).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), pdf(100).as_slice());
    // A key with messages:read only reads, too.
    let (_, key) = app.create_api_key(&admin, json!({"name": "reader", "scopes": ["messages:read"]})).await;
    let read = app.call(Method::GET, &path(&id), Auth::ApiKey(&key), None).await;
    read.ok(200);
    let anonymous = app.call(Method::GET, &file_path, Auth::None, None).await;
    anonymous.problem(401);
}

async fn a_sent_attachment_arrives_by_email_with_its_name_and_bytes(backend: Backend) {
    let (app, smtp) = spawn_app_with_smtp(backend).await;
    let admin = app.create_admin("Mail School").await;
    let token = &admin.access_token;
    let list = create_list(&app, token, "1年A組").await;
    create_member(&app, token, json!({"name": "山田 花子", "emails": ["hanako@example.jp"], "list_ids": [list]})).await;
    let id = draft(
        &app,
        token,
        json!({"subject": "遠足のしおり", "body": "添付をご覧ください。", "targets": {"list_ids": [list]}, "channels": ["email"]}),
    )
    .await;
    let letter = pdf(300_000);
    upload(&app, token, &id, "遠足のしおり.pdf", &letter).await.ok(201);
    app.post(&format!("/api/v1/messages/{id}/send"), token, json!({})).await.ok(202);
    app.deliver_all().await;
    // The guardian's message, and the summary to the sender.
    let mails = smtp.wait_for(2).await;
    let mail = mails.iter().find(|m| m.to == ["hanako@example.jp"]).expect("the guardian's mail");
    let message = mail_parser::MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(message.subject(), Some("遠足のしおり"));
    assert_eq!(message.attachment_count(), 1);
    let attachment = message.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("遠足のしおり.pdf"));
    assert_eq!(attachment.content_type().map(|c| (c.ctype(), c.subtype())), Some(("application", Some("pdf"))));
    assert_eq!(attachment.contents(), letter.as_slice(), "byte for byte");
    app.assert_queue_empty().await;
}

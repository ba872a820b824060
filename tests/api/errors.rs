//! Every error answer is an RFC 9457 problem (`application/problem+json`) that names the
//! offending field, whoever produced it: our extractors, handlers, or actix itself.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_malformed_json_body_is_400_naming_the_body,
    an_empty_json_body_is_400_naming_the_body,
    a_value_of_the_wrong_json_type_is_422_naming_the_field,
    a_json_array_is_not_taken_for_the_object_it_lists_the_fields_of,
    an_unknown_enum_value_is_422_naming_the_field,
    a_missing_required_field_is_422_naming_it,
    an_unknown_field_is_422_naming_it,
    several_invalid_values_are_all_listed_in_one_answer,
    a_nested_invalid_value_is_named_by_its_path,
    a_body_that_is_not_json_is_415,
    a_form_body_sent_as_json_is_415,
    a_body_over_the_limit_is_413_naming_the_body,
    a_body_that_stops_or_trickles_is_cut_off_with_408_naming_the_body,
    bad_paging_parameters_are_422_naming_the_parameter,
    an_unknown_query_parameter_is_422_naming_it,
    an_unknown_route_is_a_404_problem,
    a_wrong_method_on_a_known_path_is_a_405_problem_naming_the_allowed_ones,
    a_request_without_credentials_is_401_with_a_bearer_challenge,
    a_garbage_bearer_token_is_401,
    an_unknown_api_key_is_401,
    an_id_that_does_not_exist_is_a_404_problem,
    a_nul_byte_in_the_input_is_a_client_error_not_a_server_error,
    error_answers_never_reveal_internals,
);

/// Words that only appear when an answer leaks how the server is built.
const INTERNALS: [&str; 10] =
    ["sqlx", "panicked", "stack backtrace", "RUST_BACKTRACE", "src/", ".rs:", "actix", "serde", "SQLSTATE", "postgres"];

fn assert_no_internals(answer: &Reply) {
    let text = answer.body.to_string();
    for word in INTERNALS {
        assert!(!text.to_lowercase().contains(&word.to_lowercase()), "an error answer mentions {word:?}: {text}");
    }
}

fn assert_names(fields: &[String], expected: &[&str]) {
    let mut fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    fields.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(fields, expected);
}

/// A valid body for POST /api/v1/users, for tests that break one thing in it.
fn new_user() -> Value {
    json!({
        "email": format!("staff-{}@school.example.jp", uuid::Uuid::new_v4().simple()),
        "password": PASSWORD,
        "name": "鈴木 先生",
        "role": "viewer",
    })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, field: &str) -> Value {
    body.as_object_mut().unwrap().remove(field);
    body
}

/// A request with a body of any content type and bytes, as a client with bugs sends it;
/// `token` empty for none.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.header(CONTENT_TYPE, content_type).body(body).send().await.unwrap();
    Reply::from(response).await
}

async fn a_malformed_json_body_is_400_naming_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    // A complete, valid request followed by something else is not JSON either.
    let trailing = format!("{} and more", new_user());
    for body in [
        r#"{"email": "a@b.jp", "password": "#,
        r#"{"email": "a@b.jp",}"#,
        "not json at all",
        r#"{"email": 'single quotes'}"#,
        trailing.as_str(),
    ] {
        let answer =
            raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", body.to_string()).await;
        assert_eq!(answer.problem(400), ["body"], "for {body}");
        assert_no_internals(&answer);
    }
    // The same on an endpoint that needs no sign-in.
    let answer = raw(&app, Method::POST, "/api/v1/auth/login", "", "application/json", "{").await;
    assert_eq!(answer.problem(400), ["body"]);
}

async fn an_empty_json_body_is_400_naming_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", "").await;
    assert_eq!(answer.problem(400), ["body"]);
}

async fn a_value_of_the_wrong_json_type_is_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = app.post("/api/v1/users", &admin.access_token, with(new_user(), "role", json!(5))).await;
    assert_eq!(answer.problem(422), ["role"]);
    assert_eq!(answer.body["type"], "urn:renrakumo:problem:validation");
    let answer = app.post("/api/v1/users", &admin.access_token, with(new_user(), "email", json!(["a@b.jp"]))).await;
    assert_eq!(answer.problem(422), ["email"]);
    // A JSON document that is not an object at all.
    let answer = app.post("/api/v1/users", &admin.access_token, json!("a string")).await;
    assert_eq!(answer.problem(422), ["body"]);
}

async fn a_json_array_is_not_taken_for_the_object_it_lists_the_fields_of(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let list = app.post("/api/v1/lists", &admin.access_token, json!({"name": "1年1組"})).await.ok(201).clone();
    let path = format!("/api/v1/lists/{}", list["id"].as_str().unwrap());
    // [name, description], as serde would read the fields of a struct in order.
    let answer = app.post("/api/v1/lists", &admin.access_token, json!(["1年2組", null])).await;
    assert_eq!(answer.problem(422), ["body"]);
    let answer = app.patch(&path, &admin.access_token, json!(["2年1組", "renamed by an array"])).await;
    assert_eq!(answer.problem(422), ["body"]);
    // Nothing was created or changed.
    let lists = app.get("/api/v1/lists", &admin.access_token).await.ok(200).clone();
    assert_eq!(lists["items"].as_array().unwrap().len(), 1, "{lists}");
    assert_eq!(app.get(&path, &admin.access_token).await.ok(200)["name"], "1年1組");
}

async fn an_unknown_enum_value_is_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = app.post("/api/v1/users", &admin.access_token, with(new_user(), "role", json!("headmaster"))).await;
    assert_eq!(answer.problem(422), ["role"]);
    assert!(answer.body["detail"].as_str().unwrap().contains("headmaster"), "{}", answer.body);
}

async fn a_missing_required_field_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    for field in ["email", "password", "name", "role"] {
        let answer = app.post("/api/v1/users", &admin.access_token, without(new_user(), field)).await;
        assert_eq!(answer.problem(422), [field]);
        assert_eq!(answer.body["errors"][0]["message"], "is required");
    }
    let answer = app.call(Method::POST, "/api/v1/auth/login", Auth::None, Some(json!({"email": "a@b.jp"}))).await;
    assert_eq!(answer.problem(422), ["password"]);
}

async fn an_unknown_field_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    // A typo of `permissions`: silently ignoring it would drop what the caller meant.
    let answer =
        app.post("/api/v1/users", &admin.access_token, with(new_user(), "permisions", json!(["contacts:read"]))).await;
    assert_eq!(answer.problem(422), ["permisions"]);
    assert_eq!(answer.body["errors"][0]["message"], "is not a known field");
    let answer =
        app.patch(&format!("/api/v1/users/{}", admin.user_id), &admin.access_token, json!({"nmae": "x"})).await;
    assert_eq!(answer.problem(422), ["nmae"]);
}

async fn several_invalid_values_are_all_listed_in_one_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = app
        .post(
            "/api/v1/users",
            &admin.access_token,
            json!({"email": "not-an-address", "password": "short", "name": "", "role": "viewer"}),
        )
        .await;
    let fields = answer.problem(422);
    assert_names(&fields, &["email", "password", "name"]);
    // Every field error carries a message, and the detail sums them up.
    for error in answer.body["errors"].as_array().unwrap() {
        assert!(!error["message"].as_str().unwrap().is_empty(), "{error}");
    }
    let detail = answer.body["detail"].as_str().unwrap();
    for field in ["email", "password", "name"] {
        assert!(detail.contains(field), "{detail}");
    }
    // Nothing was created.
    let list = app.get("/api/v1/users", &admin.access_token).await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);
}

async fn a_nested_invalid_value_is_named_by_its_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = app
        .post(
            "/api/v1/users",
            &admin.access_token,
            with(new_user(), "permissions", json!(["contacts:read", "no:such:scope"])),
        )
        .await;
    assert_eq!(answer.problem(422), ["permissions[1]"]);
}

async fn a_body_that_is_not_json_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let body = new_user().to_string();
    for content_type in ["text/plain", "application/xml", "multipart/form-data"] {
        let answer = raw(&app, Method::POST, "/api/v1/users", &admin.access_token, content_type, body.clone()).await;
        answer.problem(415);
        assert!(answer.body["detail"].as_str().unwrap().contains("application/json"), "{}", answer.body);
    }
    // No Content-Type at all.
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin.access_token)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    Reply::from(response).await.problem(415);
    // A JSON media type with parameters or a +json suffix is still JSON.
    for content_type in ["application/json; charset=utf-8", "application/merge-patch+json"] {
        let answer =
            raw(&app, Method::POST, "/api/v1/users", &admin.access_token, content_type, new_user().to_string()).await;
        answer.ok(201);
    }
}

async fn a_form_body_sent_as_json_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    // The OAuth2 token endpoint takes a form; JSON there is the wrong media type.
    let answer = raw(
        &app,
        Method::POST,
        "/api/v1/auth/token",
        "",
        "application/json",
        r#"{"grant_type": "password", "username": "a@b.jp", "password": "x"}"#,
    )
    .await;
    answer.problem(415);
}

async fn a_body_over_the_limit_is_413_naming_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    const LIMIT: usize = 256 * 1024;
    assert_eq!(renrakumo::api::extract::JSON_LIMIT, LIMIT);
    // A valid body whose name makes it exactly `size` bytes long.
    let padded = |size: usize| {
        let base = with(new_user(), "name", json!("")).to_string().len();
        let text = with(new_user(), "name", json!("x".repeat(size - base))).to_string();
        assert_eq!(text.len(), size);
        text
    };
    let answer =
        raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", padded(LIMIT + 1024)).await;
    assert_eq!(answer.problem(413), ["body"]);
    assert_no_internals(&answer);
    let answer = raw(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        "",
        "application/json",
        format!(r#"{{"email": "a@b.jp", "password": "{}"}}"#, "p".repeat(LIMIT)),
    )
    .await;
    assert_eq!(answer.problem(413), ["body"]);
    // Just under the limit the body is read, and the long name is a validation error.
    let answer =
        raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", padded(LIMIT - 1024)).await;
    assert_eq!(answer.problem(422), ["name"]);
}

async fn bad_paging_parameters_are_422_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=201", "limit"),
        ("limit=1000", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=", "cursor"),
        // Valid base64 that this API never wrote.
        ("cursor=djI6eHl6", "cursor"),
    ] {
        let answer = app.get(&format!("/api/v1/users?{query}"), &admin.access_token).await;
        assert_eq!(answer.problem(422), [field], "for ?{query}");
        assert_no_internals(&answer);
    }
    for path in ["/api/v1/users?limit=1", "/api/v1/users?limit=200"] {
        app.get(path, &admin.access_token).await.ok(200);
    }
}

async fn an_unknown_query_parameter_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answer = app.get("/api/v1/users?limt=5", &admin.access_token).await;
    assert_eq!(answer.problem(422), ["limt"]);
}

async fn an_unknown_route_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    for path in ["/nope", "/api/v1/nope", "/api/v2/users", "/api/v1/users/1/2/3"] {
        let answer = app.get(path, &admin.access_token).await;
        answer.problem(404);
        assert_no_internals(&answer);
    }
    let answer = app.call(Method::GET, "/api/v1/nope", Auth::None, None).await;
    answer.problem(404);
}

async fn a_wrong_method_on_a_known_path_is_a_405_problem_naming_the_allowed_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let user_path = format!("/api/v1/users/{}", admin.user_id);
    for (method, path, allow) in [
        (Method::PUT, "/api/v1/users", "GET, POST"),
        (Method::DELETE, "/api/v1/users", "GET, POST"),
        (Method::POST, user_path.as_str(), "GET, PATCH, DELETE"),
        (Method::PUT, user_path.as_str(), "GET, PATCH, DELETE"),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::POST, "/healthz", "GET"),
        (Method::DELETE, "/api/v1/me", "GET"),
        // A literal path beside a template (`/members/{id}`) names its own methods only.
        (Method::OPTIONS, "/api/v1/members/export", "GET"),
        (Method::PUT, "/api/v1/members/import", "POST"),
    ] {
        let answer = app.call(method.clone(), path, Auth::Bearer(&admin.access_token), None).await;
        assert!(answer.problem(405).is_empty(), "{method} {path}");
        assert_eq!(answer.headers.get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{method} {path}");
        assert_eq!(answer.body["type"], "urn:renrakumo:problem:method-not-allowed");
        assert_no_internals(&answer);
    }
    // A path nobody documents stays a 404, whatever the method.
    app.call(Method::DELETE, "/api/v1/users/x/y", Auth::Bearer(&admin.access_token), None).await.problem(404);
}

async fn a_request_without_credentials_is_401_with_a_bearer_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    for (method, path, body) in [
        (Method::GET, "/api/v1/me".to_string(), None),
        (Method::GET, "/api/v1/users".to_string(), None),
        (Method::POST, "/api/v1/users".to_string(), Some(new_user())),
        (Method::GET, format!("/api/v1/users/{}", admin.user_id), None),
        (Method::GET, "/api/v1/api-keys".to_string(), None),
        (Method::POST, "/api/v1/auth/logout".to_string(), None),
    ] {
        let answer = app.call(method, &path, Auth::None, body).await;
        answer.problem(401);
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer", "for {path}: {:?}", answer.headers);
        assert_eq!(answer.body["type"], "urn:renrakumo:problem:unauthorized");
    }
}

async fn a_garbage_bearer_token_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "rk_rt_abc"] {
        let answer = app.get("/api/v1/me", token).await;
        answer.problem(401);
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer");
        assert_no_internals(&answer);
    }
    // A scheme other than Bearer is no credential at all.
    let response = app.client.get(app.url("/api/v1/me")).basic_auth("admin", Some("password")).send().await.unwrap();
    Reply::from(response).await.problem(401);
}

async fn an_unknown_api_key_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.call(Method::GET, "/api/v1/me", Auth::ApiKey("rk_live_not_a_real_key"), None).await;
    answer.problem(401);
}

async fn an_id_that_does_not_exist_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/users/{unknown}"), None),
        (Method::PATCH, format!("/api/v1/users/{unknown}"), Some(json!({"name": "x"}))),
        (Method::DELETE, format!("/api/v1/users/{unknown}"), None),
        (Method::GET, format!("/api/v1/api-keys/{unknown}"), None),
        (Method::DELETE, format!("/api/v1/api-keys/{unknown}"), None),
        (Method::GET, "/api/v1/users/not-even-a-uuid".to_string(), None),
    ] {
        let answer = app.call(method.clone(), &path, Auth::Bearer(&admin.access_token), body).await;
        assert!(answer.problem(404).is_empty(), "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["type"], "urn:renrakumo:problem:not-found");
        assert_no_internals(&answer);
    }
}

/// PostgreSQL refuses text with a NUL character and SQLite stores it; either way it is the
/// client's input, so the answer must be a 4xx problem on both backends, never a 500 (nor
/// a 201 on one backend only).
async fn a_nul_byte_in_the_input_is_a_client_error_not_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let answers = [
        ("a path id", app.get("/api/v1/users/a%00b", &admin.access_token).await),
        ("a login address", app.login(&admin.email.replace('@', "\u{0}@"), &admin.password).await),
        (
            "a staff name",
            app.post("/api/v1/users", &admin.access_token, with(new_user(), "name", json!("鈴木\u{0}先生"))).await,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, answer) in answers {
        assert_no_internals(&answer);
        if !answer.status.is_client_error() || answer.headers[CONTENT_TYPE] != "application/problem+json" {
            wrong.push(format!("{what}: {} {}", answer.status, answer.body));
        }
    }
    assert!(wrong.is_empty(), "NUL accepted or 500:\n{}", wrong.join("\n"));
}

async fn error_answers_never_reveal_internals(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_admin("Error School").await;
    let taken = app.post("/api/v1/users", &admin.access_token, with(new_user(), "email", json!(admin.email))).await;
    // The unique constraint becomes a 409 naming the field, not the constraint.
    assert_eq!(taken.problem(409), ["email"]);
    let answers = [
        taken,
        app.get("/api/v1/users?limit=abc", &admin.access_token).await,
        app.get("/api/v1/users/%ff%fe", &admin.access_token).await,
        app.get("/api/v1/users?cursor=%ff", &admin.access_token).await,
        app.get("/api/v1/me", "garbage").await,
        app.get("/nope", &admin.access_token).await,
        raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", "\u{feff}{\"email\": 1}")
            .await,
        raw(&app, Method::POST, "/api/v1/users", &admin.access_token, "application/json", vec![0xff_u8, 0xfe, 0x00])
            .await,
    ];
    for answer in answers {
        assert!(answer.status.is_client_error(), "{}: {}", answer.status, answer.body);
        assert_eq!(answer.headers[CONTENT_TYPE], "application/problem+json");
        assert_no_internals(&answer);
    }
}

async fn a_body_that_stops_or_trickles_is_cut_off_with_408_naming_the_body(backend: Backend) {
    use renrakumo::request_body::BodyTimeouts;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(backend, |config| {
        config.body_timeouts = BodyTimeouts { idle: Duration::from_millis(300), total: Duration::from_millis(1500) };
    })
    .await;
    let admin = app.create_admin("Slow Client School").await;
    let body = br#"{"name": "Class 1-A", "description": "a body that the client never finishes"}"#;
    let head = |extra: &str| {
        format!(
            "POST /api/v1/lists HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}{extra}",
            admin.access_token,
            body.len()
        )
    };
    // Headers, a third of the body, then nothing: answered, not waited for forever. With an
    // Idempotency-Key the body is read by the idempotency store first, with the same limit.
    for extra in ["", "\r\nIdempotency-Key: stalled-1"] {
        let mut stream = app.send_raw(&head(extra), &body[..body.len() / 3]).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), read_raw_answer(&mut stream))
            .await
            .expect("the server answers a stalled body");
        assert_eq!(answer.status, 408, "{}", answer.body);
        let problem: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(problem["errors"][0]["field"], "body");
    }
    // A byte every 100 ms never pauses long enough for the idle limit, but the whole body
    // must still arrive within the total.
    let (mut reader, mut writer) = app.send_raw(&head(""), b"").await.into_split();
    let trickle = async {
        for byte in body {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let answer = tokio::select! {
        answer = read_raw_answer(&mut reader) => answer,
        _ = trickle => panic!("the whole body went through: nothing cut it off"),
    };
    assert_eq!(answer.status, 408, "{}", answer.body);
    let lists = app.get("/api/v1/lists", &admin.access_token).await;
    assert_eq!(lists.ok(200)["items"], json!([]), "nothing was created from a body that never arrived");
}

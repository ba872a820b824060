//! What operators and API users rely on around the API itself: health checks, request ids,
//! Swagger UI and the OpenAPI document (served, generated and committed alike).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(readyz_answers_when_the_database_does);

const REGENERATE: &str = "cargo run -q -- openapi > openapi/openapi.json";

fn committed_spec_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json")
}

async fn fetch(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

async fn served_spec(app: &TestApp) -> Value {
    let response = fetch(app, "/api-docs/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    response.json().await.unwrap()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app(Backend::Sqlite).await;
    let answer = Reply::from(fetch(&app, "/healthz").await).await;
    assert_eq!(answer.ok(200), &serde_json::json!({"status": "ok"}));
    assert!(answer.headers[CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
}

async fn readyz_answers_when_the_database_does(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = Reply::from(fetch(&app, "/readyz").await).await;
    assert_eq!(answer.ok(200)["status"], "ready");
}

#[tokio::test]
async fn every_answer_carries_its_own_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ids = Vec::new();
    // Successes, redirects, our own errors and actix's fall-through alike.
    for path in ["/healthz", "/healthz", "/", "/api/v1/me", "/no/such/route", "/api-docs/openapi.json"] {
        let response = fetch(&app, path).await;
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {path}: {:?}", response.headers()))
            .to_str()
            .unwrap()
            .to_string();
        assert!(!id.is_empty(), "{path}");
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "request ids repeat: {ids:?}");
}

#[tokio::test]
async fn every_answer_forbids_sniffing_and_framing_and_api_answers_are_not_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.create_admin("Header School").await;
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    };
    // A success with personal data, an error, a public check, actix's own 404, Swagger UI.
    let members = app.client.get(app.url("/api/v1/members")).bearer_auth(&admin.access_token).send().await.unwrap();
    assert_eq!(members.status(), StatusCode::OK);
    let unauthenticated = fetch(&app, "/api/v1/members").await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    for response in [&members, &unauthenticated] {
        assert_eq!(header(response, "cache-control"), "no-store", "{:?}", response.headers());
        assert_eq!(header(response, "content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
    }
    let healthz = fetch(&app, "/healthz").await;
    let unknown = fetch(&app, "/no/such/route").await;
    let swagger = fetch(&app, "/swagger-ui/").await;
    assert_eq!(swagger.status(), StatusCode::OK);
    for response in [&members, &unauthenticated, &healthz, &unknown, &swagger] {
        assert_eq!(header(response, "x-content-type-options"), "nosniff", "{}", response.url());
        assert_eq!(header(response, "x-frame-options"), "DENY", "{}", response.url());
        assert_eq!(header(response, "referrer-policy"), "no-referrer", "{}", response.url());
    }
    // Swagger UI runs its own scripts: no API policy there.
    assert_eq!(header(&swagger, "content-security-policy"), "");
}

#[tokio::test]
async fn the_root_redirects_to_swagger_ui() {
    let app = spawn_app(Backend::Sqlite).await;
    // The address a person types: host and port, nothing else.
    let response = app.client.get(format!("http://127.0.0.1:{}", app.port)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION], "/swagger-ui/");
}

/// The `src` of every `<script>` in the page, relative to /swagger-ui/.
fn script_sources(html: &str) -> Vec<String> {
    html.split("<script")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            let start = tag.find("src=\"")? + "src=\"".len();
            let end = start + tag[start..].find('"')?;
            Some(tag[start..end].to_string())
        })
        .collect()
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_with_its_scripts() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = fetch(&app, "/swagger-ui/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let scripts = script_sources(&html);
    assert!(scripts.iter().any(|s| s.contains("swagger-ui-bundle")), "no bundle in {scripts:?}");
    // Vendored: nothing is fetched from a CDN, so it works offline.
    for script in &scripts {
        assert!(
            !script.starts_with("http://") && !script.starts_with("https://") && !script.starts_with("//"),
            "Swagger UI loads {script} from elsewhere"
        );
        let path = format!("/swagger-ui/{}", script.trim_start_matches("./"));
        let response = fetch(&app, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = response.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path} is empty");
        if script.contains("swagger-ui-bundle") {
            assert!(body.len() > 100_000, "{path} is only {} bytes", body.len());
        }
    }
    // The initializer points Swagger UI at our document.
    let initializer = fetch(&app, "/swagger-ui/swagger-initializer.js").await.text().await.unwrap();
    assert!(initializer.contains("/api-docs/openapi.json"), "{initializer}");
}

#[tokio::test]
async fn the_served_spec_is_the_generated_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let served = served_spec(&app).await;
    let generated = serde_json::to_value(renrakumo::openapi::spec()).unwrap();
    assert!(served == generated, "/api-docs/openapi.json differs from renrakumo::openapi::spec()");
}

#[tokio::test]
async fn the_committed_spec_is_up_to_date() {
    let path = committed_spec_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}\nGenerate it with `{REGENERATE}` and commit it.", path.display())
    });
    let generated = renrakumo::openapi::spec_json();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(committed.lines().count().min(generated.lines().count()) + 1);
        panic!(
            "openapi/openapi.json is out of date (first difference at line {first_difference}).\n\
             The API changed; regenerate the committed document with\n\n    {REGENERATE}\n\n\
             and commit it with the change."
        );
    }
}

#[tokio::test]
async fn the_spec_declares_bearer_oauth2_and_api_key_security() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = served_spec(&app).await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["oauth2"]["type"], "oauth2");
    assert_eq!(schemes["oauth2"]["flows"]["password"]["tokenUrl"], "/api/v1/auth/token");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
}

#[tokio::test]
async fn every_api_operation_but_sign_in_requires_security() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = served_spec(&app).await;
    // Sign-in, the guardian app's ways in (an invitation or a join code), and the personal
    // link's JSON twin, whose token in the path is the credential.
    let public_prefixes = ["/api/v1/receipts/"];
    let public = [
        "/api/v1/auth/login",
        "/api/v1/auth/token",
        "/api/v1/auth/refresh",
        "/api/v1/app/session",
        "/api/v1/app/register",
    ];
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    // An operation without its own `security` needs the document's; `[]` overrides it.
    let global = spec["security"].as_array();
    let mut unsecured = Vec::new();
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in operations.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let requirements = operation.get("security").map_or(global, |own| own.as_array());
            if public.contains(&path.as_str()) || public_prefixes.iter().any(|prefix| path.starts_with(prefix)) {
                assert!(
                    requirements.is_none_or(|r| r.is_empty()),
                    "{method} {path} is a sign-in endpoint and needs no credentials"
                );
                continue;
            }
            checked += 1;
            match requirements {
                Some(requirements) if !requirements.is_empty() => {
                    for requirement in requirements {
                        for name in requirement.as_object().unwrap().keys() {
                            assert!(schemes.contains_key(name), "{method} {path} names the undeclared scheme {name}");
                        }
                    }
                }
                _ => unsecured.push(format!("{} {path}", method.to_uppercase())),
            }
        }
    }
    assert!(checked >= 10, "only {checked} operations found");
    assert!(unsecured.is_empty(), "operations without a security requirement: {unsecured:?}");
    for path in public {
        assert!(spec["paths"][path]["post"].is_object(), "{path} is missing");
    }
}

#[tokio::test]
async fn every_operation_declares_the_errors_its_credential_body_and_parameters_can_bring() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = served_spec(&app).await;
    let global = spec["security"].as_array().cloned().unwrap_or_default();
    let mut missing = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let secured = !operation.get("security").and_then(Value::as_array).unwrap_or(&global).is_empty();
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let takes = |place: &str| parameters.iter().any(|p| p["in"] == place);
            let body = operation.get("requestBody").is_some();
            let staff = operation
                .get("security")
                .and_then(Value::as_array)
                .unwrap_or(&global)
                .iter()
                .any(|r| r.get("oauth2").is_some() || r.get("api_key").is_some());
            let mut expected = Vec::new();
            if secured {
                expected.push("401");
            }
            if staff {
                expected.push("403");
            }
            if body || takes("path") || takes("header") {
                expected.push("400");
            }
            if body {
                expected.extend(["413", "415"]);
            }
            if body || takes("query") {
                expected.push("422");
            }
            for status in expected {
                if !responses.contains_key(status) {
                    missing.push(format!("{} {path}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undeclared answers:\n{}", missing.join("\n"));
    // What an operation says of a status itself is kept (not replaced by the shared text).
    let login = &spec["paths"]["/api/v1/auth/login"]["post"]["responses"];
    assert_eq!(login["401"]["description"], "Wrong address or password");
}

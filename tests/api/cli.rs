//! The real binary, as an operator runs it: configuration errors, `openapi`,
//! `create-admin`, `migrate` and `serve`.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    create_admin_prints_the_ids_and_the_admin_can_then_sign_in,
    create_admin_refuses_an_address_that_is_taken,
    serve_on_an_empty_database_says_how_to_create_the_first_admin,
    migrate_prepares_a_fresh_database,
    create_admin_works_beside_a_running_server,
    backup_copies_a_running_sqlite_database_and_points_postgres_at_pg_dump,
);

pub const BIN: &str = env!("CARGO_BIN_EXE_renrakumo");
const TIMEOUT: Duration = Duration::from_secs(60);

/// The binary with nothing inherited from the shell that could change what it reads,
/// run in an empty directory so that defaults (./renrakumo.db, ./outbox) land there.
pub fn renrakumo(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RENRAKUMO_") {
            command.env_remove(name);
        }
    }
    // The default log filter, as an operator gets it.
    command.env_remove("RUST_LOG").env("NO_COLOR", "1").current_dir(dir).args(args).stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs to completion, or fails the test (and kills the process) after `TIMEOUT`.
fn run(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(TIMEOUT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{command:?} did not finish within {TIMEOUT:?}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("renrakumo.db").display())
}

/// Asserts that start-up stopped on a configuration error: exit code 2, nothing on
/// stdout, and exactly one stderr line naming the variable. Returns that line.
fn assert_configuration_error(output: &Output, variable: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}\nstdout: {}", text(&output.stdout));
    assert!(output.stdout.is_empty(), "stdout: {}", text(&output.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not exactly one line: {stderr:?}");
    assert!(
        lines[0].starts_with(&format!("renrakumo: configuration error: {variable}: ")),
        "{:?} does not name {variable}",
        lines[0]
    );
    lines[0].to_string()
}

#[test]
fn a_bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    let key_not_p8 = dir.path().join("not-a-key.p8");
    std::fs::write(&key_not_p8, "hello").unwrap();
    let key_not_p8 = key_not_p8.display().to_string();
    let no_certificate = dir.path().join("ca.pem");
    std::fs::write(&no_certificate, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let no_certificate = no_certificate.display().to_string();
    for (variable, value, says) in [
        ("RENRAKUMO_DATABASE_URL", "mysql://x", "unknown scheme 'mysql'"),
        ("RENRAKUMO_DATABASE_URL", "nonsense", "not a URL"),
        ("RENRAKUMO_SMTP_URL", "ftp://h", "unknown scheme 'ftp'"),
        ("RENRAKUMO_APNS_KEY_FILE", "/nonexistent.p8", "cannot read /nonexistent.p8"),
        ("RENRAKUMO_APNS_KEY_FILE", &key_not_p8, "not a .p8"),
        ("RENRAKUMO_SMTP_CA_FILE", "/nonexistent.pem", "cannot read /nonexistent.pem"),
        ("RENRAKUMO_SMTP_CA_FILE", &no_certificate, "holds no certificate"),
        ("RENRAKUMO_BIND", "notanaddress", "notanaddress"),
        ("RENRAKUMO_PUBLIC_URL", "not a url", "not a URL"),
        ("RENRAKUMO_LOG_FORMAT", "xml", "xml"),
        ("RENRAKUMO_DELIVERY_MAX_AGE", "1 day", "not a duration"),
        ("RENRAKUMO_DELIVERY_MAX_AGE", "0h", "not a duration"),
        ("RENRAKUMO_JWT_SECRET", "short", "at least 32 characters"),
    ] {
        let mut env = vec![(variable, value)];
        if variable != "RENRAKUMO_DATABASE_URL" {
            env.push(("RENRAKUMO_DATABASE_URL", &database));
        }
        // With no subcommand (serve) and with each subcommand that reads the configuration.
        for args in [&[][..], &["serve"], &["migrate"]] {
            let output = run(renrakumo(dir.path(), args, &env));
            let line = assert_configuration_error(&output, variable);
            assert!(line.contains(says), "{variable}={value} {args:?}: {line}");
        }
    }
    // Nothing was created on the way out.
    assert!(!dir.path().join("renrakumo.db").exists());
}

#[test]
fn a_flag_is_checked_like_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(renrakumo(
        dir.path(),
        &["serve", "--bind", "notanaddress"],
        &[("RENRAKUMO_DATABASE_URL", &sqlite_url(dir.path()))],
    ));
    assert_configuration_error(&output, "RENRAKUMO_BIND");
}

#[test]
fn a_configuration_error_does_not_echo_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(renrakumo(
        dir.path(),
        &[],
        &[("RENRAKUMO_DATABASE_URL", &sqlite_url(dir.path())), ("RENRAKUMO_SMTP_URL", "ftp://mailer:hunter2secret@h")],
    ));
    let line = assert_configuration_error(&output, "RENRAKUMO_SMTP_URL");
    assert!(!line.contains("hunter2secret"), "{line}");
    let output = run(renrakumo(dir.path(), &[], &[("RENRAKUMO_DATABASE_URL", "mysql://root:hunter2secret@db/x")]));
    let line = assert_configuration_error(&output, "RENRAKUMO_DATABASE_URL");
    assert!(!line.contains("hunter2secret"), "{line}");
}

#[test]
fn openapi_prints_exactly_the_committed_document() {
    let dir = tempfile::tempdir().unwrap();
    let committed =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    // The document does not depend on the configuration, so even a broken one prints it.
    for env in [vec![], vec![("RENRAKUMO_DATABASE_URL", "mysql://x")]] {
        let output = run(renrakumo(dir.path(), &["openapi"], &env));
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stdout) == committed,
            "`renrakumo openapi` differs from openapi/openapi.json; regenerate it with \
             `cargo run -q -- openapi > openapi/openapi.json`"
        );
        assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    }
    serde_json::from_str::<Value>(&committed).expect("the document is JSON");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

fn create_admin(dir: &std::path::Path, database_url: &str, org: &str, email: &str) -> Output {
    run(renrakumo(
        dir,
        &["create-admin", "--org", org, "--email", email, "--password", PASSWORD],
        &[("RENRAKUMO_DATABASE_URL", database_url)],
    ))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `renrakumo serve` as a child process; killed when dropped, pass or fail.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// Starts `serve` and waits (at most ~10 s) until /healthz answers.
    async fn start(dir: &std::path::Path, database_url: &str) -> Server {
        renrakumo::install_crypto_provider();
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let child = renrakumo(
            dir,
            &["serve"],
            &[("RENRAKUMO_DATABASE_URL", database_url), ("RENRAKUMO_BIND", &bind), ("RENRAKUMO_WORKERS", "0")],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
        let mut server = Server { child, address: format!("http://{bind}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("serve exited with {status}: {}", server.stop());
            }
            let healthy = client
                .get(format!("{}/healthz", server.address))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return server;
            }
            if Instant::now() > deadline {
                panic!("serve did not answer /healthz within 10 s: {}", server.stop());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process and returns everything it wrote to stderr.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        stderr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HINT: &str = "renrakumo create-admin";

async fn create_admin_prints_the_ids_and_the_admin_can_then_sign_in(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database(backend).await;
    let email = "kocho@sakura.example.jp";
    let output = create_admin(dir.path(), &database_url, "さくら小学校", email);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stdout:?}");
    let created: Value = serde_json::from_str(lines[0]).expect("one JSON line");
    let org_id = created["org_id"].as_str().expect("org_id").to_string();
    let user_id = created["user_id"].as_str().expect("user_id").to_string();
    assert!(uuid::Uuid::parse_str(&org_id).is_ok() && uuid::Uuid::parse_str(&user_id).is_ok());
    assert!(!stdout.contains(PASSWORD) && !text(&output.stderr).contains(PASSWORD));

    // `serve` on the same database lets that admin sign in.
    let mut server = Server::start(dir.path(), &database_url).await;
    let client = reqwest::Client::new();
    let token = sign_in(&client, &server, email).await;
    let me = get_json(&client, &server, &token, "/api/v1/me").await;
    assert_eq!(me["id"], user_id.as_str());
    assert_eq!(me["org_id"], org_id.as_str());
    assert_eq!(me["org_name"], "さくら小学校");
    assert_eq!(me["role"], "admin");
    let stderr = server.stop();
    assert!(!stderr.contains(HINT), "the first-admin hint is shown although an admin exists: {stderr}");
}

async fn create_admin_refuses_an_address_that_is_taken(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database(backend).await;
    let email = "kocho@sakura.example.jp";
    let first = create_admin(dir.path(), &database_url, "Sakura", email);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // Addresses are unique within an organisation only: the same principal may run the
    // first admin account of another school (the password picks the account at sign-in).
    let other = create_admin(dir.path(), &database_url, "Another School", &email.to_uppercase());
    assert!(other.status.success(), "{}", text(&other.stderr));
    // Invalid input names the flag.
    let output = create_admin(dir.path(), &database_url, "School", "not-an-address");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--email"), "{}", text(&output.stderr));
    // The refused attempt left no organisation behind.
    let db = renrakumo::db::Db::connect(&database_url).await.unwrap();
    let organisations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(organisations, 2);
    db.pool.close().await;
}

async fn serve_on_an_empty_database_says_how_to_create_the_first_admin(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database(backend).await;
    let mut server = Server::start(dir.path(), &database_url).await;
    let stderr = server.stop();
    assert!(stderr.contains(HINT), "no hint in: {stderr}");
    assert!(stderr.contains("--org") && stderr.contains("--email") && stderr.contains("--password"), "{stderr}");
}

async fn migrate_prepares_a_fresh_database(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database(backend).await;
    // Twice: applying migrations is idempotent.
    for _ in 0..2 {
        let output = run(renrakumo(dir.path(), &["migrate"], &[("RENRAKUMO_DATABASE_URL", &database_url)]));
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    }
    let db = renrakumo::db::Db::connect(&database_url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&db.pool).await.unwrap();
    assert!(applied >= 1);
    let organisations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(organisations, 0);
    db.pool.close().await;
}

/// An operator may add an organisation while the service runs: no restart is needed.
async fn create_admin_works_beside_a_running_server(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.backend, backend);
    let dir = tempfile::tempdir().unwrap();
    let email = "kocho@later.example.jp";
    let output = create_admin(dir.path(), &app.database_url, "Later School", email);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let tokens = app.login(email, PASSWORD).await;
    let me = app.get("/api/v1/me", tokens.ok(200)["access_token"].as_str().unwrap()).await;
    assert_eq!(me.ok(200)["org_id"], created["org_id"]);
}

async fn sign_in(client: &reqwest::Client, server: &Server, email: &str) -> String {
    let tokens: Value = client
        .post(format!("{}/api/v1/auth/login", server.address))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the admin signs in")
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

/// A GET that must succeed, as JSON.
async fn get_json(client: &reqwest::Client, server: &Server, token: &str, path: &str) -> Value {
    client
        .get(format!("{}{path}", server.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn list_names(client: &reqwest::Client, server: &Server, token: &str) -> Vec<String> {
    let lists = get_json(client, server, token, "/api/v1/lists").await;
    lists["items"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_string()).collect()
}

async fn backup_copies_a_running_sqlite_database_and_points_postgres_at_pg_dump(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database(backend).await;
    let email = "kocho@sakura.example.jp";
    assert!(create_admin(dir.path(), &database_url, "さくら小学校", email).status.success());
    let backup_file = dir.path().join("backup.db");
    let backup = || {
        run(renrakumo(
            dir.path(),
            &["backup", backup_file.to_str().unwrap()],
            &[("RENRAKUMO_DATABASE_URL", &database_url)],
        ))
    };
    if backend == Backend::Postgres {
        let output = backup();
        assert_eq!(output.status.code(), Some(1));
        assert!(text(&output.stderr).contains("pg_dump"), "says what to use: {}", text(&output.stderr));
        assert!(!backup_file.exists(), "no file is written");
        return;
    }
    // Taken while the server runs and has just written.
    let mut server = Server::start(dir.path(), &database_url).await;
    let client = reqwest::Client::new();
    let token = sign_in(&client, &server, email).await;
    client
        .post(format!("{}/api/v1/lists", server.address))
        .bearer_auth(&token)
        .json(&json!({"name": "1年1組"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let output = backup();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed: Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    assert_eq!(printed["bytes"].as_u64(), Some(std::fs::metadata(&backup_file).unwrap().len()));
    let again = backup();
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    server.stop();
    // Restoring is putting the file in place: a server on the copy has everything.
    let restored = format!("sqlite://{}?mode=rw", backup_file.display());
    let server = Server::start(dir.path(), &restored).await;
    let token = sign_in(&client, &server, email).await;
    assert_eq!(list_names(&client, &server, &token).await, ["1年1組"]);
    // A URL without a renrakumo database is refused, not copied.
    let empty = run(renrakumo(
        dir.path(),
        &["backup", dir.path().join("nothing.db").to_str().unwrap()],
        &[("RENRAKUMO_DATABASE_URL", &format!("sqlite://{}?mode=rwc", dir.path().join("empty.db").display()))],
    ));
    assert_eq!(empty.status.code(), Some(1));
    assert!(!dir.path().join("nothing.db").exists());
}

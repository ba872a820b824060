//! `spawn_app()`: the application as it runs in production, on port 0 and a fresh database.

use std::sync::OnceLock;

use renrakumo::config::Config;
use renrakumo::startup::Application;
use renrakumo::state::AppState;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Generates `sqlite::<test>` and `postgres::<test>` for each async test fn taking a Backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_available() {
                        super::$name($crate::helpers::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server that tests create their databases on; `postgres` is the maintenance database.
pub fn postgres_admin_url() -> String {
    std::env::var("RENRAKUMO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether the PostgreSQL half can run. Without a server a newcomer's run still passes on
/// SQLite (the test script says plainly that the PostgreSQL half did not run); under CI an
/// unreachable server fails the run.
pub fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let url = url::Url::parse(&postgres_admin_url()).expect("RENRAKUMO_TEST_POSTGRES_URL is a URL");
        let address = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(5432));
        let reachable = std::net::ToSocketAddrs::to_socket_addrs(&address)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok());
        if !reachable && std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("PostgreSQL is unreachable at {address} and CI=true: the PostgreSQL half must run in CI");
        }
        if !reachable {
            eprintln!("PostgreSQL unreachable at {address}: PostgreSQL tests did NOT run");
        }
        reachable
    })
}

/// Drops the per-test PostgreSQL database when the test ends, pass or fail.
pub struct PostgresDatabase {
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread
        // with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ =
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Keeps a fresh database alive; dropping it deletes the database.
pub enum DatabaseGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PostgresDatabase),
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub backend: Backend,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: String,
    /// Where e-mails go without an SMTP server (the outbox transport writes .eml files).
    pub outbox: tempfile::TempDir,
    _database: DatabaseGuard,
}

/// A signed-in admin of a fresh organisation.
pub struct Admin {
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub const PASSWORD: &str = "correct horse battery";

pub async fn fresh_database(backend: Backend) -> (String, DatabaseGuard) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("renrakumo.db").display());
            (url, DatabaseGuard::Sqlite(dir))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let name = format!("renrakumo_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await.unwrap();
            let mut url = url::Url::parse(&postgres_admin_url()).unwrap();
            url.set_path(&name);
            (url.to_string(), DatabaseGuard::Postgres(PostgresDatabase { name }))
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// The application with its mail going to a real SMTP server on loopback.
pub async fn spawn_app_with_smtp(backend: Backend) -> (TestApp, crate::smtp_server::SmtpServer) {
    let smtp = crate::smtp_server::SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(backend, move |config| config.smtp_url = Some(url)).await;
    (app, smtp)
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    renrakumo::install_crypto_provider();
    if std::env::var("TEST_LOG").is_ok() {
        renrakumo::telemetry::init(false);
    }
    let (database_url, guard) = fresh_database(backend).await;
    let mut config = Config::for_database(&database_url).unwrap();
    config.bind = "127.0.0.1:0".parse().unwrap();
    // Tests drive delivery themselves through `deliver_all`, deterministically.
    config.workers = 0;
    let outbox = tempfile::tempdir().unwrap();
    config.outbox_dir = outbox.path().to_path_buf();
    adjust(&mut config);
    let app = Application::build(config).await.expect("the application starts");
    let port = app.port();
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        backend,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        state,
        database_url,
        outbox,
        _database: guard,
    }
}

/// What a test usually wants from an answer.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, headers, body }
    }

    /// Asserts an RFC 9457 problem with this status and returns the fields it names.
    pub fn problem(&self, status: u16) -> Vec<String> {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.headers["content-type"], "application/problem+json", "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"].is_string() && self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.body
        );
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn call(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::ApiKey(key) => request.header("X-API-Key", key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Auth::Bearer(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Auth::Bearer(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Auth::Bearer(token), None).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(Method::POST, "/api/v1/auth/login", Auth::None, Some(json!({"email": email, "password": password})))
            .await
    }

    /// Signs in from another client: a connection from another loopback address
    /// (127.0.0.2, …), which the server sees as another peer IP.
    pub async fn login_from(&self, client_ip: &str, email: &str, password: &str) -> Reply {
        let client =
            reqwest::Client::builder().local_address(client_ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
        let request = client.post(self.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password}));
        Reply::from(request.send().await.unwrap()).await
    }

    /// A new organisation with its first admin (as `renrakumo create-admin` makes it), signed in.
    pub async fn create_admin(&self, org: &str) -> Admin {
        let email =
            format!("admin-{}@{}.example.jp", uuid::Uuid::new_v4().simple(), org.to_lowercase().replace(' ', "-"));
        let created = renrakumo::admin::create_admin(&self.state.db, org, &email, PASSWORD).await.unwrap();
        let tokens = self.login(&email, PASSWORD).await;
        let tokens = tokens.ok(200);
        Admin {
            org_id: created.org_id,
            user_id: created.user_id,
            email,
            password: PASSWORD.into(),
            access_token: tokens["access_token"].as_str().unwrap().into(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().into(),
        }
    }

    /// A staff member of the admin's organisation with this role, signed in; returns (user id, access token).
    pub async fn create_staff(&self, admin: &Admin, role: &str) -> (String, String) {
        let email = format!("{role}-{}@school.example.jp", uuid::Uuid::new_v4().simple());
        let user = self
            .post(
                "/api/v1/users",
                &admin.access_token,
                json!({"email": email, "password": PASSWORD, "name": "先生", "role": role}),
            )
            .await;
        let id = user.ok(201)["id"].as_str().unwrap().to_string();
        let tokens = self.login(&email, PASSWORD).await;
        (id, tokens.ok(200)["access_token"].as_str().unwrap().to_string())
    }

    /// A new API key of the admin's organisation; returns (key id, key).
    pub async fn create_api_key(&self, admin: &Admin, body: Value) -> (String, String) {
        let created = self.post("/api/v1/api-keys", &admin.access_token, body).await;
        let created = created.ok(201);
        (created["id"].as_str().unwrap().into(), created["key"].as_str().unwrap().into())
    }

    /// A delivery worker as `serve` runs it, but retrying at once instead of backing off.
    pub fn worker(&self) -> renrakumo::delivery::worker::Worker {
        let settings = renrakumo::delivery::worker::WorkerSettings {
            retry: renrakumo::delivery::queue::RetryPolicy {
                base: std::time::Duration::ZERO,
                max_attempts: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        renrakumo::delivery::worker::Worker::new(self.state.clone(), settings)
    }

    /// Moves the application's clock forward: retries, leases, scheduled sends and
    /// reminders come due without the test waiting.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.state.clock.advance(by);
    }

    /// Every job has an outcome and every message's tallies agree: nothing is left
    /// waiting or claimed.
    pub async fn assert_queue_empty(&self) {
        let mut conn = self.state.db.pool.acquire().await.unwrap();
        let pending: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT status, message_id, channel FROM delivery_jobs WHERE status IN (0, 1) ORDER BY id LIMIT 5",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(pending.is_empty(), "jobs still waiting (status, message, channel): {pending:?}");
        let tallied: Vec<(String, i64)> = sqlx::query_as(
            "SELECT message_id, CAST(SUM(queued) AS BIGINT) FROM delivery_tallies GROUP BY message_id \
             HAVING SUM(queued) <> 0",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(tallied.is_empty(), "messages whose tallies still count queued jobs: {tallied:?}");
    }

    /// Runs delivery rounds until there is nothing left to do; returns the work done.
    pub async fn deliver_all(&self) -> usize {
        let worker = self.worker();
        let mut total = 0;
        loop {
            match worker.run_once().await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    }

    /// The .eml files the outbox transport wrote, oldest first.
    pub fn outbox_messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.outbox.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|f| std::fs::metadata(f).unwrap().modified().unwrap());
        files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
    }

    /// The secret the server signs access tokens with, for forging tokens in tests.
    pub async fn jwt_secret(&self) -> String {
        let mut conn = self.state.db.pool.acquire().await.unwrap();
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'jwt_secret'").fetch_one(&mut *conn).await.unwrap()
    }
}

/// An HTTP/1.1 answer read off a raw connection.
pub struct RawAnswer {
    pub status: u16,
    pub body: String,
}

impl TestApp {
    /// Opens a connection and sends `head` (without the blank line that ends it) and then
    /// `body`, which may be only the start of what `Content-Length` announces: the
    /// connection stays open for the caller to send more, or nothing.
    pub async fn send_raw(&self, head: &str, body: &[u8]) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        stream.write_all(format!("{head}\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        stream
    }
}

/// Reads the answer's status and body (`Content-Length` framed, as all of ours are).
pub async fn read_raw_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> RawAnswer {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the connection closed before an answer: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while answer.len() < head_end + length {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the connection closed inside the answer");
        answer.extend_from_slice(&buffer[..n]);
    }
    RawAnswer { status, body: String::from_utf8_lossy(&answer[head_end..head_end + length]).to_string() }
}

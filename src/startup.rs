//! Builds the application: database, migrations, secrets, HTTP server with its middleware.
//! Tests build it the same way on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, ResponseError, web};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{JwtKeys, tokens};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::db::ack_writer::AckWriter;
use crate::db::repositories::{organizations, settings};
use crate::delivery::email::Mailer;
use crate::delivery::worker::{Worker, WorkerSettings};
use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::state::AppState;
use crate::telemetry::RequestSpan;

pub struct Application {
    port: u16,
    server: Server,
    workers: Workers,
    pub state: AppState,
}

/// The delivery tasks of this instance and the switch that stops them.
pub struct Workers {
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts `config.workers` delivery tasks (none when 0: an API-only instance).
    pub fn start(state: &AppState) -> Workers {
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        let tasks = (0..state.config.workers)
            .map(|_| {
                let worker = Arc::new(Worker::new(state.clone(), WorkerSettings::from_config(&state.config)));
                tokio::spawn(worker.run(receiver.clone()))
            })
            .collect();
        Workers { shutdown, tasks }
    }

    /// Stops claiming; waits for the rounds in flight to record their outcomes.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Connects, migrates and loads the shared secret; used by `serve` and by tests.
pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    let mut conn = db.pool.acquire().await?;
    if organizations::count(&mut conn).await? == 0 {
        tracing::info!(
            "the database has no organisation yet: create the first admin with \
             `renrakumo create-admin --org NAME --email E --password P`"
        );
    }
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        // Generated once and kept in the database, so every instance signs alike.
        None => settings::get_or_insert(&mut conn, "jwt_secret", &tokens::random_secret("")).await?,
    };
    drop(conn);
    let mailer = Arc::new(Mailer::from_config(&config)?);
    let clock = Clock::system();
    let push = Arc::new(crate::delivery::PushClients::from_config(&config, &clock)?);
    let acks = AckWriter::start(db.clone());
    Ok(AppState {
        db,
        clock,
        acks,
        jwt: Arc::new(JwtKeys::new(secret.as_bytes())),
        mailer,
        push,
        config: Arc::new(config),
    })
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.bind)?;
        let state = prepare(config).await?;
        let port = listener.local_addr()?.port();
        let server = run(listener, state.clone())?;
        let workers = Workers::start(&state);
        Ok(Application { port, server, workers, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT/SIGTERM: actix finishes the requests in flight, then the delivery
    /// workers finish theirs (nothing is left claimed).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.workers.stop().await;
        served
    }
}

fn run(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        let (app, api) = App::new()
            .into_utoipa_app()
            .openapi(crate::openapi::spec())
            .app_data(data.clone())
            .app_data(
                web::PathConfig::default()
                    .error_handler(|err, _| ApiError::NotFound(format!("no such resource: {err}")).into()),
            )
            .configure(crate::api::configure)
            .split_for_parts();
        let known_paths = Arc::new(KnownPaths::from_spec(&api));
        app.service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", api))
            .route(
                "/",
                web::get()
                    .to(|| async { HttpResponse::Found().insert_header((header::LOCATION, "/swagger-ui/")).finish() }),
            )
            .default_service(web::to(move |req: actix_web::HttpRequest| {
                let known_paths = Arc::clone(&known_paths);
                async move {
                    match known_paths.allowed_methods(req.path()) {
                        Some(allow) => ApiError::MethodNotAllowed { method: req.method().to_string(), allow },
                        None => ApiError::NotFound("no route matches this path".into()),
                    }
                    .error_response()
                }
            }))
            .wrap(actix_web::middleware::from_fn(crate::idempotency::middleware))
            .wrap(actix_web::middleware::from_fn(crate::request_body::middleware))
            .wrap(ErrorHandlers::new().default_handler(problem_fallback))
            .wrap(actix_web::middleware::from_fn(crate::security_headers::middleware))
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        res.headers_mut().insert(HeaderName::from_static("x-request-id"), id);
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::<RequestSpan>::new())
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// The documented paths and their methods: each handler is its own actix resource, so a
/// request no handler took may still name a known path with another method (405, `Allow`).
struct KnownPaths(Vec<(Vec<String>, Vec<&'static str>)>);

impl KnownPaths {
    fn from_spec(spec: &utoipa::openapi::OpenApi) -> KnownPaths {
        let paths = spec.paths.paths.iter().map(|(template, item)| {
            let methods = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            let allow = methods.iter().filter(|(_, op)| op.is_some()).map(|(m, _)| *m).collect();
            (template.split('/').map(str::to_string).collect(), allow)
        });
        KnownPaths(paths.collect())
    }

    /// The methods of the documented path `path` matches (`{…}` matching one segment), as
    /// an `Allow` header value; `None` for an unknown path. As in OpenAPI, a literal segment
    /// wins over a template: `/members/export` is that path, not `/members/{id}`.
    fn allowed_methods(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(Vec<bool>, Vec<&str>)> = None;
        for (template, methods) in &self.0 {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
            if !matches {
                continue;
            }
            // Which segments are literal; compared in order, an earlier literal ranks higher.
            let literal: Vec<bool> = template.iter().map(|t| !t.starts_with('{')).collect();
            match &mut best {
                Some((rank, allow)) if *rank == literal => {
                    allow.extend(methods.iter().filter(|m| !allow.contains(m)).collect::<Vec<_>>())
                }
                Some((rank, _)) if *rank > literal => {}
                _ => best = Some((literal, methods.clone())),
            }
        }
        best.map(|(_, allow)| allow.join(", "))
    }
}

/// The safety net: an error answer produced outside our handlers (actix's own 404/405,
/// a panic turned 500) is rewritten as problem+json, keeping its status and headers.
fn problem_fallback<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Our own answers are left alone: problem+json already, or the HTML pages guardians
    // open from their e-mail (which answer a person, in Japanese, not a program).
    let ours = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()) || v.as_bytes().starts_with(b"text/html"));
    if ours {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, old) = res.into_parts();
    let reason = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        r#type: "about:blank".into(),
        title: reason.into(),
        status: status.as_u16(),
        detail: if status.is_server_error() {
            "the server failed to answer; the incident is logged".into()
        } else {
            reason.into()
        },
        errors: vec![],
        error: None,
    };
    let mut response = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.append_header((name.clone(), value.clone()));
        }
    }
    let response = response.content_type(PROBLEM_JSON).body(serde_json::to_string(&problem).unwrap_or_default());
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body()))
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use renrakumo::config::{Config, Settings};
use renrakumo::db::Db;
use renrakumo::startup::Application;

/// renrakumo (連絡網): mass notification for schools and organisations.
#[derive(Parser)]
#[command(name = "renrakumo", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    /// What to run; `serve` when absent.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the delivery workers (RENRAKUMO_WORKERS of them).
    Serve,
    /// Run delivery workers only (no HTTP API); stops cleanly on SIGINT/SIGTERM.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Copy a SQLite database, while it runs, into FILE (which must not exist yet); on
    /// PostgreSQL, says to use pg_dump.
    Backup { file: std::path::PathBuf },
    /// Print the OpenAPI document (openapi/openapi.json must equal it).
    Openapi,
    /// Create an organisation and its first admin; prints {"org_id", "user_id"}.
    CreateAdmin {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "RENRAKUMO_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    renrakumo::install_crypto_provider();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", renrakumo::openapi::spec_json());
        return ExitCode::SUCCESS;
    }
    let config = match cli.settings.validate() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("renrakumo: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    renrakumo::telemetry::init(config.log_json);
    match run(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("renrakumo: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let bind = config.bind;
            let app = Application::build(config).await?;
            tracing::info!(%bind, "serving; Swagger UI at http://{bind}/swagger-ui/");
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            if config.workers == 0 {
                anyhow::bail!("RENRAKUMO_WORKERS is 0: a worker instance needs at least one delivery task");
            }
            let state = renrakumo::startup::prepare(config).await?;
            let workers = renrakumo::startup::Workers::start(&state);
            tracing::info!(tasks = state.config.workers, "delivery workers running");
            shutdown_signal().await;
            tracing::info!("stopping: finishing the deliveries in flight");
            workers.stop().await;
        }
        Command::Migrate => {
            Db::connect(&config.database_url).await?.migrate().await?;
            tracing::info!("migrations applied");
        }
        Command::CreateAdmin { org, email, password } => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            let created = renrakumo::admin::create_admin(&db, &org, &email, &password).await?;
            println!("{}", serde_json::to_string(&created)?);
        }
        Command::Backup { file } => {
            let db = Db::connect(&config.database_url).await?;
            let bytes = renrakumo::db::backup::backup(&db, &file).await?;
            println!("{}", serde_json::json!({"file": file, "bytes": bytes}));
        }
        Command::Openapi => unreachable!("answered before configuration is read"),
    }
    Ok(())
}

/// SIGINT or SIGTERM (what a container orchestrator sends).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

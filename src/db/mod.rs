//! The database: one pool through sqlx's `Any` driver, so every query is written once for
//! SQLite and PostgreSQL. Only `i64`, `String` and `Option`s of them cross the driver; times
//! are epoch milliseconds and booleans 0/1. SQL that must differ per engine stays inside this
//! module tree: placeholders and row locks are rendered for the connection's engine
//! (`sql::Sql`, `sql::row_lock`); the rest branches on [`engine`] of the connection at hand,
//! or on [`Db::backend`] where there is only the pool.

pub mod ack_writer;
pub mod backup;
mod error;
pub mod repositories;
pub mod sql;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};

pub use self::error::{RepoError, RepoResult};
pub use crate::config::Backend;

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The engine `conn` talks to, as [`Db::backend`] names the pool's. `Db::connect` takes
/// SQLite and PostgreSQL URLs only, so a connection that is not SQLite is PostgreSQL.
pub fn engine(conn: &AnyConnection) -> Backend {
    if conn.backend_name() == "SQLite" { Backend::Sqlite } else { Backend::Postgres }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// UUIDv7: sortable by creation time, which keyset pagination relies on.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Moves the SQLite write-ahead log into the database file every second, beside the
/// requests rather than inside one of them (measured on the acknowledgement benchmark: p99
/// 52–305 ms with SQLite's automatic checkpoints, 18–39 ms this way). PASSIVE never waits
/// for readers or the writer; it ends when the pool is closed.
async fn checkpoint_in_background(pool: AnyPool) {
    while !pool.is_closed() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %error, "SQLite checkpoint failed");
        }
    }
}

impl Db {
    pub async fn connect(database_url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = crate::config::backend_of(database_url)?;
        let options: AnyConnectOptions = database_url.parse()?;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer; a few connections serve readers while it writes.
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // No ping before every checkout: it doubled the statements of short requests
            // (measured on the acknowledgement path); a broken connection fails one query
            // and is replaced.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL is durable across
                        // process crashes in WAL mode; the timeout queues writers instead of
                        // failing them with SQLITE_BUSY. No automatic checkpoints: SQLite runs
                        // them inside the commit that crosses the threshold, so a write (and
                        // every request queued behind the one writer) waited for the copy and
                        // its fsync; `checkpoint_in_background` does them instead.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA wal_autocheckpoint = 0;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoint_in_background(pool.clone()));
        }
        Ok(Db { pool, backend })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first fails with SQLITE_BUSY_SNAPSHOT when another
    /// writer commits before it writes, where waiting for the lock (busy_timeout) is right.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> RepoResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_of_the_pool_is_of_the_pools_engine() {
        let dir = std::env::temp_dir().join(format!("renrakumo-engine-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}/engine.db?mode=rwc", dir.display())).await.unwrap();
        let conn = db.pool.acquire().await.unwrap();
        assert_eq!(db.backend, Backend::Sqlite);
        assert_eq!(engine(&conn), db.backend);
        drop(conn);
        db.pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

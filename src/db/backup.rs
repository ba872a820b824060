//! `renrakumo backup FILE`: a consistent copy of a running SQLite database. `VACUUM INTO`
//! reads one snapshot (writers carry on beside it, WAL) and writes a compact, complete
//! database file; it goes to FILE.partial first and is renamed when whole, so FILE is
//! never half written. PostgreSQL has its own tools for this.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Backend;
use crate::db::Db;

/// Copies the database to `file`, which must not exist yet. Returns its size in bytes.
pub async fn backup(db: &Db, file: &Path) -> anyhow::Result<u64> {
    if db.backend == Backend::Postgres {
        bail!(
            "on PostgreSQL, back up with pg_dump (pg_dump --format=custom --file={} <database URL>) and restore \
             with pg_restore; renrakumo backup copies SQLite databases",
            file.display()
        );
    }
    let migrated = sqlx::query("SELECT count(*) FROM _sqlx_migrations").fetch_one(&db.pool).await;
    if migrated.is_err() {
        bail!("there is no renrakumo database at RENRAKUMO_DATABASE_URL to back up");
    }
    if file.exists() {
        bail!("{} already exists; renrakumo backup does not overwrite a file", file.display());
    }
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A partial file is what an interrupted backup left behind.
    let _ = std::fs::remove_file(&partial);
    let target = partial.to_str().context("the backup file's path must be UTF-8")?;
    let copied = sqlx::query("VACUUM INTO $1").bind(target).execute(&db.pool).await;
    if let Err(error) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("copying the database into {}", partial.display()));
    }
    std::fs::rename(&partial, file).with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;
    Ok(std::fs::metadata(file)?.len())
}

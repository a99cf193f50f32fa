//! Schema migrations for both backends, embedded in the binary. They run on every
//! start and by `brokeforge migrate`; readiness reports whether all are applied.

use std::collections::BTreeSet;

use sqlx::migrate::Migrator;

use crate::error::DbError;
use crate::pool::{Backend, Db};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// What the database holds compared with the migrations this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions this binary knows that the database has not applied.
    pub pending: Vec<i64>,
    /// Versions the database has applied that this binary does not know.
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    /// True when the schema is exactly what this binary expects.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// Reports which migrations are applied, without changing anything.
pub async fn status(db: &Db) -> Result<MigrationStatus, DbError> {
    let known: BTreeSet<i64> = migrator(db.backend())
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .map(|migration| migration.version)
        .collect();
    let applied: BTreeSet<i64> = applied_versions(db).await?.into_iter().collect();
    Ok(MigrationStatus {
        pending: known.difference(&applied).copied().collect(),
        unknown: applied.difference(&known).copied().collect(),
    })
}

async fn applied_versions(db: &Db) -> Result<Vec<i64>, DbError> {
    let table_exists: bool = match db.backend() {
        Backend::Sqlite => crate::with_pool!(db, |pool| sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')"
        )
        .fetch_one(pool)
        .await?),
        Backend::Postgres => crate::with_pool!(db, |pool| sqlx::query_scalar::<_, bool>(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"
        )
        .fetch_one(pool)
        .await?),
    };
    if !table_exists {
        return Ok(Vec::new());
    }
    Ok(crate::with_pool!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version"
    )
    .fetch_all(pool)
    .await?))
}

/// Applies every pending migration. Safe to run from several processes at once:
/// PostgreSQL serialises runners with an advisory lock, and on SQLite an exclusive
/// lock file beside the database does.
pub async fn run(db: &Db) -> Result<(), DbError> {
    let _file_lock = match db.sqlite_path() {
        Some(path) => Some(lock_file(&path.with_extension("migrate-lock")).await?),
        None => None,
    };
    let current = status(db).await?;
    if let Some(version) = current.unknown.first() {
        return Err(DbError::SchemaTooNew(*version));
    }
    if current.pending.is_empty() {
        return Ok(());
    }
    let migrator = migrator(db.backend());
    crate::with_pool!(db, |pool| migrator
        .run(pool)
        .await
        .map_err(|error| DbError::Migration(error.to_string())))?;
    tracing::info!(applied = ?current.pending, "database migrations applied");
    Ok(())
}

async fn lock_file(path: &std::path::Path) -> Result<std::fs::File, DbError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| DbError::Migration(format!("cannot open {}: {error}", path.display())))?;
        file.lock()
            .map_err(|error| DbError::Migration(format!("cannot lock {}: {error}", path.display())))?;
        Ok(file)
    })
    .await
    .map_err(|error| DbError::Migration(error.to_string()))?
}

//! Opening the database: SQLite in the data directory by default, PostgreSQL when a
//! URL is given. Connection problems become one-line [`DbError`]s naming the fix.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::changes::Changes;
use crate::error::DbError;

/// The file name of the embedded database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "brokeforge.sqlite3";

/// Which database the control plane runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend's name as shown in logs and benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the database lives.
#[derive(Debug, Clone)]
pub enum DbConfig {
    /// An embedded SQLite database in this data directory.
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL database at this URL.
    Postgres { url: String },
}

impl DbConfig {
    /// Picks PostgreSQL when a URL is given, SQLite in `data_dir` otherwise.
    pub fn from_options(data_dir: &Path, database_url: Option<&str>) -> Self {
        match database_url {
            Some(url) if !url.trim().is_empty() => DbConfig::Postgres {
                url: url.trim().to_owned(),
            },
            _ => DbConfig::Sqlite {
                data_dir: data_dir.to_owned(),
            },
        }
    }
}

/// A borrowed view of the pool, matched on by [`crate::with_pool!`].
pub enum PoolRef<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

enum AnyPool {
    Sqlite(SqlitePool),
    /// The main pool, and a small one whose commits do not wait for the WAL flush.
    Postgres {
        main: PgPool,
        relaxed: PgPool,
    },
}

/// A cheap-to-clone handle to the control plane's database.
#[derive(Clone)]
pub struct Db {
    pool: Arc<AnyPool>,
    sqlite_path: Option<Arc<PathBuf>>,
    changes: Arc<Changes>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.backend().name())
    }
}

impl Db {
    /// Opens the database described by `config`, creating the SQLite file if needed.
    pub async fn connect(config: &DbConfig) -> Result<Db, DbError> {
        match config {
            DbConfig::Sqlite { data_dir } => Self::connect_sqlite(data_dir).await,
            DbConfig::Postgres { url } => Self::connect_postgres(url).await,
        }
    }

    /// Opens (or creates) the SQLite database in `data_dir` with WAL, a busy
    /// timeout and foreign keys on.
    pub async fn connect_sqlite(data_dir: &Path) -> Result<Db, DbError> {
        ensure_writable_dir(data_dir)?;
        let path = data_dir.join(SQLITE_FILE_NAME);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            // Deleted rows (sealed keys of a removed server) are overwritten, not left in free pages.
            .pragma("secure_delete", "on");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|connection, _| {
                Box::pin(async move {
                    let mut handle = connection.lock_handle().await?;
                    enable_stable_query_plans(handle.as_raw_handle());
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|error| DbError::SqliteOpen {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        let identity = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        Ok(Db {
            pool: Arc::new(AnyPool::Sqlite(pool)),
            changes: crate::changes::for_database(&format!("sqlite:{}", identity.display())),
            sqlite_path: Some(Arc::new(path)),
        })
    }

    /// Connects to PostgreSQL at `url`.
    pub async fn connect_postgres(url: &str) -> Result<Db, DbError> {
        Self::connect_postgres_with(url, 16).await
    }

    /// Connects to PostgreSQL at `url` with at most `max_connections` connections.
    pub async fn connect_postgres_with(url: &str, max_connections: u32) -> Result<Db, DbError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::InvalidUrl(redact_url(url)));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| DbError::InvalidUrl(format!("{}: {error}", redact_url(url))))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let main = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|error| classify_postgres_error(&target, error))?;
        let relaxed = PgPoolOptions::new()
            .max_connections(max_connections.clamp(2, 8))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
        Ok(Db {
            pool: Arc::new(AnyPool::Postgres { main, relaxed }),
            sqlite_path: None,
            changes: crate::changes::for_database(url),
        })
    }

    /// Which backend this handle talks to.
    pub fn backend(&self) -> Backend {
        match &*self.pool {
            AnyPool::Sqlite(_) => Backend::Sqlite,
            AnyPool::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite database file, when this handle is on SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref().map(PathBuf::as_path)
    }

    /// The change counters this process keeps for the database (see [`crate::changes`]).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The pool, for [`crate::with_pool!`].
    pub fn pool(&self) -> PoolRef<'_> {
        match &*self.pool {
            AnyPool::Sqlite(pool) => PoolRef::Sqlite(pool),
            AnyPool::Postgres { main, .. } => PoolRef::Postgres(main),
        }
    }

    /// A pool for writes that may be lost in a database-server crash without harm,
    /// such as a job queue's claims and completions (a lost one means the job runs
    /// again, and jobs are idempotent). On PostgreSQL its commits do not wait for the
    /// WAL flush (`synchronous_commit = off`); SQLite already runs with
    /// `synchronous = NORMAL`, the same trade. Nothing is ever lost in a crash of
    /// BrokeForge itself, and the database stays consistent either way.
    pub fn relaxed_pool(&self) -> PoolRef<'_> {
        match &*self.pool {
            AnyPool::Sqlite(pool) => PoolRef::Sqlite(pool),
            AnyPool::Postgres { relaxed, .. } => PoolRef::Postgres(relaxed),
        }
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        crate::with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        match &*self.pool {
            AnyPool::Sqlite(pool) => pool.close().await,
            AnyPool::Postgres { main, relaxed } => {
                relaxed.close().await;
                main.close().await;
            }
        }
    }
}

/// Turns on SQLite's query planner stability guarantee for one connection. Without
/// it, a statement whose plan could depend on a bound value (any `LIMIT $n`, with
/// the `STAT4` build sqlx ships) is compiled again on every execution, which cost a
/// seventh of the CPU time of the busiest pages.
fn enable_stable_query_plans(handle: std::ptr::NonNull<libsqlite3_sys::sqlite3>) {
    // SAFETY: the handle is a live connection locked for this thread by
    // `lock_handle`; SQLITE_DBCONFIG_ENABLE_QPSG takes an int and a nullable int
    // pointer, and it only sets a flag on the connection.
    let code = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if code != libsqlite3_sys::SQLITE_OK {
        tracing::warn!(code, "SQLite refused the query planner stability guarantee");
    }
}

/// Creates `dir` if needed and proves it is writable, without leaving anything behind.
pub fn ensure_writable_dir(dir: &Path) -> Result<(), DbError> {
    let fail = |reason: String| DbError::DataDir {
        path: dir.to_owned(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|error| fail(error.to_string()))?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|error| fail(format!("not writable ({error})")))?;
    std::fs::remove_file(&probe).map_err(|error| fail(error.to_string()))?;
    Ok(())
}

/// Hides the password of a database URL for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &credentials[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn classify_postgres_error(target: &str, error: sqlx::Error) -> DbError {
    match &error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|code| code.into_owned()).unwrap_or_default();
            if code.starts_with("28") || code == "3D000" {
                DbError::AuthFailed {
                    target: target.to_owned(),
                    reason: db.message().to_owned(),
                }
            } else {
                DbError::Query(error)
            }
        }
        sqlx::Error::Io(io) => DbError::Unreachable {
            target: target.to_owned(),
            reason: io.to_string(),
        },
        sqlx::Error::PoolTimedOut => DbError::Unreachable {
            target: target.to_owned(),
            reason: "timed out after 10 s".to_owned(),
        },
        _ => DbError::Unreachable {
            target: target.to_owned(),
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Topic;

    #[tokio::test]
    async fn sqlite_connections_keep_their_query_plans() {
        let directory = tempfile::tempdir().unwrap();
        let db = Db::connect_sqlite(directory.path()).await.unwrap();
        let PoolRef::Sqlite(pool) = db.pool() else {
            panic!("a SQLite handle");
        };
        for _ in 0..2 {
            let mut connection = pool.acquire().await.unwrap();
            let mut handle = connection.lock_handle().await.unwrap();
            let mut enabled: std::ffi::c_int = -1;
            // SAFETY: a live, locked connection; a negative value only reads the flag into `enabled`.
            let code = unsafe {
                libsqlite3_sys::sqlite3_db_config(
                    handle.as_raw_handle().as_ptr(),
                    libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                    -1 as std::ffi::c_int,
                    &mut enabled as *mut std::ffi::c_int,
                )
            };
            assert_eq!((code, enabled), (libsqlite3_sys::SQLITE_OK, 1));
        }
        db.close().await;
    }

    #[tokio::test]
    async fn handles_on_one_database_count_each_others_writes() {
        let directory = tempfile::tempdir().unwrap();
        let first = Db::connect_sqlite(directory.path()).await.unwrap();
        let second = Db::connect_sqlite(directory.path()).await.unwrap();
        crate::migrate::run(&first).await.unwrap();
        let before = second.changes().generation(&[Topic::Credentials]);
        crate::sessions::delete_for_user_except(&first, 1, None).await.unwrap();
        assert_eq!(second.changes().generation(&[Topic::Credentials]), before + 1);
        let elsewhere = tempfile::tempdir().unwrap();
        let unrelated = Db::connect_sqlite(elsewhere.path()).await.unwrap();
        assert_eq!(unrelated.changes().generation(&[Topic::Credentials]), 0);
    }

    #[test]
    fn database_url_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bf:s3cret@db:5432/bf"),
            "postgres://bf:***@db:5432/bf"
        );
        assert_eq!(redact_url("postgres://db/bf"), "postgres://db/bf");
    }
}

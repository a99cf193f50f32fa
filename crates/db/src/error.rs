//! Storage errors. Each variant carries a one-line message that names the problem
//! and, where there is one, the fix.

use std::path::PathBuf;

/// Errors raised while opening, migrating or querying the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0} (expected postgres://user:password@host:port/database)")]
    InvalidUrl(String),
    #[error("cannot reach PostgreSQL at {target}: {reason}. Is it running, and is the URL right?")]
    Unreachable { target: String, reason: String },
    #[error("PostgreSQL refused the login at {target}: {reason}. Check the user, password and database in the URL.")]
    AuthFailed { target: String, reason: String },
    #[error("data directory {path} is not usable: {reason}. Create it or choose another with --data-dir.")]
    DataDir { path: PathBuf, reason: String },
    #[error("cannot open the SQLite database {path}: {reason}")]
    SqliteOpen { path: PathBuf, reason: String },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("the database schema is newer than this BrokeForge (migration {0} is unknown). Upgrade BrokeForge.")]
    SchemaTooNew(i64),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
}

impl DbError {
    /// True when the error is a unique-constraint violation (on either backend).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Query(error) => is_unique_violation(error),
            _ => false,
        }
    }
}

/// True when a sqlx error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

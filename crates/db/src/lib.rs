//! BrokeForge's storage adapter: a [`Db`] handle over SQLite (the default, embedded)
//! or PostgreSQL (for several control-plane nodes), the migrations for both, the
//! repositories the application uses, and the sealing of secrets at rest.
//!
//! SQL is written once in the portable subset (`$1` placeholders, `RETURNING`,
//! `ON CONFLICT`) and run on either pool through [`with_pool!`]; the two backends
//! differ only in their DDL, kept side by side under `migrations/`.

pub mod api_tokens;
pub mod audit;
pub mod bootstrap_tokens;
pub mod changes;
pub mod clock;
pub mod error;
pub mod firewall_rules;
pub mod job_listing;
pub mod migrate;
pub mod package_events;
pub mod package_records;
pub mod php_versions;
pub mod pool;
pub mod seal;
pub mod server_access;
pub mod servers;
pub mod sessions;
pub mod setup;
pub mod site_commands;
pub mod site_deployments;
pub mod site_wordpress;
pub mod sites;
pub mod throttle;
pub mod users;

pub use changes::Topic;
pub use error::DbError;
pub use pool::{Backend, Db, DbConfig};
pub use seal::{MasterKey, SealError, Sealer};

/// Runs one expression against whichever pool `db` holds. The expression is
/// compiled once per backend, so queries written with `sqlx::query*` and `$n`
/// placeholders work on both SQLite and PostgreSQL.
#[macro_export]
/// With `relaxed` first, runs on [`Db::relaxed_pool`] instead.
macro_rules! with_pool {
    (relaxed $db:expr, |$pool:ident| $body:expr) => {
        match $db.relaxed_pool() {
            $crate::pool::PoolRef::Sqlite($pool) => $body,
            $crate::pool::PoolRef::Postgres($pool) => $body,
        }
    };
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.pool() {
            $crate::pool::PoolRef::Sqlite($pool) => $body,
            $crate::pool::PoolRef::Postgres($pool) => $body,
        }
    };
}

//! BrokeForge's test kit: real services for the test suites, started on loopback in
//! temporary directories. Nothing here is faked: PostgreSQL is Debian's own server,
//! started with `initdb` and `postgres` on a free port, and [`SshServer`] is Debian's
//! OpenSSH `sshd` with a temporary configuration and a dedicated test account.
//! [`FileServer`] serves fixed files over HTTP on loopback, in place of download sites
//! the test machine cannot reach.
//!
//! Set `BROKEFORGE_TEST_DATABASE_URL` to use an existing PostgreSQL instead (the test
//! script does, so that the whole run shares one cluster); each test still gets a
//! database of its own.

pub mod http;
pub mod ports;
pub mod postgres;
pub mod sshd;

pub use http::FileServer;
pub use ports::free_port;
pub use postgres::{PostgresCluster, PostgresOptions, fresh_postgres_database};
pub use sshd::{SshServer, SshServerOptions, TEST_USER};

/// A temporary data directory for a test's SQLite database, removed on drop.
pub fn temp_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("brokeforge-test-")
        .tempdir()
        .expect("create a temporary data directory")
}

//! Fixtures shared by the integration tests of this crate, each test file including
//! this module with `mod common;`.
//!
//! - [`BackendFixture`]: a control plane on SQLite or PostgreSQL with two users and
//!   one server of the owner that nothing answers for; the jobs it enqueues are read
//!   back, never run.
//! - [`SshFixture`]: a control plane on SQLite whose one server is a real OpenSSH
//!   server from the test kit, its host key pinned and sealed credentials stored for
//!   the root and brokeforge roles (both log in as the test account, which stands in
//!   for brokeforge), with job workers started on demand.
//! - Helpers both use: users, principals, package records, site directories under
//!   `/home/brokeforge` and unique domains.

// Each test file is its own crate and uses only some of these items; the rest would
// be reported as dead code in that crate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokeforge_app::auth::{Credential, Principal, Scope, Scopes};
use brokeforge_app::follow_up::{self, Finished, FollowUp};
use brokeforge_app::operations::{OperationEnvironment, OperationOutcome};
use brokeforge_app::sites::{self, SiteInput};
use brokeforge_app::{AppError, FieldErrors};
use brokeforge_db::server_access::{self, credential_aad};
use brokeforge_db::servers::{self, ServerFields};
use brokeforge_db::{Db, MasterKey, Sealer, package_records, with_pool};
use brokeforge_queue::{JobFilter, JobId, JobRecord, JobState, Queue, WorkerConfig, WorkerPool};
use brokeforge_testkit::SshServer;
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the sites of the brokeforge account live on a server.
pub const APP_HOME: &str = "/home/brokeforge";

/// A package record to seed as provisioning leaves it: (package type, name,
/// instance, version), active and with an empty configuration.
pub type Package = (&'static str, &'static str, &'static str, &'static str);

/// A fresh database on one backend; an SQLite database lives as long as `data`.
pub struct Database {
    pub backend: &'static str,
    pub db: Db,
    pub data: Option<TempDir>,
}

/// A fresh database on SQLite and one on PostgreSQL, neither migrated yet.
pub async fn databases() -> Vec<Database> {
    let data = brokeforge_testkit::temp_data_dir();
    let sqlite = Db::connect_sqlite(data.path()).await.unwrap();
    let url = tokio::task::spawn_blocking(brokeforge_testkit::fresh_postgres_database)
        .await
        .unwrap();
    let postgres = Db::connect_postgres(&url).await.unwrap();
    vec![
        Database {
            backend: "sqlite",
            db: sqlite,
            data: Some(data),
        },
        Database {
            backend: "postgres",
            db: postgres,
            data: None,
        },
    ]
}

/// An operation environment on `db` with its own queue and a fresh master key.
pub fn environment(db: Db) -> OperationEnvironment {
    let sealer = Arc::new(Sealer::new(&MasterKey::generate().unwrap()));
    OperationEnvironment::new(db.clone(), Queue::new(db), sealer)
}

/// A principal of `user_id` holding a token with `scopes`.
pub fn principal(user_id: i64, scopes: &[Scope]) -> Principal {
    Principal {
        user_id,
        email: format!("user{user_id}@example.com"),
        name: String::new(),
        is_admin: false,
        scopes: Scopes::from_list(scopes),
        credential: Credential::Token { token_id: 0 },
        ip: None,
    }
}

/// Adds a user who is not an administrator; returns their id.
pub async fn user(db: &Db, email: &str) -> i64 {
    brokeforge_db::users::insert(
        db,
        &brokeforge_db::users::NewUser {
            email,
            name: "",
            password_hash: "x",
            is_admin: false,
        },
    )
    .await
    .unwrap()
    .id
}

/// Adds a server of `user_id` at a documentation address that nothing answers on.
pub async fn server(db: &Db, user_id: i64, name: &str, ssh_port: i32) -> i64 {
    servers::insert(
        db,
        user_id,
        &ServerFields {
            name,
            provider: "custom",
            public_ip: "203.0.113.10",
            ssh_port,
            provision_config: json!({ "php_version": "8.3" }),
        },
    )
    .await
    .unwrap()
    .id
}

/// Records `packages` as installed on the server.
pub async fn seed_packages(db: &Db, server_id: i64, packages: &[Package]) {
    for &(package_type, name, instance, version) in packages {
        package_records::upsert_server_package(
            db,
            server_id,
            package_type,
            name,
            instance,
            version,
            &json!({}),
            "active",
        )
        .await
        .unwrap();
    }
}

/// The field errors of a refused input.
pub fn fields(error: AppError) -> FieldErrors {
    match error {
        AppError::Validation(errors) => errors,
        other => panic!("expected field errors, got {other:?}"),
    }
}

/// A domain no other test run uses, starting with `prefix`.
pub fn unique_domain(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}.example.test",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Removes the site's directory when the test ends, passed or not.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A control plane on one backend with two users; the owner has one server, `web-1`.
pub struct BackendFixture {
    pub backend: &'static str,
    pub environment: OperationEnvironment,
    pub owner: Principal,
    pub other: Principal,
    pub server_id: i64,
    _data: Option<TempDir>,
}

impl BackendFixture {
    /// One fixture on SQLite and one on PostgreSQL, their server's SSH daemon on
    /// `ssh_port` and `packages` recorded as installed on it.
    pub async fn on_both_backends(ssh_port: i32, packages: &[Package]) -> Vec<BackendFixture> {
        let mut fixtures = Vec::new();
        for Database { backend, db, data } in databases().await {
            brokeforge_db::migrate::run(&db).await.unwrap();
            let owner_id = user(&db, "owner@example.com").await;
            let other_id = user(&db, "other@example.com").await;
            let server_id = server(&db, owner_id, "web-1", ssh_port).await;
            seed_packages(&db, server_id, packages).await;
            fixtures.push(BackendFixture {
                backend,
                environment: environment(db),
                owner: principal(owner_id, &Scope::ALL),
                other: principal(other_id, &Scope::ALL),
                server_id,
                _data: data,
            });
        }
        fixtures
    }

    pub fn db(&self) -> &Db {
        &self.environment.db
    }

    pub fn queue(&self) -> &Queue {
        &self.environment.queue
    }

    /// Every job about the fixture's server, oldest first.
    pub async fn jobs(&self) -> Vec<JobRecord> {
        let mut jobs = self
            .queue()
            .list(&JobFilter {
                subject: Some(format!("server:{}", self.server_id)),
                limit: 1000,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        jobs.reverse();
        jobs
    }
}

/// A control plane on SQLite whose one server, `web-1`, is a real OpenSSH server.
pub struct SshFixture {
    pub environment: OperationEnvironment,
    pub owner: Principal,
    pub server_id: i64,
    pub sshd: SshServer,
    stop: watch::Sender<bool>,
    workers: Option<JoinHandle<()>>,
    _data: TempDir,
}

impl SshFixture {
    /// Starts the OpenSSH server and records it with `packages` installed.
    pub async fn start(packages: &[Package]) -> SshFixture {
        let sshd = tokio::task::spawn_blocking(SshServer::start).await.unwrap();
        let data = brokeforge_testkit::temp_data_dir();
        let db = Db::connect_sqlite(data.path()).await.unwrap();
        brokeforge_db::migrate::run(&db).await.unwrap();
        let environment = environment(db);
        let db = &environment.db;
        let owner_id = user(db, "owner@example.com").await;
        let server = servers::insert(
            db,
            owner_id,
            &ServerFields {
                name: "web-1",
                provider: "custom",
                public_ip: sshd.host(),
                ssh_port: i32::from(sshd.port()),
                provision_config: json!({}),
            },
        )
        .await
        .unwrap();
        server_access::pin_host_key(db, server.id, sshd.host_public_key())
            .await
            .unwrap();
        for role in ["root", "brokeforge"] {
            let keypair = brokeforge_ssh::generate_keypair(&format!("brokeforge-{role}"));
            sshd.authorize_key(&keypair.public_openssh);
            let sealed = environment
                .sealer
                .seal_str(keypair.private_openssh.expose(), &credential_aad(server.id, role))
                .unwrap();
            server_access::store_credential(db, server.id, role, Some(sshd.user()), &sealed, &keypair.public_openssh)
                .await
                .unwrap();
        }
        seed_packages(db, server.id, packages).await;
        let (stop, _) = watch::channel(false);
        SshFixture {
            environment,
            owner: Principal {
                email: "owner@example.com".to_owned(),
                ..principal(owner_id, &Scope::ALL)
            },
            server_id: server.id,
            sshd,
            stop,
            workers: None,
            _data: data,
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.environment.queue
    }

    /// Starts one worker running every job kind.
    pub fn start_workers(&mut self) {
        let mut registry = brokeforge_app::jobs::registry(&brokeforge_app::jobs::JobEnvironment {
            db: self.environment.db.clone(),
        });
        brokeforge_app::operations::register(&mut registry, &self.environment);
        sites::register(&mut registry, &self.environment);
        let mut config = WorkerConfig::new(1);
        config.poll_interval = Duration::from_millis(50);
        let pool = WorkerPool::new(self.queue().clone(), registry, config);
        self.workers = Some(tokio::spawn(pool.run(self.stop.subscribe())));
    }

    /// Stops the worker and waits until it has.
    pub async fn stop_workers(&mut self) {
        let _ = self.stop.send(true);
        if let Some(workers) = self.workers.take() {
            let _ = workers.await;
        }
    }

    /// Waits for the job to end, at most `timeout`; returns its final state.
    pub async fn wait(&self, job_id: JobId, timeout: Duration) -> JobState {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.queue().get(job_id).await.unwrap().unwrap();
            if job.state.is_final() {
                return job.state;
            }
            assert!(Instant::now() < deadline, "job {job_id} did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes the site's directory and its `subdirectories`, owned by the test account
    /// (as is the brokeforge home), as installing the site would.
    pub fn site_directory(&self, domain: &str, subdirectories: &[&str]) -> PathBuf {
        let account = self.sshd.account();
        let (uid, gid) = (account.uid, account.gid);
        let home = Path::new(APP_HOME);
        if !home.exists() {
            std::fs::create_dir_all(home).unwrap();
        }
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(home).unwrap());
        if owner != uid {
            std::os::unix::fs::chown(home, Some(uid), Some(gid)).unwrap();
        }
        let root = home.join(domain);
        let directories = std::iter::once(root.clone()).chain(subdirectories.iter().map(|name| root.join(name)));
        for directory in directories {
            std::fs::create_dir_all(&directory).unwrap();
            std::os::unix::fs::chown(&directory, Some(uid), Some(gid)).unwrap();
        }
        root
    }

    /// Creates a site and reports its installation as done: that needs root, so its
    /// job is cancelled and the job's follow-up run as if it had succeeded.
    pub async fn installed_site(&self, input: &SiteInput) -> i64 {
        let created = sites::create(
            self.queue(),
            &self.environment.sealer,
            &self.owner,
            self.server_id,
            input,
        )
        .await
        .unwrap();
        self.queue().cancel(created.job_id).await.unwrap();
        follow_up::run(
            &self.environment,
            self.server_id,
            created.job_id.0,
            &FollowUp::Site {
                site_id: created.site.id,
                removing: false,
            },
            Finished::Succeeded(&OperationOutcome {
                changed: true,
                steps_run: 1,
            }),
        )
        .await
        .unwrap();
        created.site.id
    }

    /// The progress events of a job: (milestone, status, details).
    pub async fn events(&self, job_id: JobId) -> Vec<(String, String, serde_json::Value)> {
        with_pool!(self.environment.db, |pool| sqlx::query_as::<
            _,
            (String, String, sqlx::types::Json<serde_json::Value>),
        >(
            "SELECT milestone, status, details FROM server_site_package_events WHERE job_id = $1 ORDER BY id"
        )
        .bind(job_id.0)
        .fetch_all(pool)
        .await
        .unwrap())
        .into_iter()
        .map(|(milestone, status, details)| (milestone, status, details.0))
        .collect()
    }

    /// Every text the site events hold: milestone, error log and details.
    pub async fn event_texts(&self) -> Vec<String> {
        let events = with_pool!(self.environment.db, |pool| sqlx::query_as::<
            _,
            (String, Option<String>, sqlx::types::Json<serde_json::Value>),
        >(
            "SELECT milestone, error_log, details FROM server_site_package_events"
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        events
            .into_iter()
            .map(|(milestone, error_log, details)| format!("{milestone} {error_log:?} {}", details.0))
            .collect()
    }

    /// Every text the audit log holds: action and summary.
    pub async fn audit_texts(&self) -> Vec<String> {
        let audit = with_pool!(self.environment.db, |pool| sqlx::query_as::<_, (String, String)>(
            "SELECT action, summary FROM audit_events"
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        audit
            .into_iter()
            .map(|(action, summary)| format!("{action} {summary}"))
            .collect()
    }
}

impl Drop for SshFixture {
    fn drop(&mut self) {
        // A worker left running would outlive a failed test's fixture.
        let _ = self.stop.send(true);
    }
}

//! `brokeforge serve` and `brokeforge worker`: the long-running processes. Both stop
//! gracefully on SIGTERM or SIGINT: no new requests or jobs are taken, running jobs
//! get a grace period to finish, and the rest go back to the queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use brokeforge_app::jobs::{JobEnvironment, registry};
use brokeforge_app::operations::OperationEnvironment;
use brokeforge_queue::{Queue, WorkerConfig, WorkerPool};
use tokio::sync::watch;

use crate::GlobalOptions;
use crate::startup;

#[derive(clap::Args)]
pub struct ServeOptions {
    /// Address and port for the web UI and API.
    #[arg(long, env = "BROKEFORGE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    workers: WorkerOptions,
    /// The URL people reach BrokeForge at (e.g. https://forge.example.com). It decides
    /// whether cookies are Secure and which Origin forms are accepted from.
    #[arg(long, env = "BROKEFORGE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Accept loopback, private and link-local server addresses (labs and tests only).
    #[arg(long, env = "BROKEFORGE_ALLOW_PRIVATE_ADDRESSES")]
    allow_private_addresses: bool,
}

#[derive(clap::Args)]
pub struct WorkerOptions {
    /// How many jobs this process runs at once.
    #[arg(long, env = "BROKEFORGE_WORKERS", default_value_t = 4)]
    workers: usize,
    /// Seconds running jobs may take to finish after a shutdown signal.
    #[arg(long, env = "BROKEFORGE_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
}

/// Resolves the watch to true on the first SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        let _ = sender.send(true);
    });
    Ok(receiver)
}

/// What package operations need: the database, the sealer for SSH keys, one SSH
/// connection pool for the process, and the live-output fan-out.
fn operation_environment(state: &startup::ControlPlaneState, queue: &Queue) -> OperationEnvironment {
    OperationEnvironment::new(state.db.clone(), queue.clone(), Arc::clone(&state.sealer))
}

/// A worker pool on `queue`, so that jobs enqueued through the same handle wake it at once.
fn worker_pool_on(queue: Queue, options: &WorkerOptions, operations: &OperationEnvironment) -> WorkerPool {
    let mut config = WorkerConfig::new(options.workers);
    config.shutdown_grace = Duration::from_secs(options.shutdown_grace);
    let environment = JobEnvironment { db: queue.db().clone() };
    let mut registry = registry(&environment);
    brokeforge_app::operations::register(&mut registry, operations);
    brokeforge_app::onboarding::register(&mut registry, operations);
    brokeforge_app::sites::register(&mut registry, operations);
    WorkerPool::new(queue, registry, config)
}

pub async fn serve(global: &GlobalOptions, options: ServeOptions) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    // Bind first: a busy address should fail before anything is created.
    let listener = tokio::net::TcpListener::bind(options.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (choose another address with --listen)",
            options.listen
        )
    })?;
    let state = startup::open(global).await?;
    let address = listener.local_addr()?;
    let queue = Queue::new(state.db.clone());
    let operations = operation_environment(&state, &queue);
    let workers = tokio::spawn(worker_pool_on(queue.clone(), &options.workers, &operations).run(shutdown.clone()));
    let web_config = brokeforge_web::WebConfig {
        public_url: options.public_url.clone(),
        address_policy: brokeforge_app::servers::AddressPolicy {
            allow_private: options.allow_private_addresses,
        },
    };
    let app = brokeforge_web::router(brokeforge_web::AppState::new(operations, web_config))
        .into_make_service_with_connect_info::<SocketAddr>();
    tracing::info!(%address, database = state.db.backend().name(), "BrokeForge is running");
    println!("BrokeForge is running at http://{address}");
    // First run: no user yet, so print a one-time link where the first administrator
    // is created. The token is random (256 bits), stored hashed, and expires.
    if let Some(token) = brokeforge_app::auth::issue_setup_token(&state.db)
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the first-run setup link: {error}"))?
    {
        let base = options
            .public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{address}"));
        let minutes = brokeforge_app::auth::SETUP_TOKEN_LIFETIME.as_secs() / 60;
        // Whoever started us may have stopped reading standard output after the first
        // line: a closed pipe must not stop the server.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "First run: create the administrator account at {base}/setup/{} (valid for {minutes} minutes, once)",
            token.expose()
        );
    }
    let mut http_shutdown = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .context("the HTTP server failed")?;
    workers.await.context("the worker pool panicked")?;
    state.db.close().await;
    Ok(())
}

pub async fn worker(global: &GlobalOptions, options: WorkerOptions) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let state = startup::open(global).await?;
    tracing::info!(
        database = state.db.backend().name(),
        workers = options.workers,
        "BrokeForge worker is running"
    );
    let queue = Queue::new(state.db.clone());
    let operations = operation_environment(&state, &queue);
    worker_pool_on(queue, &options, &operations).run(shutdown).await;
    state.db.close().await;
    Ok(())
}

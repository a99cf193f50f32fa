//! `brokeforge serve` and `brokeforge worker`: the long-running processes. Both stop
//! gracefully on SIGTERM or SIGINT: no new requests or jobs are taken, running jobs
//! get a grace period to finish, and the rest go back to the queue.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use brokeforge_app::jobs::{JobEnvironment, registry};
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

fn worker_pool(db: &brokeforge_db::Db, options: &WorkerOptions) -> WorkerPool {
    let mut config = WorkerConfig::new(options.workers);
    config.shutdown_grace = Duration::from_secs(options.shutdown_grace);
    let environment = JobEnvironment { db: db.clone() };
    WorkerPool::new(Queue::new(db.clone()), registry(&environment), config)
}

pub async fn serve(global: &GlobalOptions, options: ServeOptions) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let state = startup::open(global).await?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {} (choose another address with --listen)", options.listen))?;
    let address = listener.local_addr()?;
    let workers = tokio::spawn(worker_pool(&state.db, &options.workers).run(shutdown.clone()));
    let app = brokeforge_web::router(brokeforge_web::AppState { db: state.db.clone() });
    tracing::info!(%address, database = state.db.backend().name(), "BrokeForge is running");
    println!("BrokeForge is running at http://{address}");
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
    tracing::info!(database = state.db.backend().name(), workers = options.workers, "BrokeForge worker is running");
    worker_pool(&state.db, &options).run(shutdown).await;
    state.db.close().await;
    Ok(())
}

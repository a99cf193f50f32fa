//! A worker process for the queue's multi-process contract tests and benchmark. It
//! runs the probe job kinds against a real database and records every run in the
//! `queue_probe_runs` table (created on demand, outside the product's schema), so
//! tests can check that each job ran once and that keyed jobs never overlapped.

use std::time::Duration;

use anyhow::Context;
use brokeforge_db::{Db, DbConfig, with_pool};
use brokeforge_queue::{JobContext, JobError, Queue, Registry, WorkerConfig, WorkerPool};
use clap::Parser;
use serde::Deserialize;

#[derive(Parser)]
#[command(about = "Runs probe jobs from BrokeForge's queue (for tests and benchmarks)")]
struct Options {
    /// PostgreSQL URL; SQLite in --data-dir when absent.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value = ".")]
    data_dir: std::path::PathBuf,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    #[arg(long, default_value_t = 500)]
    recovery_ms: u64,
    #[arg(long, default_value_t = 5000)]
    grace_ms: u64,
    /// This worker's name in leases and run records.
    #[arg(long)]
    name: Option<String>,
}

/// The payload of `probe.record` jobs.
#[derive(Deserialize)]
struct RecordPayload {
    #[serde(default)]
    sleep_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let options = Options::parse();
    let config = DbConfig::from_options(&options.data_dir, options.database_url.as_deref());
    let db = Db::connect(&config).await.context("connect")?;
    brokeforge_db::migrate::run(&db).await.context("migrate")?;
    create_probe_table(&db).await?;

    let mut worker_config = WorkerConfig::new(options.concurrency);
    if let Some(name) = options.name {
        worker_config.name = name;
    }
    worker_config.lease = Duration::from_millis(options.lease_ms);
    worker_config.heartbeat_interval = Duration::from_millis(options.heartbeat_ms);
    worker_config.poll_interval = Duration::from_millis(options.poll_ms);
    worker_config.recovery_interval = Duration::from_millis(options.recovery_ms);
    worker_config.shutdown_grace = Duration::from_millis(options.grace_ms);
    let worker_name = worker_config.name.clone();

    let mut registry = Registry::new();
    registry.register(
        "probe.noop",
        |_context: JobContext, _payload: serde_json::Value| async { Ok(()) },
    );
    let record_db = db.clone();
    let record_worker = worker_name.clone();
    registry.register("probe.record", move |context: JobContext, payload: RecordPayload| {
        let db = record_db.clone();
        let worker = record_worker.clone();
        async move { record_run(&db, &worker, &context, payload.sleep_ms).await }
    });
    registry.register(
        "probe.fail",
        |context: JobContext, _payload: serde_json::Value| async move {
            Err(JobError::retryable(format!(
                "probe failure on attempt {}",
                context.attempt
            )))
        },
    );

    let queue = Queue::new(db.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = stop.send(true);
    });
    eprintln!("probe worker {worker_name} ready");
    WorkerPool::new(queue, registry, worker_config).run(stopped).await;
    db.close().await;
    Ok(())
}

async fn create_probe_table(db: &Db) -> anyhow::Result<()> {
    with_pool!(db, |pool| {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS queue_probe_runs (job_id BIGINT NOT NULL, attempt INTEGER NOT NULL, \
             worker TEXT NOT NULL, started_ms BIGINT NOT NULL, finished_ms BIGINT)",
        )
        .execute(pool)
        .await
        .context("create queue_probe_runs")?;
    });
    Ok(())
}

async fn record_run(db: &Db, worker: &str, context: &JobContext, sleep_ms: u64) -> Result<(), JobError> {
    let started = brokeforge_db::clock::now_millis();
    let database_error = |error: sqlx::Error| JobError::retryable(format!("probe database error: {error}"));
    with_pool!(db, |pool| {
        sqlx::query("INSERT INTO queue_probe_runs (job_id, attempt, worker, started_ms) VALUES ($1, $2, $3, $4)")
            .bind(context.id.0)
            .bind(context.attempt as i32)
            .bind(worker)
            .bind(started)
            .execute(pool)
            .await
            .map_err(database_error)?;
    });
    if sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    }
    let finished = brokeforge_db::clock::now_millis();
    with_pool!(db, |pool| {
        sqlx::query("UPDATE queue_probe_runs SET finished_ms = $1 WHERE job_id = $2 AND attempt = $3 AND worker = $4")
            .bind(finished)
            .bind(context.id.0)
            .bind(context.attempt as i32)
            .bind(worker)
            .execute(pool)
            .await
            .map_err(database_error)?;
    });
    Ok(())
}

//! Queue throughput: no-op jobs through a pool of workers, on SQLite and on a
//! durable PostgreSQL (fsync and synchronous commit on), against a floor measured
//! in the same run: the same number of concurrent tasks doing two bare single-row
//! writes per job (the least a claim plus a completion can cost).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brokeforge_db::{Db, with_pool};
use brokeforge_queue::{JobContext, NewJob, Queue, Registry, WorkerConfig, WorkerPool};
use brokeforge_testkit::{PostgresCluster, PostgresOptions};
use serde_json::json;

use crate::report::{Report, Row};

#[derive(clap::Args)]
pub struct QueueOptions {
    /// Jobs per run.
    #[arg(long, default_value_t = 5000)]
    jobs: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

pub async fn run(options: QueueOptions, report: &mut Report) -> anyhow::Result<()> {
    println!(
        "Queue benchmark: {} no-op jobs, {} workers (machine: {} cores)",
        options.jobs,
        options.workers,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let data_dir = brokeforge_testkit::temp_data_dir();
    let sqlite = Db::connect_sqlite(data_dir.path()).await?;
    measure_backend(&sqlite, &options, report).await?;
    sqlite.close().await;

    let cluster = PostgresCluster::start(PostgresOptions { durable: true });
    let postgres = Db::connect_postgres_with(&cluster.create_database(), 16).await?;
    measure_backend(&postgres, &options, report).await?;
    postgres.close().await;
    Ok(())
}

async fn measure_backend(db: &Db, options: &QueueOptions, report: &mut Report) -> anyhow::Result<()> {
    brokeforge_db::migrate::run(db).await?;
    let backend = db.backend().name();

    if db.backend() == brokeforge_db::Backend::Postgres {
        let durable_floor = measure_floor(db, options, false).await?;
        report.add(Row {
            workload: "noop-jobs".into(),
            tool: format!("{backend}-two-durable-writes"),
            fields: fields(json!({ "backend": backend, "workers": options.workers, "jobs": options.jobs, "jobs_per_second": durable_floor.round() })),
            summary: format!("{durable_floor:>8.0} jobs/s (two bare writes per job, each commit flushed)"),
        });
    }
    let floor = measure_floor(db, options, true).await?;
    let queue_rate = measure_queue(db, options).await?;
    report.add(Row {
        workload: "noop-jobs".into(),
        tool: format!("{backend}-two-writes-floor"),
        fields: fields(json!({ "backend": backend, "workers": options.workers, "jobs": options.jobs, "jobs_per_second": floor.round() })),
        summary: format!("{floor:>8.0} jobs/s (two bare writes per job on the queue's relaxed pool: the floor)"),
    });
    report.add(Row {
        workload: "noop-jobs".into(),
        tool: backend.into(),
        fields: fields(json!({
            "backend": backend,
            "workers": options.workers,
            "jobs": options.jobs,
            "jobs_per_second": queue_rate.round(),
            "ratio_to_floor": (queue_rate / floor * 100.0).round() / 100.0,
        })),
        summary: format!("{queue_rate:>8.0} jobs/s ({:.2}x the floor)", queue_rate / floor),
    });
    Ok(())
}

fn fields(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Enqueues the jobs, then times the worker pool from start until all succeeded.
async fn measure_queue(db: &Db, options: &QueueOptions) -> anyhow::Result<f64> {
    let queue = Queue::new(db.clone());
    let jobs: Vec<NewJob> = (0..options.jobs)
        .map(|_| NewJob::new("bench.noop", json!({})).max_attempts(1))
        .collect();
    for chunk in jobs.chunks(1000) {
        queue.enqueue_many(chunk).await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let counter = Arc::clone(&done);
    registry.register(
        "bench.noop",
        move |_context: JobContext, _payload: serde_json::Value| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        },
    );
    let mut config = WorkerConfig::new(options.workers);
    config.poll_interval = Duration::from_millis(20);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let pool = tokio::spawn(WorkerPool::new(queue.clone(), registry, config).run(stopped));
    loop {
        let succeeded = succeeded_count(db).await?;
        if succeeded >= options.jobs as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(if done.load(Ordering::Relaxed) >= options.jobs {
            1
        } else {
            25
        }))
        .await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    pool.await?;
    with_pool!(db, |pool| {
        sqlx::query("DELETE FROM jobs").execute(pool).await?;
    });
    Ok(options.jobs as f64 / elapsed.as_secs_f64())
}

async fn succeeded_count(db: &Db) -> anyhow::Result<i64> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'")
            .fetch_one(pool)
            .await?
    }))
}

/// The floor: per job, one single-row UPDATE that takes the row and one that
/// finishes it, from `workers` concurrent tasks on disjoint rows; on the queue's
/// relaxed pool when `relaxed`, else with every commit flushed.
async fn measure_floor(db: &Db, options: &QueueOptions, relaxed: bool) -> anyhow::Result<f64> {
    with_pool!(db, |pool| {
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_floor (id BIGINT PRIMARY KEY, state TEXT NOT NULL)")
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM bench_floor").execute(pool).await?;
        let mut transaction = pool.begin().await?;
        for id in 0..options.jobs as i64 {
            sqlx::query("INSERT INTO bench_floor (id, state) VALUES ($1, 'queued')")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
    });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..options.workers {
        let db = db.clone();
        let jobs = options.jobs;
        let workers = options.workers;
        tasks.spawn(async move {
            for id in (worker..jobs).step_by(workers) {
                for state in ["running", "succeeded"] {
                    const UPDATE: &str = "UPDATE bench_floor SET state = $1 WHERE id = $2";
                    if relaxed {
                        with_pool!(relaxed db, |pool| sqlx::query(UPDATE).bind(state).bind(id as i64).execute(pool).await?.rows_affected());
                    } else {
                        with_pool!(db, |pool| sqlx::query(UPDATE).bind(state).bind(id as i64).execute(pool).await?.rows_affected());
                    }
                }
            }
            Ok::<(), sqlx::Error>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let elapsed = started.elapsed();
    with_pool!(db, |pool| {
        sqlx::query("DROP TABLE bench_floor").execute(pool).await?;
    });
    Ok(options.jobs as f64 / elapsed.as_secs_f64())
}

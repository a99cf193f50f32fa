//! The queue's contract, checked on real SQLite and real PostgreSQL alike: jobs run,
//! keyed jobs never overlap, failures retry with backoff, timeouts and cancellation
//! end jobs with clear reasons, and abandoned leases are recovered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokeforge_db::Db;
use brokeforge_queue::{
    Backoff, CancelOutcome, JobContext, JobError, JobFilter, JobState, NewJob, Queue, Registry, WorkerConfig,
    WorkerPool,
};
use serde_json::json;
use tokio::sync::watch;

/// A migrated database on each backend.
async fn backends() -> Vec<(Db, Option<tempfile::TempDir>)> {
    let directory = brokeforge_testkit::temp_data_dir();
    let sqlite = Db::connect_sqlite(directory.path()).await.unwrap();
    brokeforge_db::migrate::run(&sqlite).await.unwrap();
    let url = tokio::task::spawn_blocking(brokeforge_testkit::fresh_postgres_database)
        .await
        .unwrap();
    let postgres = Db::connect_postgres(&url).await.unwrap();
    brokeforge_db::migrate::run(&postgres).await.unwrap();
    vec![(sqlite, Some(directory)), (postgres, None)]
}

fn fast_config(concurrency: usize) -> WorkerConfig {
    let mut config = WorkerConfig::new(concurrency);
    config.lease = Duration::from_millis(1500);
    config.heartbeat_interval = Duration::from_millis(200);
    config.poll_interval = Duration::from_millis(30);
    config.recovery_interval = Duration::from_millis(200);
    config.shutdown_grace = Duration::from_secs(5);
    config
}

struct RunningPool {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningPool {
    fn start(queue: &Queue, registry: Registry, config: WorkerConfig) -> RunningPool {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(WorkerPool::new(queue.clone(), registry, config).run(stopped));
        RunningPool { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.handle.await.unwrap();
    }
}

/// Waits until every listed job reached a final state, or panics after `limit`.
async fn wait_final(queue: &Queue, ids: &[brokeforge_queue::JobId], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut all_final = true;
        for id in ids {
            if !queue.get(*id).await.unwrap().unwrap().state.is_final() {
                all_final = false;
                break;
            }
        }
        if all_final {
            return;
        }
        assert!(Instant::now() < deadline, "jobs did not finish within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_run_once_and_their_state_is_visible() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        let record = Arc::clone(&seen);
        registry.register("test.echo", move |context: JobContext, payload: serde_json::Value| {
            record
                .lock()
                .unwrap()
                .push((context.id, payload["n"].as_i64().unwrap()));
            async { Ok(()) }
        });
        let first = queue
            .enqueue(NewJob::new("test.echo", json!({"n": 1})).subject("server:7"))
            .await
            .unwrap();
        let record = queue.get(first).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Queued);
        assert_eq!(record.subject.as_deref(), Some("server:7"));
        let more: Vec<NewJob> = (2..=50).map(|n| NewJob::new("test.echo", json!({"n": n}))).collect();
        let mut ids = queue.enqueue_many(&more).await.unwrap();
        ids.push(first);
        let pool = RunningPool::start(&queue, registry, fast_config(4));
        wait_final(&queue, &ids, Duration::from_secs(20)).await;
        pool.stop().await;
        let mut numbers: Vec<i64> = seen.lock().unwrap().iter().map(|(_, n)| *n).collect();
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=50).collect::<Vec<_>>(),
            "{:?}: each job ran exactly once",
            db.backend()
        );
        let done = queue.get(first).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.attempts, 1);
        assert!(done.finished_at_ms.unwrap() >= done.started_at_ms.unwrap());
        let listed = queue
            .list(&JobFilter {
                subject: Some("server:7".into()),
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        let counts = queue.counts().await.unwrap();
        assert_eq!(counts, vec![(JobState::Succeeded, 50)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_with_the_same_key_never_overlap_and_others_run_beside_them() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let spans: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        let record = Arc::clone(&spans);
        registry.register("test.keyed", move |_context: JobContext, payload: serde_json::Value| {
            let record = Arc::clone(&record);
            async move {
                let started = Instant::now();
                tokio::time::sleep(Duration::from_millis(25)).await;
                let key = payload["key"].as_str().unwrap().to_owned();
                record.lock().unwrap().push((key, started, Instant::now()));
                Ok(())
            }
        });
        let jobs: Vec<NewJob> = (0..36)
            .map(|n| {
                let key = format!("server:{}", n % 3);
                NewJob::new("test.keyed", json!({ "key": key })).exclusive(key)
            })
            .collect();
        let ids = queue.enqueue_many(&jobs).await.unwrap();
        let pool = RunningPool::start(&queue, registry, fast_config(8));
        wait_final(&queue, &ids, Duration::from_secs(30)).await;
        pool.stop().await;
        let spans = spans.lock().unwrap().clone();
        assert_eq!(spans.len(), 36);
        for (index, (key, start, end)) in spans.iter().enumerate() {
            for (other_key, other_start, other_end) in &spans[index + 1..] {
                if key == other_key {
                    assert!(
                        end <= other_start || other_end <= start,
                        "{:?}: two {key} jobs overlapped",
                        db.backend()
                    );
                }
            }
        }
        let overlapping_different_keys = spans.iter().enumerate().any(|(index, (key, start, end))| {
            spans[index + 1..]
                .iter()
                .any(|(other_key, other_start, other_end)| key != other_key && start < other_end && other_start < end)
        });
        assert!(
            overlapping_different_keys,
            "jobs with different keys should run concurrently"
        );
        for id in ids {
            assert_eq!(queue.get(id).await.unwrap().unwrap().state, JobState::Succeeded);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_attempts_retry_with_exponential_backoff_until_the_limit() {
    for (db, _guard) in backends().await {
        let backoff = Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        };
        let queue = Queue::new(db.clone()).with_backoff(backoff);
        let attempts: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        let record = Arc::clone(&attempts);
        registry.register("test.flaky", move |context: JobContext, _payload: serde_json::Value| {
            record.lock().unwrap().push((context.attempt, Instant::now()));
            async move {
                if context.attempt < 3 {
                    Err(JobError::retryable(format!(
                        "apt lock held (attempt {})",
                        context.attempt
                    )))
                } else {
                    Ok(())
                }
            }
        });
        registry.register(
            "test.always_fails",
            |context: JobContext, _payload: serde_json::Value| async move {
                Err(JobError::retryable(format!(
                    "unreachable host (attempt {})",
                    context.attempt
                )))
            },
        );
        registry.register(
            "test.refused",
            |_context: JobContext, _payload: serde_json::Value| async {
                Err(JobError::permanent("PHP 5.6 is not available on Debian 12"))
            },
        );
        let flaky = queue
            .enqueue(NewJob::new("test.flaky", json!({})).max_attempts(5))
            .await
            .unwrap();
        let doomed = queue
            .enqueue(NewJob::new("test.always_fails", json!({})).max_attempts(2))
            .await
            .unwrap();
        let refused = queue
            .enqueue(NewJob::new("test.refused", json!({})).max_attempts(5))
            .await
            .unwrap();
        let pool = RunningPool::start(&queue, registry, fast_config(3));
        wait_final(&queue, &[flaky, doomed, refused], Duration::from_secs(20)).await;
        pool.stop().await;

        let flaky = queue.get(flaky).await.unwrap().unwrap();
        assert_eq!((flaky.state, flaky.attempts), (JobState::Succeeded, 3));
        let attempts = attempts.lock().unwrap().clone();
        assert_eq!(attempts.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2, 3]);
        let first_gap = attempts[1].1 - attempts[0].1;
        let second_gap = attempts[2].1 - attempts[1].1;
        assert!(
            first_gap >= Duration::from_millis(200),
            "first retry waited {first_gap:?}"
        );
        assert!(
            second_gap >= Duration::from_millis(400),
            "second retry waited {second_gap:?}"
        );

        let doomed = queue.get(doomed).await.unwrap().unwrap();
        assert_eq!((doomed.state, doomed.attempts), (JobState::Failed, 2));
        assert_eq!(doomed.last_error.as_deref(), Some("unreachable host (attempt 2)"));

        let refused = queue.get(refused).await.unwrap().unwrap();
        assert_eq!(
            (refused.state, refused.attempts),
            (JobState::Failed, 1),
            "permanent errors are not retried"
        );
        assert_eq!(
            refused.last_error.as_deref(),
            Some("PHP 5.6 is not available on Debian 12")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_exceeding_its_timeout_fails_with_a_clear_reason() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let mut registry = Registry::new();
        registry.register("test.slow", |_context: JobContext, _payload: serde_json::Value| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        });
        let id = queue
            .enqueue(
                NewJob::new("test.slow", json!({}))
                    .timeout(Duration::from_millis(300))
                    .max_attempts(1),
            )
            .await
            .unwrap();
        let started = Instant::now();
        let pool = RunningPool::start(&queue, registry, fast_config(1));
        wait_final(&queue, &[id], Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        pool.stop().await;
        let job = queue.get(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(
            job.last_error.as_deref(),
            Some("timed out after 300 ms (attempt 1 of 1)")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_stops_queued_jobs_at_once_and_running_jobs_at_the_next_heartbeat() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let mut registry = Registry::new();
        registry.register("test.long", |_context: JobContext, _payload: serde_json::Value| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        });
        let waiting = queue
            .enqueue(NewJob::new("test.long", json!({})).delay(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(queue.cancel(waiting).await.unwrap(), CancelOutcome::Cancelled);
        let job = queue.get(waiting).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(job.last_error.as_deref(), Some("cancelled before it started"));

        let running = queue.enqueue(NewJob::new("test.long", json!({}))).await.unwrap();
        let pool = RunningPool::start(&queue, registry, fast_config(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while queue.get(running).await.unwrap().unwrap().state != JobState::Running {
            assert!(Instant::now() < deadline, "the job never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(queue.cancel(running).await.unwrap(), CancelOutcome::Requested);
        wait_final(&queue, &[running], Duration::from_secs(5)).await;
        pool.stop().await;
        let job = queue.get(running).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(job.last_error.as_deref(), Some("cancelled while running"));
        assert_eq!(
            queue.cancel(running).await.unwrap(),
            CancelOutcome::AlreadyFinished(JobState::Cancelled)
        );
        assert_eq!(
            queue.cancel(brokeforge_queue::JobId(987_654)).await.unwrap(),
            CancelOutcome::NotFound
        );
        assert!(
            queue.retry(running).await.unwrap(),
            "a cancelled job can be queued again"
        );
        assert_eq!(queue.get(running).await.unwrap().unwrap().state, JobState::Queued);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_whose_worker_vanished_runs_again_after_its_lease_expires() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let id = queue.enqueue(NewJob::new("test.echo", json!({}))).await.unwrap();
        // A worker claims the job and then dies: it never heartbeats or reports.
        let claimed = queue
            .claim("vanished-worker", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((claimed.id, claimed.attempt), (id, 1));
        assert!(queue.claim("other", Duration::from_secs(5)).await.unwrap().is_none());

        let ran_by = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        let record = Arc::clone(&ran_by);
        registry.register("test.echo", move |context: JobContext, _payload: serde_json::Value| {
            record.lock().unwrap().push(context.attempt);
            async { Ok(()) }
        });
        let pool = RunningPool::start(&queue, registry, fast_config(2));
        wait_final(&queue, &[id], Duration::from_secs(10)).await;
        pool.stop().await;
        assert_eq!(*ran_by.lock().unwrap(), vec![2]);
        let job = queue.get(id).await.unwrap().unwrap();
        assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
        // The vanished worker's late report must not overwrite the outcome.
        assert!(!queue.complete(id, "vanished-worker").await.unwrap());
        assert!(
            queue
                .fail(&claimed, "vanished-worker", "late", true)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(queue.get(id).await.unwrap().unwrap().state, JobState::Succeeded);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kinds_and_bad_payloads_fail_with_a_clear_reason() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let mut registry = Registry::new();
        #[derive(serde::Deserialize)]
        struct Typed {
            #[allow(dead_code)]
            server_id: i64,
        }
        registry.register("test.typed", |_context: JobContext, _payload: Typed| async { Ok(()) });
        let unknown = queue.enqueue(NewJob::new("test.nobody", json!({}))).await.unwrap();
        let bad = queue
            .enqueue(NewJob::new("test.typed", json!({"server_id": "x"})))
            .await
            .unwrap();
        let pool = RunningPool::start(&queue, registry, fast_config(2));
        wait_final(&queue, &[unknown, bad], Duration::from_secs(10)).await;
        pool.stop().await;
        let unknown = queue.get(unknown).await.unwrap().unwrap();
        assert_eq!(unknown.state, JobState::Failed);
        assert_eq!(
            unknown.last_error.as_deref(),
            Some("no handler for job kind `test.nobody` in this BrokeForge build")
        );
        let bad = queue.get(bad).await.unwrap().unwrap();
        assert_eq!((bad.state, bad.attempts), (JobState::Failed, 1));
        assert!(
            bad.last_error
                .unwrap()
                .starts_with("the payload of this test.typed job is invalid")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_lets_short_jobs_finish_and_gives_long_ones_back() {
    for (db, _guard) in backends().await {
        let queue = Queue::new(db.clone());
        let mut registry = Registry::new();
        registry.register(
            "test.sleep",
            |_context: JobContext, payload: serde_json::Value| async move {
                tokio::time::sleep(Duration::from_millis(payload["ms"].as_u64().unwrap())).await;
                Ok(())
            },
        );
        let short = queue
            .enqueue(NewJob::new("test.sleep", json!({"ms": 300})))
            .await
            .unwrap();
        let long = queue
            .enqueue(NewJob::new("test.sleep", json!({"ms": 30_000})))
            .await
            .unwrap();
        let mut config = fast_config(2);
        config.shutdown_grace = Duration::from_millis(1000);
        let pool = RunningPool::start(&queue, registry, config);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let short_state = queue.get(short).await.unwrap().unwrap().state;
            let long_state = queue.get(long).await.unwrap().unwrap().state;
            if short_state == JobState::Running && long_state == JobState::Running {
                break;
            }
            assert!(Instant::now() < deadline, "both jobs should start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pool.stop().await;
        assert_eq!(queue.get(short).await.unwrap().unwrap().state, JobState::Succeeded);
        let long = queue.get(long).await.unwrap().unwrap();
        assert_eq!(
            (long.state, long.attempts, long.lease_owner),
            (JobState::Queued, 0, None)
        );
    }
}

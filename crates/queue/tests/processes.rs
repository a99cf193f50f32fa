//! The queue across real worker processes (`brokeforge-queue-probe`): many processes
//! on one PostgreSQL run every job exactly once, a worker killed with SIGKILL has its
//! job re-run after the lease expires, keyed jobs never overlap across processes,
//! and two processes on one SQLite file share it without corrupting it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brokeforge_db::{Db, with_pool};
use brokeforge_queue::{JobState, NewJob, Queue};
use serde_json::json;

const PROBE: &str = env!("CARGO_BIN_EXE_brokeforge-queue-probe");

struct Probe {
    child: Child,
}

impl Probe {
    fn start(database: &Target, name: &str, concurrency: usize) -> Probe {
        let mut command = Command::new(PROBE);
        match database {
            Target::Postgres(url) => command.args(["--database-url", url]),
            Target::Sqlite(dir) => command.arg("--data-dir").arg(dir),
        };
        command
            .args(["--name", name, "--concurrency", &concurrency.to_string()])
            .args([
                "--lease-ms",
                "1500",
                "--heartbeat-ms",
                "300",
                "--recovery-ms",
                "300",
                "--poll-ms",
                "20",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Probe {
            child: command.spawn().expect("start the probe worker"),
        }
    }

    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the probe");
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the probe exits cleanly on SIGTERM: {status}");
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Target {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

async fn postgres() -> (Db, Target) {
    let url = tokio::task::spawn_blocking(brokeforge_testkit::fresh_postgres_database)
        .await
        .unwrap();
    let db = Db::connect_postgres(&url).await.unwrap();
    brokeforge_db::migrate::run(&db).await.unwrap();
    create_probe_table(&db).await;
    (db, Target::Postgres(url))
}

async fn create_probe_table(db: &Db) {
    with_pool!(db, |pool| {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS queue_probe_runs (job_id BIGINT NOT NULL, attempt INTEGER NOT NULL, \
             worker TEXT NOT NULL, started_ms BIGINT NOT NULL, finished_ms BIGINT)",
        )
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn wait_all_final(queue: &Queue, expected: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let counts = queue.counts().await.unwrap();
        let finished: i64 = counts
            .iter()
            .filter(|(state, _)| state.is_final())
            .map(|(_, n)| n)
            .sum();
        if finished >= expected {
            return;
        }
        assert!(Instant::now() < deadline, "jobs unfinished after {limit:?}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (job_id, attempt, worker, started_ms, finished_ms) for every recorded run.
async fn runs(db: &Db) -> Vec<(i64, i32, String, i64, Option<i64>)> {
    with_pool!(db, |pool| {
        sqlx::query_as::<_, (i64, i32, String, i64, Option<i64>)>(
            "SELECT job_id, attempt, worker, started_ms, finished_ms FROM queue_probe_runs ORDER BY job_id, attempt",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_through_three_processes_each_run_exactly_once() {
    let (db, target) = postgres().await;
    let queue = Queue::new(db.clone());
    let jobs: Vec<NewJob> = (0..1000).map(|_| NewJob::new("probe.record", json!({}))).collect();
    let ids = queue.enqueue_many(&jobs).await.unwrap();
    let probes: Vec<Probe> = (0..3)
        .map(|n| Probe::start(&target, &format!("probe-{n}"), 4))
        .collect();
    wait_all_final(&queue, 1000, Duration::from_secs(120)).await;
    for probe in probes {
        probe.terminate();
    }
    let runs = runs(&db).await;
    assert_eq!(runs.len(), 1000, "one run per job");
    let mut run_ids: Vec<i64> = runs.iter().map(|run| run.0).collect();
    run_ids.dedup();
    assert_eq!(
        run_ids,
        ids.iter().map(|id| id.0).collect::<Vec<_>>(),
        "every job ran, none twice"
    );
    let workers: std::collections::BTreeSet<&str> = runs.iter().map(|run| run.2.as_str()).collect();
    assert_eq!(workers.len(), 3, "all three processes took work: {workers:?}");
    assert_eq!(queue.counts().await.unwrap(), vec![(JobState::Succeeded, 1000)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_jobs_never_overlap_across_processes() {
    let (db, target) = postgres().await;
    let queue = Queue::new(db.clone());
    let jobs: Vec<NewJob> = (0..40)
        .map(|n| NewJob::new("probe.record", json!({"sleep_ms": 30})).exclusive(format!("server:{}", n % 2)))
        .collect();
    let ids = queue.enqueue_many(&jobs).await.unwrap();
    let probes: Vec<Probe> = (0..3)
        .map(|n| Probe::start(&target, &format!("keyed-{n}"), 4))
        .collect();
    wait_all_final(&queue, 40, Duration::from_secs(60)).await;
    for probe in probes {
        probe.terminate();
    }
    let runs = runs(&db).await;
    assert_eq!(runs.len(), 40);
    let key_of = |job_id: i64| ids.iter().position(|id| id.0 == job_id).unwrap() % 2;
    for (index, a) in runs.iter().enumerate() {
        for b in &runs[index + 1..] {
            if key_of(a.0) == key_of(b.0) {
                let (a_end, b_end) = (a.4.unwrap(), b.4.unwrap());
                assert!(
                    a_end <= b.3 || b_end <= a.3,
                    "jobs {} and {} with one key overlapped",
                    a.0,
                    b.0
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_has_its_job_rerun_after_the_lease_expires() {
    let (db, target) = postgres().await;
    let queue = Queue::new(db.clone());
    let id = queue
        .enqueue(NewJob::new("probe.record", json!({"sleep_ms": 4000})).max_attempts(3))
        .await
        .unwrap();
    let mut doomed = Probe::start(&target, "doomed", 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&db).await.is_empty() {
        assert!(Instant::now() < deadline, "the first worker never started the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill_hard();
    let killed_at = Instant::now();
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, JobState::Running);
    let rescuer = Probe::start(&target, "rescuer", 1);
    wait_all_final(&queue, 1, Duration::from_secs(30)).await;
    rescuer.terminate();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));
    let runs = runs(&db).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].1, runs[0].2.as_str(), runs[0].4),
        (1, "doomed", None),
        "the killed run never finished"
    );
    assert_eq!((runs[1].1, runs[1].2.as_str()), (2, "rescuer"));
    assert!(runs[1].4.is_some());
    assert!(
        killed_at.elapsed() >= Duration::from_millis(1000),
        "recovery waited for the lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_sqlite_file_safely() {
    let directory = brokeforge_testkit::temp_data_dir();
    let db = Db::connect_sqlite(directory.path()).await.unwrap();
    brokeforge_db::migrate::run(&db).await.unwrap();
    create_probe_table(&db).await;
    let queue = Queue::new(db.clone());
    let jobs: Vec<NewJob> = (0..300).map(|_| NewJob::new("probe.record", json!({}))).collect();
    queue.enqueue_many(&jobs).await.unwrap();
    let target = Target::Sqlite(directory.path().to_owned());
    let probes: Vec<Probe> = (0..2)
        .map(|n| Probe::start(&target, &format!("sqlite-{n}"), 4))
        .collect();
    wait_all_final(&queue, 300, Duration::from_secs(60)).await;
    for probe in probes {
        probe.terminate();
    }
    let runs = runs(&db).await;
    assert_eq!(runs.len(), 300);
    let mut ids: Vec<i64> = runs.iter().map(|run| run.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), 300, "no job ran twice");
    let integrity: String = with_pool!(db, |pool| sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
        .fetch_one(pool)
        .await
        .unwrap());
    assert_eq!(integrity, "ok");
}

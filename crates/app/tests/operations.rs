//! Package operations end to end against a real OpenSSH server: credentials sealed
//! in the database and opened in memory, the pinned host key checked, the plan run,
//! one progress event per milestone, and failures recorded with the step's masked
//! command, exit code and stderr tail; then the same through the job queue.

mod common;

use std::time::{Duration, Instant};

use brokeforge_app::operations::{self, EventTarget, OperationError, PackageOperation, PackageOperationPayload};
use brokeforge_db::server_access;
use brokeforge_db::{Db, with_pool};
use brokeforge_packages::site_command::{SiteCommandInput, SiteCommandRun};
use brokeforge_queue::{JobState, Queue, Registry, WorkerConfig, WorkerPool};
use common::SshFixture;
use serde_json::json;

/// The test server with a PHP site, `example.com`, recorded on it; returns the site's id.
async fn fixture() -> (SshFixture, i64) {
    let fixture = SshFixture::start(&[]).await;
    let site_id: i64 = with_pool!(fixture.environment.db, |pool| sqlx::query_scalar::<_, i64>(
        "INSERT INTO server_sites (server_id, domain, site_type, document_root, created_at, updated_at) \
         VALUES ($1, 'example.com', 'php', '/home/brokeforge/example.com/current/public', $2, $2) RETURNING id"
    )
    .bind(fixture.server_id)
    .bind(brokeforge_db::clock::now())
    .fetch_one(pool)
    .await
    .unwrap());
    (fixture, site_id)
}

fn command(fixture: &SshFixture, text: &str) -> SiteCommandInput {
    serde_json::from_value(json!({
        "site_directory": fixture.sshd.work_dir().to_str().unwrap(),
        "command": text,
        "timeout": 30,
    }))
    .unwrap()
}

/// (milestone, current_step, total_steps, status, details) of the site's events.
async fn site_events(db: &Db, site_id: i64) -> Vec<(String, i32, i32, String, serde_json::Value)> {
    with_pool!(db, |pool| sqlx::query_as::<
        _,
        (String, i32, i32, String, sqlx::types::Json<serde_json::Value>),
    >(
        "SELECT milestone, current_step, total_steps, status, details FROM server_site_package_events \
         WHERE site_id = $1 ORDER BY id"
    )
    .bind(site_id)
    .fetch_all(pool)
    .await
    .unwrap())
    .into_iter()
    .map(|(milestone, step, total, status, details)| (milestone, step, total, status, details.0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_command_runs_over_ssh_and_records_one_event_per_milestone() {
    let (fixture, site_id) = fixture().await;
    let events = EventTarget::Site {
        server_id: fixture.server_id,
        site_id,
    };
    let input = command(&fixture, "echo \"hello from $(whoami)\" > out.txt; echo note >&2");
    let outcome = operations::execute::<SiteCommandRun>(&fixture.environment, events, Some(41), &input)
        .await
        .unwrap();
    assert!(outcome.changed);
    let written = std::fs::read_to_string(fixture.sshd.work_dir().join("out.txt")).unwrap();
    assert_eq!(written, format!("hello from {}\n", fixture.sshd.user()));
    let recorded = site_events(&fixture.environment.db, site_id).await;
    let summary: Vec<(&str, i32, i32, &str)> = recorded
        .iter()
        .map(|(label, step, total, status, _)| (label.as_str(), *step, *total, status.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Running the command", 1, 2, "running"),
            ("Complete", 2, 2, "running"),
            ("Finished", 2, 2, "success"),
        ]
    );
    assert_eq!(recorded[0].4["key"], "run_command");
    assert_eq!(recorded[2].4["changed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_records_its_command_exit_code_and_stderr() {
    let (fixture, site_id) = fixture().await;
    let events = EventTarget::Site {
        server_id: fixture.server_id,
        site_id,
    };
    let input = command(&fixture, "echo 'composer: lock file out of date' >&2; exit 7");
    let error = operations::execute::<SiteCommandRun>(&fixture.environment, events, Some(42), &input)
        .await
        .unwrap_err();
    let OperationError::Ssh(ssh_error) = &error else {
        panic!("expected an SSH step failure, got {error}")
    };
    assert_eq!(ssh_error.exit_code(), Some(7));
    assert!(!error.is_transient(), "a failing command is not retried blindly");
    let recorded = site_events(&fixture.environment.db, site_id).await;
    let failed = recorded.last().unwrap();
    assert_eq!(
        (failed.0.as_str(), failed.1, failed.3.as_str()),
        ("Running the command", 1, "failed")
    );
    assert_eq!(failed.4["exit_code"], 7);
    assert!(
        failed.4["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("composer: lock file out of date")
    );
    let shown_command = failed.4["command"].as_str().unwrap();
    assert!(shown_command.contains("exit 7"), "{shown_command}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_key_that_changed_is_refused_and_recorded() {
    let (fixture, site_id) = fixture().await;
    let impostor = brokeforge_ssh::generate_keypair("impostor");
    server_access::pin_host_key(&fixture.environment.db, fixture.server_id, &impostor.public_openssh)
        .await
        .unwrap();
    let events = EventTarget::Site {
        server_id: fixture.server_id,
        site_id,
    };
    let error =
        operations::execute::<SiteCommandRun>(&fixture.environment, events, Some(43), &command(&fixture, "true"))
            .await
            .unwrap_err();
    let message = error.to_string();
    assert!(message.to_lowercase().contains("host key"), "{message}");
    assert!(!fixture.sshd.work_dir().join("never").exists());
    let recorded = site_events(&fixture.environment.db, site_id).await;
    let failed = recorded.last().unwrap();
    assert_eq!(failed.3, "failed");
    assert_eq!(failed.4["kind"], "ssh");
    assert_eq!(failed.4["message"], message.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_run_as_jobs_one_at_a_time_per_server() {
    let (fixture, site_id) = fixture().await;
    let queue = Queue::new(fixture.environment.db.clone());
    let mut registry = Registry::new();
    operations::register(&mut registry, &fixture.environment);
    let events = EventTarget::Site {
        server_id: fixture.server_id,
        site_id,
    };
    let mut ids = Vec::new();
    for n in 0..3 {
        let text = format!("echo start-{n} >> order.log; sleep 0.2; echo end-{n} >> order.log");
        let payload = PackageOperationPayload {
            events,
            operation: PackageOperation::SiteCommandRun(command(&fixture, &text)),
            follow_up: None,
        };
        ids.push(operations::enqueue(&queue, &payload).await.unwrap());
    }
    let failing = PackageOperationPayload {
        events,
        operation: PackageOperation::SiteCommandRun(command(&fixture, "echo 'disk full' >&2; exit 3")),
        follow_up: None,
    };
    let failing_id = operations::enqueue(&queue, &failing).await.unwrap();
    let mut config = WorkerConfig::new(4);
    config.poll_interval = Duration::from_millis(50);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pool = tokio::spawn(WorkerPool::new(queue.clone(), registry, config).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut finished = 0;
        for id in ids.iter().chain([&failing_id]) {
            if queue.get(*id).await.unwrap().unwrap().state.is_final() {
                finished += 1;
            }
        }
        if finished == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    pool.await.unwrap();
    for id in &ids {
        assert_eq!(queue.get(*id).await.unwrap().unwrap().state, JobState::Succeeded);
    }
    let log = std::fs::read_to_string(fixture.sshd.work_dir().join("order.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6);
    for pair in lines.chunks(2) {
        assert_eq!(
            pair[0].replace("start", "end"),
            pair[1],
            "operations on one server never overlap: {lines:?}"
        );
    }
    // Job pages and the API read a site operation's progress like a server operation's.
    let events = brokeforge_db::package_events::list_for_job(&fixture.environment.db, ids[0].0, 0)
        .await
        .unwrap();
    let statuses: Vec<&str> = events.iter().map(|event| event.status.as_str()).collect();
    assert_eq!(statuses, vec!["running", "running", "success"]);
    let failed = queue.get(failing_id).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.attempts),
        (JobState::Failed, 1),
        "a failing command fails at once"
    );
    let reason = failed.last_error.unwrap();
    assert!(
        reason.contains("exit code 3") || reason.contains("exited with 3"),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "one line: {reason}");
}

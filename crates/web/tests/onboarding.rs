//! Onboarding end to end against a real OpenSSH server: a server is added through the
//! API, its bootstrap script is downloaded with curl from a real HTTP listener, the
//! script's own reporting functions post its progress and completion (with the real
//! sshd's host key) to the signed callback URLs, the control plane pins the key, a
//! worker logs in over SSH as both roles and starts provisioning. Replays, forged
//! signatures, expired URLs and a second use of the line are refused.
//!
//! The test account of the test kit stands in for root and brokeforge (both roles log
//! in as it), so the first provisioning package, which needs root, fails: that
//! failure, its recorded step and resuming from it are checked too.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use brokeforge_app::onboarding::{self, CallbackKind};
use brokeforge_app::operations::{LiveOutput, OperationEnvironment};
use brokeforge_db::server_access;
use brokeforge_db::servers as server_table;
use brokeforge_queue::{WorkerConfig, WorkerPool};
use brokeforge_ssh::{PoolConfig, SshPool};
use brokeforge_testkit::SshServer;
use brokeforge_web::{AppState, WebConfig};
use common::TestApp;
use serde_json::json;
use tokio::sync::watch;

/// Runs `script` with bash in library mode, then `commands`; returns status, stdout, stderr.
fn run_library(script: &str, commands: &str, directory: &std::path::Path) -> (i32, String, String) {
    let path = directory.join("bootstrap.sh");
    std::fs::write(&path, script).unwrap();
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {}\n{commands}", path.display()))
        .env("BROKEFORGE_BOOTSTRAP_LIBRARY", "1")
        .current_dir(directory)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn curl(url: &str) -> String {
    let output = std::process::Command::new("curl")
        .args(["-fsSL", url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Posts `body` to `url` with curl; returns the HTTP status.
fn post(url: &str, body: &str) -> u16 {
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["--data-binary", body, url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).parse().unwrap()
}

fn extract(script: &str, variable: &str) -> String {
    let prefix = format!("readonly {variable}=");
    let line = script.lines().find(|line| line.starts_with(&prefix)).unwrap();
    line[prefix.len()..].replace('\'', "")
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrapped_server_is_pinned_verified_over_ssh_and_provisioned() {
    let sshd = tokio::task::spawn_blocking(SshServer::start).await.unwrap();
    let directory = brokeforge_testkit::temp_data_dir();
    let db = brokeforge_db::Db::connect_sqlite(directory.path()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::with_config(
        db.clone(),
        "sqlite",
        Some(directory),
        WebConfig {
            public_url: Some(base.clone()),
            address_policy: brokeforge_app::servers::AddressPolicy { allow_private: true },
        },
    )
    .await;
    let state: AppState = app.state.clone();
    let environment = OperationEnvironment {
        db: db.clone(),
        queue: state.queue.clone(),
        sealer: Arc::clone(&state.sealer),
        ssh: SshPool::new(PoolConfig::default()),
        live_output: LiveOutput::default(),
    };
    let mut registry = brokeforge_app::jobs::registry(&brokeforge_app::jobs::JobEnvironment { db: db.clone() });
    brokeforge_app::operations::register(&mut registry, &environment);
    onboarding::register(&mut registry, &environment);
    let mut worker_config = WorkerConfig::new(2);
    worker_config.poll_interval = Duration::from_millis(50);
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(WorkerPool::new(state.queue.clone(), registry, worker_config).run(stopped));
    let router = brokeforge_web::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut http_stop = stop.subscribe();
    let server_task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
            .unwrap();
    });

    // Add the server through the API: the answer carries the bootstrap line.
    let owner = app.user("owner@example.com", false).await;
    let token = app.token(&owner, &["read", "write", "deploy"]).await;
    let (status, created) = app
        .api(
            Method::POST,
            "/api/v1/servers",
            Some(&token),
            Some(
                json!({ "name": "lab", "public_address": "127.0.0.1", "ssh_port": sshd.port(), "php_version": "8.2" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let server_id = created["id"].as_i64().unwrap();
    let command = created["bootstrap_line"]["command"].as_str().unwrap().to_owned();
    let script_url = created["bootstrap_line"]["url"].as_str().unwrap().to_owned();
    assert_eq!(command, format!("curl -fsSL {script_url} | sudo bash"));
    let token_part = script_url.rsplit('/').next().unwrap();
    assert_eq!(token_part.len(), 64, "256-bit token");
    assert_eq!(created["connection_status"], "pending");

    // Only public keys are stored in the clear; private keys are sealed.
    let mut public_keys = Vec::new();
    for role in ["root", "brokeforge"] {
        let credential = server_access::credential(&db, server_id, role).await.unwrap().unwrap();
        assert!(credential.public_key.starts_with("ssh-ed25519 "));
        assert!(!String::from_utf8_lossy(&credential.private_key_sealed).contains("PRIVATE KEY"));
        // The test account stands in for both roles.
        server_access::store_credential(
            &db,
            server_id,
            role,
            Some(sshd.user()),
            &credential.private_key_sealed,
            &credential.public_key,
        )
        .await
        .unwrap();
        sshd.authorize_key(&credential.public_key);
        public_keys.push(credential.public_key);
    }

    // Download the script as the line does; it carries the public keys only.
    let script = curl(&script_url);
    assert!(script.starts_with("#!/usr/bin/env bash"));
    for key in &public_keys {
        let material = key.split_whitespace().nth(1).unwrap();
        assert!(script.contains(material), "the script installs {key}");
    }
    assert!(!script.contains("PRIVATE KEY"));
    let progress_url = extract(&script, "PROGRESS_URL");
    let completion_url = extract(&script, "COMPLETION_URL");
    assert!(progress_url.starts_with(&format!("{base}/bootstrap/callback/")));

    // A forged signature is refused before anything happens.
    let forged = format!("{}0", &progress_url[..progress_url.len() - 1]);
    let forged = if forged == progress_url {
        format!("{}1", &progress_url[..progress_url.len() - 1])
    } else {
        forged
    };
    assert_eq!(post(&forged, r#"{"step":"started","status":"running"}"#), 401);

    // The script's own functions report its progress and completion.
    let work = tempfile::tempdir().unwrap();
    let host_key_file = work.path().join("ssh_host_ed25519_key.pub");
    std::fs::write(&host_key_file, format!("{}\n", sshd.host_public_key())).unwrap();
    let deploy_key = work.path().join("deploy");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "brokeforge@lab", "-f"])
        .arg(&deploy_key)
        .status()
        .unwrap();
    assert!(keygen.success());
    let deploy_public = std::fs::read_to_string(deploy_key.with_extension("pub")).unwrap();
    let commands = format!(
        "set -e\nreport_progress started running\nreport_progress started success\n\
         report_progress user running\nreport_progress user success\n\
         post_json \"$COMPLETION_URL\" \"$(completion_body '{}' /etc/os-release {})\"\necho reported",
        deploy_public.trim(),
        host_key_file.display()
    );
    let (code, stdout, stderr) = run_library(&script, &commands, work.path());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("reported"), "{stdout}");

    // The control plane pinned the key, checked both logins over SSH and started provisioning.
    wait_for("the connection check", || {
        let db = db.clone();
        async move {
            let server = server_table::find(&db, server_id).await.unwrap().unwrap();
            server.connection_status == "connected" || server.connection_status == "failed"
        }
    })
    .await;
    let server = server_table::find(&db, server_id).await.unwrap().unwrap();
    let status = onboarding::status(&db, &app.principal(&owner), server_id)
        .await
        .unwrap();
    assert_eq!(server.connection_status, "connected", "{:?}", status.events);
    let pinned = server.host_key.clone().unwrap();
    let host_key_material = sshd.host_public_key().split_whitespace().nth(1).unwrap();
    assert!(pinned.contains(host_key_material), "{pinned}");
    assert_eq!(server.deploy_public_key.as_deref(), Some(deploy_public.trim()));
    assert_eq!(server.os_name.as_deref(), Some("debian"));
    let labels: Vec<(&str, &str)> = status
        .events
        .iter()
        .map(|event| (event.label.as_str(), event.status.as_str()))
        .collect();
    for expected in [
        ("Checking in with BrokeForge", "running"),
        ("Creating the brokeforge user", "success"),
        ("Reporting to BrokeForge", "success"),
        ("Logging in as root", "running"),
        ("Logging in as brokeforge", "running"),
        ("Detecting the operating system", "success"),
    ] {
        assert!(labels.contains(&expected), "{expected:?} in {labels:?}");
    }

    // Replays of the finished run, and a second use of the line, are refused.
    assert_eq!(
        post(&progress_url, r#"{"step":"started","status":"running"}"#),
        410,
        "{progress_url}"
    );
    let completion = format!(
        r#"{{"ssh_host_keys":["ssh-ed25519 {}"],"deploy_public_key":"{}","os_release":"ID=debian\nVERSION_ID=\"12\"","ssh_port":{}}}"#,
        "AAAAC3NzaC1lZDI1NTE5AAAAIDq2vZ9nYV5R7uV9TQ0yqKX7o2r0w2m5mM2s4Yk5c6Xh",
        deploy_public.trim(),
        sshd.port()
    );
    assert_eq!(post(&completion_url, &completion), 410);
    let again = curl(&script_url);
    assert!(again.contains("already used"), "{again}");
    let refused = std::process::Command::new("bash")
        .arg("-c")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already used"));
    assert_eq!(
        server_table::find(&db, server_id)
            .await
            .unwrap()
            .unwrap()
            .host_key
            .as_deref(),
        Some(pinned.as_str()),
        "the pinned keys did not change"
    );

    // Provisioning runs package by package; as a non-root stand-in the first one fails,
    // and the failure names the step with its command, exit code and error output.
    wait_for("provisioning to stop", || {
        let db = db.clone();
        async move {
            let server = server_table::find(&db, server_id).await.unwrap().unwrap();
            server.provision_status == "failed" || server.provision_status == "provisioned"
        }
    })
    .await;
    let status = onboarding::status(&db, &app.principal(&owner), server_id)
        .await
        .unwrap();
    assert_eq!(status.provision_status, "failed");
    // Which package fails first depends on what this machine already has (time sync
    // may already be on); whichever it is, it is named with its error.
    let step = status.provisioning_step.clone().unwrap();
    let failure = status.failure.clone().unwrap();
    assert!(failure.starts_with(&format!("{step} failed: ")), "{failure}");
    let states: Vec<_> = status.stages.iter().map(|stage| format!("{:?}", stage.state)).collect();
    assert_eq!(states[..2], ["Done", "Done"], "{states:?}");
    assert_eq!(
        states.iter().filter(|state| *state == "Failed").count(),
        1,
        "{states:?}"
    );
    let failed_index = server_table::find(&db, server_id)
        .await
        .unwrap()
        .unwrap()
        .provision_state
        .0["step"]
        .clone();
    let failed_job = status.provisioning_job_id.unwrap();
    let (status_code, job) = app
        .api(Method::GET, &format!("/api/v1/jobs/{failed_job}"), Some(&token), None)
        .await;
    assert_eq!(status_code, StatusCode::OK);
    assert_eq!(job["state"], "failed", "{job}");
    let failed_event = job["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["status"] == "failed")
        .cloned()
        .unwrap_or_default();
    assert!(failed_event["milestone"].is_string(), "{job}");

    // Resume starts again from the package that failed.
    let (status_code, resumed) = app
        .api(
            Method::POST,
            &format!("/api/v1/servers/{server_id}/provisioning/resume"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status_code, StatusCode::ACCEPTED, "{resumed}");
    let resumed_id = resumed["id"].as_i64().unwrap();
    assert_ne!(resumed_id, failed_job);
    let server = server_table::find(&db, server_id).await.unwrap().unwrap();
    assert_eq!(server.provision_state.0["step"], failed_index);
    assert_eq!(server.provision_state.0["job_id"], resumed_id);

    let _ = stop.send(true);
    let _ = server_task.await;
    let _ = workers.await;
}

#[tokio::test]
async fn expired_foreign_and_malformed_callbacks_are_refused() {
    let app = TestApp::sqlite().await;
    let owner = app.user("owner@example.com", false).await;
    let principal = app.principal(&owner);
    let base = "http://127.0.0.1:9";
    let (server, line) = onboarding::create_server(
        app.db(),
        &app.state.sealer,
        &principal,
        brokeforge_app::servers::AddressPolicy { allow_private: true },
        &brokeforge_app::servers::ServerInput {
            name: Some("lab".into()),
            public_address: Some("10.0.0.5".into()),
            ..Default::default()
        },
        base,
    )
    .await
    .unwrap();
    let token = line.url.rsplit('/').next().unwrap().to_owned();
    let script = onboarding::script_for_token(app.db(), &app.state.sealer, &token, base)
        .await
        .unwrap();
    assert!(script.usable);
    let text = String::from_utf8(script.body).unwrap();
    let progress_url = extract(&text, "PROGRESS_URL");
    let line_id: i64 = progress_url.split('/').nth(5).unwrap().parse().unwrap();
    let path_of = |url: &str| url.strip_prefix(base).unwrap().to_owned();
    let started = json!({ "step": "started", "status": "running" });

    // Signed, but expired.
    let run = "ab".repeat(16);
    let expired = onboarding::signed_callback_url(&app.state.sealer, base, line_id, CallbackKind::Progress, &run, 1000);
    let (status, body) = app
        .api(Method::POST, &path_of(&expired), None, Some(started.clone()))
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    // Signed for progress, used for completion.
    let future = chrono::Utc::now().timestamp() + 600;
    let progress =
        onboarding::signed_callback_url(&app.state.sealer, base, line_id, CallbackKind::Progress, &run, future);
    let swapped = path_of(&progress).replace("/progress?", "/complete?");
    let (status, _) = app.api(Method::POST, &swapped, None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The first report must be the start; a malformed one is refused with 422.
    let (status, _) = app
        .api(
            Method::POST,
            &path_of(&progress),
            None,
            Some(json!({ "step": "user", "status": "running" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .api(
            Method::POST,
            &path_of(&progress),
            None,
            Some(json!({ "step": "rm -rf", "status": "running" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // This run claims the line; another run (another nonce) is refused afterwards.
    let (status, body) = app
        .api(Method::POST, &path_of(&progress), None, Some(started.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other = onboarding::signed_callback_url(
        &app.state.sealer,
        base,
        line_id,
        CallbackKind::Progress,
        &"cd".repeat(16),
        future,
    );
    let (status, _) = app
        .api(Method::POST, &path_of(&other), None, Some(started.clone()))
        .await;
    assert_eq!(status, StatusCode::GONE);
    // A completion whose SSH port differs from the server's is refused with the reason,
    // and the server shows that onboarding stopped there.
    let completion =
        onboarding::signed_callback_url(&app.state.sealer, base, line_id, CallbackKind::Complete, &run, future);
    let (status, body) = app
        .api(
            Method::POST,
            &path_of(&completion),
            None,
            Some(json!({
                "ssh_host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDq2vZ9nYV5R7uV9TQ0yqKX7o2r0w2m5mM2s4Yk5c6Xh"],
                "deploy_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDq2vZ9nYV5R7uV9TQ0yqKX7o2r0w2m5mM2s4Yk5c6Xh d",
                "os_release": "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm",
                "ssh_port": 2222,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("2222"), "{body}");
    let status = onboarding::status(app.db(), &principal, server.id).await.unwrap();
    assert_eq!(status.connection_status, "failed");
    assert!(status.failure.unwrap().contains("2222"));
    // A new line can be issued after a failure, and the old one stops working.
    let renewed = onboarding::regenerate_line(app.db(), &app.state.sealer, &principal, server.id, base)
        .await
        .unwrap();
    assert_ne!(renewed.url, line.url);
    let old = onboarding::script_for_token(app.db(), &app.state.sealer, &token, base)
        .await
        .unwrap();
    assert!(!old.usable);
    let status = onboarding::status(app.db(), &principal, server.id).await.unwrap();
    assert_eq!(status.connection_status, "pending");
    assert!(status.line_usable);
    // Unknown and malformed tokens get a refusal script, never an error page.
    for token in ["0".repeat(64), "not-a-token".to_owned()] {
        let (status, _, body) = app.page(Method::GET, &format!("/bootstrap/{token}"), None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("not valid") && body.contains("exit 3"), "{body}");
    }

    // Deleting: access removal needs a server BrokeForge reached; a plain delete erases
    // the sealed keys and the bootstrap lines with the records.
    let token = app.token(&owner, &["read", "write"]).await;
    let (status, body) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/servers/{}?remove_access=true", server.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/servers/{}", server.id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for role in ["root", "brokeforge"] {
        assert!(
            server_access::credential(app.db(), server.id, role)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        brokeforge_db::bootstrap_tokens::latest_for_server(app.db(), server.id)
            .await
            .unwrap()
            .is_none()
    );
    let gone = onboarding::script_for_token(
        app.db(),
        &app.state.sealer,
        renewed.url.rsplit('/').next().unwrap(),
        base,
    )
    .await
    .unwrap();
    assert!(!gone.usable);
}

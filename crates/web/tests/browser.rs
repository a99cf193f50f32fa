//! Headless Chromium walks through the real UI (playwright-core from npm, Debian's
//! `chromium`): first-run setup, sign-in, creating a server record, a job's progress
//! updating live, a failed step's details and retry, and sign-out. Screenshots of
//! each page land in `target/screenshots/`. The Node side is `tests/browser/flow.mjs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use brokeforge_db::Db;
use brokeforge_queue::{Queue, WorkerConfig, WorkerPool};
use brokeforge_web::{AppState, WebConfig};
use tokio::sync::watch;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser")
}

/// Installs playwright-core from the lockfile when it is not there yet.
fn ensure_node_modules() {
    let dir = browser_dir();
    if dir.join("node_modules/playwright-core/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("run npm (install Debian's `npm` package)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_works_in_a_real_browser() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "install Debian's `chromium` package for the browser tests"
    );
    tokio::task::spawn_blocking(ensure_node_modules).await.unwrap();

    let directory = brokeforge_testkit::temp_data_dir();
    let db = Db::connect_sqlite(directory.path()).await.unwrap();
    brokeforge_db::migrate::run(&db).await.unwrap();
    let queue = Queue::new(db.clone());
    let mut worker_config = WorkerConfig::new(2);
    worker_config.poll_interval = Duration::from_millis(50);
    let registry = brokeforge_app::jobs::registry(&brokeforge_app::jobs::JobEnvironment { db: db.clone() });
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(WorkerPool::new(queue.clone(), registry, worker_config).run(stopped));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let base = format!("http://{address}");
    let operations = brokeforge_app::operations::OperationEnvironment::new(
        db.clone(),
        queue,
        std::sync::Arc::new(brokeforge_db::Sealer::new(
            &brokeforge_db::MasterKey::generate().unwrap(),
        )),
    );
    let state = AppState::new(
        operations,
        WebConfig {
            public_url: Some(base.clone()),
            address_policy: Default::default(),
        },
    );
    let app = brokeforge_web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut http_stop = stop.subscribe();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
            .unwrap();
    });

    let token = brokeforge_app::auth::issue_setup_token(&db)
        .await
        .unwrap()
        .expect("a fresh database has no user");
    let setup_url = format!("{base}/setup/{}", token.expose());
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let output = tokio::process::Command::new("node")
        .arg("flow.mjs")
        .current_dir(browser_dir())
        .env("BASE_URL", &base)
        .env("SETUP_URL", &setup_url)
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the browser flow finishes in 3 minutes")
        .expect("run node");
    let _ = stop.send(true);
    let _ = server.await;
    let _ = workers.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser flow failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("browser flow passed"), "{stdout}");
    for name in [
        "01-setup",
        "06-server",
        "08-job-succeeded",
        "09-job-failed",
        "17-dashboard-dark",
    ] {
        assert!(screenshots.join(format!("{name}.png")).exists(), "screenshot {name}");
    }
}

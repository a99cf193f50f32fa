//! API benchmark: the release `brokeforge serve` on a fresh SQLite data directory,
//! seeded with 1,000 servers and 10,000 sites, measured from outside with `wrk`.
//!
//! The admin and the API token are made through `brokeforge admin create-user` and
//! `brokeforge admin create-token`; the browser session through the real sign-in
//! form (`POST /login` with the `bf_form` double-submit token). Servers and sites are
//! inserted with SQL through `brokeforge-db` before the server starts (sites have no
//! API yet, and 1,000 API calls would only measure seeding).
//!
//! Workloads, each with the same `wrk` settings (connections, duration, `--latency`):
//!
//! - `api-healthz`: `GET /healthz`, the framework floor every other row is compared to.
//! - `api-servers-list`: `GET /api/v1/servers` with a bearer token (its default page).
//! - `api-dashboard`: `GET /` with a signed-in session cookie.
//! - `api-servers-uncached`: `GET /api/v1/servers` with a different cursor and
//!   limit on every request (each page holds 40 to 50 servers), so that no answer
//!   comes from the page cache: the cost of reading and serializing a page.
//!
//! Then `api-sse`: many concurrent clients follow long diagnostics jobs through
//! `GET /api/v1/jobs/{id}/events` (round-robin over a smaller set of jobs), held open
//! for a while, and the serve process's resident memory (`VmRSS`) is sampled.
//! Everything listens and connects on loopback only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brokeforge_db::{Db, with_pool};
use serde_json::json;

use crate::report::{Report, Row};

#[derive(clap::Args)]
pub struct ApiOptions {
    /// Server rows to seed.
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// Site rows to seed per server.
    #[arg(long, default_value_t = 10)]
    sites_per_server: usize,
    /// wrk connections.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Seconds each wrk run lasts.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent SSE clients.
    #[arg(long, default_value_t = 500)]
    sse_clients: usize,
    /// Diagnostics jobs the SSE clients follow, round-robin.
    #[arg(long, default_value_t = 100)]
    sse_jobs: usize,
    /// Seconds the SSE clients are held open once all are connected.
    #[arg(long, default_value_t = 10)]
    sse_hold: u64,
    /// The `brokeforge` binary (default: next to this benchmark's binary).
    #[arg(long)]
    brokeforge: Option<PathBuf>,
}

/// A wrk script that asks for a (cursor, limit) pair no request asked for in the last
/// seconds: each thread starts at its own offset and walks 9,900 pairs in turn.
const UNCACHED_LIST_SCRIPT: &str = r#"
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  n = id * 2475
end
request = function()
  n = n + 1
  local cursor = n % 900 + 1
  local limit = 40 + math.floor(n / 900) % 11
  return wrk.format("GET", "/api/v1/servers?cursor=" .. cursor .. "&limit=" .. limit)
end
"#;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench-password-0123456789";

/// Latency and throughput of one wrk run.
struct WrkResult {
    p50_ms: f64,
    p99_ms: f64,
    requests_per_second: f64,
    non_2xx: u64,
    socket_errors: u64,
}

/// The running `brokeforge serve`; stopped (SIGTERM, then SIGKILL) when dropped.
struct ServeProcess {
    child: std::process::Child,
}

impl ServeProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the id of a child this process started and has not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn run(options: ApiOptions, report: &mut Report) -> anyhow::Result<()> {
    let binary = match &options.brokeforge {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("brokeforge"),
    };
    if !binary.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p brokeforge-cli` (scripts/bench does)",
            binary.display()
        );
    }
    which("wrk").context("wrk is needed (Debian package `wrk`)")?;
    let data_dir = tempfile::Builder::new().prefix("bf-bench-api-").tempdir_in("/tmp")?;

    println!("creating the admin and a token through `brokeforge admin`");
    admin_command(
        &binary,
        data_dir.path(),
        &["create-user", "--email", EMAIL, "--admin", "--password-stdin"],
        Some(PASSWORD),
    )?;
    let output = admin_command(&binary, data_dir.path(), &["create-token", "--email", EMAIL], None)?;
    let token = output
        .lines()
        .find_map(|line| line.strip_prefix("Token (shown once, store it now): "))
        .map(|token| token.trim().to_owned())
        .context("no token in the output of `brokeforge admin create-token`")?;

    let started = Instant::now();
    let server_ids = seed(data_dir.path(), options.servers, options.sites_per_server).await?;
    println!(
        "seeded {} servers and {} sites in {:.1} s",
        server_ids.len(),
        server_ids.len() * options.sites_per_server,
        started.elapsed().as_secs_f64()
    );

    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(data_dir.path().join("serve.log"))?;
    let child = std::process::Command::new(&binary)
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--log-format", "json", "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--shutdown-grace", "1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start brokeforge serve")?;
    let serve = ServeProcess { child };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    wait_ready(&client, &base).await?;
    let cookie = sign_in(&client, &base).await?;

    // Check every workload answers 200 before timing it.
    let bearer = format!("Authorization: Bearer {token}");
    let session = format!("Cookie: bf_session={cookie}");
    let listed = client
        .get(format!("{base}/api/v1/servers"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?;
    let page = listed["data"].as_array().map_or(0, Vec::len);
    let dashboard = client
        .get(format!("{base}/"))
        .header("Cookie", format!("bf_session={cookie}"))
        .send()
        .await?;
    if dashboard.status() != reqwest::StatusCode::OK {
        bail!("GET / with the session answered {}", dashboard.status());
    }
    let rss_idle = rss_kib(serve.pid())?;

    let uncached_script = data_dir.path().join("uncached-list.lua");
    std::fs::write(&uncached_script, UNCACHED_LIST_SCRIPT)?;
    let workloads: [(&str, &str, Option<&str>, Option<&Path>); 4] = [
        ("api-healthz", "/healthz", None, None),
        ("api-servers-list", "/api/v1/servers", Some(bearer.as_str()), None),
        ("api-dashboard", "/", Some(session.as_str()), None),
        (
            "api-servers-uncached",
            "",
            Some(bearer.as_str()),
            Some(uncached_script.as_path()),
        ),
    ];
    let mut floor_p99 = None;
    for (workload, path, header, script) in workloads {
        let result = wrk(&options, &format!("{base}{path}"), header, script).await?;
        let floor = *floor_p99.get_or_insert(result.p99_ms);
        let ratio = result.p99_ms / floor;
        let mut summary = format!(
            "p99 {:>7.2} ms  p50 {:>6.2} ms  {:>9.0} req/s  p99 {:>5.1}x healthz",
            result.p99_ms, result.p50_ms, result.requests_per_second, ratio
        );
        if workload == "api-servers-list" {
            summary.push_str(&format!("  ({page} servers per page)"));
        }
        if result.non_2xx > 0 || result.socket_errors > 0 {
            summary.push_str(&format!(
                "  [{} non-2xx, {} socket errors]",
                result.non_2xx, result.socket_errors
            ));
        }
        report.add(Row {
            workload: workload.into(),
            tool: "brokeforge".into(),
            fields: fields(json!({
                "p99_ms": result.p99_ms,
                "p50_ms": result.p50_ms,
                "requests_per_second": result.requests_per_second,
                "p99_ratio_to_healthz": ratio,
                "connections": options.connections,
                "duration_s": options.duration,
                "non_2xx": result.non_2xx,
                "socket_errors": result.socket_errors,
                "servers": server_ids.len(),
                "sites": server_ids.len() * options.sites_per_server,
            })),
            summary,
        });
    }

    let sse = sse(&options, &client, &base, &token, &server_ids, serve.pid()).await?;
    report.add(Row {
        workload: "api-sse".into(),
        tool: "brokeforge".into(),
        fields: fields(json!({
            "clients": options.sse_clients,
            "jobs": options.sse_jobs,
            "connected": sse.connected,
            "open_at_end": sse.open_at_end,
            "rss_mb": sse.peak_rss_kib as f64 / 1024.0,
            "rss_idle_mb": rss_idle as f64 / 1024.0,
            "hold_s": options.sse_hold,
        })),
        summary: format!(
            "RSS {:.1} MB peak with {}/{} streams open ({:.1} MB before; {} jobs)",
            sse.peak_rss_kib as f64 / 1024.0,
            sse.open_at_end,
            options.sse_clients,
            rss_idle as f64 / 1024.0,
            options.sse_jobs
        ),
    });
    drop(serve);
    Ok(())
}

fn fields(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program} is not on PATH"))
}

/// Runs `brokeforge admin …` on the data directory and returns its standard output.
fn admin_command(binary: &Path, data_dir: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run brokeforge admin {}", args[0]))?;
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        writeln!(pipe, "{text}")?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "brokeforge admin {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Inserts the servers (owned by the bench admin) and their sites; returns the server ids.
async fn seed(data_dir: &Path, servers: usize, sites_per_server: usize) -> anyhow::Result<Vec<i64>> {
    let db = Db::connect_sqlite(data_dir).await?;
    let now = brokeforge_db::clock::now();
    let ids: Result<Vec<i64>, sqlx::Error> = with_pool!(db, |pool| {
        let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(EMAIL)
            .fetch_one(pool)
            .await?;
        let mut transaction = pool.begin().await?;
        let mut ids = Vec::with_capacity(servers);
        for index in 0..servers {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO servers (user_id, name, provider, public_ip, ssh_port, connection_status, \
                 provision_status, os_name, os_version, created_at, updated_at) \
                 VALUES ($1, $2, 'custom', $3, 22, 'connected', 'provisioned', 'Debian', '13', $4, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(format!("web-{index:04}"))
            .bind(format!("203.0.{}.{}", index / 250, index % 250 + 1))
            .bind(now)
            .fetch_one(&mut *transaction)
            .await?;
            for site in 0..sites_per_server {
                sqlx::query(
                    "INSERT INTO server_sites (server_id, domain, site_type, document_root, php_version, status, \
                     is_default, created_at, updated_at) \
                     VALUES ($1, $2, 'php', $3, '8.4', 'installed', $4, $5, $5)",
                )
                .bind(id)
                .bind(format!("site{site}.web-{index:04}.example.com"))
                .bind(format!("/home/brokeforge/site{site}.web-{index:04}.example.com/public"))
                .bind(site == 0)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            }
            ids.push(id);
        }
        transaction.commit().await?;
        Ok(ids)
    });
    db.close().await;
    Ok(ids?)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("brokeforge serve did not answer /healthz within 30 s")
}

/// Signs in through the form with a double-submit token and returns the session cookie.
async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form_token: String = (0..64).map(|index| if index % 2 == 0 { 'a' } else { '7' }).collect();
    let body = format!(
        "email={}&password={PASSWORD}&next=%2F&_csrf={form_token}",
        EMAIL.replace('@', "%40")
    );
    let response = client
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", format!("bf_form={form_token}"))
        .body(body)
        .send()
        .await?;
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("bf_session="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
        .with_context(|| format!("sign-in did not set a session cookie (status {})", response.status()))
}

async fn wrk(
    options: &ApiOptions,
    url: &str,
    header: Option<&str>,
    script: Option<&Path>,
) -> anyhow::Result<WrkResult> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg("-t")
        .arg(options.threads.min(options.connections).max(1).to_string())
        .arg("-c")
        .arg(options.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", options.duration))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency");
    if let Some(header) = header {
        command.arg("-H").arg(header);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).kill_on_drop(true).output().await.context("run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&output.stderr));
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut p50 = None;
    let mut p99 = None;
    let mut rps = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("50%") {
            p50 = parse_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = parse_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    Some(WrkResult {
        p50_ms: p50?,
        p99_ms: p99?,
        requests_per_second: rps?,
        non_2xx,
        socket_errors,
    })
}

/// wrk prints durations as `512.00us`, `1.23ms`, `2.00s` or `1.00m`.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(number) = text.strip_suffix("us") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1000.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * factor)
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

struct SseResult {
    connected: usize,
    open_at_end: usize,
    peak_rss_kib: u64,
}

/// Enqueues long diagnostics jobs, opens the SSE clients round-robin over them, holds
/// them and samples the server's RSS.
async fn sse(
    options: &ApiOptions,
    client: &reqwest::Client,
    base: &str,
    token: &str,
    server_ids: &[i64],
    pid: u32,
) -> anyhow::Result<SseResult> {
    if server_ids.is_empty() || options.sse_jobs == 0 {
        bail!("the SSE workload needs at least one server and one job");
    }
    let mut job_ids = Vec::with_capacity(options.sse_jobs);
    for index in 0..options.sse_jobs {
        let server_id = server_ids[index % server_ids.len()];
        let job: serde_json::Value = client
            .post(format!("{base}/api/v1/servers/{server_id}/diagnostics"))
            .bearer_auth(token)
            .json(&json!({ "steps": 20, "step_ms": 10_000 }))
            .send()
            .await?
            .error_for_status()
            .context("enqueue a diagnostics job")?
            .json()
            .await?;
        job_ids.push(job["id"].as_i64().context("no job id in the diagnostics answer")?);
    }
    // One client per stream: reqwest opens one HTTP/1.1 connection per request in flight.
    let streams = reqwest::Client::builder().build()?;
    let connected = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..options.sse_clients {
        let url = format!("{base}/api/v1/jobs/{}/events", job_ids[index % job_ids.len()]);
        let (streams, token, connected, open) = (
            streams.clone(),
            token.to_owned(),
            Arc::clone(&connected),
            Arc::clone(&open),
        );
        tasks.spawn(async move {
            let Ok(mut response) = streams.get(url).bearer_auth(token).send().await else {
                return;
            };
            if !response.status().is_success() {
                return;
            }
            connected.fetch_add(1, Ordering::SeqCst);
            open.fetch_add(1, Ordering::SeqCst);
            while let Ok(Some(_)) = response.chunk().await {}
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while connected.load(Ordering::SeqCst) < options.sse_clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut peak = rss_kib(pid)?;
    let hold_until = Instant::now() + Duration::from_secs(options.sse_hold);
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_kib(pid)?);
    }
    let result = SseResult {
        connected: connected.load(Ordering::SeqCst),
        open_at_end: open.load(Ordering::SeqCst),
        peak_rss_kib: peak,
    };
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(result)
}

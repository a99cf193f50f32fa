//! The CLI client against a running `brokeforge serve`: login stores a private
//! token, servers are created and listed (as text and JSON), a followed job that
//! succeeds exits 0, one that fails exits non-zero with its failed step's command,
//! exit code and stderr tail, and bad input is explained field by field.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_brokeforge");
const PASSWORD: &str = "correct horse battery staple";

/// A `brokeforge serve` process, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(data_dir: &Path) -> Server {
    let port = brokeforge_testkit::free_port();
    let child = Command::new(BINARY)
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("BROKEFORGE_WORKERS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start brokeforge serve");
    // Owned by `Server` at once, so the process is killed and reaped on every path.
    let mut server = Server {
        child,
        url: String::new(),
    };
    let stdout = server.child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("serve prints its address");
        if let Some(url) = line.strip_prefix("BrokeForge is running at ") {
            server.url = url.trim().to_owned();
            return server;
        }
    }
}

/// Runs the CLI with the given config directory and standard input.
fn cli(config_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .env("BROKEFORGE_CONFIG_DIR", config_dir)
        .env_remove("BROKEFORGE_URL")
        .env_remove("BROKEFORGE_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run brokeforge");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(output: Output) -> String {
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "the command failed:\n{stdout}\n{stderr}");
    stdout
}

/// A data directory with the user ada@example.com, a running `serve` on it and a CLI
/// configuration directory; dropping it stops the server and removes both directories.
struct Setup {
    server: Server,
    config: PathBuf,
    config_home: tempfile::TempDir,
    data: tempfile::TempDir,
}

fn set_up() -> Setup {
    let data = brokeforge_testkit::temp_data_dir();
    let config_home = tempfile::tempdir().unwrap();
    let config: PathBuf = config_home.path().join("brokeforge");
    ok(cli(
        &config,
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "admin",
            "create-user",
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    let server = start_server(data.path());
    Setup {
        server,
        config,
        config_home,
        data,
    }
}

/// [`set_up`], then `brokeforge login` as ada.
fn signed_in() -> Setup {
    let setup = set_up();
    ok(cli(
        &setup.config,
        &[
            "login",
            "--url",
            &setup.server.url,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    setup
}

#[test]
fn the_cli_signs_in_manages_servers_and_follows_jobs() {
    let setup = set_up();
    let (config, server) = (setup.config.clone(), &setup.server);

    // Not signed in yet.
    let output = cli(&config, &["servers", "list"], "");
    assert!(!output.status.success());
    assert!(text(&output).1.contains("not signed in"), "{:?}", text(&output));

    // A wrong password is refused; the right one stores a private token.
    let output = cli(
        &config,
        &[
            "login",
            "--url",
            &server.url,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        "wrong password\n",
    );
    assert!(!output.status.success());
    assert!(text(&output).1.contains("not right"), "{:?}", text(&output));
    let stdout = ok(cli(
        &config,
        &[
            "login",
            "--url",
            &server.url,
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    assert!(
        stdout.contains("Signed in to") && stdout.contains("ada@example.com"),
        "{stdout}"
    );
    let credentials = config.join("credentials.json");
    assert_eq!(
        std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o700);

    // Create and list servers; bad input is explained per field and creates nothing.
    let stdout = ok(cli(
        &config,
        &[
            "servers",
            "create",
            "--name",
            "web-1",
            "--address",
            "203.0.113.20",
            "--php",
            "8.2",
            "--database",
            "postgresql",
        ],
        "",
    ));
    assert!(stdout.contains("Created server web-1"), "{stdout}");
    let output = cli(
        &config,
        &[
            "servers",
            "create",
            "--name",
            "",
            "--address",
            "10.0.0.1",
            "--php",
            "5.6",
        ],
        "",
    );
    assert!(!output.status.success());
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("public_address:") && stderr.contains("php_version:") && stderr.contains("name:"),
        "{stderr}"
    );
    let stdout = ok(cli(&config, &["servers", "list"], ""));
    assert!(
        stdout.contains("web-1") && stdout.contains("203.0.113.20:22") && stdout.contains("postgresql"),
        "{stdout}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(cli(&config, &["servers", "list", "--json"], ""))).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let server_id = listed["data"][0]["id"].as_i64().unwrap().to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&ok(cli(&config, &["servers", "show", &server_id, "--json"], ""))).unwrap();
    assert_eq!(shown["php_version"], "8.2");
    let output = cli(&config, &["servers", "show", "999"], "");
    assert!(
        !output.status.success() && text(&output).1.contains("No such server"),
        "{:?}",
        text(&output)
    );

    // A followed job that succeeds exits 0.
    let stdout = ok(cli(
        &config,
        &[
            "servers",
            "diagnostics",
            &server_id,
            "--steps",
            "3",
            "--step-ms",
            "100",
            "--follow",
        ],
        "",
    ));
    assert!(stdout.contains("succeeded"), "{stdout}");

    // A followed job that fails exits non-zero and prints the failed step.
    let output = cli(
        &config,
        &[
            "servers",
            "diagnostics",
            &server_id,
            "--steps",
            "3",
            "--step-ms",
            "50",
            "--fail-at-step",
            "2",
            "--fail-command",
            "apt-get install -y nginx",
            "--fail-exit-code",
            "100",
            "--fail-stderr",
            "Reading package lists...\nE: Unable to locate package nginx",
            "--follow",
        ],
        "",
    );
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "a failed job fails the command:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("Step 2 of 3 failed"), "{stderr}");
    assert!(stderr.contains("command:   apt-get install -y nginx"), "{stderr}");
    assert!(stderr.contains("exit code: 100"), "{stderr}");
    assert!(stderr.contains("E: Unable to locate package nginx"), "{stderr}");
    assert!(stderr.contains("failed with exit code 100"), "{stderr}");

    // Jobs are listed, shown as JSON, and a failed one can be retried and followed again.
    let stdout = ok(cli(&config, &["jobs", "list"], ""));
    assert!(stdout.contains("succeeded") && stdout.contains("failed"), "{stdout}");
    let jobs: serde_json::Value = serde_json::from_str(&ok(cli(
        &config,
        &["jobs", "list", "--json", "--server", &server_id],
        "",
    )))
    .unwrap();
    let failed_id = jobs["data"][0]["id"].as_i64().unwrap().to_string();
    let job: serde_json::Value =
        serde_json::from_str(&ok(cli(&config, &["jobs", "show", &failed_id, "--json"], ""))).unwrap();
    assert_eq!(job["state"], "failed");
    assert_eq!(job["events"].as_array().unwrap().last().unwrap()["exit_code"], 100);
    let output = cli(&config, &["jobs", "retry", &failed_id, "--follow"], "");
    assert!(
        !output.status.success() && text(&output).1.contains("exit code: 100"),
        "{:?}",
        text(&output)
    );

    // A token made on the host works through the environment; logout forgets the stored one.
    let stdout = ok(cli(
        &config,
        &[
            "--data-dir",
            setup.data.path().to_str().unwrap(),
            "admin",
            "create-token",
            "--email",
            "ada@example.com",
            "--scopes",
            "read",
        ],
        "",
    ));
    let token = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Token (shown once, store it now): "))
        .unwrap()
        .to_owned();
    let output = Command::new(BINARY)
        .args(["servers", "list", "--url", &server.url])
        .env("BROKEFORGE_CONFIG_DIR", setup.config_home.path().join("other"))
        .env("BROKEFORGE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        output.status.success() && text(&output).0.contains("web-1"),
        "{:?}",
        text(&output)
    );
    let output = Command::new(BINARY)
        .args([
            "servers",
            "create",
            "--url",
            &server.url,
            "--name",
            "x",
            "--address",
            "203.0.113.30",
        ])
        .env("BROKEFORGE_CONFIG_DIR", setup.config_home.path().join("other"))
        .env("BROKEFORGE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        !output.status.success() && text(&output).1.contains("write"),
        "a read-only token cannot create: {:?}",
        text(&output)
    );
    ok(cli(&config, &["logout"], ""));
    assert!(!credentials.exists());
}

#[test]
fn the_cli_manages_php_versions_and_firewall_rules() {
    let setup = signed_in();
    let config = setup.config.clone();
    ok(cli(
        &config,
        &[
            "servers",
            "create",
            "--name",
            "web-1",
            "--address",
            "203.0.113.21",
            "--ssh-port",
            "2222",
        ],
        "",
    ));
    let listed: serde_json::Value =
        serde_json::from_str(&ok(cli(&config, &["servers", "list", "--json"], ""))).unwrap();
    let server_id = listed["data"][0]["id"].as_i64().unwrap().to_string();
    let failure = |args: &[&str]| {
        let output = cli(&config, args, "");
        let (stdout, stderr) = text(&output);
        assert!(!output.status.success(), "{args:?} should fail:\n{stdout}\n{stderr}");
        stderr
    };

    // Nothing is installed on a server that was never provisioned.
    let stdout = ok(cli(&config, &["servers", "php", "list", &server_id], ""));
    assert!(stdout.contains("No PHP version is recorded"), "{stdout}");
    let php: serde_json::Value =
        serde_json::from_str(&ok(cli(&config, &["servers", "php", "list", &server_id, "--json"], ""))).unwrap();
    assert_eq!(php["versions"], serde_json::json!([]));
    let stdout = ok(cli(&config, &["servers", "firewall", "list", &server_id], ""));
    assert!(stdout.contains("No rules added yet"), "{stdout}");

    // Refusals are explained, field by field where a field is wrong.
    let stderr = failure(&["servers", "php", "install", &server_id, "5.6"]);
    assert!(stderr.contains("version: Unsupported PHP version"), "{stderr}");
    let stderr = failure(&["servers", "php", "remove", &server_id, "8.3"]);
    assert!(stderr.contains("PHP 8.3 is not installed on this server"), "{stderr}");
    let stderr = failure(&["servers", "php", "ext-install", &server_id, "8.3", "redis;id"]);
    assert!(stderr.contains("extension: Unknown PHP extension"), "{stderr}");
    let stderr = failure(&[
        "servers",
        "firewall",
        "add",
        &server_id,
        "--action",
        "deny",
        "--port",
        "2000:3000",
    ]);
    assert!(
        stderr.contains("port: This rule would block SSH on port 2222"),
        "{stderr}"
    );
    let stderr = failure(&["servers", "firewall", "add", &server_id, "--port", "8080"]);
    assert!(stderr.contains("firewall is not installed"), "{stderr}");

    // Installing a version starts one job; followed, it fails here because the server
    // was never bootstrapped, and the command says so.
    let job: serde_json::Value = serde_json::from_str(&ok(cli(
        &config,
        &["servers", "php", "install", &server_id, "8.4", "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(job["kind"], "package.operation");
    let job_id = job["id"].as_i64().unwrap().to_string();
    let output = cli(&config, &["jobs", "show", &job_id, "--follow"], "");
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("bootstrap"), "{stderr}");
    let stderr = failure(&["servers", "php", "install", &server_id, "8.5", "--follow"]);
    assert!(stderr.contains("failed"), "{stderr}");
}

#[test]
fn the_cli_reaches_site_environments_and_files_through_the_api() {
    let setup = signed_in();
    let config = setup.config.clone();
    // No such site: every command says so and exits non-zero.
    for (args, stdin) in [
        (&["sites", "env", "999"][..], ""),
        (&["sites", "env", "999", "--set", "-"][..], "APP_KEY=x\n"),
        (&["sites", "files", "999", "ls"][..], ""),
        (&["sites", "files", "999", "ls", "shared"][..], ""),
        (&["sites", "files", "999", "cat", "shared/.env"][..], ""),
        (&["sites", "files", "999", "put", "public/x.txt", "-"][..], "hello\n"),
        (&["sites", "files", "999", "rm", "public/x.txt", "--json"][..], ""),
        (&["sites", "default", "999"][..], ""),
        (&["sites", "default", "999", "--unset", "--follow"][..], ""),
    ] {
        let output = cli(&config, args, stdin);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            text(&output).1.contains("No such site"),
            "{args:?}: {:?}",
            text(&output)
        );
    }
}

//! The `brokeforge` binary as an operator meets it: `serve` on a fresh SQLite data
//! directory and on PostgreSQL, health and readiness, graceful shutdown, `migrate`,
//! `admin create-user`, and a one-line error (exit code ≠ 0, nothing half-written)
//! for each bad start-up input.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BROKEFORGE: &str = env!("CARGO_BIN_EXE_brokeforge");

fn brokeforge(data_dir: &Path) -> Command {
    let mut command = Command::new(BROKEFORGE);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("BROKEFORGE_DATABASE_URL")
        .env_remove("BROKEFORGE_MASTER_KEY")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

struct Server {
    child: Child,
    address: String,
    started: Instant,
}

impl Server {
    /// Starts `serve` on an ephemeral port and waits for its "running at" line.
    fn start(mut command: Command) -> Server {
        let started = Instant::now();
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start brokeforge serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("serve prints a line").expect("read stdout");
        let address = line
            .strip_prefix("BrokeForge is running at http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Server {
            child,
            address,
            started,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.address, path)
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: status code and body.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to serve");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn run(mut command: Command) -> Output {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run brokeforge")
}

/// Asserts the command failed and its last stderr line is one `brokeforge:` error
/// containing `expected`.
fn assert_fails_with(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, got success; stderr:\n{stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("brokeforge: "),
        "last stderr line is the error: {stderr}"
    );
    assert!(last.contains(expected), "error {last:?} should contain {expected:?}");
}

#[test]
fn serve_on_a_fresh_data_dir_is_healthy_ready_and_stops_gracefully() {
    let data = brokeforge_testkit::temp_data_dir();
    let data_dir = data.path().join("fresh");
    let server = Server::start(brokeforge(&data_dir));
    let (status, body) = server.get("/healthz");
    println!(
        "healthz answered {:?} after start on a fresh SQLite data dir",
        server.started.elapsed()
    );
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""database":"sqlite""#), "{body}");
    let key = data_dir.join("master.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(data_dir.join("brokeforge.sqlite3").exists());
    let status = server.terminate();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}");

    // A second start reuses the key and the database.
    let key_before = std::fs::read(&key).unwrap();
    let server = Server::start(brokeforge(&data_dir));
    assert_eq!(server.get("/readyz").0, 200);
    assert!(server.terminate().success());
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
}

#[test]
fn serve_on_postgres_is_healthy_and_ready() {
    let url = brokeforge_testkit::fresh_postgres_database();
    let data = brokeforge_testkit::temp_data_dir();
    let mut command = brokeforge(data.path());
    command.arg("--database-url").arg(&url);
    let server = Server::start(command);
    let (status, _) = server.get("/healthz");
    println!(
        "healthz answered {:?} after start on PostgreSQL",
        server.started.elapsed()
    );
    assert_eq!(status, 200);
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""database":"postgres""#), "{body}");
    assert!(server.terminate().success());
}

#[test]
fn two_serve_processes_share_one_sqlite_data_dir() {
    let data = brokeforge_testkit::temp_data_dir();
    let first = Server::start(brokeforge(data.path()));
    let second = Server::start(brokeforge(data.path()));
    assert_eq!(first.get("/readyz").0, 200);
    assert_eq!(second.get("/readyz").0, 200);
    assert!(first.terminate().success());
    assert!(second.terminate().success());
}

#[test]
fn migrate_applies_once_and_then_reports_up_to_date() {
    let data = brokeforge_testkit::temp_data_dir();
    let first = run({
        let mut command = brokeforge(data.path());
        command.arg("migrate");
        command
    });
    assert!(first.status.success());
    let applied = String::from_utf8_lossy(&first.stdout);
    assert!(
        applied.starts_with("Applied ") && applied.trim_end().ends_with(" migration(s) to the sqlite database."),
        "{applied}"
    );
    let second = run({
        let mut command = brokeforge(data.path());
        command.arg("migrate");
        command
    });
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "The sqlite database is up to date."
    );
}

#[test]
fn admin_create_user_generates_or_reads_a_password_and_refuses_duplicates() {
    let data = brokeforge_testkit::temp_data_dir();
    let output = run({
        let mut command = brokeforge(data.path());
        command.args(["admin", "create-user", "--email", "Ada@Example.com", "--admin"]);
        command
    });
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("Created administrator ada@example.com (id 1)."),
        "{stdout}"
    );
    let password = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Password (shown once, store it now): "))
        .expect("the generated password is printed");
    assert_eq!(password.len(), 24);
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(password),
        "the password is not logged"
    );

    let duplicate = run({
        let mut command = brokeforge(data.path());
        command.args(["admin", "create-user", "--email", "ada@example.com"]);
        command
    });
    assert_fails_with(&duplicate, "a user with email ada@example.com already exists");

    let mut command = brokeforge(data.path());
    command
        .args([
            "admin",
            "create-user",
            "--email",
            "grace@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough passphrase\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("Created user grace@example.com (id 2)."), "{stdout}");
    assert!(!stdout.contains("Password"), "no password is printed when it was given");

    let mut command = brokeforge(data.path());
    command
        .args([
            "admin",
            "create-user",
            "--email",
            "short@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_fails_with(&output, "password: must be at least 12 characters");

    let invalid = run({
        let mut command = brokeforge(data.path());
        command.args(["admin", "create-user", "--email", "not-an-email"]);
        command
    });
    assert_fails_with(&invalid, "email: must contain @");
}

#[test]
fn bad_database_urls_fail_in_one_line_without_creating_anything() {
    let data = brokeforge_testkit::temp_data_dir();
    let data_dir = data.path().join("never-created");
    let output = run({
        let mut command = brokeforge(&data_dir);
        command.args(["serve", "--database-url", "mysql://root:hunter2@db/brokeforge"]);
        command
    });
    assert_fails_with(&output, "invalid database URL: mysql://root:***@db/brokeforge");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("hunter2"),
        "the password is masked"
    );

    let port = brokeforge_testkit::free_port();
    let output = run({
        let mut command = brokeforge(&data_dir);
        command.args([
            "serve",
            "--database-url",
            &format!("postgres://bf:secret@127.0.0.1:{port}/bf"),
        ]);
        command
    });
    assert_fails_with(&output, &format!("cannot reach PostgreSQL at 127.0.0.1:{port}/bf"));
    assert!(
        !data_dir.join("master.key").exists(),
        "no key is written for a database that was never reached"
    );
}

#[test]
fn an_unusable_data_dir_fails_in_one_line() {
    let data = brokeforge_testkit::temp_data_dir();
    let file = data.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let output = run({
        let mut command = brokeforge(&file.join("data"));
        command.arg("serve");
        command
    });
    assert_fails_with(&output, "is not usable");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--data-dir"),
        "the fix is named"
    );
}

#[test]
fn a_corrupt_missing_or_wrong_master_key_stops_start_up() {
    let data = brokeforge_testkit::temp_data_dir();
    let corrupt_dir = data.path().join("corrupt");
    std::fs::create_dir_all(&corrupt_dir).unwrap();
    std::fs::write(corrupt_dir.join("master.key"), "brokeforge-master-key-v1:not-hex\n").unwrap();
    let output = run({
        let mut command = brokeforge(&corrupt_dir);
        command.arg("serve");
        command
    });
    assert_fails_with(&output, "master.key is corrupt");
    assert!(
        !corrupt_dir.join("brokeforge.sqlite3").exists(),
        "no database is created with a corrupt key"
    );

    // A working data directory, then its key replaced by another valid key.
    let good_dir = data.path().join("good");
    let server = Server::start(brokeforge(&good_dir));
    assert!(server.terminate().success());
    let original_key = std::fs::read(good_dir.join("master.key")).unwrap();
    std::fs::write(
        good_dir.join("master.key"),
        format!("brokeforge-master-key-v1:{}\n", "ab".repeat(32)),
    )
    .unwrap();
    let output = run({
        let mut command = brokeforge(&good_dir);
        command.arg("serve");
        command
    });
    assert_fails_with(&output, "the master key does not match this database");

    std::fs::remove_file(good_dir.join("master.key")).unwrap();
    let output = run({
        let mut command = brokeforge(&good_dir);
        command.arg("serve");
        command
    });
    assert_fails_with(&output, "is missing, but this database already holds sealed secrets");
    assert!(
        !good_dir.join("master.key").exists(),
        "a missing key is never silently replaced"
    );

    // The same key given through the environment works.
    let key_text = String::from_utf8(original_key).unwrap();
    let mut command = brokeforge(&good_dir);
    command.env("BROKEFORGE_MASTER_KEY", key_text.trim());
    let server = Server::start(command);
    assert_eq!(server.get("/readyz").0, 200);
    assert!(server.terminate().success());
}

#[test]
fn a_busy_listen_address_fails_in_one_line() {
    let data = brokeforge_testkit::temp_data_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run({
        let mut command = brokeforge(data.path());
        command.args(["serve", "--listen", &address]);
        command
    });
    assert_fails_with(&output, &format!("cannot listen on {address}"));
}

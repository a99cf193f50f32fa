//! Real OpenSSH servers for tests and benchmarks: Debian's `/usr/sbin/sshd` on a free
//! loopback port, with a temporary configuration, a generated host key and a
//! dedicated unprivileged test account whose home holds no shell start-up files.
//!
//! The server is stopped when its [`SshServer`] is dropped and, through
//! `PR_SET_PDEATHSIG`, when the test process exits. [`SshServer::kill`] ends it (and
//! every session it started) at once, to simulate a crash in the middle of a test;
//! [`SshServer::drop_connections`] cuts the connections but leaves the sessions'
//! processes running, as a network failure would; [`SshServer::restart`] starts it
//! again on the same port with the same host key.
//!
//! Starting servers needs root: the account is created with `useradd` when missing,
//! and `sshd` must run as root to switch to it. Tests that cannot get what they need
//! panic with a message that says what to install; they never skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::postgres::{die_with_parent, spawn_from_long_lived_thread};

/// The account test servers let in. It is created on first use.
pub const TEST_USER: &str = "bf-sshtest";

const SSHD: &str = "/usr/sbin/sshd";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
const MISSING_OPENSSH: &str =
    "OpenSSH is not installed: run ./scripts/test (it installs it) or `apt-get install openssh-server`";

/// How a test server is configured.
#[derive(Clone, Debug)]
pub struct SshServerOptions {
    /// OpenSSH's `MaxSessions`: concurrent channels per connection (OpenSSH's default is 10).
    pub max_sessions: u32,
}

impl Default for SshServerOptions {
    fn default() -> Self {
        SshServerOptions { max_sessions: 10 }
    }
}

/// A running `sshd` that accepts [`TEST_USER`] with the key pair it generated.
pub struct SshServer {
    port: Mutex<u16>,
    directory: tempfile::TempDir,
    account: &'static TestAccount,
    host_public_key: String,
    client_private_key: String,
    client_public_key: String,
    work_dir: PathBuf,
    child: Mutex<Option<Child>>,
}

/// The test account: its name, ids and home directory.
#[derive(Debug)]
pub struct TestAccount {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl SshServer {
    /// Starts a server with OpenSSH's defaults. Panics with a clear message when
    /// OpenSSH is missing or the process is not root.
    pub fn start() -> SshServer {
        SshServer::start_with(SshServerOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: SshServerOptions) -> SshServer {
        assert!(Path::new(SSHD).exists(), "{MISSING_OPENSSH}");
        assert!(
            unsafe { libc::geteuid() } == 0,
            "starting a test sshd needs root (it runs as root and switches to the {TEST_USER} account)"
        );
        let account = test_account();
        let directory = tempfile::Builder::new()
            .prefix("brokeforge-sshd-")
            .tempdir()
            .expect("create the sshd directory");
        // The account must be able to read authorized_keys inside this directory.
        set_mode(directory.path(), 0o755);
        let host_key = directory.path().join("ssh_host_ed25519_key");
        generate_key(&host_key, "brokeforge-test-host");
        let client_key = directory.path().join("client_ed25519_key");
        generate_key(&client_key, "brokeforge-test-client");
        let read = |path: &Path| {
            std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
        };
        let host_public_key = read(&host_key.with_extension("pub")).trim().to_owned();
        let client_private_key = read(&client_key);
        let client_public_key = read(&client_key.with_extension("pub")).trim().to_owned();
        // The client's private key lives in memory only, as the control plane's keys do.
        std::fs::remove_file(&client_key).expect("remove the client key file");
        std::fs::remove_file(client_key.with_extension("pub")).expect("remove the client key file");

        let authorized_keys = directory.path().join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{client_public_key}\n")).expect("write authorized_keys");
        set_mode(&authorized_keys, 0o644);

        let work_dir = directory.path().join("work");
        std::fs::create_dir(&work_dir).expect("create the work directory");
        std::os::unix::fs::chown(&work_dir, Some(account.uid), Some(account.gid)).expect("chown the work directory");
        set_mode(&work_dir, 0o755);

        let server = SshServer {
            port: Mutex::new(0),
            directory,
            account,
            host_public_key,
            client_private_key,
            client_public_key,
            work_dir,
            child: Mutex::new(None),
        };
        server.write_config(crate::free_port(), &options);
        server.launch_with_retries(&options);
        server
    }

    /// The host to connect to: always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        *self.port.lock().unwrap()
    }

    /// The account name to log in as.
    pub fn user(&self) -> &str {
        &self.account.name
    }

    /// The test account.
    pub fn account(&self) -> &TestAccount {
        self.account
    }

    /// The server's host public key, `ssh-ed25519 AAAA… brokeforge-test-host`.
    pub fn host_public_key(&self) -> &str {
        &self.host_public_key
    }

    /// The private key (OpenSSH PEM) the server accepts for [`SshServer::user`].
    pub fn client_private_key(&self) -> &str {
        &self.client_private_key
    }

    /// The public half of [`SshServer::client_private_key`].
    pub fn client_public_key(&self) -> &str {
        &self.client_public_key
    }

    /// Lets another public key (an `authorized_keys` line) log in.
    pub fn authorize_key(&self, public_key_line: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.directory.path().join("authorized_keys"))
            .expect("open authorized_keys");
        writeln!(file, "{}", public_key_line.trim()).expect("append to authorized_keys");
    }

    /// A directory owned by the test account, removed with the server.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The server's own directory (configuration, keys and `sshd.log`).
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// What `sshd` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process id of the listening sshd, while it runs. Every connection's
    /// processes descend from it.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// Whether the listening process is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap();
        match child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server at once with SIGKILL: the listener, every connection it
    /// serves and every process those sessions started, as a crash would.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Cuts every connection, as a network failure would: kills the server's
    /// per-connection processes and leaves the listener and the processes the
    /// sessions started running.
    pub fn drop_connections(&self) {
        let Some(listener) = self.child.lock().unwrap().as_ref().map(Child::id) else {
            return;
        };
        let mut tree = vec![listener];
        let mut index = 0;
        while index < tree.len() {
            let parent = tree[index];
            tree.extend(children_of(parent));
            index += 1;
        }
        for pid in tree.into_iter().skip(1) {
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if command.trim() == "sshd" {
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }

    /// Starts the server again on the same port, with the same host key and keys.
    pub fn restart(&self) {
        self.kill();
        self.launch(Duration::from_secs(10))
            .unwrap_or_else(|problem| panic!("restarting sshd failed: {problem}"));
    }

    fn config_path(&self) -> PathBuf {
        self.directory.path().join("sshd_config")
    }

    fn log_path(&self) -> PathBuf {
        self.directory.path().join("sshd.log")
    }

    fn write_config(&self, port: u16, options: &SshServerOptions) {
        *self.port.lock().unwrap() = port;
        let directory = self.directory.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {directory}/ssh_host_ed25519_key\n\
             PidFile {directory}/sshd.pid\n\
             AuthorizedKeysFile {directory}/authorized_keys\n\
             AllowUsers {user}\n\
             PermitRootLogin no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             StrictModes no\n\
             MaxSessions {max_sessions}\n\
             MaxStartups 100:30:200\n\
             PrintMotd no\n\
             Subsystem sftp {SFTP_SERVER}\n",
            user = self.account.name,
            max_sessions = options.max_sessions,
        );
        std::fs::write(self.config_path(), config).expect("write sshd_config");
    }

    /// Launches sshd, choosing another port when the one picked was taken meanwhile.
    fn launch_with_retries(&self, options: &SshServerOptions) {
        let mut last_problem = String::new();
        for _attempt in 0..5 {
            match self.launch(Duration::from_secs(10)) {
                Ok(()) => return,
                Err(problem) => last_problem = problem,
            }
            self.write_config(crate::free_port(), options);
        }
        panic!("sshd did not start: {last_problem}");
    }

    fn launch(&self, within: Duration) -> Result<(), String> {
        // sshd needs its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(|error| format!("create /run/sshd: {error}"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|error| format!("open the sshd log: {error}"))?;
        let mut command = Command::new(SSHD);
        command
            .args(["-D", "-e", "-f"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        die_with_parent(&mut command, libc::SIGTERM);
        let mut child = spawn_from_long_lived_thread(command).map_err(|error| format!("spawn {SSHD}: {error}"))?;
        let deadline = Instant::now() + within;
        let port = self.port();
        loop {
            if answers_ssh(port) {
                *self.child.lock().unwrap() = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "sshd exited with {status} before it was ready:\n{}",
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                kill_tree(child.id());
                let _ = child.wait();
                return Err(format!(
                    "sshd did not answer on port {port} within {within:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an SSH server answers with its version banner on `port`.
fn answers_ssh(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 8];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0-"
}

/// Generates an ed25519 key pair at `path` and `path.pub` with `ssh-keygen`.
fn generate_key(path: &Path, comment: &str) {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run ssh-keygen ({error}): {MISSING_OPENSSH}"));
    assert!(
        output.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
}

/// The test account, created once per process when missing: a home directory
/// without start-up files, bash as its shell, and `*` as its password so that key
/// logins work with `UsePAM no` (OpenSSH refuses locked `!` accounts).
pub fn test_account() -> &'static TestAccount {
    static ACCOUNT: OnceLock<TestAccount> = OnceLock::new();
    ACCOUNT.get_or_init(|| ensure_account(TEST_USER))
}

fn ensure_account(name: &str) -> TestAccount {
    // Other test processes may create the account at the same time; useradd then
    // fails to lock /etc/passwd, so retry until the account exists.
    let empty_skeleton = tempfile::tempdir().expect("create an empty skeleton directory");
    let deadline = Instant::now() + Duration::from_secs(30);
    while lookup_account(name).is_none() {
        let output = Command::new("useradd")
            .args(["--create-home", "--user-group", "--shell", "/bin/bash", "--skel"])
            .arg(empty_skeleton.path())
            .arg(name)
            .output()
            .unwrap_or_else(|error| panic!("run useradd (needs root and Debian's passwd package): {error}"));
        if output.status.success() || lookup_account(name).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("usermod")
        .args(["-p", "*", name])
        .status()
        .expect("run usermod");
    assert!(status.success(), "usermod -p '*' {name} failed");
    let account = lookup_account(name).expect("the test account exists");
    std::fs::create_dir_all(&account.home).expect("create the test account's home");
    std::os::unix::fs::chown(&account.home, Some(account.uid), Some(account.gid))
        .expect("chown the test account's home");
    account
}

fn lookup_account(name: &str) -> Option<TestAccount> {
    let c_name = std::ffi::CString::new(name).ok()?;
    // getpwnam is not thread-safe; the OnceLock in test_account serializes callers.
    let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    let entry = unsafe { &*entry };
    let home = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
    Some(TestAccount {
        name: name.to_owned(),
        uid: entry.pw_uid,
        gid: entry.pw_gid,
        home: PathBuf::from(home.to_string_lossy().into_owned()),
    })
}

/// Sends SIGKILL to `root_pid` and every process descended from it, found in /proc.
/// The whole tree is stopped first so that no process can fork away meanwhile.
fn kill_tree(root_pid: u32) {
    let mut tree = vec![root_pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(children_of(parent));
        index += 1;
    }
    for pid in &tree {
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGSTOP) };
    }
    // Children forked between the listing and the stop are collected again.
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        for child in children_of(parent) {
            if !tree.contains(&child) {
                unsafe { libc::kill(child as libc::pid_t, libc::SIGSTOP) };
                tree.push(child);
            }
        }
        index += 1;
    }
    for pid in &tree {
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// The ids of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses, so read after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

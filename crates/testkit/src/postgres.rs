//! Throwaway PostgreSQL clusters: `initdb` into a temporary directory, `postgres` on
//! a free loopback port, stopped when the process that started it exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable naming an existing PostgreSQL to use in tests.
pub const TEST_DATABASE_URL_ENV: &str = "BROKEFORGE_TEST_DATABASE_URL";

/// How a cluster is configured.
#[derive(Debug, Clone, Copy)]
pub struct PostgresOptions {
    /// Keep PostgreSQL's durability settings (fsync, synchronous commit). Tests turn
    /// them off for speed; benchmarks keep them on to measure honestly.
    pub durable: bool,
}

/// A running throwaway cluster.
pub struct PostgresCluster {
    port: u16,
    directory: PathBuf,
    child: Mutex<Option<Child>>,
}

impl PostgresCluster {
    /// Starts a cluster. Panics with a clear message when PostgreSQL is not installed.
    pub fn start(options: PostgresOptions) -> PostgresCluster {
        let bin = postgres_bin_dir();
        let directory = std::env::temp_dir().join(format!(
            "brokeforge-testkit-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("create the cluster directory");
        let account = service_account();
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(&directory, Some(uid), Some(gid)).expect("chown the cluster directory");
        }
        let data = directory.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        run_as(&mut initdb, account);
        let output = initdb.output().expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = crate::free_port();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&directory)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=400"])
            .args(["-c", "shared_buffers=128MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(directory.join("postgres.log")).expect("create the log file"),
            ));
        if !options.durable {
            postgres.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        run_as(&mut postgres, account);
        die_with_parent(&mut postgres, libc::SIGINT);
        let child = spawn_from_long_lived_thread(postgres).expect("spawn postgres");
        let cluster = PostgresCluster {
            port,
            directory,
            child: Mutex::new(Some(child)),
        };
        cluster.wait_until_ready();
        cluster
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the `postgres` maintenance database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The cluster's directory (data, socket and `postgres.log`).
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self) -> String {
        create_database_at(&self.admin_url())
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(psql())
                .arg(self.admin_url())
                .args(["-qAt", "-c", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|status| status.success())
                .unwrap_or(false);
            if ready {
                return;
            }
            if let Some(child) = self.child.lock().unwrap().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.directory.join("postgres.log")).unwrap_or_default();
                panic!("postgres exited with {status} before it was ready:\n{log}");
            }
            assert!(Instant::now() < deadline, "postgres was not ready within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // SIGINT is PostgreSQL's fast shutdown: it disconnects clients and exits.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SHARED_CLUSTER: OnceLock<PostgresCluster> = OnceLock::new();

/// Returns the URL of a new, empty PostgreSQL database for one test: on the server
/// named by `BROKEFORGE_TEST_DATABASE_URL` when set, otherwise on a cluster this
/// process starts once and shares between its tests.
pub fn fresh_postgres_database() -> String {
    match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => create_database_at(url.trim()),
        _ => SHARED_CLUSTER
            .get_or_init(|| PostgresCluster::start(PostgresOptions { durable: false }))
            .create_database(),
    }
}

fn create_database_at(admin_url: &str) -> String {
    let name = format!(
        "bf_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0)
    );
    let output = Command::new(psql())
        .arg(admin_url)
        .args(["-qAt", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "CREATE DATABASE failed on {admin_url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    replace_database(admin_url, &name)
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|index| index + 3).unwrap_or(0);
    let path_start = base[authority_start..]
        .find('/')
        .map(|index| authority_start + index)
        .unwrap_or(base.len());
    let mut result = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

fn psql() -> PathBuf {
    let candidate = postgres_bin_dir().join("psql");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("psql")
    }
}

/// Finds the newest `/usr/lib/postgresql/<version>/bin`, or falls back to `PATH`.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => {
            let found = Command::new("sh")
                .args(["-c", "command -v postgres"])
                .output()
                .ok()
                .filter(|output| output.status.success())
                .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
            match found {
                Some(path) => Path::new(&path).parent().unwrap().to_owned(),
                None => panic!(
                    "PostgreSQL is not installed: run ./scripts/test (it installs it) or `apt-get install postgresql`"
                ),
            }
        }
    }
}

/// PostgreSQL refuses to run as root, so under root the cluster runs as the
/// `postgres` account that Debian's package creates.
fn service_account() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root but there is no `postgres` account: install Debian's postgresql package"
    );
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

fn run_as(command: &mut Command, account: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = account {
        command.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

/// Asks the kernel to send `signal` to the child when the thread that spawned it ends.
pub(crate) fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The parent-death signal fires when the spawning *thread* exits, so children are
/// spawned from one thread that lives as long as the process.
pub(crate) fn spawn_from_long_lived_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
                // Keep the thread alive so that children are not signalled early.
                loop {
                    std::thread::park();
                }
            })
            .expect("start the spawner thread");
        Mutex::new(sender)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, reply))
        .expect("spawner thread is alive");
    answer.recv().expect("spawner replies")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path_of_a_url() {
        assert_eq!(
            replace_database("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}

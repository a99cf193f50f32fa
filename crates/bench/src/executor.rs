//! Executor benchmark: the same plans of `true` steps against the same real local
//! OpenSSH servers (one `sshd` per host, a dedicated account with a clean home), run
//! by BrokeForge's executor and by the baselines it replaces or competes with:
//!
//! - `brokeforge`: a fresh pool (connection and authentication included), with a
//!   progress event row written to SQLite (`server_package_events`, through
//!   `brokeforge-db`) after every step. `brokeforge-warm` reuses a pooled connection.
//! - `ssh-per-command`: one `ssh … 'bash -se'` process per step, the old PHP way.
//! - `ssh-controlmaster`: the same through an OpenSSH ControlMaster per host.
//! - `pyinfra` and `ansible-core` (pipelining, forks 20), installed from PyPI into a
//!   venv the benchmark creates.
//!
//! Workloads: `1x50` (one host, 50 steps) and `20x20` (20 hosts, 20 steps each, all
//! hosts at once). Each row prints wall time and its ratio to BrokeForge's; the
//! BrokeForge rows also print control-plane CPU time per step (getrusage of this
//! process, which holds the SSH client, the executor and SQLite).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brokeforge_core::{Cmd, Plan, Record, RemoteUser};
use brokeforge_db::{Db, with_pool};
use brokeforge_ssh::{
    ClientKey, HostKey, MilestoneReached, ObserverError, PlanObserver, SshPool, StepReport, Target, generate_keypair,
};
use brokeforge_testkit::SshServer;
use serde_json::json;

use crate::report::{Report, Row};

#[derive(clap::Args)]
pub struct ExecutorOptions {
    /// Runs of each BrokeForge workload; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Runs of pyinfra and the ControlMaster baseline, taking turns with BrokeForge's
    /// (the two slowest baselines run once).
    #[arg(long, default_value_t = 3)]
    baseline_rounds: usize,
    /// Skip pyinfra and ansible-core (no Python venv is made).
    #[arg(long)]
    skip_python: bool,
    /// Skip the one-ssh-process-per-command baseline (the slowest).
    #[arg(long)]
    skip_ssh: bool,
    /// Where to create (or reuse) the venv holding pyinfra and ansible-core.
    #[arg(long)]
    venv: Option<PathBuf>,
}

/// A number of hosts each running a number of steps.
struct Workload {
    name: &'static str,
    hosts: usize,
    steps: usize,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "1x50",
        hosts: 1,
        steps: 50,
    },
    Workload {
        name: "20x20",
        hosts: 20,
        steps: 20,
    },
];

/// The servers and the files the command-line tools need (they cannot take keys
/// from memory).
struct Fixture {
    servers: Vec<SshServer>,
    targets: Vec<Target>,
    server_ids: Vec<i64>,
    user: String,
    directory: tempfile::TempDir,
    key_file: PathBuf,
    known_hosts: PathBuf,
}

pub async fn run(options: ExecutorOptions, report: &mut Report) -> anyhow::Result<()> {
    println!(
        "Executor benchmark: plans of `true` steps against local sshd targets (machine: {} cores, load {})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        load_average()
    );
    let venv = if options.skip_python {
        None
    } else {
        Some(prepare_venv(options.venv.clone()).await?)
    };
    let data_dir = brokeforge_testkit::temp_data_dir();
    let db = Db::connect_sqlite(data_dir.path()).await?;
    brokeforge_db::migrate::run(&db).await?;
    let fixture = prepare_fixture(&db, 20).await?;
    let events = EventLog::start(db.clone());
    for workload in &WORKLOADS {
        measure_workload(&options, &fixture, &events, venv.as_deref(), workload, report).await?;
    }
    db.close().await;
    println!("Load average at the end: {}", load_average());
    Ok(())
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn measure_workload(
    options: &ExecutorOptions,
    fixture: &Fixture,
    events: &EventLog,
    venv: Option<&Path>,
    workload: &Workload,
    report: &mut Report,
) -> anyhow::Result<()> {
    let total_steps = (workload.hosts * workload.steps) as f64;
    let rounds = options.rounds.max(1);
    let baseline_rounds = options.baseline_rounds.clamp(1, rounds);
    let warm_pool = SshPool::default();
    run_brokeforge(&warm_pool, fixture, events, workload).await?;

    // BrokeForge and the quicker baselines take turns, so that a burst of load on the
    // machine weighs on all of them alike.
    let mut cold = Vec::new();
    let mut cpu = Vec::new();
    let mut server_cpu = Vec::new();
    let mut warm = Vec::new();
    let mut warm_server_cpu = Vec::new();
    let mut control_master = Vec::new();
    let mut pyinfra = Vec::new();
    for round in 0..rounds {
        let pool = SshPool::default();
        let cpu_before = cpu_time();
        let server_cpu_before = server_cpu_time(fixture);
        cold.push(run_brokeforge(&pool, fixture, events, workload).await?);
        cpu.push(cpu_time() - cpu_before);
        // The connections close, so that their processes' CPU is counted.
        drop(pool);
        tokio::time::sleep(Duration::from_millis(200)).await;
        server_cpu.push(server_cpu_time(fixture) - server_cpu_before);
        let server_cpu_before = server_cpu_time(fixture);
        warm.push(run_brokeforge(&warm_pool, fixture, events, workload).await?);
        warm_server_cpu.push(server_cpu_time(fixture) - server_cpu_before);
        if round < baseline_rounds {
            let control_dir = tempfile::Builder::new().prefix("bf-cm-").tempdir_in("/tmp")?;
            control_master.push(run_ssh(fixture, workload, Some(control_dir.path())).await);
            stop_control_masters(fixture, workload, control_dir.path()).await;
            if let Some(venv) = venv {
                pyinfra.push(run_pyinfra(fixture, venv, workload).await);
            }
        }
    }
    let brokeforge = median(&cold);
    let cpu_per_step = median(&cpu).as_secs_f64() / total_steps;
    let server_seconds = median(&server_cpu).as_secs_f64();
    report.add(Row {
        workload: workload.name.into(),
        tool: "brokeforge".into(),
        fields: fields(json!({
            "seconds": round(brokeforge.as_secs_f64()),
            "cpu_ms_per_step": round(cpu_per_step * 1000.0),
            "server_cpu_seconds": round(server_seconds),
            "rounds": cold.len(),
            "events_persisted_per_step": 1,
        })),
        summary: format!(
            "{:>8.3} s  (median of {}, connect included; {:.2} ms control-plane CPU per step; \
             one event row per step; sshd and the runners used {:.3} s of CPU)",
            brokeforge.as_secs_f64(),
            cold.len(),
            cpu_per_step * 1000.0,
            server_seconds
        ),
    });
    let warm_seconds = median(&warm).as_secs_f64();
    let warm_server_seconds = median(&warm_server_cpu).as_secs_f64();
    report.add(Row {
        workload: workload.name.into(),
        tool: "brokeforge-warm".into(),
        fields: fields(json!({
            "seconds": round(warm_seconds),
            "server_cpu_seconds": round(warm_server_seconds),
            "rounds": warm.len(),
        })),
        summary: format!(
            "{warm_seconds:>8.3} s  (median of {}, pooled connection; sshd and the runners used {:.3} s of CPU)",
            warm.len(),
            warm_server_seconds
        ),
    });

    let mut baselines: Vec<(&str, Vec<anyhow::Result<Duration>>, &str)> = Vec::new();
    if !options.skip_ssh {
        baselines.push((
            "ssh-per-command",
            vec![run_ssh(fixture, workload, None).await],
            "one `ssh … 'bash -se'` process per step",
        ));
    }
    baselines.push((
        "ssh-controlmaster",
        control_master,
        "ControlMaster per host, master setup included",
    ));
    if let Some(venv) = venv {
        baselines.push(("pyinfra", pyinfra, "pyinfra, --parallel 20"));
        baselines.push((
            "ansible-core",
            vec![run_ansible(fixture, venv, workload).await],
            "ansible-playbook, command module, pipelining, forks 20",
        ));
    }
    for (tool, results, description) in baselines {
        let mut samples = Vec::new();
        for result in results {
            match result {
                Ok(elapsed) => samples.push(elapsed),
                Err(error) => println!("{:<22} {tool:<26} failed: {error:#}", workload.name),
            }
        }
        if samples.is_empty() {
            continue;
        }
        let seconds = median(&samples).as_secs_f64();
        let ratio = seconds / brokeforge.as_secs_f64();
        let runs = if samples.len() == 1 {
            "1 run".to_owned()
        } else {
            format!("median of {}", samples.len())
        };
        report.add(Row {
            workload: workload.name.into(),
            tool: tool.into(),
            fields: fields(json!({
                "seconds": round(seconds),
                "ratio_to_brokeforge": round(ratio),
                "rounds": samples.len(),
            })),
            summary: format!("{seconds:>8.3} s  ({ratio:.1}x BrokeForge; {runs}; {description})"),
        });
    }
    Ok(())
}

/// Runs the workload's plans on the first `hosts` targets at once and returns the
/// wall time.
async fn run_brokeforge(
    pool: &SshPool,
    fixture: &Fixture,
    events: &EventLog,
    workload: &Workload,
) -> anyhow::Result<Duration> {
    let mut plan = Plan::builder(RemoteUser::Root);
    for _ in 0..workload.steps {
        plan.run(Cmd::new("true"));
    }
    let plan = Arc::new(plan.build());
    let started = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for host in 0..workload.hosts {
        let pool = pool.clone();
        let target = fixture.targets[host].clone();
        let plan = Arc::clone(&plan);
        let observer = EventWriter {
            events: events.clone(),
            server_id: fixture.server_ids[host],
            total_steps: workload.steps as i64,
        };
        runs.spawn(async move { pool.run_plan(&target, &plan, &observer).await });
    }
    while let Some(run) = runs.join_next().await {
        run??;
    }
    Ok(started.elapsed())
}

/// Records one `server_package_events` row per finished step, as the application
/// layer does for milestones, and returns only once the row is committed.
struct EventWriter {
    events: EventLog,
    server_id: i64,
    total_steps: i64,
}

impl PlanObserver for EventWriter {
    async fn on_milestone(&self, _step_index: usize, _milestone: MilestoneReached) -> Result<(), ObserverError> {
        Ok(())
    }

    async fn on_step_finished(&self, report: &StepReport) -> Result<(), ObserverError> {
        let row = EventRow {
            server_id: self.server_id,
            step_index: report.step_index,
            total_steps: self.total_steps,
            exit_code: report.exit_code,
            duration_ms: report.duration.as_millis() as u64,
        };
        self.events.write(row).await.map_err(ObserverError)
    }

    async fn on_persist(&self, _step_index: usize, _record: &Record) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// One progress event.
struct EventRow {
    server_id: i64,
    step_index: usize,
    total_steps: i64,
    exit_code: i32,
    duration_ms: u64,
}

type EventRequest = (EventRow, tokio::sync::oneshot::Sender<Result<(), String>>);

/// SQLite has one writer at a time, so event rows go through one task that commits
/// the rows waiting at that moment in one transaction (group commit) and then
/// answers each writer. No row is acknowledged before its commit.
#[derive(Clone)]
struct EventLog {
    sender: tokio::sync::mpsc::Sender<EventRequest>,
}

impl EventLog {
    fn start(db: Db) -> EventLog {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<EventRequest>(1024);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = receiver.recv().await {
                batch.push(first);
                while batch.len() < 256 {
                    match receiver.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let result = insert_events(&db, batch.iter().map(|(row, _)| row))
                    .await
                    .map_err(|error| error.to_string());
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(result.clone());
                }
            }
        });
        EventLog { sender }
    }

    async fn write(&self, row: EventRow) -> Result<(), String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send((row, reply))
            .await
            .map_err(|_| "the event writer stopped".to_owned())?;
        answer.await.map_err(|_| "the event writer stopped".to_owned())?
    }
}

async fn insert_events(db: &Db, rows: impl Iterator<Item = &EventRow>) -> Result<(), sqlx::Error> {
    let now = brokeforge_db::clock::now();
    let rows: Vec<&EventRow> = rows.collect();
    // The same statement for either backend's query type.
    macro_rules! insert {
        ($row:expr) => {{
            let row: &EventRow = $row;
            sqlx::query(
                "INSERT INTO server_package_events \
                 (server_id, service_type, provision_type, milestone, current_step, total_steps, details, status, created_at) \
                 VALUES ($1, 'bench', 'install', $2, $3, $4, $5, $6, $7)",
            )
            .bind(row.server_id)
            .bind(format!("step_{}", row.step_index))
            .bind(row.step_index as i64 + 1)
            .bind(row.total_steps)
            .bind(json!({ "exit_code": row.exit_code, "duration_ms": row.duration_ms }).to_string())
            .bind(if row.exit_code == 0 { "success" } else { "failed" })
            .bind(now)
        }};
    }
    with_pool!(db, |pool| {
        if let [row] = rows.as_slice() {
            insert!(row).execute(pool).await.map(|_| ())
        } else {
            let mut transaction = pool.begin().await?;
            for row in &rows {
                insert!(row).execute(&mut *transaction).await?;
            }
            transaction.commit().await
        }
    })
}

/// Starts the servers, authorizes one shared key on all of them, writes the files the
/// command-line tools need and inserts the server rows events point to.
async fn prepare_fixture(db: &Db, hosts: usize) -> anyhow::Result<Fixture> {
    let servers: Vec<SshServer> = tokio::task::spawn_blocking(move || (0..hosts).map(|_| SshServer::start()).collect())
        .await
        .context("start sshd targets")?;
    let keypair = generate_keypair("brokeforge-bench");
    let client_key = ClientKey::from_keypair(&keypair)?;
    let directory = tempfile::Builder::new().prefix("bf-bench-").tempdir_in("/tmp")?;
    // The command-line baselines can only read keys from files.
    let key_file = directory.path().join("id_ed25519");
    std::fs::write(&key_file, keypair.private_openssh.expose())?;
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let known_hosts = directory.path().join("known_hosts");
    let mut known_hosts_text = String::new();
    let mut targets = Vec::new();
    for server in &servers {
        server.authorize_key(&keypair.public_openssh);
        known_hosts_text.push_str(&format!("[127.0.0.1]:{} {}\n", server.port(), server.host_public_key()));
        targets.push(Target::new(
            server.host(),
            server.port(),
            server.user(),
            client_key.clone(),
            vec![HostKey::parse(server.host_public_key())?],
        ));
    }
    std::fs::write(&known_hosts, known_hosts_text)?;

    let now = brokeforge_db::clock::now();
    let mut server_ids = Vec::new();
    with_pool!(db, |pool| {
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('bench@example.com', 'x', $1, $1) RETURNING id",
        )
        .bind(now)
        .fetch_one(pool)
        .await?;
        for server in &servers {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO servers (user_id, name, public_ip, ssh_port, created_at, updated_at) \
                 VALUES ($1, $2, '127.0.0.1', $3, $4, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(format!("bench-{}", server.port()))
            .bind(i64::from(server.port()))
            .bind(now)
            .fetch_one(pool)
            .await?;
            server_ids.push(id);
        }
    });
    let user = servers[0].user().to_owned();
    Ok(Fixture {
        servers,
        targets,
        server_ids,
        user,
        directory,
        key_file,
        known_hosts,
    })
}

/// Options every `ssh` invocation shares: no user configuration, the bench key, and
/// strict checking against the generated known_hosts file.
fn ssh_options(fixture: &Fixture) -> Vec<String> {
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-i".into(),
        fixture.key_file.display().to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", fixture.known_hosts.display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
    ]
}

/// One `ssh` process per step, hosts in parallel, steps of a host one after the
/// other; through a ControlMaster per host when `control_dir` is given.
async fn run_ssh(fixture: &Fixture, workload: &Workload, control_dir: Option<&Path>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut hosts = tokio::task::JoinSet::new();
    for host in 0..workload.hosts {
        let mut arguments = ssh_options(fixture);
        if let Some(control_dir) = control_dir {
            arguments.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}/%p", control_dir.display()),
                "-o".into(),
                "ControlPersist=60".into(),
            ]);
        }
        arguments.extend([
            "-p".into(),
            fixture.servers[host].port().to_string(),
            format!("{}@127.0.0.1", fixture.user),
            "bash -se".into(),
        ]);
        let steps = workload.steps;
        hosts.spawn(async move {
            for _ in 0..steps {
                let mut child = tokio::process::Command::new("ssh")
                    .args(&arguments)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("run ssh")?;
                let mut stdin = child.stdin.take().expect("piped stdin");
                tokio::io::AsyncWriteExt::write_all(&mut stdin, b"true\n").await?;
                drop(stdin);
                let output = child.wait_with_output().await?;
                if !output.status.success() {
                    bail!("ssh failed: {}", String::from_utf8_lossy(&output.stderr));
                }
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(host) = hosts.join_next().await {
        host??;
    }
    Ok(started.elapsed())
}

async fn stop_control_masters(fixture: &Fixture, workload: &Workload, control_dir: &Path) {
    for server in fixture.servers.iter().take(workload.hosts) {
        let _ = tokio::process::Command::new("ssh")
            .args(ssh_options(fixture))
            .args(["-o", &format!("ControlPath={}/%p", control_dir.display())])
            .args(["-O", "exit", "-p", &server.port().to_string()])
            .arg(format!("{}@127.0.0.1", fixture.user))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// Creates the venv with pyinfra and ansible-core unless it already has them.
async fn prepare_venv(requested: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let venv = requested.unwrap_or_else(|| std::env::temp_dir().join("brokeforge-bench-venv"));
    if venv.join("bin/pyinfra").exists() && venv.join("bin/ansible-playbook").exists() {
        return Ok(venv);
    }
    println!(
        "Installing pyinfra and ansible-core from PyPI into {} …",
        venv.display()
    );
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    run_checked(tokio::process::Command::new(python).args(["-m", "venv"]).arg(&venv))
        .await
        .context("python3 -m venv (install Debian's python3-venv)")?;
    run_checked(tokio::process::Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "pyinfra",
        "ansible-core",
    ]))
    .await
    .context("pip install pyinfra ansible-core")?;
    Ok(venv)
}

async fn run_checked(command: &mut tokio::process::Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output().await?;
    if !output.status.success() {
        bail!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

async fn run_pyinfra(fixture: &Fixture, venv: &Path, workload: &Workload) -> anyhow::Result<Duration> {
    let directory = fixture.directory.path().join(format!("pyinfra-{}", workload.name));
    std::fs::create_dir_all(&directory)?;
    let mut inventory = String::from("hosts = [\n");
    for (host, server) in fixture.servers.iter().take(workload.hosts).enumerate() {
        inventory.push_str(&format!(
            "    ('host{host}', {{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, 'ssh_user': '{user}', \
             'ssh_key': '{key}', 'ssh_known_hosts_file': '{known_hosts}', \
             'ssh_strict_host_key_checking': 'yes'}}),\n",
            port = server.port(),
            user = fixture.user,
            key = fixture.key_file.display(),
            known_hosts = fixture.known_hosts.display(),
        ));
    }
    inventory.push_str("]\n");
    std::fs::write(directory.join("inventory.py"), inventory)?;
    let mut deploy = String::from("from pyinfra.operations import server\n\n");
    for step in 0..workload.steps {
        deploy.push_str(&format!("server.shell(name='step {step}', commands=['true'])\n"));
    }
    std::fs::write(directory.join("deploy.py"), deploy)?;
    let started = Instant::now();
    run_checked(
        tokio::process::Command::new(venv.join("bin/pyinfra"))
            .current_dir(&directory)
            .args(["-y", "--parallel", "20", "inventory.py", "deploy.py"]),
    )
    .await
    .context("pyinfra")?;
    Ok(started.elapsed())
}

async fn run_ansible(fixture: &Fixture, venv: &Path, workload: &Workload) -> anyhow::Result<Duration> {
    let directory = fixture.directory.path().join(format!("ansible-{}", workload.name));
    std::fs::create_dir_all(directory.join("home"))?;
    let mut inventory = String::from("[targets]\n");
    for (host, server) in fixture.servers.iter().take(workload.hosts).enumerate() {
        inventory.push_str(&format!(
            "host{host} ansible_host=127.0.0.1 ansible_port={}\n",
            server.port()
        ));
    }
    inventory.push_str(&format!(
        "\n[targets:vars]\nansible_user={}\nansible_ssh_private_key_file={}\nansible_python_interpreter=/usr/bin/python3\n",
        fixture.user,
        fixture.key_file.display()
    ));
    std::fs::write(directory.join("inventory.ini"), inventory)?;
    std::fs::write(
        directory.join("ansible.cfg"),
        format!(
            "[defaults]\ninventory = inventory.ini\nforks = 20\nhost_key_checking = True\ngathering = explicit\n\
             [ssh_connection]\npipelining = True\n\
             ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={}\n\
             control_path_dir = {}/cp\n",
            fixture.known_hosts.display(),
            directory.display()
        ),
    )?;
    let mut playbook = String::from("- hosts: targets\n  gather_facts: false\n  tasks:\n");
    for step in 0..workload.steps {
        playbook.push_str(&format!(
            "    - name: step {step}\n      ansible.builtin.command: \"true\"\n"
        ));
    }
    std::fs::write(directory.join("playbook.yml"), playbook)?;
    let started = Instant::now();
    run_checked(
        tokio::process::Command::new(venv.join("bin/ansible-playbook"))
            .current_dir(&directory)
            .env("ANSIBLE_CONFIG", directory.join("ansible.cfg"))
            .env("ANSIBLE_HOME", directory.join("home"))
            .env("LC_ALL", "C.UTF-8")
            .arg("playbook.yml"),
    )
    .await
    .context("ansible-playbook")?;
    Ok(started.elapsed())
}

/// User plus system CPU time of this process so far.
/// CPU time used by the sshd targets: each listener and every process descended from
/// it (connections, sessions, the runners and their steps), counting the children they
/// already reaped. The sum over a process tree only grows, so the difference between
/// two readings is the CPU the servers used in between.
fn server_cpu_time(fixture: &Fixture) -> Duration {
    let roots: Vec<u32> = fixture.servers.iter().filter_map(SshServer::pid).collect();
    let mut processes: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The fields after the command name, which is in parentheses and may hold spaces.
            let Some((_, after_name)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            // state ppid ... utime(12) stime(13) cutime(14) cstime(15), counted from state as 0.
            let number = |index: usize| {
                fields
                    .get(index)
                    .and_then(|field| field.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let ticks = number(11) + number(12) + number(13) + number(14);
            processes.push((pid, number(1) as u32, ticks));
        }
    }
    let mut in_tree: std::collections::HashSet<u32> = roots.into_iter().collect();
    loop {
        let before = in_tree.len();
        for (pid, parent, _) in &processes {
            if in_tree.contains(parent) {
                in_tree.insert(*pid);
            }
        }
        if in_tree.len() == before {
            break;
        }
    }
    let ticks: u64 = processes
        .iter()
        .filter(|(pid, _, _)| in_tree.contains(pid))
        .map(|(_, _, ticks)| ticks)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / ticks_per_second)
}

fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |value: libc::timeval| Duration::new(value.tv_sec as u64, value.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn fields(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

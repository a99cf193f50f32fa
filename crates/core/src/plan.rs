//! Plans: what a package operation will do to a server, as plain data.
//!
//! A package's `plan()` is a pure function that returns a [`Plan`], an ordered list of
//! [`Step`]s: milestones for progress, commands to run, files to upload and records to
//! persist. The executor carries the steps out; tests compare the plan's text (its
//! `Display`, the dry-run view) with snapshots. Secrets print as `***` in that text,
//! and [`Plan::secrets`] lists their values so captured output can be scrubbed.

use std::fmt;
use std::time::Duration;

use crate::cmd::{Cmd, quoted};
use crate::secret::Secret;
use crate::values::{RemotePath, UnixUserName};

/// How long a command may run when its step does not say otherwise.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The account on the managed server that carries out a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemoteUser {
    /// `root`, for server-scoped packages.
    Root,
    /// `brokeforge`, the unprivileged account that owns sites.
    BrokeForge,
}

impl RemoteUser {
    /// The account name on the server.
    pub const fn as_str(self) -> &'static str {
        match self {
            RemoteUser::Root => "root",
            RemoteUser::BrokeForge => "brokeforge",
        }
    }
}

impl fmt::Display for RemoteUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The progress points of one package operation, usually an enum with one variant per
/// milestone. The plan numbers a milestone by its position in [`Milestone::ALL`].
pub trait Milestone: Copy + PartialEq + 'static {
    /// Every milestone of the operation, in the order the operation reaches them.
    const ALL: &'static [Self];

    /// A stable identifier stored with progress events, such as `prepare_system`.
    fn key(self) -> &'static str;

    /// The text users see, such as `Preparing system`.
    fn label(self) -> &'static str;
}

/// The contents of an uploaded file. They travel as bytes, never inside a shell command.
#[derive(Clone)]
pub enum FileContents {
    /// Contents that may be shown, such as a rendered nginx configuration.
    Public(Vec<u8>),
    /// Contents that must not be shown, such as a site's `.env` file.
    Secret(Secret<Vec<u8>>),
}

impl FileContents {
    /// The contents, for the executor to upload.
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            FileContents::Public(bytes) => bytes,
            FileContents::Secret(secret) => secret.expose(),
        }
    }
}

impl From<Vec<u8>> for FileContents {
    fn from(bytes: Vec<u8>) -> Self {
        FileContents::Public(bytes)
    }
}

impl From<String> for FileContents {
    fn from(text: String) -> Self {
        FileContents::Public(text.into_bytes())
    }
}

impl From<Secret<Vec<u8>>> for FileContents {
    fn from(secret: Secret<Vec<u8>>) -> Self {
        FileContents::Secret(secret)
    }
}

/// Debug shows the size of public contents and nothing of secret ones.
impl fmt::Debug for FileContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileContents::Public(bytes) => write!(f, "Public({} bytes)", bytes.len()),
            FileContents::Secret(secret) => write!(f, "Secret({secret:?})"),
        }
    }
}

/// What is installed on a server, upserted into `server_packages` (server scope) or
/// `server_site_packages` (site scope) when the plan reaches this step.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The package type, such as `web-server`.
    pub package_type: &'static str,
    /// The package name, such as `nginx`.
    pub package_name: &'static str,
    /// The installed version, such as `1.24` or `8.3`.
    pub version: String,
    /// Further facts about the installation. It must not hold secrets.
    pub configuration: serde_json::Value,
}

impl Record {
    /// A record without configuration.
    pub fn new(package_type: &'static str, package_name: &'static str, version: impl Into<String>) -> Self {
        Record {
            package_type,
            package_name,
            version: version.into(),
            configuration: serde_json::Value::Null,
        }
    }

    /// Sets the configuration stored with the record.
    pub fn with_configuration(mut self, configuration: serde_json::Value) -> Self {
        self.configuration = configuration;
        self
    }
}

/// One step of a plan.
#[derive(Clone, Debug)]
pub enum Step {
    /// Progress: the operation reached milestone `index` of `total` (counted from 1).
    Milestone {
        key: &'static str,
        label: &'static str,
        index: u32,
        total: u32,
    },
    /// Runs a shell command as `as_user`, killing it after `timeout`.
    Run {
        cmd: Cmd,
        timeout: Duration,
        as_user: RemoteUser,
    },
    /// Writes `contents` to `path` as `as_user`, then sets its mode and owner.
    Upload {
        path: RemotePath,
        contents: FileContents,
        mode: u32,
        owner: Option<UnixUserName>,
        as_user: RemoteUser,
    },
    /// Upserts a record of what is installed.
    Persist(Record),
}

impl Step {
    /// The step that marks `milestone` as reached.
    ///
    /// # Panics
    ///
    /// Panics if `milestone` is missing from `M::ALL`, which is a programming error.
    pub fn milestone<M: Milestone>(milestone: M) -> Step {
        let position = M::ALL
            .iter()
            .position(|listed| *listed == milestone)
            .expect("Milestone::ALL lists every milestone");
        Step::Milestone {
            key: milestone.key(),
            label: milestone.label(),
            index: count(position + 1),
            total: count(M::ALL.len()),
        }
    }
}

fn count(number: usize) -> u32 {
    u32::try_from(number).expect("an operation has fewer than 4 billion milestones")
}

/// One line of the dry-run view, secrets masked.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Milestone {
                label, index, total, ..
            } => write!(f, "[{index}/{total}] {label}"),
            Step::Run { cmd, timeout, as_user } => {
                write!(f, "{as_user}$ {cmd}")?;
                if *timeout != DEFAULT_RUN_TIMEOUT {
                    write!(f, "  (timeout {})", DisplayDuration(*timeout))?;
                }
                Ok(())
            }
            Step::Upload {
                path,
                contents,
                mode,
                owner,
                as_user,
            } => {
                // The path is quoted so that no file name can pass for more of the line.
                write!(f, "upload {} as {as_user} (", quoted(path.as_str()))?;
                match contents {
                    FileContents::Public(bytes) => write!(f, "{}", DisplaySize(bytes.len()))?,
                    FileContents::Secret(_) => f.write_str("secret contents")?,
                }
                write!(f, ", mode {mode:04o}")?;
                if let Some(owner) = owner {
                    write!(f, ", owner {owner}")?;
                }
                f.write_str(")")
            }
            Step::Persist(record) => {
                write!(
                    f,
                    "record {} {} version {}",
                    record.package_type, record.package_name, record.version
                )?;
                let is_empty = match &record.configuration {
                    serde_json::Value::Null => true,
                    serde_json::Value::Object(map) => map.is_empty(),
                    _ => false,
                };
                if !is_empty {
                    write!(f, " {}", record.configuration)?;
                }
                Ok(())
            }
        }
    }
}

/// Prints a byte count the way people read it: `512 B`, `1.2 KiB`, `3.4 MiB`.
struct DisplaySize(usize);

impl fmt::Display for DisplaySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * 1024;
        let bytes = self.0;
        let bytes_as_float = bytes as f64;
        if bytes < KIB {
            write!(f, "{bytes} B")
        } else if bytes < MIB {
            write!(f, "{:.1} KiB", bytes_as_float / KIB as f64)
        } else {
            write!(f, "{:.1} MiB", bytes_as_float / MIB as f64)
        }
    }
}

/// Prints a timeout in its largest whole unit: `90s`, `30m`, `2h`.
struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = self.0;
        let seconds = duration.as_secs();
        if duration.subsec_nanos() != 0 {
            write!(f, "{}ms", duration.as_millis())
        } else if seconds != 0 && seconds.is_multiple_of(3600) {
            write!(f, "{}h", seconds / 3600)
        } else if seconds != 0 && seconds.is_multiple_of(60) {
            write!(f, "{}m", seconds / 60)
        } else {
            write!(f, "{seconds}s")
        }
    }
}

/// An ordered list of steps. Same input, same plan: plans hold no closures and no
/// clocks, so their text is deterministic.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// A plan of the given steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Plan { steps }
    }

    /// Starts a plan whose commands and uploads run as `as_user`.
    pub fn builder(as_user: RemoteUser) -> PlanBuilder {
        PlanBuilder::new(as_user)
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Takes the steps out of the plan.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }

    /// Whether the plan does nothing, for example because everything is in place.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether the plan leaves the server as it is: it runs no command and uploads no
    /// file. It may still reach milestones and persist records, which only touch
    /// BrokeForge's own database.
    pub fn is_noop(&self) -> bool {
        !self
            .steps
            .iter()
            .any(|step| matches!(step, Step::Run { .. } | Step::Upload { .. }))
    }

    /// Every distinct secret value in the plan: secret command words and environment
    /// values, and secret file contents that are text. Output captured while running
    /// the plan is passed through [`crate::scrub`] with these.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = Vec::new();
        for step in &self.steps {
            match step {
                Step::Run { cmd, .. } => secrets.extend(cmd.secrets()),
                Step::Upload {
                    contents: FileContents::Secret(secret),
                    ..
                } => secrets.extend(std::str::from_utf8(secret.expose())),
                _ => {}
            }
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets.sort_unstable();
        secrets.dedup();
        secrets
    }
}

/// The dry-run view: one line per step, steps indented under their milestone.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            match step {
                Step::Milestone { .. } => writeln!(f, "{step}")?,
                _ => writeln!(f, "  {step}")?,
            }
        }
        Ok(())
    }
}

/// Assembles a plan step by step. Commands and uploads run as the user the builder was
/// made for, which the package's scope decides.
#[derive(Debug)]
pub struct PlanBuilder {
    as_user: RemoteUser,
    steps: Vec<Step>,
}

impl PlanBuilder {
    /// Starts an empty plan whose commands and uploads run as `as_user`.
    pub fn new(as_user: RemoteUser) -> Self {
        PlanBuilder {
            as_user,
            steps: Vec::new(),
        }
    }

    /// Marks `milestone` as reached. See [`Step::milestone`].
    pub fn milestone<M: Milestone>(&mut self, milestone: M) -> &mut Self {
        self.steps.push(Step::milestone(milestone));
        self
    }

    /// Runs `cmd` with [`DEFAULT_RUN_TIMEOUT`].
    pub fn run(&mut self, cmd: Cmd) -> &mut Self {
        self.run_with_timeout(cmd, DEFAULT_RUN_TIMEOUT)
    }

    /// Runs `cmd`, killing it after `timeout`.
    pub fn run_with_timeout(&mut self, cmd: Cmd, timeout: Duration) -> &mut Self {
        self.steps.push(Step::Run {
            cmd,
            timeout,
            as_user: self.as_user,
        });
        self
    }

    /// Uploads `contents` to `path` with permission bits `mode` (such as `0o644`).
    ///
    /// # Panics
    ///
    /// Panics if `mode` has bits beyond `0o7777`, which is a programming error.
    pub fn upload(
        &mut self,
        path: RemotePath,
        contents: impl Into<FileContents>,
        mode: u32,
        owner: Option<UnixUserName>,
    ) -> &mut Self {
        assert!(mode <= 0o7777, "file mode {mode:o} has bits beyond 0o7777");
        self.steps.push(Step::Upload {
            path,
            contents: contents.into(),
            mode,
            owner,
            as_user: self.as_user,
        });
        self
    }

    /// Upserts `record` once the steps before it succeeded.
    pub fn persist(&mut self, record: Record) -> &mut Self {
        self.steps.push(Step::Persist(record));
        self
    }

    /// Appends any step, for cases the other methods do not cover.
    pub fn step(&mut self, step: Step) -> &mut Self {
        self.steps.push(step);
        self
    }

    /// The finished plan.
    pub fn build(self) -> Plan {
        Plan::new(self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ShellArg;
    use crate::values::Domain;

    /// Milestones of a made-up nginx installation.
    #[derive(Clone, Copy, PartialEq)]
    enum NginxInstall {
        PrepareSystem,
        InstallNginx,
        WriteConfiguration,
        Complete,
    }

    impl Milestone for NginxInstall {
        const ALL: &'static [Self] = &[
            NginxInstall::PrepareSystem,
            NginxInstall::InstallNginx,
            NginxInstall::WriteConfiguration,
            NginxInstall::Complete,
        ];

        fn key(self) -> &'static str {
            match self {
                NginxInstall::PrepareSystem => "prepare_system",
                NginxInstall::InstallNginx => "install_nginx",
                NginxInstall::WriteConfiguration => "write_configuration",
                NginxInstall::Complete => "complete",
            }
        }

        fn label(self) -> &'static str {
            match self {
                NginxInstall::PrepareSystem => "Preparing system",
                NginxInstall::InstallNginx => "Installing nginx",
                NginxInstall::WriteConfiguration => "Writing configuration",
                NginxInstall::Complete => "Complete",
            }
        }
    }

    fn path(text: &str) -> RemotePath {
        text.parse().unwrap()
    }

    fn user(name: &str) -> Option<UnixUserName> {
        Some(name.parse().unwrap())
    }

    fn nginx_install_plan(domain: &Domain) -> Plan {
        let apt_get = || Cmd::new("apt-get").env("DEBIAN_FRONTEND", ShellArg::new("noninteractive").unwrap());
        let vhost = format!("server {{\n    server_name {domain};\n}}\n");
        let mut plan = Plan::builder(RemoteUser::Root);
        plan.milestone(NginxInstall::PrepareSystem)
            .run(apt_get().lit("update"))
            .milestone(NginxInstall::InstallNginx)
            .run_with_timeout(
                apt_get().lit("install").lit("-y").lit("nginx"),
                Duration::from_secs(30 * 60),
            )
            .milestone(NginxInstall::WriteConfiguration)
            .upload(path("/etc/nginx/nginx.conf"), vec![b'#'; 1229], 0o644, user("root"))
            .upload(
                path("/etc/nginx/sites-available").join(domain.as_str()).unwrap(),
                vhost,
                0o644,
                None,
            )
            .run(
                Cmd::new("ln")
                    .lit("-sfn")
                    .lit("--")
                    .arg(path("/etc/nginx/sites-available").join(domain.as_str()).unwrap())
                    .lit("/etc/nginx/sites-enabled/"),
            )
            .run(
                Cmd::new("nginx")
                    .lit("-t")
                    .and(Cmd::new("systemctl").lit("reload").lit("nginx")),
            )
            .persist(
                Record::new("web-server", "nginx", "1.22")
                    .with_configuration(serde_json::json!({ "sites": [domain.as_str()], "worker_processes": "auto" })),
            )
            .milestone(NginxInstall::Complete);
        plan.build()
    }

    fn site_env_plan() -> Plan {
        let database_password = Secret::from("pa$$ 'word");
        let env_file = Secret::new(b"APP_KEY=base64:abc\nDB_PASSWORD=pa$$ 'word\n".to_vec());
        let mut plan = Plan::builder(RemoteUser::BrokeForge);
        plan.run(
            Cmd::new("mysql")
                .secret_env("MYSQL_PWD", &database_password)
                .unwrap()
                .lit("-u")
                .try_arg("site user")
                .unwrap()
                .lit("-e")
                .lit("'SELECT 1'"),
        )
        .upload(
            path("/home/brokeforge/example.com/shared/.env"),
            env_file,
            0o600,
            user("brokeforge"),
        )
        .run_with_timeout(
            Cmd::new("printf")
                .lit("%s")
                .secret_arg(&database_password)
                .unwrap()
                .pipe(Cmd::new("wc").lit("-c")),
            Duration::from_secs(90),
        )
        .persist(Record::new("site", "env", "1"));
        plan.build()
    }

    #[test]
    fn nginx_install_plan_text() {
        let domain: Domain = "example.com".parse().unwrap();
        insta::assert_snapshot!(nginx_install_plan(&domain).to_string());
    }

    #[test]
    fn site_plan_text_masks_secrets() {
        insta::assert_snapshot!(site_env_plan().to_string());
    }

    #[test]
    fn hostile_values_are_quoted_in_plan_text() {
        let site_root = path("/home/brokeforge/$(reboot)/it's here");
        let mut plan = Plan::builder(RemoteUser::BrokeForge);
        plan.run(
            Cmd::new("git")
                .lit("clone")
                .lit("--branch")
                .arg("feature/x;rm".parse::<crate::GitBranch>().unwrap())
                .lit("--")
                .try_arg("https://example.com/repo.git#`id`")
                .unwrap()
                .arg(&site_root),
        )
        .upload(site_root.join("a\"b | c.txt").unwrap(), b"\n".to_vec(), 0o640, None);
        insta::assert_snapshot!(plan.build().to_string());
    }

    #[test]
    fn a_plan_without_commands_or_uploads_is_a_noop() {
        let mut plan = Plan::builder(RemoteUser::Root);
        plan.milestone(NginxInstall::PrepareSystem)
            .persist(Record::new("web-server", "nginx", "1.22"));
        assert!(plan.build().is_noop());
        assert!(Plan::default().is_noop());
        let domain: Domain = "example.com".parse().unwrap();
        assert!(!nginx_install_plan(&domain).is_noop());
    }

    #[test]
    fn plans_are_deterministic() {
        let domain: Domain = "example.com".parse().unwrap();
        assert_eq!(
            nginx_install_plan(&domain).to_string(),
            nginx_install_plan(&domain).to_string()
        );
    }

    #[test]
    fn every_secret_is_listed_and_masked_in_the_plan_text() {
        let plan = site_env_plan();
        let secrets = plan.secrets();
        assert_eq!(
            secrets,
            vec!["APP_KEY=base64:abc\nDB_PASSWORD=pa$$ 'word\n", "pa$$ 'word"]
        );
        let text = plan.to_string();
        for secret in &secrets {
            assert!(!text.contains(secret), "plan text shows {secret:?}:\n{text}");
        }
        assert!(!text.contains("pa$$"), "plan text shows part of a secret:\n{text}");
        assert_eq!(text.matches("***").count(), 2, "{text}");
        assert!(!format!("{plan:?}").contains("pa$$"), "Debug shows a secret");

        let executed: Vec<String> = plan
            .steps()
            .iter()
            .filter_map(|step| match step {
                Step::Run { cmd, .. } => Some(cmd.render_for_execution()),
                _ => None,
            })
            .collect();
        assert_eq!(
            executed[0],
            r"MYSQL_PWD=pa'$$ '\'word mysql -u site' user' -e 'SELECT 1'"
        );
        assert_eq!(executed[1], r"printf %s pa'$$ '\'word | wc -c");
        assert_eq!(
            crate::scrub("ERROR 1045: Access denied (password pa$$ 'word)", &secrets),
            "ERROR 1045: Access denied (password ***)"
        );
    }

    #[test]
    fn milestones_are_numbered_from_one_by_their_position() {
        let step = Step::milestone(NginxInstall::WriteConfiguration);
        assert_eq!(step.to_string(), "[3/4] Writing configuration");
        let Step::Milestone { key, index, total, .. } = step else {
            panic!("not a milestone: {step:?}");
        };
        assert_eq!((key, index, total), ("write_configuration", 3, 4));
    }

    #[test]
    fn sizes_and_timeouts_print_in_their_largest_unit() {
        let sizes: Vec<String> = [0, 1023, 1024, 1229, 1024 * 1024 * 3 + 1024 * 400]
            .into_iter()
            .map(|bytes| DisplaySize(bytes).to_string())
            .collect();
        assert_eq!(sizes, ["0 B", "1023 B", "1.0 KiB", "1.2 KiB", "3.4 MiB"]);
        let timeouts: Vec<String> = [0, 45, 90, 120, 7200]
            .into_iter()
            .map(|seconds| DisplayDuration(Duration::from_secs(seconds)).to_string())
            .chain([DisplayDuration(Duration::from_millis(1500)).to_string()])
            .collect();
        assert_eq!(timeouts, ["0s", "45s", "90s", "2m", "2h", "1500ms"]);
    }
}

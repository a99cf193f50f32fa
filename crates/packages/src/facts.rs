//! Facts: what a package operation reads from the server before it plans.
//!
//! An operation lists its [`FactProbe`]s: read-only commands, each with a stable key.
//! The application runs them (over SSH, as the package's scope user) and hands the
//! captured [`ProbeOutput`]s back in a [`ProbeOutputs`] map; the operation's pure
//! parsers turn them into its `Facts` value. Idempotency comes from these facts: a plan
//! only contains the commands that the facts show are needed.
//!
//! This module also holds the parsers that many packages share: the state of one Debian
//! package or of every package matching some patterns (`dpkg-query`), the contents of
//! a file (`cat`), what kind of file a path is (`stat`), and the state of a systemd
//! service (`systemctl show`).

use std::collections::BTreeMap;
use std::time::Duration;

use brokeforge_core::{Cmd, RemotePath, RemoteUser, ShellArg};
use thiserror::Error;

use crate::framework::Package;

/// How long a probe may run: probes only read, so a slow one means something is wrong.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A read-only command whose output becomes part of an operation's facts.
#[derive(Clone, Debug)]
pub struct FactProbe {
    key: &'static str,
    cmd: Cmd,
    as_user: RemoteUser,
}

impl FactProbe {
    /// A probe run as the scope user of package `P`. `key` names its output in
    /// [`ProbeOutputs`].
    pub fn new<P: Package>(key: &'static str, cmd: Cmd) -> Self {
        FactProbe {
            key,
            cmd,
            as_user: P::SCOPE.remote_user(),
        }
    }

    /// The stable key of this probe's output, such as `timesyncd_package`.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The command to run.
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// The account that runs the command.
    pub fn as_user(&self) -> RemoteUser {
        self.as_user
    }

    /// How long the command may run.
    pub fn timeout(&self) -> Duration {
        PROBE_TIMEOUT
    }
}

/// What a probe printed and how it exited, exactly as captured (not trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutput {
    /// The exit status of the command.
    pub exit_code: u32,
    /// Everything the command wrote to stdout.
    pub stdout: String,
    /// Everything the command wrote to stderr.
    pub stderr: String,
}

impl ProbeOutput {
    /// An output with the given exit code, stdout and stderr.
    pub fn new(exit_code: u32, stdout: impl Into<String>, stderr: impl Into<String>) -> Self {
        ProbeOutput {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// A successful output (exit code 0) with the given stdout and no stderr.
    pub fn success(stdout: impl Into<String>) -> Self {
        ProbeOutput::new(0, stdout, "")
    }
}

/// A parser's explanation of why a probe's output is not what it expected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct UnexpectedOutput(pub String);

/// Why facts could not be gathered. The message is one line meant for the user.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FactError {
    /// The application did not pass the output of a probe the operation listed.
    #[error("the output of fact probe {probe:?} is missing")]
    MissingOutput { probe: &'static str },
    /// A probe printed something its parser does not understand, or failed.
    #[error("cannot read {probe:?} from the server: {reason} (exit code {exit_code}{stderr_excerpt})")]
    UnexpectedOutput {
        probe: &'static str,
        reason: String,
        exit_code: u32,
        stderr_excerpt: String,
    },
}

/// The outputs of an operation's probes, by probe key.
#[derive(Clone, Debug, Default)]
pub struct ProbeOutputs {
    outputs: BTreeMap<&'static str, ProbeOutput>,
}

impl ProbeOutputs {
    /// An empty map.
    pub fn new() -> Self {
        ProbeOutputs::default()
    }

    /// Stores the output of the probe with `key`.
    pub fn insert(&mut self, key: &'static str, output: ProbeOutput) -> &mut Self {
        self.outputs.insert(key, output);
        self
    }

    /// The output of the probe with `key`.
    pub fn get(&self, key: &'static str) -> Result<&ProbeOutput, FactError> {
        self.outputs.get(key).ok_or(FactError::MissingOutput { probe: key })
    }

    /// Parses the output of the probe with `key`, naming the probe, its exit code and
    /// the end of its stderr in the error.
    pub fn read<T>(
        &self,
        key: &'static str,
        parser: impl FnOnce(&ProbeOutput) -> Result<T, UnexpectedOutput>,
    ) -> Result<T, FactError> {
        let output = self.get(key)?;
        parser(output).map_err(|UnexpectedOutput(reason)| FactError::UnexpectedOutput {
            probe: key,
            reason,
            exit_code: output.exit_code,
            stderr_excerpt: stderr_excerpt(&output.stderr),
        })
    }
}

impl FromIterator<(&'static str, ProbeOutput)> for ProbeOutputs {
    fn from_iter<I: IntoIterator<Item = (&'static str, ProbeOutput)>>(outputs: I) -> Self {
        ProbeOutputs {
            outputs: outputs.into_iter().collect(),
        }
    }
}

/// `; stderr: <last non-empty line>`, shortened, or nothing when stderr is empty.
fn stderr_excerpt(stderr: &str) -> String {
    const MAX_CHARS: usize = 200;
    match stderr.lines().map(str::trim).rfind(|line| !line.is_empty()) {
        Some(line) if line.chars().count() > MAX_CHARS => {
            let shortened: String = line.chars().take(MAX_CHARS).collect();
            format!("; stderr: {shortened}...")
        }
        Some(line) => format!("; stderr: {line}"),
        None => String::new(),
    }
}

/// The state of a Debian package, from `dpkg-query -W -f '${Status}' NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpkgState {
    /// Installed and configured.
    Installed,
    /// Not installed; dpkg may or may not know the name.
    NotInstalled,
    /// Removed, but its configuration files are still on disk (`apt-get purge` cleans).
    ConfigFilesOnly,
    /// Stopped halfway (unpacked, half-configured, ...): `dpkg --configure -a` first.
    Interrupted { status: String },
}

impl DpkgState {
    /// Whether the package's files are on the server, completely or partly.
    pub fn is_present(&self) -> bool {
        !matches!(self, DpkgState::NotInstalled)
    }
}

/// The probe command for the state of the Debian package `package`.
pub fn dpkg_status_cmd(package: &'static str) -> Cmd {
    Cmd::new("dpkg-query")
        .lit("-W")
        .lit("-f")
        .lit("'${Status}'")
        .lit(package)
}

/// Parses the output of [`dpkg_status_cmd`].
///
/// dpkg prints `want flag status`, such as `install ok installed`; a name it has never
/// heard of makes it exit with code 1 and `dpkg-query: no packages found matching ...`.
pub fn parse_dpkg_status(output: &ProbeOutput) -> Result<DpkgState, UnexpectedOutput> {
    if output.exit_code == 1 && output.stdout.trim().is_empty() && output.stderr.contains("no packages found") {
        return Ok(DpkgState::NotInstalled);
    }
    if output.exit_code != 0 {
        return Err(UnexpectedOutput("dpkg-query failed".to_owned()));
    }
    parse_status_words(&output.stdout)
}

/// Reads dpkg's `want flag status` words, such as `install ok installed`.
fn parse_status_words(text: &str) -> Result<DpkgState, UnexpectedOutput> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_want, _flag, status] = words.as_slice() else {
        return Err(UnexpectedOutput(format!(
            "expected a package status such as \"install ok installed\", got {text:?}"
        )));
    };
    Ok(match *status {
        "installed" => DpkgState::Installed,
        "not-installed" => DpkgState::NotInstalled,
        "config-files" => DpkgState::ConfigFilesOnly,
        "half-installed" | "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending" => {
            DpkgState::Interrupted {
                status: (*status).to_owned(),
            }
        }
        unknown => {
            return Err(UnexpectedOutput(format!("unknown package status {unknown:?}")));
        }
    })
}

/// What dpkg knows about one package: its state and, when its files are on the
/// server, its version (such as `8.2.36-1~deb12u1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageState {
    pub state: DpkgState,
    /// The version of the package's files; `None` when dpkg has none on disk.
    pub version: Option<String>,
}

/// The packages matching some `dpkg-query` patterns, by name. A name dpkg does not
/// know is simply absent, which [`PackageStates::state`] reports as not installed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageStates {
    packages: BTreeMap<String, PackageState>,
}

impl PackageStates {
    /// The state of `package`: not installed when dpkg does not list it.
    pub fn state(&self, package: &str) -> DpkgState {
        self.packages
            .get(package)
            .map(|known| known.state.clone())
            .unwrap_or(DpkgState::NotInstalled)
    }

    /// Whether `package` is installed and configured.
    pub fn is_installed(&self, package: &str) -> bool {
        self.state(package) == DpkgState::Installed
    }

    /// The version of `package` when it is installed.
    pub fn installed_version(&self, package: &str) -> Option<&str> {
        self.packages
            .get(package)
            .filter(|known| known.state == DpkgState::Installed)
            .and_then(|known| known.version.as_deref())
    }

    /// The names of the packages whose files are on the server, completely or partly,
    /// in name order.
    pub fn present(&self) -> impl Iterator<Item = &str> {
        self.packages
            .iter()
            .filter(|(_, known)| known.state.is_present())
            .map(|(name, _)| name.as_str())
    }

    /// Whether some listed package stopped halfway and needs `dpkg --configure -a`.
    pub fn any_interrupted(&self) -> bool {
        self.packages
            .values()
            .any(|known| matches!(known.state, DpkgState::Interrupted { .. }))
    }

    /// States given directly, for tests and for facts assembled by hand.
    pub fn from_states<'a>(states: impl IntoIterator<Item = (&'a str, PackageState)>) -> Self {
        PackageStates {
            packages: states
                .into_iter()
                .map(|(name, state)| (name.to_owned(), state))
                .collect(),
        }
    }
}

/// The probe command for the packages matching `patterns`, such as `php*` or `cron`.
/// Patterns are shell-quoted, so `*` reaches dpkg-query instead of the shell.
pub fn package_states_cmd(patterns: &[&'static str]) -> Cmd {
    let cmd = Cmd::new("dpkg-query")
        .lit("-W")
        .lit("-f")
        .lit("'${Package} ${Version} ${Status}\\n'");
    patterns.iter().fold(cmd, |cmd, pattern| {
        cmd.arg(ShellArg::new(*pattern).expect("a literal without NUL"))
    })
}

/// Parses the output of [`package_states_cmd`]: one `name version want flag status`
/// line per package dpkg knows (the version is empty when no files are on disk).
/// dpkg-query exits with code 1 when some pattern matched nothing, which is normal.
pub fn parse_package_states(output: &ProbeOutput) -> Result<PackageStates, UnexpectedOutput> {
    let only_unmatched_patterns = output
        .stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .all(|line| line.contains("no packages found matching"));
    if !(output.exit_code == 0 || output.exit_code == 1 && only_unmatched_patterns) {
        return Err(UnexpectedOutput("dpkg-query failed".to_owned()));
    }
    let mut packages = BTreeMap::new();
    for line in output.stdout.lines().filter(|line| !line.trim().is_empty()) {
        let unexpected = || {
            UnexpectedOutput(format!(
                "expected \"name version want flag status\", such as \"nginx 1.22.1-9 install ok installed\", got {line:?}"
            ))
        };
        let (name, rest) = line.split_once(' ').ok_or_else(unexpected)?;
        let (version, status) = rest.split_once(' ').ok_or_else(unexpected)?;
        if name.is_empty() {
            return Err(unexpected());
        }
        let state = parse_status_words(status)?;
        let version = (!version.is_empty()).then(|| version.to_owned());
        packages.insert(name.to_owned(), PackageState { state, version });
    }
    Ok(PackageStates { packages })
}

/// The probe command that prints the contents of the file at `path`.
pub fn file_contents_cmd(path: &RemotePath) -> Cmd {
    Cmd::new("cat").lit("--").arg(path)
}

/// Parses the output of [`file_contents_cmd`]: the contents, or `None` when the file
/// does not exist.
pub fn parse_file_contents(output: &ProbeOutput) -> Result<Option<String>, UnexpectedOutput> {
    match output.exit_code {
        0 => Ok(Some(output.stdout.clone())),
        1 if output.stderr.contains("No such file or directory") => Ok(None),
        _ => Err(UnexpectedOutput("cannot read the file".to_owned())),
    }
}

/// What kind of file a path names, as `stat` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file, empty or not.
    RegularFile,
    Directory,
    SymbolicLink,
    /// Anything else (socket, fifo, device), as `stat` names it.
    Other(String),
}

/// The probe command for the kinds of `paths`: one `PATH KIND` line for every path
/// that exists. Symbolic links are reported as links, not followed.
pub fn path_kinds_cmd(paths: &[RemotePath]) -> Cmd {
    let cmd = Cmd::new("stat").lit("--printf").lit("'%n %F\\n'").lit("--");
    paths.iter().fold(cmd, |cmd, path| cmd.arg(path))
}

/// Parses the output of [`path_kinds_cmd`] for the same `paths`: each path's kind, or
/// `None` when it does not exist. Other errors, such as a denied permission, fail.
pub fn parse_path_kinds(output: &ProbeOutput, paths: &[RemotePath]) -> Result<Vec<Option<FileKind>>, UnexpectedOutput> {
    let only_missing = output
        .stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .all(|line| line.contains("No such file or directory"));
    if !(output.exit_code == 0 || output.exit_code == 1 && only_missing) {
        return Err(UnexpectedOutput("stat failed".to_owned()));
    }
    let mut kinds = vec![None; paths.len()];
    for line in output.stdout.lines().filter(|line| !line.is_empty()) {
        let position = paths
            .iter()
            .position(|path| {
                line.strip_prefix(path.as_str())
                    .is_some_and(|rest| rest.starts_with(' '))
            })
            .ok_or_else(|| UnexpectedOutput(format!("stat printed a path that was not asked for: {line:?}")))?;
        let kind = &line[paths[position].as_str().len() + 1..];
        kinds[position] = Some(match kind {
            "regular file" | "regular empty file" => FileKind::RegularFile,
            "directory" => FileKind::Directory,
            "symbolic link" => FileKind::SymbolicLink,
            other => FileKind::Other(other.to_owned()),
        });
    }
    Ok(kinds)
}

/// The state of a systemd service, from `systemctl show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// systemd knows the unit.
    Loaded {
        /// Whether it starts at boot (`UnitFileState=enabled`).
        enabled: bool,
        /// Whether it runs now (`ActiveState=active` or `reloading`).
        active: bool,
    },
    /// systemd has no such unit, typically because its package is not installed.
    NotFound,
    /// `systemctl` could not answer, for example without systemd; `reason` is its first
    /// error line. Plans then run the commands that would start the service, whose own
    /// errors explain more.
    Unavailable { reason: String },
}

impl ServiceState {
    /// Whether the service starts at boot and runs now.
    pub fn is_enabled_and_active(&self) -> bool {
        matches!(
            self,
            ServiceState::Loaded {
                enabled: true,
                active: true
            }
        )
    }

    /// Whether the service starts at boot.
    pub fn is_enabled(&self) -> bool {
        matches!(self, ServiceState::Loaded { enabled: true, .. })
    }

    /// Whether the service runs now.
    pub fn is_active(&self) -> bool {
        matches!(self, ServiceState::Loaded { active: true, .. })
    }
}

/// The probe command for the [`ServiceState`] of `unit`, such as `nginx.service`.
pub fn service_state_cmd(unit: impl Into<ShellArg>) -> Cmd {
    Cmd::new("systemctl")
        .lit("show")
        .lit("-p")
        .lit("LoadState")
        .lit("-p")
        .lit("ActiveState")
        .lit("-p")
        .lit("UnitFileState")
        .lit("--")
        .arg(unit)
}

/// Parses the output of [`service_state_cmd`]: `KEY=value` lines in any order.
pub fn parse_service_state(output: &ProbeOutput) -> Result<ServiceState, UnexpectedOutput> {
    if output.exit_code != 0 {
        let reason = output
            .stderr
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("systemctl failed without a message");
        return Ok(ServiceState::Unavailable {
            reason: reason.to_owned(),
        });
    }
    let mut load = None;
    let mut active = None;
    let mut unit_file = None;
    for line in output.stdout.lines().filter(|line| !line.trim().is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(UnexpectedOutput(format!("expected KEY=value, got {line:?}")));
        };
        match key {
            "LoadState" => load = Some(value),
            "ActiveState" => active = Some(value),
            "UnitFileState" => unit_file = Some(value),
            _ => {}
        }
    }
    let (Some(load), Some(active)) = (load, active) else {
        return Err(UnexpectedOutput(format!(
            "expected LoadState and ActiveState, got {:?}",
            output.stdout
        )));
    };
    Ok(match load {
        "not-found" => ServiceState::NotFound,
        _ => ServiceState::Loaded {
            enabled: matches!(unit_file, Some("enabled" | "enabled-runtime")),
            active: matches!(active, "active" | "reloading"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dpkg(output: ProbeOutput) -> Result<DpkgState, UnexpectedOutput> {
        parse_dpkg_status(&output)
    }

    #[test]
    fn dpkg_states_as_debian_12_prints_them() {
        assert_eq!(
            dpkg(ProbeOutput::success("install ok installed")),
            Ok(DpkgState::Installed)
        );
        assert_eq!(
            dpkg(ProbeOutput::success("unknown ok not-installed")),
            Ok(DpkgState::NotInstalled)
        );
        assert_eq!(
            dpkg(ProbeOutput::success("deinstall ok config-files")),
            Ok(DpkgState::ConfigFilesOnly)
        );
        assert_eq!(
            dpkg(ProbeOutput::success("install reinstreq half-installed")),
            Ok(DpkgState::Interrupted {
                status: "half-installed".to_owned()
            })
        );
        assert_eq!(
            dpkg(ProbeOutput::new(
                1,
                "",
                "dpkg-query: no packages found matching systemd-timesyncd\n"
            )),
            Ok(DpkgState::NotInstalled)
        );
        assert!(dpkg(ProbeOutput::success("")).is_err());
        assert!(dpkg(ProbeOutput::success("install ok sideways")).is_err());
        assert!(dpkg(ProbeOutput::new(2, "", "dpkg-query: error: --show needs a package")).is_err());
    }

    #[test]
    fn file_contents_distinguish_missing_from_unreadable() {
        assert_eq!(
            parse_file_contents(&ProbeOutput::success("a\nb\n")),
            Ok(Some("a\nb\n".to_owned()))
        );
        assert_eq!(
            parse_file_contents(&ProbeOutput::new(
                1,
                "",
                "cat: /etc/x.conf: No such file or directory\n"
            )),
            Ok(None)
        );
        assert!(parse_file_contents(&ProbeOutput::new(1, "", "cat: /etc/x.conf: Permission denied\n")).is_err());
    }

    #[test]
    fn errors_name_the_probe_the_exit_code_and_the_end_of_stderr() {
        let outputs: ProbeOutputs = [(
            "ufw_status",
            ProbeOutput::new(1, "", "WARN: noise\nERROR: You need to be root to run this script\n\n"),
        )]
        .into_iter()
        .collect();
        let error = outputs
            .read("ufw_status", |_| {
                Err::<(), _>(UnexpectedOutput("no status line".to_owned()))
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read \"ufw_status\" from the server: no status line \
             (exit code 1; stderr: ERROR: You need to be root to run this script)"
        );
        assert_eq!(
            outputs.get("other").unwrap_err().to_string(),
            "the output of fact probe \"other\" is missing"
        );
    }

    #[test]
    fn probe_commands_print_as_expected() {
        assert_eq!(dpkg_status_cmd("ufw").to_string(), "dpkg-query -W -f '${Status}' ufw");
        let path: RemotePath = "/etc/my dir/x.conf".parse().unwrap();
        assert_eq!(file_contents_cmd(&path).to_string(), "cat -- /etc/my' dir/x.conf'");
        let probe = FactProbe::new::<crate::site_command::SiteCommand>("x", Cmd::new("true"));
        assert_eq!(probe.as_user(), RemoteUser::BrokeForge);
        assert_eq!(probe.timeout(), PROBE_TIMEOUT);
    }
}

//! Facts: what a package operation reads from the server before it plans.
//!
//! An operation lists its [`FactProbe`]s: read-only commands, each with a stable key.
//! The application runs them (over SSH, as the package's scope user) and hands the
//! captured [`ProbeOutput`]s back in a [`ProbeOutputs`] map; the operation's pure
//! parsers turn them into its `Facts` value. Idempotency comes from these facts: a plan
//! only contains the commands that the facts show are needed.
//!
//! This module also holds the parsers that many packages share: the state of a Debian
//! package (`dpkg-query`) and the contents of a file (`cat`).

use std::collections::BTreeMap;
use std::time::Duration;

use brokeforge_core::{Cmd, RemotePath, RemoteUser};
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
    let words: Vec<&str> = output.stdout.split_whitespace().collect();
    let [_want, _flag, status] = words.as_slice() else {
        return Err(UnexpectedOutput(format!(
            "expected a package status such as \"install ok installed\", got {:?}",
            output.stdout
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

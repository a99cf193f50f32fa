//! TimeSync: systemd-timesyncd keeps the server's clock right (TLS, cron and logs
//! depend on it). Installing puts the package in place, turns on network time
//! synchronization and optionally writes BrokeForge's NTP server list; removing undoes
//! all three. Facts: the package state (`dpkg-query`), whether NTP is on
//! (`timedatectl show -p NTP --value`) and BrokeForge's configuration file.

use std::convert::Infallible;
use std::fmt;

use brokeforge_core::{Cmd, Domain, Plan, Record, RemotePath, UnixUserName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt;
use crate::facts::{
    DpkgState, FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput, dpkg_status_cmd, file_contents_cmd,
    parse_dpkg_status, parse_file_contents,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::templates::{self, Template, TemplateError};

/// The Debian package.
pub const TIMESYNCD_PACKAGE: &str = "systemd-timesyncd";
/// The drop-in file where BrokeForge writes the NTP servers.
pub const CONFIG_PATH: &str = "/etc/systemd/timesyncd.conf.d/brokeforge.conf";
const CONFIG_DIRECTORY: &str = "/etc/systemd/timesyncd.conf.d";
/// The version recorded for packages that come from the distribution's archive.
pub const DISTRO_VERSION: &str = "distro";

/// Probe keys.
const PACKAGE_PROBE: &str = "timesyncd_package";
const NTP_PROBE: &str = "timesyncd_ntp";
const CONFIG_PROBE: &str = "timesyncd_config";

/// systemd-timesyncd, a server package.
pub struct TimeSync;

impl Package for TimeSync {
    const NAME: PackageName = PackageName::Timesyncd;
    const SCOPE: Scope = Scope::Server;
}

/// Why a list of NTP servers is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NtpServersError {
    #[error("give at least one NTP server, or none to keep the distribution's servers")]
    Empty,
    #[error("give at most {max} NTP servers")]
    TooMany { max: usize },
    #[error("the NTP server {server} is listed twice")]
    Duplicate { server: String },
}

/// One to eight distinct NTP server host names, such as `time.cloudflare.com`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NtpServers(Vec<Domain>);

impl NtpServers {
    /// The most servers one configuration lists.
    pub const MAX: usize = 8;

    /// Checks that `servers` is a usable list.
    pub fn new(servers: Vec<Domain>) -> Result<Self, NtpServersError> {
        if servers.is_empty() {
            return Err(NtpServersError::Empty);
        }
        if servers.len() > Self::MAX {
            return Err(NtpServersError::TooMany { max: Self::MAX });
        }
        for (position, server) in servers.iter().enumerate() {
            if servers[..position].contains(server) {
                return Err(NtpServersError::Duplicate {
                    server: server.to_string(),
                });
            }
        }
        Ok(NtpServers(servers))
    }

    /// The servers, in order of preference.
    pub fn as_slice(&self) -> &[Domain] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NtpServers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NtpServers::new(Vec::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What installing TimeSync needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSyncInstallInput {
    /// The NTP servers to use; `None` keeps the distribution's defaults.
    pub ntp_servers: Option<NtpServers>,
}

/// Whether systemd synchronizes the clock over the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NtpState {
    /// `timedatectl` says `NTP=yes`.
    Enabled,
    /// `timedatectl` says `NTP=no`.
    Disabled,
    /// `timedatectl` could not answer (for example without D-Bus); `reason` is its
    /// last error line. Installing then enables NTP, whose own error explains more.
    Unavailable { reason: String },
}

/// What TimeSync reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeSyncFacts {
    /// The state of the systemd-timesyncd package.
    pub package: DpkgState,
    /// Whether network time synchronization is on.
    pub ntp: NtpState,
    /// The contents of BrokeForge's NTP configuration file, if it exists.
    pub config_file: Option<String>,
}

/// The probe command for [`NtpState`].
pub fn ntp_state_cmd() -> Cmd {
    Cmd::new("timedatectl").lit("show").lit("-p").lit("NTP").lit("--value")
}

/// Parses the output of [`ntp_state_cmd`]: `yes` or `no`.
pub fn parse_ntp_state(output: &ProbeOutput) -> Result<NtpState, UnexpectedOutput> {
    if output.exit_code != 0 {
        let reason = output
            .stderr
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("timedatectl failed without a message");
        return Ok(NtpState::Unavailable {
            reason: reason.to_owned(),
        });
    }
    match output.stdout.trim() {
        "yes" => Ok(NtpState::Enabled),
        "no" => Ok(NtpState::Disabled),
        other => Err(UnexpectedOutput(format!("expected yes or no, got {other:?}"))),
    }
}

fn config_path() -> RemotePath {
    CONFIG_PATH.parse().expect("a valid absolute path")
}

fn time_sync_probes() -> Vec<FactProbe> {
    vec![
        FactProbe::new::<TimeSync>(PACKAGE_PROBE, dpkg_status_cmd(TIMESYNCD_PACKAGE)),
        FactProbe::new::<TimeSync>(NTP_PROBE, ntp_state_cmd()),
        FactProbe::new::<TimeSync>(CONFIG_PROBE, file_contents_cmd(&config_path())),
    ]
}

fn parse_time_sync_facts(outputs: &ProbeOutputs) -> Result<TimeSyncFacts, FactError> {
    Ok(TimeSyncFacts {
        package: outputs.read(PACKAGE_PROBE, parse_dpkg_status)?,
        ntp: outputs.read(NTP_PROBE, parse_ntp_state)?,
        config_file: outputs.read(CONFIG_PROBE, parse_file_contents)?,
    })
}

/// The template context of [`Template::TimesyncdConfig`].
#[derive(Serialize)]
struct TimesyncdConfigContext<'a> {
    ntp_servers: &'a [Domain],
}

fn restart_timesyncd() -> Cmd {
    Cmd::new("systemctl").lit("restart").lit(TIMESYNCD_PACKAGE)
}

milestones! {
    /// Milestones of installing TimeSync.
    pub enum TimeSyncInstallMilestone {
        InstallTimesyncd => ("install_timesyncd", "Installing systemd-timesyncd"),
        EnableNtp => ("enable_ntp", "Enabling network time synchronization"),
        ConfigureNtpServers => ("configure_ntp_servers", "Configuring NTP servers"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs systemd-timesyncd and turns on network time synchronization.
pub struct TimeSyncInstall;

impl Operation for TimeSyncInstall {
    type Package = TimeSync;
    const ACTION: Action = Action::Install;
    type Milestone = TimeSyncInstallMilestone;
    type Input = TimeSyncInstallInput;
    type Facts = TimeSyncFacts;
    type Error = TemplateError;

    fn fact_probes(_input: &TimeSyncInstallInput) -> Vec<FactProbe> {
        time_sync_probes()
    }

    fn parse_facts(_input: &TimeSyncInstallInput, outputs: &ProbeOutputs) -> Result<TimeSyncFacts, FactError> {
        parse_time_sync_facts(outputs)
    }

    fn plan(input: &TimeSyncInstallInput, facts: &TimeSyncFacts) -> Result<Plan, TemplateError> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(TimeSyncInstallMilestone::InstallTimesyncd);
        for cmd in apt::commands_to_install(TIMESYNCD_PACKAGE, &facts.package) {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(TimeSyncInstallMilestone::EnableNtp);
        if facts.ntp != NtpState::Enabled {
            steps.run(Cmd::new("timedatectl").lit("set-ntp").lit("true"));
        }

        let steps = plan.milestone(TimeSyncInstallMilestone::ConfigureNtpServers);
        let desired_config = match &input.ntp_servers {
            Some(servers) => Some(templates::render(
                Template::TimesyncdConfig,
                &TimesyncdConfigContext {
                    ntp_servers: servers.as_slice(),
                },
            )?),
            None => None,
        };
        let current_config = facts.config_file.as_ref().map(|text| text.as_bytes());
        match (desired_config, current_config) {
            (Some(desired), current) if current != Some(desired.as_slice()) => {
                steps
                    .run(Cmd::new("mkdir").lit("-p").lit("--").lit(CONFIG_DIRECTORY))
                    .upload(config_path(), desired, 0o644, Some(root()))
                    .run(restart_timesyncd());
            }
            (None, Some(_)) => {
                steps
                    .run(Cmd::new("rm").lit("--").arg(config_path()))
                    .run(restart_timesyncd());
            }
            _ => {}
        }

        let servers: Option<Vec<&str>> = input
            .ntp_servers
            .as_ref()
            .map(|servers| servers.as_slice().iter().map(Domain::as_str).collect());
        plan.milestone(TimeSyncInstallMilestone::Complete).persist(
            Record::new(TimeSync::TYPE.as_str(), TimeSync::NAME.as_str(), DISTRO_VERSION)
                .with_configuration(serde_json::json!({ "ntp_servers": servers })),
        );
        Ok(plan.finish())
    }
}

milestones! {
    /// Milestones of removing TimeSync.
    pub enum TimeSyncRemoveMilestone {
        DisableNtp => ("disable_ntp", "Disabling network time synchronization"),
        RemoveTimesyncd => ("remove_timesyncd", "Removing systemd-timesyncd"),
        RemoveConfiguration => ("remove_configuration", "Removing BrokeForge's NTP configuration"),
        Complete => ("complete", "Complete"),
    }
}

/// Turns off network time synchronization and purges systemd-timesyncd. The
/// application deletes the package record once the plan succeeded.
pub struct TimeSyncRemove;

impl Operation for TimeSyncRemove {
    type Package = TimeSync;
    const ACTION: Action = Action::Remove;
    type Milestone = TimeSyncRemoveMilestone;
    type Input = ();
    type Facts = TimeSyncFacts;
    type Error = Infallible;

    fn fact_probes(_input: &()) -> Vec<FactProbe> {
        time_sync_probes()
    }

    fn parse_facts(_input: &(), outputs: &ProbeOutputs) -> Result<TimeSyncFacts, FactError> {
        parse_time_sync_facts(outputs)
    }

    fn plan(_input: &(), facts: &TimeSyncFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        // NTP=yes may come from another NTP service (chrony registers with timedated
        // too), which removing systemd-timesyncd must leave running.
        let steps = plan.milestone(TimeSyncRemoveMilestone::DisableNtp);
        if facts.package == DpkgState::Installed && facts.ntp == NtpState::Enabled {
            steps.run(Cmd::new("timedatectl").lit("set-ntp").lit("false"));
        }

        let steps = plan.milestone(TimeSyncRemoveMilestone::RemoveTimesyncd);
        if facts.package.is_present() {
            steps.run_with_timeout(apt::purge(TIMESYNCD_PACKAGE), apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(TimeSyncRemoveMilestone::RemoveConfiguration);
        if facts.config_file.is_some() {
            steps.run(Cmd::new("rm").lit("--").arg(config_path()));
        }

        plan.milestone(TimeSyncRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

fn root() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

impl fmt::Display for NtpServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(Domain::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_server_lists_are_validated() {
        let domain = |text: &str| text.parse::<Domain>().unwrap();
        assert_eq!(NtpServers::new(vec![]), Err(NtpServersError::Empty));
        assert_eq!(
            NtpServers::new(vec![domain("a.example.com"), domain("A.example.com")]),
            Err(NtpServersError::Duplicate {
                server: "a.example.com".to_owned()
            })
        );
        assert_eq!(
            NtpServers::new(vec![domain("a.example.com"); 9]),
            Err(NtpServersError::TooMany { max: 8 })
        );
        let servers = NtpServers::new(vec![domain("time.cloudflare.com"), domain("0.debian.pool.ntp.org")]).unwrap();
        assert_eq!(servers.to_string(), "time.cloudflare.com 0.debian.pool.ntp.org");
        assert!(serde_json::from_str::<NtpServers>("[]").is_err());
        assert!(serde_json::from_str::<NtpServers>("[\"time.example.com; reboot\"]").is_err());
        assert!(serde_json::from_str::<NtpServers>("[\"-oProxyCommand=x.example.com\"]").is_err());
        let input: TimeSyncInstallInput = serde_json::from_str("{\"ntp_servers\":[\"time.example.com\"]}").unwrap();
        assert_eq!(input.ntp_servers.unwrap().to_string(), "time.example.com");
    }
}

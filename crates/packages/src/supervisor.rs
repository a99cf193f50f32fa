//! Supervisor, which keeps sites' workers (queue consumers, daemons) running: the
//! package installed, its service enabled and running, and its include directory
//! `/etc/supervisor/conf.d` in place, where BrokeForge writes one file per program.
//!
//! Facts: the package state, the service state, `supervisord.conf` and the include
//! directory. Installing refuses when an existing `supervisord.conf` no longer
//! includes `conf.d/*.conf`, since programs written there would silently never run.

use brokeforge_core::{Cmd, Plan, Record, RemotePath, ShellArg};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{
    FactError, FactProbe, FileKind, PackageStates, ProbeOutputs, ServiceState, file_contents_cmd, package_states_cmd,
    parse_file_contents, parse_package_states, parse_path_kinds, parse_service_state, path_kinds_cmd,
    service_state_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::time_sync::DISTRO_VERSION;

/// The Debian package, and its service.
pub const SUPERVISOR_PACKAGE: &str = "supervisor";
/// Supervisor's main configuration file.
pub const MAIN_CONFIG_PATH: &str = "/etc/supervisor/supervisord.conf";
/// The directory whose `*.conf` files define programs.
pub const INCLUDE_DIRECTORY: &str = "/etc/supervisor/conf.d";

/// Probe keys.
const PACKAGES_PROBE: &str = "supervisor_package";
const SERVICE_PROBE: &str = "supervisor_service";
const MAIN_CONFIG_PROBE: &str = "supervisor_main_config";
const INCLUDE_DIRECTORY_PROBE: &str = "supervisor_include_directory";

/// Supervisor, a server package.
pub struct Supervisor;

impl Package for Supervisor {
    const NAME: PackageName = PackageName::Supervisor;
    const SCOPE: Scope = Scope::Server;
}

/// What installing Supervisor reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorFacts {
    pub packages: PackageStates,
    pub service: ServiceState,
    /// The contents of `supervisord.conf`, if it exists.
    pub main_config: Option<String>,
    /// What is at `/etc/supervisor/conf.d`.
    pub include_directory: Option<FileKind>,
}

/// Whether `supervisord.conf` includes the programs in `conf.d`: an `[include]`
/// section whose `files` list names `/etc/supervisor/conf.d/*.conf` (or the same path
/// relative to the file, `conf.d/*.conf`).
pub fn includes_program_directory(main_config: &str) -> bool {
    let mut in_include = false;
    for line in main_config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_include = line == "[include]";
            continue;
        }
        if !in_include {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "files"
            && value
                .split_whitespace()
                .any(|pattern| pattern == "/etc/supervisor/conf.d/*.conf" || pattern == "conf.d/*.conf")
        {
            return true;
        }
    }
    false
}

/// Why installing Supervisor refuses to plan.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SupervisorInstallRefusal {
    #[error(
        "{MAIN_CONFIG_PATH} does not include {INCLUDE_DIRECTORY}/*.conf, so workers BrokeForge adds would never \
         run; restore the [include] section (files = {INCLUDE_DIRECTORY}/*.conf) and try again"
    )]
    IncludeMissing,
}

milestones! {
    /// Milestones of installing Supervisor.
    pub enum SupervisorInstallMilestone {
        InstallSupervisor => ("install_supervisor", "Installing Supervisor"),
        PrepareProgramDirectory => ("prepare_program_directory", "Preparing the program directory"),
        EnableSupervisor => ("enable_supervisor", "Enabling Supervisor"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs Supervisor and keeps it enabled and running.
pub struct SupervisorInstall;

impl Operation for SupervisorInstall {
    type Package = Supervisor;
    const ACTION: Action = Action::Install;
    type Milestone = SupervisorInstallMilestone;
    type Input = ();
    type Facts = SupervisorFacts;
    type Error = SupervisorInstallRefusal;

    fn fact_probes(_input: &()) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<Supervisor>(PACKAGES_PROBE, package_states_cmd(&[SUPERVISOR_PACKAGE])),
            FactProbe::new::<Supervisor>(
                SERVICE_PROBE,
                service_state_cmd(ShellArg::new("supervisor.service").expect("a literal without NUL")),
            ),
            FactProbe::new::<Supervisor>(MAIN_CONFIG_PROBE, file_contents_cmd(&path(MAIN_CONFIG_PATH))),
            FactProbe::new::<Supervisor>(INCLUDE_DIRECTORY_PROBE, path_kinds_cmd(&[path(INCLUDE_DIRECTORY)])),
        ]
    }

    fn parse_facts(_input: &(), outputs: &ProbeOutputs) -> Result<SupervisorFacts, FactError> {
        let directory = [path(INCLUDE_DIRECTORY)];
        let kinds = outputs.read(INCLUDE_DIRECTORY_PROBE, |output| parse_path_kinds(output, &directory))?;
        Ok(SupervisorFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            service: outputs.read(SERVICE_PROBE, parse_service_state)?,
            main_config: outputs.read(MAIN_CONFIG_PROBE, parse_file_contents)?,
            include_directory: kinds.into_iter().next().flatten(),
        })
    }

    fn plan(_input: &(), facts: &SupervisorFacts) -> Result<Plan, SupervisorInstallRefusal> {
        if let Some(main_config) = &facts.main_config
            && !includes_program_directory(main_config)
        {
            return Err(SupervisorInstallRefusal::IncludeMissing);
        }
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(SupervisorInstallMilestone::InstallSupervisor);
        for cmd in apt::commands_to_install_all(
            &[DebianPackage::from_static(SUPERVISOR_PACKAGE)],
            &facts.packages,
            false,
        ) {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        // The package creates the directory; an administrator may have removed it.
        let steps = plan.milestone(SupervisorInstallMilestone::PrepareProgramDirectory);
        let package_was_installed = facts.packages.is_installed(SUPERVISOR_PACKAGE);
        if package_was_installed && facts.include_directory != Some(FileKind::Directory) {
            steps.run(
                Cmd::new("install")
                    .lit("-d")
                    .lit("-m")
                    .lit("0755")
                    .lit("--")
                    .lit(INCLUDE_DIRECTORY),
            );
        }

        let steps = plan.milestone(SupervisorInstallMilestone::EnableSupervisor);
        if !facts.service.is_enabled_and_active() {
            steps.run(Cmd::new("systemctl").lit("enable").lit("--now").lit(SUPERVISOR_PACKAGE));
        }

        plan.milestone(SupervisorInstallMilestone::Complete).persist(
            Record::new(Supervisor::TYPE.as_str(), Supervisor::NAME.as_str(), DISTRO_VERSION)
                .with_configuration(serde_json::json!({ "include_directory": INCLUDE_DIRECTORY })),
        );
        Ok(plan.finish())
    }
}

fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_include_section_is_found() {
        let debian = "[supervisord]\nlogfile=/var/log/supervisor/supervisord.log\n\n\
                      [include]\nfiles = /etc/supervisor/conf.d/*.conf\n";
        assert!(includes_program_directory(debian));
        assert!(includes_program_directory(
            "[include]\nfiles = other/*.ini conf.d/*.conf\n"
        ));
        assert!(!includes_program_directory(
            "[include]\n;files = /etc/supervisor/conf.d/*.conf\n"
        ));
        assert!(!includes_program_directory(
            "[supervisord]\nfiles = /etc/supervisor/conf.d/*.conf\n"
        ));
    }
}

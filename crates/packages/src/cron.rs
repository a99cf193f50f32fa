//! Cron, the scheduler's prerequisite: the `cron` package installed and its service
//! enabled and running, so the scheduled tasks BrokeForge writes to `/etc/cron.d`
//! run. Facts: the package state and the service state.

use std::convert::Infallible;

use brokeforge_core::{Cmd, Plan, Record};

use crate::apt::{self, DebianPackage};
use crate::facts::{
    FactError, FactProbe, PackageStates, ProbeOutputs, ServiceState, package_states_cmd, parse_package_states,
    parse_service_state, service_state_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::time_sync::DISTRO_VERSION;

/// The Debian package, and its service.
pub const CRON_PACKAGE: &str = "cron";

/// Probe keys.
const PACKAGES_PROBE: &str = "cron_package";
const SERVICE_PROBE: &str = "cron_service";

/// cron, a server package.
pub struct Cron;

impl Package for Cron {
    const NAME: PackageName = PackageName::Cron;
    const SCOPE: Scope = Scope::Server;
}

/// What installing cron reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronFacts {
    pub packages: PackageStates,
    pub service: ServiceState,
}

milestones! {
    /// Milestones of installing cron.
    pub enum CronInstallMilestone {
        InstallCron => ("install_cron", "Installing cron"),
        EnableCron => ("enable_cron", "Enabling cron"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs cron and keeps it enabled and running.
pub struct CronInstall;

impl Operation for CronInstall {
    type Package = Cron;
    const ACTION: Action = Action::Install;
    type Milestone = CronInstallMilestone;
    type Input = ();
    type Facts = CronFacts;
    type Error = Infallible;

    fn fact_probes(_input: &()) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<Cron>(PACKAGES_PROBE, package_states_cmd(&[CRON_PACKAGE])),
            FactProbe::new::<Cron>(
                SERVICE_PROBE,
                service_state_cmd(brokeforge_core::ShellArg::new("cron.service").expect("a literal without NUL")),
            ),
        ]
    }

    fn parse_facts(_input: &(), outputs: &ProbeOutputs) -> Result<CronFacts, FactError> {
        Ok(CronFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            service: outputs.read(SERVICE_PROBE, parse_service_state)?,
        })
    }

    fn plan(_input: &(), facts: &CronFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(CronInstallMilestone::InstallCron);
        for cmd in apt::commands_to_install_all(&[DebianPackage::from_static(CRON_PACKAGE)], &facts.packages, false) {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(CronInstallMilestone::EnableCron);
        if !facts.service.is_enabled_and_active() {
            steps.run(Cmd::new("systemctl").lit("enable").lit("--now").lit(CRON_PACKAGE));
        }

        plan.milestone(CronInstallMilestone::Complete).persist(Record::new(
            Cron::TYPE.as_str(),
            Cron::NAME.as_str(),
            DISTRO_VERSION,
        ));
        Ok(plan.finish())
    }
}

//! The registry: every operation this crate implements, with its package's name, type
//! and scope and its milestone labels, for the UI (which lists steps before they run)
//! and for the tests that check the framework's invariants over all of them.

use brokeforge_core::Milestone;
use serde::Serialize;

use crate::composer::ComposerInstall;
use crate::cron::CronInstall;
use crate::firewall::{FirewallInstall, FirewallRuleInstall, FirewallRuleRemove};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::{PackageName, PackageType};
use crate::nginx::{NginxInstall, NginxRemove};
use crate::nodejs::NodeJsInstall;
use crate::php::extension::{PhpExtensionInstall, PhpExtensionRemove};
use crate::php::{PhpCliDefaultInstall, PhpInstall, PhpRemove};
use crate::server_access::ServerAccessRemove;
use crate::site::default_site::DefaultSiteUpdate;
use crate::site::deploy::{SiteDeploy, SiteRollback};
use crate::site::env::EnvFileWrite;
use crate::site::files::{SiteFileDelete, SiteFileWrite};
use crate::site::git::GitKnownHostsInstall;
use crate::site::install::{SiteInstall, SiteRemove};
use crate::site::wordpress::WordPressInstall;
use crate::site_command::SiteCommandRun;
use crate::supervisor::SupervisorInstall;
use crate::time_sync::{TimeSyncInstall, TimeSyncRemove};

/// One milestone of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MilestoneInfo {
    /// The stable key stored with progress events.
    pub key: &'static str,
    /// The text users see.
    pub label: &'static str,
}

/// What the UI needs to know about one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperationInfo {
    pub package_name: PackageName,
    pub package_type: PackageType,
    pub scope: Scope,
    /// The account the operation runs as.
    pub ssh_user: &'static str,
    pub action: Action,
    /// The milestones, in order; their count is the operation's total step count.
    pub milestones: Vec<MilestoneInfo>,
}

impl OperationInfo {
    /// The description of operation `O`.
    pub fn of<O: Operation>() -> Self {
        let scope = <O::Package as Package>::SCOPE;
        OperationInfo {
            package_name: <O::Package as Package>::NAME,
            package_type: <O::Package as Package>::TYPE,
            scope,
            ssh_user: scope.remote_user().as_str(),
            action: O::ACTION,
            milestones: O::Milestone::ALL
                .iter()
                .map(|milestone| MilestoneInfo {
                    key: milestone.key(),
                    label: milestone.label(),
                })
                .collect(),
        }
    }

    /// The number of steps progress events count up to.
    pub fn total_steps(&self) -> usize {
        self.milestones.len()
    }
}

/// Every implemented operation, server packages in provisioning order (removing
/// BrokeForge's own access, the last thing done to a server, last), then site packages.
pub fn operations() -> Vec<OperationInfo> {
    vec![
        OperationInfo::of::<TimeSyncInstall>(),
        OperationInfo::of::<TimeSyncRemove>(),
        OperationInfo::of::<FirewallInstall>(),
        OperationInfo::of::<FirewallRuleInstall>(),
        OperationInfo::of::<FirewallRuleRemove>(),
        OperationInfo::of::<PhpInstall>(),
        OperationInfo::of::<PhpRemove>(),
        OperationInfo::of::<PhpCliDefaultInstall>(),
        OperationInfo::of::<PhpExtensionInstall>(),
        OperationInfo::of::<PhpExtensionRemove>(),
        OperationInfo::of::<NginxInstall>(),
        OperationInfo::of::<NginxRemove>(),
        OperationInfo::of::<CronInstall>(),
        OperationInfo::of::<SupervisorInstall>(),
        OperationInfo::of::<NodeJsInstall>(),
        OperationInfo::of::<ComposerInstall>(),
        OperationInfo::of::<ServerAccessRemove>(),
        OperationInfo::of::<SiteInstall>(),
        OperationInfo::of::<SiteRemove>(),
        OperationInfo::of::<DefaultSiteUpdate>(),
        OperationInfo::of::<WordPressInstall>(),
        OperationInfo::of::<GitKnownHostsInstall>(),
        OperationInfo::of::<SiteDeploy>(),
        OperationInfo::of::<SiteRollback>(),
        OperationInfo::of::<EnvFileWrite>(),
        OperationInfo::of::<SiteFileWrite>(),
        OperationInfo::of::<SiteFileDelete>(),
        OperationInfo::of::<SiteCommandRun>(),
    ]
}

/// What the UI needs to know about one package: its operations' milestones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageInfo {
    pub name: PackageName,
    pub package_type: PackageType,
    pub scope: Scope,
    pub ssh_user: &'static str,
    /// The milestones of installing, if the package can be installed.
    pub install: Option<Vec<MilestoneInfo>>,
    /// The milestones of removing, if the package can be removed.
    pub remove: Option<Vec<MilestoneInfo>>,
    /// The milestones of updating, if the package can be updated.
    pub update: Option<Vec<MilestoneInfo>>,
}

/// Every package with at least one implemented operation, in registry order.
pub fn packages() -> Vec<PackageInfo> {
    let mut packages: Vec<PackageInfo> = Vec::new();
    for operation in operations() {
        let index = match packages
            .iter()
            .position(|package| package.name == operation.package_name)
        {
            Some(index) => index,
            None => {
                packages.push(PackageInfo {
                    name: operation.package_name,
                    package_type: operation.package_type,
                    scope: operation.scope,
                    ssh_user: operation.ssh_user,
                    install: None,
                    remove: None,
                    update: None,
                });
                packages.len() - 1
            }
        };
        let slot = match operation.action {
            Action::Install => &mut packages[index].install,
            Action::Remove => &mut packages[index].remove,
            Action::Update => &mut packages[index].update,
        };
        *slot = Some(operation.milestones);
    }
    packages
}

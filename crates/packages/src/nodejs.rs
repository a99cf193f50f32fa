//! Node.js: one system-wide Node.js with npm, for building sites' front-end assets.
//!
//! By default (no version requested) it comes from the distribution's archive
//! (`nodejs` and `npm`: Node.js 18 on Debian 12 and Ubuntu 24.04, 12 on Ubuntu 22.04).
//! A requested major version the release does not ship comes from NodeSource's
//! repository for that major (its `nodejs` package bundles npm). A server has one
//! Node.js at a time: a requested major older than the installed one is refused, not
//! silently ignored, because apt does not downgrade. Facts: the release, the
//! `nodejs`/`npm` package states and versions, and the NodeSource APT configuration.

use std::fmt;

use brokeforge_core::{Plan, Record};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{FactError, FactProbe, PackageStates, ProbeOutputs, package_states_cmd, parse_package_states};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::os::{OsRelease, UnsupportedOs, os_release_cmd, parse_os_release};
use crate::repository::{
    RepositoryFacts, RepositoryFamily, RepositoryProbeKeys, RepositoryState, ThirdPartyRepository,
};
use crate::templates::TemplateError;
use crate::time_sync::DISTRO_VERSION;

/// A Node.js major version NodeSource publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeMajor {
    Node18,
    Node20,
    Node22,
    Node24,
}

/// Why a number is not a [`NodeMajor`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unsupported Node.js version {0}; choose one of 18, 20, 22, 24")]
pub struct NodeMajorError(u64);

impl NodeMajor {
    /// Every supported major, oldest first.
    pub const ALL: &'static [NodeMajor] = &[
        NodeMajor::Node18,
        NodeMajor::Node20,
        NodeMajor::Node22,
        NodeMajor::Node24,
    ];

    /// The major version number.
    pub const fn number(self) -> u8 {
        match self {
            NodeMajor::Node18 => 18,
            NodeMajor::Node20 => 20,
            NodeMajor::Node22 => 22,
            NodeMajor::Node24 => 24,
        }
    }

    /// NodeSource's repository for this major.
    pub const fn nodesource_uri(self) -> &'static str {
        match self {
            NodeMajor::Node18 => "https://deb.nodesource.com/node_18.x",
            NodeMajor::Node20 => "https://deb.nodesource.com/node_20.x",
            NodeMajor::Node22 => "https://deb.nodesource.com/node_22.x",
            NodeMajor::Node24 => "https://deb.nodesource.com/node_24.x",
        }
    }
}

impl TryFrom<u64> for NodeMajor {
    type Error = NodeMajorError;

    fn try_from(number: u64) -> Result<Self, Self::Error> {
        NodeMajor::ALL
            .iter()
            .copied()
            .find(|major| u64::from(major.number()) == number)
            .ok_or(NodeMajorError(number))
    }
}

impl fmt::Display for NodeMajor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl Serialize for NodeMajor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for NodeMajor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NodeMajor::try_from(u64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Node.js and npm, a server package.
pub struct NodeJs;

impl Package for NodeJs {
    const NAME: PackageName = PackageName::NodeJs;
    const SCOPE: Scope = Scope::Server;
}

/// What installing Node.js needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeJsInstallInput {
    /// The major version to install; `None` takes the distribution's Node.js (or
    /// keeps whatever Node.js is installed).
    #[serde(default)]
    pub version: Option<NodeMajor>,
}

/// What installing Node.js reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeJsFacts {
    pub os: OsRelease,
    /// nodejs, npm, curl and ca-certificates.
    pub packages: PackageStates,
    /// The APT configuration of NodeSource.
    pub repository: RepositoryFacts,
}

/// Why installing Node.js refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum NodeJsInstallError {
    #[error(transparent)]
    UnsupportedOs(#[from] UnsupportedOs),
    #[error(
        "Node.js {installed} is installed, which is newer than the requested {requested}; \
         BrokeForge does not downgrade Node.js. Keep {installed}, or remove Node.js first"
    )]
    WouldDowngrade { installed: u8, requested: NodeMajor },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Probe keys.
const OS_PROBE: &str = "os_release";
const PACKAGES_PROBE: &str = "nodejs_packages";
const REPOSITORY_PROBES: RepositoryProbeKeys = RepositoryProbeKeys {
    source_lines: "nodesource_apt_sources",
    sources_file: "nodesource_repository_file",
    keyrings: "nodesource_repository_keyrings",
};

const NODEJS: &str = "nodejs";
const NPM: &str = "npm";

/// The major version of a Debian package version of Node.js, such as `18` for
/// `18.19.0+dfsg-6~deb12u2` or `22` for `22.11.0-1nodesource1`.
pub fn node_major_of(package_version: &str) -> Option<u8> {
    let without_epoch = package_version
        .split_once(':')
        .map_or(package_version, |(_, rest)| rest);
    let digits: String = without_epoch.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Where Node.js comes from, decided by the facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeSourceChoice {
    /// The installed Node.js already satisfies the request.
    Installed { major: u8, bundles_npm: bool },
    /// The distribution's `nodejs` and `npm`.
    Distribution,
    /// NodeSource's repository for the requested major.
    NodeSource(NodeMajor),
}

milestones! {
    /// Milestones of installing Node.js.
    pub enum NodeJsInstallMilestone {
        PrepareRepository => ("prepare_repository", "Preparing the Node.js package repository"),
        InstallNodejs => ("install_nodejs", "Installing Node.js and npm"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs Node.js and npm.
pub struct NodeJsInstall;

impl Operation for NodeJsInstall {
    type Package = NodeJs;
    const ACTION: Action = Action::Install;
    type Milestone = NodeJsInstallMilestone;
    type Input = NodeJsInstallInput;
    type Facts = NodeJsFacts;
    type Error = NodeJsInstallError;

    fn fact_probes(_input: &NodeJsInstallInput) -> Vec<FactProbe> {
        let mut probes = vec![
            FactProbe::new::<NodeJs>(OS_PROBE, os_release_cmd()),
            FactProbe::new::<NodeJs>(
                PACKAGES_PROBE,
                package_states_cmd(&[NODEJS, NPM, "curl", "ca-certificates"]),
            ),
        ];
        probes.extend(RepositoryFamily::NodeSource.probes::<NodeJs>(REPOSITORY_PROBES));
        probes
    }

    fn parse_facts(_input: &NodeJsInstallInput, outputs: &ProbeOutputs) -> Result<NodeJsFacts, FactError> {
        Ok(NodeJsFacts {
            os: outputs.read(OS_PROBE, parse_os_release)?,
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            repository: RepositoryFamily::NodeSource.parse_facts(REPOSITORY_PROBES, outputs)?,
        })
    }

    fn plan(input: &NodeJsInstallInput, facts: &NodeJsFacts) -> Result<Plan, NodeJsInstallError> {
        let os = facts.os.supported()?;
        let distro_major = os.distro_node_major();
        let installed_version = facts.packages.installed_version(NODEJS);
        let installed = installed_version
            .and_then(node_major_of)
            .map(|major| NodeSourceChoice::Installed {
                major,
                bundles_npm: installed_version.is_some_and(|version| version.contains("nodesource")),
            });
        let choice = match (input.version, installed) {
            (None, Some(installed)) => installed,
            (None, None) => NodeSourceChoice::Distribution,
            (Some(requested), Some(NodeSourceChoice::Installed { major, .. })) if major > requested.number() => {
                return Err(NodeJsInstallError::WouldDowngrade {
                    installed: major,
                    requested,
                });
            }
            (Some(requested), Some(installed @ NodeSourceChoice::Installed { major, .. }))
                if major == requested.number() =>
            {
                installed
            }
            (Some(requested), _) if requested.number() == distro_major => NodeSourceChoice::Distribution,
            (Some(requested), _) => NodeSourceChoice::NodeSource(requested),
        };
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(NodeJsInstallMilestone::PrepareRepository);
        let mut lists_are_fresh = false;
        if let NodeSourceChoice::NodeSource(major) = choice {
            let repository = ThirdPartyRepository::NodeSource(major);
            let state = repository.state(os, &facts.repository)?;
            if matches!(state, RepositoryState::Add { fetch_key: true, .. }) {
                let prerequisites = [
                    DebianPackage::from_static("curl"),
                    DebianPackage::from_static("ca-certificates"),
                ];
                for cmd in apt::commands_to_install_all(&prerequisites, &facts.packages, false) {
                    steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
                }
            }
            lists_are_fresh = state.write_steps(repository, steps);
        }

        let steps = plan.milestone(NodeJsInstallMilestone::InstallNodejs);
        let (major, source) = match choice {
            NodeSourceChoice::Installed { major, bundles_npm } => {
                // The distribution's Node.js ships npm separately.
                if !bundles_npm {
                    for cmd in apt::commands_to_install_all(&[DebianPackage::from_static(NPM)], &facts.packages, false)
                    {
                        steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
                    }
                }
                (major, if bundles_npm { "nodesource" } else { DISTRO_VERSION })
            }
            NodeSourceChoice::Distribution => {
                let wanted = [DebianPackage::from_static(NODEJS), DebianPackage::from_static(NPM)];
                for cmd in apt::commands_to_install_all(&wanted, &facts.packages, false) {
                    steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
                }
                (distro_major, DISTRO_VERSION)
            }
            NodeSourceChoice::NodeSource(major) => {
                // NodeSource's newer nodejs replaces an installed older one (and the
                // distribution's npm, which its nodejs bundles), so it is installed even
                // when some nodejs is.
                if facts.packages.any_interrupted() {
                    steps.run_with_timeout(apt::configure_interrupted(), apt::APT_TIMEOUT);
                }
                if !lists_are_fresh {
                    steps.run_with_timeout(apt::update(), apt::APT_TIMEOUT);
                }
                steps.run_with_timeout(
                    apt::install_all(&[DebianPackage::from_static(NODEJS)]),
                    apt::APT_TIMEOUT,
                );
                (major.number(), "nodesource")
            }
        };

        plan.milestone(NodeJsInstallMilestone::Complete).persist(
            Record::new(NodeJs::TYPE.as_str(), NodeJs::NAME.as_str(), major.to_string())
                .with_configuration(serde_json::json!({ "source": source })),
        );
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_are_read_from_package_versions() {
        assert_eq!(node_major_of("18.19.0+dfsg-6~deb12u2"), Some(18));
        assert_eq!(node_major_of("12.22.9~dfsg-1ubuntu3.6"), Some(12));
        assert_eq!(node_major_of("22.11.0-1nodesource1"), Some(22));
        assert_eq!(node_major_of("1:20.0.0-1"), Some(20));
        assert_eq!(node_major_of("garbage"), None);
    }

    #[test]
    fn versions_are_validated() {
        assert_eq!(serde_json::from_str::<NodeMajor>("22").unwrap(), NodeMajor::Node22);
        assert!(serde_json::from_str::<NodeMajor>("21").is_err());
        assert!(serde_json::from_str::<NodeMajor>("\"22; reboot\"").is_err());
        let input: NodeJsInstallInput = serde_json::from_str("{}").unwrap();
        assert_eq!(input.version, None);
        assert_eq!(
            NodeMajor::try_from(16).unwrap_err().to_string(),
            "unsupported Node.js version 16; choose one of 18, 20, 22, 24"
        );
    }
}

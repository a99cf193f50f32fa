//! PHP: versions with FPM and the common extensions, the version the `php` command
//! runs, and single extensions ([`extension`]).
//!
//! Installing a version takes the distribution's own packages when its release ships
//! that version (Debian 12: 8.2, Ubuntu 22.04: 8.1, Ubuntu 24.04: 8.3) and otherwise
//! adds the PHP repository of its distribution (sury on Debian, the ondrej/php PPA on
//! Ubuntu; see [`crate::repository`]). It installs `phpX.Y-fpm`, `phpX.Y-cli` and the
//! common extensions, writes BrokeForge's FPM settings as a file in FPM's `conf.d`
//! (rendered from a template, never edited in place with `sed`), checks FPM's
//! configuration with `php-fpmX.Y -t` before every restart or reload, and records the
//! version. Facts first: a version already installed with current settings and a
//! running FPM gives a plan that changes nothing.
//!
//! Removing a version purges its packages; whether a site still uses it is the
//! application's question, answered from its database before it plans. Setting the
//! command-line default pins the `php` alternative (manual mode), so installing a newer
//! version later does not move it.
//!
//! Records: one `php` record per installed version (`version` = `8.3`), and one
//! `php-cli-default` record whose version is the default.

pub mod cli;
pub mod extension;
pub mod names;

use std::convert::Infallible;

use brokeforge_core::{Cmd, PhpVersion, Plan, Record, UnixUserName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{
    FactError, FactProbe, PackageStates, ProbeOutputs, ServiceState, file_contents_cmd, package_states_cmd,
    parse_file_contents, parse_package_states, parse_service_state, service_state_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::os::{OsRelease, UnsupportedOs, os_release_cmd, parse_os_release};
use crate::repository::{
    RepositoryFacts, RepositoryFamily, RepositoryProbeKeys, RepositoryState, ThirdPartyRepository,
};
use crate::templates::{self, Template, TemplateError};
use crate::time_sync::DISTRO_VERSION;

use self::cli::{AlternativeStatus, PhpAlternatives, parse_php_alternatives, php_alternatives_cmd};
use self::extension::{PhpExtension, common_packages};
use self::names::{cli_binary_path, fpm_binary, fpm_config_path, fpm_service, fpm_unit};

/// One PHP version with FPM and the common extensions, a server package.
pub struct Php;

impl Package for Php {
    const NAME: PackageName = PackageName::Php;
    const SCOPE: Scope = Scope::Server;
}

/// The PHP version the `php` command runs, a server package.
pub struct PhpCliDefault;

impl Package for PhpCliDefault {
    const NAME: PackageName = PackageName::PhpCliDefault;
    const SCOPE: Scope = Scope::Server;
}

/// Why a PHP-FPM setting is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PhpFpmSettingsError {
    #[error("the memory limit must be from {min} to {max} MB")]
    MemoryLimit { min: u32, max: u32 },
    #[error("the upload limit must be from {min} to {max} MB")]
    UploadLimit { min: u32, max: u32 },
    #[error("the maximum execution time must be from {min} to {max} seconds")]
    ExecutionTime { min: u32, max: u32 },
}

/// PHP settings for FPM, each within sensible bounds. Uploads set both
/// `upload_max_filesize` and `post_max_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PhpFpmSettingsFields")]
pub struct PhpFpmSettings {
    memory_limit_mb: u32,
    upload_max_mb: u32,
    max_execution_seconds: u32,
}

/// The fields of [`PhpFpmSettings`] before validation.
#[derive(Deserialize)]
struct PhpFpmSettingsFields {
    memory_limit_mb: u32,
    upload_max_mb: u32,
    max_execution_seconds: u32,
}

impl TryFrom<PhpFpmSettingsFields> for PhpFpmSettings {
    type Error = PhpFpmSettingsError;

    fn try_from(fields: PhpFpmSettingsFields) -> Result<Self, Self::Error> {
        PhpFpmSettings::new(
            fields.memory_limit_mb,
            fields.upload_max_mb,
            fields.max_execution_seconds,
        )
    }
}

impl PhpFpmSettings {
    /// Checks each setting against its bounds.
    pub fn new(
        memory_limit_mb: u32,
        upload_max_mb: u32,
        max_execution_seconds: u32,
    ) -> Result<Self, PhpFpmSettingsError> {
        if !(64..=16384).contains(&memory_limit_mb) {
            return Err(PhpFpmSettingsError::MemoryLimit { min: 64, max: 16384 });
        }
        if !(1..=10240).contains(&upload_max_mb) {
            return Err(PhpFpmSettingsError::UploadLimit { min: 1, max: 10240 });
        }
        if !(1..=3600).contains(&max_execution_seconds) {
            return Err(PhpFpmSettingsError::ExecutionTime { min: 1, max: 3600 });
        }
        Ok(PhpFpmSettings {
            memory_limit_mb,
            upload_max_mb,
            max_execution_seconds,
        })
    }
}

/// 256 MB of memory, 100 MB uploads, 300 seconds per request.
impl Default for PhpFpmSettings {
    fn default() -> Self {
        PhpFpmSettings {
            memory_limit_mb: 256,
            upload_max_mb: 100,
            max_execution_seconds: 300,
        }
    }
}

/// What installing a PHP version needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpInstallInput {
    pub version: PhpVersion,
    /// BrokeForge's FPM settings; the defaults when omitted.
    #[serde(default)]
    pub fpm: PhpFpmSettings,
}

/// What removing a PHP version, or making it the command-line default, needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpVersionInput {
    pub version: PhpVersion,
}

/// Probe keys.
const OS_PROBE: &str = "os_release";
const PACKAGES_PROBE: &str = "php_packages";
const FPM_CONFIG_PROBE: &str = "php_fpm_config";
const FPM_SERVICE_PROBE: &str = "php_fpm_service";
const ALTERNATIVES_PROBE: &str = "php_alternatives";
const REPOSITORY_PROBES: RepositoryProbeKeys = RepositoryProbeKeys {
    source_lines: "php_apt_sources",
    sources_file: "php_repository_file",
    keyrings: "php_repository_keyrings",
};

/// Packages needed to download a repository's key over HTTPS.
const DOWNLOAD_PREREQUISITES: &[&str] = &["curl", "ca-certificates"];

/// What installing a PHP version reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhpInstallFacts {
    pub os: OsRelease,
    /// Every package matching `php*`, and curl and ca-certificates.
    pub packages: PackageStates,
    /// The APT configuration of the PHP repositories.
    pub repository: RepositoryFacts,
    /// The contents of BrokeForge's FPM settings file for this version, if it exists.
    pub fpm_config: Option<String>,
    /// The state of the version's FPM service.
    pub fpm_service: ServiceState,
}

/// Why installing PHP refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum PhpInstallError {
    #[error(transparent)]
    UnsupportedOs(#[from] UnsupportedOs),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Where a PHP version's packages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhpSource {
    /// The release's own archive.
    Distribution,
    /// The distribution's PHP repository.
    Repository(ThirdPartyRepository),
}

impl PhpSource {
    /// The stable name stored in the record: `distro`, `sury` or `ondrej-ppa`.
    pub const fn key(self) -> &'static str {
        match self {
            PhpSource::Distribution => DISTRO_VERSION,
            PhpSource::Repository(repository) => repository.key(),
        }
    }
}

/// The packages an installation of `version` consists of: FPM, the command line and
/// the common extensions.
pub fn version_packages(version: PhpVersion) -> Vec<DebianPackage> {
    let mut packages = vec![names::package(version, "fpm"), names::package(version, "cli")];
    packages.extend(common_packages(version));
    packages
}

/// The template context of [`Template::PhpFpmIni`].
#[derive(Serialize)]
struct FpmIniContext {
    version: PhpVersion,
    memory_limit_mb: u32,
    upload_max_filesize_mb: u32,
    post_max_size_mb: u32,
    max_execution_time: u32,
}

/// BrokeForge's FPM settings file for `input`, as uploaded.
pub fn render_fpm_config(input: &PhpInstallInput) -> Result<Vec<u8>, TemplateError> {
    templates::render(
        Template::PhpFpmIni,
        &FpmIniContext {
            version: input.version,
            memory_limit_mb: input.fpm.memory_limit_mb,
            upload_max_filesize_mb: input.fpm.upload_max_mb,
            post_max_size_mb: input.fpm.upload_max_mb,
            max_execution_time: input.fpm.max_execution_seconds,
        },
    )
}

milestones! {
    /// Milestones of installing a PHP version.
    pub enum PhpInstallMilestone {
        PrepareRepository => ("prepare_repository", "Preparing the PHP package repository"),
        InstallPhp => ("install_php", "Installing PHP, FPM and the common extensions"),
        ConfigureFpm => ("configure_fpm", "Configuring PHP-FPM"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs one PHP version with FPM and the common extensions.
pub struct PhpInstall;

impl Operation for PhpInstall {
    type Package = Php;
    const ACTION: Action = Action::Install;
    type Milestone = PhpInstallMilestone;
    type Input = PhpInstallInput;
    type Facts = PhpInstallFacts;
    type Error = PhpInstallError;

    fn fact_probes(input: &PhpInstallInput) -> Vec<FactProbe> {
        let mut patterns = vec!["php*"];
        patterns.extend_from_slice(DOWNLOAD_PREREQUISITES);
        let mut probes = vec![
            FactProbe::new::<Php>(OS_PROBE, os_release_cmd()),
            FactProbe::new::<Php>(PACKAGES_PROBE, package_states_cmd(&patterns)),
        ];
        probes.extend(RepositoryFamily::Php.probes::<Php>(REPOSITORY_PROBES));
        probes.push(FactProbe::new::<Php>(
            FPM_CONFIG_PROBE,
            file_contents_cmd(&fpm_config_path(input.version)),
        ));
        probes.push(FactProbe::new::<Php>(
            FPM_SERVICE_PROBE,
            service_state_cmd(fpm_unit(input.version)),
        ));
        probes
    }

    fn parse_facts(_input: &PhpInstallInput, outputs: &ProbeOutputs) -> Result<PhpInstallFacts, FactError> {
        Ok(PhpInstallFacts {
            os: outputs.read(OS_PROBE, parse_os_release)?,
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            repository: RepositoryFamily::Php.parse_facts(REPOSITORY_PROBES, outputs)?,
            fpm_config: outputs.read(FPM_CONFIG_PROBE, parse_file_contents)?,
            fpm_service: outputs.read(FPM_SERVICE_PROBE, parse_service_state)?,
        })
    }

    fn plan(input: &PhpInstallInput, facts: &PhpInstallFacts) -> Result<Plan, PhpInstallError> {
        let os = facts.os.supported()?;
        let version = input.version;
        let source = if os.distro_php_version() == version {
            PhpSource::Distribution
        } else {
            PhpSource::Repository(ThirdPartyRepository::php_for(os))
        };
        let wanted = version_packages(version);
        let everything_installed = apt::missing(&wanted, &facts.packages).is_empty();
        let mut plan = Self::plan_writer();

        // The repository matters only while something is left to install from it.
        let steps = plan.milestone(PhpInstallMilestone::PrepareRepository);
        let mut lists_are_fresh = false;
        if let PhpSource::Repository(repository) = source
            && !everything_installed
        {
            let state = repository.state(os, &facts.repository)?;
            if matches!(state, RepositoryState::Add { fetch_key: true, .. }) {
                let prerequisites: Vec<DebianPackage> = DOWNLOAD_PREREQUISITES
                    .iter()
                    .map(|name| DebianPackage::from_static(name))
                    .collect();
                for cmd in apt::commands_to_install_all(&prerequisites, &facts.packages, false) {
                    steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
                }
            }
            lists_are_fresh = state.write_steps(repository, steps);
        }

        let steps = plan.milestone(PhpInstallMilestone::InstallPhp);
        let install = apt::commands_to_install_all(&wanted, &facts.packages, lists_are_fresh);
        let installed_something = !install.is_empty();
        for cmd in install {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(PhpInstallMilestone::ConfigureFpm);
        let desired_config = render_fpm_config(input)?;
        let config_changed = facts.fpm_config.as_deref().map(str::as_bytes) != Some(desired_config.as_slice());
        if config_changed {
            steps.upload(fpm_config_path(version), desired_config, 0o644, Some(root()));
        }
        if !facts.fpm_service.is_enabled() {
            steps.run(Cmd::new("systemctl").lit("enable").arg(fpm_service(version)));
        }
        // A stopped (or just installed) FPM restarts, which also applies the settings;
        // a running one reloads gracefully to load new settings or new extensions.
        // Either way only after its configuration check passes.
        let check = Cmd::new(fpm_binary(version)).lit("-t");
        if !facts.fpm_service.is_active() {
            steps.run(check.and(Cmd::new("systemctl").lit("restart").arg(fpm_service(version))));
        } else if config_changed || installed_something {
            steps.run(check.and(Cmd::new("systemctl").lit("reload").arg(fpm_service(version))));
        }

        let extensions: Vec<PhpExtension> = PhpExtension::COMMON
            .iter()
            .copied()
            .filter(|extension| !extension.is_built_in(version))
            .collect();
        plan.milestone(PhpInstallMilestone::Complete).persist(
            Record::new(Php::TYPE.as_str(), Php::NAME.as_str(), version.as_str()).with_configuration(
                serde_json::json!({
                    "source": source.key(),
                    "fpm_service": fpm_service(version).as_str(),
                    "extensions": extensions,
                    "fpm": input.fpm,
                }),
            ),
        );
        Ok(plan.finish())
    }
}

/// What removing a PHP version reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhpRemoveFacts {
    /// Every package matching `php*`.
    pub packages: PackageStates,
    /// The contents of BrokeForge's FPM settings file for this version, if it exists.
    pub fpm_config: Option<String>,
}

milestones! {
    /// Milestones of removing a PHP version.
    pub enum PhpRemoveMilestone {
        RemovePackages => ("remove_packages", "Removing the PHP packages"),
        RemoveConfiguration => ("remove_configuration", "Removing BrokeForge's PHP-FPM settings"),
        Complete => ("complete", "Complete"),
    }
}

/// Purges every package of one PHP version (FPM, command line, extensions) and
/// BrokeForge's settings file. The application checks beforehand that no site uses
/// the version, and deletes the version's record once the plan succeeded. If the
/// version was the command-line default, `php` falls back to the highest remaining
/// version (the alternative returns to automatic mode).
pub struct PhpRemove;

impl Operation for PhpRemove {
    type Package = Php;
    const ACTION: Action = Action::Remove;
    type Milestone = PhpRemoveMilestone;
    type Input = PhpVersionInput;
    type Facts = PhpRemoveFacts;
    type Error = Infallible;

    fn fact_probes(input: &PhpVersionInput) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<Php>(PACKAGES_PROBE, package_states_cmd(&["php*"])),
            FactProbe::new::<Php>(FPM_CONFIG_PROBE, file_contents_cmd(&fpm_config_path(input.version))),
        ]
    }

    fn parse_facts(_input: &PhpVersionInput, outputs: &ProbeOutputs) -> Result<PhpRemoveFacts, FactError> {
        Ok(PhpRemoveFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            fpm_config: outputs.read(FPM_CONFIG_PROBE, parse_file_contents)?,
        })
    }

    fn plan(input: &PhpVersionInput, facts: &PhpRemoveFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(PhpRemoveMilestone::RemovePackages);
        let present: Vec<DebianPackage> = facts
            .packages
            .present()
            .filter(|package| names::belongs_to(package, input.version))
            .map(|package| DebianPackage::new(package).expect("dpkg lists valid package names"))
            .collect();
        if !present.is_empty() {
            steps.run_with_timeout(apt::purge_all(&present), apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(PhpRemoveMilestone::RemoveConfiguration);
        if facts.fpm_config.is_some() {
            steps.run(Cmd::new("rm").lit("-f").lit("--").arg(fpm_config_path(input.version)));
        }

        plan.milestone(PhpRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

/// Why setting the command-line default refuses to plan.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PhpCliDefaultRefusal {
    #[error("PHP {version} is not installed on this server; install it before making it the default")]
    NotInstalled { version: PhpVersion },
}

milestones! {
    /// Milestones of setting the command-line default.
    pub enum PhpCliDefaultMilestone {
        SetDefault => ("set_default", "Setting the default PHP version"),
        Complete => ("complete", "Complete"),
    }
}

/// Makes `php` run one installed version, pinned so later installations keep it.
pub struct PhpCliDefaultInstall;

impl Operation for PhpCliDefaultInstall {
    type Package = PhpCliDefault;
    const ACTION: Action = Action::Install;
    type Milestone = PhpCliDefaultMilestone;
    type Input = PhpVersionInput;
    type Facts = PhpAlternatives;
    type Error = PhpCliDefaultRefusal;

    fn fact_probes(_input: &PhpVersionInput) -> Vec<FactProbe> {
        vec![FactProbe::new::<PhpCliDefault>(
            ALTERNATIVES_PROBE,
            php_alternatives_cmd(),
        )]
    }

    fn parse_facts(_input: &PhpVersionInput, outputs: &ProbeOutputs) -> Result<PhpAlternatives, FactError> {
        outputs.read(ALTERNATIVES_PROBE, parse_php_alternatives)
    }

    fn plan(input: &PhpVersionInput, facts: &PhpAlternatives) -> Result<Plan, PhpCliDefaultRefusal> {
        let version = input.version;
        if !facts.offers(version) {
            return Err(PhpCliDefaultRefusal::NotInstalled { version });
        }
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(PhpCliDefaultMilestone::SetDefault);
        if facts.current_version() != Some(version) || facts.status != Some(AlternativeStatus::Manual) {
            steps.run(
                Cmd::new("update-alternatives")
                    .lit("--set")
                    .lit("php")
                    .arg(cli_binary_path(version)),
            );
        }
        plan.milestone(PhpCliDefaultMilestone::Complete).persist(Record::new(
            PhpCliDefault::TYPE.as_str(),
            PhpCliDefault::NAME.as_str(),
            version.as_str(),
        ));
        Ok(plan.finish())
    }
}

fn root() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpm_settings_are_bounded() {
        assert_eq!(PhpFpmSettings::new(256, 100, 300).unwrap(), PhpFpmSettings::default());
        assert!(PhpFpmSettings::new(32, 100, 300).is_err());
        assert!(PhpFpmSettings::new(256, 0, 300).is_err());
        assert!(PhpFpmSettings::new(256, 100, 0).is_err());
        let input: PhpInstallInput = serde_json::from_str(r#"{"version":"8.3"}"#).unwrap();
        assert_eq!(input.fpm, PhpFpmSettings::default());
        let error = serde_json::from_str::<PhpInstallInput>(
            r#"{"version":"8.3","fpm":{"memory_limit_mb":1,"upload_max_mb":100,"max_execution_seconds":300}}"#,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the memory limit must be from 64 to 16384 MB"),
            "{error}"
        );
    }
}

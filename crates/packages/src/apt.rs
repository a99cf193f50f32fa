//! Debian package commands as every package uses them: non-interactive, waiting for
//! the dpkg lock (fresh cloud servers run unattended-upgrades at first boot) instead of
//! failing at once, and with a timeout long enough for slow mirrors.

use std::fmt;
use std::time::Duration;

use brokeforge_core::{Cmd, ShellArg};
use serde::{Serialize, Serializer};
use thiserror::Error;

use crate::facts::{DpkgState, PackageStates};

/// Why a text is not a [`DebianPackage`] name.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "{0:?} is not a Debian package name: use lowercase letters, digits, '+', '-' and '.', \
     starting with a letter or digit, at least two characters"
)]
pub struct DebianPackageError(String);

/// A Debian package name as Debian policy allows it (`[a-z0-9][a-z0-9+.-]+`), such as
/// `php8.3-fpm`. It cannot start with `-`, so it is never read as an option.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DebianPackage(String);

impl DebianPackage {
    /// Checks that `name` is a package name.
    pub fn new(name: impl Into<String>) -> Result<Self, DebianPackageError> {
        let name = name.into();
        let mut characters = name.chars();
        let valid = characters
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
            && name.len() >= 2
            && characters.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
        if valid {
            Ok(DebianPackage(name))
        } else {
            Err(DebianPackageError(name))
        }
    }

    /// A name written by a developer.
    ///
    /// # Panics
    ///
    /// Panics if `name` is not a package name, a programming error.
    pub fn from_static(name: &'static str) -> Self {
        DebianPackage::new(name).expect("a valid Debian package name")
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DebianPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DebianPackage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl From<&DebianPackage> for ShellArg {
    fn from(package: &DebianPackage) -> ShellArg {
        ShellArg::new(package.0.as_str()).expect("package names hold no NUL byte")
    }
}

/// How long an apt command may run: up to five minutes of waiting for the dpkg lock,
/// then the download and the installation.
pub const APT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `apt-get` with no prompts, waiting up to 300 s for the dpkg lock.
pub fn apt_get() -> Cmd {
    Cmd::new("apt-get")
        .env(
            "DEBIAN_FRONTEND",
            ShellArg::new("noninteractive").expect("a literal without NUL"),
        )
        .lit("-o")
        .lit("DPkg::Lock::Timeout=300")
        .lit("-q")
}

/// Refreshes the package lists.
pub fn update() -> Cmd {
    apt_get().lit("update")
}

/// Installs `package` without its recommended packages, keeping configuration files
/// the administrator changed.
pub fn install(package: &'static str) -> Cmd {
    install_command().lit(package)
}

/// `apt-get install` up to the package names. Recommended packages are left out: on
/// Debian they would bring a mail server with cron and compilers, Mesa and a terminal
/// emulator with npm. What a package needs beyond its dependencies is named outright.
fn install_command() -> Cmd {
    apt_get()
        .lit("-o")
        .lit("Dpkg::Options::=--force-confold")
        .lit("install")
        .lit("-y")
        .lit("--no-install-recommends")
        .lit("--")
}

/// Removes `package` and its configuration files.
pub fn purge(package: &'static str) -> Cmd {
    apt_get().lit("purge").lit("-y").lit("--").lit(package)
}

/// Installs every package of `packages` in one transaction, without their
/// recommended packages, keeping configuration files the administrator changed.
///
/// # Panics
///
/// Panics if `packages` is empty, a programming error.
pub fn install_all(packages: &[DebianPackage]) -> Cmd {
    assert!(!packages.is_empty(), "install at least one package");
    packages.iter().fold(install_command(), |cmd, package| cmd.arg(package))
}

/// Removes every package of `packages` and their configuration files.
///
/// # Panics
///
/// Panics if `packages` is empty, a programming error.
pub fn purge_all(packages: &[DebianPackage]) -> Cmd {
    assert!(!packages.is_empty(), "purge at least one package");
    let cmd = apt_get().lit("purge").lit("-y").lit("--");
    packages.iter().fold(cmd, |cmd, package| cmd.arg(package))
}

/// The packages of `wanted` that are not installed, in the order given.
pub fn missing(wanted: &[DebianPackage], states: &PackageStates) -> Vec<DebianPackage> {
    wanted
        .iter()
        .filter(|package| !states.is_installed(package.as_str()))
        .cloned()
        .collect()
}

/// The commands that install every package of `wanted` that `states` shows is not
/// installed: nothing when all are; otherwise finishing interrupted installations when
/// some package stopped halfway, refreshing the package lists unless
/// `lists_are_fresh` (a repository was just added and refreshed), and one install.
pub fn commands_to_install_all(wanted: &[DebianPackage], states: &PackageStates, lists_are_fresh: bool) -> Vec<Cmd> {
    let missing = missing(wanted, states);
    if missing.is_empty() {
        return Vec::new();
    }
    let mut commands = Vec::new();
    if states.any_interrupted() {
        commands.push(configure_interrupted());
    }
    if !lists_are_fresh {
        commands.push(update());
    }
    commands.push(install_all(&missing));
    commands
}

/// Finishes package installations that were interrupted.
pub fn configure_interrupted() -> Cmd {
    Cmd::new("dpkg")
        .env(
            "DEBIAN_FRONTEND",
            ShellArg::new("noninteractive").expect("a literal without NUL"),
        )
        .lit("--configure")
        .lit("-a")
}

/// The commands that bring `package` from `state` to installed: nothing when it is
/// installed; otherwise finishing interrupted installations when needed, refreshing
/// the package lists and installing.
pub fn commands_to_install(package: &'static str, state: &DpkgState) -> Vec<Cmd> {
    match state {
        DpkgState::Installed => Vec::new(),
        DpkgState::Interrupted { .. } => vec![configure_interrupted(), update(), install(package)],
        DpkgState::NotInstalled | DpkgState::ConfigFilesOnly => vec![update(), install(package)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::PackageState;

    #[test]
    fn package_names_are_validated() {
        assert_eq!(DebianPackage::new("php8.3-fpm").unwrap().as_str(), "php8.3-fpm");
        assert!(DebianPackage::new("libstdc++6").is_ok());
        for bad in [
            "",
            "a",
            "-y",
            "PHP",
            "php 8",
            "php;reboot",
            "php$(id)",
            "php\n",
            ".hidden",
        ] {
            assert!(DebianPackage::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DebianPackage::new("-o").unwrap_err().to_string(),
            "\"-o\" is not a Debian package name: use lowercase letters, digits, '+', '-' and '.', \
             starting with a letter or digit, at least two characters"
        );
    }

    #[test]
    fn several_packages_install_in_one_transaction() {
        let wanted = [DebianPackage::from_static("cron"), DebianPackage::from_static("curl")];
        let installed = PackageState {
            state: DpkgState::Installed,
            version: Some("7.88.1-10+deb12u15".to_owned()),
        };
        let states = PackageStates::from_states([("curl", installed)]);
        let commands: Vec<String> = commands_to_install_all(&wanted, &states, false)
            .iter()
            .map(Cmd::to_string)
            .collect();
        assert_eq!(
            commands,
            [
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q update",
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q \
                 -o Dpkg::Options::=--force-confold install -y --no-install-recommends -- cron"
            ]
        );
        assert_eq!(commands_to_install_all(&wanted, &states, true).len(), 1);
        assert_eq!(
            purge_all(&wanted).to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q purge -y -- cron curl"
        );
    }

    #[test]
    fn apt_commands_wait_for_the_lock_and_never_prompt() {
        assert_eq!(
            install("ufw").to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q \
             -o Dpkg::Options::=--force-confold install -y --no-install-recommends -- ufw"
        );
        assert_eq!(
            purge("ufw").to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q purge -y -- ufw"
        );
        assert!(commands_to_install("ufw", &DpkgState::Installed).is_empty());
        assert_eq!(commands_to_install("ufw", &DpkgState::NotInstalled).len(), 2);
        let interrupted = DpkgState::Interrupted {
            status: "unpacked".to_owned(),
        };
        assert_eq!(
            commands_to_install("ufw", &interrupted)[0].to_string(),
            "DEBIAN_FRONTEND=noninteractive dpkg --configure -a"
        );
    }
}

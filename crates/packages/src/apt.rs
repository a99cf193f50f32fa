//! Debian package commands as every package uses them: non-interactive, waiting for
//! the dpkg lock (fresh cloud servers run unattended-upgrades at first boot) instead of
//! failing at once, and with a timeout long enough for slow mirrors.

use std::time::Duration;

use brokeforge_core::{Cmd, ShellArg};

use crate::facts::DpkgState;

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

/// Installs `package`, keeping configuration files the administrator changed.
pub fn install(package: &'static str) -> Cmd {
    apt_get()
        .lit("-o")
        .lit("Dpkg::Options::=--force-confold")
        .lit("install")
        .lit("-y")
        .lit("--")
        .lit(package)
}

/// Removes `package` and its configuration files.
pub fn purge(package: &'static str) -> Cmd {
    apt_get().lit("purge").lit("-y").lit("--").lit(package)
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

    #[test]
    fn apt_commands_wait_for_the_lock_and_never_prompt() {
        assert_eq!(
            install("ufw").to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q \
             -o Dpkg::Options::=--force-confold install -y -- ufw"
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

//! TimeSync: fact parsing from outputs captured on Debian 12, and plan snapshots for
//! every starting state.

mod common;

use brokeforge_core::Domain;
use brokeforge_packages::time_sync::{
    NtpServers, NtpState, TimeSyncFacts, TimeSyncInstall, TimeSyncInstallInput, TimeSyncRemove,
};
use brokeforge_packages::{DpkgState, Operation, ProbeOutput};
use common::{check_plan, outputs_for, probe_text};

const DPKG_INSTALLED: &str = "install ok installed";
const DPKG_NOT_INSTALLED: &str = "unknown ok not-installed";
const TIMEDATECTL_WITHOUT_SYSTEMD: &str = "System has not been booted with systemd as init system (PID 1). \
                                           Can't operate.\nFailed to connect to bus: Host is down\n";
const CAT_MISSING: &str = "cat: /etc/systemd/timesyncd.conf.d/brokeforge.conf: No such file or directory\n";
const CONFIG: &str = "# Written by BrokeForge: the next time-sync installation replaces this file.\n\
                      # systemd-timesyncd reads it after /etc/systemd/timesyncd.conf.\n\
                      [Time]\n\
                      NTP=time.cloudflare.com 0.debian.pool.ntp.org\n";

fn servers(names: &[&str]) -> Option<NtpServers> {
    let domains = names.iter().map(|name| name.parse::<Domain>().unwrap()).collect();
    Some(NtpServers::new(domains).unwrap())
}

fn with_servers() -> TimeSyncInstallInput {
    TimeSyncInstallInput {
        ntp_servers: servers(&["time.cloudflare.com", "0.debian.pool.ntp.org"]),
    }
}

fn absent() -> TimeSyncFacts {
    TimeSyncFacts {
        package: DpkgState::NotInstalled,
        ntp: NtpState::Disabled,
        config_file: None,
    }
}

fn present(config_file: Option<&str>) -> TimeSyncFacts {
    TimeSyncFacts {
        package: DpkgState::Installed,
        ntp: NtpState::Enabled,
        config_file: config_file.map(str::to_owned),
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<TimeSyncInstall>(&with_servers()), @r"
    timesyncd_package: root$ dpkg-query -W -f '${Status}' systemd-timesyncd
    timesyncd_ntp: root$ timedatectl show -p NTP --value
    timesyncd_config: root$ cat -- /etc/systemd/timesyncd.conf.d/brokeforge.conf
    ");
    assert_eq!(
        probe_text::<TimeSyncRemove>(&()),
        probe_text::<TimeSyncInstall>(&with_servers())
    );
}

#[test]
fn facts_of_a_fresh_debian_12_server() {
    let input = TimeSyncInstallInput::default();
    let outputs = outputs_for::<TimeSyncInstall>(
        &input,
        vec![
            ProbeOutput::success(DPKG_NOT_INSTALLED),
            ProbeOutput::success("no\n"),
            ProbeOutput::new(1, "", CAT_MISSING),
        ],
    );
    assert_eq!(TimeSyncInstall::parse_facts(&input, &outputs).unwrap(), absent());
}

#[test]
fn facts_of_a_synchronized_server() {
    let input = TimeSyncInstallInput::default();
    let outputs = outputs_for::<TimeSyncInstall>(
        &input,
        vec![
            ProbeOutput::success(DPKG_INSTALLED),
            ProbeOutput::success("yes\n"),
            ProbeOutput::success(CONFIG),
        ],
    );
    assert_eq!(
        TimeSyncInstall::parse_facts(&input, &outputs).unwrap(),
        present(Some(CONFIG))
    );
}

#[test]
fn facts_without_systemd_say_why_ntp_is_unavailable() {
    let outputs = outputs_for::<TimeSyncRemove>(
        &(),
        vec![
            ProbeOutput::new(1, "", "dpkg-query: no packages found matching systemd-timesyncd\n"),
            ProbeOutput::new(1, "", TIMEDATECTL_WITHOUT_SYSTEMD),
            ProbeOutput::new(1, "", CAT_MISSING),
        ],
    );
    let facts = TimeSyncRemove::parse_facts(&(), &outputs).unwrap();
    assert_eq!(
        facts.ntp,
        NtpState::Unavailable {
            reason: "System has not been booted with systemd as init system (PID 1). Can't operate.".to_owned()
        }
    );
    assert_eq!(facts.package, DpkgState::NotInstalled);
}

#[test]
fn unreadable_facts_are_errors_that_say_which_probe() {
    let outputs = outputs_for::<TimeSyncRemove>(
        &(),
        vec![
            ProbeOutput::success(DPKG_INSTALLED),
            ProbeOutput::success("maybe\n"),
            ProbeOutput::new(
                1,
                "",
                "cat: /etc/systemd/timesyncd.conf.d/brokeforge.conf: Permission denied\n",
            ),
        ],
    );
    insta::assert_snapshot!(
        TimeSyncRemove::parse_facts(&(), &outputs).unwrap_err(),
        @r#"cannot read "timesyncd_ntp" from the server: expected yes or no, got "maybe" (exit code 0)"#
    );
}

#[test]
fn install_when_absent() {
    insta::assert_snapshot!(check_plan::<TimeSyncInstall>(&with_servers(), &absent()));
}

#[test]
fn install_when_absent_keeping_the_distribution_servers() {
    insta::assert_snapshot!(check_plan::<TimeSyncInstall>(
        &TimeSyncInstallInput::default(),
        &absent()
    ));
}

#[test]
fn install_when_present_changes_nothing() {
    insta::assert_snapshot!(check_plan::<TimeSyncInstall>(&with_servers(), &present(Some(CONFIG))));
    insta::assert_snapshot!(
        "install_when_present_without_servers_changes_nothing",
        check_plan::<TimeSyncInstall>(&TimeSyncInstallInput::default(), &present(None))
    );
}

#[test]
fn install_after_an_interrupted_installation_with_other_servers() {
    let facts = TimeSyncFacts {
        package: DpkgState::Interrupted {
            status: "half-configured".to_owned(),
        },
        ntp: NtpState::Unavailable {
            reason: "Failed to connect to bus: No such file or directory".to_owned(),
        },
        config_file: Some(CONFIG.to_owned()),
    };
    let input = TimeSyncInstallInput {
        ntp_servers: servers(&["ntp.ubuntu.com"]),
    };
    insta::assert_snapshot!(check_plan::<TimeSyncInstall>(&input, &facts));
}

#[test]
fn install_without_servers_removes_brokeforge_configuration() {
    insta::assert_snapshot!(check_plan::<TimeSyncInstall>(
        &TimeSyncInstallInput::default(),
        &present(Some(CONFIG))
    ));
}

#[test]
fn remove_when_present() {
    insta::assert_snapshot!(check_plan::<TimeSyncRemove>(&(), &present(Some(CONFIG))));
}

#[test]
fn remove_when_absent_changes_nothing() {
    insta::assert_snapshot!(check_plan::<TimeSyncRemove>(&(), &absent()));
}

#[test]
fn remove_leaves_another_ntp_service_enabled() {
    let facts = TimeSyncFacts {
        package: DpkgState::ConfigFilesOnly,
        ntp: NtpState::Enabled,
        config_file: None,
    };
    insta::assert_snapshot!(check_plan::<TimeSyncRemove>(&(), &facts));
}

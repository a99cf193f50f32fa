//! Cron and Supervisor, the scheduler's and the workers' prerequisites: plan snapshots
//! for fresh and provisioned servers, a stopped service, a missing include directory,
//! and a `supervisord.conf` that no longer includes it.

mod common;

use brokeforge_packages::cron::{CronFacts, CronInstall};
use brokeforge_packages::supervisor::{SupervisorFacts, SupervisorInstall};
use brokeforge_packages::{Operation, ProbeOutput, dry_run};
use common::outputs::{cat_missing, stat_missing, unit_not_found, unit_running, unit_stopped_and_disabled};
use common::{check_plan, fixture, outputs_for, probe_text};

fn cron_facts(packages: ProbeOutput, service: ProbeOutput) -> CronFacts {
    CronInstall::parse_facts(&(), &outputs_for::<CronInstall>(&(), vec![packages, service])).unwrap()
}

#[test]
fn cron_probes() {
    insta::assert_snapshot!(probe_text::<CronInstall>(&()), @r"
    cron_package: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' cron
    cron_service: root$ systemctl show -p LoadState -p ActiveState -p UnitFileState -- cron.service
    ");
}

#[test]
fn cron_install_when_absent() {
    // Debian 12's minimal cloud images know cron but do not install it.
    let facts = cron_facts(
        ProbeOutput::success("cron  unknown ok not-installed\n"),
        unit_not_found(),
    );
    insta::assert_snapshot!(check_plan::<CronInstall>(&(), &facts));
}

#[test]
fn cron_install_when_present_changes_nothing() {
    let facts = cron_facts(
        ProbeOutput::success("cron 3.0pl1-162 install ok installed\n"),
        unit_running(),
    );
    assert!(dry_run::<CronInstall>(&(), &facts).unwrap().changes_nothing);
    insta::assert_snapshot!(check_plan::<CronInstall>(&(), &facts));
}

#[test]
fn cron_install_enables_a_stopped_cron() {
    let facts = cron_facts(
        ProbeOutput::success("cron 3.0pl1-162 install ok installed\n"),
        unit_stopped_and_disabled(),
    );
    let plan = check_plan::<CronInstall>(&(), &facts);
    assert!(plan.contains("root$ systemctl enable --now cron\n"), "{plan}");
    assert!(!plan.contains("apt-get"), "{plan}");
}

fn supervisor_facts(
    packages: ProbeOutput,
    service: ProbeOutput,
    config: ProbeOutput,
    directory: ProbeOutput,
) -> SupervisorFacts {
    let outputs = outputs_for::<SupervisorInstall>(&(), vec![packages, service, config, directory]);
    SupervisorInstall::parse_facts(&(), &outputs).unwrap()
}

fn supervisor_installed() -> ProbeOutput {
    ProbeOutput::success("supervisor 4.2.5-1 install ok installed\n")
}

#[test]
fn supervisor_probes() {
    insta::assert_snapshot!(probe_text::<SupervisorInstall>(&()), @r"
    supervisor_package: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' supervisor
    supervisor_service: root$ systemctl show -p LoadState -p ActiveState -p UnitFileState -- supervisor.service
    supervisor_main_config: root$ cat -- /etc/supervisor/supervisord.conf
    supervisor_include_directory: root$ stat --printf '%n %F\n' -- /etc/supervisor/conf.d
    ");
}

#[test]
fn supervisor_install_when_absent() {
    let facts = supervisor_facts(
        ProbeOutput::new(1, "", "dpkg-query: no packages found matching supervisor\n"),
        unit_not_found(),
        cat_missing("/etc/supervisor/supervisord.conf"),
        stat_missing(&["/etc/supervisor/conf.d"]),
    );
    insta::assert_snapshot!(check_plan::<SupervisorInstall>(&(), &facts));
}

#[test]
fn supervisor_install_when_present_changes_nothing() {
    let facts = supervisor_facts(
        supervisor_installed(),
        unit_running(),
        ProbeOutput::success(fixture("supervisord-debian-12.conf")),
        ProbeOutput::success("/etc/supervisor/conf.d directory\n"),
    );
    assert!(dry_run::<SupervisorInstall>(&(), &facts).unwrap().changes_nothing);
    insta::assert_snapshot!(check_plan::<SupervisorInstall>(&(), &facts));
}

#[test]
fn supervisor_install_recreates_a_missing_program_directory() {
    let facts = supervisor_facts(
        supervisor_installed(),
        unit_stopped_and_disabled(),
        ProbeOutput::success(fixture("supervisord-debian-12.conf")),
        stat_missing(&["/etc/supervisor/conf.d"]),
    );
    insta::assert_snapshot!(check_plan::<SupervisorInstall>(&(), &facts));
}

#[test]
fn supervisor_without_its_include_is_refused() {
    let config = fixture("supervisord-debian-12.conf").replace("files = /etc/supervisor/conf.d/*.conf", ";files =");
    let facts = supervisor_facts(
        supervisor_installed(),
        unit_running(),
        ProbeOutput::success(config),
        ProbeOutput::success("/etc/supervisor/conf.d directory\n"),
    );
    insta::assert_snapshot!(SupervisorInstall::plan(&(), &facts).unwrap_err(), @"/etc/supervisor/supervisord.conf does not include /etc/supervisor/conf.d/*.conf, so workers BrokeForge adds would never run; restore the [include] section (files = /etc/supervisor/conf.d/*.conf) and try again");
}

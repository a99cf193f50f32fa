//! Helpers shared by the package tests: a `check_plan` that asserts the framework's
//! invariants on every plan it is given and returns the dry-run text to snapshot, and
//! helpers that feed captured probe outputs to an operation's parsers.

#![allow(dead_code)]

use std::fmt::Debug;

use brokeforge_core::{Milestone, Step};
use brokeforge_packages::{Operation, Package, ProbeOutput, ProbeOutputs, dry_run};

/// Plans `O`, checks the invariants every plan must keep, and returns the dry-run text.
///
/// Invariants: the plan reaches every milestone of `O::Milestone::ALL` exactly once,
/// in order, numbered 1..=N of N; nothing comes before the first milestone; every
/// command and upload runs as the package's scope user; planning twice gives the same
/// text.
pub fn check_plan<O: Operation>(input: &O::Input, facts: &O::Facts) -> String
where
    O::Error: Debug,
{
    let plan = O::plan(input, facts).expect("the operation plans");
    let all = O::Milestone::ALL;
    let mut reached = Vec::new();
    for (position, step) in plan.steps().iter().enumerate() {
        match step {
            Step::Milestone { key, index, total, .. } => {
                assert_eq!(*total as usize, all.len(), "total of {key}");
                assert_eq!(*index as usize, reached.len() + 1, "index of {key}");
                reached.push(*key);
            }
            Step::Run { as_user, .. } | Step::Upload { as_user, .. } => {
                assert!(position > 0, "a step comes before the first milestone");
                assert_eq!(*as_user, <O::Package as Package>::SCOPE.remote_user());
            }
            Step::Persist(record) => {
                assert_eq!(record.package_type, <O::Package as Package>::TYPE.as_str());
                assert_eq!(record.package_name, <O::Package as Package>::NAME.as_str());
            }
        }
    }
    let expected: Vec<&str> = all.iter().map(|milestone| milestone.key()).collect();
    assert_eq!(reached, expected, "milestones reached");
    assert_eq!(
        O::plan(input, facts).expect("the operation plans").to_string(),
        plan.to_string(),
        "planning is deterministic"
    );
    dry_run::<O>(input, facts).expect("the operation plans").to_string()
}

/// Pairs `outputs`, in the order of `O`'s probes, with the probes' keys.
pub fn outputs_for<O: Operation>(input: &O::Input, outputs: Vec<ProbeOutput>) -> ProbeOutputs {
    let probes = O::fact_probes(input);
    assert_eq!(probes.len(), outputs.len(), "one output per probe");
    probes.iter().map(|probe| probe.key()).zip(outputs).collect()
}

/// The probes of `O`, one per line: `key: user$ command`.
pub fn probe_text<O: Operation>(input: &O::Input) -> String {
    O::fact_probes(input)
        .iter()
        .map(|probe| format!("{}: {}$ {}\n", probe.key(), probe.as_user(), probe.cmd()))
        .collect()
}

/// A captured file from `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

/// Captured outputs shared by the provisioning tests, in the form the supported
/// releases print them.
pub mod outputs {
    use brokeforge_packages::ProbeOutput;

    /// `systemctl show -p LoadState -p ActiveState -p UnitFileState` of a unit whose
    /// package is not installed.
    pub fn unit_not_found() -> ProbeOutput {
        ProbeOutput::success("LoadState=not-found\nActiveState=inactive\nUnitFileState=\n")
    }

    /// The same for a service that starts at boot and runs.
    pub fn unit_running() -> ProbeOutput {
        ProbeOutput::success("LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n")
    }

    /// The same for a service an administrator stopped and disabled.
    pub fn unit_stopped_and_disabled() -> ProbeOutput {
        ProbeOutput::success("LoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n")
    }

    /// `cat` of a file that does not exist.
    pub fn cat_missing(path: &str) -> ProbeOutput {
        ProbeOutput::new(1, "", format!("cat: {path}: No such file or directory\n"))
    }

    /// `stat --printf '%n %F\n'` of paths none of which exist (coreutils 9, which
    /// Debian 12 and Ubuntu 24.04 ship, says "statx").
    pub fn stat_missing(paths: &[&str]) -> ProbeOutput {
        let stderr: String = paths
            .iter()
            .map(|path| format!("stat: cannot statx '{path}': No such file or directory\n"))
            .collect();
        ProbeOutput::new(1, "", stderr)
    }

    /// `grep` that found nothing.
    pub fn grep_nothing() -> ProbeOutput {
        ProbeOutput::new(1, "", "")
    }

    /// `dpkg-query -W ... PATTERN...` on a server where only curl and
    /// ca-certificates among the patterns exist, as on a fresh Debian 12 server.
    pub fn dpkg_fresh_debian_12(unmatched: &[&str]) -> ProbeOutput {
        let stderr: String = unmatched
            .iter()
            .map(|pattern| format!("dpkg-query: no packages found matching {pattern}\n"))
            .collect();
        ProbeOutput::new(
            1,
            "ca-certificates 20230311+deb12u1 install ok installed\ncurl 7.88.1-10+deb12u15 install ok installed\n",
            stderr,
        )
    }

    /// The same on a fresh Ubuntu 24.04 server.
    pub fn dpkg_fresh_ubuntu_24_04(unmatched: &[&str]) -> ProbeOutput {
        let stderr: String = unmatched
            .iter()
            .map(|pattern| format!("dpkg-query: no packages found matching {pattern}\n"))
            .collect();
        ProbeOutput::new(
            1,
            "ca-certificates 20240203 install ok installed\ncurl 8.5.0-2ubuntu10.6 install ok installed\n",
            stderr,
        )
    }

    /// The same on a fresh Ubuntu 22.04 server.
    pub fn dpkg_fresh_ubuntu_22_04(unmatched: &[&str]) -> ProbeOutput {
        let stderr: String = unmatched
            .iter()
            .map(|pattern| format!("dpkg-query: no packages found matching {pattern}\n"))
            .collect();
        ProbeOutput::new(
            1,
            "ca-certificates 20240203~22.04.1 install ok installed\ncurl 7.81.0-1ubuntu1.20 install ok installed\n",
            stderr,
        )
    }
}

/// The `/etc/os-release` fixture of `release`, such as `debian-12`, as a probe output.
pub fn os_release_output(release: &str) -> brokeforge_packages::ProbeOutput {
    brokeforge_packages::ProbeOutput::success(fixture(&format!("os-release-{release}.txt")))
}

/// Temporary directories and real shells for the tests that run planned commands.
pub mod nginx;
pub mod sandbox;

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

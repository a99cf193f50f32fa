//! Dry runs: what an operation would do, as text, without doing it.
//!
//! The API and the CLI show this before a user confirms an operation. The facts come
//! from the operation's read-only probes; the plan text comes from the plan's
//! `Display`, which prints every secret as `***`.

use std::fmt;

use brokeforge_core::Milestone;
use serde::Serialize;

use crate::framework::{Action, Operation, Package};
use crate::names::{PackageName, PackageType};

/// The preview of one operation on one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRun {
    pub package_name: PackageName,
    pub package_type: PackageType,
    pub action: Action,
    /// The account the plan runs as, `root` or `brokeforge`.
    pub ssh_user: &'static str,
    /// The operation's milestone count, which progress events count up to.
    pub total_steps: usize,
    /// True when the plan runs no command and uploads no file: the server is already
    /// as the operation would leave it.
    pub changes_nothing: bool,
    /// The plan, one line per step, secrets masked.
    pub plan_text: String,
}

/// Plans operation `O` and describes the plan without running it.
pub fn dry_run<O: Operation>(input: &O::Input, facts: &O::Facts) -> Result<DryRun, O::Error> {
    let plan = O::plan(input, facts)?;
    let name = <O::Package as Package>::NAME;
    Ok(DryRun {
        package_name: name,
        package_type: name.package_type(),
        action: O::ACTION,
        ssh_user: <O::Package as Package>::SCOPE.remote_user().as_str(),
        total_steps: O::Milestone::ALL.len(),
        changes_nothing: plan.is_noop(),
        plan_text: plan.to_string(),
    })
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.total_steps == 1 { "step" } else { "steps" };
        writeln!(
            f,
            "{} {}/{} as {}, {} {unit}",
            self.action, self.package_type, self.package_name, self.ssh_user, self.total_steps
        )?;
        f.write_str(&self.plan_text)?;
        if self.changes_nothing {
            writeln!(
                f,
                "nothing to change: the server is already in the state this operation leaves it in"
            )?;
        }
        Ok(())
    }
}

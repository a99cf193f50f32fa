//! The package framework: what every package and every operation on it declares.
//!
//! A [`Package`] is a thing BrokeForge manages, with a [`PackageName`], a
//! [`PackageType`] and a [`Scope`] that decides which account runs it over SSH. An
//! [`Operation`] is one [`Action`] on a package (install, remove, update; a
//! single-command executor such as a site command is an install), with its milestone
//! enum, its validated `Input`, the `Facts` it reads from the server, and a pure
//! [`Operation::plan`]. The application layer's `execute()` is the same for every
//! operation:
//!
//! ```text
//! probes  = O::fact_probes(&input)            read-only commands
//! outputs = run each probe over SSH           (application, I/O)
//! facts   = O::parse_facts(&input, &outputs)  pure parsers
//! plan    = O::plan(&input, &facts)           pure: same input, same plan
//! run the plan, one progress event per milestone, records upserted on Persist steps
//! ```
//!
//! Plans are written with a [`PlanWriter`], which makes every plan reach every
//! milestone of its operation exactly once and in order, so the total step count the
//! UI shows always equals the milestone count.

use std::marker::PhantomData;

use brokeforge_core::{Milestone, Plan, PlanBuilder, RemoteUser};

use crate::facts::{FactError, FactProbe, ProbeOutputs};
use crate::names::{PackageName, PackageType};

string_enum! {
    /// Where a package applies. The SSH account follows from it, so no package can
    /// run as an unknown user.
    pub enum Scope ("scope") {
        /// The whole server: runs as `root`.
        Server => "server",
        /// One site: runs as `brokeforge`, the unprivileged owner of sites.
        Site => "site",
    }
}

impl Scope {
    /// The account that runs this scope's commands and uploads.
    pub const fn remote_user(self) -> RemoteUser {
        match self {
            Scope::Server => RemoteUser::Root,
            Scope::Site => RemoteUser::BrokeForge,
        }
    }
}

string_enum! {
    /// What an operation does to its package.
    pub enum Action ("action") {
        /// Puts the package in place (or, for a single-command executor, runs it).
        Install => "install",
        /// Takes the package away.
        Remove => "remove",
        /// Changes an installed package, such as its version.
        Update => "update",
    }
}

impl Action {
    /// The value of the `provision_type` column of progress events.
    pub const fn provision_type(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Remove => "uninstall",
            Action::Update => "update",
        }
    }
}

/// A thing BrokeForge installs on a server or on a site.
pub trait Package {
    /// The package's name.
    const NAME: PackageName;
    /// Server packages run as `root`, site packages as `brokeforge`.
    const SCOPE: Scope;
    /// The package's category, which follows from its name.
    const TYPE: PackageType = Self::NAME.package_type();
}

/// One action on one package: its milestones, input, facts and pure plan.
pub trait Operation {
    /// The package this operation acts on.
    type Package: Package;
    /// What the operation does.
    const ACTION: Action;
    /// The progress points of the operation, in order. Their count is the operation's
    /// total step count.
    type Milestone: Milestone;
    /// The validated values the operation needs, such as the server's SSH port.
    type Input;
    /// What the operation reads from the server before planning.
    type Facts;
    /// Why planning fails: a refusal meant for the user, such as a firewall rule that
    /// would close the SSH port, or a template that did not render. Operations that
    /// cannot fail use [`std::convert::Infallible`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// The read-only commands whose outputs [`Operation::parse_facts`] reads.
    fn fact_probes(input: &Self::Input) -> Vec<FactProbe>;

    /// Turns the outputs of [`Operation::fact_probes`] into facts. Pure.
    fn parse_facts(input: &Self::Input, outputs: &ProbeOutputs) -> Result<Self::Facts, FactError>;

    /// What to do, given the input and the facts. Pure: no I/O, no clock, no
    /// randomness, so the same input and facts always give the same plan.
    fn plan(input: &Self::Input, facts: &Self::Facts) -> Result<Plan, Self::Error>;

    /// A writer for this operation's plan, running as its package's scope user.
    fn plan_writer() -> PlanWriter<Self::Milestone> {
        PlanWriter::new::<Self::Package>()
    }
}

/// Builds a plan that reaches every milestone of `M` exactly once, in the order of
/// `M::ALL`. Steps added after a milestone belong to it.
#[derive(Debug)]
pub struct PlanWriter<M: Milestone> {
    builder: PlanBuilder,
    reached: usize,
    milestones: PhantomData<M>,
}

impl<M: Milestone> PlanWriter<M> {
    /// Starts a plan whose commands and uploads run as the scope user of package `P`.
    pub fn new<P: Package>() -> Self {
        PlanWriter {
            builder: Plan::builder(P::SCOPE.remote_user()),
            reached: 0,
            milestones: PhantomData,
        }
    }

    /// Marks `milestone` as reached and returns the builder for its steps.
    ///
    /// # Panics
    ///
    /// Panics if `milestone` is not the next one in `M::ALL`, a programming error that
    /// every plan snapshot test would show.
    pub fn milestone(&mut self, milestone: M) -> &mut PlanBuilder {
        let expected = M::ALL.get(self.reached).copied();
        assert!(
            expected == Some(milestone),
            "milestone {:?} reached out of order; the next one is {:?}",
            milestone.key(),
            expected.map(Milestone::key)
        );
        self.reached += 1;
        self.builder.milestone(milestone)
    }

    /// The finished plan.
    ///
    /// # Panics
    ///
    /// Panics if some milestone of `M::ALL` was not reached.
    pub fn finish(self) -> Plan {
        assert!(
            self.reached == M::ALL.len(),
            "the plan stopped after {} of {} milestones; the next one is {:?}",
            self.reached,
            M::ALL.len(),
            M::ALL.get(self.reached).map(|milestone| milestone.key())
        );
        self.builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up site package.
    struct ExamplePackage;

    impl Package for ExamplePackage {
        const NAME: PackageName = PackageName::SiteCommand;
        const SCOPE: Scope = Scope::Site;
    }

    milestones! {
        /// Milestones of a made-up operation.
        pub enum Example {
            First => ("first", "First"),
            Second => ("second", "Second"),
        }
    }

    #[test]
    fn scope_decides_the_remote_user() {
        assert_eq!(Scope::Server.remote_user(), RemoteUser::Root);
        assert_eq!(Scope::Site.remote_user(), RemoteUser::BrokeForge);
        assert_eq!(Action::Remove.provision_type(), "uninstall");
        assert_eq!(Action::Remove.as_str(), "remove");
    }

    #[test]
    fn plan_writer_accepts_milestones_in_order() {
        let mut plan = PlanWriter::<Example>::new::<ExamplePackage>();
        plan.milestone(Example::First);
        plan.milestone(Example::Second);
        let plan = plan.finish();
        assert_eq!(plan.to_string(), "[1/2] First\n[2/2] Second\n");
        assert_eq!(ExamplePackage::TYPE, PackageType::Command);
    }

    #[test]
    #[should_panic(expected = "milestone \"second\" reached out of order; the next one is Some(\"first\")")]
    fn plan_writer_refuses_a_skipped_milestone() {
        let mut plan = PlanWriter::<Example>::new::<ExamplePackage>();
        plan.milestone(Example::Second);
    }

    #[test]
    #[should_panic(expected = "the plan stopped after 1 of 2 milestones")]
    fn plan_writer_refuses_an_unfinished_plan() {
        let mut plan = PlanWriter::<Example>::new::<ExamplePackage>();
        plan.milestone(Example::First);
        let _ = plan.finish();
    }
}

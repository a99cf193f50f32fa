//! BrokeForge's packages as pure plans: every installer, remover and single-command
//! executor, with its milestones, the read-only fact probes it runs first and their
//! parsers, and the configuration templates it renders. Nothing in this crate performs
//! I/O; the application runs the probes and the plans over SSH.
//!
//! Start with [`framework`] (the `Package` and `Operation` traits), then read one
//! package, such as [`time_sync`], end to end.

#[macro_use]
mod macros;

pub mod apt;
pub mod bootstrap;
pub mod composer;
pub mod cron;
pub mod dry_run;
pub mod facts;
pub mod firewall;
pub mod framework;
pub mod names;
pub mod nginx;
pub mod nodejs;
pub mod os;
pub mod php;
pub mod registry;
pub mod repository;
pub mod server_access;
pub mod site;
pub mod site_command;
pub mod ssh_key;
pub mod supervisor;
pub mod templates;
pub mod time_sync;

pub use dry_run::{DryRun, dry_run};
pub use facts::{DpkgState, FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput};
pub use framework::{Action, Operation, Package, PlanWriter, Scope};
pub use names::{PackageName, PackageType, UnknownValue};
pub use registry::{MilestoneInfo, OperationInfo, PackageInfo, operations, packages};
pub use templates::{Template, TemplateError, render};

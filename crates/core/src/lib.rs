//! BrokeForge's pure domain layer: identifiers, validated values, secrets, shell
//! commands and plans. Nothing in this crate performs I/O; adapters (SSH, database,
//! HTTP) live in other crates and depend on this one.

pub mod cmd;
pub mod plan;
pub mod secret;
pub mod values;

pub use cmd::{Cmd, CmdError, ShellArg};
pub use plan::{DEFAULT_RUN_TIMEOUT, FileContents, Milestone, Plan, PlanBuilder, Record, RemoteUser, Step};
pub use secret::{MASK, Secret, scrub};
pub use values::{
    Domain, DomainError, GitBranch, GitBranchError, PhpVersion, PhpVersionError, Port, PortError, RemotePath,
    RemotePathError, UnixUserName, UnixUserNameError,
};

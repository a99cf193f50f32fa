//! BrokeForge's SSH adapter: keys, host-key pinning, a pool of persistent
//! connections, and the executor that carries out a `brokeforge_core::Plan` on a
//! server, reporting each step to an observer.
//!
//! The crate knows SSH and shells, nothing of HTTP or of the database schema: the
//! application layer turns [`PlanObserver`] callbacks into event rows and records.
//!
//! - [`keys`]: ed25519 key pairs generated in memory, private keys parsed from
//!   secrets, host keys compared by key data.
//! - [`pool`]: one connection per (server, user), at most 10 channels each, pinned
//!   host keys, keepalive and reconnection.
//! - [`executor`]: runs plans and single commands, streams scrubbed output.
//! - `runner` (internal): the bash step runner the executor drives on the server.
//! - [`error`]: one error kind per failure, each with a one-line message.

pub mod error;
pub mod executor;
pub mod keys;
pub mod pool;
mod runner;
mod scrub;
mod transport;

pub use error::{ErrorKind, SshError};
pub use executor::{CommandOutput, MilestoneReached, ObserverError, PlanObserver, PlanReport, StepReport, Stream};
pub use keys::{ClientKey, HostKey, KeyPair, generate_keypair};
pub use pool::{HostKeyPolicy, PoolConfig, SshPool, Target};

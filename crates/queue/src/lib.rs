//! A durable job queue on the control plane's own database (SQLite or PostgreSQL).
//!
//! Jobs are rows in the `jobs` table. A worker *claims* a job by taking a lease
//! (an owner and an expiry), renews it with heartbeats while the job runs, and
//! finishes it as succeeded, failed (retried with exponential backoff until
//! `max_attempts`), or cancelled. A worker that dies simply stops renewing: once its
//! lease expires the job is claimed again. An optional *exclusivity key* (for
//! example `server:42`) makes jobs with the same key run one at a time; the others
//! wait in the queue, they do not fail. The database enforces this with a unique
//! partial index, so it holds across any number of worker processes.
//!
//! Delivery is at least once: claims, heartbeats and outcomes are written through
//! the database's relaxed pool (see `Db::relaxed_pool`), so a crash of the database
//! server itself can forget the last moments of them, and a forgotten outcome means
//! the job runs again. Handlers are written to be safe to run twice. Enqueueing is
//! fully durable: an accepted job is never lost.
//!
//! The queue knows nothing about servers or sites: a job is a kind, a JSON payload
//! and a few scheduling fields. Handlers are registered per kind in a [`Registry`].

pub mod backoff;
pub mod job;
pub mod store;
pub mod worker;

pub use backoff::Backoff;
pub use job::{ClaimedJob, JobId, JobRecord, JobState, NewJob};
pub use store::{CancelOutcome, JobFilter, Queue, QueueError};
pub use worker::{JobContext, JobError, Registry, WorkerConfig, WorkerPool};

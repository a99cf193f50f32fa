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

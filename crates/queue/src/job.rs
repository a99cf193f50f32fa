//! The job records the queue stores and hands out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (new, or waiting for a retry's backoff or for its key).
    Queued,
    /// Claimed by a worker that holds a lease.
    Running,
    Succeeded,
    /// Out of attempts, or failed for good.
    Failed,
    Cancelled,
}

impl JobState {
    /// The state's name as stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored state name.
    pub fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// True once the job will not run again on its own.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// Jobs sharing a key never run at the same time (e.g. `server:42`).
    pub exclusivity_key: Option<String>,
    /// What the job is about, for listing (e.g. `server:42`); free text.
    pub subject: Option<String>,
    pub priority: i32,
    pub max_attempts: u32,
    pub timeout: Duration,
    /// Not before this delay from now.
    pub delay: Duration,
}

impl NewJob {
    /// A job of `kind` with `payload`: three attempts, a ten-minute timeout, no key
    /// and normal priority.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            exclusivity_key: None,
            subject: None,
            priority: 0,
            max_attempts: 3,
            timeout: Duration::from_secs(600),
            delay: Duration::ZERO,
        }
    }

    /// Serialises a typed payload.
    pub fn with_payload<T: Serialize>(kind: impl Into<String>, payload: &T) -> Result<NewJob, serde_json::Error> {
        Ok(NewJob::new(kind, serde_json::to_value(payload)?))
    }

    pub fn exclusive(mut self, key: impl Into<String>) -> NewJob {
        self.exclusivity_key = Some(key.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> NewJob {
        self.subject = Some(subject.into());
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> NewJob {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> NewJob {
        self.timeout = timeout;
        self
    }

    pub fn priority(mut self, priority: i32) -> NewJob {
        self.priority = priority;
        self
    }

    pub fn delay(mut self, delay: Duration) -> NewJob {
        self.delay = delay;
        self
    }
}

/// A job as stored, for listing and inspection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub subject: Option<String>,
    pub exclusivity_key: Option<String>,
    pub state: JobState,
    pub priority: i32,
    pub attempts: u32,
    pub max_attempts: u32,
    pub timeout_ms: i64,
    pub run_at_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at_ms: Option<i64>,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// A job a worker has claimed: it holds the lease until it reports an outcome.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub exclusivity_key: Option<String>,
}

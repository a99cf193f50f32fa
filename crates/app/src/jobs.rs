//! The job kinds this control plane runs, registered with the queue's worker pool,
//! and the use cases over jobs as their owners see them. Handlers stay thin: load
//! the target, call the use case, report the outcome.
//!
//! A job belongs to the owner of the server its subject names (`server:42`): every
//! read, cancel and retry goes through that ownership check, so another user's job
//! answers exactly like an unknown one.

use brokeforge_db::Db;
use brokeforge_db::job_listing::{self, OwnedJobRow};
use brokeforge_db::package_events::{self, PackageEventRecord};
use brokeforge_queue::{CancelOutcome, JobId, Queue, Registry};

use crate::auth::{Principal, Scope};
use crate::diagnostics;
use crate::error::AppError;

/// Everything job handlers need from the control plane.
#[derive(Clone)]
pub struct JobEnvironment {
    pub db: Db,
}

/// The registry of every job kind, bound to `environment`. Package operations are
/// registered here as they are added.
pub fn registry(environment: &JobEnvironment) -> Registry {
    let mut registry = Registry::new();
    diagnostics::register(&mut registry, environment);
    registry
}

/// The subject (and exclusivity key) of jobs acting on a server.
pub fn server_subject(server_id: i64) -> String {
    format!("server:{server_id}")
}

/// A page of the caller's jobs, newest first.
pub async fn list(
    db: &Db,
    principal: &Principal,
    server_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<OwnedJobRow>, AppError> {
    principal.require(Scope::Read)?;
    Ok(job_listing::list_for_user(db, principal.user_id, server_id, before, limit).await?)
}

/// One of the caller's jobs; unknown ids and other users' jobs are both "not found".
pub async fn get(db: &Db, principal: &Principal, job_id: i64) -> Result<OwnedJobRow, AppError> {
    principal.require(Scope::Read)?;
    job_listing::find_for_user(db, principal.user_id, job_id)
        .await?
        .ok_or(AppError::NotFound("job"))
}

/// One progress event, as pages and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgressEvent {
    pub id: i64,
    /// Names the execution this event belongs to (increasing); a retry starts a new run.
    pub run: i64,
    pub milestone: String,
    pub current_step: i32,
    pub total_steps: i32,
    pub percentage: i32,
    /// `running`, `success` or `failed`.
    pub status: String,
    /// For a failed step: the masked command, its exit code and the tail of its stderr.
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub stderr_tail: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ProgressEvent {
    pub fn from_record(record: PackageEventRecord) -> ProgressEvent {
        let details = &record.details.0;
        let total = record.total_steps.max(1);
        let percentage = match record.status.as_str() {
            "success" => 100,
            _ => ((record.current_step - 1).max(0) * 100 / total).clamp(0, 100),
        };
        ProgressEvent {
            id: record.id,
            run: details.get("run").and_then(|run| run.as_i64()).unwrap_or(0),
            milestone: record.milestone,
            current_step: record.current_step,
            total_steps: record.total_steps,
            percentage,
            status: record.status,
            command: details
                .get("command")
                .and_then(|value| value.as_str())
                .map(str::to_owned),
            exit_code: details.get("exit_code").and_then(|value| value.as_i64()),
            stderr_tail: details
                .get("stderr_tail")
                .and_then(|value| value.as_str())
                .map(str::to_owned),
            created_at: record.created_at,
        }
    }
}

/// A job's progress events after `after_id`, oldest first. The caller must already
/// have checked that the job is theirs (with [`get`]).
pub async fn events_after(db: &Db, job_id: i64, after_id: i64) -> Result<Vec<ProgressEvent>, AppError> {
    Ok(package_events::list_for_job(db, job_id, after_id)
        .await?
        .into_iter()
        .map(ProgressEvent::from_record)
        .collect())
}

/// The events of a job's latest run only (an earlier, retried run is history).
pub fn latest_run(events: Vec<ProgressEvent>) -> Vec<ProgressEvent> {
    let Some(run) = events.iter().map(|event| event.run).max() else {
        return events;
    };
    events.into_iter().filter(|event| event.run == run).collect()
}

/// Cancels one of the caller's jobs.
pub async fn cancel(queue: &Queue, principal: &Principal, job_id: i64) -> Result<CancelOutcome, AppError> {
    let job = get(queue.db(), principal, job_id).await?;
    principal.require(Scope::Deploy)?;
    let outcome = queue.cancel(JobId(job_id)).await?;
    match outcome {
        CancelOutcome::Cancelled | CancelOutcome::Requested => {
            crate::audit::record(
                queue.db(),
                &principal.actor(),
                "job.cancelled",
                Some(job.server_id),
                Some(&format!("job:{job_id}")),
                &format!("Cancelled job #{job_id} ({}) on \"{}\"", job.kind, job.server_name),
            )
            .await;
            Ok(outcome)
        }
        CancelOutcome::AlreadyFinished(state) => Err(AppError::Conflict(format!(
            "this job already finished ({})",
            state.as_str()
        ))),
        CancelOutcome::NotFound => Err(AppError::NotFound("job")),
    }
}

/// Queues one of the caller's failed or cancelled jobs again.
pub async fn retry(queue: &Queue, principal: &Principal, job_id: i64) -> Result<(), AppError> {
    let job = get(queue.db(), principal, job_id).await?;
    principal.require(Scope::Deploy)?;
    if !queue.retry(JobId(job_id)).await? {
        return Err(AppError::Conflict(
            "only failed or cancelled jobs can be retried".to_owned(),
        ));
    }
    crate::audit::record(
        queue.db(),
        &principal.actor(),
        "job.retried",
        Some(job.server_id),
        Some(&format!("job:{job_id}")),
        &format!("Retried job #{job_id} ({}) on \"{}\"", job.kind, job.server_name),
    )
    .await;
    Ok(())
}

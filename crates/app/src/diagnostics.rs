//! `diagnostics.milestones`: a job that walks a server through N milestones with
//! short pauses, writing one progress event per milestone, and can be told to fail
//! at a step with a given (masked) command, exit code and stderr. It exercises the
//! whole live-progress path (queue, events, SSE, UI, CLI) without SSH, and is what
//! the browser and CLI tests watch.

use std::time::Duration;

use brokeforge_core::scrub;
use brokeforge_db::Db;
use brokeforge_db::package_events::{self, NewPackageEvent};
use brokeforge_queue::{JobContext, JobError, JobId, NewJob, Queue, Registry};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::jobs::{JobEnvironment, server_subject};

/// The job kind's name.
pub const KIND: &str = "diagnostics.milestones";

const MILESTONES: [&str; 8] = [
    "Checking connectivity",
    "Reading the OS release",
    "Measuring disk space",
    "Measuring memory",
    "Checking the clock",
    "Listing open ports",
    "Checking package locks",
    "Collecting load averages",
];

/// The most lines of stderr kept for a failed step.
pub const STDERR_TAIL_LINES: usize = 20;

/// What the caller asks for, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DiagnosticsInput {
    pub steps: Option<serde_json::Value>,
    pub step_ms: Option<serde_json::Value>,
    pub fail_at_step: Option<serde_json::Value>,
    pub fail_command: Option<String>,
    pub fail_exit_code: Option<serde_json::Value>,
    pub fail_stderr: Option<String>,
}

/// A validated diagnostics run; also the job's payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiagnosticsPayload {
    pub server_id: i64,
    pub steps: u32,
    pub step_ms: u64,
    pub fail_at_step: Option<u32>,
    pub fail_command: String,
    pub fail_exit_code: i32,
    pub fail_stderr: String,
}

fn number(value: &Option<serde_json::Value>) -> Option<Result<i64, ()>> {
    match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => None,
        Some(serde_json::Value::String(text)) => Some(text.trim().parse::<i64>().map_err(|_| ())),
        Some(serde_json::Value::Number(number)) => Some(number.as_i64().ok_or(())),
        Some(_) => Some(Err(())),
    }
}

impl DiagnosticsInput {
    /// Validates the input for a run on `server_id`.
    pub fn validate(&self, server_id: i64) -> Result<DiagnosticsPayload, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut range =
            |field: &str, value: &Option<serde_json::Value>, low: i64, high: i64, default: i64| match number(value) {
                None => default,
                Some(Ok(number)) if (low..=high).contains(&number) => number,
                Some(_) => {
                    errors.add(field, format!("Enter a whole number from {low} to {high}."));
                    default
                }
            };
        let steps = range("steps", &self.steps, 1, 20, 5);
        let step_ms = range("step_ms", &self.step_ms, 0, 10_000, 700);
        let fail_at = range("fail_at_step", &self.fail_at_step, 0, 20, 0);
        let exit_code = range("fail_exit_code", &self.fail_exit_code, 1, 255, 1);
        if fail_at > steps {
            errors.add("fail_at_step", "Choose a step within the run, or leave it empty.");
        }
        let command = self.fail_command.as_deref().unwrap_or("").trim().to_owned();
        if command.chars().count() > 500 {
            errors.add("fail_command", "Use at most 500 characters.");
        }
        let stderr = self.fail_stderr.as_deref().unwrap_or("").to_owned();
        if stderr.len() > 16_384 {
            errors.add("fail_stderr", "Use at most 16 KiB.");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(DiagnosticsPayload {
            server_id,
            steps: steps as u32,
            step_ms: step_ms as u64,
            fail_at_step: (fail_at > 0).then_some(fail_at as u32),
            fail_command: if command.is_empty() {
                "df --output=pcent /".to_owned()
            } else {
                command
            },
            fail_exit_code: exit_code as i32,
            fail_stderr: stderr,
        })
    }
}

/// Starts a diagnostics run on one of the caller's servers.
pub async fn start(
    queue: &Queue,
    principal: &Principal,
    server_id: i64,
    input: &DiagnosticsInput,
) -> Result<JobId, AppError> {
    principal.require(Scope::Read)?;
    let server = brokeforge_db::servers::find_owned(queue.db(), principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    principal.require(Scope::Deploy)?;
    let payload = input.validate(server_id).map_err(AppError::Validation)?;
    let job = NewJob::with_payload(KIND, &payload)
        .map_err(AppError::internal)?
        .subject(server_subject(server_id))
        .exclusive(server_subject(server_id))
        .max_attempts(1)
        .timeout(Duration::from_secs(600));
    let job_id = queue.enqueue(job).await?;
    crate::audit::record(
        queue.db(),
        &principal.actor(),
        "job.started",
        Some(server_id),
        Some(&format!("job:{job_id}")),
        &format!("Started diagnostics (job #{job_id}) on \"{}\"", server.name),
    )
    .await;
    Ok(job_id)
}

/// The label of milestone `step` (from 1).
pub fn milestone_label(step: u32) -> String {
    let index = (step as usize - 1) % MILESTONES.len();
    let round = (step as usize - 1) / MILESTONES.len();
    if round == 0 {
        MILESTONES[index].to_owned()
    } else {
        format!("{} (again)", MILESTONES[index])
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct EventWriter<'a> {
    db: &'a Db,
    server_id: i64,
    job_id: i64,
    total: i32,
    /// Names this execution of the job, so a retried job's new events start a new list.
    run: i64,
}

impl EventWriter<'_> {
    async fn write(
        &self,
        milestone: &str,
        step: i32,
        status: &str,
        extra: serde_json::Value,
        error_log: Option<&str>,
    ) -> Result<(), JobError> {
        let mut details = json!({ "run": self.run });
        if let (Some(details), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            details.extend(extra);
        }
        package_events::insert(
            self.db,
            &NewPackageEvent {
                server_id: self.server_id,
                job_id: Some(self.job_id),
                service_type: "diagnostics",
                provision_type: "install",
                milestone,
                current_step: step,
                total_steps: self.total,
                details,
                status,
                error_log,
            },
        )
        .await
        .map_err(|error| JobError::retryable(format!("cannot record progress: {error}")))?;
        Ok(())
    }
}

/// Runs one diagnostics job.
pub async fn run(db: &Db, context: &JobContext, payload: DiagnosticsPayload) -> Result<(), JobError> {
    let server = brokeforge_db::servers::find(db, payload.server_id)
        .await
        .map_err(|error| JobError::retryable(error.to_string()))?
        .ok_or_else(|| JobError::permanent("the server was deleted"))?;
    let total = payload.steps as i32;
    let writer = EventWriter {
        db,
        server_id: server.id,
        job_id: context.id.0,
        total,
        run: brokeforge_db::clock::now_millis(),
    };
    for step in 1..=payload.steps {
        let label = milestone_label(step);
        writer.write(&label, step as i32, "running", json!({}), None).await?;
        tokio::time::sleep(Duration::from_millis(payload.step_ms)).await;
        if payload.fail_at_step == Some(step) {
            let command = scrub(&payload.fail_command, &[]);
            let stderr_tail = tail(&payload.fail_stderr, STDERR_TAIL_LINES);
            writer
                .write(
                    &label,
                    step as i32,
                    "failed",
                    json!({ "command": command, "exit_code": payload.fail_exit_code, "stderr_tail": stderr_tail }),
                    Some(&stderr_tail),
                )
                .await?;
            return Err(JobError::permanent(format!(
                "step {step} of {total} ({label}) failed with exit code {}",
                payload.fail_exit_code
            )));
        }
    }
    writer.write("Finished", total, "success", json!({}), None).await?;
    Ok(())
}

/// Registers the handler.
pub fn register(registry: &mut Registry, environment: &JobEnvironment) {
    let db = environment.db.clone();
    registry.register(KIND, move |context: JobContext, payload: DiagnosticsPayload| {
        let db = db.clone();
        async move { run(&db, &context, payload).await }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_validated_with_defaults() {
        let payload = DiagnosticsInput::default().validate(7).unwrap();
        assert_eq!(payload.steps, 5);
        assert_eq!(payload.fail_at_step, None);
        let bad = DiagnosticsInput {
            steps: Some(json!(0)),
            step_ms: Some(json!("soon")),
            fail_exit_code: Some(json!(300)),
            ..DiagnosticsInput::default()
        };
        let errors = bad.validate(7).unwrap_err();
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            ["fail_exit_code", "step_ms", "steps"]
        );
        let beyond = DiagnosticsInput {
            steps: Some(json!(3)),
            fail_at_step: Some(json!(4)),
            ..DiagnosticsInput::default()
        };
        assert!(beyond.validate(7).unwrap_err().first("fail_at_step").is_some());
    }

    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(milestone_label(1), "Checking connectivity");
        assert_eq!(milestone_label(9), "Checking connectivity (again)");
    }
}

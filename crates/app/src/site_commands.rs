//! Commands a user runs in a site's current release, as brokeforge, with a timeout:
//! one `site.command` job per command, and the history of every run with its exit
//! code and the tail of its output.
//!
//! The job runs the site command package (`SiteCommandRun`) with the site's events,
//! so its page shows the step live and a failure keeps its masked command, exit code
//! and stderr tail. While it runs, the job follows the command's output as the
//! executor reports it and writes the latest tail to the run's row every half
//! second, so the history page shows the output growing from any process; the final
//! tail, the exit code and the status are written when the command ends.
//!
//! The command text is code the user means to run (see the package's documentation);
//! only the owner of the site's server may run one, and it reaches the server as one
//! quoted argument, never through a shell of BrokeForge's own.

use std::sync::Arc;
use std::time::Duration;

use brokeforge_db::site_commands::{self as run_table, CommandRunRecord};
use brokeforge_db::sites::{self as site_table};
use brokeforge_packages::site_command::{CommandTimeout, SiteCommandInput, SiteCommandText};
use brokeforge_queue::{JobContext, JobError, JobId, JobState, NewJob, Queue, Registry};
use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::operations::{EventTarget, OperationEnvironment, OperationError, PackageOperation, PackageOperationPayload};
use crate::output_recording::{OutputRecording, Recorded, TailWriter};
use crate::sites::{owned_site_and_server, sentence};

/// The job kind of site commands.
pub const COMMAND_KIND: &str = "site.command";

/// The payload of a `site.command` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandPayload {
    pub server_id: i64,
    pub site_id: i64,
    pub run_id: i64,
}

/// A command as typed into a form or sent as JSON, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommandInput {
    pub command: Option<String>,
    /// Seconds, 1 to 3600; 120 when left out.
    pub timeout_seconds: Option<serde_json::Value>,
}

/// A run and the job that carries it out.
#[derive(Debug, Clone)]
pub struct CommandJob {
    pub run: CommandRunRecord,
    pub job_id: JobId,
}

impl CommandInput {
    fn validate(&self) -> Result<(SiteCommandText, CommandTimeout), FieldErrors> {
        let mut errors = FieldErrors::new();
        let command = self
            .command
            .as_deref()
            .unwrap_or_default()
            .replace("\r\n", "\n")
            .parse::<SiteCommandText>()
            .map_err(|error| errors.add("command", sentence(&error.to_string())))
            .ok();
        let timeout = match &self.timeout_seconds {
            None | Some(serde_json::Value::Null) => Some(CommandTimeout::default()),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Some(CommandTimeout::default()),
            Some(value) => {
                let text = match value {
                    serde_json::Value::String(text) => text.trim().to_owned(),
                    other => other.to_string(),
                };
                text.parse::<u64>()
                    .ok()
                    .and_then(|seconds| CommandTimeout::from_secs(seconds).ok())
                    .ok_or_else(|| {
                        errors.add(
                            "timeout_seconds",
                            format!("Enter from 1 to {} seconds.", CommandTimeout::MAX_SECONDS),
                        )
                    })
                    .ok()
            }
        };
        match (command, timeout) {
            (Some(command), Some(timeout)) if errors.is_empty() => Ok((command, timeout)),
            _ => Err(errors),
        }
    }
}

/// Runs a command in the current release of one of the caller's sites: stores the
/// run as `queued` and enqueues its one job.
pub async fn run(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    input: &CommandInput,
) -> Result<CommandJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    let (command, timeout) = input.validate().map_err(AppError::Validation)?;
    if site.current_release.is_none() {
        return Err(AppError::Conflict(
            "This site has no live release yet: commands run in the current release, so deploy it first.".to_owned(),
        ));
    }
    let seconds = u64::from(timeout);
    let record = run_table::insert(
        db,
        site_id,
        server.id,
        &principal.email,
        command.as_str(),
        i32::try_from(seconds).unwrap_or(i32::MAX),
    )
    .await?;
    let subject = format!("server:{}", server.id);
    let job = NewJob::with_payload(
        COMMAND_KIND,
        &CommandPayload {
            server_id: server.id,
            site_id,
            run_id: record.id,
        },
    )
    .map_err(AppError::internal)?
    .subject(subject.clone())
    .exclusive(subject)
    .max_attempts(1)
    .timeout(Duration::from_secs(seconds + 120));
    let job_id = match queue.enqueue(job).await {
        Ok(job_id) => job_id,
        Err(error) => {
            let _ = run_table::finish(db, record.id, "failed", None, "", Some("the job could not be queued")).await;
            return Err(error.into());
        }
    };
    run_table::set_job(db, record.id, job_id.0).await?;
    let shown: String = command
        .as_str()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    crate::audit::record(
        db,
        &principal.actor(),
        "site.command_started",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Ran a command on the site {} on \"{}\" (run #{}, job #{job_id}): {shown}",
            site.domain, server.name, record.id
        ),
    )
    .await;
    let run = run_table::find(db, site_id, record.id).await?.unwrap_or(record);
    Ok(CommandJob { run, job_id })
}

/// Marks runs whose job ended without saying so (cancelled, or lost) as failed.
async fn reconcile(queue: &Queue, runs: &mut [CommandRunRecord]) -> Result<(), AppError> {
    for run in runs.iter_mut() {
        if !matches!(run.status.as_str(), "queued" | "running") {
            continue;
        }
        let Some(job_id) = run.job_id else {
            continue;
        };
        let job = queue.get(JobId(job_id)).await?;
        let reason = match &job {
            None => Some("its job no longer exists".to_owned()),
            Some(job) if job.state == JobState::Cancelled => Some("its job was cancelled".to_owned()),
            Some(job) if job.state.is_final() => Some(
                job.last_error
                    .clone()
                    .unwrap_or_else(|| format!("its job ended ({})", job.state.as_str())),
            ),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            run_table::finish(
                queue.db(),
                run.id,
                "failed",
                run.exit_code,
                &run.output_tail,
                Some(&reason),
            )
            .await?;
            run.status = "failed".to_owned();
            run.error = Some(reason);
        }
    }
    Ok(())
}

/// A page of the command history of one of the caller's sites, newest first.
pub async fn list(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CommandRunRecord>, AppError> {
    principal.require(Scope::Read)?;
    owned_site_and_server(queue.db(), principal, site_id).await?;
    let mut runs = run_table::list_for_site(queue.db(), site_id, before, limit.clamp(1, 200)).await?;
    reconcile(queue, &mut runs).await?;
    Ok(runs)
}

/// One run of one of the caller's sites.
pub async fn get(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    run_id: i64,
) -> Result<CommandRunRecord, AppError> {
    principal.require(Scope::Read)?;
    owned_site_and_server(queue.db(), principal, site_id).await?;
    let run = run_table::find(queue.db(), site_id, run_id)
        .await?
        .ok_or(AppError::NotFound("command run"))?;
    let mut runs = [run];
    reconcile(queue, &mut runs).await?;
    let [run] = runs;
    Ok(run)
}

/// Carries out one command run and records its outcome on the run's row.
pub async fn run_command(
    environment: &OperationEnvironment,
    job_id: i64,
    payload: &CommandPayload,
) -> Result<(), OperationError> {
    let db = &environment.db;
    let Some(record) = run_table::find_by_id(db, payload.run_id).await? else {
        return Err(OperationError::Refused(format!(
            "command run {} no longer exists",
            payload.run_id
        )));
    };
    let Some(site) = site_table::find(db, payload.site_id).await? else {
        return Err(OperationError::Refused(format!(
            "site {} no longer exists",
            payload.site_id
        )));
    };
    let refused = |message: String| OperationError::Refused(message);
    let layout = crate::site_operations::layout(&site).map_err(|error| refused(error.to_string()))?;
    let input = SiteCommandInput {
        site_directory: layout.current(),
        command: record
            .command
            .parse()
            .map_err(|error| refused(format!("the stored command is unreadable: {error}")))?,
        timeout: u64::try_from(record.timeout_seconds)
            .ok()
            .and_then(|seconds| CommandTimeout::from_secs(seconds).ok())
            .unwrap_or_default(),
    };
    run_table::mark_running(db, record.id).await?;
    let writer: TailWriter = {
        let db = db.clone();
        let run_id = record.id;
        Arc::new(move |text: String| {
            let db = db.clone();
            Box::pin(async move {
                run_table::set_output(&db, run_id, &text)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        })
    };
    let recording = OutputRecording::start(environment, job_id, Recorded::OutputOnly, writer);
    let operation_payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: payload.server_id,
            site_id: payload.site_id,
        },
        operation: PackageOperation::SiteCommandRun(input),
        follow_up: None,
    };
    let result = crate::operations::execute_payload(environment, Some(job_id), &operation_payload).await;
    let output = recording.finish().await;
    match &result {
        Ok(_) => {
            run_table::finish(db, record.id, "succeeded", Some(0), &output, None).await?;
        }
        Err(error) => {
            let exit_code = match error {
                OperationError::Ssh(ssh_error) => ssh_error.exit_code(),
                _ => None,
            };
            let mut output = output;
            if output.is_empty()
                && let OperationError::Ssh(ssh_error) = error
                && let Some(stderr) = ssh_error.stderr_tail()
            {
                output = stderr.to_owned();
            }
            run_table::finish(db, record.id, "failed", exit_code, &output, Some(&error.to_string())).await?;
        }
    }
    result.map(|_| ())
}

/// Registers the `site.command` handler.
pub fn register(registry: &mut Registry, environment: &OperationEnvironment) {
    let environment = environment.clone();
    registry.register(COMMAND_KIND, move |context: JobContext, payload: CommandPayload| {
        let environment = environment.clone();
        async move {
            run_command(&environment, context.id.0, &payload)
                .await
                .map_err(|error| match error {
                    OperationError::Refused(_) | OperationError::Ssh(_) => JobError::permanent(error.to_string()),
                    other => other.into_job_error(),
                })
        }
    });
}

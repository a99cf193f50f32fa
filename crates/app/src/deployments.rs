//! Deployments of a site: one `site.deployment` job per deployment or rollback, and
//! the history of both.
//!
//! A deployment builds one exact commit into a new release directory. The commit is
//! the one a webhook's push named, one the caller chose, or else the head of the
//! site's branch, which the job resolves on the server itself (the package's
//! `git ls-remote` probe, run as brokeforge) and records before anything else
//! happens, so the history always says what was built. The job then runs the site
//! package's `SiteDeploy` (fetch, link shared paths, run the deploy script, switch
//! `current`, prune to the site's number of releases) and records the outcome: the
//! deployment `succeeded` and the site's live release and commit, or `failed` with
//! the job's message. A failing deployment never switches `current` (the package
//! guarantees it), so the live release stays as it was; the job's events keep the
//! failed step's masked command, exit code and stderr tail.
//!
//! A rollback is a deployment whose job runs `SiteRollback`: `current` goes back to
//! a release the server still keeps.
//!
//! Jobs are exclusive per server like every operation, so deployments of one server
//! wait for each other. A job that runs twice (the queue delivers at least once)
//! builds the same release directory from the same commit again.

use std::sync::Arc;
use std::time::Duration;

use brokeforge_core::{GitBranch, RemoteUser};
use brokeforge_db::Db;
use brokeforge_db::package_records::{self, NewSitePackageEvent};
use brokeforge_db::servers::ServerRecord;
use brokeforge_db::site_deployments::{self as deployment_table, DeploymentRecord, NewDeployment};
use brokeforge_db::sites::{self as site_table, SiteRecord};
use brokeforge_packages::Package;
use brokeforge_packages::site::{CommitSha, Deployment, GitTransport, ReleaseId};
use brokeforge_queue::{JobContext, JobError, JobId, JobState, NewJob, Queue, Registry};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::operations::{EventTarget, OperationEnvironment, OperationError, PackageOperationPayload};
use crate::output_recording::{OutputRecording, Recorded, TailWriter};
use crate::sites::{STATUS_ACTIVE, owned_site_and_server, sentence};

/// The job kind of deployments and rollbacks.
pub const DEPLOYMENT_KIND: &str = "site.deployment";

/// How a deployment was asked for.
pub const TRIGGER_MANUAL: &str = "manual";
/// A webhook's push.
pub const TRIGGER_WEBHOOK: &str = "webhook";
/// A rollback to a kept release.
pub const TRIGGER_ROLLBACK: &str = "rollback";

/// The payload of a `site.deployment` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentPayload {
    pub server_id: i64,
    pub site_id: i64,
    pub deployment_id: i64,
}

/// A deployment and the job that carries it out.
#[derive(Debug, Clone)]
pub struct DeploymentJob {
    pub deployment: DeploymentRecord,
    pub job_id: JobId,
}

/// A release the server keeps, as the deployment history knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub release_id: String,
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// The deployment that built it.
    pub deployment_id: i64,
    pub deployed_at: DateTime<Utc>,
    /// Whether `current` points at it.
    pub is_current: bool,
}

/// The id of a release made now, later than every release the site ever had (its
/// deployments' and its live one, which may be WordPress's first release), so two
/// releases in one second still get their own directories (the package would switch
/// to an existing finished release of the same id instead of building).
pub(crate) async fn next_release_id(db: &Db, site_id: i64) -> Result<ReleaseId, AppError> {
    let latest = deployment_table::latest_release_id(db, site_id).await?;
    let live = site_table::find(db, site_id)
        .await?
        .and_then(|site| site.current_release);
    let now = Utc::now().timestamp().max(0);
    let after_latest = [latest, live]
        .into_iter()
        .flatten()
        .filter_map(|release| NaiveDateTime::parse_from_str(&release, "%Y%m%d%H%M%S").ok())
        .map(|time| time.and_utc().timestamp() + 1)
        .max()
        .unwrap_or(0);
    ReleaseId::from_unix_seconds(now.max(after_latest) as u64).map_err(AppError::internal)
}

fn deployable(site: &SiteRecord) -> Result<(), AppError> {
    if site.status != STATUS_ACTIVE {
        return Err(AppError::Conflict(match site.status.as_str() {
            crate::sites::STATUS_INSTALLING => {
                "This site is still being installed; deploy once that finished.".to_owned()
            }
            crate::sites::STATUS_REMOVING => "This site is being removed.".to_owned(),
            _ => "This site's installation failed; install it again first.".to_owned(),
        }));
    }
    Ok(())
}

/// Enqueues the job of a stored deployment and names it on the row.
async fn enqueue(queue: &Queue, deployment: &DeploymentRecord) -> Result<JobId, AppError> {
    let subject = format!("server:{}", deployment.server_id);
    let job = NewJob::with_payload(
        DEPLOYMENT_KIND,
        &DeploymentPayload {
            server_id: deployment.server_id,
            site_id: deployment.site_id,
            deployment_id: deployment.id,
        },
    )
    .map_err(AppError::internal)?
    .subject(subject.clone())
    .exclusive(subject)
    .max_attempts(2)
    .timeout(Duration::from_secs(2 * 60 * 60));
    let job_id = match queue.enqueue(job).await {
        Ok(job_id) => job_id,
        Err(error) => {
            let _ = deployment_table::finish(
                queue.db(),
                deployment.id,
                deployment_table::FAILED,
                Some("the job could not be queued"),
            )
            .await;
            return Err(error.into());
        }
    };
    deployment_table::set_job(queue.db(), deployment.id, job_id.0).await?;
    Ok(job_id)
}

/// What starts a deployment from outside a user's session: a webhook's push.
#[derive(Debug, Clone)]
pub struct PushedCommit<'a> {
    /// `github`, `gitlab` or `generic`.
    pub provider: &'a str,
    pub delivery_id: Option<&'a str>,
    /// The pushed commit; `None` deploys the branch head.
    pub commit: Option<&'a CommitSha>,
    pub branch: &'a GitBranch,
    pub author: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// Keeps a commit's author or message to a length fit for a history line.
fn clipped(text: Option<&str>, max: usize) -> Option<String> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    let first_line = text.lines().next().unwrap_or_default();
    Some(first_line.chars().take(max).collect())
}

/// Starts a deployment of one of the caller's sites: the branch head (resolved on
/// the server when the job starts), or `commit` when given.
pub async fn deploy(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    commit: Option<&str>,
) -> Result<DeploymentJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    let commit = match commit.map(str::trim).filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<CommitSha>()
                .map_err(|error| AppError::Validation(FieldErrors::single("commit", sentence(&error.to_string()))))?,
        ),
    };
    deployable(&site)?;
    let Some((_, branch)) = crate::site_operations::git(&site)? else {
        return Err(AppError::Conflict(
            "This site has no Git repository yet; set one in its deploy settings first.".to_owned(),
        ));
    };
    let release = next_release_id(db, site_id).await?;
    let deployment = deployment_table::insert(
        db,
        &NewDeployment {
            site_id,
            server_id: server.id,
            trigger_kind: TRIGGER_MANUAL,
            actor: &principal.email,
            provider: None,
            delivery_id: None,
            commit_sha: commit.as_ref().map(CommitSha::as_str),
            branch: Some(branch.as_str()),
            author: None,
            message: None,
            release_id: release.as_str(),
        },
    )
    .await?;
    let job_id = enqueue(queue, &deployment).await?;
    let what = match &commit {
        Some(commit) => format!("commit {}", commit.short()),
        None => format!("the head of {branch}"),
    };
    crate::audit::record(
        db,
        &principal.actor(),
        "site.deployment_started",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Started deploying {what} to the site {} on \"{}\" (deployment #{}, job #{job_id})",
            site.domain, server.name, deployment.id
        ),
    )
    .await;
    let deployment = deployment_table::find_by_id(db, deployment.id)
        .await?
        .unwrap_or(deployment);
    Ok(DeploymentJob { deployment, job_id })
}

/// What a webhook asked for.
#[derive(Debug, Clone)]
pub enum PushOutcome {
    /// A deployment was queued.
    Started(Box<DeploymentJob>),
    /// The same delivery was received before; nothing was done.
    Duplicate,
    /// A deployment of this very commit is queued or running already.
    AlreadyPending(i64),
}

/// Starts a deployment of a pushed commit, for a verified webhook (the caller checked
/// the signature and the branch). A delivery id seen before, or a commit already
/// queued or running for the site, starts nothing.
pub async fn deploy_push(
    queue: &Queue,
    site: &SiteRecord,
    server: &ServerRecord,
    push: &PushedCommit<'_>,
) -> Result<PushOutcome, AppError> {
    let db = queue.db();
    deployable(site)?;
    if let Some(commit) = push.commit
        && let Some(pending) = deployment_table::pending_for_site(db, site.id)
            .await?
            .into_iter()
            .find(|deployment| deployment.commit_sha.as_deref() == Some(commit.as_str()))
    {
        return Ok(PushOutcome::AlreadyPending(pending.id));
    }
    let release = next_release_id(db, site.id).await?;
    let actor = format!("webhook ({})", push.provider);
    let author = clipped(push.author, 200);
    let message = clipped(push.message, 500);
    let inserted = deployment_table::insert(
        db,
        &NewDeployment {
            site_id: site.id,
            server_id: server.id,
            trigger_kind: TRIGGER_WEBHOOK,
            actor: &actor,
            provider: Some(push.provider),
            delivery_id: push.delivery_id,
            commit_sha: push.commit.map(CommitSha::as_str),
            branch: Some(push.branch.as_str()),
            author: author.as_deref(),
            message: message.as_deref(),
            release_id: release.as_str(),
        },
    )
    .await;
    let deployment = match inserted {
        Ok(deployment) => deployment,
        Err(brokeforge_db::DbError::Conflict(_)) => return Ok(PushOutcome::Duplicate),
        Err(error) => return Err(error.into()),
    };
    let job_id = enqueue(queue, &deployment).await?;
    let what = match push.commit {
        Some(commit) => format!("commit {}", commit.short()),
        None => format!("the head of {}", push.branch),
    };
    crate::audit::record(
        db,
        &crate::audit::Actor {
            user_id: Some(server.user_id),
            email: &actor,
            ip: None,
        },
        "site.deployment_started",
        Some(server.id),
        Some(&format!("site:{}", site.id)),
        &format!(
            "A {} webhook started deploying {what} to the site {} on \"{}\" (deployment #{}, job #{job_id})",
            push.provider, site.domain, server.name, deployment.id
        ),
    )
    .await;
    let deployment = deployment_table::find_by_id(db, deployment.id)
        .await?
        .unwrap_or(deployment);
    Ok(PushOutcome::Started(Box::new(DeploymentJob { deployment, job_id })))
}

/// The releases the server keeps, newest first, as the history knows them: the
/// releases of the latest successful deployments, as many as the site keeps.
async fn kept_releases(db: &Db, site: &SiteRecord) -> Result<Vec<Release>, AppError> {
    let keep = crate::site_operations::keep_releases(site).get() as usize;
    let mut releases: Vec<Release> = Vec::new();
    for deployment in deployment_table::succeeded_for_site(db, site.id, 200).await? {
        if releases
            .iter()
            .any(|release| release.release_id == deployment.release_id)
        {
            continue;
        }
        releases.push(Release {
            is_current: site.current_release.as_deref() == Some(deployment.release_id.as_str()),
            release_id: deployment.release_id,
            commit_sha: deployment.commit_sha,
            branch: deployment.branch,
            author: deployment.author,
            message: deployment.message,
            deployment_id: deployment.id,
            deployed_at: deployment.finished_at.unwrap_or(deployment.created_at),
        });
    }
    // The package prunes by age and never removes the live release.
    releases.sort_by(|left, right| right.release_id.cmp(&left.release_id));
    let mut kept: Vec<Release> = releases.iter().take(keep).cloned().collect();
    if let Some(current) = releases.iter().skip(keep).find(|release| release.is_current) {
        kept.push(current.clone());
    }
    Ok(kept)
}

/// The releases one of the caller's sites keeps, newest first.
pub async fn releases(db: &Db, principal: &Principal, site_id: i64) -> Result<Vec<Release>, AppError> {
    principal.require(Scope::Read)?;
    let (site, _) = owned_site_and_server(db, principal, site_id).await?;
    kept_releases(db, &site).await
}

/// Rolls one of the caller's sites back to a release its server still keeps: one job
/// that points `current` at it.
pub async fn rollback(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    release_id: &str,
) -> Result<DeploymentJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    let release_id = release_id
        .trim()
        .parse::<ReleaseId>()
        .map_err(|error| AppError::Validation(FieldErrors::single("release", sentence(&error.to_string()))))?;
    deployable(&site)?;
    let kept = kept_releases(db, &site).await?;
    let Some(release) = kept.iter().find(|release| release.release_id == release_id.as_str()) else {
        return Err(AppError::Validation(FieldErrors::single(
            "release",
            format!("The server no longer keeps the release {release_id}; choose one of the releases listed."),
        )));
    };
    if release.is_current {
        return Err(AppError::Conflict(format!("The release {release_id} is live already.")));
    }
    let deployment = deployment_table::insert(
        db,
        &NewDeployment {
            site_id,
            server_id: server.id,
            trigger_kind: TRIGGER_ROLLBACK,
            actor: &principal.email,
            provider: None,
            delivery_id: None,
            commit_sha: release.commit_sha.as_deref(),
            branch: release.branch.as_deref(),
            author: release.author.as_deref(),
            message: release.message.as_deref(),
            release_id: release_id.as_str(),
        },
    )
    .await?;
    let job_id = enqueue(queue, &deployment).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.rollback_started",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Started rolling the site {} on \"{}\" back to the release {release_id} (deployment #{}, job #{job_id})",
            site.domain, server.name, deployment.id
        ),
    )
    .await;
    let deployment = deployment_table::find_by_id(db, deployment.id)
        .await?
        .unwrap_or(deployment);
    Ok(DeploymentJob { deployment, job_id })
}

/// Marks deployments whose job ended without saying so (cancelled, or failed
/// before it could record anything) as failed with the job's reason.
async fn reconcile(queue: &Queue, site_id: i64) -> Result<(), AppError> {
    for deployment in deployment_table::pending_for_site(queue.db(), site_id).await? {
        let Some(job_id) = deployment.job_id else {
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
            deployment_table::finish(queue.db(), deployment.id, deployment_table::FAILED, Some(&reason)).await?;
        }
    }
    Ok(())
}

/// A page of one of the caller's site's deployments, newest first.
pub async fn list(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeploymentRecord>, AppError> {
    principal.require(Scope::Read)?;
    let db = queue.db();
    owned_site_and_server(db, principal, site_id).await?;
    reconcile(queue, site_id).await?;
    Ok(deployment_table::list_for_site(db, site_id, before, limit.clamp(1, 200)).await?)
}

/// One deployment of one of the caller's sites.
pub async fn get(
    queue: &Queue,
    principal: &Principal,
    site_id: i64,
    deployment_id: i64,
) -> Result<DeploymentRecord, AppError> {
    principal.require(Scope::Read)?;
    let db = queue.db();
    owned_site_and_server(db, principal, site_id).await?;
    reconcile(queue, site_id).await?;
    deployment_table::find(db, site_id, deployment_id)
        .await?
        .ok_or(AppError::NotFound("deployment"))
}

/// Writes one event of the deployment's job outside the package's own: the branch
/// resolution before `SiteDeploy` starts.
#[allow(clippy::too_many_arguments)]
async fn resolution_event(
    db: &Db,
    payload: &DeploymentPayload,
    job_id: i64,
    run: i64,
    label: &str,
    status: &str,
    details: serde_json::Value,
    error_log: Option<&str>,
) -> Result<(), brokeforge_db::DbError> {
    let mut all = json!({ "run": run, "key": "resolve_commit" });
    if let (Some(all), serde_json::Value::Object(details)) = (all.as_object_mut(), details) {
        all.extend(details);
    }
    package_records::insert_site_event(
        db,
        &NewSitePackageEvent {
            server_id: payload.server_id,
            site_id: payload.site_id,
            job_id: Some(job_id),
            service_type: Deployment::TYPE.as_str(),
            provision_type: "install",
            milestone: label,
            current_step: 1,
            total_steps: 1,
            details: all,
            status,
            error_log,
        },
    )
    .await?;
    Ok(())
}

/// Resolves the site's branch to its head commit by running the package's
/// `git ls-remote` probe on the server as brokeforge, recording the step as an
/// event so a failure shows its command, exit code and error output.
async fn resolve_commit(
    environment: &OperationEnvironment,
    payload: &DeploymentPayload,
    job_id: i64,
    site: &SiteRecord,
) -> Result<CommitSha, OperationError> {
    let db = &environment.db;
    let git = crate::site_operations::git(site).map_err(|error| OperationError::Refused(error.to_string()))?;
    let Some((repository, branch)) = git else {
        return Err(OperationError::Refused(
            "the site has no Git repository any more; set one in its deploy settings".to_owned(),
        ));
    };
    if repository.transport() == GitTransport::Ssh {
        let events = EventTarget::Site {
            server_id: payload.server_id,
            site_id: payload.site_id,
        };
        crate::site_operations::ensure_known_hosts(environment, events, job_id, site).await?;
    }
    let run = brokeforge_db::clock::now_millis();
    let label = format!("Resolving the head of {branch}");
    resolution_event(db, payload, job_id, run, &label, "running", json!({}), None).await?;
    let probe = crate::site_operations::branch_head_probe(site, &repository, &branch)
        .map_err(|error| OperationError::Refused(error.to_string()))?;
    // The failure, with the probe's exit code and error output when it ran.
    let result: Result<CommitSha, (OperationError, Option<(i32, String)>)> = async {
        let target = crate::operations::target(environment, payload.server_id, RemoteUser::BrokeForge)
            .await
            .map_err(|error| (error, None))?;
        let output = environment
            .ssh
            .run_command(&target, probe.cmd(), probe.timeout())
            .await
            .map_err(|error| (OperationError::Ssh(error), None))?;
        crate::site_operations::parse_branch_head(&repository, &branch, &output).map_err(|message| {
            (
                OperationError::Refused(message),
                Some((output.exit_code, output.stderr_text())),
            )
        })
    }
    .await;
    let (error, output) = match result {
        Ok(commit) => {
            let resolved = format!("Resolved the head of {branch}: {}", commit.short());
            resolution_event(
                db,
                payload,
                job_id,
                run,
                &resolved,
                "running",
                json!({ "commit": commit.as_str() }),
                None,
            )
            .await?;
            return Ok(commit);
        }
        Err(failure) => failure,
    };
    let message = match deploy_key_hint(db, site, &error).await {
        Some(hint) => format!("{error}; {hint}"),
        None => error.to_string(),
    };
    let (exit_code, stderr_tail) = match output {
        Some((exit_code, stderr)) => (Some(exit_code), Some(tail(&stderr, 4000))),
        None => (None, None),
    };
    resolution_event(
        db,
        payload,
        job_id,
        run,
        &label,
        "failed",
        json!({
            "kind": "resolve_commit",
            "command": probe.cmd().to_string(),
            "exit_code": exit_code,
            "stderr_tail": stderr_tail,
            "message": message,
        }),
        Some(&message),
    )
    .await?;
    Err(match error {
        OperationError::Refused(_) => OperationError::Refused(message),
        other => other,
    })
}

/// How to fix a refused Git login: the key the site logs in with (its own, or the
/// server's), to add to the repository's deploy keys.
async fn deploy_key_hint(db: &Db, site: &SiteRecord, error: &OperationError) -> Option<String> {
    let text = error.to_string();
    if !(text.contains("deploy key") || text.contains("Permission denied")) {
        return None;
    }
    let key = match &site.deploy_key_public {
        Some(key) => key.clone(),
        None => {
            brokeforge_db::servers::find(db, site.server_id)
                .await
                .ok()
                .flatten()?
                .deploy_public_key?
        }
    };
    Some(format!("add this deploy key to the repository: {}", key.trim()))
}

/// The last `max` bytes of `text`, on a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Carries out one deployment or rollback: resolves the commit when needed, runs the
/// site package's operation with the site's events, and records the outcome.
pub async fn run_deployment(
    environment: &OperationEnvironment,
    job_id: i64,
    payload: &DeploymentPayload,
) -> Result<(), OperationError> {
    let db = &environment.db;
    let Some(deployment) = deployment_table::find_by_id(db, payload.deployment_id).await? else {
        return Err(OperationError::Refused(format!(
            "deployment {} no longer exists",
            payload.deployment_id
        )));
    };
    let Some(site) = site_table::find(db, payload.site_id).await? else {
        return Err(OperationError::Refused(format!(
            "site {} no longer exists",
            payload.site_id
        )));
    };
    deployment_table::mark_running(db, deployment.id).await?;
    let writer: TailWriter = {
        let db = db.clone();
        let deployment_id = deployment.id;
        Arc::new(move |text: String| {
            let db = db.clone();
            Box::pin(async move {
                deployment_table::set_output(&db, deployment_id, &text)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        })
    };
    let recording = OutputRecording::start(environment, job_id, Recorded::StepsAndOutput, writer);
    let result = build_and_switch(environment, job_id, payload, &deployment, &site, &recording).await;
    match &result {
        Ok(()) => recording.note("==> Deployed"),
        Err(error) => recording.note(&format!("==> The deployment failed: {error}")),
    }
    recording.finish().await;
    result
}

/// The deployment's own work, once its row is `running`: the commit, the package's
/// operation, and the outcome on the deployment's and the site's rows.
async fn build_and_switch(
    environment: &OperationEnvironment,
    job_id: i64,
    payload: &DeploymentPayload,
    deployment: &DeploymentRecord,
    site: &SiteRecord,
    recording: &OutputRecording,
) -> Result<(), OperationError> {
    let db = &environment.db;
    let release = deployment
        .release_id
        .parse::<ReleaseId>()
        .map_err(|error| OperationError::Refused(format!("the deployment's release is unreadable: {error}")))?;
    let refused = |error: AppError| OperationError::Refused(error.to_string());
    let (operation, commit) = if deployment.trigger_kind == TRIGGER_ROLLBACK {
        (
            crate::site_operations::rollback(site, &release).map_err(refused)?,
            deployment.commit_sha.clone(),
        )
    } else {
        let commit = match deployment.commit_sha.as_deref() {
            Some(text) => text
                .parse::<CommitSha>()
                .map_err(|error| OperationError::Refused(format!("the deployment's commit is unreadable: {error}")))?,
            None => {
                let commit = resolve_commit(environment, payload, job_id, site).await?;
                recording.note(&format!("==> The head of the branch is {}", commit.as_str()));
                deployment_table::set_commit(db, deployment.id, commit.as_str(), None, None).await?;
                commit
            }
        };
        (
            crate::site_operations::deploy(site, &release, &commit).map_err(refused)?,
            Some(commit.as_str().to_owned()),
        )
    };
    let operation_payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: payload.server_id,
            site_id: payload.site_id,
        },
        operation,
        follow_up: None,
    };
    crate::operations::execute_payload(environment, Some(job_id), &operation_payload).await?;
    deployment_table::finish(db, deployment.id, deployment_table::SUCCEEDED, None).await?;
    site_table::set_live_release(
        db,
        site.id,
        release.as_str(),
        commit.as_deref(),
        brokeforge_db::clock::now(),
    )
    .await?;
    if deployment.trigger_kind != TRIGGER_ROLLBACK
        && let Some(commit) = &commit
        && let Some((author, message)) = crate::site_operations::commit_details(environment, site, commit).await
    {
        deployment_table::set_commit(db, deployment.id, commit, author.as_deref(), message.as_deref()).await?;
    }
    Ok(())
}

/// Records how a deployment's job ended when it did not succeed: `failed` with the
/// message when the failure is final, `queued` with it while the queue tries again.
async fn record_failure(db: &Db, deployment_id: i64, error: &OperationError, final_failure: bool) {
    let status = if final_failure {
        deployment_table::FAILED
    } else {
        deployment_table::QUEUED
    };
    if let Err(db_error) = deployment_table::finish(db, deployment_id, status, Some(&error.to_string())).await {
        tracing::error!(error = %db_error, deployment_id, "recording a deployment's failure failed");
    }
}

/// Registers the `site.deployment` handler.
pub fn register(registry: &mut Registry, environment: &OperationEnvironment) {
    let environment = environment.clone();
    registry.register(
        DEPLOYMENT_KIND,
        move |context: JobContext, payload: DeploymentPayload| {
            let environment = environment.clone();
            async move {
                let result = run_deployment(&environment, context.id.0, &payload).await;
                if let Err(error) = &result {
                    let final_failure = !error.is_transient() || context.is_last_attempt();
                    record_failure(&environment.db, payload.deployment_id, error, final_failure).await;
                }
                result.map_err(|error| match error {
                    OperationError::Refused(_) => JobError::permanent(error.to_string()),
                    other => other.into_job_error(),
                })
            }
        },
    );
}

//! Running package operations on servers: the one `execute()` every operation
//! shares. It loads the server's pinned host key and the sealed key of the
//! operation's SSH role, gathers facts with the operation's read-only probes, asks
//! the pure `plan()` what to do, runs the plan over SSH, and records progress: one
//! event row per milestone reached, a failure row naming the step, masked command,
//! exit code and stderr tail, and the package records that `Persist` steps name.
//!
//! Job handlers stay thin: a `package.operation` job names a server and one
//! operation with its input, and its handler calls [`execute`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use brokeforge_core::{Milestone, Plan, Record, RemoteUser, Step};
use brokeforge_db::package_events::{self, NewPackageEvent};
use brokeforge_db::package_records::{self, NewSitePackageEvent};
use brokeforge_db::server_access::{self, credential_aad};
use brokeforge_db::{Db, Sealer};
use brokeforge_packages::composer::ComposerInstall;
use brokeforge_packages::cron::CronInstall;
use brokeforge_packages::facts::{ProbeOutput, ProbeOutputs};
use brokeforge_packages::firewall::{FirewallInstall, FirewallRuleInstall, FirewallRuleRemove};
use brokeforge_packages::nginx::{NginxInstall, NginxRemove};
use brokeforge_packages::nodejs::NodeJsInstall;
use brokeforge_packages::php::extension::{PhpExtensionInstall, PhpExtensionRemove};
use brokeforge_packages::php::{PhpCliDefaultInstall, PhpInstall, PhpRemove};
use brokeforge_packages::server_access::ServerAccessRemove;
use brokeforge_packages::site::default_site::DefaultSiteUpdate;
use brokeforge_packages::site::deploy::{SiteDeploy, SiteRollback};
use brokeforge_packages::site::deploy_key::{SiteDeployKeyInstall, SiteDeployKeyRemove};
use brokeforge_packages::site::env::EnvFileWrite;
use brokeforge_packages::site::files::{SiteFileDelete, SiteFileWrite};
use brokeforge_packages::site::git::GitKnownHostsInstall;
use brokeforge_packages::site::install::{SiteInstall, SiteRemove};
use brokeforge_packages::site_command::SiteCommandRun;
use brokeforge_packages::supervisor::SupervisorInstall;
use brokeforge_packages::time_sync::{TimeSyncInstall, TimeSyncRemove};
use brokeforge_packages::{Action, Operation, Package, PackageName, dry_run};
use brokeforge_queue::{JobContext, JobError, NewJob, Queue, Registry};
use brokeforge_ssh::{
    ClientKey, HostKey, MilestoneReached, ObserverError, PlanObserver, SshError, SshPool, StepReport, Stream, Target,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;

/// The job kind of every package operation.
pub const PACKAGE_OPERATION_KIND: &str = "package.operation";

/// What operations need from the control plane.
#[derive(Clone)]
pub struct OperationEnvironment {
    pub db: Db,
    /// Where follow-up jobs go (the next provisioning step, for one).
    pub queue: Queue,
    pub sealer: Arc<Sealer>,
    pub ssh: SshPool,
    pub live_output: LiveOutput,
}

impl OperationEnvironment {
    /// An environment with its own SSH connection pool and live-output fan-out: make
    /// one per process and share it, so every caller uses the same connections.
    pub fn new(db: Db, queue: Queue, sealer: Arc<Sealer>) -> OperationEnvironment {
        OperationEnvironment {
            db,
            queue,
            sealer,
            ssh: SshPool::new(brokeforge_ssh::PoolConfig::default()),
            live_output: LiveOutput::default(),
        }
    }
}

/// Why an operation did not complete. Every message is one line, free of secrets,
/// and says what went wrong and, where it can, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error("server {0} no longer exists")]
    ServerGone(i64),
    #[error("server {0} has no pinned host key yet: finish its bootstrap first")]
    NotBootstrapped(i64),
    #[error("server {server_id} has no {role} credentials: run its bootstrap again")]
    MissingCredentials { server_id: i64, role: &'static str },
    #[error("the stored {role} key of server {server_id} cannot be opened: {reason}")]
    BadCredentials {
        server_id: i64,
        role: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("reading the server's state failed: {0}")]
    Facts(String),
    #[error("{0}")]
    Refused(String),
    #[error("recording progress failed: {0}")]
    Database(#[from] brokeforge_db::DbError),
}

impl OperationError {
    /// Whether trying again later may help (a network problem, a busy database).
    pub fn is_transient(&self) -> bool {
        match self {
            OperationError::Ssh(error) => error.is_transient(),
            OperationError::Database(_) => true,
            _ => false,
        }
    }

    /// The queue's view of this failure.
    pub fn into_job_error(self) -> JobError {
        if self.is_transient() {
            JobError::retryable(self.to_string())
        } else {
            JobError::permanent(self.to_string())
        }
    }
}

/// Where an operation's progress events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventTarget {
    /// `server_package_events`.
    Server { server_id: i64 },
    /// `server_site_package_events`.
    Site { server_id: i64, site_id: i64 },
}

impl EventTarget {
    /// The server the events belong to.
    pub fn server_id(self) -> i64 {
        match self {
            EventTarget::Server { server_id } | EventTarget::Site { server_id, .. } => server_id,
        }
    }
}

/// What a completed operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationOutcome {
    /// False when the facts showed the desired state already: nothing ran.
    pub changed: bool,
    pub steps_run: usize,
}

/// One chunk of a running step's output, for live views. Already scrubbed.
#[derive(Debug, Clone, Serialize)]
pub struct LiveChunk {
    pub job_id: i64,
    pub step_index: usize,
    /// `stdout`, `stderr`, or [`LiveChunk::STEP`] for a milestone or a step's
    /// masked command line.
    pub stream: &'static str,
    pub text: String,
}

impl LiveChunk {
    /// The stream of the lines that announce milestones and steps.
    pub const STEP: &'static str = "step";
}

/// Live command output of running jobs, for pages that follow a job. Output is
/// not stored chunk by chunk: events keep the tails, this only fans out.
#[derive(Clone, Default)]
pub struct LiveOutput {
    channels: Arc<Mutex<HashMap<i64, broadcast::Sender<LiveChunk>>>>,
}

impl LiveOutput {
    /// Follows a job's output from now on.
    pub fn subscribe(&self, job_id: i64) -> broadcast::Receiver<LiveChunk> {
        let mut channels = self.channels.lock().expect("live output lock");
        channels
            .entry(job_id)
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }

    fn publish(&self, chunk: LiveChunk) {
        let channels = self.channels.lock().expect("live output lock");
        if let Some(sender) = channels.get(&chunk.job_id) {
            let _ = sender.send(chunk);
        }
    }

    /// Closes job `job_id`'s channel: its followers see the end once they have read
    /// what was sent. A job that runs several operations (a deployment) closes it
    /// after the last one.
    pub fn finish(&self, job_id: i64) {
        self.channels.lock().expect("live output lock").remove(&job_id);
    }
}

/// Builds the SSH target for `role` on a server from its pinned host key and its
/// sealed credentials. The private key is opened in memory only.
pub async fn target(
    environment: &OperationEnvironment,
    server_id: i64,
    role: RemoteUser,
) -> Result<Target, OperationError> {
    let endpoint = server_access::endpoint(&environment.db, server_id)
        .await?
        .ok_or(OperationError::ServerGone(server_id))?;
    // The pinned keys, one per line: a server may present any of them.
    let host_keys = endpoint
        .host_key
        .as_deref()
        .ok_or(OperationError::NotBootstrapped(server_id))?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(HostKey::parse)
        .collect::<Result<Vec<HostKey>, SshError>>()?;
    if host_keys.is_empty() {
        return Err(OperationError::NotBootstrapped(server_id));
    }
    let role_name = role.as_str();
    let credential = server_access::credential(&environment.db, server_id, role_name)
        .await?
        .ok_or(OperationError::MissingCredentials {
            server_id,
            role: role_name,
        })?;
    let mut opened = environment
        .sealer
        .open_string(&credential.private_key_sealed, &credential_aad(server_id, role_name))
        .map_err(|error| OperationError::BadCredentials {
            server_id,
            role: role_name,
            reason: error.to_string(),
        })?;
    let private_key = brokeforge_core::Secret::new(std::mem::take(&mut *opened));
    let client_key = ClientKey::from_openssh(&private_key)?;
    let port = u16::try_from(endpoint.ssh_port).unwrap_or(22);
    Ok(Target::new(
        endpoint.public_ip,
        port,
        credential.login(),
        client_key,
        host_keys,
    ))
}

/// Runs the operation's fact probes and parses their outputs.
pub async fn gather_facts<O: Operation>(
    environment: &OperationEnvironment,
    server_id: i64,
    input: &O::Input,
) -> Result<O::Facts, OperationError> {
    let probes = O::fact_probes(input);
    let mut outputs = ProbeOutputs::new();
    let mut targets: HashMap<RemoteUser, Target> = HashMap::new();
    for probe in &probes {
        let user = probe.as_user();
        let probe_target = match targets.entry(user) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(target(environment, server_id, user).await?)
            }
        };
        let output = environment
            .ssh
            .run_command(probe_target, probe.cmd(), probe.timeout())
            .await?;
        outputs.insert(
            probe.key(),
            ProbeOutput::new(
                output.exit_code.max(0) as u32,
                output.stdout_text(),
                output.stderr_text(),
            ),
        );
    }
    O::parse_facts(input, &outputs).map_err(|error| OperationError::Facts(error.to_string()))
}

/// Plans the operation against the server's current facts without running it: the
/// preview shown before a user confirms. Secrets print masked.
pub async fn preview<O: Operation>(
    environment: &OperationEnvironment,
    server_id: i64,
    input: &O::Input,
) -> Result<brokeforge_packages::DryRun, OperationError> {
    let facts = gather_facts::<O>(environment, server_id, input).await?;
    dry_run::<O>(input, &facts).map_err(|error| OperationError::Refused(error.to_string()))
}

/// Runs one operation on a server, recording its progress for `job_id`.
pub async fn execute<O: Operation>(
    environment: &OperationEnvironment,
    events: EventTarget,
    job_id: Option<i64>,
    input: &O::Input,
) -> Result<OperationOutcome, OperationError> {
    execute_removing::<O>(environment, events, job_id, input, None).await
}

/// [`execute`], where a successful removal deletes only the record of
/// `removed_instance` (for packages installed in several versions side by side).
async fn execute_removing<O: Operation>(
    environment: &OperationEnvironment,
    events: EventTarget,
    job_id: Option<i64>,
    input: &O::Input,
    removed_instance: Option<&str>,
) -> Result<OperationOutcome, OperationError> {
    let server_id = events.server_id();
    let writer = EventWriter::new::<O>(environment, events, job_id);
    let result = run_operation::<O>(environment, &writer, server_id, input).await;
    match result {
        Ok(outcome) => {
            if O::ACTION == Action::Remove && <O::Package as Package>::SCOPE == brokeforge_packages::Scope::Server {
                package_records::delete_server_package(
                    &environment.db,
                    server_id,
                    <O::Package as Package>::TYPE.as_str(),
                    <O::Package as Package>::NAME.as_str(),
                    removed_instance.unwrap_or(""),
                )
                .await?;
            }
            writer
                .write(
                    "Finished",
                    writer.total,
                    "success",
                    json!({ "changed": outcome.changed, "steps_run": outcome.steps_run }),
                    None,
                )
                .await?;
            Ok(outcome)
        }
        Err(error) => {
            if !writer.failure_recorded() {
                let label = writer.current_label();
                let step = writer.current_step();
                let message = error.to_string();
                writer
                    .write(
                        &label,
                        step,
                        "failed",
                        json!({ "kind": error_kind(&error), "message": message }),
                        Some(&message),
                    )
                    .await?;
            }
            Err(error)
        }
    }
}

async fn run_operation<O: Operation>(
    environment: &OperationEnvironment,
    writer: &EventWriter,
    server_id: i64,
    input: &O::Input,
) -> Result<OperationOutcome, OperationError> {
    let facts = gather_facts::<O>(environment, server_id, input).await?;
    let plan = O::plan(input, &facts).map_err(|error| OperationError::Refused(error.to_string()))?;
    let user = plan_user(&plan).unwrap_or(<O::Package as Package>::SCOPE.remote_user());
    let target = target(environment, server_id, user).await?;
    match environment.ssh.run_plan(&target, &plan, writer).await {
        Ok(report) => Ok(OperationOutcome {
            changed: !plan.is_noop(),
            steps_run: report.steps.len(),
        }),
        Err(error) => {
            if let (Some(step_index), Some(command)) = (error.step_index(), error.command()) {
                let label = writer.current_label();
                let details = json!({
                    "kind": format!("{:?}", error.kind()),
                    "step_index": step_index,
                    "command": command,
                    "exit_code": error.exit_code(),
                    "stderr_tail": error.stderr_tail(),
                    "message": error.to_string(),
                });
                writer
                    .write(
                        &label,
                        writer.current_step(),
                        "failed",
                        details,
                        Some(&error.to_string()),
                    )
                    .await?;
                writer.mark_failure_recorded();
            }
            Err(OperationError::Ssh(error))
        }
    }
}

/// The account the plan's commands run as.
fn plan_user(plan: &Plan) -> Option<RemoteUser> {
    plan.steps().iter().find_map(|step| match step {
        Step::Run { as_user, .. } | Step::Upload { as_user, .. } => Some(*as_user),
        _ => None,
    })
}

/// Packages installed in several versions side by side keep one record per version.
fn record_instance(record: &Record) -> &str {
    if record.package_name == PackageName::Php.as_str() {
        &record.version
    } else {
        ""
    }
}

fn error_kind(error: &OperationError) -> &'static str {
    match error {
        OperationError::ServerGone(_) => "server_gone",
        OperationError::NotBootstrapped(_) => "not_bootstrapped",
        OperationError::MissingCredentials { .. } | OperationError::BadCredentials { .. } => "credentials",
        OperationError::Ssh(_) => "ssh",
        OperationError::Facts(_) => "facts",
        OperationError::Refused(_) => "refused",
        OperationError::Database(_) => "database",
    }
}

/// Writes progress events and records as the plan runs.
struct EventWriter {
    db: Db,
    live_output: LiveOutput,
    events: EventTarget,
    job_id: Option<i64>,
    service_type: &'static str,
    provision_type: &'static str,
    total: i32,
    first_label: &'static str,
    /// Names this execution, so a retried job's events start a new list.
    run: i64,
    current: Mutex<(i32, String)>,
    failure_recorded: Mutex<bool>,
}

impl EventWriter {
    fn new<O: Operation>(environment: &OperationEnvironment, events: EventTarget, job_id: Option<i64>) -> EventWriter {
        EventWriter {
            db: environment.db.clone(),
            live_output: environment.live_output.clone(),
            events,
            job_id,
            service_type: <O::Package as Package>::TYPE.as_str(),
            provision_type: O::ACTION.provision_type(),
            total: <O::Milestone as Milestone>::ALL.len() as i32,
            first_label: <O::Milestone as Milestone>::ALL
                .first()
                .map(|milestone| milestone.label())
                .unwrap_or("Starting"),
            run: brokeforge_db::clock::now_millis(),
            current: Mutex::new((0, String::new())),
            failure_recorded: Mutex::new(false),
        }
    }

    fn current_step(&self) -> i32 {
        self.current.lock().expect("event writer lock").0.max(1)
    }

    fn current_label(&self) -> String {
        let current = self.current.lock().expect("event writer lock");
        if current.1.is_empty() {
            self.first_label.to_owned()
        } else {
            current.1.clone()
        }
    }

    fn failure_recorded(&self) -> bool {
        *self.failure_recorded.lock().expect("event writer lock")
    }

    fn mark_failure_recorded(&self) {
        *self.failure_recorded.lock().expect("event writer lock") = true;
    }

    async fn write(
        &self,
        label: &str,
        step: i32,
        status: &str,
        extra: serde_json::Value,
        error_log: Option<&str>,
    ) -> Result<i64, brokeforge_db::DbError> {
        let mut details = json!({ "run": self.run });
        if let (Some(details), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            details.extend(extra);
        }
        match self.events {
            EventTarget::Server { server_id } => {
                package_events::insert(
                    &self.db,
                    &NewPackageEvent {
                        server_id,
                        job_id: self.job_id,
                        service_type: self.service_type,
                        provision_type: self.provision_type,
                        milestone: label,
                        current_step: step,
                        total_steps: self.total,
                        details,
                        status,
                        error_log,
                    },
                )
                .await
            }
            EventTarget::Site { server_id, site_id } => {
                package_records::insert_site_event(
                    &self.db,
                    &NewSitePackageEvent {
                        server_id,
                        site_id,
                        job_id: self.job_id,
                        service_type: self.service_type,
                        provision_type: self.provision_type,
                        milestone: label,
                        current_step: step,
                        total_steps: self.total,
                        details,
                        status,
                        error_log,
                    },
                )
                .await
            }
        }
    }
}

impl EventWriter {
    fn announce(&self, step_index: usize, text: String) {
        if let Some(job_id) = self.job_id {
            self.live_output.publish(LiveChunk {
                job_id,
                step_index,
                stream: LiveChunk::STEP,
                text,
            });
        }
    }
}

impl PlanObserver for EventWriter {
    async fn on_step_started(&self, step_index: usize, step: &Step) {
        // The step prints with its secrets masked.
        self.announce(step_index, format!("{step}\n"));
    }

    async fn on_milestone(&self, step_index: usize, milestone: MilestoneReached) -> Result<(), ObserverError> {
        self.announce(step_index, format!("==> {}\n", milestone.label));
        *self.current.lock().expect("event writer lock") = (milestone.index as i32, milestone.label.to_owned());
        self.write(
            milestone.label,
            milestone.index as i32,
            "running",
            json!({ "key": milestone.key }),
            None,
        )
        .await
        .map(|_| ())
        .map_err(|error| ObserverError(format!("cannot record progress: {error}")))
    }

    async fn on_output(&self, step_index: usize, stream: Stream, chunk: &[u8]) {
        if let Some(job_id) = self.job_id {
            self.live_output.publish(LiveChunk {
                job_id,
                step_index,
                stream: match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                text: String::from_utf8_lossy(chunk).into_owned(),
            });
        }
    }

    async fn on_step_finished(&self, _report: &StepReport) -> Result<(), ObserverError> {
        Ok(())
    }

    async fn on_persist(&self, _step_index: usize, record: &Record) -> Result<(), ObserverError> {
        let result = match self.events {
            EventTarget::Server { server_id } => {
                package_records::upsert_server_package(
                    &self.db,
                    server_id,
                    record.package_type,
                    record.package_name,
                    record_instance(record),
                    &record.version,
                    &record.configuration,
                    "active",
                )
                .await
            }
            EventTarget::Site { server_id, site_id } => {
                package_records::upsert_site_package(
                    &self.db,
                    server_id,
                    site_id,
                    record.package_type,
                    record.package_name,
                    &record.configuration,
                    "active",
                )
                .await
            }
        };
        result.map_err(|error| ObserverError(format!("cannot record the package: {error}")))
    }
}

/// The operations a `package.operation` job can carry, with their inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "operation", content = "input", rename_all = "kebab-case")]
pub enum PackageOperation {
    TimeSyncInstall(<TimeSyncInstall as Operation>::Input),
    TimeSyncRemove(<TimeSyncRemove as Operation>::Input),
    FirewallInstall(<FirewallInstall as Operation>::Input),
    FirewallRuleInstall(<FirewallRuleInstall as Operation>::Input),
    FirewallRuleRemove(<FirewallRuleRemove as Operation>::Input),
    PhpInstall(<PhpInstall as Operation>::Input),
    PhpRemove(<PhpRemove as Operation>::Input),
    PhpCliDefaultInstall(<PhpCliDefaultInstall as Operation>::Input),
    PhpExtensionInstall(<PhpExtensionInstall as Operation>::Input),
    PhpExtensionRemove(<PhpExtensionRemove as Operation>::Input),
    NginxInstall(<NginxInstall as Operation>::Input),
    NginxRemove(<NginxRemove as Operation>::Input),
    CronInstall(<CronInstall as Operation>::Input),
    SupervisorInstall(<SupervisorInstall as Operation>::Input),
    NodeJsInstall(<NodeJsInstall as Operation>::Input),
    ComposerInstall(<ComposerInstall as Operation>::Input),
    ServerAccessRemove(<ServerAccessRemove as Operation>::Input),
    SiteCommandRun(<SiteCommandRun as Operation>::Input),
    SiteInstall(<SiteInstall as Operation>::Input),
    SiteRemove(<SiteRemove as Operation>::Input),
    DefaultSiteUpdate(<DefaultSiteUpdate as Operation>::Input),
    GitKnownHostsInstall(<GitKnownHostsInstall as Operation>::Input),
    SiteDeploy(<SiteDeploy as Operation>::Input),
    SiteRollback(<SiteRollback as Operation>::Input),
    SiteDeployKeyInstall(<SiteDeployKeyInstall as Operation>::Input),
    SiteDeployKeyRemove(<SiteDeployKeyRemove as Operation>::Input),
    /// Its contents are secret and never serialize: build it in memory and run it
    /// with `execute_payload`, never through `enqueue`.
    EnvFileWrite(<EnvFileWrite as Operation>::Input),
    /// Its contents never serialize either (see `EnvFileWrite`).
    SiteFileWrite(<SiteFileWrite as Operation>::Input),
    SiteFileDelete(<SiteFileDelete as Operation>::Input),
}

/// The payload of a `package.operation` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageOperationPayload {
    pub events: EventTarget,
    pub operation: PackageOperation,
    /// What the control plane does once the job has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<crate::follow_up::FollowUp>,
}

/// Runs the payload's operation.
pub async fn execute_payload(
    environment: &OperationEnvironment,
    job_id: Option<i64>,
    payload: &PackageOperationPayload,
) -> Result<OperationOutcome, OperationError> {
    let events = payload.events;
    match &payload.operation {
        PackageOperation::TimeSyncInstall(input) => {
            execute::<TimeSyncInstall>(environment, events, job_id, input).await
        }
        PackageOperation::TimeSyncRemove(input) => execute::<TimeSyncRemove>(environment, events, job_id, input).await,
        PackageOperation::FirewallInstall(input) => {
            execute::<FirewallInstall>(environment, events, job_id, input).await
        }
        PackageOperation::FirewallRuleInstall(input) => {
            execute::<FirewallRuleInstall>(environment, events, job_id, input).await
        }
        PackageOperation::FirewallRuleRemove(input) => {
            execute::<FirewallRuleRemove>(environment, events, job_id, input).await
        }
        PackageOperation::PhpInstall(input) => execute::<PhpInstall>(environment, events, job_id, input).await,
        PackageOperation::PhpRemove(input) => {
            let version = input.version.as_str();
            execute_removing::<PhpRemove>(environment, events, job_id, input, Some(version)).await
        }
        PackageOperation::PhpCliDefaultInstall(input) => {
            execute::<PhpCliDefaultInstall>(environment, events, job_id, input).await
        }
        PackageOperation::PhpExtensionInstall(input) => {
            execute::<PhpExtensionInstall>(environment, events, job_id, input).await
        }
        PackageOperation::PhpExtensionRemove(input) => {
            execute::<PhpExtensionRemove>(environment, events, job_id, input).await
        }
        PackageOperation::NginxInstall(input) => execute::<NginxInstall>(environment, events, job_id, input).await,
        PackageOperation::NginxRemove(input) => execute::<NginxRemove>(environment, events, job_id, input).await,
        PackageOperation::CronInstall(input) => execute::<CronInstall>(environment, events, job_id, input).await,
        PackageOperation::SupervisorInstall(input) => {
            execute::<SupervisorInstall>(environment, events, job_id, input).await
        }
        PackageOperation::NodeJsInstall(input) => execute::<NodeJsInstall>(environment, events, job_id, input).await,
        PackageOperation::ComposerInstall(input) => {
            execute::<ComposerInstall>(environment, events, job_id, input).await
        }
        PackageOperation::ServerAccessRemove(input) => {
            execute::<ServerAccessRemove>(environment, events, job_id, input).await
        }
        PackageOperation::SiteCommandRun(input) => execute::<SiteCommandRun>(environment, events, job_id, input).await,
        PackageOperation::SiteInstall(input) => execute::<SiteInstall>(environment, events, job_id, input).await,
        PackageOperation::SiteRemove(input) => execute::<SiteRemove>(environment, events, job_id, input).await,
        PackageOperation::DefaultSiteUpdate(input) => {
            execute::<DefaultSiteUpdate>(environment, events, job_id, input).await
        }
        PackageOperation::GitKnownHostsInstall(input) => {
            execute::<GitKnownHostsInstall>(environment, events, job_id, input).await
        }
        PackageOperation::SiteDeploy(input) => execute::<SiteDeploy>(environment, events, job_id, input).await,
        PackageOperation::SiteRollback(input) => execute::<SiteRollback>(environment, events, job_id, input).await,
        PackageOperation::SiteDeployKeyInstall(input) => {
            execute::<SiteDeployKeyInstall>(environment, events, job_id, input).await
        }
        PackageOperation::SiteDeployKeyRemove(input) => {
            execute::<SiteDeployKeyRemove>(environment, events, job_id, input).await
        }
        PackageOperation::EnvFileWrite(input) => execute::<EnvFileWrite>(environment, events, job_id, input).await,
        PackageOperation::SiteFileWrite(input) => execute::<SiteFileWrite>(environment, events, job_id, input).await,
        PackageOperation::SiteFileDelete(input) => execute::<SiteFileDelete>(environment, events, job_id, input).await,
    }
}

/// Enqueues one operation on a server: one job per unit of work, one running
/// operation per server at a time (the others wait their turn).
pub async fn enqueue(
    queue: &Queue,
    payload: &PackageOperationPayload,
) -> Result<brokeforge_queue::JobId, brokeforge_queue::QueueError> {
    let subject = format!("server:{}", payload.events.server_id());
    let job = NewJob::with_payload(PACKAGE_OPERATION_KIND, payload)
        .expect("operation payloads serialise")
        .subject(subject.clone())
        .exclusive(subject)
        .max_attempts(3)
        .timeout(std::time::Duration::from_secs(60 * 60));
    queue.enqueue(job).await
}

/// Registers the `package.operation` handler: load nothing more than the payload
/// names, run it, report the outcome.
pub fn register(registry: &mut Registry, environment: &OperationEnvironment) {
    let environment = environment.clone();
    registry.register(
        PACKAGE_OPERATION_KIND,
        move |context: JobContext, payload: PackageOperationPayload| {
            let environment = environment.clone();
            async move {
                let result = execute_payload(&environment, Some(context.id.0), &payload).await;
                if let Some(follow_up) = &payload.follow_up {
                    let finished = match &result {
                        Ok(outcome) => crate::follow_up::Finished::Succeeded(outcome),
                        Err(error) if error.is_transient() && !context.is_last_attempt() => {
                            crate::follow_up::Finished::WillRetry(error)
                        }
                        Err(error) => crate::follow_up::Finished::Failed(error),
                    };
                    crate::follow_up::run(
                        &environment,
                        payload.events.server_id(),
                        context.id.0,
                        follow_up,
                        finished,
                    )
                    .await
                    .map_err(|error| JobError::retryable(error.to_string()))?;
                }
                result.map(|_| ()).map_err(OperationError::into_job_error)
            }
        },
    );
}

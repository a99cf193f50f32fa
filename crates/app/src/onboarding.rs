//! Server onboarding: from "add a server" to a connected server whose provisioning
//! has started.
//!
//! 1. Adding a server generates two ed25519 key pairs in memory (root and
//!    brokeforge), seals the private halves into the database and issues a
//!    bootstrap line: `curl -fsSL '<url>/bootstrap/<token>' | sudo bash`. The token
//!    is 256 random bits, valid for [`BOOTSTRAP_LINE_LIFETIME`], used once, revocable
//!    and regenerable; the database keeps its SHA-256 for lookups and the token itself
//!    only sealed.
//! 2. Downloading the line renders the bootstrap script with the two **public** keys
//!    and two callback URLs signed with HMAC-SHA256 (key derived from the master
//!    key), which name the line, a random run nonce and an expiry.
//! 3. The script's first progress report claims the line for its run; reports of any
//!    other run, forged or expired signatures, and reports after completion are
//!    refused. Each step becomes a `bootstrap` event on the server.
//! 4. The completion report is validated (host keys, deploy key, os-release, SSH
//!    port), the host keys are pinned, and a `server.verify_access` job checks over
//!    the pinned connection that root and brokeforge log in (`whoami`), reads the
//!    release again, marks the server connected and starts provisioning.

use std::time::Duration;

use brokeforge_core::{Cmd, RemoteUser};
use brokeforge_db::bootstrap_tokens::{self as token_table, BootstrapTokenRecord};
use brokeforge_db::package_events::{self, NewPackageEvent};
use brokeforge_db::server_access::{self, credential_aad};
use brokeforge_db::servers::{self as server_table, BootstrapReport, ServerRecord};
use brokeforge_db::{Db, Sealer};
use brokeforge_packages::bootstrap::{
    BootstrapCompletion, BootstrapProgress, BootstrapScriptInput, BootstrapStep, BootstrapStepStatus, CallbackUrl,
    SudoRules, bootstrap_command_line, render_bootstrap_script, render_refusal_script,
};
use brokeforge_packages::os::parse_os_release_text;
use brokeforge_packages::ssh_key::OpenSshPublicKey;
use brokeforge_queue::{JobContext, JobError, JobId, NewJob, Queue, Registry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::crypto::{random_hex, sha256};
use crate::error::AppError;
use crate::operations::{OperationEnvironment, OperationError};
use crate::servers::{AddressPolicy, ServerInput};

/// How long a bootstrap line can start a bootstrap.
pub const BOOTSTRAP_LINE_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long the callback URLs of a downloaded script stay valid.
pub const CALLBACK_LIFETIME: Duration = Duration::from_secs(3 * 60 * 60);
/// The job kind that checks a freshly bootstrapped server over SSH.
pub const VERIFY_ACCESS_KIND: &str = "server.verify_access";
/// The `service_type` of bootstrap events.
pub const BOOTSTRAP_EVENTS: &str = "bootstrap";
/// The `service_type` of connection-check events.
pub const CONNECTIVITY_EVENTS: &str = "connectivity";

/// Connection statuses of the `servers.connection_status` column.
pub mod connection {
    /// Added; the bootstrap line has not been run.
    pub const PENDING: &str = "pending";
    /// The bootstrap script is running.
    pub const BOOTSTRAPPING: &str = "bootstrapping";
    /// Host keys pinned; logging in is being checked.
    pub const VERIFYING: &str = "verifying";
    pub const CONNECTED: &str = "connected";
    pub const FAILED: &str = "failed";
}

/// A bootstrap line for the owner to copy. It holds a credential, so it prints
/// masked in debug output.
#[derive(Clone, Serialize)]
pub struct BootstrapLine {
    /// The command to run on the server.
    pub command: String,
    /// The script's URL (the command downloads it).
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for BootstrapLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapLine")
            .field("command", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn line_for(base_url: &str, token: &str, expires_at_ms: i64) -> BootstrapLine {
    let url = format!("{}/bootstrap/{token}", base_url.trim_end_matches('/'));
    BootstrapLine {
        command: bootstrap_command_line(&url).unwrap_or_default(),
        url,
        expires_at: DateTime::from_timestamp_millis(expires_at_ms).unwrap_or_default(),
    }
}

/// Adds a server for the caller: the record, its two sealed key pairs and a first
/// bootstrap line.
pub async fn create_server(
    db: &Db,
    sealer: &Sealer,
    principal: &Principal,
    policy: AddressPolicy,
    input: &ServerInput,
    base_url: &str,
) -> Result<(ServerRecord, BootstrapLine), AppError> {
    let server = crate::servers::create(db, principal, policy, input).await?;
    let prepared = async {
        store_key_pairs(db, sealer, server.id).await?;
        issue_line(db, sealer, server.id, base_url).await
    }
    .await;
    match prepared {
        Ok(line) => Ok((server, line)),
        Err(error) => {
            // A server without keys cannot be bootstrapped: do not leave it behind.
            let _ = server_table::delete_owned(db, principal.user_id, server.id).await;
            Err(error)
        }
    }
}

/// Generates the root and brokeforge key pairs of a server in memory and stores
/// them, the private halves sealed to their rows.
async fn store_key_pairs(db: &Db, sealer: &Sealer, server_id: i64) -> Result<(), AppError> {
    for role in [RemoteUser::Root, RemoteUser::BrokeForge] {
        let comment = format!("brokeforge-{}-server-{server_id}", role.as_str());
        let keypair = brokeforge_ssh::keys::generate_keypair(&comment);
        let sealed = sealer
            .seal_str(
                keypair.private_openssh.expose(),
                &credential_aad(server_id, role.as_str()),
            )
            .map_err(AppError::internal)?;
        server_access::store_credential(db, server_id, role.as_str(), None, &sealed, &keypair.public_openssh).await?;
    }
    Ok(())
}

fn token_aad(server_id: i64) -> String {
    format!("bootstrap_tokens:{server_id}")
}

/// Revokes the server's unused lines and issues a new one.
async fn issue_line(db: &Db, sealer: &Sealer, server_id: i64, base_url: &str) -> Result<BootstrapLine, AppError> {
    let token = zeroize::Zeroizing::new(random_hex(32));
    let sealed = sealer
        .seal_str(&token, &token_aad(server_id))
        .map_err(AppError::internal)?;
    let now = brokeforge_db::clock::now_millis();
    let expires = now + BOOTSTRAP_LINE_LIFETIME.as_millis() as i64;
    token_table::replace(db, server_id, &sha256(&token), &sealed, now, expires).await?;
    Ok(line_for(base_url, &token, expires))
}

/// The server's bootstrap line while it can still be used; `None` once it was used,
/// revoked or has expired.
pub async fn current_line(
    db: &Db,
    sealer: &Sealer,
    principal: &Principal,
    server_id: i64,
    base_url: &str,
) -> Result<Option<BootstrapLine>, AppError> {
    let server = crate::servers::get(db, principal, server_id).await?;
    let Some(record) = token_table::latest_for_server(db, server.id).await? else {
        return Ok(None);
    };
    if !record.is_usable(brokeforge_db::clock::now_millis()) {
        return Ok(None);
    }
    let token = sealer
        .open_string(&record.token_sealed, &token_aad(server.id))
        .map_err(AppError::internal)?;
    Ok(Some(line_for(base_url, &token, record.expires_at_ms)))
}

/// The server's newest bootstrap line record, for status views.
pub async fn latest_line_record(db: &Db, server_id: i64) -> Result<Option<BootstrapTokenRecord>, AppError> {
    Ok(token_table::latest_for_server(db, server_id).await?)
}

/// Replaces the server's bootstrap line with a new one (the old one stops working).
pub async fn regenerate_line(
    db: &Db,
    sealer: &Sealer,
    principal: &Principal,
    server_id: i64,
    base_url: &str,
) -> Result<BootstrapLine, AppError> {
    principal.require(Scope::Write)?;
    let server = crate::servers::get(db, principal, server_id).await?;
    let line = issue_line(db, sealer, server.id, base_url).await?;
    if server.connection_status == connection::FAILED && server.host_key.is_none() {
        server_table::set_connection_status(db, server.id, connection::PENDING).await?;
    }
    crate::audit::record(
        db,
        &principal.actor(),
        "server.bootstrap_line_issued",
        Some(server.id),
        Some(&format!("server:{}", server.id)),
        &format!("Issued a new bootstrap line for server \"{}\"", server.name),
    )
    .await;
    Ok(line)
}

/// Revokes the server's unused bootstrap line.
pub async fn revoke_line(db: &Db, principal: &Principal, server_id: i64) -> Result<(), AppError> {
    principal.require(Scope::Write)?;
    let server = crate::servers::get(db, principal, server_id).await?;
    token_table::revoke_unused(db, server.id, brokeforge_db::clock::now_millis()).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "server.bootstrap_line_revoked",
        Some(server.id),
        Some(&format!("server:{}", server.id)),
        &format!("Revoked the bootstrap line of server \"{}\"", server.name),
    )
    .await;
    Ok(())
}

/// What `GET /bootstrap/<token>` answers: always a bash script, so that a line that
/// cannot be used still prints a clear message on the server.
#[derive(Debug)]
pub struct ScriptResponse {
    pub body: Vec<u8>,
    /// False when the body is only a message saying why the line cannot be used.
    pub usable: bool,
}

/// A script that prints `message` and fails, for lines that cannot be used.
fn refusal_script(message: &str) -> ScriptResponse {
    ScriptResponse {
        body: render_refusal_script(message),
        usable: false,
    }
}

/// The bootstrap script for `token`, with callbacks under `base_url`.
pub async fn script_for_token(
    db: &Db,
    sealer: &Sealer,
    token: &str,
    base_url: &str,
) -> Result<ScriptResponse, AppError> {
    let well_formed = token.len() == 64 && token.bytes().all(|byte| byte.is_ascii_hexdigit());
    let record = if well_formed {
        token_table::find_by_hash(db, &sha256(token)).await?
    } else {
        None
    };
    let Some(record) = record else {
        return Ok(refusal_script(
            "this bootstrap line is not valid. Copy the line again from the server's page in BrokeForge.",
        ));
    };
    let now = brokeforge_db::clock::now_millis();
    if record.revoked_at_ms.is_some() {
        return Ok(refusal_script(
            "this bootstrap line was replaced or revoked. Use the line the server's page in BrokeForge shows now.",
        ));
    }
    if record.run_nonce.is_some() {
        return Ok(refusal_script(
            "this bootstrap line was already used. Get a new line from the server's page in BrokeForge.",
        ));
    }
    if record.expires_at_ms <= now {
        return Ok(refusal_script(
            "this bootstrap line has expired. Get a new line from the server's page in BrokeForge.",
        ));
    }
    let server = server_table::find(db, record.server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    let public_key = |role: &'static str| async move {
        let credential = server_access::credential(db, server.id, role)
            .await?
            .ok_or_else(|| AppError::internal(format!("server {} has no {role} key", server.id)))?;
        credential
            .public_key
            .parse::<OpenSshPublicKey>()
            .map_err(AppError::internal)
    };
    let root_public_key = public_key("root").await?;
    let brokeforge_public_key = public_key("brokeforge").await?;
    let run = random_hex(16);
    let expires = (now + CALLBACK_LIFETIME.as_millis() as i64) / 1000;
    let callback = |kind: CallbackKind| -> Result<CallbackUrl, AppError> {
        let url = signed_callback_url(sealer, base_url, record.id, kind, &run, expires);
        url.parse::<CallbackUrl>().map_err(|error| {
            AppError::Conflict(format!(
                "BrokeForge's public URL cannot receive reports from servers: {error}. \
                 Start BrokeForge with --public-url set to an https:// address the server can reach."
            ))
        })
    };
    let input = BootstrapScriptInput {
        progress_url: match callback(CallbackKind::Progress) {
            Ok(url) => url,
            Err(error) => return Ok(refusal_script(&error.to_string())),
        },
        completion_url: callback(CallbackKind::Complete)?,
        root_public_key,
        brokeforge_public_key,
        ssh_port: crate::servers::valid_from_record(&server).ssh_port,
        sudo_rules: SudoRules::standard(),
    };
    let body = render_bootstrap_script(&input).map_err(AppError::internal)?;
    token_table::mark_downloaded(db, record.id, now).await?;
    Ok(ScriptResponse { body, usable: true })
}

/// The two callbacks of a script run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackKind {
    Progress,
    Complete,
}

impl CallbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Progress => "progress",
            CallbackKind::Complete => "complete",
        }
    }

    pub fn parse(text: &str) -> Option<CallbackKind> {
        match text {
            "progress" => Some(CallbackKind::Progress),
            "complete" => Some(CallbackKind::Complete),
            _ => None,
        }
    }
}

/// The query string of a callback URL.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub run: String,
    pub expires: i64,
    pub signature: String,
}

fn signed_message(line_id: i64, kind: CallbackKind, run: &str, expires: i64) -> String {
    format!(
        "brokeforge bootstrap callback v1\n{line_id}\n{}\n{run}\n{expires}",
        kind.as_str()
    )
}

/// A callback URL of line `line_id` for script run `run`, valid until `expires`
/// (Unix seconds), signed with the control plane's signing key.
pub fn signed_callback_url(
    sealer: &Sealer,
    base_url: &str,
    line_id: i64,
    kind: CallbackKind,
    run: &str,
    expires: i64,
) -> String {
    let signature = hex::encode(sealer.sign(signed_message(line_id, kind, run, expires).as_bytes()));
    format!(
        "{}/bootstrap/callback/{line_id}/{}?run={run}&expires={expires}&signature={signature}",
        base_url.trim_end_matches('/'),
        kind.as_str()
    )
}

/// Why a callback is refused. The web layer answers 401 for a bad signature, 410 for
/// a line that cannot be used any more (the script then tells the user to get a new
/// line), 422 for a report that does not validate.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the callback signature is not valid")]
    BadSignature,
    #[error("{0}")]
    Gone(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<brokeforge_db::DbError> for CallbackError {
    fn from(error: brokeforge_db::DbError) -> Self {
        CallbackError::App(error.into())
    }
}

/// Checks a callback's signature and expiry, before its body is even read.
pub fn verify_callback_signature(
    sealer: &Sealer,
    line_id: i64,
    kind: CallbackKind,
    query: &CallbackQuery,
) -> Result<(), CallbackError> {
    let signature = hex::decode(&query.signature).map_err(|_| CallbackError::BadSignature)?;
    let well_formed_run = query.run.len() == 32 && query.run.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !well_formed_run
        || !sealer.verify_signature(
            signed_message(line_id, kind, &query.run, query.expires).as_bytes(),
            &signature,
        )
    {
        return Err(CallbackError::BadSignature);
    }
    if query.expires.saturating_mul(1000) <= brokeforge_db::clock::now_millis() {
        return Err(CallbackError::Gone("this bootstrap run's reporting URL has expired"));
    }
    Ok(())
}

/// Checks the signature and expiry of a callback and loads its line.
async fn authenticate(
    db: &Db,
    sealer: &Sealer,
    line_id: i64,
    kind: CallbackKind,
    query: &CallbackQuery,
) -> Result<BootstrapTokenRecord, CallbackError> {
    verify_callback_signature(sealer, line_id, kind, query)?;
    let record = token_table::find(db, line_id)
        .await?
        .ok_or(CallbackError::Gone("this bootstrap line no longer exists"))?;
    if record.revoked_at_ms.is_some() {
        return Err(CallbackError::Gone("this bootstrap line was revoked"));
    }
    if record.completed_at_ms.is_some() {
        return Err(CallbackError::Gone(
            "this bootstrap line was already used to completion",
        ));
    }
    Ok(record)
}

/// Records a progress report of the bootstrap script.
pub async fn record_progress(
    db: &Db,
    sealer: &Sealer,
    line_id: i64,
    query: &CallbackQuery,
    report: &BootstrapProgress,
) -> Result<(), CallbackError> {
    let record = authenticate(db, sealer, line_id, CallbackKind::Progress, query).await?;
    let now = brokeforge_db::clock::now_millis();
    match record.run_nonce.as_deref() {
        Some(run) if run == query.run => {}
        Some(_) => return Err(CallbackError::Gone("this bootstrap line was already used")),
        None if report.step == BootstrapStep::Started => {
            if !token_table::claim(db, record.id, &query.run, now).await? {
                return Err(CallbackError::Gone(
                    "this bootstrap line was already used, or has expired",
                ));
            }
            server_table::set_connection_status(db, record.server_id, connection::BOOTSTRAPPING).await?;
        }
        None => return Err(CallbackError::Invalid("the first report must be the start".to_owned())),
    }
    let position = BootstrapStep::ALL
        .iter()
        .position(|step| *step == report.step)
        .unwrap_or(0);
    let message: Option<String> = report
        .message
        .as_deref()
        .map(|message| message.chars().filter(|c| !c.is_control()).take(1000).collect());
    let status = match report.status {
        BootstrapStepStatus::Running => "running",
        BootstrapStepStatus::Success => "success",
        BootstrapStepStatus::Failed => "failed",
    };
    insert_event(
        db,
        record.server_id,
        None,
        BOOTSTRAP_EVENTS,
        report.step.label(),
        position as i32 + 1,
        BootstrapStep::ALL.len() as i32,
        status,
        json!({ "step": report.step.as_str(), "message": message }),
        message.as_deref(),
    )
    .await?;
    if report.status == BootstrapStepStatus::Failed {
        server_table::set_connection_status(db, record.server_id, connection::FAILED).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    db: &Db,
    server_id: i64,
    job_id: Option<i64>,
    service_type: &str,
    milestone: &str,
    current_step: i32,
    total_steps: i32,
    status: &str,
    details: serde_json::Value,
    error_log: Option<&str>,
) -> Result<i64, brokeforge_db::DbError> {
    package_events::insert(
        db,
        &NewPackageEvent {
            server_id,
            job_id,
            service_type,
            provision_type: "install",
            milestone,
            current_step,
            total_steps,
            details,
            status,
            error_log,
        },
    )
    .await
}

/// Accepts the completion report: pins the host keys, records the deploy key and
/// the release, and enqueues the connection check.
pub async fn record_completion(
    db: &Db,
    sealer: &Sealer,
    queue: &Queue,
    line_id: i64,
    query: &CallbackQuery,
    report: &BootstrapCompletion,
) -> Result<JobId, CallbackError> {
    let record = authenticate(db, sealer, line_id, CallbackKind::Complete, query).await?;
    if record.run_nonce.as_deref() != Some(query.run.as_str()) {
        return Err(CallbackError::Gone("this bootstrap line was already used"));
    }
    let server = server_table::find(db, record.server_id)
        .await?
        .ok_or(CallbackError::Gone("the server was deleted"))?;
    let total = BootstrapStep::ALL.len() as i32;
    let verified = match report.verify(crate::servers::valid_from_record(&server).ssh_port) {
        Ok(verified) => verified,
        Err(error) => {
            let message = format!("The server's report was refused: {error}.");
            insert_event(
                db,
                server.id,
                None,
                BOOTSTRAP_EVENTS,
                BootstrapStep::Report.label(),
                total,
                total,
                "failed",
                json!({ "step": BootstrapStep::Report.as_str(), "message": message }),
                Some(&message),
            )
            .await?;
            server_table::set_connection_status(db, server.id, connection::FAILED).await?;
            return Err(CallbackError::Invalid(message));
        }
    };
    if !token_table::complete(db, record.id, &query.run, brokeforge_db::clock::now_millis()).await? {
        return Err(CallbackError::Gone(
            "this bootstrap line was already used to completion",
        ));
    }
    let host_keys: Vec<String> = verified.ssh_host_keys.iter().map(|key| key.key_material()).collect();
    let release = &verified.os_release;
    server_table::record_bootstrap(
        db,
        server.id,
        &BootstrapReport {
            host_keys: &host_keys.join("\n"),
            deploy_public_key: &verified.deploy_public_key.authorized_keys_line(),
            os_name: &release.id,
            os_version: release.version_id.as_deref().unwrap_or(""),
            os_codename: release.version_codename.as_deref().unwrap_or(""),
        },
    )
    .await?;
    insert_event(
        db,
        server.id,
        None,
        BOOTSTRAP_EVENTS,
        BootstrapStep::Report.label(),
        total,
        total,
        "success",
        json!({
            "step": BootstrapStep::Report.as_str(),
            "host_keys": host_keys.len(),
            "os": verified.os.label(),
        }),
        None,
    )
    .await?;
    Ok(enqueue_verification(db, queue, server.id).await?)
}

/// The payload of a `server.verify_access` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyAccessPayload {
    pub server_id: i64,
}

/// Enqueues the connection check of a bootstrapped server.
pub async fn enqueue_verification(db: &Db, queue: &Queue, server_id: i64) -> Result<JobId, AppError> {
    server_table::set_connection_status(db, server_id, connection::VERIFYING).await?;
    let subject = format!("server:{server_id}");
    let job = NewJob::with_payload(VERIFY_ACCESS_KIND, &VerifyAccessPayload { server_id })
        .map_err(AppError::internal)?
        .subject(subject.clone())
        .exclusive(subject)
        .max_attempts(5)
        .timeout(Duration::from_secs(120));
    Ok(queue.enqueue(job).await?)
}

/// Logs in as root and as brokeforge over the pinned host keys, checks who each
/// login is, reads the release, marks the server connected and starts provisioning.
pub async fn verify_access(
    environment: &OperationEnvironment,
    job_id: i64,
    server_id: i64,
) -> Result<(), OperationError> {
    let db = &environment.db;
    let roles = [RemoteUser::Root, RemoteUser::BrokeForge];
    let total = roles.len() as i32 + 1;
    for (index, role) in roles.into_iter().enumerate() {
        let label = match role {
            RemoteUser::Root => "Logging in as root",
            RemoteUser::BrokeForge => "Logging in as brokeforge",
        };
        let step = index as i32 + 1;
        insert_event(
            db,
            server_id,
            Some(job_id),
            CONNECTIVITY_EVENTS,
            label,
            step,
            total,
            "running",
            json!({}),
            None,
        )
        .await?;
        let result = async {
            let target = crate::operations::target(environment, server_id, role).await?;
            let expected = target.user.clone();
            let output = environment
                .ssh
                .run_command(&target, &Cmd::new("whoami"), Duration::from_secs(30))
                .await?;
            let who = output.stdout_text().trim().to_owned();
            if output.exit_code != 0 || who != expected {
                return Err(OperationError::Refused(format!(
                    "logging in as {expected} answered {who:?} (exit code {}), not {expected}",
                    output.exit_code
                )));
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            let message = error.to_string();
            insert_event(
                db,
                server_id,
                Some(job_id),
                CONNECTIVITY_EVENTS,
                label,
                step,
                total,
                "failed",
                json!({ "message": message }),
                Some(&message),
            )
            .await?;
            return Err(error);
        }
    }
    let label = "Detecting the operating system";
    let target = crate::operations::target(environment, server_id, RemoteUser::Root).await?;
    let output = environment
        .ssh
        .run_command(
            &target,
            &brokeforge_packages::os::os_release_cmd(),
            Duration::from_secs(30),
        )
        .await?;
    let release = parse_os_release_text(&output.stdout_text())
        .map_err(|error| OperationError::Facts(format!("cannot read /etc/os-release: {}", error.0)))?;
    let os = release
        .supported()
        .map_err(|error| OperationError::Refused(error.to_string()))?;
    insert_event(
        db,
        server_id,
        Some(job_id),
        CONNECTIVITY_EVENTS,
        label,
        total,
        total,
        "success",
        json!({ "os": os.label() }),
        None,
    )
    .await?;
    server_table::set_connection_status(db, server_id, connection::CONNECTED).await?;
    crate::provisioning::start(db, &environment.queue, server_id, 0)
        .await
        .map_err(|error| OperationError::Refused(format!("cannot start provisioning: {error}")))?;
    Ok(())
}

/// Registers the `server.verify_access` handler.
pub fn register(registry: &mut Registry, environment: &OperationEnvironment) {
    let environment = environment.clone();
    registry.register(
        VERIFY_ACCESS_KIND,
        move |context: JobContext, payload: VerifyAccessPayload| {
            let environment = environment.clone();
            async move {
                let result = verify_access(&environment, context.id.0, payload.server_id).await;
                let final_failure = result
                    .as_ref()
                    .is_err_and(|error| !error.is_transient() || context.is_last_attempt());
                if final_failure {
                    let _ = server_table::set_connection_status(&environment.db, payload.server_id, connection::FAILED)
                        .await;
                }
                result.map_err(|error| match error {
                    OperationError::ServerGone(_) => JobError::permanent(error.to_string()),
                    other => other.into_job_error(),
                })
            }
        },
    );
}

/// One report of the bootstrap script or of the connection check.
#[derive(Debug, Clone, Serialize)]
pub struct OnboardingEvent {
    /// `bootstrap` or `connectivity`.
    pub source: String,
    pub label: String,
    /// running, success or failed.
    pub status: String,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a server's onboarding stands.
#[derive(Debug, Clone, Serialize)]
pub struct OnboardingStatus {
    pub connection_status: String,
    pub provision_status: String,
    pub stages: Vec<crate::provisioning::StageView>,
    /// The bootstrap and connection-check reports, oldest first.
    pub events: Vec<OnboardingEvent>,
    /// The provisioning step that runs or failed, with its job.
    pub provisioning_step: Option<String>,
    pub provisioning_job_id: Option<i64>,
    /// Why onboarding stopped, when it did.
    pub failure: Option<String>,
    /// Whether the bootstrap line may be used now.
    pub line_usable: bool,
    pub line_expires_at: Option<DateTime<Utc>>,
    /// Each provisioning package and whether the last pass changed anything with it.
    pub packages: Vec<crate::provisioning::PackageResult>,
}

/// The onboarding status of one of the caller's servers.
pub async fn status(db: &Db, principal: &Principal, server_id: i64) -> Result<OnboardingStatus, AppError> {
    let server = crate::servers::get(db, principal, server_id).await?;
    let line = token_table::latest_for_server(db, server.id).await?;
    let mut events = Vec::new();
    for source in [BOOTSTRAP_EVENTS, CONNECTIVITY_EVENTS] {
        for record in package_events::list_for_server_service(db, server.id, source, 50).await? {
            events.push(OnboardingEvent {
                source: source.to_owned(),
                message: record
                    .details
                    .0
                    .get("message")
                    .and_then(|value| value.as_str())
                    .map(str::to_owned)
                    .or_else(|| record.error_log.clone()),
                label: record.milestone,
                status: record.status,
                created_at: record.created_at,
            });
        }
    }
    events.sort_by_key(|event| event.created_at);
    let state = &server.provision_state.0;
    let failure = if server.provision_status == crate::provisioning::status::FAILED {
        state.get("error").and_then(|value| value.as_str()).map(|error| {
            format!(
                "{} failed: {error}",
                state.get("label").and_then(|value| value.as_str()).unwrap_or("A step")
            )
        })
    } else if server.connection_status == connection::FAILED {
        events
            .iter()
            .rev()
            .find(|event| event.status == "failed")
            .map(|event| format!("{}: {}", event.label, event.message.as_deref().unwrap_or("failed")))
    } else {
        None
    };
    let now = brokeforge_db::clock::now_millis();
    Ok(OnboardingStatus {
        stages: crate::provisioning::stages(&server, line.as_ref()),
        connection_status: server.connection_status.clone(),
        provision_status: server.provision_status.clone(),
        events,
        provisioning_step: state.get("label").and_then(|value| value.as_str()).map(str::to_owned),
        provisioning_job_id: state.get("job_id").and_then(|value| value.as_i64()),
        failure,
        line_usable: line.as_ref().is_some_and(|line| line.is_usable(now)),
        line_expires_at: line
            .as_ref()
            .filter(|line| line.is_usable(now))
            .and_then(|line| DateTime::from_timestamp_millis(line.expires_at_ms)),
        packages: crate::provisioning::results(&server),
    })
}

/// What deleting a server started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The records are gone.
    Deleted,
    /// A job removes BrokeForge's access first; the records go when it succeeds.
    RemovingAccess(JobId),
}

/// Deletes one of the caller's servers. With `remove_access`, a job first deletes the
/// brokeforge user (home, sudo rules) and BrokeForge's keys from root's
/// `authorized_keys` on the server; the records and sealed keys are erased when it
/// succeeds. Without it, the records and keys are erased at once.
pub async fn delete_server(
    db: &Db,
    queue: &Queue,
    principal: &Principal,
    server_id: i64,
    remove_access: bool,
) -> Result<Deletion, AppError> {
    principal.require(Scope::Write)?;
    let server = crate::servers::get(db, principal, server_id).await?;
    if !remove_access {
        crate::servers::delete(db, principal, server_id).await?;
        return Ok(Deletion::Deleted);
    }
    if server.host_key.is_none() {
        return Err(AppError::Conflict(
            "BrokeForge never reached this server, so it has no access to remove: delete it without removing access"
                .to_owned(),
        ));
    }
    let public_key = |role: &'static str| async move {
        let credential = server_access::credential(db, server_id, role)
            .await?
            .ok_or_else(|| AppError::Conflict(format!("the server has no {role} key any more")))?;
        credential
            .public_key
            .parse::<OpenSshPublicKey>()
            .map_err(AppError::internal)
    };
    let input = brokeforge_packages::server_access::ServerAccessRemoveInput {
        root_public_key: public_key("root").await?,
        brokeforge_public_key: public_key("brokeforge").await?,
    };
    let job = crate::operations::enqueue(
        queue,
        &crate::operations::PackageOperationPayload {
            events: crate::operations::EventTarget::Server { server_id },
            operation: crate::operations::PackageOperation::ServerAccessRemove(input),
            follow_up: Some(crate::follow_up::FollowUp::DeleteServer),
        },
    )
    .await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "server.access_removal_started",
        Some(server.id),
        Some(&format!("server:{}", server.id)),
        &format!(
            "Started removing BrokeForge's access from server \"{}\" before deleting it",
            server.name
        ),
    )
    .await;
    Ok(Deletion::RemovingAccess(job))
}

/// Deletes a server's records once its access removal succeeded.
pub async fn after_access_removed(
    environment: &OperationEnvironment,
    server_id: i64,
    finished: crate::follow_up::Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let crate::follow_up::Finished::Succeeded(_) = finished else {
        return Ok(());
    };
    let db = &environment.db;
    let Some(server) = server_table::find(db, server_id).await? else {
        return Ok(());
    };
    server_table::erase_secrets(db, server_id).await?;
    server_table::delete_owned(db, server.user_id, server_id).await?;
    crate::audit::record(
        db,
        &crate::audit::Actor {
            user_id: Some(server.user_id),
            email: "brokeforge",
            ip: None,
        },
        "server.deleted",
        Some(server_id),
        Some(&format!("server:{server_id}")),
        &format!(
            "Removed BrokeForge's access from server \"{}\" ({}:{}) and deleted it",
            server.name, server.public_ip, server.ssh_port
        ),
    )
    .await;
    Ok(())
}

//! Firewall rules a user adds after provisioning: one job per rule, each rule listed
//! with the status of its job.
//!
//! A rule is validated into the firewall package's own types (`FirewallRule`), and a
//! rule that would close the server's SSH port is refused with the package's own
//! refusal before anything is stored. Adding inserts the row as `installing` and
//! enqueues one `FirewallRuleInstall` job; removing marks it `removing` and enqueues
//! one `FirewallRuleRemove` job. Each job carries a `FollowUp::FirewallRule`, and
//! [`after_job`] moves the row on: `active` after an installation, deleted after a
//! removal, `failed` with the job's message when it failed for good.

use brokeforge_core::Port;
use brokeforge_db::Db;
use brokeforge_db::firewall_rules::{self as rule_table, FirewallRuleRecord, NewFirewallRule};
use brokeforge_db::package_records;
use brokeforge_db::servers::{self as server_table, ServerRecord};
use brokeforge_packages::firewall::rule::{FirewallRule, PortSpec, Protocol, RuleAction, RuleComment, SourceAddress};
use brokeforge_packages::firewall::{
    Firewall, FirewallFacts, FirewallRuleInput, FirewallRuleInstall, FirewallRuleRefusal,
};
use brokeforge_packages::{DpkgState, Operation, Package};
use brokeforge_queue::{JobId, JobState, Queue, QueueError};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::follow_up::{Finished, FollowUp};
use crate::operations::{self, EventTarget, OperationEnvironment, PackageOperation, PackageOperationPayload};

/// The rule's job is queued or running and will add it.
pub const STATUS_INSTALLING: &str = "installing";
/// The rule is in place on the server.
pub const STATUS_ACTIVE: &str = "active";
/// The rule's job is queued or running and will delete it.
pub const STATUS_REMOVING: &str = "removing";
/// The rule's last job failed; `error` says why.
pub const STATUS_FAILED: &str = "failed";

/// A rule as typed into a form or sent as JSON, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RuleInput {
    /// `allow` (the default) or `deny`.
    pub action: Option<String>,
    /// A port (`8080`, as a number or text) or a range (`3000:3005`).
    pub port: Option<serde_json::Value>,
    /// `tcp` (the default) or `udp`.
    pub protocol: Option<String>,
    /// An address or a CIDR network; empty for every address.
    pub source: Option<String>,
    /// A short note shown with the rule.
    pub comment: Option<String>,
}

fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    let mut out: String = match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|text| !text.is_empty())
}

impl RuleInput {
    /// Validates every field into the firewall package's types, collecting every
    /// problem, and refuses a rule that would close `ssh_port`.
    pub fn validate(&self, ssh_port: Port) -> Result<FirewallRule, FieldErrors> {
        let mut errors = FieldErrors::new();
        let action = match trimmed(&self.action) {
            None => Some(RuleAction::Allow),
            Some(text) => text
                .parse::<RuleAction>()
                .map_err(|_| errors.add("action", "Choose allow or deny."))
                .ok(),
        };
        let port_text = match &self.port {
            Some(serde_json::Value::String(text)) => text.trim().to_owned(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let port = if port_text.is_empty() {
            errors.add(
                "port",
                "Enter a port (such as 8080) or a port range (such as 3000:3005).",
            );
            None
        } else {
            port_text
                .parse::<PortSpec>()
                .map_err(|error| errors.add("port", sentence(&error.to_string())))
                .ok()
        };
        let protocol = match trimmed(&self.protocol) {
            None => Some(Protocol::Tcp),
            Some(text) => text
                .to_ascii_lowercase()
                .parse::<Protocol>()
                .map_err(|_| errors.add("protocol", "Choose tcp or udp."))
                .ok(),
        };
        let source = match trimmed(&self.source) {
            None => Some(None),
            Some(text) => text
                .parse::<SourceAddress>()
                .map(Some)
                .map_err(|error| errors.add("source", sentence(&error.to_string())))
                .ok(),
        };
        let comment = match trimmed(&self.comment) {
            None => Some(None),
            Some(text) => text
                .parse::<RuleComment>()
                .map(Some)
                .map_err(|error| errors.add("comment", sentence(&error.to_string())))
                .ok(),
        };
        let (Some(action), Some(port), Some(protocol), Some(source), Some(comment)) =
            (action, port, protocol, source, comment)
        else {
            return Err(errors);
        };
        let rule = FirewallRule {
            action,
            port,
            protocol,
            source,
            comment,
        };
        if let Some(refusal) = ssh_refusal(&FirewallRuleInput {
            rule: rule.clone(),
            ssh_port,
        }) {
            errors.add("port", sentence(&refusal.to_string()));
            return Err(errors);
        }
        Ok(rule)
    }
}

/// The firewall package's refusal of a rule that would close the SSH port. The
/// package plans against facts where ufw is installed and holds no rule, so the only
/// refusal left is the one that depends on the rule itself.
pub fn ssh_refusal(input: &FirewallRuleInput) -> Option<FirewallRuleRefusal> {
    let facts = FirewallFacts {
        package: DpkgState::Installed,
        status: None,
        added_rules: Vec::new(),
    };
    FirewallRuleInstall::plan(input, &facts).err()
}

/// The port the server's SSH daemon listens on.
pub fn ssh_port_of(server: &ServerRecord) -> Port {
    u16::try_from(server.ssh_port)
        .ok()
        .and_then(|port| Port::new(port).ok())
        .unwrap_or_else(|| Port::new(22).expect("22 is a port"))
}

fn parse_rule(record: &FirewallRuleRecord) -> Result<FirewallRule, String> {
    fn parsed<T: std::str::FromStr>(text: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        text.parse::<T>().map_err(|error| error.to_string())
    }
    Ok(FirewallRule {
        action: parsed(&record.rule_action)?,
        port: parsed(&record.port)?,
        protocol: parsed(&record.protocol)?,
        source: record.source.as_deref().map(parsed).transpose()?,
        comment: record.comment.as_deref().map(parsed).transpose()?,
    })
}

/// Reads a stored row back into the package's rule. Rows are written from
/// validated rules only, so this fails only if someone edited the table by hand.
pub fn rule_of(record: &FirewallRuleRecord) -> Result<FirewallRule, AppError> {
    parse_rule(record)
        .map_err(|error| AppError::internal(format!("firewall rule {} is unreadable: {error}", record.id)))
}

async fn owned_server(db: &Db, principal: &Principal, server_id: i64) -> Result<ServerRecord, AppError> {
    server_table::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))
}

/// Whether job `job_id` is still waiting or running.
async fn job_is_active(queue: &Queue, job_id: Option<i64>) -> Result<bool, AppError> {
    let Some(job_id) = job_id else {
        return Ok(false);
    };
    Ok(queue
        .get(JobId(job_id))
        .await?
        .is_some_and(|job| matches!(job.state, JobState::Queued | JobState::Running)))
}

/// The rules of one of the caller's servers, oldest first.
pub async fn list(db: &Db, principal: &Principal, server_id: i64) -> Result<Vec<FirewallRuleRecord>, AppError> {
    principal.require(Scope::Read)?;
    owned_server(db, principal, server_id).await?;
    Ok(rule_table::list_for_server(db, server_id).await?)
}

/// A rule and the job that acts on it.
#[derive(Debug, Clone)]
pub struct RuleJob {
    pub rule: FirewallRuleRecord,
    pub job_id: JobId,
}

/// Adds a rule to one of the caller's servers: stores it as `installing` and
/// enqueues the one job that adds it to the firewall.
pub async fn add(queue: &Queue, principal: &Principal, server_id: i64, input: &RuleInput) -> Result<RuleJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let server = owned_server(db, principal, server_id).await?;
    let ssh_port = ssh_port_of(&server);
    let rule = input.validate(ssh_port).map_err(AppError::Validation)?;
    let packages = package_records::server_packages(db, server_id).await?;
    let firewall_installed = packages
        .iter()
        .any(|record| record.package_type == Firewall::TYPE.as_str() && record.package_name == Firewall::NAME.as_str());
    if !firewall_installed {
        return Err(AppError::Conflict(sentence(
            &FirewallRuleRefusal::FirewallNotInstalled.to_string(),
        )));
    }
    let port = rule.port.to_string();
    let source = rule.source.map(|source| source.to_string());
    let existing = rule_table::list_for_server(db, server_id).await?;
    if let Some(same) = existing.iter().find(|record| {
        record.rule_action == rule.action.as_str()
            && record.port == port
            && record.protocol == rule.protocol.as_str()
            && record.source == source
    }) {
        return Err(AppError::Validation(FieldErrors::single(
            "port",
            format!("This server already has this rule (#{}).", same.id),
        )));
    }
    let record = rule_table::insert(
        db,
        &NewFirewallRule {
            server_id,
            rule_action: rule.action.as_str(),
            port: &port,
            protocol: rule.protocol.as_str(),
            source: source.as_deref(),
            comment: rule.comment.as_ref().map(RuleComment::as_str),
            status: STATUS_INSTALLING,
        },
    )
    .await?;
    let payload = PackageOperationPayload {
        events: EventTarget::Server { server_id },
        operation: PackageOperation::FirewallRuleInstall(FirewallRuleInput {
            rule: rule.clone(),
            ssh_port,
        }),
        follow_up: Some(FollowUp::FirewallRule { rule_id: record.id }),
    };
    let job_id = match operations::enqueue(queue, &payload).await {
        Ok(job_id) => job_id,
        Err(error) => {
            // Nothing will install the row: take it back.
            let _ = rule_table::delete(db, record.id).await;
            return Err(error.into());
        }
    };
    rule_table::set_job(db, record.id, job_id.0).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "firewall_rule.added",
        Some(server_id),
        Some(&format!("firewall_rule:{}", record.id)),
        &format!("Added firewall rule {rule} on \"{}\" (job #{job_id})", server.name),
    )
    .await;
    let rule = rule_table::find(db, server_id, record.id).await?.unwrap_or(record);
    Ok(RuleJob { rule, job_id })
}

/// Removes a rule from one of the caller's servers: marks it `removing` and enqueues
/// the one job that deletes it from the firewall (the row goes once that succeeded).
pub async fn remove(queue: &Queue, principal: &Principal, server_id: i64, rule_id: i64) -> Result<RuleJob, AppError> {
    principal.require(Scope::Deploy)?;
    let db = queue.db();
    let server = owned_server(db, principal, server_id).await?;
    let record = rule_table::find(db, server_id, rule_id)
        .await?
        .ok_or(AppError::NotFound("firewall rule"))?;
    if record.status == STATUS_REMOVING && job_is_active(queue, record.job_id).await? {
        return Err(AppError::Conflict(format!(
            "This rule is already being removed (job #{}).",
            record.job_id.unwrap_or_default()
        )));
    }
    let rule = rule_of(&record)?;
    let payload = PackageOperationPayload {
        events: EventTarget::Server { server_id },
        operation: PackageOperation::FirewallRuleRemove(FirewallRuleInput {
            rule: rule.clone(),
            ssh_port: ssh_port_of(&server),
        }),
        follow_up: Some(FollowUp::FirewallRule { rule_id }),
    };
    // The row is handed over before the job exists, so a job that finishes at once
    // still finds it waiting for it.
    rule_table::start_job(db, rule_id, STATUS_REMOVING).await?;
    let job_id = match operations::enqueue(queue, &payload).await {
        Ok(job_id) => job_id,
        Err(error) => {
            let _ = rule_table::set_status(db, rule_id, &record.status, record.error.as_deref()).await;
            return Err(error.into());
        }
    };
    rule_table::set_job(db, rule_id, job_id.0).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "firewall_rule.removal_started",
        Some(server_id),
        Some(&format!("firewall_rule:{rule_id}")),
        &format!(
            "Started removing firewall rule {rule} from \"{}\" (job #{job_id})",
            server.name
        ),
    )
    .await;
    let mut rule = record;
    if let Some(current) = rule_table::find(db, server_id, rule_id).await? {
        rule = current;
    }
    Ok(RuleJob { rule, job_id })
}

/// Whether job `job_id` removes the rule: its payload says so. A job that is gone
/// from the queue is judged by the rule's status.
async fn removes_rule(
    environment: &OperationEnvironment,
    job_id: i64,
    rule: &FirewallRuleRecord,
) -> Result<bool, brokeforge_db::DbError> {
    let job = match environment.queue.get(JobId(job_id)).await {
        Ok(job) => job,
        Err(QueueError::Database(error)) => return Err(brokeforge_db::DbError::Query(error)),
        Err(_) => None,
    };
    let operation = job.and_then(|job| serde_json::from_value::<PackageOperationPayload>(job.payload).ok());
    Ok(match operation {
        Some(payload) => matches!(payload.operation, PackageOperation::FirewallRuleRemove(_)),
        None => rule.status == STATUS_REMOVING,
    })
}

/// Updates rule `rule_id` after its job `job_id` finished: `active` after an
/// installation, deleted after a removal, `failed` with the message when the job
/// failed for good; nothing while the queue will try again. A job the rule was
/// since handed away from changes nothing. A failed job retried from its page
/// comes back here with the same id, so a retry that succeeds still counts.
pub async fn after_job(
    environment: &OperationEnvironment,
    job_id: i64,
    rule_id: i64,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let db = &environment.db;
    let Some(rule) = rule_table::find_by_id(db, rule_id).await? else {
        return Ok(());
    };
    if rule.job_id.is_some_and(|current| current != job_id) {
        return Ok(());
    }
    match finished {
        Finished::WillRetry(_) => {}
        Finished::Succeeded(_) if removes_rule(environment, job_id, &rule).await? => {
            rule_table::delete(db, rule_id).await?;
        }
        Finished::Succeeded(_) => {
            rule_table::set_status(db, rule_id, STATUS_ACTIVE, None).await?;
        }
        Finished::Failed(error) => {
            rule_table::set_status(db, rule_id, STATUS_FAILED, Some(&error.to_string())).await?;
        }
    }
    Ok(())
}

//! Provisioning: the sequence of package jobs that turns a bootstrapped server into
//! a web server. Each package is its own job (exclusive per server); when one
//! succeeds, its follow-up enqueues the next, and when one fails for good the
//! sequence stops there and can be resumed from that package. Every installer reads
//! facts first, so provisioning a provisioned server again changes nothing.
//!
//! A user sees provisioning as seven numbered [`Stage`]s, from waiting for the
//! bootstrap line to the final touches; [`stages`] derives them from the server
//! record.

use brokeforge_core::{PhpVersion, Port};
use brokeforge_db::Db;
use brokeforge_db::bootstrap_tokens::BootstrapTokenRecord;
use brokeforge_db::servers::{self as server_table, ServerRecord};
use brokeforge_packages::composer::ComposerInstallInput;
use brokeforge_packages::firewall::FirewallInstallInput;
use brokeforge_packages::nginx::NginxInstallInput;
use brokeforge_packages::nodejs::NodeJsInstallInput;
use brokeforge_packages::php::{PhpInstallInput, PhpVersionInput};
use brokeforge_packages::time_sync::TimeSyncInstallInput;
use brokeforge_queue::{JobId, Queue};
use serde::Serialize;
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::AppError;
use crate::follow_up::{Finished, FollowUp};
use crate::operations::{EventTarget, OperationEnvironment, PackageOperation, PackageOperationPayload};

/// A numbered stage of onboarding, as the server page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    WaitingForConnection,
    Preparing,
    Connectivity,
    Firewall,
    Php,
    Nginx,
    FinalTouches,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::WaitingForConnection,
        Stage::Preparing,
        Stage::Connectivity,
        Stage::Firewall,
        Stage::Php,
        Stage::Nginx,
        Stage::FinalTouches,
    ];

    /// The stage's number, from 1.
    pub fn number(self) -> usize {
        self as usize + 1
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::WaitingForConnection => "Waiting for connection",
            Stage::Preparing => "Preparing the server",
            Stage::Connectivity => "Connectivity",
            Stage::Firewall => "Firewall",
            Stage::Php => "PHP",
            Stage::Nginx => "Nginx",
            Stage::FinalTouches => "Final touches",
        }
    }
}

/// One package job of the provisioning sequence.
#[derive(Debug, Clone)]
pub struct ProvisioningStep {
    pub stage: Stage,
    pub label: &'static str,
    pub operation: PackageOperation,
}

/// What the sequence depends on.
#[derive(Debug, Clone, Copy)]
pub struct ProvisioningInput {
    pub ssh_port: Port,
    pub php_version: PhpVersion,
    /// True on Ubuntu 22.04, whose own Node.js (12) is too old for current tools.
    pub needs_nodesource: bool,
}

impl ProvisioningInput {
    /// The input for a stored server.
    pub fn of(server: &ServerRecord) -> ProvisioningInput {
        let valid = crate::servers::valid_from_record(server);
        ProvisioningInput {
            ssh_port: valid.ssh_port,
            php_version: valid.php_version,
            needs_nodesource: server.os_name.as_deref() == Some("ubuntu")
                && server.os_version.as_deref() == Some("22.04"),
        }
    }
}

/// The provisioning sequence, in order: time sync, firewall, PHP and its command-line
/// default, Nginx, cron, Supervisor, Node.js and Composer. Pure.
pub fn sequence(input: ProvisioningInput) -> Vec<ProvisioningStep> {
    let node: NodeJsInstallInput = serde_json::from_value(json!({ "version": input.needs_nodesource.then_some(20) }))
        .expect("a valid Node.js input");
    vec![
        ProvisioningStep {
            stage: Stage::Connectivity,
            label: "Time synchronisation",
            operation: PackageOperation::TimeSyncInstall(TimeSyncInstallInput::default()),
        },
        ProvisioningStep {
            stage: Stage::Firewall,
            label: "Firewall",
            operation: PackageOperation::FirewallInstall(FirewallInstallInput {
                ssh_port: input.ssh_port,
            }),
        },
        ProvisioningStep {
            stage: Stage::Php,
            label: "PHP",
            operation: PackageOperation::PhpInstall(PhpInstallInput {
                version: input.php_version,
                fpm: Default::default(),
            }),
        },
        ProvisioningStep {
            stage: Stage::Php,
            label: "PHP command-line default",
            operation: PackageOperation::PhpCliDefaultInstall(PhpVersionInput {
                version: input.php_version,
            }),
        },
        ProvisioningStep {
            stage: Stage::Nginx,
            label: "Nginx",
            operation: PackageOperation::NginxInstall(NginxInstallInput::default()),
        },
        ProvisioningStep {
            stage: Stage::FinalTouches,
            label: "Scheduler (cron)",
            operation: PackageOperation::CronInstall(()),
        },
        ProvisioningStep {
            stage: Stage::FinalTouches,
            label: "Supervisor",
            operation: PackageOperation::SupervisorInstall(()),
        },
        ProvisioningStep {
            stage: Stage::FinalTouches,
            label: "Node.js",
            operation: PackageOperation::NodeJsInstall(node),
        },
        ProvisioningStep {
            stage: Stage::FinalTouches,
            label: "Composer",
            operation: PackageOperation::ComposerInstall(ComposerInstallInput {
                php_version: input.php_version,
            }),
        },
    ]
}

/// Provisioning statuses of the `servers.provision_status` column.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const PROVISIONING: &str = "provisioning";
    pub const PROVISIONED: &str = "provisioned";
    pub const FAILED: &str = "failed";
}

/// Enqueues step `index` of the server's sequence and records that it runs.
pub async fn start(db: &Db, queue: &Queue, server_id: i64, index: usize) -> Result<JobId, AppError> {
    let server = server_table::find(db, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    let steps = sequence(ProvisioningInput::of(&server));
    let step = steps
        .get(index)
        .ok_or_else(|| AppError::Conflict(format!("provisioning has no step {}", index + 1)))?;
    let job_id = crate::operations::enqueue(
        queue,
        &PackageOperationPayload {
            events: EventTarget::Server { server_id },
            operation: step.operation.clone(),
            follow_up: Some(FollowUp::Provisioning { index }),
        },
    )
    .await?;
    // What earlier steps of this pass changed is kept; a new pass starts afresh.
    let results = if index == 0 {
        json!({})
    } else {
        server
            .provision_state
            .0
            .get("results")
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    server_table::set_provisioning(
        db,
        server_id,
        status::PROVISIONING,
        &json!({ "step": index, "steps": steps.len(), "label": step.label, "job_id": job_id.0, "results": results }),
    )
    .await?;
    Ok(job_id)
}

/// The recorded state with `label`'s result added.
fn with_result(server: &ServerRecord, label: &str, changed: bool) -> serde_json::Value {
    let mut results = server
        .provision_state
        .0
        .get("results")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(map) = results.as_object_mut() {
        map.insert(label.to_owned(), json!(changed));
    }
    results
}

/// Moves provisioning of `server_id` on after step `index` (job `job_id`) finished:
/// the next step on success, a recorded failure when the step failed for good.
pub async fn after_step(
    environment: &OperationEnvironment,
    server_id: i64,
    job_id: i64,
    index: usize,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let Some(server) = server_table::find(&environment.db, server_id).await? else {
        return Ok(());
    };
    let steps = sequence(ProvisioningInput::of(&server));
    let label = steps.get(index).map(|step| step.label).unwrap_or("?");
    if let Finished::Succeeded(outcome) = &finished {
        let mut state = server.provision_state.0.clone();
        state["results"] = with_result(&server, label, outcome.changed);
        server_table::set_provisioning(&environment.db, server_id, &server.provision_status, &state).await?;
    }
    match finished {
        Finished::Succeeded(_) if index + 1 < steps.len() => {
            match start(&environment.db, &environment.queue, server_id, index + 1).await {
                Ok(_) => Ok(()),
                Err(error) => {
                    let state =
                        json!({ "step": index + 1, "steps": steps.len(), "failed": true, "error": error.to_string() });
                    server_table::set_provisioning(&environment.db, server_id, status::FAILED, &state).await
                }
            }
        }
        Finished::Succeeded(outcome) => {
            let state = json!({
                "step": steps.len(),
                "steps": steps.len(),
                "job_id": job_id,
                "results": with_result(&server, label, outcome.changed),
            });
            server_table::set_provisioning(&environment.db, server_id, status::PROVISIONED, &state).await
        }
        Finished::WillRetry(_) => Ok(()),
        Finished::Failed(error) => {
            let state = json!({
                "step": index,
                "steps": steps.len(),
                "label": label,
                "job_id": job_id,
                "failed": true,
                "error": error.to_string(),
                "results": server.provision_state.0.get("results").cloned().unwrap_or_else(|| json!({})),
            });
            server_table::set_provisioning(&environment.db, server_id, status::FAILED, &state).await
        }
    }
}

/// The step provisioning stands at (or failed at), from the recorded state.
fn recorded_step(server: &ServerRecord) -> Option<usize> {
    server
        .provision_state
        .0
        .get("step")
        .and_then(|value| value.as_u64())
        .map(|step| step as usize)
}

/// Resumes a server's onboarding where it failed: the connection check again when
/// that failed, otherwise the package that failed.
pub async fn resume(db: &Db, queue: &Queue, principal: &Principal, server_id: i64) -> Result<JobId, AppError> {
    principal.require(Scope::Write)?;
    let server = crate::servers::get(db, principal, server_id).await?;
    if server.connection_status == crate::onboarding::connection::FAILED && server.host_key.is_some() {
        let job = crate::onboarding::enqueue_verification(db, queue, server_id).await?;
        audit_resume(db, principal, &server, "connection check").await;
        return Ok(job);
    }
    if server.provision_status != status::FAILED {
        return Err(AppError::Conflict(
            "provisioning has not failed, so there is nothing to resume".to_owned(),
        ));
    }
    let index = recorded_step(&server).unwrap_or(0);
    let job = start(db, queue, server_id, index).await?;
    audit_resume(db, principal, &server, "provisioning").await;
    Ok(job)
}

async fn audit_resume(db: &Db, principal: &Principal, server: &ServerRecord, what: &str) {
    crate::audit::record(
        db,
        &principal.actor(),
        "server.provisioning_resumed",
        Some(server.id),
        Some(&format!("server:{}", server.id)),
        &format!("Resumed the {what} of server \"{}\"", server.name),
    )
    .await;
}

/// Runs the whole sequence again on a connected server; every package whose state
/// is already right reports that nothing changed.
pub async fn reprovision(db: &Db, queue: &Queue, principal: &Principal, server_id: i64) -> Result<JobId, AppError> {
    principal.require(Scope::Write)?;
    let server = crate::servers::get(db, principal, server_id).await?;
    if server.connection_status != crate::onboarding::connection::CONNECTED {
        return Err(AppError::Conflict(
            "the server is not connected yet: finish its bootstrap first".to_owned(),
        ));
    }
    if server.provision_status == status::PROVISIONING {
        return Err(AppError::Conflict("provisioning is already running".to_owned()));
    }
    let job = start(db, queue, server_id, 0).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "server.reprovisioned",
        Some(server.id),
        Some(&format!("server:{}", server.id)),
        &format!("Started provisioning server \"{}\" again", server.name),
    )
    .await;
    Ok(job)
}

/// One package of the last provisioning pass and whether it changed the server.
#[derive(Debug, Clone, Serialize)]
pub struct PackageResult {
    pub label: &'static str,
    /// `None` while the package has not run in this pass.
    pub changed: Option<bool>,
}

/// The packages of the sequence with what the last pass did to each.
pub fn results(server: &ServerRecord) -> Vec<PackageResult> {
    let recorded = server.provision_state.0.get("results");
    sequence(ProvisioningInput::of(server))
        .into_iter()
        .map(|step| PackageResult {
            label: step.label,
            changed: recorded
                .and_then(|results| results.get(step.label))
                .and_then(|changed| changed.as_bool()),
        })
        .collect()
}

/// Where a stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    Pending,
    Running,
    Done,
    Failed,
}

/// One numbered stage with its state.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub number: usize,
    pub key: Stage,
    pub label: &'static str,
    pub state: StageState,
}

/// The numbered stages of a server's onboarding, derived from its record and its
/// newest bootstrap line.
pub fn stages(server: &ServerRecord, line: Option<&BootstrapTokenRecord>) -> Vec<StageView> {
    use crate::onboarding::connection;
    let steps = sequence(ProvisioningInput::of(server));
    // The stage in progress, and whether it failed; `None` when everything is done.
    let current: Option<(Stage, bool)> = if server.provision_status == status::PROVISIONED {
        None
    } else if server.connection_status == connection::CONNECTED {
        let stage = recorded_step(server)
            .and_then(|index| steps.get(index))
            .map(|step| step.stage)
            .unwrap_or(Stage::Connectivity);
        Some((stage, server.provision_status == status::FAILED))
    } else if server.connection_status == connection::VERIFYING {
        Some((Stage::Connectivity, false))
    } else if server.connection_status == connection::BOOTSTRAPPING {
        Some((Stage::Preparing, false))
    } else if server.connection_status == connection::FAILED {
        let stage = if server.host_key.is_some() {
            Stage::Connectivity
        } else {
            Stage::Preparing
        };
        Some((stage, true))
    } else {
        let started = line.is_some_and(|line| line.started_at_ms.is_some());
        Some((
            if started {
                Stage::Preparing
            } else {
                Stage::WaitingForConnection
            },
            false,
        ))
    };
    Stage::ALL
        .iter()
        .map(|&stage| StageView {
            number: stage.number(),
            key: stage,
            label: stage.label(),
            state: match current {
                None => StageState::Done,
                Some((at, _)) if stage < at => StageState::Done,
                Some((at, true)) if stage == at => StageState::Failed,
                Some((at, false)) if stage == at => StageState::Running,
                Some(_) => StageState::Pending,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_installs_every_package_in_order_and_keeps_the_ssh_port_open() {
        let steps = sequence(ProvisioningInput {
            ssh_port: Port::new(2222).unwrap(),
            php_version: PhpVersion::Php82,
            needs_nodesource: false,
        });
        let labels: Vec<&str> = steps.iter().map(|step| step.label).collect();
        assert_eq!(
            labels,
            [
                "Time synchronisation",
                "Firewall",
                "PHP",
                "PHP command-line default",
                "Nginx",
                "Scheduler (cron)",
                "Supervisor",
                "Node.js",
                "Composer"
            ]
        );
        match &steps[1].operation {
            PackageOperation::FirewallInstall(input) => assert_eq!(input.ssh_port.get(), 2222),
            other => panic!("unexpected {other:?}"),
        }
        let stages: Vec<Stage> = steps.iter().map(|step| step.stage).collect();
        assert!(stages.windows(2).all(|pair| pair[0] <= pair[1]), "stages run in order");
    }

    #[test]
    fn ubuntu_jammy_gets_node_from_nodesource() {
        let node_of = |needs_nodesource| {
            let steps = sequence(ProvisioningInput {
                ssh_port: Port::new(22).unwrap(),
                php_version: PhpVersion::Php83,
                needs_nodesource,
            });
            match &steps[7].operation {
                PackageOperation::NodeJsInstall(input) => serde_json::to_value(input).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(node_of(true)["version"], 20);
        assert!(node_of(false)["version"].is_null());
    }
}

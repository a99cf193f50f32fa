//! `/api/v1/servers/{server_id}/firewall-rules`: the firewall rules a user added to a
//! server, each with the status of its job; adding and removing a rule each answer
//! `202` with the rule and the one job queued for it. A rule that would close the
//! server's SSH port is refused as invalid.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brokeforge_app::firewall_rules::{self, RuleInput, RuleJob};
use brokeforge_app::jobs;
use brokeforge_db::firewall_rules::FirewallRuleRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::JobView;

/// A firewall rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FirewallRuleView {
    pub id: i64,
    pub server_id: i64,
    /// allow or deny.
    pub action: String,
    /// A port, or a range such as 3000:3005.
    pub port: String,
    /// tcp or udp.
    pub protocol: String,
    /// An address or a CIDR network; null for every address.
    pub source: Option<String>,
    pub comment: Option<String>,
    /// installing, active, removing or failed.
    pub status: String,
    /// The job that installs or removes the rule.
    pub job_id: Option<i64>,
    /// Why the last job failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FirewallRuleView {
    pub fn from_record(record: &FirewallRuleRecord) -> FirewallRuleView {
        FirewallRuleView {
            id: record.id,
            server_id: record.server_id,
            action: record.rule_action.clone(),
            port: record.port.clone(),
            protocol: record.protocol.clone(),
            source: record.source.clone(),
            comment: record.comment.clone(),
            status: record.status.clone(),
            job_id: record.job_id,
            error: record.error.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Every rule of a server (one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct FirewallRulePage {
    pub data: Vec<FirewallRuleView>,
    /// Always null: a server's rules fit in one page.
    pub next_cursor: Option<String>,
}

/// A rule and the job queued for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirewallRuleJobView {
    pub rule: FirewallRuleView,
    pub job: JobView,
}

/// A new rule.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FirewallRuleBody {
    /// allow (default) or deny.
    pub action: Option<String>,
    /// A port such as 8080 (number or text), or a range such as "3000:3005".
    pub port: String,
    /// tcp (default) or udp.
    pub protocol: Option<String>,
    /// An IP address or CIDR network such as 203.0.113.7 or 10.0.0.0/8; leave out for every address.
    pub source: Option<String>,
    /// Up to 64 characters, shown with the rule.
    pub comment: Option<String>,
}

async fn accepted(
    state: &AppState,
    principal: &brokeforge_app::auth::Principal,
    started: RuleJob,
) -> Result<Response, ApiError> {
    let job = jobs::get(&state.db, principal, started.job_id.0).await?;
    let body = FirewallRuleJobView {
        rule: FirewallRuleView::from_record(&started.rule),
        job: JobView::from_row(&job),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// List a server's firewall rules.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}/firewall-rules", tag = "firewall", summary = "List firewall rules",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = FirewallRulePage), (status = 404, description = "No such server (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Json<FirewallRulePage>, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let rules = firewall_rules::list(&state.db, &principal, server_id).await?;
    Ok(Json(FirewallRulePage {
        data: rules.iter().map(FirewallRuleView::from_record).collect(),
        next_cursor: None,
    }))
}

/// Add a firewall rule.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/firewall-rules", tag = "firewall", summary = "Add a firewall rule (a job)",
    params(("server_id" = i64, Path, description = "The server's id")),
    request_body = FirewallRuleBody,
    responses((status = 202, description = "The rule was stored and its job queued", body = FirewallRuleJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The firewall is not installed yet", body = crate::api::ErrorEnvelope), (status = 422, description = "Invalid fields, a duplicate, or a rule that would close the SSH port; nothing was stored", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn add(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let started = firewall_rules::add(&state.queue, &principal, server_id, &input).await?;
    accepted(&state, &principal, started).await
}

/// Remove a firewall rule.
#[utoipa::path(
    delete, path = "/api/v1/servers/{server_id}/firewall-rules/{rule_id}", tag = "firewall", summary = "Remove a firewall rule (a job)",
    params(("server_id" = i64, Path, description = "The server's id"), ("rule_id" = i64, Path, description = "The rule's id")),
    responses((status = 202, description = "The removal job was queued; the rule goes once it succeeded", body = FirewallRuleJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Already being removed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((server_id, rule_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let rule_id = parse_id(&rule_id, "firewall rule")?;
    let started = firewall_rules::remove(&state.queue, &principal, server_id, rule_id).await?;
    accepted(&state, &principal, started).await
}

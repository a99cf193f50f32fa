//! `/api/v1/servers/{id}/bootstrap-line` and `/api/v1/servers/{id}/provisioning`:
//! the bootstrap line (show, renew, revoke), the onboarding status with its numbered
//! stages, and resuming or repeating provisioning.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brokeforge_app::{AppError, jobs, onboarding, provisioning};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::JobView;

/// A bootstrap line: run `command` as root on the server, once, before `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BootstrapLineView {
    /// `curl -fsSL <url> | sudo bash`
    pub command: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl BootstrapLineView {
    pub fn from_line(line: onboarding::BootstrapLine) -> BootstrapLineView {
        BootstrapLineView {
            command: line.command,
            url: line.url,
            expires_at: line.expires_at,
        }
    }
}

/// One numbered onboarding stage.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct StageDoc {
    pub number: u32,
    /// waiting_for_connection, preparing, connectivity, firewall, php, nginx or final_touches.
    pub key: String,
    pub label: String,
    /// pending, running, done or failed.
    pub state: String,
}

/// One report of the bootstrap script or the connection check.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OnboardingEventDoc {
    /// bootstrap or connectivity.
    pub source: String,
    pub label: String,
    /// running, success or failed.
    pub status: String,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a server's onboarding stands.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OnboardingStatusDoc {
    /// pending, bootstrapping, verifying, connected or failed.
    pub connection_status: String,
    /// pending, provisioning, provisioned or failed.
    pub provision_status: String,
    pub stages: Vec<StageDoc>,
    pub events: Vec<OnboardingEventDoc>,
    /// The provisioning package that runs (or failed).
    pub provisioning_step: Option<String>,
    pub provisioning_job_id: Option<i64>,
    /// Why onboarding stopped, when it did.
    pub failure: Option<String>,
    pub line_usable: bool,
    pub line_expires_at: Option<DateTime<Utc>>,
    /// Each provisioning package and whether the last pass changed the server with it.
    pub packages: Vec<PackageResultDoc>,
}

/// One provisioning package and what the last pass did.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PackageResultDoc {
    pub label: String,
    /// true: installed or changed; false: already in place; null: not run in this pass.
    pub changed: Option<bool>,
}

/// Show the server's usable bootstrap line.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}/bootstrap-line", tag = "onboarding", summary = "Show the bootstrap line",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = BootstrapLineView), (status = 404, description = "No such server, or no usable line (get a new one with POST)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn show_line(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    headers: HeaderMap,
    Path(server_id): Path<String>,
) -> Result<Json<BootstrapLineView>, ApiError> {
    principal.require(brokeforge_app::auth::Scope::Write)?;
    let server_id = parse_id(&server_id, "server")?;
    let line = onboarding::current_line(
        &state.db,
        &state.sealer,
        &principal,
        server_id,
        &state.base_url(&headers),
    )
    .await?
    .ok_or(AppError::NotFound("usable bootstrap line"))?;
    Ok(Json(BootstrapLineView::from_line(line)))
}

/// Issue a new bootstrap line; the previous one stops working.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/bootstrap-line", tag = "onboarding", summary = "Issue a new bootstrap line",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 201, body = BootstrapLineView), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn regenerate_line(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    headers: HeaderMap,
    Path(server_id): Path<String>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let line = onboarding::regenerate_line(
        &state.db,
        &state.sealer,
        &principal,
        server_id,
        &state.base_url(&headers),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(BootstrapLineView::from_line(line))).into_response())
}

/// Revoke the server's unused bootstrap line.
#[utoipa::path(
    delete, path = "/api/v1/servers/{server_id}/bootstrap-line", tag = "onboarding", summary = "Revoke the bootstrap line",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn revoke_line(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    onboarding::revoke_line(&state.db, &principal, parse_id(&server_id, "server")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The server's onboarding status: numbered stages, reports and failure.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}/provisioning", tag = "onboarding", summary = "Show onboarding and provisioning status",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = OnboardingStatusDoc), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn status(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Response, ApiError> {
    let status = onboarding::status(&state.db, &principal, parse_id(&server_id, "server")?).await?;
    Ok(Json(status).into_response())
}

async fn accepted(
    state: &AppState,
    principal: &brokeforge_app::auth::Principal,
    job_id: i64,
) -> Result<Response, ApiError> {
    let job = jobs::get(&state.db, principal, job_id).await?;
    Ok((StatusCode::ACCEPTED, Json(JobView::from_row(&job))).into_response())
}

/// Resume onboarding where it failed: the connection check, or the package that failed.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/provisioning/resume", tag = "onboarding", summary = "Resume failed provisioning",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Nothing failed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn resume(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Response, ApiError> {
    let job_id = provisioning::resume(&state.db, &state.queue, &principal, parse_id(&server_id, "server")?).await?;
    accepted(&state, &principal, job_id.0).await
}

/// Provision a connected server again; packages already in place report no change.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/provisioning", tag = "onboarding", summary = "Provision again",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 202, description = "The first job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Not connected, or provisioning runs", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn reprovision(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Response, ApiError> {
    let job_id =
        provisioning::reprovision(&state.db, &state.queue, &principal, parse_id(&server_id, "server")?).await?;
    accepted(&state, &principal, job_id.0).await
}

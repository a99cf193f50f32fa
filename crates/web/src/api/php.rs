//! `/api/v1/servers/{server_id}/php`: the PHP versions installed on a server with
//! the command-line default and the extensions of each, and the jobs that install
//! or remove a version, set the default, and install or remove an extension. Every
//! change answers `202` with the one job it queued.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brokeforge_app::jobs;
use brokeforge_app::php_versions::{self, PhpOverview};
use brokeforge_queue::JobId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::JobView;

/// One installed PHP version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhpVersionView {
    /// Such as 8.3.
    pub version: String,
    /// `active` once installed.
    pub status: String,
    /// Whether the `php` command runs this version.
    pub is_cli_default: bool,
    /// The extensions installed for this version.
    pub extensions: Vec<String>,
    /// Where its packages come from: distro, sury or ondrej-ppa.
    pub source: Option<String>,
    /// The domains of the sites that run on this version (it cannot be removed while any does).
    pub sites: Vec<String>,
}

/// A PHP job that is queued or running.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhpJobView {
    pub job_id: i64,
    /// queued or running.
    pub state: String,
    /// One of install, remove, cli_default, extension_install, extension_remove.
    pub change: String,
    pub version: String,
    pub extension: Option<String>,
    /// What the job does, in words.
    pub summary: String,
}

/// PHP on a server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhpView {
    /// Installed versions, oldest first.
    pub versions: Vec<PhpVersionView>,
    /// The version the `php` command runs, if BrokeForge set one.
    pub cli_default: Option<String>,
    /// PHP jobs still queued or running.
    pub pending: Vec<PhpJobView>,
    /// Versions that can be installed (neither installed nor being installed).
    pub installable: Vec<String>,
    /// Every extension name BrokeForge can install.
    pub known_extensions: Vec<String>,
}

impl PhpView {
    pub fn from_overview(overview: &PhpOverview) -> PhpView {
        PhpView {
            versions: overview
                .versions
                .iter()
                .map(|installed| PhpVersionView {
                    version: installed.version.as_str().to_owned(),
                    status: installed.status.clone(),
                    is_cli_default: installed.is_cli_default,
                    extensions: installed.extensions.clone(),
                    source: installed.source.clone(),
                    sites: installed.sites.clone(),
                })
                .collect(),
            cli_default: overview.cli_default.map(|version| version.as_str().to_owned()),
            pending: overview
                .pending
                .iter()
                .map(|job| PhpJobView {
                    job_id: job.job_id,
                    state: job.state.clone(),
                    change: job.change.as_str().to_owned(),
                    version: job.version.as_str().to_owned(),
                    extension: job.extension.map(|extension| extension.as_str().to_owned()),
                    summary: job.summary.clone(),
                })
                .collect(),
            installable: overview
                .installable()
                .into_iter()
                .map(|version| version.as_str().to_owned())
                .collect(),
            known_extensions: php_versions::known_extensions()
                .iter()
                .map(|extension| extension.as_str().to_owned())
                .collect(),
        }
    }
}

/// A PHP version to install.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PhpVersionBody {
    /// 7.4, 8.0, 8.1, 8.2, 8.3, 8.4 or 8.5.
    pub version: Option<String>,
}

/// An extension to install.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PhpExtensionBody {
    /// Such as redis, imagick or xdebug.
    pub extension: Option<String>,
}

async fn accepted(
    state: &AppState,
    principal: &brokeforge_app::auth::Principal,
    job_id: JobId,
) -> Result<Response, ApiError> {
    let job = jobs::get(&state.db, principal, job_id.0).await?;
    Ok((StatusCode::ACCEPTED, Json(JobView::from_row(&job))).into_response())
}

/// Show PHP on a server.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}/php", tag = "php", summary = "List installed PHP versions",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = PhpView), (status = 404, description = "No such server (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Json<PhpView>, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let overview = php_versions::overview(&state.queue, &principal, server_id).await?;
    Ok(Json(PhpView::from_overview(&overview)))
}

/// Install another PHP version.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/php", tag = "php", summary = "Install a PHP version (a job)",
    params(("server_id" = i64, Path, description = "The server's id")),
    request_body = PhpVersionBody,
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Already installed or being installed", body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn install(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    ApiJson(body): ApiJson<PhpVersionBody>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let version = body.version.unwrap_or_default();
    let job_id = php_versions::install(&state.queue, &principal, server_id, &version).await?;
    accepted(&state, &principal, job_id).await
}

/// Remove a PHP version.
#[utoipa::path(
    delete, path = "/api/v1/servers/{server_id}/php/{version}", tag = "php", summary = "Remove a PHP version (a job)",
    params(("server_id" = i64, Path, description = "The server's id"), ("version" = String, Path, description = "Such as 8.3")),
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Not installed, used by a site, or the command-line default", body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((server_id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let job_id = php_versions::remove(&state.queue, &principal, server_id, &version).await?;
    accepted(&state, &principal, job_id).await
}

/// Make a PHP version the command-line default.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/php/{version}/cli-default", tag = "php", summary = "Set the command-line default PHP version (a job)",
    params(("server_id" = i64, Path, description = "The server's id"), ("version" = String, Path, description = "Such as 8.3")),
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Not installed, or already the default", body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn cli_default(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((server_id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let job_id = php_versions::set_cli_default(&state.queue, &principal, server_id, &version).await?;
    accepted(&state, &principal, job_id).await
}

/// Install an extension for a PHP version.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/php/{version}/extensions", tag = "php", summary = "Install a PHP extension (a job)",
    params(("server_id" = i64, Path, description = "The server's id"), ("version" = String, Path, description = "Such as 8.3")),
    request_body = PhpExtensionBody,
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The version is not installed, or the extension already is", body = crate::api::ErrorEnvelope), (status = 422, description = "Unknown extension", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn install_extension(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((server_id, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<PhpExtensionBody>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let extension = body.extension.unwrap_or_default();
    let job_id = php_versions::install_extension(&state.queue, &principal, server_id, &version, &extension).await?;
    accepted(&state, &principal, job_id).await
}

/// Remove an extension of a PHP version.
#[utoipa::path(
    delete, path = "/api/v1/servers/{server_id}/php/{version}/extensions/{extension}", tag = "php", summary = "Remove a PHP extension (a job)",
    params(("server_id" = i64, Path, description = "The server's id"), ("version" = String, Path, description = "Such as 8.3"), ("extension" = String, Path, description = "Such as redis")),
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The version is not installed", body = crate::api::ErrorEnvelope), (status = 422, description = "Unknown or built-in extension", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn remove_extension(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((server_id, version, extension)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let job_id = php_versions::remove_extension(&state.queue, &principal, server_id, &version, &extension).await?;
    accepted(&state, &principal, job_id).await
}

//! `/api/v1/servers/{server_id}/sites` and `/api/v1/sites/{site_id}`: the sites of a
//! server, their deploy settings and webhook, deployments with their history and the
//! releases kept for rollbacks, commands run in a site's current release, and which
//! site is the server's default site. Every action that starts a job answers `202`
//! with the job; the webhook secret is answered once, when the webhook is turned on.
//! A WordPress site's database password is taken at creation and never answered.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::deployments::{self, DeploymentJob, Release};
use brokeforge_app::jobs;
use brokeforge_app::site_commands::{self, CommandInput, CommandJob};
use brokeforge_app::site_deploy_keys;
use brokeforge_app::sites::{self, DeploySettingsInput, SiteInput, SiteJob};
use brokeforge_app::webhooks::{Provider, webhook_path};
use brokeforge_db::site_commands::CommandRunRecord;
use brokeforge_db::site_deployments::DeploymentRecord;
use brokeforge_db::sites::SiteRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, optional_json};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::{JobView, PageQuery, next_cursor};

/// A site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SiteView {
    pub id: i64,
    pub server_id: i64,
    pub domain: String,
    /// More domains the site serves.
    pub aliases: Vec<String>,
    /// Whether the www variant of the domain is served too.
    pub www: bool,
    /// static, php, laravel or wordpress.
    pub site_type: String,
    pub php_version: Option<String>,
    /// The directory nginx serves, relative to the release (empty for its root).
    pub web_directory: String,
    /// The directory nginx serves on the server.
    pub document_root: String,
    /// installing, active, removing or failed.
    pub status: String,
    /// Whether the site is the server's default site: it answers requests for names no
    /// site serves, such as the server's IP address.
    pub is_default: bool,
    /// Why the last install or removal failed.
    pub error: Option<String>,
    /// The job that installs or removes the site.
    pub job_id: Option<i64>,
    pub git_repository: Option<String>,
    pub git_branch: Option<String>,
    /// The deploy script, run by `bash -euo pipefail` in each new release.
    pub deploy_script: String,
    /// How many releases the server keeps.
    pub keep_releases: i32,
    /// The live release, if the site was deployed.
    pub current_release: Option<String>,
    pub last_deployed_commit: Option<String>,
    pub last_deployed_at: Option<DateTime<Utc>>,
    /// Whether the deploy webhook is on.
    pub webhook_enabled: bool,
    /// Which key Git logs in with: `site` (the site's own) or `server` (the server's deploy key).
    pub deploy_key: String,
    /// The public half of the site's own deploy key, when it has one.
    pub deploy_public_key: Option<String>,
    /// Host keys pinned for the site's own Git server, as known_hosts lines.
    pub git_host_keys: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SiteView {
    pub fn from_record(record: &SiteRecord) -> SiteView {
        SiteView {
            id: record.id,
            server_id: record.server_id,
            domain: record.domain.clone(),
            aliases: record.aliases.0.clone(),
            www: record.www,
            site_type: record.site_type.clone(),
            php_version: record.php_version.clone(),
            web_directory: record.web_directory.clone(),
            document_root: record.document_root.clone(),
            status: record.status.clone(),
            is_default: record.is_default,
            error: record.error_log.clone(),
            job_id: record.job_id,
            git_repository: record.git_repository.clone(),
            git_branch: record.git_branch.clone(),
            deploy_script: record.deploy_script.clone(),
            keep_releases: record.keep_releases,
            current_release: record.current_release.clone(),
            last_deployed_commit: record.last_deployed_commit.clone(),
            last_deployed_at: record.last_deployed_at,
            webhook_enabled: record.webhook_enabled,
            deploy_key: if record.deploy_key_public.is_some() {
                "site"
            } else {
                "server"
            }
            .to_owned(),
            deploy_public_key: record.deploy_key_public.as_deref().map(|key| key.trim().to_owned()),
            git_host_keys: record.git_host_keys.lines().map(str::to_owned).collect(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A deployment or rollback.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeploymentView {
    pub id: i64,
    pub site_id: i64,
    pub job_id: Option<i64>,
    /// manual, webhook or rollback.
    pub trigger: String,
    /// Who asked for it: a user's email, or the webhook.
    pub actor: String,
    /// For webhooks: github, gitlab or generic.
    pub provider: Option<String>,
    /// The commit built (filled in when the job resolved the branch).
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub author: Option<String>,
    /// The commit's subject line.
    pub message: Option<String>,
    /// The release directory's name.
    pub release: String,
    /// queued, running, succeeded or failed.
    pub status: String,
    /// Why it failed; the job's events hold the failed step's command, exit code and error output.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds from start to end, once finished.
    pub duration_seconds: Option<i64>,
    /// The end of the deployment's log (each step's masked command and its output),
    /// growing while it runs. Only when one deployment is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl DeploymentView {
    pub fn from_record(record: &DeploymentRecord) -> DeploymentView {
        DeploymentView {
            id: record.id,
            site_id: record.site_id,
            job_id: record.job_id,
            trigger: record.trigger_kind.clone(),
            actor: record.actor.clone(),
            provider: record.provider.clone(),
            commit: record.commit_sha.clone(),
            branch: record.branch.clone(),
            author: record.author.clone(),
            message: record.message.clone(),
            release: record.release_id.clone(),
            status: record.status.clone(),
            error: record.error.clone(),
            created_at: record.created_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
            duration_seconds: match (record.started_at, record.finished_at) {
                (Some(started), Some(finished)) => Some((finished - started).num_seconds().max(0)),
                _ => None,
            },
            output: None,
        }
    }

    /// The view with the deployment's log.
    pub fn with_output(record: &DeploymentRecord) -> DeploymentView {
        DeploymentView {
            output: Some(record.output.clone()),
            ..DeploymentView::from_record(record)
        }
    }
}

/// The key a site's Git fetches log in with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeployKeyBody {
    /// `site` (the site's own key) or `server` (the server's deploy key).
    pub kind: String,
    /// The public key in OpenSSH format, to add to the repository's deploy keys.
    pub public_key: Option<String>,
}

/// A release the server keeps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseView {
    pub release: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// The deployment that built it.
    pub deployment_id: i64,
    pub deployed_at: DateTime<Utc>,
    /// Whether it is live.
    pub is_current: bool,
}

impl ReleaseView {
    pub fn from_release(release: &Release) -> ReleaseView {
        ReleaseView {
            release: release.release_id.clone(),
            commit: release.commit_sha.clone(),
            branch: release.branch.clone(),
            author: release.author.clone(),
            message: release.message.clone(),
            deployment_id: release.deployment_id,
            deployed_at: release.deployed_at,
            is_current: release.is_current,
        }
    }
}

/// A command run in a site's current release.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandRunView {
    pub id: i64,
    pub site_id: i64,
    pub job_id: Option<i64>,
    /// Who ran it.
    pub actor: String,
    pub command: String,
    pub timeout_seconds: i32,
    /// queued, running, succeeded or failed.
    pub status: String,
    pub exit_code: Option<i32>,
    /// The last 64 KiB of its output, stdout and stderr as they came; grows while it runs.
    pub output: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl CommandRunView {
    pub fn from_record(record: &CommandRunRecord) -> CommandRunView {
        CommandRunView {
            id: record.id,
            site_id: record.site_id,
            job_id: record.job_id,
            actor: record.actor.clone(),
            command: record.command.clone(),
            timeout_seconds: record.timeout_seconds,
            status: record.status.clone(),
            exit_code: record.exit_code,
            output: record.output_tail.clone(),
            error: record.error.clone(),
            created_at: record.created_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
        }
    }
}

/// The sites of a server (one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct SitePage {
    pub data: Vec<SiteView>,
    /// Always null: a server's sites fit in one page.
    pub next_cursor: Option<String>,
}

/// A site and the job that installs or removes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteJobView {
    pub site: SiteView,
    pub job: JobView,
}

/// A page of deployments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentPage {
    pub data: Vec<DeploymentView>,
    pub next_cursor: Option<String>,
}

/// A deployment and its job.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentJobView {
    pub deployment: DeploymentView,
    pub job: JobView,
}

/// The releases a site keeps, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    pub data: Vec<ReleaseView>,
}

/// A page of command runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandRunPage {
    pub data: Vec<CommandRunView>,
    pub next_cursor: Option<String>,
}

/// A command run and its job.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandRunJobView {
    pub run: CommandRunView,
    pub job: JobView,
}

/// The webhook's secret, shown this once, and its URLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecretView {
    /// Use it as the webhook's secret (GitHub, generic) or token (GitLab). It is not shown again.
    pub secret: String,
    /// The URL for each provider: github, gitlab and generic.
    pub urls: std::collections::BTreeMap<String, String>,
}

/// A new site.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SiteCreateBody {
    /// Such as example.com.
    pub domain: String,
    /// More domains: a list, or one text with commas or spaces between them.
    pub aliases: Option<Vec<String>>,
    /// Serve the www variant of the domain too.
    pub www: Option<bool>,
    /// static, php (default), laravel or wordpress.
    pub site_type: Option<String>,
    /// A PHP version installed on the server (PHP types only); the command-line default when left out.
    pub php_version: Option<String>,
    /// The directory nginx serves, relative to the release; public for Laravel, the release's root otherwise.
    pub web_directory: Option<String>,
    /// Such as git@github.com:owner/repository.git.
    pub git_repository: Option<String>,
    /// Default main.
    pub git_branch: Option<String>,
    /// Host keys of a self-hosted Git server, as known_hosts lines (such as the output of ssh-keyscan).
    pub git_host_keys: Option<Vec<String>>,
    /// WordPress only (required): the database WordPress uses.
    pub database_name: Option<String>,
    /// WordPress only (required): the database user WordPress logs in as.
    pub database_user: Option<String>,
    /// WordPress only (required): that user's password; sealed at rest and never shown again.
    pub database_password: Option<String>,
    /// WordPress only: where the database listens, such as localhost (the default) or db.internal:3306.
    pub database_host: Option<String>,
    /// WordPress only: the prefix of WordPress's tables, letters, digits and _ (default wp_).
    pub table_prefix: Option<String>,
    /// WordPress only: where WordPress is downloaded from (default https://wordpress.org/latest.tar.gz); its SHA-1 is read from the same URL with .sha1 appended.
    pub wordpress_download_url: Option<String>,
}

/// Changes to a site's deploy settings; fields left out keep their values.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SiteUpdateBody {
    pub git_repository: Option<String>,
    pub git_branch: Option<String>,
    pub deploy_script: Option<String>,
    /// 1 to 50.
    pub keep_releases: Option<u32>,
    /// Host keys of a self-hosted Git server, as known_hosts lines; an empty list removes them.
    pub git_host_keys: Option<Vec<String>>,
}

/// What to deploy.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeployBody {
    /// A full commit id; the head of the site's branch when left out.
    pub commit: Option<String>,
}

/// The release to roll back to.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RollbackBody {
    /// A kept release, such as 20261127093000.
    pub release: Option<String>,
}

/// A command to run in the site's current release, as brokeforge.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CommandBody {
    /// Run by `bash -l -c` in the release directory, such as `php artisan migrate --force`.
    pub command: String,
    /// 1 to 3600 (default 120).
    pub timeout_seconds: Option<u32>,
}

async fn job_view(state: &AppState, principal: &Principal, job_id: i64) -> Result<JobView, ApiError> {
    Ok(JobView::from_row(&jobs::get(&state.db, principal, job_id).await?))
}

async fn site_job(state: &AppState, principal: &Principal, started: SiteJob) -> Result<Response, ApiError> {
    let body = SiteJobView {
        site: SiteView::from_record(&started.site),
        job: job_view(state, principal, started.job_id.0).await?,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn deployment_job(state: &AppState, principal: &Principal, started: DeploymentJob) -> Result<Response, ApiError> {
    let body = DeploymentJobView {
        deployment: DeploymentView::from_record(&started.deployment),
        job: job_view(state, principal, started.job_id.0).await?,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// List the sites of a server.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}/sites", tag = "sites", summary = "List a server's sites",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = SitePage), (status = 404, description = "No such server (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Json<SitePage>, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let records = sites::list(&state.db, &principal, server_id).await?;
    Ok(Json(SitePage {
        data: records.iter().map(SiteView::from_record).collect(),
        next_cursor: None,
    }))
}

/// Create a site.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/sites", tag = "sites", summary = "Create a site (a job installs it)",
    params(("server_id" = i64, Path, description = "The server's id")),
    request_body = SiteCreateBody,
    responses((status = 202, description = "The site was stored and its install job queued", body = SiteJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "nginx is not installed yet", body = crate::api::ErrorEnvelope), (status = 422, description = "Invalid fields, a domain the server already serves, or a PHP version it lacks; nothing was stored", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn create(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    ApiJson(input): ApiJson<SiteInput>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let started = sites::create(&state.queue, &state.sealer, &principal, server_id, &input).await?;
    site_job(&state, &principal, started).await
}

/// Show a site.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}", tag = "sites", summary = "Show a site",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = SiteView), (status = 404, description = "No such site (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<SiteView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    Ok(Json(SiteView::from_record(
        &sites::get(&state.db, &principal, site_id).await?,
    )))
}

/// Change a site's deploy settings.
#[utoipa::path(
    patch, path = "/api/v1/sites/{site_id}", tag = "sites", summary = "Change a site's repository, branch, deploy script or kept releases",
    params(("site_id" = i64, Path, description = "The site's id")),
    request_body = SiteUpdateBody,
    responses((status = 200, body = SiteView), (status = 404, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn update(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    ApiJson(input): ApiJson<DeploySettingsInput>,
) -> Result<Json<SiteView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let record = sites::update_deploy_settings(&state.db, &principal, site_id, &input).await?;
    Ok(Json(SiteView::from_record(&record)))
}

/// Delete a site.
#[utoipa::path(
    delete, path = "/api/v1/sites/{site_id}", tag = "sites", summary = "Delete a site (a job removes it from the server)",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 202, description = "The removal job was queued; the site's records go once it succeeded", body = SiteJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Already being removed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let started = sites::delete(&state.queue, &principal, site_id).await?;
    site_job(&state, &principal, started).await
}

/// Install a site again.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/reinstall", tag = "sites", summary = "Install a site again (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 202, body = SiteJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "A job of the site is under way", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn reinstall(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let started = sites::reinstall(&state.queue, &principal, site_id).await?;
    site_job(&state, &principal, started).await
}

/// Make a site the server's default site.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/default", tag = "sites", summary = "Make the site the server's default site (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 202, description = "The job that rewrites the server blocks and turns the catch-all site off was queued; is_default follows when it succeeded", body = SiteJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site is not installed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn default_set(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let started = sites::set_default(&state.queue, &principal, site_id, true).await?;
    site_job(&state, &principal, started).await
}

/// Make no site the server's default site in place of this one.
#[utoipa::path(
    delete, path = "/api/v1/sites/{site_id}/default", tag = "sites", summary = "Stop the site being the default site (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 202, description = "The job that rewrites the server block and turns the catch-all site back on was queued", body = SiteJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site is not installed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn default_unset(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let started = sites::set_default(&state.queue, &principal, site_id, false).await?;
    site_job(&state, &principal, started).await
}

/// Deploy a site.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/deployments", tag = "sites", summary = "Deploy a site (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    request_body = DeployBody,
    responses((status = 202, description = "The deployment's job was queued", body = DeploymentJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "No repository, or the site is not installed", body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn deploy(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let body: DeployBody = optional_json(&body)?;
    let started = deployments::deploy(&state.queue, &principal, site_id, body.commit.as_deref()).await?;
    deployment_job(&state, &principal, started).await
}

/// List a site's deployments.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/deployments", tag = "sites", summary = "List a site's deployments, newest first",
    params(("site_id" = i64, Path, description = "The site's id"), PageQuery),
    responses((status = 200, body = DeploymentPage), (status = 404, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn deployment_list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<DeploymentPage>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let paging = query.validate()?;
    let records = deployments::list(&state.queue, &principal, site_id, paging.cursor, paging.limit).await?;
    let data: Vec<DeploymentView> = records.iter().map(DeploymentView::from_record).collect();
    let next_cursor = next_cursor(&data, paging.limit, |deployment| deployment.id);
    Ok(Json(DeploymentPage { data, next_cursor }))
}

/// Show a deployment.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/deployments/{deployment_id}", tag = "sites", summary = "Show a deployment",
    params(("site_id" = i64, Path, description = "The site's id"), ("deployment_id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = DeploymentView), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn deployment_show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((site_id, deployment_id)): Path<(String, String)>,
) -> Result<Json<DeploymentView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let deployment_id = parse_id(&deployment_id, "deployment")?;
    let record = deployments::get(&state.queue, &principal, site_id, deployment_id).await?;
    Ok(Json(DeploymentView::with_output(&record)))
}

async fn deploy_key_body(
    state: &AppState,
    principal: &Principal,
    site: &SiteRecord,
) -> Result<DeployKeyBody, ApiError> {
    let server = brokeforge_app::servers::get(&state.db, principal, site.server_id).await?;
    let view = site_deploy_keys::view(site, server.deploy_public_key.as_deref());
    Ok(DeployKeyBody {
        kind: view.kind.to_owned(),
        public_key: view.public_key,
    })
}

/// Show the key a site's Git fetches log in with.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/deploy-key", tag = "sites", summary = "Show the deploy key to add to the site's repository",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = DeployKeyBody), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn deploy_key_show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<DeployKeyBody>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let site = sites::get(&state.db, &principal, site_id).await?;
    Ok(Json(deploy_key_body(&state, &principal, &site).await?))
}

/// Give a site its own deploy key.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/deploy-key", tag = "sites", summary = "Give the site its own deploy key, generated on the server",
    description = "The key pair is generated on the server (its private half never leaves it); an existing one is kept. \
                   From then on the site's Git fetches log in with it instead of the server's deploy key.",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = DeployKeyBody), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site is being installed or removed, or the server cannot be reached", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn deploy_key_generate(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<DeployKeyBody>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let site = site_deploy_keys::generate(&state.operations, &principal, site_id).await?;
    Ok(Json(deploy_key_body(&state, &principal, &site).await?))
}

/// Delete a site's own deploy key.
#[utoipa::path(
    delete, path = "/api/v1/sites/{site_id}/deploy-key", tag = "sites", summary = "Delete the site's own deploy key; it uses the server's again",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = DeployKeyBody), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site has no key of its own", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn deploy_key_remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<DeployKeyBody>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let site = site_deploy_keys::remove(&state.operations, &principal, site_id).await?;
    Ok(Json(deploy_key_body(&state, &principal, &site).await?))
}

/// List the releases a site keeps.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/releases", tag = "sites", summary = "List the releases kept for rollbacks",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = ReleaseList), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn release_list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<ReleaseList>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let releases = deployments::releases(&state.db, &principal, site_id).await?;
    Ok(Json(ReleaseList {
        data: releases.iter().map(ReleaseView::from_release).collect(),
    }))
}

/// Roll a site back to a kept release.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/rollback", tag = "sites", summary = "Roll back to a kept release (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    request_body = RollbackBody,
    responses((status = 202, body = DeploymentJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The release is live already", body = crate::api::ErrorEnvelope), (status = 422, description = "Not a kept release", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn rollback(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let release = body.release.unwrap_or_default();
    let started = deployments::rollback(&state.queue, &principal, site_id, &release).await?;
    deployment_job(&state, &principal, started).await
}

/// The webhook URLs of a site, for every provider.
pub fn webhook_urls(state: &AppState, headers: &HeaderMap, site_id: i64) -> std::collections::BTreeMap<String, String> {
    let base = state.base_url(headers);
    Provider::ALL
        .into_iter()
        .map(|provider| {
            (
                provider.as_str().to_owned(),
                format!("{base}{}", webhook_path(site_id, provider)),
            )
        })
        .collect()
}

/// Turn a site's deploy webhook on, with a new secret.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/webhook", tag = "sites", summary = "Turn the deploy webhook on (a new secret, shown once)",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 201, body = WebhookSecretView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site has no repository", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn webhook_enable(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let created = sites::enable_webhook(&state.db, &state.sealer, &principal, site_id).await?;
    let body = WebhookSecretView {
        secret: created.secret.expose().clone(),
        urls: webhook_urls(&state, &headers, site_id),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Turn a site's deploy webhook off.
#[utoipa::path(
    delete, path = "/api/v1/sites/{site_id}/webhook", tag = "sites", summary = "Turn the deploy webhook off",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 204, description = "The webhook is off and its secret forgotten"), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn webhook_disable(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    sites::disable_webhook(&state.db, &principal, site_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a command in a site's current release.
#[utoipa::path(
    post, path = "/api/v1/sites/{site_id}/commands", tag = "sites", summary = "Run a command in the site's current release (a job)",
    params(("site_id" = i64, Path, description = "The site's id")),
    request_body = CommandBody,
    responses((status = 202, body = CommandRunJobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The site has no live release", body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn command_run(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    ApiJson(input): ApiJson<CommandInput>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let CommandJob { run, job_id } = site_commands::run(&state.queue, &principal, site_id, &input).await?;
    let body = CommandRunJobView {
        run: CommandRunView::from_record(&run),
        job: job_view(&state, &principal, job_id.0).await?,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// List a site's command history.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/commands", tag = "sites", summary = "List the commands run on a site, newest first",
    params(("site_id" = i64, Path, description = "The site's id"), PageQuery),
    responses((status = 200, body = CommandRunPage), (status = 404, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn command_list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<CommandRunPage>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let paging = query.validate()?;
    let runs = site_commands::list(&state.queue, &principal, site_id, paging.cursor, paging.limit).await?;
    let data: Vec<CommandRunView> = runs.iter().map(CommandRunView::from_record).collect();
    let next_cursor = next_cursor(&data, paging.limit, |run| run.id);
    Ok(Json(CommandRunPage { data, next_cursor }))
}

/// Show a command run with its output.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/commands/{run_id}", tag = "sites", summary = "Show a command run and its output",
    params(("site_id" = i64, Path, description = "The site's id"), ("run_id" = i64, Path, description = "The run's id")),
    responses((status = 200, body = CommandRunView), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn command_show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path((site_id, run_id)): Path<(String, String)>,
) -> Result<Json<CommandRunView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let run_id = parse_id(&run_id, "command run")?;
    let run = site_commands::get(&state.queue, &principal, site_id, run_id).await?;
    Ok(Json(CommandRunView::from_record(&run)))
}

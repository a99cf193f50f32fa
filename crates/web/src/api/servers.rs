//! `/api/v1/servers`: create, list, show, update and delete server records, and
//! start a diagnostics run on one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokeforge_app::AppError;
use brokeforge_app::auth::Scope;
use brokeforge_app::diagnostics::{self, DiagnosticsInput};
use brokeforge_app::jobs;
use brokeforge_app::servers::{self, ServerInput};
use brokeforge_db::Topic;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::auth::ApiUser;
use crate::cache::PageKey;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::{JobView, PageQuery, ServerView, next_cursor};

/// A page of servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerPage {
    pub data: Vec<ServerView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A new server.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ServerCreateBody {
    /// 1 to 64 printable characters.
    pub name: String,
    /// custom (default), hetzner, digitalocean, aws, linode, vultr or other.
    pub provider: Option<String>,
    /// A public IP address or host name. Loopback, private and link-local addresses are refused unless the operator allowed them.
    pub public_address: String,
    /// Default 22.
    pub ssh_port: Option<u16>,
    /// 7.4, 8.0, 8.1, 8.2, 8.3 (default), 8.4 or 8.5.
    pub php_version: Option<String>,
    /// none (default), mysql, mariadb or postgresql.
    pub database: Option<String>,
}

/// A new server and the line to run on it as root.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerCreatedView {
    #[serde(flatten)]
    pub server: ServerView,
    pub bootstrap_line: super::onboarding::BootstrapLineView,
}

/// Changes to a server; fields left out keep their values.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ServerUpdateBody {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub public_address: Option<String>,
    pub ssh_port: Option<u16>,
    pub php_version: Option<String>,
    pub database: Option<String>,
}

/// A diagnostics run: walks the server through `steps` milestones; optionally
/// fails at `fail_at_step` with the given command, exit code and stderr.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct DiagnosticsBody {
    /// 1 to 20 (default 5).
    pub steps: Option<u32>,
    /// Pause per step in milliseconds, 0 to 10000 (default 700).
    pub step_ms: Option<u32>,
    pub fail_at_step: Option<u32>,
    pub fail_command: Option<String>,
    pub fail_exit_code: Option<u8>,
    pub fail_stderr: Option<String>,
}

/// List your servers.
#[utoipa::path(
    get, path = "/api/v1/servers", tag = "servers", summary = "List your servers",
    params(PageQuery),
    responses((status = 200, body = ServerPage), (status = 401, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let paging = query.validate()?;
    // The scope is checked before the cache is asked, so only readers get the page.
    principal.require(Scope::Read)?;
    let key = PageKey::for_user(
        &principal,
        "api.servers",
        format!("{:?}/{}", paging.cursor, paging.limit),
    );
    let body = state
        .caches
        .page(&state.db, key, &[Topic::Servers], || async {
            let records = servers::list(&state.db, &principal, paging.cursor, paging.limit).await?;
            let data: Vec<ServerView> = records.iter().map(ServerView::from_record).collect();
            let next_cursor = next_cursor(&data, paging.limit, |server| server.id);
            let json = serde_json::to_vec(&ServerPage { data, next_cursor }).map_err(AppError::internal)?;
            Ok(Bytes::from(json))
        })
        .await?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// Create a server record.
#[utoipa::path(
    post, path = "/api/v1/servers", tag = "servers", summary = "Create a server record",
    request_body = ServerCreateBody,
    responses((status = 201, body = ServerCreatedView), (status = 403, body = crate::api::ErrorEnvelope), (status = 422, description = "Invalid fields; nothing was created", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<ServerInput>,
) -> Result<Response, ApiError> {
    let (record, line) = brokeforge_app::onboarding::create_server(
        &state.db,
        &state.sealer,
        &principal,
        state.config.address_policy,
        &input,
        &state.base_url(&headers),
    )
    .await?;
    let created = ServerCreatedView {
        server: ServerView::from_record(&record),
        bootstrap_line: super::onboarding::BootstrapLineView::from_line(line),
    };
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/servers/{}", record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Show one server.
#[utoipa::path(
    get, path = "/api/v1/servers/{server_id}", tag = "servers", summary = "Show a server",
    params(("server_id" = i64, Path, description = "The server's id")),
    responses((status = 200, body = ServerView), (status = 404, description = "No such server (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
) -> Result<Json<ServerView>, ApiError> {
    let record = servers::get(&state.db, &principal, parse_id(&server_id, "server")?).await?;
    Ok(Json(ServerView::from_record(&record)))
}

/// Change a server.
#[utoipa::path(
    patch, path = "/api/v1/servers/{server_id}", tag = "servers", summary = "Change a server",
    params(("server_id" = i64, Path, description = "The server's id")),
    request_body = ServerUpdateBody,
    responses((status = 200, body = ServerView), (status = 404, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn update(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    ApiJson(input): ApiJson<ServerInput>,
) -> Result<Json<ServerView>, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let record = servers::update(&state.db, &principal, state.config.address_policy, server_id, &input).await?;
    Ok(Json(ServerView::from_record(&record)))
}

/// How to delete a server.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// First remove BrokeForge's access from the server (the brokeforge user, its
    /// sudo rules and BrokeForge's keys in root's authorized_keys); the records go
    /// when that job succeeds.
    #[serde(default)]
    pub remove_access: bool,
}

/// Delete a server.
#[utoipa::path(
    delete, path = "/api/v1/servers/{server_id}", tag = "servers", summary = "Delete a server (optionally removing BrokeForge's access first)",
    params(("server_id" = i64, Path, description = "The server's id"), DeleteQuery),
    responses((status = 204, description = "Deleted, with its sealed keys erased"), (status = 202, description = "A job removes BrokeForge's access; the server is deleted when it succeeds", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "BrokeForge never reached the server", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    match brokeforge_app::onboarding::delete_server(&state.db, &state.queue, &principal, server_id, query.remove_access)
        .await?
    {
        brokeforge_app::onboarding::Deletion::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        brokeforge_app::onboarding::Deletion::RemovingAccess(job_id) => {
            let job = jobs::get(&state.db, &principal, job_id.0).await?;
            Ok((StatusCode::ACCEPTED, Json(JobView::from_row(&job))).into_response())
        }
    }
}

/// Start a diagnostics run.
#[utoipa::path(
    post, path = "/api/v1/servers/{server_id}/diagnostics", tag = "servers", summary = "Start a diagnostics run (a job)",
    params(("server_id" = i64, Path, description = "The server's id")),
    request_body = DiagnosticsBody,
    responses((status = 202, description = "The job was queued", body = JobView), (status = 404, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn diagnostics(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(server_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let server_id = parse_id(&server_id, "server")?;
    let input: DiagnosticsInput = super::optional_json(&body)?;
    let job_id = diagnostics::start(&state.queue, &principal, server_id, &input).await?;
    let job = jobs::get(&state.db, &principal, job_id.0).await?;
    Ok((StatusCode::ACCEPTED, Json(JobView::from_row(&job))).into_response())
}

//! The PHP page of a server: installed versions with the command-line default,
//! their extensions and the sites on each, PHP jobs under way, and the forms that
//! start one job each (install or remove a version, set the default, install or
//! remove an extension). A started job opens its progress page; a refused request
//! shows the page again with the reason.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::{AppError, FieldErrors, php_versions, servers};
use brokeforge_queue::JobId;
use minijinja::context;

use super::{FormFields, NoticeQuery, errors_context, notice_text, page_context, render, sv};
use crate::AppState;
use crate::api::php::PhpView;
use crate::auth::SessionUser;
use crate::error::PageError;
use crate::routes::parse_id;
use crate::views::ServerView;

/// Why a request was refused, shown above the forms.
enum Refusal {
    Fields(FieldErrors),
    Message(String),
}

async fn php_page_response(
    state: &AppState,
    principal: &Principal,
    server_id: i64,
    status: StatusCode,
    refusal: Option<Refusal>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let record = servers::get(&state.db, principal, server_id).await?;
    let overview = php_versions::overview(&state.queue, principal, server_id).await?;
    let (errors, alert) = match &refusal {
        Some(Refusal::Fields(errors)) => (Some(errors_context(errors)), None),
        Some(Refusal::Message(message)) => (None, Some(message.clone())),
        None => (None, None),
    };
    let context = page_context(
        principal,
        "servers",
        context! {
            server => sv(ServerView::from_record(&record)), php => sv(PhpView::from_overview(&overview)),
            errors => errors, alert => alert, notice => notice,
        },
    );
    Ok(render(status, "server_php.html", context))
}

/// A started job opens its page; a refusal shows the PHP page with the reason.
async fn outcome(
    state: &AppState,
    principal: &Principal,
    server_id: i64,
    result: Result<JobId, AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(AppError::Validation(errors)) => {
            php_page_response(
                state,
                principal,
                server_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Refusal::Fields(errors)),
                None,
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            php_page_response(
                state,
                principal,
                server_id,
                StatusCode::CONFLICT,
                Some(Refusal::Message(message)),
                None,
            )
            .await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `GET /servers/{server_id}/php`.
pub async fn php_page(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    php_page_response(
        &state,
        &principal,
        server_id,
        StatusCode::OK,
        None,
        notice_text(query.notice.as_deref()),
    )
    .await
}

/// `POST /servers/{server_id}/php`: installs the version in the `version` field.
pub async fn php_install(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let result = php_versions::install(&state.queue, &principal, server_id, form.get("version")).await;
    outcome(&state, &principal, server_id, result).await
}

/// `POST /servers/{server_id}/php/{version}/remove`.
pub async fn php_remove(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((server_id, version)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let result = php_versions::remove(&state.queue, &principal, server_id, &version).await;
    outcome(&state, &principal, server_id, result).await
}

/// `POST /servers/{server_id}/php/{version}/default`.
pub async fn php_cli_default(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((server_id, version)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let result = php_versions::set_cli_default(&state.queue, &principal, server_id, &version).await;
    outcome(&state, &principal, server_id, result).await
}

/// `POST /servers/{server_id}/php/{version}/extensions`: installs the extension in
/// the `extension` field.
pub async fn php_extension_install(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((server_id, version)): Path<(String, String)>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let result =
        php_versions::install_extension(&state.queue, &principal, server_id, &version, form.get("extension")).await;
    outcome(&state, &principal, server_id, result).await
}

/// `POST /servers/{server_id}/php/{version}/extensions/{extension}/remove`.
pub async fn php_extension_remove(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((server_id, version, extension)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let result = php_versions::remove_extension(&state.queue, &principal, server_id, &version, &extension).await;
    outcome(&state, &principal, server_id, result).await
}

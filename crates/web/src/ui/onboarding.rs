//! The onboarding part of the server page: the bootstrap line with its copy
//! button, the numbered stages with live status, the bootstrap reports, and the
//! actions (new line, revoke, resume, provision again).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::{onboarding, provisioning};
use minijinja::{Value, context};

use super::sv;
use crate::AppState;
use crate::auth::SessionUser;
use crate::error::PageError;
use crate::routes::parse_id;

/// The template values of a server's onboarding section.
pub async fn onboarding_context(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    server_id: i64,
) -> Result<Value, PageError> {
    let status = onboarding::status(&state.db, principal, server_id).await?;
    let line = if status.line_usable {
        onboarding::current_line(&state.db, &state.sealer, principal, server_id, &state.base_url(headers)).await?
    } else {
        None
    };
    Ok(context! { status => sv(&status), line => sv(line) })
}

/// `POST /servers/{server_id}/bootstrap-line`: a new bootstrap line (the old one
/// stops working).
pub async fn regenerate_line(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    onboarding::regenerate_line(
        &state.db,
        &state.sealer,
        &principal,
        server_id,
        &state.base_url(&headers),
    )
    .await?;
    Ok(Redirect::to(&format!("/servers/{server_id}?notice=bootstrap_line_issued")).into_response())
}

/// `POST /servers/{server_id}/bootstrap-line/revoke`.
pub async fn revoke_line(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    onboarding::revoke_line(&state.db, &principal, server_id).await?;
    Ok(Redirect::to(&format!("/servers/{server_id}?notice=bootstrap_line_revoked")).into_response())
}

/// `POST /servers/{server_id}/provisioning/resume`: resumes where onboarding failed.
pub async fn resume(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let job_id = provisioning::resume(&state.db, &state.queue, &principal, server_id).await?;
    Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response())
}

/// `POST /servers/{server_id}/provisioning`: provisions the server again.
pub async fn reprovision(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let job_id = provisioning::reprovision(&state.db, &state.queue, &principal, server_id).await?;
    Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response())
}

/// `GET /servers/{server_id}/onboarding`: the onboarding status as JSON, which the
/// server page polls to update its stages without a reload.
pub async fn status_json(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let status = onboarding::status(&state.db, &principal, server_id).await?;
    Ok(axum::Json(status).into_response())
}

//! `/api/v1/jobs`: list, show, cancel and retry the caller's jobs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use brokeforge_app::jobs;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::{EventView, JobDetailView, JobView, PageQuery, next_cursor};

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub data: Vec<JobView>,
    pub next_cursor: Option<String>,
}

/// List your jobs, newest first.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs", summary = "List your jobs",
    params(PageQuery),
    responses((status = 200, body = JobPage), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let paging = query.validate()?;
    let rows = jobs::list(&state.db, &principal, paging.server_id, paging.cursor, paging.limit).await?;
    let data: Vec<JobView> = rows.iter().map(JobView::from_row).collect();
    let next_cursor = next_cursor(&data, paging.limit, |job| job.id);
    Ok(Json(JobPage { data, next_cursor }))
}

async fn detail(
    state: &AppState,
    principal: &brokeforge_app::auth::Principal,
    job_id: i64,
) -> Result<JobDetailView, ApiError> {
    let job = jobs::get(&state.db, principal, job_id).await?;
    let events = jobs::latest_run(jobs::events_after(&state.db, job_id, 0).await?);
    Ok(JobDetailView {
        job: JobView::from_row(&job),
        events: events.iter().map(EventView::from_event).collect(),
    })
}

/// Show a job with the milestones of its latest run.
#[utoipa::path(
    get, path = "/api/v1/jobs/{job_id}", tag = "jobs", summary = "Show a job and its milestones",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses((status = 200, body = JobDetailView), (status = 404, description = "No such job (or not yours)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(job_id): Path<String>,
) -> Result<Json<JobDetailView>, ApiError> {
    Ok(Json(detail(&state, &principal, parse_id(&job_id, "job")?).await?))
}

/// Cancel a queued or running job.
#[utoipa::path(
    post, path = "/api/v1/jobs/{job_id}/cancel", tag = "jobs", summary = "Cancel a job",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses((status = 202, body = JobDetailView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The job already finished", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn cancel(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(job_id): Path<String>,
) -> Result<(StatusCode, Json<JobDetailView>), ApiError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::cancel(&state.queue, &principal, job_id).await?;
    Ok((StatusCode::ACCEPTED, Json(detail(&state, &principal, job_id).await?)))
}

/// Queue a failed or cancelled job again.
#[utoipa::path(
    post, path = "/api/v1/jobs/{job_id}/retry", tag = "jobs", summary = "Retry a failed job",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses((status = 202, body = JobDetailView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Only failed or cancelled jobs can be retried", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn retry(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(job_id): Path<String>,
) -> Result<(StatusCode, Json<JobDetailView>), ApiError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::retry(&state.queue, &principal, job_id).await?;
    Ok((StatusCode::ACCEPTED, Json(detail(&state, &principal, job_id).await?)))
}

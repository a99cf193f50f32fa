//! Live job progress over server-sent events. A stream first replays the job's
//! events after `Last-Event-ID` (or `?after=`), then follows new ones as workers
//! write them, from any process: it reads the event rows, so it needs no in-memory
//! channel between the worker and the web server. Event kinds:
//!
//! - `progress` (with `id:`): one milestone, as [`EventView`] JSON;
//! - `state`: the job's state changed (`{"state", "last_error", "attempts"}`);
//! - `end`: the job is final and every event was sent; the stream closes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use brokeforge_app::jobs;
use brokeforge_queue::{JobId, Queue};
use futures_util::Stream;
use serde_json::json;

use crate::AppState;
use crate::auth::{ApiUser, SessionUser};
use crate::error::{ApiError, PageError};
use crate::routes::parse_id;
use crate::views::EventView;

/// How often a stream looks for new events.
pub const POLL_INTERVAL: Duration = Duration::from_millis(400);

/// Where a stream starts.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AfterQuery {
    pub after: Option<String>,
}

fn start_after(headers: &HeaderMap, query: &AfterQuery) -> i64 {
    let from_header = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok());
    let from_query = query.after.as_deref().and_then(|text| text.trim().parse::<i64>().ok());
    from_header.into_iter().chain(from_query).max().unwrap_or(0).max(0)
}

struct Follower {
    queue: Queue,
    job_id: i64,
    after: i64,
    last_state: Option<String>,
    pending: VecDeque<Event>,
    finished: bool,
}

impl Follower {
    /// Reads the job's state, then its new events, queueing what changed.
    async fn poll(&mut self) {
        let job = match self.queue.get(JobId(self.job_id)).await {
            Ok(job) => job,
            Err(error) => {
                tracing::warn!(%error, job_id = self.job_id, "live progress: reading the job failed");
                return;
            }
        };
        // Events are read after the state: once a final state is seen, every event
        // the job wrote is already stored and is sent below.
        match jobs::events_after(self.queue.db(), self.job_id, self.after).await {
            Ok(events) => {
                for event in events {
                    self.after = event.id;
                    let data = serde_json::to_string(&EventView::from_event(&event)).unwrap_or_default();
                    self.pending
                        .push_back(Event::default().id(event.id.to_string()).event("progress").data(data));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, job_id = self.job_id, "live progress: reading events failed");
                return;
            }
        }
        let Some(job) = job else {
            self.pending.push_back(Event::default().event("end").data("{}"));
            self.finished = true;
            return;
        };
        let state = job.state.as_str().to_owned();
        if self.last_state.as_deref() != Some(state.as_str()) {
            let data = json!({ "state": state, "last_error": job.last_error, "attempts": job.attempts });
            self.pending
                .push_back(Event::default().event("state").data(data.to_string()));
            self.last_state = Some(state);
        }
        if job.state.is_final() {
            self.pending.push_back(Event::default().event("end").data("{}"));
            self.finished = true;
        }
    }
}

fn follow(queue: Queue, job_id: i64, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    let follower = Follower {
        queue,
        job_id,
        after,
        last_state: None,
        pending: VecDeque::new(),
        finished: false,
    };
    futures_util::stream::unfold(follower, |mut follower| async move {
        loop {
            if let Some(event) = follower.pending.pop_front() {
                return Some((Ok(event), follower));
            }
            if follower.finished {
                return None;
            }
            follower.poll().await;
            if follower.pending.is_empty() {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    })
}

/// `GET /jobs/{job_id}/events`: the job page's live feed (session).
pub async fn job_events_page(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(job_id): Path<String>,
    Query(query): Query<AfterQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::get(&state.db, &principal, job_id).await?;
    Ok(Sse::new(follow(state.queue.clone(), job_id, start_after(&headers, &query))).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/jobs/{job_id}/events`: the same feed for API clients (token).
#[utoipa::path(
    get, path = "/api/v1/jobs/{job_id}/events", tag = "jobs",
    summary = "Follow a job's progress (server-sent events)",
    description = "Replays the job's milestones after `Last-Event-ID` (or `?after=`), then streams new ones. \
                   Event types: `progress` (an EventView), `state` (the job's state changed), `end` (the job is final).",
    params(("job_id" = i64, Path, description = "The job's id"), ("after" = Option<i64>, Query, description = "Replay events after this id")),
    responses((status = 200, description = "A text/event-stream", content_type = "text/event-stream"), (status = 404, description = "No such job", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn job_events_api(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(job_id): Path<String>,
    Query(query): Query<AfterQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::get(&state.db, &principal, job_id).await?;
    Ok(Sse::new(follow(state.queue.clone(), job_id, start_after(&headers, &query))).keep_alive(KeepAlive::default()))
}

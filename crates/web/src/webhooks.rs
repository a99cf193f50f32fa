//! The public deploy webhooks of sites, `POST /webhooks/sites/{site_id}/{provider}`.
//! They use no session: the request's signature (GitHub, generic) or token (GitLab)
//! is the credential, checked against the site's secret before anything else is
//! read, so the CSRF guard leaves `/webhooks/` alone. Answers: `202` with the queued
//! deployment, `202` with the reason when the push was ignored (another branch, a
//! tag, a delivery seen before), `401` for a bad signature, `404` for an unknown
//! site, a site whose webhook is off and an unknown provider alike, `422` for a
//! signed body BrokeForge cannot read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brokeforge_app::webhooks::{self, Provider, WebhookError, WebhookOutcome, WebhookRequest};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// `POST /webhooks/sites/{site_id}/{provider}`.
pub async fn receive(
    State(state): State<AppState>,
    Path((site_id, provider)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let not_found = || refusal(StatusCode::NOT_FOUND, "not_found", "No such webhook.");
    let (Ok(site_id), Some(provider)) = (site_id.parse::<i64>(), Provider::parse(&provider)) else {
        return not_found();
    };
    let request = WebhookRequest {
        event: header(&headers, "x-github-event").or_else(|| header(&headers, "x-gitlab-event")),
        signature: match provider {
            Provider::GitHub => header(&headers, "x-hub-signature-256"),
            Provider::Generic => header(&headers, "x-brokeforge-signature"),
            Provider::GitLab => None,
        },
        token: header(&headers, "x-gitlab-token"),
        delivery_id: header(&headers, "x-github-delivery")
            .or_else(|| header(&headers, "x-gitlab-event-uuid"))
            .or_else(|| header(&headers, "x-brokeforge-delivery")),
        body: &body,
    };
    match webhooks::receive(&state.queue, &state.sealer, site_id, provider, &request).await {
        Ok(WebhookOutcome::Queued { deployment_id, job_id }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "deployed": true, "deployment_id": deployment_id, "job_id": job_id.0 })),
        )
            .into_response(),
        Ok(WebhookOutcome::Ignored(reason)) => (
            StatusCode::ACCEPTED,
            Json(json!({ "deployed": false, "reason": reason })),
        )
            .into_response(),
        Err(WebhookError::NotFound) => not_found(),
        Err(error @ WebhookError::BadSignature) => {
            refusal(StatusCode::UNAUTHORIZED, "bad_signature", &error.to_string())
        }
        Err(WebhookError::Invalid(message)) => refusal(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", &message),
        Err(WebhookError::App(error)) => ApiError(error).into_response(),
    }
}

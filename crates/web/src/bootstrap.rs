//! The public endpoints a server talks to while it is bootstrapped: the script behind
//! a bootstrap line, and the two signed callbacks the script reports to. None of them
//! uses a session: the line's token and the callbacks' HMAC signatures are the
//! credentials, so the CSRF guard leaves `/bootstrap/` alone.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokeforge_app::onboarding::{self, CallbackError, CallbackKind, CallbackQuery};
use brokeforge_packages::bootstrap::{BootstrapCompletion, BootstrapProgress};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// `GET /bootstrap/{token}`: the bootstrap script. Always a script, so that a used,
/// expired or unknown line prints its reason on the server rather than a bare HTTP
/// error; such scripts exit with status 3 and change nothing.
pub async fn script(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let base = state.base_url(&headers);
    let script = onboarding::script_for_token(&state.db, &state.sealer, &token, &base).await?;
    let mut response = (StatusCode::OK, script.body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn callback_error(error: CallbackError) -> Response {
    let (status, code) = match &error {
        CallbackError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
        CallbackError::Gone(_) => (StatusCode::GONE, "gone"),
        CallbackError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_report"),
        CallbackError::App(_) => {
            let CallbackError::App(error) = error else {
                unreachable!()
            };
            return ApiError::from(error).into_response();
        }
    };
    (
        status,
        Json(json!({ "error": { "code": code, "message": error.to_string() } })),
    )
        .into_response()
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, CallbackError> {
    serde_json::from_slice(body)
        .map_err(|error| CallbackError::Invalid(format!("the report is not valid JSON of the expected shape: {error}")))
}

/// `POST /bootstrap/callback/{line_id}/{kind}`: a progress or completion report.
pub async fn callback(
    State(state): State<AppState>,
    Path((line_id, kind)): Path<(String, String)>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let (Ok(line_id), Some(kind), Ok(Query(query))) = (line_id.parse::<i64>(), CallbackKind::parse(&kind), query)
    else {
        return callback_error(CallbackError::BadSignature);
    };
    // Nothing of an unsigned request is read, not even its body.
    if let Err(error) = onboarding::verify_callback_signature(&state.sealer, line_id, kind, &query) {
        return callback_error(error);
    }
    match kind {
        CallbackKind::Progress => {
            let report: BootstrapProgress = match parse_body(&body) {
                Ok(report) => report,
                Err(error) => return callback_error(error),
            };
            match onboarding::record_progress(&state.db, &state.sealer, line_id, &query, &report).await {
                Ok(()) => Json(json!({ "ok": true })).into_response(),
                Err(error) => callback_error(error),
            }
        }
        CallbackKind::Complete => {
            let report: BootstrapCompletion = match parse_body(&body) {
                Ok(report) => report,
                Err(error) => return callback_error(error),
            };
            match onboarding::record_completion(&state.db, &state.sealer, &state.queue, line_id, &query, &report).await
            {
                Ok(job_id) => Json(json!({ "ok": true, "job_id": job_id.0 })).into_response(),
                Err(error) => callback_error(error),
            }
        }
    }
}

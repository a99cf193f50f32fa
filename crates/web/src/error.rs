//! The one place where errors become HTTP responses. [`status_of`] decides the
//! status for every [`AppError`]; the API renders it as the JSON error envelope
//! (`{"error": {"code", "message", "fields"}}`), the UI as an error page (or a
//! redirect to the sign-in page when the caller is not signed in).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use brokeforge_app::AppError;
use serde_json::json;

/// The HTTP status of an application error.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The machine-readable code of an application error.
pub fn code_of(error: &AppError) -> &'static str {
    match error {
        AppError::Validation(_) => "validation_failed",
        AppError::NotFound(_) => "not_found",
        AppError::Unauthenticated => "unauthenticated",
        AppError::Forbidden(_) => "forbidden",
        AppError::Conflict(_) => "conflict",
        AppError::RateLimited { .. } => "rate_limited",
        AppError::Internal(_) => "internal",
    }
}

/// The message people see. Internal causes stay in the log.
pub fn message_of(error: &AppError) -> String {
    match error {
        AppError::Validation(_) => "Some fields are invalid; nothing was changed.".to_owned(),
        AppError::NotFound(what) => format!("No such {what}."),
        AppError::Unauthenticated => "Sign in first: send `Authorization: Bearer <token>`.".to_owned(),
        AppError::Internal(_) => "Something went wrong on our side; the details are in the server log.".to_owned(),
        other => other.to_string(),
    }
}

fn retry_after(error: &AppError, response: &mut Response) {
    if let AppError::RateLimited {
        retry_after_seconds, ..
    } = error
        && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// An error answered as the API's JSON envelope.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(error: AppError) -> ApiError {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let mut body = json!({ "code": code_of(&error), "message": message_of(&error) });
        if let AppError::Validation(fields) = &error {
            body["fields"] = serde_json::to_value(fields).unwrap_or_default();
        }
        let mut response = (status_of(&error), axum::Json(json!({ "error": body }))).into_response();
        if matches!(error, AppError::Unauthenticated) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        retry_after(&error, &mut response);
        response
    }
}

/// An error answered as an HTML page.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(error: AppError) -> PageError {
        PageError(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        if matches!(error, AppError::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        let status = status_of(&error);
        let message = match &error {
            AppError::Validation(fields) => fields
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
                .collect::<Vec<_>>()
                .join("; "),
            other => message_of(other),
        };
        let html = crate::templates::error_page(status, &message);
        let mut response = (status, Html(html)).into_response();
        retry_after(&error, &mut response);
        response
    }
}

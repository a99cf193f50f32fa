//! The errors every use case returns. The web layer maps each variant to one HTTP
//! status in exactly one place; messages are written for the person who sees them
//! and never contain secrets.

use std::collections::BTreeMap;

use brokeforge_db::DbError;
use brokeforge_queue::QueueError;

/// Field-level validation errors: field name to messages, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// A set with one error on one field.
    pub fn single(field: &str, message: impl Into<String>) -> FieldErrors {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        errors
    }

    /// Adds a message for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first message for `field`, if any.
    pub fn first(&self, field: &str) -> Option<&str> {
        self.0
            .get(field)
            .and_then(|messages| messages.first())
            .map(String::as_str)
    }

    /// The fields with errors, sorted.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every field and its messages.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0
            .iter()
            .map(|(field, messages)| (field.as_str(), messages.as_slice()))
    }

    /// `Ok(())` when empty, the errors otherwise.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }
}

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is invalid; nothing was changed.
    #[error("the input is invalid")]
    Validation(FieldErrors),
    /// The thing does not exist, or the caller may not see it (the two look alike).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No valid session or token.
    #[error("sign in first")]
    Unauthenticated,
    /// Signed in, but not allowed (a missing token scope, a non-admin).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a duplicate, a finished job).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again later.
    #[error("{message}")]
    RateLimited { message: String, retry_after_seconds: u64 },
    /// Something broke inside; the details went to the log, not to the caller.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// An internal error, logged here with its cause.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        let cause = cause.to_string();
        tracing::error!(error = %cause, "internal error");
        AppError::Internal(cause)
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> AppError {
        match error {
            DbError::Conflict(message) => AppError::Conflict(message),
            DbError::NotFound(what) => AppError::NotFound(what),
            other => AppError::internal(other),
        }
    }
}

impl From<QueueError> for AppError {
    fn from(error: QueueError) -> AppError {
        AppError::internal(error)
    }
}

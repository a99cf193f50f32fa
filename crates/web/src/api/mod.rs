//! The JSON API under `/api/v1`. Callers authenticate with `Authorization: Bearer
//! <token>`; tokens carry scopes (`read`, `write`, `deploy`). Lists are paged with
//! `limit` and `cursor` and answer `{"data": [...], "next_cursor": ...}`; errors
//! answer one envelope, `{"error": {"code", "message", "fields"}}`, with 422 and the
//! invalid field names for bad input, and 404 for unknown ids and other users' ids
//! alike. The OpenAPI document is generated from these handlers.

pub mod audit;
pub mod firewall;
pub mod jobs;
pub mod me;
pub mod onboarding;
pub mod php;
pub mod servers;
pub mod site_files;
pub mod sites;
pub mod tokens;
pub mod users;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use brokeforge_app::{AppError, FieldErrors};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ApiError;

/// The error envelope every failed API call answers.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// One of validation_failed, not_found, unauthenticated, forbidden, conflict, rate_limited, internal.
    pub code: String,
    pub message: String,
    /// For validation_failed: each invalid field with its messages.
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

/// A JSON request body. Malformed JSON is a 422 on the `body` field, in the envelope.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError(AppError::Validation(FieldErrors::single(
                "body",
                rejection.body_text(),
            )))),
        }
    }
}

/// Parses an optional JSON body: an empty body means the defaults.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError(AppError::Validation(FieldErrors::single(
            "body",
            format!("Invalid JSON: {error}"),
        )))
    })
}

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some(
                "An API token (`bf_…`), created on the Tokens page, with `brokeforge admin create-token`, or with POST /api/v1/auth/token.",
            )).build()),
        );
    }
}

/// The OpenAPI description of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "BrokeForge API", description = "Manage your servers, follow jobs and read the audit log."),
    paths(
        tokens::exchange_password, me::me,
        servers::list, servers::create, servers::show, servers::update, servers::remove, servers::diagnostics,
        jobs::list, jobs::show, crate::sse::job_events_api, jobs::cancel, jobs::retry,
        audit::list, tokens::list, tokens::create, tokens::revoke,
        users::list, users::create, users::remove,
        php::show, php::install, php::remove, php::cli_default, php::install_extension, php::remove_extension,
        firewall::list, firewall::add, firewall::remove,
        onboarding::show_line, onboarding::regenerate_line, onboarding::revoke_line, onboarding::status,
        onboarding::resume, onboarding::reprovision,
        sites::list, sites::create, sites::show, sites::update, sites::remove, sites::reinstall,
        sites::default_set, sites::default_unset,
        sites::deploy, sites::deployment_list, sites::deployment_show, sites::deploy_key_show, sites::deploy_key_generate,
        sites::deploy_key_remove, sites::release_list, sites::rollback,
        sites::webhook_enable, sites::webhook_disable, sites::command_run, sites::command_list, sites::command_show,
        site_files::env_show, site_files::env_write, site_files::files_show, site_files::files_write,
        site_files::files_delete,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&SecurityAddon),
    tags(
        (name = "account", description = "Who you are, and your API tokens"),
        (name = "servers", description = "Server records"),
        (name = "onboarding", description = "Bootstrap lines and provisioning"),
        (name = "jobs", description = "Background jobs and their live progress"),
        (name = "php", description = "PHP versions, the command-line default and extensions on a server"),
        (name = "firewall", description = "Firewall rules added to a server"),
        (name = "sites", description = "Sites, their deployments, releases, webhook, commands, environment file and files"),
        (name = "audit", description = "Who did what, and when"),
    )
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes"));

/// The OpenAPI document as JSON.
pub fn openapi_document() -> &'static serde_json::Value {
    &DOCUMENT
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Response {
    axum::Json(openapi_document()).into_response()
}

/// A page of items with the cursor of the next page.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

//! BrokeForge's HTTP surface: the server-rendered web UI, the JSON API under
//! `/api/v1` (with its OpenAPI document), live job progress over server-sent events,
//! sessions and API tokens, CSRF protection, and the health endpoints.
//!
//! Every route is declared once in [`routes::table`], which both builds the axum
//! router and lists the routes with the access they need; the authorization table
//! test walks that list, so a route cannot be added without an expectation.
//! Errors from the application layer become HTTP responses in exactly one place,
//! [`error`].

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod error;
pub mod health;
pub mod routes;
pub mod sse;
pub mod templates;
pub mod ui;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use brokeforge_app::operations::OperationEnvironment;
use brokeforge_app::servers::AddressPolicy;
use brokeforge_db::{Db, Sealer};
use brokeforge_queue::Queue;

/// How the web layer behaves; set by `brokeforge serve`.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The URL people reach BrokeForge at, such as `https://forge.example.com`. It
    /// decides whether cookies are `Secure` and which `Origin` is accepted on forms.
    /// When unset, the request's own `Host` is trusted and cookies are not `Secure`.
    pub public_url: Option<String>,
    /// What server addresses tenants may register.
    pub address_policy: AddressPolicy,
}

impl WebConfig {
    /// The origin (`scheme://host[:port]`) of the public URL, if one is configured.
    pub fn public_origin(&self) -> Option<String> {
        let url = self.public_url.as_deref()?.trim().trim_end_matches('/');
        let scheme_end = url.find("://")? + 3;
        let host_end = url[scheme_end..]
            .find('/')
            .map(|index| scheme_end + index)
            .unwrap_or(url.len());
        Some(url[..host_end].to_ascii_lowercase())
    }

    /// True when cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.trim().to_ascii_lowercase().starts_with("https://"))
    }
}

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub queue: Queue,
    /// Seals and opens secrets (server keys, bootstrap lines) and signs callbacks.
    pub sealer: Arc<Sealer>,
    /// What runs site operations at request time (the environment editor and the
    /// file explorer): the same SSH pool the process's workers use.
    pub operations: Arc<OperationEnvironment>,
    pub config: Arc<WebConfig>,
    /// Principals and pages this process read recently (see [`cache`]).
    pub caches: Arc<cache::Caches>,
}

impl AppState {
    /// The URL servers and browsers reach BrokeForge at: the configured public URL,
    /// or else `http://` and the request's `Host`.
    pub fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(url) = self.config.public_url.as_deref() {
            return url.trim().trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    /// State for a control plane whose database, queue, sealer and SSH pool are
    /// those of `operations`.
    pub fn new(operations: OperationEnvironment, config: WebConfig) -> AppState {
        AppState {
            db: operations.db.clone(),
            queue: operations.queue.clone(),
            sealer: Arc::clone(&operations.sealer),
            operations: Arc::new(operations),
            config: Arc::new(config),
            caches: Arc::new(cache::Caches::default()),
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    routes::table()
        .into_router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::csrf_guard))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The tracing span of a request. The path is logged without the one-time setup
/// token (query strings are never logged), so no credential reaches the logs.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %loggable_path(request.uri().path()))
}

/// `path` with the secret part of `/setup/<token>` and `/bootstrap/<token>` masked.
pub fn loggable_path(path: &str) -> String {
    if path.starts_with("/setup/") {
        "/setup/***".to_owned()
    } else if path.starts_with("/bootstrap/") && !path.starts_with("/bootstrap/callback/") {
        "/bootstrap/***".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn setup_tokens_never_reach_the_logs() {
        assert_eq!(super::loggable_path("/setup/0123abcd"), "/setup/***");
        assert_eq!(super::loggable_path("/bootstrap/0123abcd"), "/bootstrap/***");
        assert_eq!(
            super::loggable_path("/bootstrap/callback/4/progress"),
            "/bootstrap/callback/4/progress"
        );
        assert_eq!(super::loggable_path("/servers/4"), "/servers/4");
    }
}

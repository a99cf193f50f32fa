//! BrokeForge's HTTP surface. For now: liveness (`/healthz`) and readiness
//! (`/readyz`: database reachable and every migration applied). The JSON API and
//! the web UI are added here, behind one error-to-HTTP mapping.

pub mod health;

use axum::Router;
use brokeforge_db::Db;

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

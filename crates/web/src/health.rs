//! Health endpoints for load balancers and orchestrators: `/healthz` answers while
//! the process runs; `/readyz` answers 200 only when the database is reachable and
//! its schema is current, 503 with the reason otherwise.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let backend = state.db.backend().name();
    if let Err(error) = state.db.ping().await {
        tracing::warn!(%error, "readiness: database unreachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": backend, "reason": "database unreachable" })),
        );
    }
    match brokeforge_db::migrate::status(&state.db).await {
        Ok(status) if status.is_current() => (StatusCode::OK, Json(json!({ "status": "ready", "database": backend }))),
        Ok(status) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "database": backend,
                "reason": "migrations not applied",
                "pending_migrations": status.pending,
                "unknown_migrations": status.unknown,
            })),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness: migration status unknown");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": backend, "reason": "migration status unknown" })),
            )
        }
    }
}

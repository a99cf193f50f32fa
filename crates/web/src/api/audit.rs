//! `GET /api/v1/audit`: the caller's own actions, or everything about one of their
//! servers with `?server_id=`.

use axum::Json;
use axum::extract::{Query, State};
use brokeforge_app::audit;
use brokeforge_app::auth::Scope;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::views::{AuditView, PageQuery, next_cursor};

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

/// Read the audit log.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit", summary = "Your audit log, or one server's",
    params(PageQuery),
    responses((status = 200, body = AuditPage), (status = 404, description = "No such server (with server_id)", body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    principal.require(Scope::Read)?;
    let paging = query.validate()?;
    let records = match paging.server_id {
        Some(server_id) => {
            audit::list_for_server(&state.db, principal.user_id, server_id, paging.cursor, paging.limit).await?
        }
        None => audit::list_for_user(&state.db, principal.user_id, paging.cursor, paging.limit).await?,
    };
    let data: Vec<AuditView> = records.iter().map(AuditView::from_record).collect();
    let next_cursor = next_cursor(&data, paging.limit, |event| event.id);
    Ok(Json(AuditPage { data, next_cursor }))
}

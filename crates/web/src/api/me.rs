//! `GET /api/v1/me`: who the token belongs to and what it may do.

use axum::Json;
use brokeforge_app::auth::Scope;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::ApiUser;
use crate::error::ApiError;

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    /// The scopes of the token used for this call.
    pub scopes: Vec<String>,
}

/// Who am I?
#[utoipa::path(
    get, path = "/api/v1/me", tag = "account", summary = "The token's owner and scopes",
    responses((status = 200, body = MeView), (status = 401, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn me(ApiUser(principal): ApiUser) -> Result<Json<MeView>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(MeView {
        id: principal.user_id,
        email: principal.email.clone(),
        name: principal.name.clone(),
        is_admin: principal.is_admin,
        scopes: principal
            .scopes
            .list()
            .iter()
            .map(|scope| scope.as_str().to_owned())
            .collect(),
    }))
}

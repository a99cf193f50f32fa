//! `/api/v1/users`: user management for administrators.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brokeforge_app::AppError;
use brokeforge_app::auth::{self, AdminNewUser, Scope};
use brokeforge_core::Secret;
use brokeforge_db::users::UserRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;

/// A user account (never with its password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

impl UserView {
    fn from_record(record: &UserRecord) -> UserView {
        UserView {
            id: record.id,
            email: record.email.clone(),
            name: record.name.clone(),
            is_admin: record.is_admin,
            created_at: record.created_at,
        }
    }
}

/// Every user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserView>,
}

/// A new user.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub struct UserCreateBody {
    pub email: Option<String>,
    pub name: Option<String>,
    /// At least 12 characters.
    pub password: Option<String>,
    pub is_admin: Option<bool>,
}

/// List users (administrators only).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "account", summary = "List users (administrators)",
    responses((status = 200, body = UserList), (status = 403, body = crate::api::ErrorEnvelope)),
    security(("token" = ["read"]))
)]
pub async fn list(State(state): State<AppState>, ApiUser(principal): ApiUser) -> Result<Json<UserList>, ApiError> {
    principal.require(Scope::Read)?;
    principal.require_admin()?;
    let users = brokeforge_db::users::list(&state.db, None, 1000)
        .await
        .map_err(AppError::from)?;
    Ok(Json(UserList {
        data: users.iter().map(UserView::from_record).collect(),
    }))
}

/// Create a user (administrators only).
#[utoipa::path(
    post, path = "/api/v1/users", tag = "account", summary = "Create a user (administrators)",
    request_body = UserCreateBody,
    responses((status = 201, body = UserView), (status = 403, body = crate::api::ErrorEnvelope), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    ApiJson(body): ApiJson<UserCreateBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    principal.require(Scope::Write)?;
    let password = Secret::new(body.password.unwrap_or_default());
    let request = AdminNewUser {
        email: body.email.as_deref().unwrap_or(""),
        name: body.name.as_deref().unwrap_or(""),
        password: &password,
        is_admin: body.is_admin.unwrap_or(false),
    };
    let user = auth::admin_create_user(&state.db, &principal, request).await?;
    Ok((StatusCode::CREATED, Json(UserView::from_record(&user))))
}

/// Delete a user and everything they own (administrators only).
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}", tag = "account", summary = "Delete a user (administrators)",
    params(("user_id" = i64, Path, description = "The user's id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = crate::api::ErrorEnvelope), (status = 404, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    auth::admin_delete_user(&state.db, &principal, parse_id(&user_id, "user")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

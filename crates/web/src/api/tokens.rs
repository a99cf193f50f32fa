//! API tokens over the API: exchange an email and password for a token (what
//! `brokeforge login` does; throttled like the sign-in form), and list, create and
//! revoke the caller's tokens. A token's secret is returned once, at creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brokeforge_app::auth::{self, NewToken, Principal, Scope};
use brokeforge_core::Secret;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::auth::{ApiUser, client_ip};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::views::TokenView;

/// A new token: its secret, shown this once, and its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTokenView {
    /// The token to send as `Authorization: Bearer <token>`. It is not stored and cannot be shown again.
    pub token: String,
    pub info: TokenView,
}

/// Your tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub data: Vec<TokenView>,
}

/// A new token's settings.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub struct TokenCreateBody {
    pub name: Option<String>,
    /// Any of read, write, deploy (at most those of the token making the call).
    pub scopes: Option<Vec<String>>,
    /// Days until the token expires; omit for no expiry.
    #[schema(value_type = Option<u32>)]
    pub expires_in_days: Option<serde_json::Value>,
}

/// An email and password, exchanged for a token.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub struct PasswordExchangeBody {
    pub email: Option<String>,
    pub password: Option<String>,
    /// The new token's name (default "cli").
    pub token_name: Option<String>,
    /// Default: read, write and deploy.
    pub scopes: Option<Vec<String>>,
}

fn expiry_text(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Exchange an email and password for a token.
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "account", summary = "Exchange an email and password for a token",
    request_body = PasswordExchangeBody,
    responses((status = 201, body = CreatedTokenView), (status = 422, description = "Wrong email or password", body = crate::api::ErrorEnvelope), (status = 429, description = "Locked after repeated failures", body = crate::api::ErrorEnvelope))
)]
pub async fn exchange_password(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<CreatedTokenView>), ApiError> {
    let ip = client_ip(request.extensions());
    let ApiJson(body) =
        <ApiJson<PasswordExchangeBody> as axum::extract::FromRequest<AppState>>::from_request(request, &state).await?;
    let password = Secret::new(body.password.unwrap_or_default());
    let email = body.email.unwrap_or_default();
    let user = auth::verify_credentials(&state.db, &email, &password, ip.as_deref()).await?;
    let principal = Principal {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        is_admin: user.is_admin,
        scopes: auth::Scopes::all(),
        credential: auth::Credential::Token { token_id: 0 },
        ip,
    };
    let scopes = body
        .scopes
        .unwrap_or_else(|| Scope::ALL.iter().map(|scope| scope.as_str().to_owned()).collect());
    let name = body.token_name.unwrap_or_else(|| "cli".to_owned());
    let created = auth::create_token(
        &state.db,
        &principal,
        NewToken {
            name: &name,
            scopes: &scopes,
            expires_in_days: None,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenView {
            token: created.secret.expose().clone(),
            info: TokenView::from_record(&created.record),
        }),
    ))
}

/// List your tokens.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "account", summary = "List your API tokens",
    responses((status = 200, body = TokenList)),
    security(("token" = ["read"]))
)]
pub async fn list(State(state): State<AppState>, ApiUser(principal): ApiUser) -> Result<Json<TokenList>, ApiError> {
    principal.require(Scope::Read)?;
    let records = brokeforge_db::api_tokens::list_for_user(&state.db, principal.user_id)
        .await
        .map_err(brokeforge_app::AppError::from)?;
    Ok(Json(TokenList {
        data: records.iter().map(TokenView::from_record).collect(),
    }))
}

/// Create a token.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "account", summary = "Create an API token",
    request_body = TokenCreateBody,
    responses((status = 201, body = CreatedTokenView), (status = 422, body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    ApiJson(body): ApiJson<TokenCreateBody>,
) -> Result<(StatusCode, Json<CreatedTokenView>), ApiError> {
    principal.require(Scope::Write)?;
    let scopes = body.scopes.unwrap_or_default();
    let expires = expiry_text(&body.expires_in_days);
    let name = body.name.unwrap_or_default();
    let created = auth::create_token(
        &state.db,
        &principal,
        NewToken {
            name: &name,
            scopes: &scopes,
            expires_in_days: expires.as_deref(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenView {
            token: created.secret.expose().clone(),
            info: TokenView::from_record(&created.record),
        }),
    ))
}

/// Revoke a token.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{token_id}", tag = "account", summary = "Revoke an API token",
    params(("token_id" = i64, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "Already revoked", body = crate::api::ErrorEnvelope)),
    security(("token" = ["write"]))
)]
pub async fn revoke(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    auth::revoke_token(&state.db, &principal, parse_id(&token_id, "token")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

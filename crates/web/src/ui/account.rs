//! Sign-in, sign-out, first-run setup, the account page (password change), API
//! tokens, and user management for administrators.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::{self, AdminNewUser, ChangePassword, FirstAdmin, NewToken, Principal, Scope, SignIn};
use brokeforge_app::crypto::random_hex;
use brokeforge_app::{AppError, FieldErrors};
use brokeforge_core::Secret;
use brokeforge_db::{api_tokens, users};
use minijinja::context;

use super::{FormFields, NoticeQuery, errors_context, notice_text, page_context, render, sv};
use crate::AppState;
use crate::auth::{AdminUser, FORM_COOKIE, SESSION_COOKIE, SessionUser, client_ip, cookie, cookie_header};
use crate::error::PageError;
use crate::views::TokenView;

/// Only local paths are followed after sign-in, never another site.
fn safe_next(next: Option<&str>) -> String {
    // Browsers drop tabs and newlines from URLs, so `/\t/evil.example` would become
    // `//evil.example`: control characters and whitespace are refused outright.
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path
                    .chars()
                    .any(|character| character.is_control() || character.is_whitespace()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The double-submit token for forms shown before sign-in, and the cookie to set
/// when the browser does not have one yet.
fn form_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, FORM_COOKIE) {
        Some(value) if value.len() == 64 => (value.to_owned(), None),
        _ => {
            let value = random_hex(32);
            let header = cookie_header(state, FORM_COOKIE, &value, 86_400, "Strict");
            (value, Some(header))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok())
}

fn signed_in_response(state: &AppState, cookie_value: &Secret<String>, location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    let lifetime = auth::SESSION_IDLE_LIFETIME.as_secs() as i64;
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(state, SESSION_COOKIE, cookie_value.expose(), lifetime, "Lax"),
    );
    response
}

async fn already_signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    match cookie(headers, SESSION_COOKIE) {
        Some(value) => matches!(auth::authenticate_session(&state.db, value, None).await, Ok(Some(_))),
        None => false,
    }
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    if already_signed_in(&state, &headers).await {
        return Redirect::to(&safe_next(query.next.as_deref())).into_response();
    }
    let (token, set_cookie) = form_token(&state, &headers);
    let context = context! {
        csrf => token,
        next => safe_next(query.next.as_deref()),
        notice => notice_text(query.notice.as_deref()),
    };
    with_cookie(render(StatusCode::OK, "login.html", context), set_cookie)
}

/// `POST /login`.
pub async fn login_submit(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let ip = client_ip(request.extensions());
    let Form(form): Form<FormFields> =
        match <Form<FormFields> as axum::extract::FromRequest<AppState>>::from_request(request, &state).await {
            Ok(form) => form,
            Err(rejection) => return axum::response::IntoResponse::into_response(rejection),
        };
    let email = form.get("email").to_owned();
    let password = Secret::new(form.get("password").to_owned());
    let next = safe_next(Some(form.get("next")));
    let result = auth::sign_in(
        &state.db,
        SignIn {
            email: &email,
            password: &password,
            ip: ip.as_deref(),
            user_agent: user_agent(&request_headers),
        },
    )
    .await;
    match result {
        Ok((_, session)) => signed_in_response(&state, &session.cookie_value, &next),
        Err(error) => {
            let (status, message) = match &error {
                AppError::Validation(errors) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors.first("password").unwrap_or("").to_owned(),
                ),
                AppError::RateLimited { message, .. } => (StatusCode::TOO_MANY_REQUESTS, message.clone()),
                _ => return PageError(error).into_response(),
            };
            let (token, set_cookie) = form_token(&state, &request_headers);
            let context = context! { csrf => token, next => next, email => email, error => message };
            with_cookie(render(status, "login.html", context), set_cookie)
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        auth::sign_out(&state.db, &principal, value).await?;
    }
    let mut response = Redirect::to("/login?notice=signed_out").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, "", 0, "Lax"));
    Ok(response)
}

async fn setup_link_or_404(state: &AppState, token: &str) -> Result<(), PageError> {
    if auth::setup_token_is_valid(&state.db, token).await?
        && users::count(&state.db).await.map_err(AppError::from)? == 0
    {
        Ok(())
    } else {
        Err(PageError(AppError::NotFound(
            "setup link (it was used already, or it expired: restart `brokeforge serve` for a new one)",
        )))
    }
}

/// `GET /setup/{token}`: the first-run page where the first administrator is created.
pub async fn setup_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    setup_link_or_404(&state, &token).await?;
    let (form, set_cookie) = form_token(&state, &headers);
    Ok(with_cookie(
        render(StatusCode::OK, "setup.html", context! { csrf => form, token => token }),
        set_cookie,
    ))
}

/// `POST /setup/{token}`.
pub async fn setup_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, PageError> {
    let ip = client_ip(request.extensions());
    let Form(form): Form<FormFields> =
        <Form<FormFields> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await
            .map_err(|_| {
                PageError(AppError::Validation(FieldErrors::single(
                    "form",
                    "The form could not be read.",
                )))
            })?;
    setup_link_or_404(&state, &token).await?;
    let password = Secret::new(form.get("password").to_owned());
    let confirmation = Secret::new(form.get("password_confirmation").to_owned());
    let created = auth::create_first_admin(
        &state.db,
        &token,
        FirstAdmin {
            email: form.get("email"),
            name: form.get("name"),
            password: &password,
            confirmation: &confirmation,
        },
        ip.as_deref(),
    )
    .await;
    match created {
        Ok(user) => {
            let session = auth::open_session(&state.db, user.id, ip.as_deref(), user_agent(&headers)).await?;
            Ok(signed_in_response(&state, &session.cookie_value, "/?notice=welcome"))
        }
        Err(AppError::Validation(errors)) => {
            let (csrf, set_cookie) = form_token(&state, &headers);
            let context = context! {
                csrf => csrf, token => token, errors => errors_context(&errors),
                email => form.get("email"), name => form.get("name"),
            };
            Ok(with_cookie(
                render(StatusCode::UNPROCESSABLE_ENTITY, "setup.html", context),
                set_cookie,
            ))
        }
        Err(error) => Err(PageError(error)),
    }
}

fn account_response(
    principal: &Principal,
    status: StatusCode,
    notice: Option<&str>,
    errors: Option<&FieldErrors>,
) -> Response {
    let context = page_context(
        principal,
        "account",
        context! { notice => notice, errors => errors.map(errors_context) },
    );
    render(status, "account.html", context)
}

/// `GET /account`.
pub async fn account_page(SessionUser(principal): SessionUser, Query(query): Query<NoticeQuery>) -> Response {
    account_response(&principal, StatusCode::OK, notice_text(query.notice.as_deref()), None)
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let current = Secret::new(form.get("current_password").to_owned());
    let new_password = Secret::new(form.get("new_password").to_owned());
    let confirmation = Secret::new(form.get("password_confirmation").to_owned());
    let request = ChangePassword {
        current_password: &current,
        new_password: &new_password,
        confirmation: &confirmation,
    };
    match auth::change_password(&state.db, &principal, request).await {
        Ok(()) => Ok(Redirect::to("/account?notice=password_changed").into_response()),
        Err(AppError::Validation(errors)) => Ok(account_response(
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(&errors),
        )),
        Err(error) => Err(PageError(error)),
    }
}

async fn tokens_response(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    extra: minijinja::Value,
) -> Result<Response, PageError> {
    let tokens: Vec<TokenView> = api_tokens::list_for_user(&state.db, principal.user_id)
        .await
        .map_err(AppError::from)?
        .iter()
        .map(TokenView::from_record)
        .collect();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    let context = page_context(
        principal,
        "tokens",
        context! { tokens => sv(tokens), all_scopes => sv(scopes), ..extra },
    );
    Ok(render(status, "tokens.html", context))
}

/// `GET /account/tokens`.
pub async fn tokens_page(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    tokens_response(
        &state,
        &principal,
        StatusCode::OK,
        context! { notice => notice_text(query.notice.as_deref()) },
    )
    .await
}

/// `POST /account/tokens`: creates a token and shows its secret once.
pub async fn create_token(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let scopes = form.all("scopes");
    let expires = form.get("expires_in_days").to_owned();
    let request = NewToken {
        name: form.get("name"),
        scopes: &scopes,
        expires_in_days: Some(&expires),
    };
    match auth::create_token(&state.db, &principal, request).await {
        Ok(created) => {
            let extra = context! { created_secret => created.secret.expose(), created_name => created.record.name };
            tokens_response(&state, &principal, StatusCode::OK, extra).await
        }
        Err(AppError::Validation(errors)) => {
            let extra =
                context! { errors => errors_context(&errors), name => form.get("name"), expires_in_days => expires };
            tokens_response(&state, &principal, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /account/tokens/{token_id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(token_id): Path<String>,
) -> Result<Response, PageError> {
    auth::revoke_token(&state.db, &principal, crate::routes::parse_id(&token_id, "token")?).await?;
    Ok(Redirect::to("/account/tokens?notice=token_revoked").into_response())
}

#[derive(serde::Serialize)]
struct UserRow {
    id: i64,
    email: String,
    name: String,
    is_admin: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

async fn users_response(
    state: &AppState,
    principal: &Principal,
    status: StatusCode,
    extra: minijinja::Value,
) -> Result<Response, PageError> {
    let rows: Vec<UserRow> = users::list(&state.db, None, 500)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|user| UserRow {
            id: user.id,
            email: user.email,
            name: user.name,
            is_admin: user.is_admin,
            created_at: user.created_at,
        })
        .collect();
    let context = page_context(
        principal,
        "users",
        context! { users => sv(rows), me => principal.user_id, ..extra },
    );
    Ok(render(status, "users.html", context))
}

/// `GET /admin/users`.
pub async fn users_page(
    State(state): State<AppState>,
    AdminUser(principal): AdminUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    users_response(
        &state,
        &principal,
        StatusCode::OK,
        context! { notice => notice_text(query.notice.as_deref()) },
    )
    .await
}

/// `POST /admin/users`.
pub async fn create_user(
    State(state): State<AppState>,
    AdminUser(principal): AdminUser,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let password = Secret::new(form.get("password").to_owned());
    let request = AdminNewUser {
        email: form.get("email"),
        name: form.get("name"),
        password: &password,
        is_admin: form.get("is_admin") == "on",
    };
    match auth::admin_create_user(&state.db, &principal, request).await {
        Ok(_) => Ok(Redirect::to("/admin/users?notice=user_created").into_response()),
        Err(AppError::Validation(errors)) => {
            let extra =
                context! { errors => errors_context(&errors), email => form.get("email"), name => form.get("name") };
            users_response(&state, &principal, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /admin/users/{user_id}/delete`.
pub async fn delete_user(
    State(state): State<AppState>,
    AdminUser(principal): AdminUser,
    Path(user_id): Path<String>,
) -> Result<Response, PageError> {
    auth::admin_delete_user(&state.db, &principal, crate::routes::parse_id(&user_id, "user")?).await?;
    Ok(Redirect::to("/admin/users?notice=user_deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/servers/3?notice=x")), "/servers/3?notice=x");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

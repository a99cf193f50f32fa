//! Authentication and CSRF protection at the HTTP edge.
//!
//! Browsers authenticate with the `bf_session` cookie (`HttpOnly`, `SameSite=Lax`,
//! `Secure` when the public URL is https). Every state-changing browser request
//! passes [`csrf_guard`]: its `Origin`/`Sec-Fetch-Site` must be this site's, and its
//! form must carry the `_csrf` token of the session (or, before sign-in, the value of
//! the `bf_form` double-submit cookie). The JSON API accepts only bearer tokens, so
//! no ambient credential can be abused cross-site and it needs no form token.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use brokeforge_app::AppError;
use brokeforge_app::auth::{Credential, Principal};
use brokeforge_app::crypto::constant_time_eq;

use crate::AppState;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bf_session";
/// The pre-sign-in double-submit cookie's name.
pub const FORM_COOKIE: &str = "bf_form";
/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// The client's address, when the server recorded it.
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<String> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
}

/// A `Set-Cookie` value with the attributes every BrokeForge cookie gets.
pub fn cookie_header(state: &AppState, name: &str, value: &str, max_age_seconds: i64, same_site: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_seconds}{secure}"
    ))
    .expect("cookie values are hex")
}

/// The signed-in browser user. Without a session, pages redirect to the sign-in page.
pub struct SessionUser(pub Principal);

/// A signed-in administrator; other users get 403.
pub struct AdminUser(pub Principal);

/// The caller of an API route, authenticated by `Authorization: Bearer <token>`.
pub struct ApiUser(pub Principal);

/// Sends anonymous visitors to the sign-in page, remembering where they were going.
pub struct SignInRedirect(String);

impl IntoResponse for SignInRedirect {
    fn into_response(self) -> Response {
        Redirect::to(&format!("/login?next={}", urlencode(&self.0))).into_response()
    }
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

async fn session_principal(
    state: &AppState,
    parts_headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Option<Principal>, AppError> {
    if let Some(principal) = extensions.get::<Principal>() {
        return Ok(Some(principal.clone()));
    }
    let Some(value) = cookie(parts_headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state
        .caches
        .session_principal(&state.db, value, client_ip(extensions).as_deref())
        .await
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match session_principal(state, &parts.headers, &parts.extensions).await {
            Ok(Some(principal)) => Ok(SessionUser(principal)),
            Ok(None) => {
                let target = parts.uri.path_and_query().map(|path| path.as_str()).unwrap_or("/");
                let target = if parts.method == Method::GET { target } else { "/" };
                Err(SignInRedirect(target.to_owned()).into_response())
            }
            Err(error) => Err(crate::error::PageError(error).into_response()),
        }
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let SessionUser(principal) = SessionUser::from_request_parts(parts, state).await?;
        if !principal.is_admin {
            return Err(crate::error::PageError(AppError::Forbidden(
                "Only administrators can manage users.".to_owned(),
            ))
            .into_response());
        }
        Ok(AdminUser(principal))
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError(AppError::Unauthenticated));
        };
        let ip = client_ip(&parts.extensions);
        match state.caches.token_principal(&state.db, token, ip.as_deref()).await {
            Ok(Some(principal)) => Ok(ApiUser(principal)),
            Ok(None) => Err(ApiError(AppError::Unauthenticated)),
            Err(error) => Err(ApiError(error)),
        }
    }
}

/// The CSRF token a page's forms must carry: the session's, or the double-submit
/// cookie's before sign-in.
pub fn csrf_token_of(principal: &Principal) -> &str {
    match &principal.credential {
        Credential::Session { csrf_token, .. } => csrf_token,
        Credential::Token { .. } => "",
    }
}

/// True when the request's `Sec-Fetch-Site` / `Origin` say it comes from this site
/// (or from a client that sends neither, such as curl; the form token still applies).
pub fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) else {
        return true;
    };
    match state.config.public_origin() {
        Some(expected) => origin.eq_ignore_ascii_case(&expected),
        None => {
            let origin_host = origin.split_once("://").map(|(_, host)| host).unwrap_or("");
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

fn forbidden_form(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(crate::templates::error_page(StatusCode::FORBIDDEN, message)),
    )
        .into_response()
}

/// Checks every state-changing browser request for a same-site origin and a valid
/// form token, and hands the session's principal to the handler. API routes are
/// exempt: they take no cookies.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // The API authenticates with bearer tokens, bootstrap callbacks with signed URLs
    // and deploy webhooks with signed bodies: none carries cookies, so none can be
    // forged cross-site.
    let path = request.uri().path();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/api/")
        || path.starts_with("/bootstrap/callback/")
        || path.starts_with("/webhooks/")
    {
        return next.run(request).await;
    }
    if !same_origin(request.headers(), &state) {
        return forbidden_form("This request came from another site and was refused.");
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let submitted: Option<String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| {
            fields
                .into_iter()
                .find(|(key, _)| key == CSRF_FIELD)
                .map(|(_, value)| value)
        });
    let principal = match session_principal(&state, &parts.headers, &parts.extensions).await {
        Ok(principal) => principal,
        Err(error) => return crate::error::PageError(error).into_response(),
    };
    let expected: Option<String> = match &principal {
        Some(principal) => Some(csrf_token_of(principal).to_owned()),
        None => cookie(&parts.headers, FORM_COOKIE).map(str::to_owned),
    };
    let valid = match (&expected, &submitted) {
        (Some(expected), Some(submitted)) => {
            !expected.is_empty() && constant_time_eq(expected.as_bytes(), submitted.as_bytes())
        }
        _ => false,
    };
    if !valid {
        return forbidden_form(
            "This form has expired (or your session ended). Reload the page, sign in if asked, and try again.",
        );
    }
    if let Some(principal) = principal {
        parts.extensions.insert(principal);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Adds the security headers every response carries.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults: [(&str, &str); 5] = [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

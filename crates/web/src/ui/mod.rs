//! The server-rendered web UI: pages built from minijinja templates, forms that
//! work without JavaScript (every one carries the CSRF token), and a small script
//! that adds live progress on job pages.

pub mod account;
pub mod assets;
pub mod firewall;
pub mod onboarding;
pub mod pages;
pub mod php;
pub mod site_files;
pub mod sites;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use brokeforge_app::FieldErrors;
use brokeforge_app::auth::Principal;
use minijinja::Value;
use serde::Serialize;

use crate::auth::csrf_token_of;

/// Any serializable value as a template value.
pub fn sv<T: Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// The submitted fields of a form, in order; repeated names (checkboxes) allowed.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    }

    /// The first value of `name`, if submitted.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// The signed-in user as templates see them.
#[derive(Debug, Serialize)]
struct UserContext<'a> {
    email: &'a str,
    name: &'a str,
    is_admin: bool,
}

/// The context every signed-in page gets: the user, the CSRF token and the active
/// navigation entry, plus the page's own values.
pub fn page_context(principal: &Principal, nav: &str, values: Value) -> Value {
    minijinja::context! {
        user => sv(UserContext { email: &principal.email, name: &principal.name, is_admin: principal.is_admin }),
        csrf => csrf_token_of(principal),
        nav => nav,
        ..values
    }
}

/// Field errors as templates see them: field name to its first message.
pub fn errors_context(errors: &FieldErrors) -> Value {
    let map: std::collections::BTreeMap<&str, String> = errors
        .iter()
        .map(|(field, messages)| (field, messages.join(" ")))
        .collect();
    sv(map)
}

/// A rendered page with a status; a page that cannot be rendered answers 500.
pub fn render(status: StatusCode, template: &str, context: Value) -> Response {
    match crate::templates::render(template, context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error_page) => (StatusCode::INTERNAL_SERVER_ERROR, Html(error_page)).into_response(),
    }
}

/// The fixed messages a redirect can ask a page to show (`?notice=...`); arbitrary
/// text never travels in the URL.
pub fn notice_text(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "server_created" => "Server created. Run the bootstrap line below on the server, as root.",
        "server_updated" => "Server saved.",
        "server_deleted" => "Server deleted.",
        "server_deleting" => {
            "BrokeForge is removing its access from the server; the server disappears when that is done."
        }
        "bootstrap_line_issued" => "A new bootstrap line was issued; the previous one no longer works.",
        "bootstrap_line_revoked" => "The bootstrap line was revoked.",
        "job_retried" => "The job was queued again.",
        "job_cancelled" => "Cancellation requested.",
        "password_changed" => "Password changed. Your other sessions were signed out.",
        "token_revoked" => "Token revoked.",
        "user_created" => "User created.",
        "user_deleted" => "User deleted.",
        "signed_out" => "You are signed out.",
        "welcome" => "Welcome to BrokeForge. Add your first server to get started.",
        _ => return None,
    })
}

/// The `notice` query parameter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
    pub next: Option<String>,
    pub cursor: Option<String>,
}

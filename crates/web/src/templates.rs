//! The HTML templates (minijinja), embedded in the binary with `include_str!`, and
//! the helpers pages use to render them. Autoescaping is on for every `.html`
//! template, so values from the database cannot inject markup.

use std::sync::LazyLock;

use axum::http::StatusCode;
use minijinja::Environment;

macro_rules! embedded_templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = embedded_templates![
    "layout.html",
    "macros.html",
    "error.html",
    "login.html",
    "setup.html",
    "dashboard.html",
    "servers_list.html",
    "server_form.html",
    "server_show.html",
    "server_onboarding.html",
    "server_php.html",
    "server_firewall.html",
    "site_new.html",
    "site_show.html",
    "site_command.html",
    "site_deployment.html",
    "site_env.html",
    "site_files.html",
    "jobs_list.html",
    "job_show.html",
    "account.html",
    "tokens.html",
    "activity.html",
    "users.html",
    "api_reference.html",
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .unwrap_or_else(|error| panic!("template {name} does not parse: {error}"));
    }
    environment.add_filter("datetime", format_datetime);
    environment.add_filter("millis", format_millis);
    environment
});

/// Renders `name` with `context`. A template error is a bug: it is logged and the
/// error is the plain error page to answer with a 500.
pub fn render(name: &str, context: minijinja::Value) -> Result<String, String> {
    ENVIRONMENT
        .get_template(name)
        .and_then(|template| template.render(context))
        .map_err(|error| {
            tracing::error!(template = name, error = %error, detail = ?error, "template rendering failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be rendered; the details are in the server log.",
            )
        })
}

/// The error page for `status`.
pub fn error_page(status: StatusCode, message: &str) -> String {
    let context = minijinja::context! {
        status => status.as_u16(),
        reason => status.canonical_reason().unwrap_or("Error"),
        message => message,
    };
    ENVIRONMENT
        .get_template("error.html")
        .and_then(|template| template.render(context))
        .unwrap_or_else(|_| {
            format!(
                "<!doctype html><title>{}</title><p>{}</p>",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            )
        })
}

/// Formats an RFC 3339 timestamp as `2026-11-27 05:04 UTC`.
fn format_datetime(value: String) -> String {
    match chrono::DateTime::parse_from_rfc3339(&value) {
        Ok(time) => time
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) => value,
    }
}

/// Formats epoch milliseconds as `2026-11-27 05:04:03 UTC`.
fn format_millis(value: Option<i64>) -> String {
    value
        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .map(|time| time.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        assert!(super::ENVIRONMENT.templates().count() >= super::TEMPLATES.len());
    }
}

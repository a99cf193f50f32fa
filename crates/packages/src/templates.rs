//! Configuration file templates, embedded in the binary and rendered with minijinja.
//!
//! Rendering is strict: a variable missing from the context is an error, never an
//! empty string, and nothing is HTML-escaped (these are config files, not web pages).
//! Rendered files travel to the server as bytes in an `Upload` step, never inside a
//! shell command.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use thiserror::Error;

/// Every template BrokeForge ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    /// `/etc/systemd/timesyncd.conf.d/brokeforge.conf`: the NTP servers. Context:
    /// `ntp_servers`, a list of host names.
    TimesyncdConfig,
}

impl Template {
    /// Every template, for tests that render or parse them all.
    pub const ALL: &'static [Template] = &[Template::TimesyncdConfig];

    /// The template's path below `crates/packages/templates/`.
    pub const fn name(self) -> &'static str {
        match self {
            Template::TimesyncdConfig => "timesyncd/brokeforge.conf.j2",
        }
    }

    const fn source(self) -> &'static str {
        match self {
            Template::TimesyncdConfig => include_str!("../templates/timesyncd/brokeforge.conf.j2"),
        }
    }
}

/// Why a template did not render.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// A template does not parse; a bug that the template tests catch.
    #[error("template {template} does not parse: {message}")]
    Syntax { template: &'static str, message: String },
    /// Rendering failed, for example because the context lacks a variable.
    #[error("template {template} did not render: {source}")]
    Render {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
}

/// A template that does not parse, remembered so every render reports it.
#[derive(Clone, Debug)]
struct SyntaxProblem {
    template: &'static str,
    message: String,
}

/// The environment holding every template, built on first use.
fn environment() -> Result<&'static Environment<'static>, TemplateError> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, SyntaxProblem>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(build_environment)
        .as_ref()
        .map_err(|problem| TemplateError::Syntax {
            template: problem.template,
            message: problem.message.clone(),
        })
}

fn build_environment() -> Result<Environment<'static>, SyntaxProblem> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    environment.set_syntax(syntax);
    for template in Template::ALL {
        environment
            .add_template(template.name(), template.source())
            .map_err(|error| SyntaxProblem {
                template: template.name(),
                message: error.to_string(),
            })?;
    }
    Ok(environment)
}

/// Renders `template` with the fields of `context` as its variables.
pub fn render(template: Template, context: &impl Serialize) -> Result<Vec<u8>, TemplateError> {
    let render_error = |source| TemplateError::Render {
        template: template.name(),
        source,
    };
    let compiled = environment()?.get_template(template.name()).map_err(render_error)?;
    let text = compiled.render(Value::from(Serde(context))).map_err(render_error)?;
    Ok(text.into_bytes())
}

//! Configuration file templates, embedded in the binary and rendered with minijinja.
//!
//! Rendering is strict: a variable missing from the context is an error, never an
//! empty string, and nothing is HTML-escaped (these are config files, not web pages).
//! Rendered files travel to the server as bytes in an `Upload` step, never inside a
//! shell command.
//!
//! Templates that produce shell scripts (the bootstrap script) pass every value through
//! the `shell_quote` filter, which quotes it as one word with `brokeforge_core`'s own
//! quoting (the quoting `Cmd` uses), and refuses values that are neither text nor
//! numbers. A test checks that the script template inserts nothing unfiltered.
//!
//! WordPress's `wp-config.php` passes every value through the `php_string` filter,
//! which writes it as a PHP single-quoted string
//! ([`crate::site::wp_config::php_single_quoted`]); a test checks that template the
//! same way.

use std::sync::OnceLock;

use brokeforge_core::ShellArg;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;
use thiserror::Error;

/// Every template BrokeForge ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    /// `/etc/systemd/timesyncd.conf.d/brokeforge.conf`: the NTP servers. Context:
    /// `ntp_servers`, a list of host names.
    TimesyncdConfig,
    /// `/etc/apt/sources.list.d/brokeforge-*.sources`: a third-party repository.
    /// Context: `description`, `uri`, `suite`, `component`, `keyring`.
    AptRepositorySources,
    /// `/etc/php/X.Y/fpm/conf.d/99-brokeforge.ini`: PHP settings for FPM. Context:
    /// `version`, `memory_limit_mb`, `upload_max_filesize_mb`, `post_max_size_mb`,
    /// `max_execution_time`.
    PhpFpmIni,
    /// `/etc/nginx/nginx.conf`: nginx's main file with hardened defaults. Context:
    /// `client_max_body_size_mb`.
    NginxConf,
    /// `/etc/nginx/sites-available/brokeforge-default`: the catch-all site. Context:
    /// `page_root`, `reject_tls_handshakes`.
    NginxDefaultSite,
    /// `/var/www/brokeforge-default/index.html`: the page the catch-all site shows.
    /// No context.
    NginxDefaultPage,
    /// The bootstrap script a user pipes into `sudo bash`. Context: see
    /// [`crate::bootstrap`]; every value goes through `shell_quote`.
    BootstrapScript,
    /// `/etc/nginx/sites-available/<domain>.conf`: one site's server block. Context:
    /// `domain`, `site_type`, `site_root`, `server_names` (a list), `web_root`, `index`,
    /// `access_log`, `error_log`, `socket` (the PHP-FPM socket; empty for static sites).
    SiteVhost,
    /// `/etc/php/X.Y/fpm/pool.d/<domain>.conf`: one site's PHP-FPM pool. Context:
    /// `domain`, `version`, `pool`, `user`, `socket`, `max_children`.
    SitePhpFpmPool,
    /// `<site>/shared/wp-config.php`: WordPress's configuration. Context: `db_name`,
    /// `db_user`, `db_password`, `db_host`, `table_prefix`, `salts` (a list of `name`
    /// and `value`), `abspath`; every value goes through `php_string`.
    WordPressConfig,
}

impl Template {
    /// Every template, for tests that render or parse them all.
    pub const ALL: &'static [Template] = &[
        Template::TimesyncdConfig,
        Template::AptRepositorySources,
        Template::PhpFpmIni,
        Template::NginxConf,
        Template::NginxDefaultSite,
        Template::NginxDefaultPage,
        Template::BootstrapScript,
        Template::SiteVhost,
        Template::SitePhpFpmPool,
        Template::WordPressConfig,
    ];

    /// The template's path below `crates/packages/templates/`.
    pub const fn name(self) -> &'static str {
        match self {
            Template::TimesyncdConfig => "timesyncd/brokeforge.conf.j2",
            Template::AptRepositorySources => "apt/repository.sources.j2",
            Template::PhpFpmIni => "php/brokeforge-fpm.ini.j2",
            Template::NginxConf => "nginx/nginx.conf.j2",
            Template::NginxDefaultSite => "nginx/default-site.conf.j2",
            Template::NginxDefaultPage => "nginx/default-page.html.j2",
            Template::BootstrapScript => "bootstrap/bootstrap.sh.j2",
            Template::SiteVhost => "site/nginx-vhost.conf.j2",
            Template::SitePhpFpmPool => "site/php-fpm-pool.conf.j2",
            Template::WordPressConfig => "site/wp-config.php.j2",
        }
    }

    /// The template's text, as embedded in the binary.
    pub const fn source(self) -> &'static str {
        match self {
            Template::TimesyncdConfig => include_str!("../templates/timesyncd/brokeforge.conf.j2"),
            Template::AptRepositorySources => include_str!("../templates/apt/repository.sources.j2"),
            Template::PhpFpmIni => include_str!("../templates/php/brokeforge-fpm.ini.j2"),
            Template::NginxConf => include_str!("../templates/nginx/nginx.conf.j2"),
            Template::NginxDefaultSite => include_str!("../templates/nginx/default-site.conf.j2"),
            Template::NginxDefaultPage => include_str!("../templates/nginx/default-page.html.j2"),
            Template::BootstrapScript => include_str!("../templates/bootstrap/bootstrap.sh.j2"),
            Template::SiteVhost => include_str!("../templates/site/nginx-vhost.conf.j2"),
            Template::SitePhpFpmPool => include_str!("../templates/site/php-fpm-pool.conf.j2"),
            Template::WordPressConfig => include_str!("../templates/site/wp-config.php.j2"),
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
    environment.add_filter("shell_quote", shell_quote);
    environment.add_filter("php_string", php_string);
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

/// The `shell_quote` filter: text or a number, quoted as one shell word by
/// `brokeforge_core`'s quoting. Anything else (lists, maps, none) is an error, so a
/// template cannot splice a structure into a script by mistake.
fn shell_quote(value: &Value) -> Result<String, minijinja::Error> {
    let text = match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        ValueKind::Number => value.to_string(),
        kind => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("shell_quote takes text or a number, not {kind}"),
            ));
        }
    };
    let argument =
        ShellArg::new(text).map_err(|error| minijinja::Error::new(ErrorKind::InvalidOperation, error.to_string()))?;
    Ok(argument.quoted())
}

/// The `php_string` filter: text as a PHP single-quoted string literal. Anything but
/// text is an error.
fn php_string(value: &Value) -> Result<String, minijinja::Error> {
    match value.as_str() {
        Some(text) if value.kind() == ValueKind::String => Ok(crate::site::wp_config::php_single_quoted(text)),
        _ => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("php_string takes text, not {}", value.kind()),
        )),
    }
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

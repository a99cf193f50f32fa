//! A site's nginx server block, rendered from `templates/site/nginx-vhost.conf.j2`.
//!
//! Every site gets hardened defaults: hidden paths (`.env`, `.git`, the deploy
//! script) are denied, except ACME challenges below `/.well-known/`; `X-Frame-Options`,
//! `X-Content-Type-Options` and `Referrer-Policy` headers; its own access and error
//! logs (`/var/log/nginx/<domain>-access.log`, `-error.log`). The rest depends on the
//! type:
//!
//! - static: `try_files $uri $uri/ =404`, nothing runs;
//! - Laravel: unknown paths go to `index.php?$query_string`, and only
//!   `public/index.php` runs (any other `.php` answers 404, neither run nor shown);
//! - generic PHP and WordPress: unknown paths go to `index.php?$args`, existing `.php`
//!   files run (`try_files $uri =404` first, so no path trick runs a non-PHP file),
//!   and for WordPress nothing below `wp-content/uploads` runs as PHP.
//!
//! PHP goes to the site's own FPM socket with `SCRIPT_FILENAME` and `DOCUMENT_ROOT`
//! set from `$realpath_root`, the resolved path of the release, so a new release is
//! picked up at once after `current` switches and opcache never serves the old one.
//!
//! The server's default site (see [`super::default_site`]) declares `default_server` on
//! its `listen` lines, so it answers requests for names no site serves, such as the
//! server's IP address.
//!
//! Every value in the file comes from validated types (domains hold `a-z0-9.-`, the
//! web directory `A-Za-z0-9._@+-/`, paths are derived from them), so nothing a user
//! typed can end a directive or open a block.

use serde::Serialize;

use crate::templates::{self, Template, TemplateError};

use super::install::SiteInstallInput;

/// The first words of every server block BrokeForge writes for a site; a file at the
/// site's path that does not start with them belongs to someone else.
pub const VHOST_HEADER: &str = "# Written by BrokeForge for the site ";

/// The template context of [`Template::SiteVhost`].
#[derive(Serialize)]
struct VhostContext<'a> {
    domain: &'a str,
    site_type: &'static str,
    site_root: &'a str,
    server_names: Vec<String>,
    web_root: String,
    index: &'static str,
    access_log: String,
    error_log: String,
    socket: String,
    default_server: bool,
}

/// The server block of the site `input` describes, as uploaded; with
/// `default_server` when the site is the server's default site.
pub fn render_vhost(input: &SiteInstallInput, default_server: bool) -> Result<Vec<u8>, TemplateError> {
    let layout = input.layout();
    let socket = match input.php_version() {
        Some(version) => layout.socket(version).to_string(),
        None => String::new(),
    };
    templates::render(
        Template::SiteVhost,
        &VhostContext {
            domain: input.domain().as_str(),
            site_type: input.site_type().as_str(),
            site_root: layout.root().as_str(),
            server_names: input.server_names().iter().map(ToString::to_string).collect(),
            web_root: layout.web_root(input.web_directory()).to_string(),
            index: input.site_type().index_files(),
            access_log: layout.access_log().to_string(),
            error_log: layout.error_log().to_string(),
            socket,
            default_server,
        },
    )
}

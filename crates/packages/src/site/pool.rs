//! A site's PHP-FPM pool, rendered from `templates/site/php-fpm-pool.conf.j2`: the
//! pool runs as brokeforge (the owner of the site's files), listens on its own socket
//! `/run/php/php<version>-fpm-<domain>.sock` that only nginx's `www-data` may use
//! (mode 0660), starts workers on demand (at most [`POOL_MAX_CHILDREN`]) so that many
//! small sites fit on one server, and runs only `.php` files.

use brokeforge_core::PhpVersion;
use serde::Serialize;

use crate::bootstrap::APP_USER;
use crate::templates::{self, Template, TemplateError};

use super::layout::SiteLayout;

/// The first words of every pool file BrokeForge writes for a site.
pub const POOL_HEADER: &str = "; Written by BrokeForge for the site ";
/// The most workers one site's pool runs at once.
pub const POOL_MAX_CHILDREN: u32 = 10;

/// The template context of [`Template::SitePhpFpmPool`].
#[derive(Serialize)]
struct PoolContext<'a> {
    domain: &'a str,
    version: PhpVersion,
    pool: &'a str,
    user: &'static str,
    socket: String,
    max_children: u32,
}

/// The pool file of the site at `layout` for PHP `version`, as uploaded.
pub fn render_pool(layout: &SiteLayout, version: PhpVersion) -> Result<Vec<u8>, TemplateError> {
    let domain = layout.domain().as_str();
    templates::render(
        Template::SitePhpFpmPool,
        &PoolContext {
            domain,
            version,
            pool: domain,
            user: APP_USER,
            socket: layout.socket(version).to_string(),
            max_children: POOL_MAX_CHILDREN,
        },
    )
}

//! Sites: a domain served by nginx from a release directory, with zero-downtime
//! deployments from Git.
//!
//! A site has a [`SiteType`] (static HTML, generic PHP, Laravel, WordPress) that
//! decides its defaults: the web directory nginx serves, the paths shared between
//! releases and the deploy script. Its files follow [`layout::SiteLayout`]:
//! `/home/brokeforge/<domain>` with `releases/<id>`, `shared/` and the `current` link.
//!
//! The operations, each pure like every package here:
//!
//! - [`install::SiteInstall`] (root): the site's directories (made as brokeforge),
//!   for PHP types its own PHP-FPM pool running as brokeforge with its own socket,
//!   and its nginx server block. New configuration files are checked (`php-fpmX.Y -t`,
//!   `nginx -t`) before they count, and a file that fails is taken out again and the
//!   previous one put back in the same command, so a bad site never takes the others
//!   down ([`install::install_checked_cmd`]).
//! - [`install::SiteRemove`] (root): server block, pool, directories and logs.
//! - [`default_site::DefaultSiteUpdate`] (root): which site answers requests for
//!   names no site serves, in place of nginx's catch-all site; every file it changes
//!   is put back when `nginx -t` fails.
//! - [`wordpress::WordPressInstall`] (brokeforge): WordPress downloaded, checked
//!   against its published SHA-1 checksum and unpacked into the site's first release,
//!   with `wp-config.php` ([`wp_config`]) and the uploads in `shared/`.
//! - [`deploy::SiteDeploy`] (brokeforge): one release of one exact commit, from a bare
//!   mirror of the repository, with shared paths linked and the deploy script run
//!   before `current` switches atomically; old releases are pruned.
//! - [`deploy::SiteRollback`] (brokeforge): `current` back to a kept release.
//! - [`git::GitKnownHostsInstall`] (brokeforge): the pinned host keys of github.com,
//!   gitlab.com and bitbucket.org in brokeforge's `known_hosts`; and
//!   [`git::resolve_branch_probe`], the `git ls-remote` the application runs to turn a
//!   branch into the commit a deployment gets.
//! - [`env::EnvFileWrite`] (brokeforge): a site's `.env` or `wp-config.php`, written
//!   as secret bytes; [`env::env_file_probe`] reads it.
//! - [`files`] (brokeforge): the file explorer's listing, reading, writing and
//!   deleting, each confined to the site's directory by a check made on the server.

pub mod default_site;
pub mod deploy;
pub mod deploy_key;
pub mod env;
pub mod files;
pub mod git;
pub mod install;
pub mod layout;
pub mod pool;
pub mod values;
pub mod vhost;
pub mod wordpress;
pub mod wp_config;

use brokeforge_core::PhpVersion;

use crate::framework::{Package, Scope};
use crate::names::PackageName;

pub use self::layout::SiteLayout;
pub use self::values::{
    CommitSha, DeployScript, DeployTimeout, GitRepositoryUrl, GitTransport, KeepReleases, RelativePath, ReleaseId,
    SharedKind, SharedPath, SharedPaths, WebDirectory,
};

/// A site on a server: its directories, nginx server block and PHP-FPM pool. Installed
/// and removed as root, since nginx's and PHP-FPM's configuration belong to root.
pub struct Site;

impl Package for Site {
    const NAME: PackageName = PackageName::Site;
    const SCOPE: Scope = Scope::Server;
}

/// The deployments of a site: releases, the `current` link, rollbacks. Run as
/// brokeforge, which owns the site's files.
pub struct Deployment;

impl Package for Deployment {
    const NAME: PackageName = PackageName::Deployment;
    const SCOPE: Scope = Scope::Site;
}

/// brokeforge's access to Git hosts: the pinned host keys in its `known_hosts`.
pub struct GitRepository;

impl Package for GitRepository {
    const NAME: PackageName = PackageName::GitRepository;
    const SCOPE: Scope = Scope::Site;
}

/// A site's environment file (`.env`, or `wp-config.php` for WordPress).
pub struct EnvFile;

impl Package for EnvFile {
    const NAME: PackageName = PackageName::EnvFile;
    const SCOPE: Scope = Scope::Site;
}

/// The files of a site, as the file explorer changes them.
pub struct SiteFiles;

impl Package for SiteFiles {
    const NAME: PackageName = PackageName::SiteFiles;
    const SCOPE: Scope = Scope::Site;
}

string_enum! {
    /// What a site runs, which decides its defaults.
    pub enum SiteType ("site type") {
        /// Static HTML, served by nginx alone.
        Static => "static",
        /// Any PHP application, with `index.php` as the fallback for unknown paths.
        Php => "php",
        /// A Laravel application: `public/` is served, only `public/index.php` runs.
        Laravel => "laravel",
        /// WordPress: its `wp-config.php` and uploads outlive releases.
        WordPress => "wordpress",
    }
}

impl SiteType {
    /// Whether the site runs PHP, and so needs a PHP version and an FPM pool.
    pub const fn uses_php(self) -> bool {
        !matches!(self, SiteType::Static)
    }

    /// The directory nginx serves, relative to the release: `public` for Laravel, the
    /// release's root otherwise.
    pub fn default_web_directory(self) -> WebDirectory {
        match self {
            SiteType::Laravel => "public".parse().expect("a valid web directory"),
            SiteType::Static | SiteType::Php | SiteType::WordPress => WebDirectory::root(),
        }
    }

    /// The paths that outlive releases: Laravel's `.env` file and `storage` directory,
    /// WordPress's `wp-config.php` and `wp-content/uploads`; none for the others.
    pub fn default_shared_paths(self) -> SharedPaths {
        let paths = match self {
            SiteType::Laravel => vec![
                SharedPath::file(".env").expect("a valid shared path"),
                SharedPath::directory("storage").expect("a valid shared path"),
            ],
            SiteType::WordPress => vec![
                SharedPath::file("wp-config.php").expect("a valid shared path"),
                SharedPath::directory("wp-content/uploads").expect("a valid shared path"),
            ],
            SiteType::Static | SiteType::Php => Vec::new(),
        };
        SharedPaths::new(paths).expect("the defaults neither repeat nor nest")
    }

    /// The deploy script a new site starts with. `php` runs the site's PHP version
    /// (see [`deploy`]).
    pub fn default_deploy_script(self) -> DeployScript {
        let text = match self {
            SiteType::Static => "",
            SiteType::Php | SiteType::WordPress => concat!(
                "if [ -f composer.json ]; then\n",
                "    composer install --no-dev --no-interaction --prefer-dist --optimize-autoloader\n",
                "fi\n",
            ),
            SiteType::Laravel => concat!(
                "composer install --no-dev --no-interaction --prefer-dist --optimize-autoloader\n",
                "php artisan migrate --force\n",
            ),
        };
        text.parse().expect("the default scripts are valid")
    }

    /// nginx's `index` files.
    pub(crate) const fn index_files(self) -> &'static str {
        match self {
            SiteType::Static => "index.html index.htm",
            SiteType::Php | SiteType::Laravel | SiteType::WordPress => "index.php index.html index.htm",
        }
    }
}

/// Why a site's PHP version does not fit its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SitePhpError {
    #[error("a {site_type} site runs PHP; choose the PHP version it uses")]
    Required { site_type: SiteType },
    #[error("a static site runs no PHP; leave its PHP version empty")]
    NotUsed,
}

/// Checks that `php_version` is given exactly when `site_type` runs PHP.
pub fn check_php_version(site_type: SiteType, php_version: Option<PhpVersion>) -> Result<(), SitePhpError> {
    match (site_type.uses_php(), php_version) {
        (true, None) => Err(SitePhpError::Required { site_type }),
        (false, Some(_)) => Err(SitePhpError::NotUsed),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_decide_their_defaults() {
        assert_eq!(SiteType::Laravel.default_web_directory().as_str(), "public");
        assert!(SiteType::WordPress.default_web_directory().is_root());
        let shared = |site_type: SiteType| -> Vec<String> {
            site_type
                .default_shared_paths()
                .as_slice()
                .iter()
                .map(|shared| format!("{:?} {}", shared.kind, shared.path))
                .collect()
        };
        assert_eq!(shared(SiteType::Laravel), ["File .env", "Directory storage"]);
        assert_eq!(
            shared(SiteType::WordPress),
            ["File wp-config.php", "Directory wp-content/uploads"]
        );
        assert!(shared(SiteType::Php).is_empty() && shared(SiteType::Static).is_empty());
        assert!(SiteType::Static.default_deploy_script().is_blank());
        assert!(
            SiteType::Laravel
                .default_deploy_script()
                .as_str()
                .contains("php artisan migrate --force")
        );
        assert!(
            SiteType::Php
                .default_deploy_script()
                .as_str()
                .starts_with("if [ -f composer.json ]")
        );
        assert_eq!("wordpress".parse::<SiteType>(), Ok(SiteType::WordPress));
        assert!("WordPress".parse::<SiteType>().is_err());
    }

    #[test]
    fn php_versions_fit_the_type() {
        assert!(check_php_version(SiteType::Laravel, Some(PhpVersion::Php83)).is_ok());
        assert!(check_php_version(SiteType::Static, None).is_ok());
        assert_eq!(
            check_php_version(SiteType::WordPress, None),
            Err(SitePhpError::Required {
                site_type: SiteType::WordPress
            })
        );
        assert_eq!(
            check_php_version(SiteType::Static, Some(PhpVersion::Php83)),
            Err(SitePhpError::NotUsed)
        );
    }
}

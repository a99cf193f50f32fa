//! Where a site lives on its server: its directory under the brokeforge user's home
//! with `releases/<id>`, `shared/`, the `current` link and the Git mirror, and the
//! files of other programs that belong to it (the nginx server block, its link, the
//! PHP-FPM pool and socket, the nginx logs). Every path is derived from the site's
//! [`Domain`], which holds only `a-z`, digits, `-` and `.` and never `..`, so no path
//! here can leave its directory.
//!
//! ```text
//! /home/brokeforge/example.com/
//!   current -> releases/20261127093000    the live release, switched atomically
//!   releases/20261127093000/               one directory per release, oldest pruned
//!   shared/                                .env, storage, uploads: linked into releases
//!   repository.git/                        a bare mirror of the Git repository
//!   .brokeforge/bin/php -> /usr/bin/php8.3 the site's PHP first on the deploy script's PATH
//! ```

use brokeforge_core::{Domain, PhpVersion, RemotePath};
use thiserror::Error;

use crate::bootstrap::APP_HOME;
use crate::php::names::cli_binary;

use super::values::{ReleaseId, WebDirectory};

/// The file a release holds once its deploy script succeeded. A release without it
/// never goes live, cannot be rolled back to, and is removed by the next deployment.
pub const RELEASE_MARKER: &str = ".brokeforge-release";
/// The deploy script's file in the release.
pub const DEPLOY_SCRIPT_FILE: &str = ".brokeforge-deploy.sh";
/// The suffix of a new configuration file while it waits for its check.
pub const NEW_SUFFIX: &str = ".brokeforge-new";
/// The suffix of the previous configuration file while the new one is checked.
pub const PREVIOUS_SUFFIX: &str = ".brokeforge-previous";
/// The longest path of a Unix socket (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The longest domain a site can have: its PHP-FPM socket path
/// (`/run/php/phpX.Y-fpm-<domain>.sock`) must fit in a Unix socket path, and any site
/// may become a PHP site. Far below the 255 bytes a file name can hold, so every file
/// named after the domain fits too.
pub const MAX_SITE_DOMAIN_LENGTH: usize = MAX_SOCKET_PATH - "/run/php/php8.3-fpm-.sock".len();

/// A domain is too long for a site: its PHP-FPM socket path would be longer than a
/// Unix socket path can be.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "the domain {domain} is too long for a site ({length} characters): its PHP-FPM socket path must fit in \
     {max_socket} characters, so use a domain of at most {max} characters",
    max_socket = MAX_SOCKET_PATH,
    max = MAX_SITE_DOMAIN_LENGTH
)]
pub struct SocketPathTooLong {
    pub domain: String,
    /// The domain's length.
    pub length: usize,
}

/// Checks that `domain` can be a site's domain (see [`MAX_SITE_DOMAIN_LENGTH`]).
pub fn check_site_domain(domain: &Domain) -> Result<(), SocketPathTooLong> {
    if domain.as_str().len() > MAX_SITE_DOMAIN_LENGTH {
        return Err(SocketPathTooLong {
            domain: domain.to_string(),
            length: domain.as_str().len(),
        });
    }
    Ok(())
}

/// Deserializes a site's domain, refusing one longer than [`MAX_SITE_DOMAIN_LENGTH`],
/// for the `domain` fields of the site operations' inputs.
pub fn deserialize_site_domain<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Domain, D::Error> {
    let domain = <Domain as serde::Deserialize>::deserialize(deserializer)?;
    check_site_domain(&domain).map_err(serde::de::Error::custom)?;
    Ok(domain)
}

/// The paths of one site, derived from its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteLayout {
    domain: Domain,
    root: RemotePath,
}

impl SiteLayout {
    /// The layout of the site `domain`.
    ///
    /// # Panics
    ///
    /// Panics if `domain` is longer than [`MAX_SITE_DOMAIN_LENGTH`], which
    /// [`SiteInstallInput`](super::install::SiteInstallInput) and the deserialization
    /// of every site input refuse; use [`SiteLayout::try_new`] for other domains.
    pub fn new(domain: &Domain) -> Self {
        SiteLayout::try_new(domain).expect("site domains are checked before they get a layout")
    }

    /// The layout of the site `domain`, or why it cannot be a site's domain.
    pub fn try_new(domain: &Domain) -> Result<Self, SocketPathTooLong> {
        check_site_domain(domain)?;
        let root = path(APP_HOME)
            .join(domain.as_str())
            .expect("a domain is one safe path component");
        Ok(SiteLayout {
            domain: domain.clone(),
            root,
        })
    }

    /// The site's domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// `/home/brokeforge/<domain>`.
    pub fn root(&self) -> &RemotePath {
        &self.root
    }

    /// `<root>/releases`.
    pub fn releases(&self) -> RemotePath {
        self.below("releases")
    }

    /// `<root>/releases/<id>`.
    pub fn release(&self, id: &ReleaseId) -> RemotePath {
        self.releases().join(id.as_str()).expect("a release id is digits")
    }

    /// The target of `current` when `id` is live: `releases/<id>`, relative, so the
    /// site's directory could move without breaking the link.
    pub fn current_target(id: &ReleaseId) -> String {
        format!("releases/{id}")
    }

    /// `<root>/shared`.
    pub fn shared(&self) -> RemotePath {
        self.below("shared")
    }

    /// `<root>/current`, the link to the live release.
    pub fn current(&self) -> RemotePath {
        self.below("current")
    }

    /// `<root>/current.tmp-<id>`, the link made before it replaces `current`.
    pub fn current_temporary(&self, id: &ReleaseId) -> RemotePath {
        self.below(&format!("current.tmp-{id}"))
    }

    /// `<root>/repository.git`, the bare mirror deployments fetch into.
    pub fn repository_cache(&self) -> RemotePath {
        self.below("repository.git")
    }

    /// `<root>/.brokeforge/bin`, put first on the deploy script's `PATH`.
    pub fn tools_bin(&self) -> RemotePath {
        self.below(".brokeforge/bin")
    }

    /// The directory nginx serves: `<root>/current/<web directory>`.
    pub fn web_root(&self, web_directory: &WebDirectory) -> RemotePath {
        self.current()
            .join(web_directory.as_str())
            .expect("a web directory is a safe relative path")
    }

    /// `/etc/nginx/sites-available/<domain>.conf`, the site's server block.
    pub fn vhost(&self) -> RemotePath {
        path("/etc/nginx/sites-available")
            .join(&format!("{}.conf", self.domain))
            .expect("a domain is one safe path component")
    }

    /// `/etc/nginx/sites-enabled/<domain>.conf`, the link that enables it.
    pub fn vhost_link(&self) -> RemotePath {
        path("/etc/nginx/sites-enabled")
            .join(&format!("{}.conf", self.domain))
            .expect("a domain is one safe path component")
    }

    /// `/etc/php/<version>/fpm/pool.d/<domain>.conf`, the site's PHP-FPM pool.
    pub fn pool(&self, version: PhpVersion) -> RemotePath {
        path("/etc/php")
            .join(&format!("{version}/fpm/pool.d/{}.conf", self.domain))
            .expect("a domain is one safe path component")
    }

    /// `/run/php/php<version>-fpm-<domain>.sock`, the pool's socket: at most
    /// [`MAX_SOCKET_PATH`] characters, since the domain's length is checked.
    pub fn socket(&self, version: PhpVersion) -> RemotePath {
        path("/run/php")
            .join(&format!("{}-fpm-{}.sock", cli_binary(version), self.domain))
            .expect("a domain is one safe path component")
    }

    /// `/var/log/nginx/<domain>-access.log`.
    pub fn access_log(&self) -> RemotePath {
        path("/var/log/nginx")
            .join(&format!("{}-access.log", self.domain))
            .expect("a domain is one safe path component")
    }

    /// `/var/log/nginx/<domain>-error.log`.
    pub fn error_log(&self) -> RemotePath {
        path("/var/log/nginx")
            .join(&format!("{}-error.log", self.domain))
            .expect("a domain is one safe path component")
    }

    /// A regular expression (POSIX extended, as `find -regex` matches whole paths)
    /// for the site's nginx logs and their rotations: `<domain>-access.log`,
    /// `<domain>-error.log.1`, `<domain>-access.log.2.gz`, and nothing of another site.
    pub fn log_regex(&self) -> String {
        let escaped = self.domain.as_str().replace('.', "\\.");
        format!("/var/log/nginx/{escaped}-(access|error)\\.log(\\.[0-9]+(\\.gz)?)?")
    }

    fn below(&self, relative: &str) -> RemotePath {
        self.root.join(relative).expect("a fixed relative path")
    }
}

/// `path` followed by the suffix, such as `example.com.conf.brokeforge-new`.
pub fn with_suffix(path: &RemotePath, suffix: &'static str) -> RemotePath {
    RemotePath::try_from(format!("{path}{suffix}")).expect("a suffix of safe characters")
}

pub(crate) fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(domain: &str) -> SiteLayout {
        SiteLayout::new(&domain.parse().unwrap())
    }

    #[test]
    fn paths_follow_the_domain() {
        let site = layout("Example.COM");
        let release: ReleaseId = "20261127093000".parse().unwrap();
        assert_eq!(site.root().as_str(), "/home/brokeforge/example.com");
        assert_eq!(
            site.release(&release).as_str(),
            "/home/brokeforge/example.com/releases/20261127093000"
        );
        assert_eq!(SiteLayout::current_target(&release), "releases/20261127093000");
        assert_eq!(
            site.current_temporary(&release).as_str(),
            "/home/brokeforge/example.com/current.tmp-20261127093000"
        );
        assert_eq!(
            site.web_root(&"public".parse().unwrap()).as_str(),
            "/home/brokeforge/example.com/current/public"
        );
        assert_eq!(
            site.web_root(&WebDirectory::root()).as_str(),
            "/home/brokeforge/example.com/current"
        );
        assert_eq!(site.vhost().as_str(), "/etc/nginx/sites-available/example.com.conf");
        assert_eq!(site.vhost_link().as_str(), "/etc/nginx/sites-enabled/example.com.conf");
        assert_eq!(
            site.pool(PhpVersion::Php83).as_str(),
            "/etc/php/8.3/fpm/pool.d/example.com.conf"
        );
        assert_eq!(
            site.socket(PhpVersion::Php83).as_str(),
            "/run/php/php8.3-fpm-example.com.sock"
        );
        assert_eq!(
            with_suffix(&site.vhost(), NEW_SUFFIX).as_str(),
            "/etc/nginx/sites-available/example.com.conf.brokeforge-new"
        );
        assert_eq!(
            site.log_regex(),
            r"/var/log/nginx/example\.com-(access|error)\.log(\.[0-9]+(\.gz)?)?"
        );
    }

    #[test]
    fn sockets_fit_in_a_unix_socket_path() {
        assert_eq!(MAX_SITE_DOMAIN_LENGTH, 82);
        let fits = format!("{}.{}.com", "a".repeat(40), "b".repeat(37));
        for version in PhpVersion::ALL {
            assert_eq!(layout(&fits).socket(*version).as_str().len(), MAX_SOCKET_PATH);
        }
        let too_long: Domain = format!("{}.{}.com", "a".repeat(40), "b".repeat(38)).parse().unwrap();
        let error = SiteLayout::try_new(&too_long).unwrap_err();
        assert_eq!(error.length, 83);
        assert!(error.to_string().contains("at most 82 characters"), "{error}");
        let json = format!("\"{too_long}\"");
        let mut deserializer = serde_json::Deserializer::from_str(&json);
        assert!(deserialize_site_domain(&mut deserializer).is_err());
    }
}

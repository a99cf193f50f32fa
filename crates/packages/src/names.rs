//! `PackageName` and `PackageType`: what a package is and which category it belongs
//! to, with the stable string forms stored in `server_packages`, `server_site_packages`
//! and the `service_type` column of progress events.
//!
//! A name belongs to exactly one type ([`PackageName::package_type`]), so a record can
//! never pair a name with the wrong category.

use thiserror::Error;

/// A string that is not one of an enum's stable string forms.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown {what} {text:?}; expected one of: {expected}")]
pub struct UnknownValue {
    what: &'static str,
    text: String,
    expected: String,
}

impl UnknownValue {
    pub(crate) fn new<'a>(what: &'static str, text: &str, expected: impl Iterator<Item = &'a str>) -> Self {
        UnknownValue {
            what,
            text: text.to_owned(),
            expected: expected.collect::<Vec<_>>().join(", "),
        }
    }
}

string_enum! {
    /// The category of a package, such as `firewall` or `database`.
    pub enum PackageType ("package type") {
        /// Keeping the clock right (systemd-timesyncd).
        TimeSync => "time-sync",
        /// The host firewall and its rules.
        Firewall => "firewall",
        /// PHP versions, the CLI default and extensions.
        Php => "php",
        /// The web server (nginx).
        WebServer => "webserver",
        /// Database engines, their schemas and users.
        Database => "database",
        /// Cache and queue servers (Redis).
        Cache => "cache",
        /// Cron and the scheduled tasks it runs.
        Scheduler => "scheduler",
        /// Supervisor and the workers it keeps alive.
        ProcessManager => "process-manager",
        /// Language runtimes other than PHP (Node.js).
        Runtime => "runtime",
        /// Composer, PHP's dependency manager.
        Composer => "composer",
        /// The metrics collector that reports to BrokeForge.
        Monitoring => "monitoring",
        /// BrokeForge's own access to the server (the brokeforge user, its keys).
        Access => "access",
        /// Sites: their directories, nginx configuration and the default site.
        Site => "site",
        /// A site's Git repository and deploy key.
        Git => "git",
        /// Deployments of a site and rollbacks.
        Deployment => "deployment",
        /// Commands run in a site's directory.
        Command => "command",
        /// A site's environment file.
        Env => "env",
    }
}

string_enum! {
    /// A package: one thing BrokeForge installs, removes or updates.
    pub enum PackageName ("package name") {
        /// systemd-timesyncd, the NTP client.
        Timesyncd => "timesyncd",
        /// ufw, the firewall, with BrokeForge's base rules (SSH, HTTP, HTTPS).
        Ufw => "ufw",
        /// One firewall rule added by a user.
        FirewallRule => "firewall-rule",
        /// One PHP version with FPM and the common extensions.
        Php => "php",
        /// The PHP version the `php` command runs.
        PhpCliDefault => "php-cli-default",
        /// One PHP extension of one PHP version.
        PhpExtension => "php-extension",
        /// nginx with the default catch-all site.
        Nginx => "nginx",
        /// MySQL server.
        MySql => "mysql",
        /// MariaDB server.
        MariaDb => "mariadb",
        /// PostgreSQL server.
        PostgreSql => "postgresql",
        /// One database (schema) on a database server.
        DatabaseSchema => "database-schema",
        /// One database user and its grants.
        DatabaseUser => "database-user",
        /// Redis server.
        Redis => "redis",
        /// cron and BrokeForge's scheduler directories.
        Cron => "cron",
        /// One scheduled task.
        ScheduledTask => "scheduled-task",
        /// Supervisor.
        Supervisor => "supervisor",
        /// One Supervisor program (a worker).
        SupervisorProgram => "supervisor-program",
        /// Node.js.
        NodeJs => "nodejs",
        /// Composer.
        Composer => "composer",
        /// The metrics collector and its systemd timer.
        MonitoringAgent => "monitoring-agent",
        /// The brokeforge user and the control plane's authorized keys.
        BrokeForgeAccess => "brokeforge-access",
        /// A site: directories, nginx server block, PHP-FPM pool.
        Site => "site",
        /// Which site answers requests for the server's IP address.
        DefaultSite => "default-site",
        /// WordPress in a site's release, with its `wp-config.php`.
        WordPress => "wordpress",
        /// A site's Git repository.
        GitRepository => "git-repository",
        /// A site's own deploy key.
        DeployKey => "deploy-key",
        /// One deployment of a site.
        Deployment => "deployment",
        /// A site's environment file (`.env`).
        EnvFile => "env-file",
        /// One command run in a site's directory.
        SiteCommand => "site-command",
        /// The files of a site, as the file explorer changes them.
        SiteFiles => "site-files",
    }
}

impl PackageName {
    /// The category this package belongs to.
    pub const fn package_type(self) -> PackageType {
        match self {
            PackageName::Timesyncd => PackageType::TimeSync,
            PackageName::Ufw | PackageName::FirewallRule => PackageType::Firewall,
            PackageName::Php | PackageName::PhpCliDefault | PackageName::PhpExtension => PackageType::Php,
            PackageName::Nginx => PackageType::WebServer,
            PackageName::MySql
            | PackageName::MariaDb
            | PackageName::PostgreSql
            | PackageName::DatabaseSchema
            | PackageName::DatabaseUser => PackageType::Database,
            PackageName::Redis => PackageType::Cache,
            PackageName::Cron | PackageName::ScheduledTask => PackageType::Scheduler,
            PackageName::Supervisor | PackageName::SupervisorProgram => PackageType::ProcessManager,
            PackageName::NodeJs => PackageType::Runtime,
            PackageName::Composer => PackageType::Composer,
            PackageName::MonitoringAgent => PackageType::Monitoring,
            PackageName::BrokeForgeAccess => PackageType::Access,
            PackageName::Site | PackageName::DefaultSite | PackageName::WordPress | PackageName::SiteFiles => {
                PackageType::Site
            }
            PackageName::GitRepository | PackageName::DeployKey => PackageType::Git,
            PackageName::Deployment => PackageType::Deployment,
            PackageName::EnvFile => PackageType::Env,
            PackageName::SiteCommand => PackageType::Command,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip_and_are_unique() {
        for name in PackageName::ALL {
            assert_eq!(name.as_str().parse::<PackageName>(), Ok(*name));
            let json = serde_json::to_string(name).unwrap();
            assert_eq!(serde_json::from_str::<PackageName>(&json).unwrap(), *name);
        }
        for package_type in PackageType::ALL {
            assert_eq!(package_type.as_str().parse::<PackageType>(), Ok(*package_type));
        }
        let mut names: Vec<&str> = PackageName::ALL.iter().map(|name| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PackageName::ALL.len(), "package names are unique");
        let mut types: Vec<&str> = PackageType::ALL.iter().map(|t| t.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), PackageType::ALL.len(), "package types are unique");
    }

    #[test]
    fn string_forms_are_lowercase_kebab_case() {
        let forms = PackageName::ALL
            .iter()
            .map(|name| name.as_str())
            .chain(PackageType::ALL.iter().map(|t| t.as_str()));
        for form in forms {
            assert!(
                !form.is_empty()
                    && form
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !form.starts_with('-')
                    && !form.ends_with('-'),
                "{form:?} is not lowercase kebab-case"
            );
        }
    }

    #[test]
    fn every_type_has_a_package() {
        for package_type in PackageType::ALL {
            assert!(
                PackageName::ALL.iter().any(|name| name.package_type() == *package_type),
                "no package has type {package_type}"
            );
        }
    }

    #[test]
    fn unknown_strings_are_refused_with_the_choices() {
        let error = "apache".parse::<PackageName>().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown package name \"apache\"; expected one of: timesyncd, ufw, "),
            "{error}"
        );
        assert!(serde_json::from_str::<PackageType>("\"Firewall\"").is_err());
    }
}

//! PHP extensions, installed and removed for real: the Debian package
//! `phpX.Y-<extension>` (from the distribution or the PHP repository), its modules
//! turned on or off for every SAPI with `phpenmod`/`phpdismod`, and PHP-FPM reloaded
//! after checking its configuration.
//!
//! Facts: the state of the PHP packages (`dpkg-query`) and the modules the version's
//! command line loads (`phpX.Y -m`). An extension counts as present when its package
//! is installed or when PHP already loads all its modules: on a distribution's own
//! PHP, PECL extensions such as redis come from unversioned packages (`php-redis`)
//! that only provide `php8.2-redis`, so `php -m` is the fact that tells.
//!
//! Extensions have no package record: the application marks its own row for the
//! extension once the plan succeeded (like firewall rules).

use brokeforge_core::{Cmd, PhpVersion, Plan};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{FactError, FactProbe, PackageStates, ProbeOutputs, package_states_cmd, parse_package_states};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::php::cli::{PhpModules, parse_php_modules, php_modules_cmd};
use crate::php::names::{self, fpm_binary};

string_enum! {
    /// A PHP extension BrokeForge can install, named as its Debian package's suffix.
    pub enum PhpExtension ("PHP extension") {
        Apcu => "apcu",
        Bcmath => "bcmath",
        Bz2 => "bz2",
        Curl => "curl",
        Gd => "gd",
        Gmp => "gmp",
        Igbinary => "igbinary",
        Imagick => "imagick",
        Intl => "intl",
        Ldap => "ldap",
        Mbstring => "mbstring",
        Memcached => "memcached",
        Mongodb => "mongodb",
        Msgpack => "msgpack",
        /// MySQL and MariaDB: mysqlnd, mysqli and pdo_mysql.
        Mysql => "mysql",
        Opcache => "opcache",
        /// PostgreSQL: pgsql and pdo_pgsql.
        Pgsql => "pgsql",
        Readline => "readline",
        Redis => "redis",
        Soap => "soap",
        /// SQLite: sqlite3 and pdo_sqlite.
        Sqlite3 => "sqlite3",
        Tidy => "tidy",
        Xdebug => "xdebug",
        /// dom, SimpleXML, xml, xmlreader, xmlwriter and xsl.
        Xml => "xml",
        Zip => "zip",
    }
}

impl PhpExtension {
    /// The extensions every PHP installation gets.
    pub const COMMON: &'static [PhpExtension] = &[
        PhpExtension::Mbstring,
        PhpExtension::Xml,
        PhpExtension::Curl,
        PhpExtension::Zip,
        PhpExtension::Intl,
        PhpExtension::Bcmath,
        PhpExtension::Mysql,
        PhpExtension::Pgsql,
        PhpExtension::Sqlite3,
        PhpExtension::Gd,
        PhpExtension::Readline,
        PhpExtension::Opcache,
    ];

    /// Whether `version` has the extension built in, with no package of its own:
    /// OPcache is part of PHP itself from 8.5 on.
    pub fn is_built_in(self, version: PhpVersion) -> bool {
        self == PhpExtension::Opcache && version >= PhpVersion::Php85
    }

    /// The package `phpX.Y-<extension>`, or `None` when the extension is built in.
    pub fn package(self, version: PhpVersion) -> Option<DebianPackage> {
        (!self.is_built_in(version)).then(|| names::package(version, self.as_str()))
    }

    /// The modules `php -m` lists once the extension is loaded.
    pub const fn loaded_modules(self) -> &'static [&'static str] {
        match self {
            PhpExtension::Mysql => &["mysqlnd", "mysqli", "pdo_mysql"],
            PhpExtension::Opcache => &["Zend OPcache"],
            PhpExtension::Pgsql => &["pgsql", "pdo_pgsql"],
            PhpExtension::Sqlite3 => &["sqlite3", "pdo_sqlite"],
            PhpExtension::Xml => &["dom", "SimpleXML", "xml", "xmlreader", "xmlwriter", "xsl"],
            other => other.single_module(),
        }
    }

    /// The module names `phpenmod` and `phpdismod` take (the `.ini` files in
    /// `/etc/php/X.Y/mods-available`), dependencies first.
    pub const fn ini_modules(self) -> &'static [&'static str] {
        match self {
            PhpExtension::Mysql => &["mysqlnd", "mysqli", "pdo_mysql"],
            PhpExtension::Pgsql => &["pgsql", "pdo_pgsql"],
            PhpExtension::Sqlite3 => &["sqlite3", "pdo_sqlite"],
            PhpExtension::Xml => &["dom", "simplexml", "xml", "xmlreader", "xmlwriter", "xsl"],
            other => other.single_module(),
        }
    }

    /// The one module of an extension named like its module.
    const fn single_module(self) -> &'static [&'static str] {
        match self {
            PhpExtension::Apcu => &["apcu"],
            PhpExtension::Bcmath => &["bcmath"],
            PhpExtension::Bz2 => &["bz2"],
            PhpExtension::Curl => &["curl"],
            PhpExtension::Gd => &["gd"],
            PhpExtension::Gmp => &["gmp"],
            PhpExtension::Igbinary => &["igbinary"],
            PhpExtension::Imagick => &["imagick"],
            PhpExtension::Intl => &["intl"],
            PhpExtension::Ldap => &["ldap"],
            PhpExtension::Mbstring => &["mbstring"],
            PhpExtension::Memcached => &["memcached"],
            PhpExtension::Mongodb => &["mongodb"],
            PhpExtension::Msgpack => &["msgpack"],
            PhpExtension::Opcache => &["opcache"],
            PhpExtension::Readline => &["readline"],
            PhpExtension::Redis => &["redis"],
            PhpExtension::Soap => &["soap"],
            PhpExtension::Tidy => &["tidy"],
            PhpExtension::Xdebug => &["xdebug"],
            PhpExtension::Zip => &["zip"],
            PhpExtension::Mysql => &["mysqli"],
            PhpExtension::Pgsql => &["pgsql"],
            PhpExtension::Sqlite3 => &["sqlite3"],
            PhpExtension::Xml => &["xml"],
        }
    }
}

/// One PHP extension of one PHP version, a server package.
pub struct PhpExtensions;

impl Package for PhpExtensions {
    const NAME: PackageName = PackageName::PhpExtension;
    const SCOPE: Scope = Scope::Server;
}

/// What installing or removing an extension needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpExtensionInput {
    /// The PHP version whose extension this is.
    pub version: PhpVersion,
    pub extension: PhpExtension,
}

/// What extension operations read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhpExtensionFacts {
    /// Every package matching `php*`.
    pub packages: PackageStates,
    /// The modules the version's command line loads; `None` when it is not installed.
    pub modules: Option<PhpModules>,
}

/// Probe keys.
const PACKAGES_PROBE: &str = "php_packages";
const MODULES_PROBE: &str = "php_modules";

fn extension_probes(input: &PhpExtensionInput) -> Vec<FactProbe> {
    vec![
        FactProbe::new::<PhpExtensions>(PACKAGES_PROBE, package_states_cmd(&["php*"])),
        FactProbe::new::<PhpExtensions>(MODULES_PROBE, php_modules_cmd(input.version)),
    ]
}

fn parse_extension_facts(outputs: &ProbeOutputs) -> Result<PhpExtensionFacts, FactError> {
    Ok(PhpExtensionFacts {
        packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
        modules: outputs.read(MODULES_PROBE, parse_php_modules)?,
    })
}

impl PhpExtensionFacts {
    /// Whether the extension's package is installed.
    fn package_installed(&self, input: &PhpExtensionInput) -> bool {
        input
            .extension
            .package(input.version)
            .is_some_and(|package| self.packages.is_installed(package.as_str()))
    }

    /// Whether PHP loads every module of the extension.
    fn modules_loaded(&self, input: &PhpExtensionInput) -> bool {
        self.modules
            .as_ref()
            .is_some_and(|modules| modules.contains_all(input.extension.loaded_modules()))
    }

    /// Whether the version's FPM is installed, and so needs a reload.
    fn fpm_installed(&self, version: PhpVersion) -> bool {
        self.packages.is_installed(names::package(version, "fpm").as_str())
    }
}

/// Why an extension operation refuses to plan. The messages are meant for users.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PhpExtensionRefusal {
    #[error("PHP {version} is not installed on this server; install it before adding extensions")]
    PhpNotInstalled { version: PhpVersion },
    #[error("{extension} is part of PHP {version} itself and cannot be removed")]
    BuiltIn {
        extension: PhpExtension,
        version: PhpVersion,
    },
}

/// Checks the FPM configuration and reloads FPM if it runs (`try-reload-or-restart`
/// does nothing when it is stopped).
fn reload_fpm(version: PhpVersion) -> Cmd {
    Cmd::new(fpm_binary(version)).lit("-t").and(
        Cmd::new("systemctl")
            .lit("try-reload-or-restart")
            .arg(names::fpm_service(version)),
    )
}

/// `phpenmod` or `phpdismod` for every SAPI of `version`.
fn toggle_modules(program: &'static str, version: PhpVersion, modules: &[&'static str]) -> Cmd {
    let cmd = Cmd::new(program).lit("-v").arg(version).lit("-s").lit("ALL");
    modules.iter().fold(cmd, |cmd, module| cmd.lit(module))
}

milestones! {
    /// Milestones of installing a PHP extension.
    pub enum PhpExtensionInstallMilestone {
        InstallPackage => ("install_package", "Installing the extension's package"),
        EnableExtension => ("enable_extension", "Enabling the extension"),
        ReloadFpm => ("reload_fpm", "Reloading PHP-FPM"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs one extension of one PHP version and turns it on.
pub struct PhpExtensionInstall;

impl Operation for PhpExtensionInstall {
    type Package = PhpExtensions;
    const ACTION: Action = Action::Install;
    type Milestone = PhpExtensionInstallMilestone;
    type Input = PhpExtensionInput;
    type Facts = PhpExtensionFacts;
    type Error = PhpExtensionRefusal;

    fn fact_probes(input: &PhpExtensionInput) -> Vec<FactProbe> {
        extension_probes(input)
    }

    fn parse_facts(_input: &PhpExtensionInput, outputs: &ProbeOutputs) -> Result<PhpExtensionFacts, FactError> {
        parse_extension_facts(outputs)
    }

    fn plan(input: &PhpExtensionInput, facts: &PhpExtensionFacts) -> Result<Plan, PhpExtensionRefusal> {
        let version = input.version;
        if !facts.packages.is_installed(names::package(version, "cli").as_str()) {
            return Err(PhpExtensionRefusal::PhpNotInstalled { version });
        }
        let mut plan = Self::plan_writer();
        let loaded = facts.modules_loaded(input);
        let package = input.extension.package(version);
        let mut changed = false;

        let steps = plan.milestone(PhpExtensionInstallMilestone::InstallPackage);
        if let Some(package) = &package
            && !loaded
            && !facts.package_installed(input)
        {
            for cmd in apt::commands_to_install_all(std::slice::from_ref(package), &facts.packages, false) {
                steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
            }
            changed = true;
        }

        // Installing the package enables its modules; enabling them again is harmless,
        // and needed when an administrator had turned them off.
        let steps = plan.milestone(PhpExtensionInstallMilestone::EnableExtension);
        if !loaded && package.is_some() {
            steps.run(toggle_modules("phpenmod", version, input.extension.ini_modules()));
            changed = true;
        }

        let steps = plan.milestone(PhpExtensionInstallMilestone::ReloadFpm);
        if changed && facts.fpm_installed(version) {
            steps.run(reload_fpm(version));
        }

        plan.milestone(PhpExtensionInstallMilestone::Complete);
        Ok(plan.finish())
    }
}

milestones! {
    /// Milestones of removing a PHP extension.
    pub enum PhpExtensionRemoveMilestone {
        DisableExtension => ("disable_extension", "Disabling the extension"),
        RemovePackage => ("remove_package", "Removing the extension's package"),
        ReloadFpm => ("reload_fpm", "Reloading PHP-FPM"),
        Complete => ("complete", "Complete"),
    }
}

/// Turns one extension of one PHP version off and purges its package.
pub struct PhpExtensionRemove;

impl Operation for PhpExtensionRemove {
    type Package = PhpExtensions;
    const ACTION: Action = Action::Remove;
    type Milestone = PhpExtensionRemoveMilestone;
    type Input = PhpExtensionInput;
    type Facts = PhpExtensionFacts;
    type Error = PhpExtensionRefusal;

    fn fact_probes(input: &PhpExtensionInput) -> Vec<FactProbe> {
        extension_probes(input)
    }

    fn parse_facts(_input: &PhpExtensionInput, outputs: &ProbeOutputs) -> Result<PhpExtensionFacts, FactError> {
        parse_extension_facts(outputs)
    }

    fn plan(input: &PhpExtensionInput, facts: &PhpExtensionFacts) -> Result<Plan, PhpExtensionRefusal> {
        let version = input.version;
        let Some(package) = input.extension.package(version) else {
            return Err(PhpExtensionRefusal::BuiltIn {
                extension: input.extension,
                version,
            });
        };
        let mut plan = Self::plan_writer();
        let mut changed = false;

        // Some module loaded is enough to disable: a half-enabled extension is still on.
        let loaded = facts.modules.as_ref().is_some_and(|modules| {
            input
                .extension
                .loaded_modules()
                .iter()
                .any(|module| modules.contains(module))
        });
        let steps = plan.milestone(PhpExtensionRemoveMilestone::DisableExtension);
        if loaded {
            let mut modules = input.extension.ini_modules().to_vec();
            modules.reverse();
            steps.run(toggle_modules("phpdismod", version, &modules));
            changed = true;
        }

        let steps = plan.milestone(PhpExtensionRemoveMilestone::RemovePackage);
        if facts.packages.state(package.as_str()).is_present() {
            steps.run_with_timeout(apt::purge_all(&[package]), apt::APT_TIMEOUT);
            changed = true;
        }

        let steps = plan.milestone(PhpExtensionRemoveMilestone::ReloadFpm);
        if changed && facts.fpm_installed(version) {
            steps.run(reload_fpm(version));
        }

        plan.milestone(PhpExtensionRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

/// The extensions of [`PhpExtension::COMMON`] as `version` installs them, skipping
/// those built into it.
pub fn common_packages(version: PhpVersion) -> Vec<DebianPackage> {
    PhpExtension::COMMON
        .iter()
        .filter_map(|extension| extension.package(version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_names_its_modules() {
        for extension in PhpExtension::ALL {
            assert!(!extension.loaded_modules().is_empty(), "{extension}");
            assert_eq!(
                extension.loaded_modules().len(),
                extension.ini_modules().len(),
                "{extension}"
            );
        }
        assert!(PhpExtension::Opcache.is_built_in(PhpVersion::Php85));
        assert!(!PhpExtension::Opcache.is_built_in(PhpVersion::Php84));
        assert_eq!(PhpExtension::Opcache.package(PhpVersion::Php85), None);
        assert_eq!(
            PhpExtension::Redis.package(PhpVersion::Php83).unwrap().as_str(),
            "php8.3-redis"
        );
    }

    #[test]
    fn hostile_extension_names_are_refused() {
        for hostile in ["redis; reboot", "../redis", "Redis", "", "redis\n", "$(id)"] {
            assert!(hostile.parse::<PhpExtension>().is_err(), "{hostile:?}");
        }
        assert!(
            serde_json::from_str::<PhpExtensionInput>(r#"{"version":"8.3","extension":"curl -o /etc/passwd"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<PhpExtensionInput>(r#"{"version":"8.3; id","extension":"curl"}"#).is_err());
    }
}

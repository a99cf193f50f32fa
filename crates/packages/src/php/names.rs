//! The names one PHP version goes by on a Debian-family server: its binaries, its
//! packages, its FPM service and its configuration paths. Every name is derived from
//! a [`PhpVersion`], never from user text.

use brokeforge_core::{PhpVersion, RemotePath, ShellArg};

use crate::apt::DebianPackage;

/// The command-line binary, such as `php8.3`.
pub const fn cli_binary(version: PhpVersion) -> &'static str {
    match version {
        PhpVersion::Php74 => "php7.4",
        PhpVersion::Php80 => "php8.0",
        PhpVersion::Php81 => "php8.1",
        PhpVersion::Php82 => "php8.2",
        PhpVersion::Php83 => "php8.3",
        PhpVersion::Php84 => "php8.4",
        PhpVersion::Php85 => "php8.5",
    }
}

/// The FPM binary, such as `php-fpm8.3`, whose `-t` checks the configuration.
pub const fn fpm_binary(version: PhpVersion) -> &'static str {
    match version {
        PhpVersion::Php74 => "php-fpm7.4",
        PhpVersion::Php80 => "php-fpm8.0",
        PhpVersion::Php81 => "php-fpm8.1",
        PhpVersion::Php82 => "php-fpm8.2",
        PhpVersion::Php83 => "php-fpm8.3",
        PhpVersion::Php84 => "php-fpm8.4",
        PhpVersion::Php85 => "php-fpm8.5",
    }
}

/// The package `phpX.Y-SUFFIX`, such as `php8.3-fpm`.
pub fn package(version: PhpVersion, suffix: &str) -> DebianPackage {
    DebianPackage::new(format!("{}-{suffix}", cli_binary(version))).expect("PHP package names are valid")
}

/// Whether `package` belongs to `version`: `phpX.Y` itself or `phpX.Y-...`.
pub fn belongs_to(package: &str, version: PhpVersion) -> bool {
    package
        .strip_prefix(cli_binary(version))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// The FPM service, such as `php8.3-fpm`.
pub fn fpm_service(version: PhpVersion) -> ShellArg {
    ShellArg::new(format!("{}-fpm", cli_binary(version))).expect("service names hold no NUL byte")
}

/// The FPM service's unit, such as `php8.3-fpm.service`, for `systemctl show`.
pub fn fpm_unit(version: PhpVersion) -> ShellArg {
    ShellArg::new(format!("{}-fpm.service", cli_binary(version))).expect("unit names hold no NUL byte")
}

/// BrokeForge's FPM settings, read after `php.ini`: `/etc/php/X.Y/fpm/conf.d/99-brokeforge.ini`.
pub fn fpm_config_path(version: PhpVersion) -> RemotePath {
    RemotePath::try_from(format!("/etc/php/{version}/fpm/conf.d/99-brokeforge.ini")).expect("a valid absolute path")
}

/// The path of the command-line binary, as `update-alternatives` names it.
pub fn cli_binary_path(version: PhpVersion) -> RemotePath {
    RemotePath::try_from(format!("/usr/bin/{}", cli_binary(version))).expect("a valid absolute path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_version() {
        for version in PhpVersion::ALL {
            assert_eq!(cli_binary(*version), format!("php{version}"));
            assert_eq!(fpm_binary(*version), format!("php-fpm{version}"));
        }
        assert_eq!(package(PhpVersion::Php83, "fpm").as_str(), "php8.3-fpm");
        assert!(belongs_to("php8.3-fpm", PhpVersion::Php83));
        assert!(belongs_to("php8.3", PhpVersion::Php83));
        assert!(!belongs_to("php8.3x", PhpVersion::Php83));
        assert!(!belongs_to("php-common", PhpVersion::Php83));
        assert!(!belongs_to("php8.2-fpm", PhpVersion::Php83));
        assert_eq!(
            fpm_config_path(PhpVersion::Php82).as_str(),
            "/etc/php/8.2/fpm/conf.d/99-brokeforge.ini"
        );
    }
}

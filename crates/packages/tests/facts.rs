//! The shared fact parsers against output captured on Debian 12: package states from
//! `dpkg-query` with patterns, path kinds from `stat`, and service states from
//! `systemctl show`.

mod common;

use brokeforge_core::RemotePath;
use brokeforge_core::ShellArg;
use brokeforge_packages::facts::{
    FileKind, ServiceState, package_states_cmd, parse_package_states, parse_path_kinds, parse_service_state,
    path_kinds_cmd, service_state_cmd,
};
use brokeforge_packages::{DpkgState, ProbeOutput};
use common::fixture;

#[test]
fn probe_commands_quote_patterns_and_paths() {
    assert_eq!(
        package_states_cmd(&["php*", "curl"]).to_string(),
        r"dpkg-query -W -f '${Package} ${Version} ${Status}\n' php'*' curl"
    );
    let paths: Vec<RemotePath> = ["/etc/apt/keyrings/a.gpg", "/srv/my dir"]
        .iter()
        .map(|path| path.parse().unwrap())
        .collect();
    assert_eq!(
        path_kinds_cmd(&paths).to_string(),
        r"stat --printf '%n %F\n' -- /etc/apt/keyrings/a.gpg /srv/my' dir'"
    );
    assert_eq!(
        service_state_cmd(ShellArg::new("php8.3-fpm.service").unwrap()).to_string(),
        "systemctl show -p LoadState -p ActiveState -p UnitFileState -- php8.3-fpm.service"
    );
}

#[test]
fn package_states_of_php_on_debian_12() {
    let states = parse_package_states(&ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt"))).unwrap();
    assert!(states.is_installed("php8.2-fpm"));
    assert_eq!(states.installed_version("php8.2-fpm"), Some("8.2.36-1~deb12u1"));
    assert_eq!(states.installed_version("php-common"), Some("2:93"));
    assert_eq!(states.state("php-redis"), DpkgState::NotInstalled);
    assert_eq!(states.installed_version("php-redis"), None);
    assert_eq!(
        states.state("php8.3-fpm"),
        DpkgState::NotInstalled,
        "unlisted names are not installed"
    );
    assert!(states.is_installed("curl") && states.is_installed("ca-certificates"));
    assert!(!states.any_interrupted());
    let present: Vec<&str> = states.present().collect();
    insta::assert_snapshot!(present.join("\n"), @r"
    ca-certificates
    curl
    php-common
    php8.2-bcmath
    php8.2-cli
    php8.2-common
    php8.2-curl
    php8.2-fpm
    php8.2-gd
    php8.2-intl
    php8.2-mbstring
    php8.2-mysql
    php8.2-opcache
    php8.2-pgsql
    php8.2-readline
    php8.2-sqlite3
    php8.2-xml
    php8.2-zip
    ");
}

#[test]
fn a_removed_package_keeps_its_configuration_files() {
    let states = parse_package_states(&ProbeOutput::success(fixture(
        "dpkg-query-php-debian-12-gd-removed.txt",
    )))
    .unwrap();
    assert_eq!(states.state("php8.2-gd"), DpkgState::ConfigFilesOnly);
    assert!(!states.is_installed("php8.2-gd"));
    assert!(states.present().any(|name| name == "php8.2-gd"));
}

#[test]
fn patterns_that_match_nothing_are_not_errors() {
    let output = ProbeOutput::new(
        1,
        fixture("dpkg-query-nginx-debian-12.txt"),
        "dpkg-query: no packages found matching libnginx-mod-*\n",
    );
    let states = parse_package_states(&output).unwrap();
    assert!(states.is_installed("nginx") && states.is_installed("nginx-common"));
    assert_eq!(states.state("apache2"), DpkgState::NotInstalled);
    let nothing = ProbeOutput::new(1, "", "dpkg-query: no packages found matching php*\n");
    assert_eq!(parse_package_states(&nothing).unwrap().present().count(), 0);
}

#[test]
fn interrupted_and_broken_outputs() {
    let interrupted = ProbeOutput::success("php8.3-fpm 8.3.6-0ubuntu0.24.04.3 install ok half-configured\n");
    let states = parse_package_states(&interrupted).unwrap();
    assert!(states.any_interrupted());
    assert_eq!(
        states.state("php8.3-fpm"),
        DpkgState::Interrupted {
            status: "half-configured".to_owned()
        }
    );
    assert!(parse_package_states(&ProbeOutput::success("php8.3-fpm\n")).is_err());
    assert!(parse_package_states(&ProbeOutput::success("php8.3-fpm 8.3 install ok sideways\n")).is_err());
    assert!(parse_package_states(&ProbeOutput::new(2, "", "dpkg-query: error: cannot access archive\n")).is_err());
    assert!(
        parse_package_states(&ProbeOutput::new(
            1,
            "",
            "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 5\n"
        ))
        .is_err()
    );
}

fn paths(list: &[&str]) -> Vec<RemotePath> {
    list.iter().map(|path| path.parse().unwrap()).collect()
}

#[test]
fn path_kinds_as_stat_prints_them() {
    let asked = paths(&[
        "/etc/nginx/sites-enabled/default",
        "/etc/nginx/sites-enabled/brokeforge-default",
        "/etc/supervisor/conf.d",
        "/etc/apt/keyrings/brokeforge-php.gpg",
    ]);
    let output = ProbeOutput::new(
        1,
        "/etc/nginx/sites-enabled/default symbolic link\n/etc/supervisor/conf.d directory\n\
         /etc/apt/keyrings/brokeforge-php.gpg regular file\n",
        "stat: cannot statx '/etc/nginx/sites-enabled/brokeforge-default': No such file or directory\n",
    );
    assert_eq!(
        parse_path_kinds(&output, &asked).unwrap(),
        vec![
            Some(FileKind::SymbolicLink),
            None,
            Some(FileKind::Directory),
            Some(FileKind::RegularFile)
        ]
    );
    let empty_file = ProbeOutput::success("/etc/apt/keyrings/brokeforge-php.gpg regular empty file\n");
    assert_eq!(
        parse_path_kinds(&empty_file, &asked[3..]).unwrap(),
        vec![Some(FileKind::RegularFile)]
    );
    let ubuntu_22_04 = ProbeOutput::new(
        1,
        "",
        "stat: cannot stat '/etc/apt/keyrings/brokeforge-php.gpg': No such file or directory\n",
    );
    assert_eq!(parse_path_kinds(&ubuntu_22_04, &asked[3..]).unwrap(), vec![None]);
    let denied = ProbeOutput::new(1, "", "stat: cannot statx '/root/x': Permission denied\n");
    assert!(parse_path_kinds(&denied, &paths(&["/root/x"])).is_err());
    let unexpected = ProbeOutput::success("/etc/other directory\n");
    assert!(parse_path_kinds(&unexpected, &asked).is_err());
}

#[test]
fn service_states_as_systemctl_prints_them() {
    let state = |stdout: &str| parse_service_state(&ProbeOutput::success(stdout)).unwrap();
    assert_eq!(
        state("LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"),
        ServiceState::Loaded {
            enabled: true,
            active: true
        }
    );
    assert_eq!(
        state("LoadState=loaded\nActiveState=failed\nUnitFileState=enabled\n"),
        ServiceState::Loaded {
            enabled: true,
            active: false
        }
    );
    assert_eq!(
        state("LoadState=masked\nActiveState=inactive\nUnitFileState=masked\n"),
        ServiceState::Loaded {
            enabled: false,
            active: false
        }
    );
    assert_eq!(
        state("LoadState=not-found\nActiveState=inactive\nUnitFileState=\n"),
        ServiceState::NotFound
    );
    let without_systemd = ProbeOutput::new(
        1,
        "",
        "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
         Failed to connect to bus: Host is down\n",
    );
    assert_eq!(
        parse_service_state(&without_systemd).unwrap(),
        ServiceState::Unavailable {
            reason: "System has not been booted with systemd as init system (PID 1). Can't operate.".to_owned()
        }
    );
    assert!(parse_service_state(&ProbeOutput::success("garbage\n")).is_err());
    assert!(parse_service_state(&ProbeOutput::success("UnitFileState=enabled\n")).is_err());
}

//! PHP: parsers against output captured on Debian 12 (`dpkg-query`, `php -m`,
//! `update-alternatives`), and plan snapshots for installing each version on each
//! supported release (distribution packages or the sury/ondrej repository), for
//! servers already provisioned (no-op plans), for removing, for the command-line
//! default and for extensions, including hostile inputs.

mod common;

use brokeforge_packages::php::cli::{AlternativeStatus, PhpModules, parse_php_alternatives, parse_php_modules};
use brokeforge_packages::php::extension::{
    PhpExtension, PhpExtensionFacts, PhpExtensionInput, PhpExtensionInstall, PhpExtensionRemove,
};
use brokeforge_packages::php::{
    PhpCliDefaultInstall, PhpInstall, PhpInstallFacts, PhpInstallInput, PhpRemove, PhpRemoveFacts, PhpVersionInput,
    render_fpm_config,
};
use brokeforge_packages::{Operation, ProbeOutput, dry_run};
use common::outputs::{
    cat_missing, dpkg_fresh_debian_12, dpkg_fresh_ubuntu_22_04, dpkg_fresh_ubuntu_24_04, grep_nothing, stat_missing,
    unit_not_found, unit_running, unit_stopped_and_disabled,
};
use common::{check_plan, fixture, os_release_output, outputs_for, probe_text};

const SOURCES_FILE: &str = "/etc/apt/sources.list.d/brokeforge-php.sources";
const KEYRINGS: &[&str] = &[
    "/etc/apt/keyrings/brokeforge-php.gpg",
    "/etc/apt/keyrings/brokeforge-php.asc",
];

fn install_input(version: &str) -> PhpInstallInput {
    serde_json::from_str(&format!(r#"{{"version":"{version}"}}"#)).unwrap()
}

fn version_input(version: &str) -> PhpVersionInput {
    serde_json::from_str(&format!(r#"{{"version":"{version}"}}"#)).unwrap()
}

/// What a server answers to PhpInstall's probes.
struct Server {
    release: &'static str,
    packages: ProbeOutput,
    apt_sources: ProbeOutput,
    repository_file: ProbeOutput,
    keyrings: ProbeOutput,
    fpm_config: ProbeOutput,
    fpm_service: ProbeOutput,
}

impl Server {
    /// A fresh server of `release` on which `packages` answered the package probe.
    fn fresh(release: &'static str, packages: ProbeOutput, version: &str) -> Self {
        Server {
            release,
            packages,
            apt_sources: grep_nothing(),
            repository_file: cat_missing(SOURCES_FILE),
            keyrings: stat_missing(KEYRINGS),
            fpm_config: cat_missing(&format!("/etc/php/{version}/fpm/conf.d/99-brokeforge.ini")),
            fpm_service: unit_not_found(),
        }
    }

    fn facts(self, input: &PhpInstallInput) -> PhpInstallFacts {
        let outputs = outputs_for::<PhpInstall>(
            input,
            vec![
                os_release_output(self.release),
                self.packages,
                self.apt_sources,
                self.repository_file,
                self.keyrings,
                self.fpm_config,
                self.fpm_service,
            ],
        );
        PhpInstall::parse_facts(input, &outputs).unwrap()
    }
}

fn fresh_debian_12(version: &str) -> Server {
    Server::fresh("debian-12", dpkg_fresh_debian_12(&["php*"]), version)
}

/// Debian 12 with PHP 8.2 and the common extensions installed by BrokeForge, FPM
/// running with BrokeForge's settings.
fn provisioned_debian_12(input: &PhpInstallInput) -> Server {
    Server {
        release: "debian-12",
        packages: ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        apt_sources: grep_nothing(),
        repository_file: cat_missing(SOURCES_FILE),
        keyrings: stat_missing(KEYRINGS),
        fpm_config: ProbeOutput::success(String::from_utf8(render_fpm_config(input).unwrap()).unwrap()),
        fpm_service: unit_running(),
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<PhpInstall>(&install_input("8.3")), @r"
    os_release: root$ cat -- /etc/os-release
    php_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' php'*' curl ca-certificates
    php_apt_sources: root$ grep -rsF '--include=*.list' '--include=*.sources' -e packages.sury.org/php -e ppa.launchpadcontent.net/ondrej/php -e ppa.launchpad.net/ondrej/php -- /etc/apt
    php_repository_file: root$ cat -- /etc/apt/sources.list.d/brokeforge-php.sources
    php_repository_keyrings: root$ stat --printf '%n %F\n' -- /etc/apt/keyrings/brokeforge-php.gpg /etc/apt/keyrings/brokeforge-php.asc
    php_fpm_config: root$ cat -- /etc/php/8.3/fpm/conf.d/99-brokeforge.ini
    php_fpm_service: root$ systemctl show -p LoadState -p ActiveState -p UnitFileState -- php8.3-fpm.service
    ");
    insta::assert_snapshot!(probe_text::<PhpExtensionInstall>(&extension_input("8.3", "redis")), @r"
    php_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' php'*'
    php_modules: root$ php8.3 -m
    ");
    insta::assert_snapshot!(probe_text::<PhpCliDefaultInstall>(&version_input("8.3")), @"php_alternatives: root$ update-alternatives --query php");
}

#[test]
fn install_8_2_on_fresh_debian_12_uses_the_distribution() {
    let input = install_input("8.2");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &fresh_debian_12("8.2").facts(&input)));
}

#[test]
fn install_8_3_on_fresh_debian_12_adds_sury() {
    let input = install_input("8.3");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &fresh_debian_12("8.3").facts(&input)));
}

#[test]
fn install_8_1_on_fresh_ubuntu_22_04_uses_the_distribution() {
    let input = install_input("8.1");
    let server = Server::fresh("ubuntu-22.04", dpkg_fresh_ubuntu_22_04(&["php*"]), "8.1");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_8_3_on_fresh_ubuntu_22_04_adds_the_ondrej_ppa() {
    let input = install_input("8.3");
    let server = Server::fresh("ubuntu-22.04", dpkg_fresh_ubuntu_22_04(&["php*"]), "8.3");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_8_3_on_fresh_ubuntu_24_04_uses_the_distribution() {
    let input = install_input("8.3");
    let server = Server::fresh("ubuntu-24.04", dpkg_fresh_ubuntu_24_04(&["php*"]), "8.3");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_8_4_on_fresh_ubuntu_24_04_adds_the_ondrej_ppa() {
    let input = install_input("8.4");
    let server = Server::fresh("ubuntu-24.04", dpkg_fresh_ubuntu_24_04(&["php*"]), "8.4");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_8_5_with_the_ppa_in_place_has_opcache_built_in() {
    let input = install_input("8.5");
    let mut server = Server::fresh("ubuntu-24.04", dpkg_fresh_ubuntu_24_04(&["php*"]), "8.5");
    let sources = brokeforge_packages::repository::ThirdPartyRepository::OndrejPhp
        .render_sources(brokeforge_packages::os::SupportedOs::Ubuntu2404)
        .unwrap();
    server.repository_file = ProbeOutput::success(String::from_utf8(sources).unwrap());
    server.apt_sources = ProbeOutput::success(
        "/etc/apt/sources.list.d/brokeforge-php.sources:URIs: https://ppa.launchpadcontent.net/ondrej/php/ubuntu/\n",
    );
    server.keyrings = ProbeOutput::new(
        1,
        "/etc/apt/keyrings/brokeforge-php.asc regular file\n",
        "stat: cannot statx '/etc/apt/keyrings/brokeforge-php.gpg': No such file or directory\n",
    );
    let plan = check_plan::<PhpInstall>(&input, &server.facts(&input));
    assert!(!plan.contains("php8.5-opcache"), "{plan}");
    assert!(!plan.contains("keyserver"), "the key is in place: {plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn install_when_present_changes_nothing() {
    let input = install_input("8.2");
    let facts = provisioned_debian_12(&input).facts(&input);
    let preview = dry_run::<PhpInstall>(&input, &facts).unwrap();
    assert!(preview.changes_nothing, "{preview}");
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &facts));
}

#[test]
fn install_with_new_settings_reloads_fpm_after_checking_it() {
    let input: PhpInstallInput = serde_json::from_str(
        r#"{"version":"8.2","fpm":{"memory_limit_mb":512,"upload_max_mb":256,"max_execution_seconds":120}}"#,
    )
    .unwrap();
    let facts = provisioned_debian_12(&install_input("8.2")).facts(&input);
    let plan = check_plan::<PhpInstall>(&input, &facts);
    assert!(plan.contains("php-fpm8.2 -t && systemctl reload php8.2-fpm"), "{plan}");
    insta::assert_snapshot!(plan);
    let rendered = String::from_utf8(render_fpm_config(&input).unwrap()).unwrap();
    insta::assert_snapshot!(rendered, @r"
    ; Written by BrokeForge: the next installation of PHP 8.2 replaces this file.
    ; PHP-FPM reads it after php.ini, so these settings win over the distribution's.
    memory_limit = 512M
    upload_max_filesize = 256M
    post_max_size = 256M
    max_execution_time = 120
    expose_php = Off
    ");
}

#[test]
fn install_restarts_a_stopped_fpm_and_enables_it() {
    let input = install_input("8.2");
    let mut server = provisioned_debian_12(&input);
    server.fpm_service = unit_stopped_and_disabled();
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_uses_a_repository_the_administrator_configured() {
    let input = install_input("8.3");
    let mut server = fresh_debian_12("8.3");
    server.apt_sources = ProbeOutput::success(fixture("grep-apt-sources-sury.txt"));
    let plan = check_plan::<PhpInstall>(&input, &server.facts(&input));
    assert!(!plan.contains("brokeforge-php.sources"), "{plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn install_brings_back_a_removed_extension_only() {
    let input = install_input("8.2");
    let mut server = provisioned_debian_12(&input);
    server.packages = ProbeOutput::success(fixture("dpkg-query-php-debian-12-gd-removed.txt"));
    insta::assert_snapshot!(check_plan::<PhpInstall>(&input, &server.facts(&input)));
}

#[test]
fn install_finishes_an_interrupted_installation_first() {
    let input = install_input("8.2");
    let mut server = fresh_debian_12("8.2");
    server.packages = ProbeOutput::success(
        "ca-certificates 20230311+deb12u1 install ok installed\ncurl 7.88.1-10+deb12u15 install ok installed\n\
         php8.2-common 8.2.36-1~deb12u1 install ok half-configured\n",
    );
    let plan = check_plan::<PhpInstall>(&input, &server.facts(&input));
    assert!(plan.contains("dpkg --configure -a"), "{plan}");
}

#[test]
fn install_on_an_unsupported_release_is_refused() {
    let input = install_input("8.3");
    let server = Server::fresh("ubuntu-20.04", dpkg_fresh_debian_12(&["php*"]), "8.3");
    let refusal = PhpInstall::plan(&input, &server.facts(&input)).unwrap_err();
    insta::assert_snapshot!(refusal, @"unsupported operating system: this server runs Ubuntu 20.04.6 LTS; BrokeForge supports Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12 (bookworm). Reinstall the server with one of those releases");
}

#[test]
fn hostile_inputs_are_refused_before_planning() {
    for json in [
        r#"{"version":"8.3; reboot"}"#,
        r#"{"version":"8.3\n"}"#,
        r#"{"version":"$(id)"}"#,
        r#"{"version":"8.3","fpm":{"memory_limit_mb":999999,"upload_max_mb":100,"max_execution_seconds":300}}"#,
        r#"{"version":"8.3","fpm":{"memory_limit_mb":"256M; x","upload_max_mb":100,"max_execution_seconds":300}}"#,
    ] {
        assert!(serde_json::from_str::<PhpInstallInput>(json).is_err(), "{json}");
    }
    assert!(serde_json::from_str::<PhpVersionInput>(r#"{"version":"8.2 && rm -rf /"}"#).is_err());
}

fn remove_facts(packages: ProbeOutput, config: ProbeOutput) -> PhpRemoveFacts {
    let input = version_input("8.2");
    let outputs = outputs_for::<PhpRemove>(&input, vec![packages, config]);
    PhpRemove::parse_facts(&input, &outputs).unwrap()
}

#[test]
fn remove_when_present() {
    let facts = remove_facts(
        ProbeOutput::success(fixture("dpkg-query-php-debian-12-gd-removed.txt")),
        ProbeOutput::success("; Written by BrokeForge\n"),
    );
    let plan = check_plan::<PhpRemove>(&version_input("8.2"), &facts);
    assert!(!plan.contains("php-common"), "other versions share php-common: {plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn remove_when_absent_changes_nothing() {
    let facts = remove_facts(
        dpkg_fresh_debian_12(&["php*"]),
        cat_missing("/etc/php/8.2/fpm/conf.d/99-brokeforge.ini"),
    );
    let preview = dry_run::<PhpRemove>(&version_input("8.2"), &facts).unwrap();
    assert!(preview.changes_nothing);
    insta::assert_snapshot!(preview.to_string());
}

fn alternatives(output: ProbeOutput) -> brokeforge_packages::php::cli::PhpAlternatives {
    parse_php_alternatives(&output).unwrap()
}

/// update-alternatives with PHP 8.2 and 8.3, 8.3 chosen by hand.
const TWO_VERSIONS_MANUAL: &str = "Name: php\nLink: /usr/bin/php\nSlaves:\n php.1.gz /usr/share/man/man1/php.1.gz\n\
Status: manual\nBest: /usr/bin/php8.3\nValue: /usr/bin/php8.3\n\n\
Alternative: /usr/bin/php8.2\nPriority: 82\nSlaves:\n php.1.gz /usr/share/man/man1/php8.2.1.gz\n\n\
Alternative: /usr/bin/php8.3\nPriority: 83\nSlaves:\n php.1.gz /usr/share/man/man1/php8.3.1.gz\n";

#[test]
fn alternatives_as_debian_12_prints_them() {
    let debian = alternatives(ProbeOutput::success(fixture("update-alternatives-php-debian-12.txt")));
    assert_eq!(debian.status, Some(AlternativeStatus::Auto));
    assert_eq!(debian.value.as_deref(), Some("/usr/bin/php8.2"));
    assert_eq!(debian.choices, ["/usr/bin/php8.2"]);
    assert_eq!(debian.current_version(), Some(brokeforge_core::PhpVersion::Php82));
    let two = alternatives(ProbeOutput::success(TWO_VERSIONS_MANUAL));
    assert_eq!(two.status, Some(AlternativeStatus::Manual));
    assert_eq!(two.choices.len(), 2);
    let none = alternatives(ProbeOutput::new(
        2,
        "",
        "update-alternatives: error: no alternatives for php\n",
    ));
    assert_eq!(none.status, None);
    assert!(none.choices.is_empty());
    assert!(parse_php_alternatives(&ProbeOutput::success("Name: php\n")).is_err());
    assert!(parse_php_alternatives(&ProbeOutput::new(2, "", "update-alternatives: error: other\n")).is_err());
}

#[test]
fn cli_default_pins_an_automatic_choice() {
    let facts = alternatives(ProbeOutput::success(fixture("update-alternatives-php-debian-12.txt")));
    insta::assert_snapshot!(check_plan::<PhpCliDefaultInstall>(&version_input("8.2"), &facts), @r"
    install php/php-cli-default as root, 2 steps
    [1/2] Setting the default PHP version
      root$ update-alternatives --set php /usr/bin/php8.2
    [2/2] Complete
      record php php-cli-default version 8.2
    ");
}

#[test]
fn cli_default_already_set_changes_nothing() {
    let facts = alternatives(ProbeOutput::success(TWO_VERSIONS_MANUAL));
    insta::assert_snapshot!(check_plan::<PhpCliDefaultInstall>(&version_input("8.3"), &facts), @r"
    install php/php-cli-default as root, 2 steps
    [1/2] Setting the default PHP version
    [2/2] Complete
      record php php-cli-default version 8.3
    nothing to change: the server is already in the state this operation leaves it in
    ");
    let switch = check_plan::<PhpCliDefaultInstall>(&version_input("8.2"), &facts);
    assert!(
        switch.contains("update-alternatives --set php /usr/bin/php8.2"),
        "{switch}"
    );
}

#[test]
fn cli_default_of_a_missing_version_is_refused() {
    let facts = alternatives(ProbeOutput::success(fixture("update-alternatives-php-debian-12.txt")));
    let refusal = PhpCliDefaultInstall::plan(&version_input("8.4"), &facts).unwrap_err();
    insta::assert_snapshot!(refusal, @"PHP 8.4 is not installed on this server; install it before making it the default");
}

fn extension_input(version: &str, extension: &str) -> PhpExtensionInput {
    serde_json::from_str(&format!(r#"{{"version":"{version}","extension":"{extension}"}}"#)).unwrap()
}

fn extension_facts(input: &PhpExtensionInput, packages: ProbeOutput, modules: ProbeOutput) -> PhpExtensionFacts {
    let outputs = outputs_for::<PhpExtensionInstall>(input, vec![packages, modules]);
    PhpExtensionInstall::parse_facts(input, &outputs).unwrap()
}

fn debian_12_extension_facts(input: &PhpExtensionInput, php_m: &str) -> PhpExtensionFacts {
    extension_facts(
        input,
        ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        ProbeOutput::success(fixture(php_m)),
    )
}

#[test]
fn php_modules_as_php_8_2_lists_them() {
    let modules = parse_php_modules(&ProbeOutput::success(fixture("php-m-8.2-debian-12.txt")))
        .unwrap()
        .unwrap();
    assert!(modules.contains("Zend OPcache") && modules.contains("simplexml") && modules.contains("pdo_mysql"));
    assert!(!modules.contains("redis"));
    assert_eq!(modules.as_slice().first().map(String::as_str), Some("bcmath"));
    let missing = ProbeOutput::new(127, "", "bash: line 1: php8.3: command not found\n");
    assert_eq!(parse_php_modules(&missing).unwrap(), None);
    assert!(parse_php_modules(&ProbeOutput::success("PHP Warning: broken\n")).is_err());
    assert!(parse_php_modules(&ProbeOutput::new(255, "", "PHP Fatal error\n")).is_err());
    assert!(PhpModules::new(["Zend OPcache"]).contains_all(&["zend opcache"]));
}

#[test]
fn extension_install_when_absent() {
    let input = extension_input("8.2", "redis");
    let facts = debian_12_extension_facts(&input, "php-m-8.2-debian-12.txt");
    insta::assert_snapshot!(check_plan::<PhpExtensionInstall>(&input, &facts));
}

#[test]
fn extension_install_turns_a_disabled_extension_back_on() {
    let input = extension_input("8.2", "mysql");
    let facts = debian_12_extension_facts(&input, "php-m-8.2-debian-12-without-mysql.txt");
    let plan = check_plan::<PhpExtensionInstall>(&input, &facts);
    assert!(!plan.contains("apt-get"), "the package is installed: {plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn extension_install_when_present_changes_nothing() {
    let input = extension_input("8.2", "xml");
    let facts = debian_12_extension_facts(&input, "php-m-8.2-debian-12.txt");
    assert!(dry_run::<PhpExtensionInstall>(&input, &facts).unwrap().changes_nothing);
    insta::assert_snapshot!(check_plan::<PhpExtensionInstall>(&input, &facts));
}

#[test]
fn extension_loaded_from_an_unversioned_package_counts_as_present() {
    // On the distribution's PHP, PECL extensions come from php-redis, which provides
    // php8.2-redis; php -m is the fact that shows it.
    let input = extension_input("8.2", "redis");
    let mut php_m = fixture("php-m-8.2-debian-12.txt");
    php_m = php_m.replace("readline\n", "readline\nredis\n");
    let facts = extension_facts(
        &input,
        ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        ProbeOutput::success(php_m),
    );
    assert!(dry_run::<PhpExtensionInstall>(&input, &facts).unwrap().changes_nothing);
}

#[test]
fn extension_install_without_that_php_is_refused() {
    let input = extension_input("8.4", "redis");
    let facts = extension_facts(
        &input,
        ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        ProbeOutput::new(127, "", "bash: line 1: php8.4: command not found\n"),
    );
    insta::assert_snapshot!(PhpExtensionInstall::plan(&input, &facts).unwrap_err(), @"PHP 8.4 is not installed on this server; install it before adding extensions");
}

#[test]
fn extension_remove_when_present() {
    let input = extension_input("8.2", "mysql");
    let facts = debian_12_extension_facts(&input, "php-m-8.2-debian-12.txt");
    insta::assert_snapshot!(check_plan::<PhpExtensionRemove>(&input, &facts));
}

#[test]
fn extension_remove_when_absent_changes_nothing() {
    let input = extension_input("8.2", "redis");
    let facts = debian_12_extension_facts(&input, "php-m-8.2-debian-12.txt");
    insta::assert_snapshot!(check_plan::<PhpExtensionRemove>(&input, &facts));
}

#[test]
fn a_built_in_extension_cannot_be_removed() {
    let input = extension_input("8.5", "opcache");
    let facts = extension_facts(
        &input,
        ProbeOutput::success("php8.5-cli 8.5.0-1+ubuntu24.04.1+deb.sury.org+1 install ok installed\n"),
        ProbeOutput::success("[PHP Modules]\nCore\nZend OPcache\n\n[Zend Modules]\nZend OPcache\n"),
    );
    insta::assert_snapshot!(PhpExtensionRemove::plan(&input, &facts).unwrap_err(), @"opcache is part of PHP 8.5 itself and cannot be removed");
    assert!(dry_run::<PhpExtensionInstall>(&input, &facts).unwrap().changes_nothing);
    assert_eq!(PhpExtension::Opcache.package(brokeforge_core::PhpVersion::Php85), None);
}

//! Node.js and Composer: plan snapshots for the distribution's packages, NodeSource for
//! a major the release does not ship, Composer's verified official installer when the
//! distribution's package would pull in another PHP, provisioned servers (no-op), and
//! refusals.

mod common;

use brokeforge_packages::composer::{ComposerFacts, ComposerInstall, ComposerInstallInput};
use brokeforge_packages::nodejs::{NodeJsFacts, NodeJsInstall, NodeJsInstallInput};
use brokeforge_packages::{Operation, ProbeOutput, dry_run};
use common::outputs::{cat_missing, grep_nothing, stat_missing};
use common::{check_plan, fixture, os_release_output, outputs_for, probe_text};

const NODESOURCE_FILE: &str = "/etc/apt/sources.list.d/brokeforge-nodesource.sources";
const NODESOURCE_KEYRING: &str = "/etc/apt/keyrings/brokeforge-nodesource.asc";

fn node_input(json: &str) -> NodeJsInstallInput {
    serde_json::from_str(json).unwrap()
}

fn node_facts(release: &str, packages: ProbeOutput) -> NodeJsFacts {
    let input = NodeJsInstallInput::default();
    let outputs = outputs_for::<NodeJsInstall>(
        &input,
        vec![
            os_release_output(release),
            packages,
            grep_nothing(),
            cat_missing(NODESOURCE_FILE),
            stat_missing(&[NODESOURCE_KEYRING]),
        ],
    );
    NodeJsInstall::parse_facts(&input, &outputs).unwrap()
}

/// dpkg-query for nodejs, npm, curl and ca-certificates on a fresh Debian 12 server.
fn fresh_debian_12_node() -> ProbeOutput {
    ProbeOutput::new(
        1,
        "ca-certificates 20230311+deb12u1 install ok installed\ncurl 7.88.1-10+deb12u15 install ok installed\n",
        "dpkg-query: no packages found matching nodejs\ndpkg-query: no packages found matching npm\n",
    )
}

/// The same after `apt-get install nodejs npm` from Debian 12.
fn debian_12_distro_node() -> ProbeOutput {
    ProbeOutput::success(
        "ca-certificates 20230311+deb12u1 install ok installed\ncurl 7.88.1-10+deb12u15 install ok installed\n\
         nodejs 18.19.0+dfsg-6~deb12u2 install ok installed\nnpm 9.2.0~ds1-1 install ok installed\n",
    )
}

/// The same after installing NodeSource's Node.js 22, which bundles npm.
fn nodesource_22() -> ProbeOutput {
    ProbeOutput::new(
        1,
        "ca-certificates 20230311+deb12u1 install ok installed\ncurl 7.88.1-10+deb12u15 install ok installed\n\
         nodejs 22.11.0-1nodesource1 install ok installed\n",
        "dpkg-query: no packages found matching npm\n",
    )
}

#[test]
fn node_probes() {
    insta::assert_snapshot!(probe_text::<NodeJsInstall>(&NodeJsInstallInput::default()), @r"
    os_release: root$ cat -- /etc/os-release
    nodejs_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' nodejs npm curl ca-certificates
    nodesource_apt_sources: root$ grep -rsF '--include=*.list' '--include=*.sources' -e deb.nodesource.com -- /etc/apt
    nodesource_repository_file: root$ cat -- /etc/apt/sources.list.d/brokeforge-nodesource.sources
    nodesource_repository_keyrings: root$ stat --printf '%n %F\n' -- /etc/apt/keyrings/brokeforge-nodesource.asc
    ");
}

#[test]
fn node_default_on_fresh_debian_12_uses_the_distribution() {
    insta::assert_snapshot!(check_plan::<NodeJsInstall>(
        &NodeJsInstallInput::default(),
        &node_facts("debian-12", fresh_debian_12_node())
    ));
}

#[test]
fn node_18_on_debian_12_is_the_distribution_s() {
    let plan = check_plan::<NodeJsInstall>(
        &node_input(r#"{"version":18}"#),
        &node_facts("debian-12", fresh_debian_12_node()),
    );
    assert!(!plan.contains("nodesource"), "{plan}");
}

#[test]
fn node_22_on_fresh_debian_12_comes_from_nodesource() {
    insta::assert_snapshot!(check_plan::<NodeJsInstall>(
        &node_input(r#"{"version":22}"#),
        &node_facts("debian-12", fresh_debian_12_node())
    ));
}

#[test]
fn node_22_replaces_the_distribution_s_18() {
    insta::assert_snapshot!(check_plan::<NodeJsInstall>(
        &node_input(r#"{"version":22}"#),
        &node_facts("debian-12", debian_12_distro_node())
    ));
}

#[test]
fn node_when_present_changes_nothing() {
    let facts = node_facts("debian-12", nodesource_22());
    for input in [node_input(r#"{"version":22}"#), NodeJsInstallInput::default()] {
        let preview = dry_run::<NodeJsInstall>(&input, &facts).unwrap();
        assert!(preview.changes_nothing, "{preview}");
    }
    let facts = node_facts("debian-12", debian_12_distro_node());
    insta::assert_snapshot!(check_plan::<NodeJsInstall>(&NodeJsInstallInput::default(), &facts));
}

#[test]
fn node_default_on_ubuntu_22_04_is_node_12() {
    let packages = ProbeOutput::new(
        1,
        "ca-certificates 20240203~22.04.1 install ok installed\ncurl 7.81.0-1ubuntu1.20 install ok installed\n",
        "dpkg-query: no packages found matching nodejs\ndpkg-query: no packages found matching npm\n",
    );
    let plan = check_plan::<NodeJsInstall>(&NodeJsInstallInput::default(), &node_facts("ubuntu-22.04", packages));
    assert!(
        plan.contains("record runtime nodejs version 12 {\"source\":\"distro\"}"),
        "{plan}"
    );
}

#[test]
fn node_downgrades_are_refused() {
    let facts = node_facts("debian-12", nodesource_22());
    let refusal = NodeJsInstall::plan(&node_input(r#"{"version":20}"#), &facts).unwrap_err();
    insta::assert_snapshot!(refusal, @"Node.js 22 is installed, which is newer than the requested 20; BrokeForge does not downgrade Node.js. Keep 22, or remove Node.js first");
    assert!(serde_json::from_str::<NodeJsInstallInput>(r#"{"version":"22; curl x | sh"}"#).is_err());
    assert!(serde_json::from_str::<NodeJsInstallInput>(r#"{"version":16}"#).is_err());
}

fn composer_input(version: &str) -> ComposerInstallInput {
    serde_json::from_str(&format!(r#"{{"php_version":"{version}"}}"#)).unwrap()
}

fn composer_facts(release: &str, packages: ProbeOutput, php_sources: ProbeOutput, local: ProbeOutput) -> ComposerFacts {
    let input = composer_input("8.2");
    let outputs =
        outputs_for::<ComposerInstall>(&input, vec![os_release_output(release), packages, php_sources, local]);
    ComposerInstall::parse_facts(&input, &outputs).unwrap()
}

fn no_local_composer() -> ProbeOutput {
    stat_missing(&["/usr/local/bin/composer"])
}

#[test]
fn composer_probes() {
    insta::assert_snapshot!(probe_text::<ComposerInstall>(&composer_input("8.3")), @r"
    os_release: root$ cat -- /etc/os-release
    composer_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' php'*' composer curl ca-certificates unzip git
    php_apt_sources: root$ grep -rsF '--include=*.list' '--include=*.sources' -e packages.sury.org/php -e ppa.launchpadcontent.net/ondrej/php -e ppa.launchpad.net/ondrej/php -- /etc/apt
    composer_local_binary: root$ stat --printf '%n %F\n' -- /usr/local/bin/composer
    ");
}

#[test]
fn composer_with_the_distribution_s_php_uses_the_distribution_package() {
    let facts = composer_facts(
        "debian-12",
        ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        grep_nothing(),
        no_local_composer(),
    );
    insta::assert_snapshot!(check_plan::<ComposerInstall>(&composer_input("8.2"), &facts));
}

#[test]
fn composer_with_a_php_repository_uses_the_verified_installer() {
    // The distribution's composer depends on php-cli, which sury points at its newest
    // PHP: the official installer avoids pulling in another PHP version.
    let packages = fixture("dpkg-query-php-debian-12.txt").replace("php8.2-", "php8.3-");
    let facts = composer_facts(
        "debian-12",
        ProbeOutput::success(packages),
        ProbeOutput::success("/etc/apt/sources.list.d/brokeforge-php.sources:URIs: https://packages.sury.org/php/\n"),
        no_local_composer(),
    );
    let plan = check_plan::<ComposerInstall>(&composer_input("8.3"), &facts);
    let download = plan.find("installer.sig").unwrap();
    let verify = plan.find("sha384sum --check --strict").unwrap();
    let run = plan
        .find("php8.3 /var/cache/brokeforge/composer/composer-setup.php")
        .unwrap();
    assert!(
        download < verify && verify < run,
        "the check comes between download and run:\n{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn composer_when_present_changes_nothing() {
    let from_installer = composer_facts(
        "debian-12",
        ProbeOutput::success(fixture("dpkg-query-php-debian-12.txt")),
        grep_nothing(),
        ProbeOutput::success("/usr/local/bin/composer regular file\n"),
    );
    let preview = dry_run::<ComposerInstall>(&composer_input("8.2"), &from_installer).unwrap();
    assert!(preview.changes_nothing, "{preview}");
    insta::assert_snapshot!(check_plan::<ComposerInstall>(&composer_input("8.2"), &from_installer));
    let packages = format!(
        "{}composer 2.5.5-1+deb12u5 install ok installed\n",
        fixture("dpkg-query-php-debian-12.txt")
    );
    let from_distribution = composer_facts(
        "debian-12",
        ProbeOutput::success(packages),
        grep_nothing(),
        no_local_composer(),
    );
    assert!(
        dry_run::<ComposerInstall>(&composer_input("8.2"), &from_distribution)
            .unwrap()
            .changes_nothing
    );
}

#[test]
fn composer_without_its_php_is_refused() {
    let facts = composer_facts(
        "ubuntu-24.04",
        ProbeOutput::new(
            1,
            "curl 8.5.0-2ubuntu10.6 install ok installed\n",
            "dpkg-query: no packages found matching php*\n",
        ),
        grep_nothing(),
        no_local_composer(),
    );
    insta::assert_snapshot!(ComposerInstall::plan(&composer_input("8.3"), &facts).unwrap_err(), @"PHP 8.3 is not installed on this server; install it before Composer");
}

//! OS facts: `/etc/os-release` of each supported release and of unsupported ones, the
//! typed release they become, and the refusal that names what was found.

mod common;

use brokeforge_core::PhpVersion;
use brokeforge_packages::os::{self, Distribution, OsRelease, SupportedOs, parse_os_release, parse_os_release_text};
use brokeforge_packages::{FactError, ProbeOutput, ProbeOutputs};
use common::{fixture, os_release_output};

fn parse(release: &str) -> OsRelease {
    parse_os_release(&os_release_output(release)).unwrap()
}

#[test]
fn the_probe_reads_the_file() {
    assert_eq!(os::os_release_cmd().to_string(), "cat -- /etc/os-release");
}

#[test]
fn debian_12() {
    let release = parse("debian-12");
    assert_eq!(
        release,
        OsRelease {
            id: "debian".to_owned(),
            version_id: Some("12".to_owned()),
            version_codename: Some("bookworm".to_owned()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".to_owned()),
        }
    );
    let supported = release.supported().unwrap();
    assert_eq!(supported, SupportedOs::Debian12);
    assert_eq!(supported.distribution(), Distribution::Debian);
    assert_eq!(supported.codename(), "bookworm");
    assert_eq!(supported.distro_php_version(), PhpVersion::Php82);
}

#[test]
fn ubuntu_22_04() {
    let release = parse("ubuntu-22.04");
    assert_eq!(release.pretty_name.as_deref(), Some("Ubuntu 22.04.5 LTS"));
    assert_eq!(release.version_codename.as_deref(), Some("jammy"));
    let supported = release.supported().unwrap();
    assert_eq!(supported, SupportedOs::Ubuntu2204);
    assert_eq!(supported.distribution(), Distribution::Ubuntu);
    assert_eq!(supported.distro_php_version(), PhpVersion::Php81);
    assert!(!supported.nginx_rejects_tls_handshakes());
}

#[test]
fn ubuntu_24_04() {
    let release = parse("ubuntu-24.04");
    assert_eq!(release.version_id.as_deref(), Some("24.04"));
    let supported = release.supported().unwrap();
    assert_eq!(supported, SupportedOs::Ubuntu2404);
    assert_eq!(supported.codename(), "noble");
    assert_eq!(supported.distro_php_version(), PhpVersion::Php83);
    assert_eq!(supported.distro_node_major(), 18);
}

#[test]
fn unsupported_releases_are_named_with_what_is_supported() {
    insta::assert_snapshot!(parse("ubuntu-20.04").supported().unwrap_err(), @"unsupported operating system: this server runs Ubuntu 20.04.6 LTS; BrokeForge supports Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12 (bookworm). Reinstall the server with one of those releases");
    let rocky = parse("rocky-9");
    assert_eq!(rocky.id, "rocky");
    assert_eq!(rocky.version_id.as_deref(), Some("9.4"));
    insta::assert_snapshot!(rocky.supported().unwrap_err(), @"unsupported operating system: this server runs Rocky Linux 9.4 (Blue Onyx); BrokeForge supports Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12 (bookworm). Reinstall the server with one of those releases");
}

#[test]
fn a_release_without_pretty_name_is_described_by_id_and_version() {
    let trixie = parse_os_release_text("ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n").unwrap();
    assert_eq!(trixie.describe(), "debian 13");
    assert!(
        trixie
            .supported()
            .unwrap_err()
            .to_string()
            .contains("this server runs debian 13;")
    );
    let bare = parse_os_release_text("# no ID at all\n").unwrap();
    assert_eq!(bare.id, "linux");
    assert!(bare.supported().is_err());
}

#[test]
fn quoting_and_comments_are_read_like_the_shell_would() {
    let text = "# comment\nID='ubuntu'\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu \\\"Noble\\\" \\$HOME\"\n\n";
    let release = parse_os_release_text(text).unwrap();
    assert_eq!(release.pretty_name.as_deref(), Some("Ubuntu \"Noble\" $HOME"));
    assert_eq!(release.supported(), Ok(SupportedOs::Ubuntu2404));
}

#[test]
fn unreadable_or_malformed_files_are_errors_that_say_why() {
    let outputs: ProbeOutputs = [
        (
            "missing",
            ProbeOutput::new(1, "", "cat: /etc/os-release: No such file or directory\n"),
        ),
        ("broken", ProbeOutput::success("ID=debian\nthis is not a pair\n")),
        ("open_quote", ProbeOutput::success("ID=\"debian\n")),
    ]
    .into_iter()
    .collect();
    let error = |key| -> FactError { outputs.read(key, parse_os_release).unwrap_err() };
    insta::assert_snapshot!(error("missing"), @r#"cannot read "missing" from the server: cannot read /etc/os-release (exit code 1; stderr: cat: /etc/os-release: No such file or directory)"#);
    insta::assert_snapshot!(error("broken"), @r#"cannot read "broken" from the server: line 2 of /etc/os-release is not KEY=value: "this is not a pair" (exit code 0)"#);
    insta::assert_snapshot!(error("open_quote"), @r#"cannot read "open_quote" from the server: the value of ID is not closed: "\"debian" (exit code 0)"#);
}

#[test]
fn every_fixture_parses() {
    for release in ["debian-12", "ubuntu-22.04", "ubuntu-24.04", "ubuntu-20.04", "rocky-9"] {
        let text = fixture(&format!("os-release-{release}.txt"));
        assert!(parse_os_release_text(&text).is_ok(), "{release}");
    }
}

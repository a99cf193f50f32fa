//! WordPress: probes and plan snapshots (a fresh site, one already installed, one
//! whose `wp-config.php` is missing), the rendered `wp-config.php` through a real
//! `php -l` and read back by `php -r` with hostile values (Debian package
//! `php8.2-cli`; the tests fail without it), and the whole plan run for real on a
//! stand-in server against a local HTTP server: the release is built and goes live
//! with `wp-config.php` and the uploads in `shared/`, running it again changes
//! nothing, and a download whose SHA-1 checksum does not match stops at the check
//! step with both values named and nothing live.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use brokeforge_core::{Domain, Secret, Step};
use brokeforge_packages::site::wordpress::{WordPressFacts, WordPressInstall, WordPressInstallInput};
use brokeforge_packages::site::wp_config::{
    DatabasePassword, DownloadUrl, SALT_ALPHABET, SALT_LENGTH, WordPressDatabase, WordPressSalts, render_wp_config,
};
use brokeforge_packages::site::{ReleaseId, SiteLayout};
use brokeforge_packages::{Operation, dry_run};
use brokeforge_testkit::FileServer;
use common::sandbox::{FakeServer, TempDir, describe};
use common::{check_plan, probe_text};

const RELEASE: &str = "20261128100000";

fn domain(text: &str) -> Domain {
    text.parse().unwrap()
}

/// Eight keys and salts cycling through the whole alphabet, so every character of it
/// (quotes, `$`, `?>`) appears in the file.
fn salts() -> WordPressSalts {
    let values: Vec<String> = (0..8)
        .map(|index| {
            (0..SALT_LENGTH)
                .map(|position| SALT_ALPHABET[(index * 11 + position) % SALT_ALPHABET.len()] as char)
                .collect()
        })
        .collect();
    WordPressSalts::new(Secret::new(values)).unwrap()
}

fn database() -> WordPressDatabase {
    serde_json::from_value(serde_json::json!({
        "name": "shop_wp", "user": "shop.user", "host": "db.internal:3306", "table_prefix": "shop_"
    }))
    .unwrap()
}

/// A password with everything a PHP single-quoted string treats specially, and more.
const HOSTILE_PASSWORD: &str = r#"it's a \'tricky\' \\ "pass" $x {$y} ?> <?php echo 1; \"#;

fn input(name: &str, url: &str) -> WordPressInstallInput {
    WordPressInstallInput {
        domain: domain(name),
        release: RELEASE.parse().unwrap(),
        download_url: url.parse().unwrap(),
        database: database(),
        password: DatabasePassword::new(Secret::new(HOSTILE_PASSWORD.to_owned())).unwrap(),
        salts: salts(),
    }
}

fn fresh() -> WordPressFacts {
    WordPressFacts {
        site_exists: true,
        releases: Vec::new(),
        current: None,
        config_exists: false,
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<WordPressInstall>(&input(
        "example.com",
        DownloadUrl::WORDPRESS_ORG
    )));
}

#[test]
fn install_on_a_fresh_site() {
    let input = input("example.com", DownloadUrl::WORDPRESS_ORG);
    let text = check_plan::<WordPressInstall>(&input, &fresh());
    assert!(!text.contains("hunter") && !text.contains("tricky"), "{text}");
    assert!(
        text.contains(
            "upload /home/brokeforge/example.com/shared/wp-config.php as brokeforge (secret contents, mode 0600)"
        ),
        "{text}"
    );
    insta::assert_snapshot!(text);
    // The file is secret: its text is scrubbed from any output of the plan.
    let plan = WordPressInstall::plan(&input, &fresh()).unwrap();
    assert!(plan.secrets().iter().any(|secret| secret.contains("tricky")));
}

#[test]
fn a_site_with_a_live_release_keeps_it() {
    let input = input("example.com", DownloadUrl::WORDPRESS_ORG);
    let live = WordPressFacts {
        site_exists: true,
        releases: vec![brokeforge_packages::site::deploy::ReleaseState {
            id: "20261101000000".parse().unwrap(),
            finished: true,
        }],
        current: Some("20261101000000".parse().unwrap()),
        config_exists: true,
    };
    let plan = WordPressInstall::plan(&input, &live).unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert!(dry_run::<WordPressInstall>(&input, &live).unwrap().changes_nothing);
    let text = check_plan::<WordPressInstall>(&input, &live);
    assert!(text.contains(r#""release":"20261101000000""#), "{text}");

    // Only a missing wp-config.php is written.
    let mut no_config = live.clone();
    no_config.config_exists = false;
    let text = check_plan::<WordPressInstall>(&input, &no_config);
    assert!(!text.contains("curl") && !text.contains("tar"), "{text}");
    assert!(
        text.contains("wp-config.php as brokeforge (secret contents, mode 0600)"),
        "{text}"
    );

    // `current` naming a release that is gone builds one.
    let mut dangling = live;
    dangling.releases.clear();
    assert!(check_plan::<WordPressInstall>(&input, &dangling).contains("curl"));
    let missing = WordPressFacts {
        site_exists: false,
        ..fresh()
    };
    assert!(
        WordPressInstall::plan(&input, &missing)
            .unwrap_err()
            .to_string()
            .contains("install the site first")
    );
}

/// Runs `php` with `args`, failing with its output when it fails.
fn php(args: &[&str]) -> String {
    let output = Command::new("php")
        .args(args)
        .output()
        .expect("php is installed (Debian package php8.2-cli)");
    assert!(output.status.success(), "php {args:?}\n{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Reads the constants of the `wp-config.php` at `file` with `php -r`, ABSPATH
/// pointing at an empty `wp-settings.php` so WordPress itself does not start.
fn read_config(file: &str, stub: &TempDir) -> serde_json::Value {
    std::fs::write(stub.path().join("wp-settings.php"), "<?php\n").unwrap();
    let code = format!(
        "define('ABSPATH', '{}/'); include '{file}'; echo json_encode([DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, \
         $table_prefix, AUTH_KEY, SECURE_AUTH_KEY, LOGGED_IN_KEY, NONCE_KEY, AUTH_SALT, SECURE_AUTH_SALT, \
         LOGGED_IN_SALT, NONCE_SALT]);",
        stub.text()
    );
    serde_json::from_str(&php(&["-r", &code])).unwrap()
}

#[test]
fn the_rendered_wp_config_parses_and_holds_the_values_exactly() {
    let dir = TempDir::new("wp-config");
    let layout = SiteLayout::new(&domain("example.com"));
    let password = DatabasePassword::new(Secret::new(HOSTILE_PASSWORD.to_owned())).unwrap();
    let contents = render_wp_config(&layout, &database(), &password, &salts()).unwrap();
    let file = dir.join("wp-config.php");
    std::fs::write(&file, contents.expose()).unwrap();
    assert!(php(&["-l", &file]).contains("No syntax errors detected"));
    let values = read_config(&file, &TempDir::new("wp-stub"));
    let mut expected = vec![
        "shop_wp".to_owned(),
        "shop.user".to_owned(),
        HOSTILE_PASSWORD.to_owned(),
        "db.internal:3306".to_owned(),
        "shop_".to_owned(),
    ];
    expected.extend(salts().secret().expose().iter().cloned());
    assert_eq!(values, serde_json::json!(expected));
    let text = String::from_utf8(contents.expose().clone()).unwrap();
    assert!(
        text.contains("define( 'ABSPATH', '/home/brokeforge/example.com/current/' );"),
        "{text}"
    );
}

/// A directory named `wordpress` with enough of WordPress to pass the unpacking
/// check, packed as wordpress.org packs it, with its SHA-1.
fn archive(dir: &TempDir) -> (Vec<u8>, String) {
    let top = dir.path().join("src/wordpress");
    std::fs::create_dir_all(top.join("wp-content/themes/plain")).unwrap();
    std::fs::write(top.join("wp-settings.php"), "<?php\n// settings\n").unwrap();
    std::fs::write(top.join("wp-config-sample.php"), "<?php\n// sample\n").unwrap();
    std::fs::write(top.join("index.php"), "<?php\necho 'WordPress';\n").unwrap();
    std::fs::write(top.join("wp-content/themes/plain/style.css"), "body {}\n").unwrap();
    let tarball = dir.join("latest.tar.gz");
    let output = Command::new("tar")
        .args(["-czf", &tarball, "-C", &dir.join("src"), "wordpress"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let output = Command::new("sha1sum").arg(&tarball).output().unwrap();
    let digest = String::from_utf8(output.stdout).unwrap()[..40].to_owned();
    (std::fs::read(&tarball).unwrap(), digest)
}

/// The site's directory as installing the site leaves it.
fn site_directory(server: &FakeServer, name: &str) -> String {
    let root = format!("{}/{name}", server.home);
    for sub in ["releases", "shared"] {
        std::fs::create_dir_all(format!("{root}/{sub}")).unwrap();
    }
    root
}

#[test]
fn the_plan_builds_a_live_release_and_a_bad_checksum_stops_it() {
    let work = TempDir::new("wordpress-archive");
    let (tarball, digest) = archive(&work);
    let files = FileServer::start(vec![
        ("/latest.tar.gz".to_owned(), tarball.clone()),
        ("/latest.tar.gz.sha1".to_owned(), digest.clone().into_bytes()),
        ("/tampered.tar.gz".to_owned(), tarball),
        (
            "/tampered.tar.gz.sha1".to_owned(),
            format!("{}  tampered.tar.gz\n", "0".repeat(40)).into_bytes(),
        ),
    ]);
    let server = FakeServer::new("wordpress");

    let root = site_directory(&server, "shop.example.com");
    let good = input("shop.example.com", &files.url("/latest.tar.gz"));
    let run = server.operate::<WordPressInstall>(&good);
    assert!(run.failure.is_none(), "{}", run.failure_text());
    let release = format!("{root}/releases/{RELEASE}");
    assert_eq!(
        std::fs::read_link(format!("{root}/current")).unwrap(),
        Path::new(&format!("releases/{RELEASE}"))
    );
    assert!(Path::new(&format!("{release}/wp-settings.php")).is_file());
    assert!(Path::new(&format!("{release}/.brokeforge-release")).is_file());
    assert_eq!(
        std::fs::read_link(format!("{release}/wp-config.php")).unwrap(),
        Path::new(&format!("{root}/shared/wp-config.php"))
    );
    assert_eq!(
        std::fs::read_link(format!("{release}/wp-content/uploads")).unwrap(),
        Path::new(&format!("{root}/shared/wp-content/uploads"))
    );
    assert!(Path::new(&format!("{root}/shared/wp-content/uploads")).is_dir());
    let config = format!("{root}/shared/wp-config.php");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(php(&["-l", &format!("{release}/wp-config.php")]).contains("No syntax errors detected"));
    assert_eq!(read_config(&config, &TempDir::new("wp-stub"))[0], "shop_wp");
    let downloads: Vec<_> = std::fs::read_dir(format!("{root}/.brokeforge")).unwrap().collect();
    assert!(downloads.is_empty(), "the download is removed once unpacked");
    assert_eq!(files.requests(), ["/latest.tar.gz", "/latest.tar.gz.sha1"]);

    // Running it again changes nothing, and an edited wp-config.php stays as it is.
    std::fs::write(&config, "<?php // edited\n").unwrap();
    let facts = server.facts::<WordPressInstall>(&good);
    assert_eq!(facts.live().map(ReleaseId::as_str), Some(RELEASE));
    assert!(WordPressInstall::plan(&good, &facts).unwrap().is_noop());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "<?php // edited\n");

    // A download that does not match its published checksum.
    let root = site_directory(&server, "blog.example.com");
    let tampered = input("blog.example.com", &files.url("/tampered.tar.gz"));
    let plan = WordPressInstall::plan(&tampered, &server.facts::<WordPressInstall>(&tampered)).unwrap();
    let run = server.run(&plan);
    let (command, output) = run.failure.as_ref().expect("the check fails");
    assert!(command.starts_with("sh -c "), "{command}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the download of {} does not match its published SHA-1 checksum (expected {}, got {digest}); nothing was \
             installed",
            files.url("/tampered.tar.gz"),
            "0".repeat(40)
        )),
        "{stderr}"
    );
    // The failing step is the check's, under its milestone.
    let failed_step = plan
        .steps()
        .iter()
        .position(
            |step| matches!(step, Step::Run { cmd, .. } if server.localize(&cmd.render_for_execution()) == *command),
        )
        .unwrap();
    let milestone = plan.steps()[..failed_step]
        .iter()
        .rev()
        .find_map(|step| match step {
            Step::Milestone { label, .. } => Some(*label),
            _ => None,
        })
        .unwrap();
    assert_eq!(milestone, "Checking the download against its published SHA-1 checksum");
    assert!(
        std::fs::symlink_metadata(format!("{root}/current")).is_err(),
        "nothing went live"
    );
    assert!(!Path::new(&format!("{root}/releases/{RELEASE}/wp-settings.php")).exists());
    assert!(
        std::fs::read_dir(format!("{root}/.brokeforge"))
            .unwrap()
            .next()
            .is_none()
    );

    // A download that is not there fails at the download.
    let missing = input("blog.example.com", &files.url("/missing.tar.gz"));
    let run = server.operate::<WordPressInstall>(&missing);
    let (command, output) = run.failure.expect("curl fails");
    assert!(command.starts_with("curl "), "{command}");
    assert_eq!(output.status.code(), Some(22), "{}", describe(&output));
}

#[test]
fn the_scripts_pass_shellcheck() {
    let archive: brokeforge_core::RemotePath = "/a.tar.gz".parse().unwrap();
    let url: DownloadUrl = DownloadUrl::WORDPRESS_ORG.parse().unwrap();
    for cmd in [
        brokeforge_packages::site::wordpress::verify_checksum_cmd(&archive, &"/a.tar.gz.sha1".parse().unwrap(), &url),
        brokeforge_packages::site::wordpress::unpack_cmd(&archive, &"/release".parse().unwrap()),
    ] {
        let text = cmd.to_string();
        common::sandbox::shellcheck(text.split('\'').nth(1).unwrap(), "sh");
    }
}

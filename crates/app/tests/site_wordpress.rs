//! WordPress end to end against a real OpenSSH server, through the job queue: a
//! WordPress site's `site.wordpress` job downloads real WordPress (Debian's `wordpress`
//! package, fetched with `apt-get download` and packed as wordpress.org packs it:
//! `wordpress/` at the top, a `.sha1` next to it) from a local HTTP server standing in
//! for wordpress.org, checks its SHA-1, unpacks it into the site's first release and
//! writes `wp-config.php`: the file on the server passes `php -l`, `php -r` reads
//! `DB_NAME` and the password back exactly, it is linked into the release from
//! `shared/`, and the password reaches no event, audit row or job payload. A download
//! whose published checksum does not match fails the job at the check step, with both
//! values in the step's error output, and nothing goes live.
//!
//! As in `site_deployments.rs`, the test account of the test kit stands in for
//! brokeforge (both roles log in as it) and owns `/home/brokeforge/<domain>`, which
//! the site's installation would make; that installation needs root, so its job is
//! reported as succeeded instead.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use brokeforge_app::sites::{self, SiteInput};
use brokeforge_app::wordpress::WORDPRESS_KIND;
use brokeforge_core::{Cmd, RemoteUser, Secret, ShellArg};
use brokeforge_db::with_pool;
use brokeforge_queue::{JobId, JobState};
use brokeforge_testkit::FileServer;
use common::{Package, RemoveOnDrop, SshFixture, unique_domain};
use serde_json::json;

/// What provisioning left on the server that WordPress sites need.
const PACKAGES: &[Package] = &[
    ("webserver", "nginx", "", "1.22"),
    ("php", "php", "8.2", "8.2"),
    ("php", "php-cli-default", "", "8.2"),
];

/// The directories of a site that installing it would make: `releases/` and `shared/`.
const SITE_LAYOUT: &[&str] = &["releases", "shared"];

/// How long a WordPress job may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(180);

/// A password with everything PHP's single-quoted strings treat specially.
const PASSWORD: &str = r"wp-'quoted'-\back\slash\-$dollar-?>";

/// Debian's WordPress, packed as wordpress.org packs it, and its SHA-1: made once per
/// test process from the `.deb` that `apt-get download` fetches (kept between runs in
/// the temporary directory).
fn wordpress_tarball() -> &'static (Vec<u8>, String) {
    static TARBALL: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    TARBALL.get_or_init(|| {
        let cache = std::env::temp_dir().join("brokeforge-test-wordpress-deb");
        std::fs::create_dir_all(&cache).unwrap();
        let find_deb = || {
            std::fs::read_dir(&cache)
                .unwrap()
                .flatten()
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|extension| extension == "deb"))
        };
        if find_deb().is_none() {
            let download = || {
                Command::new("apt-get")
                    .args(["download", "-qq", "wordpress"])
                    .current_dir(&cache)
                    .output()
                    .expect("apt-get runs")
            };
            let mut output = download();
            if !output.status.success() {
                // The package lists may be missing on a fresh machine.
                let update = Command::new("apt-get").args(["update", "-qq"]).output().unwrap();
                assert!(update.status.success(), "apt-get update: {update:?}");
                output = download();
            }
            assert!(
                output.status.success(),
                "apt-get download wordpress failed (the test needs Debian's archive): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let deb = find_deb().expect("the wordpress .deb");
        let work = tempfile::tempdir().unwrap();
        let unpacked = work.path().join("unpacked");
        let run = |command: &mut Command| {
            let output = command.output().unwrap();
            assert!(output.status.success(), "{command:?}: {output:?}");
            output
        };
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked));
        let tarball = work.path().join("latest.tar.gz");
        // wordpress.org's tarball has wordpress/ at the top and no wp-config.php (Debian
        // adds its own, which reads /etc/wordpress).
        run(Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(unpacked.join("usr/share"))
            .args([
                "--exclude=wordpress/wp-config.php",
                "--exclude=wordpress/.htaccess",
                "wordpress",
            ]));
        let digest = String::from_utf8(run(Command::new("sha1sum").arg(&tarball)).stdout).unwrap()[..40].to_owned();
        (std::fs::read(&tarball).unwrap(), digest)
    })
}

impl SshFixture {
    /// Creates a WordPress site downloading from `url`, reports its installation as
    /// done, and returns the site and its `site.wordpress` job.
    async fn wordpress_site(&self, domain: &str, url: &str) -> (i64, JobId) {
        let site_id = self
            .installed_site(&SiteInput {
                domain: Some(domain.to_owned()),
                site_type: Some("wordpress".to_owned()),
                database_name: Some("blog_db".to_owned()),
                database_user: Some("blog_user".to_owned()),
                database_password: Some(Secret::new(PASSWORD.to_owned())),
                database_host: Some("db.internal:3306".to_owned()),
                table_prefix: Some("blog_".to_owned()),
                wordpress_download_url: Some(url.to_owned()),
                ..SiteInput::default()
            })
            .await;
        let site = brokeforge_db::sites::find(&self.environment.db, site_id)
            .await
            .unwrap()
            .unwrap();
        let job_id = JobId(site.job_id.expect("the WordPress job"));
        let job = self.queue().get(job_id).await.unwrap().unwrap();
        assert_eq!(job.kind, WORDPRESS_KIND);
        assert!(
            !job.payload.to_string().contains("quoted"),
            "no password in the payload"
        );
        (site.id, job_id)
    }

    /// Every text the events, the audit log and the job table hold.
    async fn recorded_texts(&self) -> Vec<String> {
        let events = self.event_texts().await;
        let audit = self.audit_texts().await;
        let jobs = with_pool!(self.environment.db, |pool| {
            sqlx::query_as::<_, (String, Option<String>)>("SELECT CAST(payload AS TEXT), last_error FROM jobs")
                .fetch_all(pool)
                .await
        })
        .unwrap();
        events
            .into_iter()
            .chain(audit)
            .chain(jobs.into_iter().map(|(payload, error)| format!("{payload} {error:?}")))
            .collect()
    }

    /// Runs `cmd` on the server as brokeforge.
    async fn run(&self, cmd: &Cmd) -> brokeforge_ssh::CommandOutput {
        let target = brokeforge_app::operations::target(&self.environment, self.server_id, RemoteUser::BrokeForge)
            .await
            .unwrap();
        self.environment
            .ssh
            .run_command(&target, cmd, Duration::from_secs(60))
            .await
            .unwrap()
    }
}

fn arg(text: &str) -> ShellArg {
    ShellArg::new(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordpress_is_downloaded_checked_and_configured_and_a_bad_checksum_stops_it() {
    let (tarball, digest) = wordpress_tarball().clone();
    let files = FileServer::start(vec![
        ("/latest.tar.gz".to_owned(), tarball.clone()),
        ("/latest.tar.gz.sha1".to_owned(), digest.clone().into_bytes()),
        ("/tampered.tar.gz".to_owned(), tarball),
        ("/tampered.tar.gz.sha1".to_owned(), "f".repeat(40).into_bytes()),
    ]);
    let mut fixture = SshFixture::start(PACKAGES).await;
    let uid = fixture.sshd.account().uid;
    let domain = unique_domain("wp");
    let root = fixture.site_directory(&domain, SITE_LAYOUT);
    let _cleanup = RemoveOnDrop(root.clone());

    let (site_id, job_id) = fixture.wordpress_site(&domain, &files.url("/latest.tar.gz")).await;
    fixture.start_workers();
    assert_eq!(fixture.wait(job_id, JOB_TIMEOUT).await, JobState::Succeeded);
    let site = brokeforge_db::sites::find(&fixture.environment.db, site_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(site.status, sites::STATUS_ACTIVE, "{:?}", site.error_log);
    let release = site.current_release.clone().expect("the live release is recorded");
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new(&format!("releases/{release}"))
    );
    let release_dir = root.join("releases").join(&release);
    assert!(release_dir.join("wp-settings.php").is_file());
    assert!(release_dir.join("wp-includes/version.php").is_file());
    assert_eq!(
        std::fs::read_link(release_dir.join("wp-content/uploads")).unwrap(),
        root.join("shared/wp-content/uploads")
    );
    assert_eq!(
        std::fs::read_link(release_dir.join("wp-config.php")).unwrap(),
        root.join("shared/wp-config.php")
    );
    assert!(root.join("shared/wp-content/uploads").is_dir());
    let config = root.join("shared/wp-config.php");
    let metadata = std::fs::metadata(&config).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.uid(), uid, "owned by brokeforge (the test account)");
    assert_eq!(files.requests(), ["/latest.tar.gz", "/latest.tar.gz.sha1"]);

    // The file on the server parses, and PHP reads the values back exactly (ABSPATH
    // points at an empty wp-settings.php, so WordPress itself does not start).
    let linked = release_dir.join("wp-config.php");
    let lint = fixture
        .run(&Cmd::new("php").lit("-l").arg(arg(linked.to_str().unwrap())))
        .await;
    assert_eq!(lint.exit_code, 0, "{}", lint.stderr_text());
    assert!(lint.stdout_text().contains("No syntax errors detected"));
    let stub = root.join(".stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(stub.join("wp-settings.php"), "<?php\n").unwrap();
    let code = format!(
        "define('ABSPATH', '{}/'); include '{}'; echo json_encode([DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, \
         $table_prefix, strlen(AUTH_KEY), strlen(NONCE_SALT)]);",
        stub.display(),
        linked.display()
    );
    let read = fixture.run(&Cmd::new("php").lit("-r").arg(arg(&code))).await;
    assert_eq!(read.exit_code, 0, "{}", read.stderr_text());
    let values: serde_json::Value = serde_json::from_str(&read.stdout_text()).unwrap();
    assert_eq!(
        values,
        json!(["blog_db", "blog_user", PASSWORD, "db.internal:3306", "blog_", 64, 64])
    );

    // Every milestone was reached; the password is in no record.
    let events = fixture.events(job_id).await;
    let milestones: Vec<&str> = events.iter().map(|(milestone, _, _)| milestone.as_str()).collect();
    for expected in [
        "Downloading WordPress",
        "Checking the download against its published SHA-1 checksum",
        "Unpacking WordPress into the release",
        "Writing wp-config.php",
        "Switching to the new release",
    ] {
        assert!(milestones.contains(&expected), "{milestones:?}");
    }
    assert_eq!(events.last().unwrap().1, "success");
    for text in fixture.recorded_texts().await {
        assert!(!text.contains("quoted'-"), "the password reached a record: {text}");
        assert!(!text.contains("DB_PASSWORD"), "the file reached a record: {text}");
    }

    // A download that does not match its published checksum: the job fails at the
    // check, with both values in the error output, and nothing goes live.
    let tampered_domain = unique_domain("wpbad");
    let tampered_root = fixture.site_directory(&tampered_domain, SITE_LAYOUT);
    let _cleanup_tampered = RemoveOnDrop(tampered_root.clone());
    let (tampered_id, tampered_job) = fixture
        .wordpress_site(&tampered_domain, &files.url("/tampered.tar.gz"))
        .await;
    assert_eq!(fixture.wait(tampered_job, JOB_TIMEOUT).await, JobState::Failed);
    let site = brokeforge_db::sites::find(&fixture.environment.db, tampered_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(site.status, sites::STATUS_FAILED);
    assert!(site.current_release.is_none());
    let events = fixture.events(tampered_job).await;
    let (milestone, _, details) = events
        .iter()
        .find(|(_, status, _)| status == "failed")
        .expect("a failed event");
    assert_eq!(milestone, "Checking the download against its published SHA-1 checksum");
    let stderr = details["stderr_tail"].as_str().unwrap();
    assert!(
        stderr.contains(&format!(
            "does not match its published SHA-1 checksum (expected {}, got {digest}); nothing was installed",
            "f".repeat(40)
        )),
        "{stderr}"
    );
    assert_eq!(details["exit_code"], 1);
    assert!(std::fs::symlink_metadata(tampered_root.join("current")).is_err());
    assert!(!tampered_root.join("shared/wp-config.php").exists());
    assert!(
        std::fs::read_dir(tampered_root.join(".brokeforge"))
            .unwrap()
            .next()
            .is_none(),
        "the download was removed"
    );
}

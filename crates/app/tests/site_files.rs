//! The environment editor and the file explorer against a real OpenSSH server: the
//! environment file written and read back (its contents in no event and no audit
//! row), and files listed, read, written and deleted inside the site's directory,
//! while `../` paths, symbolic links out of the site and uploads over the size limit
//! are refused.
//!
//! As in `site_deployments.rs`, the test account of the test kit stands in for
//! brokeforge (both roles log in as it) and owns `/home/brokeforge/<domain>`; the
//! site's installation needs root, so its job is reported as succeeded instead.

mod common;

use std::os::unix::fs::PermissionsExt;

use brokeforge_app::AppError;
use brokeforge_app::auth::{Principal, Scope, Scopes};
use brokeforge_app::site_env;
use brokeforge_app::site_files::{self, Browse, MAX_FILE_BYTES};
use brokeforge_app::sites::SiteInput;
use brokeforge_core::Secret;
use common::{Package, RemoveOnDrop, SshFixture, unique_domain};

/// What provisioning left on the server that the sites here need.
const PACKAGES: &[Package] = &[("webserver", "nginx", "", "1.22"), ("php", "php", "8.3", "8.3")];

/// The directories of a site that installing it would make: `shared/` and `public/`.
const SITE_LAYOUT: &[&str] = &["shared", "public"];

impl SshFixture {
    /// Creates a site of `site_type` and reports its installation as done (for
    /// WordPress, its WordPress job too).
    async fn site(&self, domain: &str, site_type: &str) -> i64 {
        let wordpress = site_type == "wordpress";
        let site_id = self
            .installed_site(&SiteInput {
                domain: Some(domain.to_owned()),
                site_type: Some(site_type.to_owned()),
                php_version: (site_type != "static").then(|| "8.3".to_owned()),
                database_name: wordpress.then(|| "wp".to_owned()),
                database_user: wordpress.then(|| "wp".to_owned()),
                database_password: wordpress.then(|| Secret::new("wp-password".to_owned())),
                ..SiteInput::default()
            })
            .await;
        if wordpress {
            let site = brokeforge_db::sites::find(&self.environment.db, site_id)
                .await
                .unwrap()
                .unwrap();
            let job = brokeforge_queue::JobId(site.job_id.expect("the WordPress job"));
            self.environment.queue.cancel(job).await.unwrap();
            brokeforge_db::sites::set_status(&self.environment.db, site.id, "active", None)
                .await
                .unwrap();
        }
        site_id
    }

    /// Every text the site's events and the audit log hold.
    async fn recorded_texts(&self) -> Vec<String> {
        let events = self.event_texts().await;
        let audit = self.audit_texts().await;
        assert!(!events.is_empty() && !audit.is_empty());
        events.into_iter().chain(audit).collect()
    }
}

fn path_refusal(result: Result<impl std::fmt::Debug, AppError>) -> String {
    match result {
        Err(AppError::Validation(errors)) => errors.first("path").expect("a path error").to_owned(),
        other => panic!("expected a refused path, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_file_round_trips_and_never_reaches_events_or_the_audit_log() {
    let fixture = SshFixture::start(PACKAGES).await;
    let domain = unique_domain("env");
    let root = fixture.site_directory(&domain, SITE_LAYOUT);
    let _cleanup = RemoveOnDrop(root.clone());
    let site_id = fixture.site(&domain, "laravel").await;
    let environment = &fixture.environment;

    let missing = site_env::read(environment, &fixture.owner, site_id).await.unwrap();
    assert!(!missing.exists);
    assert_eq!(missing.file.as_str(), ".env");
    assert!(missing.contents.expose().is_empty());

    let secret = format!("hunter2-{}", std::process::id());
    let text = format!("APP_KEY=base64:abc\nDB_PASSWORD='{secret}' # it's $(id)\n");
    let written = site_env::write(
        environment,
        &fixture.owner,
        site_id,
        Secret::new(text.clone().into_bytes()),
    )
    .await
    .unwrap();
    assert!(written.changed);
    let on_disk = root.join("shared/.env");
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), text);
    assert_eq!(std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777, 0o600);
    let read = site_env::read(environment, &fixture.owner, site_id).await.unwrap();
    assert!(read.exists);
    assert_eq!(read.contents.expose(), &text);
    assert!(!format!("{read:?}").contains(&secret));

    // The same contents again change nothing.
    let again = site_env::write(
        environment,
        &fixture.owner,
        site_id,
        Secret::new(text.clone().into_bytes()),
    )
    .await
    .unwrap();
    assert!(!again.changed);

    // Too long: refused before anything reaches the server.
    let too_long = site_env::write(
        environment,
        &fixture.owner,
        site_id,
        Secret::new(vec![b'x'; 256 * 1024 + 1]),
    )
    .await;
    assert!(matches!(too_long, Err(AppError::Validation(ref errors)) if errors.first("contents").is_some()));

    // A read-only token can neither read nor write the secrets.
    let reader = Principal {
        scopes: Scopes::from_list(&[Scope::Read]),
        ..fixture.owner.clone()
    };
    assert!(matches!(
        site_env::read(environment, &reader, site_id).await,
        Err(AppError::Forbidden(_))
    ));

    let recorded = fixture.recorded_texts().await;
    assert!(recorded.iter().any(|text| text.contains("site.env_written")));
    for text in &recorded {
        assert!(!text.contains(&secret), "the secret reached a record: {text}");
        assert!(!text.contains("APP_KEY"), "the contents reached a record: {text}");
    }

    // WordPress sites edit wp-config.php.
    let wordpress_domain = unique_domain("wp");
    let wordpress_root = fixture.site_directory(&wordpress_domain, SITE_LAYOUT);
    let _wordpress_cleanup = RemoveOnDrop(wordpress_root.clone());
    let wordpress = fixture.site(&wordpress_domain, "wordpress").await;
    let config = "<?php\ndefine('DB_PASSWORD', 'x');\n";
    let written = site_env::write(
        environment,
        &fixture.owner,
        wordpress,
        Secret::new(config.as_bytes().to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(written.file.as_str(), "wp-config.php");
    assert_eq!(
        std::fs::read_to_string(wordpress_root.join("shared/wp-config.php")).unwrap(),
        config
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_explorer_stays_inside_the_site() {
    let fixture = SshFixture::start(PACKAGES).await;
    let account = fixture.sshd.account();
    let domain = unique_domain("files");
    let root = fixture.site_directory(&domain, SITE_LAYOUT);
    let _cleanup = RemoveOnDrop(root.clone());
    let site_id = fixture.site(&domain, "static").await;
    let environment = &fixture.environment;
    let owner = &fixture.owner;

    // Outside the site: a directory with a file, and links to both from inside.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside\n").unwrap();
    std::os::unix::fs::chown(outside.path(), Some(account.uid), Some(account.gid)).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("public/escape")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("public/leak.txt")).unwrap();
    std::os::unix::fs::lchown(root.join("public/escape"), Some(account.uid), Some(account.gid)).unwrap();
    std::os::unix::fs::lchown(root.join("public/leak.txt"), Some(account.uid), Some(account.gid)).unwrap();
    // A link inside the site is followed.
    std::fs::write(root.join("shared/notes.txt"), "inside\n").unwrap();
    std::os::unix::fs::chown(root.join("shared/notes.txt"), Some(account.uid), Some(account.gid)).unwrap();
    std::os::unix::fs::symlink("../shared/notes.txt", root.join("public/notes.txt")).unwrap();
    std::os::unix::fs::lchown(root.join("public/notes.txt"), Some(account.uid), Some(account.gid)).unwrap();

    // Write, list, read.
    let hostile = "it's $(id) ; rm -rf x <b>.txt";
    let path = format!("public/{hostile}");
    site_files::write(environment, owner, site_id, &path, Secret::new(b"hello\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("public").join(hostile)).unwrap(),
        "hello\n"
    );
    let entries = site_files::list(environment, owner, site_id, "public").await.unwrap();
    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["escape", hostile, "leak.txt", "notes.txt"]);
    let root_entries = site_files::list(environment, owner, site_id, "").await.unwrap();
    assert!(root_entries.iter().any(|entry| entry.name == "shared"));
    let read = site_files::read(environment, owner, site_id, &path).await.unwrap();
    assert_eq!(read.expose(), b"hello\n");
    match site_files::browse(environment, owner, site_id, "public/notes.txt")
        .await
        .unwrap()
    {
        Browse::File { contents, .. } => assert_eq!(contents.expose(), b"inside\n"),
        other => panic!("expected a file, got {other:?}"),
    }
    assert!(matches!(
        site_files::browse(environment, owner, site_id, "public").await.unwrap(),
        Browse::Directory { .. }
    ));
    // Writing through the inner link changes its target and keeps the link.
    site_files::write(
        environment,
        owner,
        site_id,
        "public/notes.txt",
        Secret::new(b"edited\n".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("shared/notes.txt")).unwrap(),
        "edited\n"
    );
    assert!(
        std::fs::symlink_metadata(root.join("public/notes.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // `..` never reaches the server.
    for path in ["../x", "public/../../x", "/etc/passwd"] {
        path_refusal(site_files::read(environment, owner, site_id, path).await);
        path_refusal(site_files::write(environment, owner, site_id, path, Secret::new(b"x".to_vec())).await);
        path_refusal(site_files::delete(environment, owner, site_id, path).await);
    }
    // Links out of the site are refused by the server.
    let message = path_refusal(site_files::list(environment, owner, site_id, "public/escape").await);
    assert!(message.contains("out of the site"), "{message}");
    path_refusal(site_files::read(environment, owner, site_id, "public/leak.txt").await);
    path_refusal(site_files::read(environment, owner, site_id, "public/escape/secret.txt").await);
    path_refusal(
        site_files::write(
            environment,
            owner,
            site_id,
            "public/escape/planted.txt",
            Secret::new(b"x".to_vec()),
        )
        .await,
    );
    path_refusal(
        site_files::write(
            environment,
            owner,
            site_id,
            "public/leak.txt",
            Secret::new(b"x".to_vec()),
        )
        .await,
    );
    assert!(!outside.path().join("planted.txt").exists());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "outside\n"
    );
    path_refusal(site_files::delete(environment, owner, site_id, "public/escape/secret.txt").await);
    // Deleting the link removes the link, never what it points to.
    let (_, deleted) = site_files::delete(environment, owner, site_id, "public/escape")
        .await
        .unwrap();
    assert!(deleted);
    assert!(std::fs::symlink_metadata(root.join("public/escape")).is_err());
    assert!(outside.path().join("secret.txt").exists());

    // Over the size limit: refused with the sizes, nothing written.
    let too_large = site_files::write(
        environment,
        owner,
        site_id,
        "public/big.bin",
        Secret::new(vec![0; MAX_FILE_BYTES + 1]),
    )
    .await;
    match too_large {
        Err(AppError::Validation(errors)) => {
            assert!(
                errors.first("contents").unwrap().contains("at most 1 MiB"),
                "{errors:?}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!root.join("public/big.bin").exists());
    // A file larger than the limit on the server is not opened either.
    std::fs::write(root.join("public/huge.log"), vec![b'x'; MAX_FILE_BYTES + 10]).unwrap();
    path_refusal(site_files::read(environment, owner, site_id, "public/huge.log").await);

    // The layout itself cannot be deleted; a missing file is not found.
    path_refusal(site_files::delete(environment, owner, site_id, "shared").await);
    assert!(matches!(
        site_files::read(environment, owner, site_id, "public/nope/x.txt").await,
        Err(AppError::NotFound(_) | AppError::Validation(_))
    ));

    // Delete inside the site.
    let (_, deleted) = site_files::delete(environment, owner, site_id, &path).await.unwrap();
    assert!(deleted);
    assert!(!root.join("public").join(hostile).exists());
    let (_, deleted) = site_files::delete(environment, owner, site_id, &path).await.unwrap();
    assert!(!deleted);

    // Reading contents needs the deploy scope; listing does not.
    let reader = Principal {
        scopes: Scopes::from_list(&[Scope::Read]),
        ..owner.clone()
    };
    site_files::list(environment, &reader, site_id, "public").await.unwrap();
    assert!(matches!(
        site_files::read(environment, &reader, site_id, "public/notes.txt").await,
        Err(AppError::Forbidden(_))
    ));

    // The audit log names paths, never contents.
    let recorded = fixture.recorded_texts().await;
    assert!(recorded.iter().any(|text| text.contains("site.file_written")));
    assert!(recorded.iter().any(|text| text.contains("site.file_deleted")));
    assert!(!recorded.iter().any(|text| text.contains("edited")));
}

//! The environment editor and the file explorer against a real OpenSSH server: the
//! environment file written and read back (its contents in no event and no audit
//! row), and files listed, read, written and deleted inside the site's directory,
//! while `../` paths, symbolic links out of the site and uploads over the size limit
//! are refused.
//!
//! As in `site_deployments.rs`, the test account of the test kit stands in for
//! brokeforge (both roles log in as it) and owns `/home/brokeforge/<domain>`; the
//! site's installation needs root, so its job is reported as succeeded instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brokeforge_app::AppError;
use brokeforge_app::auth::{Credential, Principal, Scope, Scopes};
use brokeforge_app::follow_up::{self, Finished, FollowUp};
use brokeforge_app::operations::{OperationEnvironment, OperationOutcome};
use brokeforge_app::site_env;
use brokeforge_app::site_files::{self, Browse, MAX_FILE_BYTES};
use brokeforge_app::sites::{self, SiteInput};
use brokeforge_core::Secret;
use brokeforge_db::server_access::{self, credential_aad};
use brokeforge_db::servers::{self, ServerFields};
use brokeforge_db::{Db, MasterKey, Sealer, package_records, with_pool};
use brokeforge_queue::Queue;
use brokeforge_testkit::SshServer;
use serde_json::json;

const APP_HOME: &str = "/home/brokeforge";

struct Fixture {
    environment: OperationEnvironment,
    owner: Principal,
    server_id: i64,
    sshd: SshServer,
    _data: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let sshd = tokio::task::spawn_blocking(SshServer::start).await.unwrap();
    let data = brokeforge_testkit::temp_data_dir();
    let db = Db::connect_sqlite(data.path()).await.unwrap();
    brokeforge_db::migrate::run(&db).await.unwrap();
    let sealer = Arc::new(Sealer::new(&MasterKey::generate().unwrap()));
    let user = brokeforge_db::users::insert(
        &db,
        &brokeforge_db::users::NewUser {
            email: "owner@example.com",
            name: "Owner",
            password_hash: "x",
            is_admin: false,
        },
    )
    .await
    .unwrap();
    let server = servers::insert(
        &db,
        user.id,
        &ServerFields {
            name: "web-1",
            provider: "custom",
            public_ip: sshd.host(),
            ssh_port: i32::from(sshd.port()),
            provision_config: json!({}),
        },
    )
    .await
    .unwrap();
    server_access::pin_host_key(&db, server.id, sshd.host_public_key())
        .await
        .unwrap();
    for role in ["root", "brokeforge"] {
        let keypair = brokeforge_ssh::generate_keypair(&format!("brokeforge-{role}"));
        sshd.authorize_key(&keypair.public_openssh);
        let sealed = sealer
            .seal_str(keypair.private_openssh.expose(), &credential_aad(server.id, role))
            .unwrap();
        server_access::store_credential(
            &db,
            server.id,
            role,
            Some(sshd.user()),
            &sealed,
            &keypair.public_openssh,
        )
        .await
        .unwrap();
    }
    package_records::upsert_server_package(&db, server.id, "webserver", "nginx", "", "1.22", &json!({}), "active")
        .await
        .unwrap();
    package_records::upsert_server_package(&db, server.id, "php", "php", "8.3", "8.3", &json!({}), "active")
        .await
        .unwrap();
    let environment = OperationEnvironment::new(db.clone(), Queue::new(db), sealer);
    Fixture {
        environment,
        owner: Principal {
            user_id: user.id,
            email: "owner@example.com".to_owned(),
            name: String::new(),
            is_admin: false,
            scopes: Scopes::from_list(&Scope::ALL),
            credential: Credential::Token { token_id: 0 },
            ip: None,
        },
        server_id: server.id,
        sshd,
        _data: data,
    }
}

impl Fixture {
    /// Creates a site of `site_type` and reports its installation as done (for
    /// WordPress, its WordPress job too).
    async fn site(&self, domain: &str, site_type: &str) -> i64 {
        let wordpress = site_type == "wordpress";
        let created = sites::create(
            &self.environment.queue,
            &self.environment.sealer,
            &self.owner,
            self.server_id,
            &SiteInput {
                domain: Some(domain.to_owned()),
                site_type: Some(site_type.to_owned()),
                php_version: (site_type != "static").then(|| "8.3".to_owned()),
                database_name: wordpress.then(|| "wp".to_owned()),
                database_user: wordpress.then(|| "wp".to_owned()),
                database_password: wordpress.then(|| Secret::new("wp-password".to_owned())),
                ..SiteInput::default()
            },
        )
        .await
        .unwrap();
        self.environment.queue.cancel(created.job_id).await.unwrap();
        follow_up::run(
            &self.environment,
            self.server_id,
            created.job_id.0,
            &FollowUp::Site {
                site_id: created.site.id,
                removing: false,
            },
            Finished::Succeeded(&OperationOutcome {
                changed: true,
                steps_run: 1,
            }),
        )
        .await
        .unwrap();
        if wordpress {
            let site = brokeforge_db::sites::find(&self.environment.db, created.site.id)
                .await
                .unwrap()
                .unwrap();
            let job = brokeforge_queue::JobId(site.job_id.expect("the WordPress job"));
            self.environment.queue.cancel(job).await.unwrap();
            brokeforge_db::sites::set_status(&self.environment.db, site.id, "active", None)
                .await
                .unwrap();
        }
        created.site.id
    }

    /// Every text the site's events and the audit log hold.
    async fn recorded_texts(&self) -> Vec<String> {
        let events = with_pool!(self.environment.db, |pool| sqlx::query_as::<
            _,
            (String, Option<String>, sqlx::types::Json<serde_json::Value>),
        >(
            "SELECT milestone, error_log, details FROM server_site_package_events"
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        let audit = with_pool!(self.environment.db, |pool| sqlx::query_as::<_, (String, String)>(
            "SELECT action, summary FROM audit_events"
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        assert!(!events.is_empty() && !audit.is_empty());
        events
            .into_iter()
            .map(|(milestone, error_log, details)| format!("{milestone} {error_log:?} {}", details.0))
            .chain(audit.into_iter().map(|(action, summary)| format!("{action} {summary}")))
            .collect()
    }
}

/// Removes the site's directory when the test ends, passed or not.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes the site's directory with `shared/` (owned by the test account, which
/// stands in for brokeforge), as installing the site would.
fn site_directory(domain: &str, uid: u32, gid: u32) -> PathBuf {
    let home = Path::new(APP_HOME);
    if !home.exists() {
        std::fs::create_dir_all(home).unwrap();
    }
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(home).unwrap());
    if owner != uid {
        std::os::unix::fs::chown(home, Some(uid), Some(gid)).unwrap();
    }
    let root = home.join(domain);
    for directory in [root.clone(), root.join("shared"), root.join("public")] {
        std::fs::create_dir_all(&directory).unwrap();
        std::os::unix::fs::chown(&directory, Some(uid), Some(gid)).unwrap();
    }
    root
}

fn unique_domain(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}.example.test",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn path_refusal(result: Result<impl std::fmt::Debug, AppError>) -> String {
    match result {
        Err(AppError::Validation(errors)) => errors.first("path").expect("a path error").to_owned(),
        other => panic!("expected a refused path, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_file_round_trips_and_never_reaches_events_or_the_audit_log() {
    let fixture = fixture().await;
    let account = fixture.sshd.account();
    let domain = unique_domain("env");
    let root = site_directory(&domain, account.uid, account.gid);
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
    let wordpress_root = site_directory(&wordpress_domain, account.uid, account.gid);
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
    let fixture = fixture().await;
    let account = fixture.sshd.account();
    let domain = unique_domain("files");
    let root = site_directory(&domain, account.uid, account.gid);
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

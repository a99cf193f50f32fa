//! Sites, deployments, webhooks and site commands on SQLite and on PostgreSQL: other
//! users' servers and sites are not found, scopes are enforced, input is validated
//! field by field into the site package's types, a domain the server already serves
//! is refused, every change enqueues exactly one job with the right payload,
//! follow-ups and job outcomes are recorded, and webhook signatures, branches and
//! replays are checked.

mod common;

use brokeforge_app::AppError;
use brokeforge_app::auth::Scope;
use brokeforge_app::deployments::{self, DEPLOYMENT_KIND, DeploymentPayload};
use brokeforge_app::follow_up::{self, Finished, FollowUp};
use brokeforge_app::operations::{
    EventTarget, OperationError, OperationOutcome, PACKAGE_OPERATION_KIND, PackageOperation, PackageOperationPayload,
};
use brokeforge_app::site_commands::{self, COMMAND_KIND, CommandInput, CommandPayload};
use brokeforge_app::sites::{self, DeploySettingsInput, SiteInput};
use brokeforge_app::webhooks::{self, Provider, WebhookError, WebhookOutcome, WebhookRequest};
use brokeforge_app::wordpress::{WORDPRESS_KIND, WordPressPayload};
use brokeforge_core::Secret;
use brokeforge_db::site_deployments as deployment_table;
use brokeforge_db::sites as site_table;
use common::{BackendFixture, Package, fields, principal};
use serde_json::json;

const COMMIT_A: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const COMMIT_B: &str = "0123456789abcdef0123456789abcdef01234567";

/// What provisioning left on the server: nginx and PHP 8.3, the command-line default.
const PACKAGES: &[Package] = &[
    ("webserver", "nginx", "", "1.22"),
    ("php", "php", "8.3", "8.3"),
    ("php", "php-cli-default", "", "8.3"),
];

/// A fixture on each backend, its server recorded with SSH on port 22.
async fn both() -> Vec<BackendFixture> {
    BackendFixture::on_both_backends(22, PACKAGES).await
}

fn input(domain: &str) -> SiteInput {
    SiteInput {
        domain: Some(domain.to_owned()),
        site_type: Some("static".to_owned()),
        git_repository: Some("git@github.com:acme/site.git".to_owned()),
        ..SiteInput::default()
    }
}

fn not_found(error: AppError) {
    assert!(
        matches!(error, AppError::NotFound(_)),
        "expected not found, got {error:?}"
    );
}

fn succeeded() -> OperationOutcome {
    OperationOutcome {
        changed: true,
        steps_run: 3,
    }
}

impl BackendFixture {
    /// Creates a site and reports its install job as succeeded: an active site.
    async fn active_site(&self, domain: &str) -> i64 {
        let created = sites::create(
            self.queue(),
            &self.environment.sealer,
            &self.owner,
            self.server_id,
            &input(domain),
        )
        .await
        .unwrap();
        self.finish(
            created.job_id.0,
            FollowUp::Site {
                site_id: created.site.id,
                removing: false,
            },
            Finished::Succeeded(&succeeded()),
        )
        .await;
        created.site.id
    }

    async fn finish(&self, job_id: i64, follow_up: FollowUp, finished: Finished<'_>) {
        follow_up::run(&self.environment, self.server_id, job_id, &follow_up, finished)
            .await
            .unwrap();
    }

    async fn site(&self, site_id: i64) -> Option<site_table::SiteRecord> {
        site_table::find(self.db(), site_id).await.unwrap()
    }
}

#[tokio::test]
async fn creating_a_site_validates_every_field_and_enqueues_one_install_job() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let bad = SiteInput {
            domain: Some("exa mple".to_owned()),
            aliases: Some(json!("good.example.com, -bad-")),
            site_type: Some("rails".to_owned()),
            web_directory: Some("../etc".to_owned()),
            git_repository: Some("ext::sh -c evil".to_owned()),
            git_branch: Some("--upload-pack=evil".to_owned()),
            ..SiteInput::default()
        };
        let errors = fields(
            sites::create(
                queue,
                &fixture.environment.sealer,
                &fixture.owner,
                fixture.server_id,
                &bad,
            )
            .await
            .unwrap_err(),
        );
        let names: Vec<&str> = errors.fields().collect();
        assert_eq!(
            names,
            [
                "aliases",
                "domain",
                "git_branch",
                "git_repository",
                "site_type",
                "web_directory"
            ],
            "{backend}"
        );
        let php_missing = SiteInput {
            site_type: Some("laravel".to_owned()),
            php_version: Some("8.4".to_owned()),
            ..input("app.example.com")
        };
        let errors = fields(
            sites::create(
                queue,
                &fixture.environment.sealer,
                &fixture.owner,
                fixture.server_id,
                &php_missing,
            )
            .await
            .unwrap_err(),
        );
        assert!(
            errors.first("php_version").unwrap().contains("not installed"),
            "{backend}"
        );
        let branch_alone = SiteInput {
            git_repository: None,
            git_branch: Some("main".to_owned()),
            ..input("app.example.com")
        };
        let errors = fields(
            sites::create(
                queue,
                &fixture.environment.sealer,
                &fixture.owner,
                fixture.server_id,
                &branch_alone,
            )
            .await
            .unwrap_err(),
        );
        assert!(errors.first("git_repository").is_some(), "{backend}");
        assert!(
            fixture.jobs().await.is_empty(),
            "{backend}: nothing queued for refused input"
        );
        assert!(
            sites::list(fixture.db(), &fixture.owner, fixture.server_id)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: nothing stored for refused input"
        );

        // A Laravel site on the command-line default PHP version, with aliases and www.
        let laravel = SiteInput {
            site_type: Some("laravel".to_owned()),
            aliases: Some(json!(["shop.example.com"])),
            www: Some(true),
            ..input("example.com")
        };
        let created = sites::create(
            queue,
            &fixture.environment.sealer,
            &fixture.owner,
            fixture.server_id,
            &laravel,
        )
        .await
        .unwrap();
        let site = &created.site;
        assert_eq!(site.status, sites::STATUS_INSTALLING, "{backend}");
        assert_eq!(site.php_version.as_deref(), Some("8.3"), "{backend}");
        assert_eq!(site.web_directory, "public", "{backend}");
        assert_eq!(
            site.document_root, "/home/brokeforge/example.com/current/public",
            "{backend}"
        );
        assert_eq!(site.git_branch.as_deref(), Some("main"), "{backend}");
        assert_eq!(site.keep_releases, 5, "{backend}");
        assert!(site.deploy_script.contains("php artisan migrate --force"), "{backend}");
        assert_eq!(site.job_id, Some(created.job_id.0), "{backend}");
        let jobs = fixture.jobs().await;
        assert_eq!(jobs.len(), 1, "{backend}: one job per site");
        assert_eq!(jobs[0].kind, PACKAGE_OPERATION_KIND);
        let payload: PackageOperationPayload = serde_json::from_value(jobs[0].payload.clone()).unwrap();
        assert_eq!(
            payload.events,
            EventTarget::Site {
                server_id: fixture.server_id,
                site_id: site.id
            }
        );
        assert_eq!(
            payload.follow_up,
            Some(FollowUp::Site {
                site_id: site.id,
                removing: false
            })
        );
        let PackageOperation::SiteInstall(install) = &payload.operation else {
            panic!("{backend}: expected a site installation, got {:?}", payload.operation);
        };
        let names: Vec<String> = install.server_names().iter().map(|name| name.to_string()).collect();
        assert_eq!(
            names,
            ["example.com", "www.example.com", "shop.example.com"],
            "{backend}"
        );

        // The same domain, an alias or the www variant again: a field error, nothing stored.
        for (again, field) in [
            (input("example.com"), "domain"),
            (input("www.example.com"), "domain"),
            (
                SiteInput {
                    aliases: Some(json!(["shop.example.com"])),
                    ..input("other.example.com")
                },
                "aliases",
            ),
        ] {
            let errors = fields(
                sites::create(
                    queue,
                    &fixture.environment.sealer,
                    &fixture.owner,
                    fixture.server_id,
                    &again,
                )
                .await
                .unwrap_err(),
            );
            assert!(
                errors
                    .first(field)
                    .unwrap()
                    .contains("already served by the site example.com"),
                "{backend}: {errors:?}"
            );
        }
        assert_eq!(fixture.jobs().await.len(), 1, "{backend}");

        // Another user's server is not found; a read-only token may not create.
        not_found(
            sites::create(
                queue,
                &fixture.environment.sealer,
                &fixture.other,
                fixture.server_id,
                &input("b.example.com"),
            )
            .await
            .unwrap_err(),
        );
        let reader = principal(fixture.owner.user_id, &[Scope::Read]);
        assert!(matches!(
            sites::create(
                queue,
                &fixture.environment.sealer,
                &reader,
                fixture.server_id,
                &input("b.example.com")
            )
            .await,
            Err(AppError::Forbidden(_))
        ));
        not_found(sites::get(fixture.db(), &fixture.other, site.id).await.unwrap_err());
        not_found(
            sites::list(fixture.db(), &fixture.other, fixture.server_id)
                .await
                .unwrap_err(),
        );

        // The install job's end moves the site on.
        fixture
            .finish(
                created.job_id.0,
                FollowUp::Site {
                    site_id: site.id,
                    removing: false,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        assert_eq!(
            fixture.site(site.id).await.unwrap().status,
            sites::STATUS_ACTIVE,
            "{backend}"
        );
        let audit =
            brokeforge_app::audit::list_for_server(fixture.db(), fixture.owner.user_id, fixture.server_id, None, 10)
                .await
                .unwrap();
        assert!(audit.iter().any(|event| event.action == "site.created"), "{backend}");
    }
}

fn wordpress(domain: &str, password: &str) -> SiteInput {
    SiteInput {
        domain: Some(domain.to_owned()),
        site_type: Some("wordpress".to_owned()),
        database_name: Some("blog".to_owned()),
        database_user: Some("blog_user".to_owned()),
        database_password: Some(Secret::new(password.to_owned())),
        ..SiteInput::default()
    }
}

#[tokio::test]
async fn a_wordpress_site_seals_its_password_and_gets_wordpress_after_its_installation() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let sealer = &fixture.environment.sealer;
        let password = "pa'ss\\word $x";

        // The database settings are required for WordPress, and checked.
        let bad = SiteInput {
            database_name: Some("blog;drop".to_owned()),
            database_user: None,
            database_password: None,
            database_host: Some("host name".to_owned()),
            table_prefix: Some("wp-".to_owned()),
            wordpress_download_url: Some("ftp://example.com/wp.tar.gz".to_owned()),
            ..wordpress("blog.example.com", password)
        };
        let errors = fields(
            sites::create(queue, sealer, &fixture.owner, fixture.server_id, &bad)
                .await
                .unwrap_err(),
        );
        let names: Vec<&str> = errors.fields().collect();
        assert_eq!(
            names,
            [
                "database_host",
                "database_name",
                "database_password",
                "database_user",
                "table_prefix",
                "wordpress_download_url"
            ],
            "{backend}"
        );
        assert!(
            !format!("{bad:?}").contains("pa'ss"),
            "{backend}: Debug masks the password"
        );
        // Other types take none of them.
        let errors = fields(
            sites::create(
                queue,
                sealer,
                &fixture.owner,
                fixture.server_id,
                &SiteInput {
                    site_type: Some("php".to_owned()),
                    ..wordpress("php.example.com", password)
                },
            )
            .await
            .unwrap_err(),
        );
        assert!(errors.first("database_password").is_some(), "{backend}: {errors:?}");
        assert!(fixture.jobs().await.is_empty(), "{backend}");

        let created = sites::create(
            queue,
            sealer,
            &fixture.owner,
            fixture.server_id,
            &wordpress("blog.example.com", password),
        )
        .await
        .unwrap();
        let site_id = created.site.id;
        let stored = brokeforge_db::site_wordpress::find(fixture.db(), site_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                stored.database_name.as_str(),
                stored.database_user.as_str(),
                stored.database_host.as_str(),
                stored.table_prefix.as_str(),
                stored.download_url.as_str()
            ),
            (
                "blog",
                "blog_user",
                "localhost",
                "wp_",
                "https://wordpress.org/latest.tar.gz"
            ),
            "{backend}"
        );
        let sealed = brokeforge_db::site_wordpress::password_sealed(fixture.db(), site_id)
            .await
            .unwrap()
            .unwrap();
        let opened = sealer
            .open_string(&sealed, &brokeforge_db::site_wordpress::password_aad(site_id))
            .unwrap();
        assert_eq!(opened.as_str(), password, "{backend}");
        assert!(
            sealer
                .open_string(&sealed, &brokeforge_db::site_wordpress::password_aad(site_id + 1))
                .is_err(),
            "{backend}: bound to its site"
        );

        // The install job, then the WordPress job: neither payload holds the password.
        let jobs = fixture.jobs().await;
        assert_eq!(jobs.len(), 1, "{backend}");
        assert!(!jobs[0].payload.to_string().contains("pa'ss"), "{backend}");
        fixture
            .finish(
                created.job_id.0,
                FollowUp::Site {
                    site_id,
                    removing: false,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        let site = fixture.site(site_id).await.unwrap();
        assert_eq!(site.status, sites::STATUS_INSTALLING, "{backend}: WordPress is next");
        let jobs = fixture.jobs().await;
        assert_eq!(jobs.len(), 2, "{backend}");
        let job = &jobs[1];
        assert_eq!(job.kind, WORDPRESS_KIND, "{backend}");
        assert_eq!(site.job_id, Some(job.id.0), "{backend}");
        let payload: WordPressPayload = serde_json::from_value(job.payload.clone()).unwrap();
        assert_eq!((payload.server_id, payload.site_id), (fixture.server_id, site_id));
        assert_eq!(payload.release.as_str().len(), 14);
        let text = job.payload.to_string();
        assert!(
            !text.contains("pa'ss") && !text.contains("password"),
            "{backend}: {text}"
        );

        // The WordPress settings go with the site.
        assert!(brokeforge_db::sites::delete(fixture.db(), site_id).await.unwrap());
        assert!(
            brokeforge_db::site_wordpress::find(fixture.db(), site_id)
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_default_site_is_one_job_and_its_flag_follows_the_job() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let first = fixture.active_site("first.example.com").await;
        let second = fixture.active_site("second.example.com").await;

        not_found(
            sites::set_default(queue, &fixture.other, first, true)
                .await
                .unwrap_err(),
        );
        not_found(
            sites::set_default(queue, &fixture.other, first, false)
                .await
                .unwrap_err(),
        );
        let writer = principal(fixture.owner.user_id, &[Scope::Read, Scope::Write]);
        assert!(matches!(
            sites::set_default(queue, &writer, first, true).await,
            Err(AppError::Forbidden(_))
        ));

        let started = sites::set_default(queue, &fixture.owner, first, true).await.unwrap();
        let job = fixture.jobs().await.pop().unwrap();
        assert_eq!(job.id, started.job_id, "{backend}");
        let payload: PackageOperationPayload = serde_json::from_value(job.payload).unwrap();
        assert_eq!(
            payload.follow_up,
            Some(FollowUp::DefaultSite {
                site_id: first,
                default: true
            })
        );
        let PackageOperation::DefaultSiteUpdate(input) = &payload.operation else {
            panic!("{backend}: expected a default-site change, got {:?}", payload.operation);
        };
        assert_eq!(input.site().unwrap().domain().as_str(), "first.example.com");
        assert!(input.previous().is_none(), "{backend}");
        // A failed job changes nothing; a successful one makes the site the default.
        let refused = OperationError::Refused("nginx -t failed".to_owned());
        let follow_up = FollowUp::DefaultSite {
            site_id: first,
            default: true,
        };
        fixture
            .finish(started.job_id.0, follow_up.clone(), Finished::Failed(&refused))
            .await;
        assert!(!fixture.site(first).await.unwrap().is_default, "{backend}");
        fixture
            .finish(started.job_id.0, follow_up, Finished::Succeeded(&succeeded()))
            .await;
        assert!(fixture.site(first).await.unwrap().is_default, "{backend}");

        // The second site takes its place: the first is the previous default.
        let started = sites::set_default(queue, &fixture.owner, second, true).await.unwrap();
        let payload: PackageOperationPayload =
            serde_json::from_value(fixture.jobs().await.pop().unwrap().payload).unwrap();
        let PackageOperation::DefaultSiteUpdate(input) = &payload.operation else {
            panic!("{backend}: expected a default-site change");
        };
        assert_eq!(input.site().unwrap().domain().as_str(), "second.example.com");
        assert_eq!(input.previous().unwrap().domain().as_str(), "first.example.com");
        fixture
            .finish(
                started.job_id.0,
                FollowUp::DefaultSite {
                    site_id: second,
                    default: true,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        assert!(!fixture.site(first).await.unwrap().is_default, "{backend}");
        assert!(fixture.site(second).await.unwrap().is_default, "{backend}");

        // No site the default.
        let started = sites::set_default(queue, &fixture.owner, second, false).await.unwrap();
        let payload: PackageOperationPayload =
            serde_json::from_value(fixture.jobs().await.pop().unwrap().payload).unwrap();
        let PackageOperation::DefaultSiteUpdate(input) = &payload.operation else {
            panic!("{backend}: expected a default-site change");
        };
        assert!(input.site().is_none());
        assert_eq!(input.previous().unwrap().domain().as_str(), "second.example.com");
        fixture
            .finish(
                started.job_id.0,
                FollowUp::DefaultSite {
                    site_id: second,
                    default: false,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        assert!(!fixture.site(second).await.unwrap().is_default, "{backend}");

        // Only an installed site can be the default.
        let installing = sites::create(
            queue,
            &fixture.environment.sealer,
            &fixture.owner,
            fixture.server_id,
            &self::input("third.example.com"),
        )
        .await
        .unwrap();
        assert!(matches!(
            sites::set_default(queue, &fixture.owner, installing.site.id, true).await,
            Err(AppError::Conflict(_))
        ));
        let audit =
            brokeforge_app::audit::list_for_server(fixture.db(), fixture.owner.user_id, fixture.server_id, None, 20)
                .await
                .unwrap();
        assert!(
            audit.iter().any(|event| event.action == "site.default_set"),
            "{backend}"
        );
        assert!(
            audit.iter().any(|event| event.action == "site.default_unset"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn deleting_a_site_removes_it_after_its_job_and_records_failures() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let site_id = fixture.active_site("gone.example.com").await;
        not_found(sites::delete(queue, &fixture.other, site_id).await.unwrap_err());
        let removal = sites::delete(queue, &fixture.owner, site_id).await.unwrap();
        assert_eq!(removal.site.status, sites::STATUS_REMOVING, "{backend}");
        let job = fixture.jobs().await.pop().unwrap();
        let payload: PackageOperationPayload = serde_json::from_value(job.payload).unwrap();
        assert!(
            matches!(payload.operation, PackageOperation::SiteRemove(_)),
            "{backend}"
        );
        assert!(matches!(
            sites::delete(queue, &fixture.owner, site_id).await,
            Err(AppError::Conflict(_))
        ));
        let refused = OperationError::Refused("nginx -t failed".to_owned());
        fixture
            .finish(
                removal.job_id.0,
                FollowUp::Site {
                    site_id,
                    removing: true,
                },
                Finished::Failed(&refused),
            )
            .await;
        let failed = fixture.site(site_id).await.unwrap();
        assert_eq!(failed.status, sites::STATUS_FAILED, "{backend}");
        assert_eq!(failed.error_log.as_deref(), Some("nginx -t failed"), "{backend}");
        let again = sites::delete(queue, &fixture.owner, site_id).await.unwrap();
        fixture
            .finish(
                again.job_id.0,
                FollowUp::Site {
                    site_id,
                    removing: true,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        assert!(
            fixture.site(site_id).await.is_none(),
            "{backend}: the records go with the site"
        );
    }
}

#[tokio::test]
async fn each_deployment_is_one_job_and_its_outcome_is_recorded() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let created = sites::create(
            queue,
            &fixture.environment.sealer,
            &fixture.owner,
            fixture.server_id,
            &input("deploy.example.com"),
        )
        .await
        .unwrap();
        let site_id = created.site.id;
        assert!(
            matches!(
                deployments::deploy(queue, &fixture.owner, site_id, None).await,
                Err(AppError::Conflict(_))
            ),
            "{backend}: not before the site is installed"
        );
        fixture
            .finish(
                created.job_id.0,
                FollowUp::Site {
                    site_id,
                    removing: false,
                },
                Finished::Succeeded(&succeeded()),
            )
            .await;
        not_found(
            deployments::deploy(queue, &fixture.other, site_id, None)
                .await
                .unwrap_err(),
        );
        let errors = fields(
            deployments::deploy(queue, &fixture.owner, site_id, Some("not-a-commit"))
                .await
                .unwrap_err(),
        );
        assert!(errors.first("commit").is_some(), "{backend}");
        let before = fixture.jobs().await.len();
        let first = deployments::deploy(queue, &fixture.owner, site_id, None).await.unwrap();
        let second = deployments::deploy(queue, &fixture.owner, site_id, Some(COMMIT_B))
            .await
            .unwrap();
        let jobs = fixture.jobs().await;
        assert_eq!(jobs.len(), before + 2, "{backend}: one job per deployment");
        for (job, started) in jobs[before..].iter().zip([&first, &second]) {
            assert_eq!(job.kind, DEPLOYMENT_KIND);
            assert_eq!(job.id, started.job_id);
            assert_eq!(
                job.exclusivity_key.as_deref(),
                Some(format!("server:{}", fixture.server_id).as_str())
            );
            let payload: DeploymentPayload = serde_json::from_value(job.payload.clone()).unwrap();
            assert_eq!(payload.deployment_id, started.deployment.id);
            assert_eq!(payload.site_id, site_id);
        }
        assert_eq!(first.deployment.status, "queued");
        assert_eq!(first.deployment.trigger_kind, "manual");
        assert_eq!(first.deployment.branch.as_deref(), Some("main"));
        assert_eq!(
            first.deployment.commit_sha, None,
            "{backend}: the job resolves the branch head"
        );
        assert_eq!(second.deployment.commit_sha.as_deref(), Some(COMMIT_B));
        assert!(
            second.deployment.release_id > first.deployment.release_id,
            "{backend}: each deployment gets its own release directory"
        );
        assert_eq!(first.deployment.job_id, Some(first.job_id.0));

        // Outcomes as the job records them: the release goes live, or the failure is kept.
        deployment_table::set_commit(fixture.db(), first.deployment.id, COMMIT_A, Some("Ada"), Some("First"))
            .await
            .unwrap();
        deployment_table::finish(fixture.db(), first.deployment.id, deployment_table::SUCCEEDED, None)
            .await
            .unwrap();
        site_table::set_live_release(
            fixture.db(),
            site_id,
            &first.deployment.release_id,
            Some(COMMIT_A),
            brokeforge_db::clock::now(),
        )
        .await
        .unwrap();
        deployment_table::finish(
            fixture.db(),
            second.deployment.id,
            deployment_table::FAILED,
            Some("the deploy script failed (exit code 1)"),
        )
        .await
        .unwrap();
        let history = deployments::list(queue, &fixture.owner, site_id, None, 50)
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "{backend}");
        assert_eq!(history[0].status, "failed");
        assert_eq!(history[1].author.as_deref(), Some("Ada"));
        let releases = deployments::releases(fixture.db(), &fixture.owner, site_id)
            .await
            .unwrap();
        assert_eq!(releases.len(), 1, "{backend}: only finished deployments leave releases");
        assert!(releases[0].is_current);
        not_found(
            deployments::list(queue, &fixture.other, site_id, None, 50)
                .await
                .unwrap_err(),
        );

        // Rollbacks: to kept releases only, never to the live one.
        assert!(matches!(
            deployments::rollback(queue, &fixture.owner, site_id, &first.deployment.release_id).await,
            Err(AppError::Conflict(_))
        ));
        let errors = fields(
            deployments::rollback(queue, &fixture.owner, site_id, "20200101000000")
                .await
                .unwrap_err(),
        );
        assert!(
            errors.first("release").unwrap().contains("no longer keeps"),
            "{backend}"
        );
        let third = deployments::deploy(queue, &fixture.owner, site_id, Some(COMMIT_B))
            .await
            .unwrap();
        deployment_table::finish(fixture.db(), third.deployment.id, deployment_table::SUCCEEDED, None)
            .await
            .unwrap();
        site_table::set_live_release(
            fixture.db(),
            site_id,
            &third.deployment.release_id,
            Some(COMMIT_B),
            brokeforge_db::clock::now(),
        )
        .await
        .unwrap();
        let rollback = deployments::rollback(queue, &fixture.owner, site_id, &first.deployment.release_id)
            .await
            .unwrap();
        assert_eq!(rollback.deployment.trigger_kind, "rollback");
        assert_eq!(rollback.deployment.commit_sha.as_deref(), Some(COMMIT_A));
        assert_eq!(rollback.deployment.release_id, first.deployment.release_id);

        // Keeping fewer releases hides the older ones from rollbacks.
        sites::update_deploy_settings(
            fixture.db(),
            &fixture.owner,
            site_id,
            &DeploySettingsInput {
                keep_releases: Some(json!(1)),
                ..DeploySettingsInput::default()
            },
        )
        .await
        .unwrap();
        let kept = deployments::releases(fixture.db(), &fixture.owner, site_id)
            .await
            .unwrap();
        assert_eq!(kept.len(), 1, "{backend}");
        assert_eq!(kept[0].release_id, third.deployment.release_id);

        // A cancelled job's deployment is recorded as failed when the history is read.
        let cancelled = deployments::deploy(queue, &fixture.owner, site_id, None).await.unwrap();
        queue.cancel(cancelled.job_id).await.unwrap();
        let shown = deployments::get(queue, &fixture.owner, site_id, cancelled.deployment.id)
            .await
            .unwrap();
        assert_eq!(shown.status, "failed", "{backend}");
        assert_eq!(shown.error.as_deref(), Some("its job was cancelled"));
    }
}

#[tokio::test]
async fn deploy_settings_are_validated_and_owned() {
    for fixture in both().await {
        let backend = fixture.backend;
        let site_id = fixture.active_site("settings.example.com").await;
        let bad = DeploySettingsInput {
            git_repository: Some("http://example.com/repo.git".to_owned()),
            git_branch: Some("a..b".to_owned()),
            deploy_script: Some("echo\0".to_owned()),
            keep_releases: Some(json!(0)),
            git_host_keys: Some(json!([
                "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
                "@revoked x y z"
            ])),
        };
        let errors = fields(
            sites::update_deploy_settings(fixture.db(), &fixture.owner, site_id, &bad)
                .await
                .unwrap_err(),
        );
        let names: Vec<&str> = errors.fields().collect();
        assert_eq!(
            names,
            [
                "deploy_script",
                "git_branch",
                "git_host_keys",
                "git_repository",
                "keep_releases"
            ],
            "{backend}"
        );
        assert!(
            errors.iter().any(|(field, messages)| field == "git_host_keys"
                && messages.iter().any(|message| message.starts_with("Line 2:"))),
            "{backend}: {errors:?}"
        );
        let good = DeploySettingsInput {
            git_repository: Some("https://github.com/acme/site.git".to_owned()),
            git_branch: Some("release/2.x".to_owned()),
            deploy_script: Some("npm ci\r\nnpm run build\r\n".to_owned()),
            keep_releases: Some(json!("3")),
            git_host_keys: Some(json!(
                "# our Git server\n[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsab\n"
            )),
        };
        let saved = sites::update_deploy_settings(fixture.db(), &fixture.owner, site_id, &good)
            .await
            .unwrap();
        assert_eq!(saved.git_branch.as_deref(), Some("release/2.x"));
        assert_eq!(saved.deploy_script, "npm ci\nnpm run build\n");
        assert_eq!(saved.keep_releases, 3);
        assert_eq!(
            saved.git_host_keys,
            "[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsab\n"
        );
        not_found(
            sites::update_deploy_settings(fixture.db(), &fixture.other, site_id, &good)
                .await
                .unwrap_err(),
        );
        let writer_without_write = principal(fixture.owner.user_id, &[Scope::Read, Scope::Deploy]);
        assert!(matches!(
            sites::update_deploy_settings(fixture.db(), &writer_without_write, site_id, &good).await,
            Err(AppError::Forbidden(_))
        ));
    }
}

fn github_push(reference: &str, after: &str) -> Vec<u8> {
    json!({
        "ref": reference,
        "after": after,
        "head_commit": { "id": after, "message": "Ship it\n\nDetails", "author": { "name": "Grace" } },
        "repository": { "full_name": "acme/site" },
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn webhooks_deploy_signed_pushes_to_the_sites_branch_only() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let sealer = &fixture.environment.sealer;
        let site_id = fixture.active_site("hooks.example.com").await;
        let body = github_push("refs/heads/main", COMMIT_A);

        // Off: the webhook answers like an unknown site, whatever is sent.
        let unsigned = WebhookRequest {
            event: Some("push"),
            body: &body,
            ..WebhookRequest::default()
        };
        assert!(matches!(
            webhooks::receive(queue, sealer, site_id, Provider::GitHub, &unsigned).await,
            Err(WebhookError::NotFound)
        ));
        assert!(matches!(
            sites::enable_webhook(fixture.db(), sealer, &fixture.other, site_id).await,
            Err(AppError::NotFound(_))
        ));
        let secret = sites::enable_webhook(fixture.db(), sealer, &fixture.owner, site_id)
            .await
            .unwrap()
            .secret;
        assert_eq!(secret.expose().len(), 64, "{backend}: 256 random bits");
        assert!(fixture.site(site_id).await.unwrap().webhook_enabled);
        let secret = secret.expose().as_bytes().to_vec();

        // Wrong or missing signatures are refused before anything is read.
        let before = fixture.jobs().await.len();
        for signature in [
            None,
            Some("sha256=00".to_owned()),
            Some(webhooks::sign(b"wrong", &body)),
        ] {
            let forged = WebhookRequest {
                event: Some("push"),
                signature: signature.as_deref(),
                body: &body,
                ..WebhookRequest::default()
            };
            assert!(
                matches!(
                    webhooks::receive(queue, sealer, site_id, Provider::GitHub, &forged).await,
                    Err(WebhookError::BadSignature)
                ),
                "{backend}: {signature:?}"
            );
        }
        // A signature over another body does not fit this one.
        let tampered = github_push("refs/heads/main", COMMIT_B);
        let signature = webhooks::sign(&secret, &body);
        let forged = WebhookRequest {
            event: Some("push"),
            signature: Some(&signature),
            body: &tampered,
            ..WebhookRequest::default()
        };
        assert!(matches!(
            webhooks::receive(queue, sealer, site_id, Provider::GitHub, &forged).await,
            Err(WebhookError::BadSignature)
        ));
        assert_eq!(fixture.jobs().await.len(), before, "{backend}");

        // A signed push to the site's branch deploys the pushed commit.
        let signed = WebhookRequest {
            event: Some("push"),
            signature: Some(&signature),
            delivery_id: Some("delivery-1"),
            body: &body,
            ..WebhookRequest::default()
        };
        let WebhookOutcome::Queued { deployment_id, job_id } =
            webhooks::receive(queue, sealer, site_id, Provider::GitHub, &signed)
                .await
                .unwrap()
        else {
            panic!("{backend}: expected a deployment");
        };
        let deployment = deployments::get(queue, &fixture.owner, site_id, deployment_id)
            .await
            .unwrap();
        assert_eq!(
            deployment.commit_sha.as_deref(),
            Some(COMMIT_A),
            "{backend}: the pushed commit"
        );
        assert_eq!(deployment.trigger_kind, "webhook");
        assert_eq!(deployment.provider.as_deref(), Some("github"));
        assert_eq!(deployment.author.as_deref(), Some("Grace"));
        assert_eq!(deployment.message.as_deref(), Some("Ship it"));
        assert_eq!(deployment.job_id, Some(job_id.0));
        assert_eq!(fixture.jobs().await.len(), before + 1, "{backend}");

        // The same delivery again, or the same commit while it is pending: nothing new.
        for delivery in [Some("delivery-1"), Some("delivery-2"), None] {
            let replay = WebhookRequest {
                delivery_id: delivery,
                ..signed
            };
            let outcome = webhooks::receive(queue, sealer, site_id, Provider::GitHub, &replay)
                .await
                .unwrap();
            assert!(matches!(outcome, WebhookOutcome::Ignored(_)), "{backend}: {outcome:?}");
        }
        assert_eq!(fixture.jobs().await.len(), before + 1, "{backend}");

        // Another branch, a tag, another event: ignored with a reason.
        for (event, reference) in [
            ("push", "refs/heads/develop"),
            ("push", "refs/tags/v1.0.0"),
            ("issues", "refs/heads/main"),
        ] {
            let other_body = github_push(reference, COMMIT_B);
            let other_signature = webhooks::sign(&secret, &other_body);
            let other = WebhookRequest {
                event: Some(event),
                signature: Some(&other_signature),
                body: &other_body,
                ..WebhookRequest::default()
            };
            let WebhookOutcome::Ignored(reason) = webhooks::receive(queue, sealer, site_id, Provider::GitHub, &other)
                .await
                .unwrap()
            else {
                panic!("{backend}: {event} {reference} must be ignored");
            };
            assert!(!reason.is_empty());
        }
        assert_eq!(fixture.jobs().await.len(), before + 1, "{backend}");

        // GitLab: the token header, compared with the secret.
        let gitlab_body = json!({ "ref": "refs/heads/main", "after": COMMIT_B, "commits": [] }).to_string();
        let wrong_token = WebhookRequest {
            event: Some("Push Hook"),
            token: Some("guess"),
            body: gitlab_body.as_bytes(),
            ..WebhookRequest::default()
        };
        assert!(matches!(
            webhooks::receive(queue, sealer, site_id, Provider::GitLab, &wrong_token).await,
            Err(WebhookError::BadSignature)
        ));
        let secret_text = String::from_utf8(secret.clone()).unwrap();
        let gitlab = WebhookRequest {
            token: Some(&secret_text),
            ..wrong_token
        };
        assert!(matches!(
            webhooks::receive(queue, sealer, site_id, Provider::GitLab, &gitlab)
                .await
                .unwrap(),
            WebhookOutcome::Queued { .. }
        ));

        // Generic: signed empty body deploys the branch head (resolved by the job).
        let generic_signature = webhooks::sign(&secret, b"");
        let generic = WebhookRequest {
            signature: Some(&generic_signature),
            ..WebhookRequest::default()
        };
        let WebhookOutcome::Queued { deployment_id, .. } =
            webhooks::receive(queue, sealer, site_id, Provider::Generic, &generic)
                .await
                .unwrap()
        else {
            panic!("{backend}: expected a deployment");
        };
        let deployment = deployments::get(queue, &fixture.owner, site_id, deployment_id)
            .await
            .unwrap();
        assert_eq!(deployment.commit_sha, None);
        assert_eq!(deployment.branch.as_deref(), Some("main"));

        // Another site's id with this site's signature is not found; turned off, neither is this one.
        let other_site = fixture.active_site("other.example.com").await;
        assert!(matches!(
            webhooks::receive(queue, sealer, other_site, Provider::GitHub, &signed).await,
            Err(WebhookError::NotFound)
        ));
        sites::enable_webhook(fixture.db(), sealer, &fixture.owner, other_site)
            .await
            .unwrap();
        assert!(matches!(
            webhooks::receive(queue, sealer, other_site, Provider::GitHub, &signed).await,
            Err(WebhookError::BadSignature)
        ));
        sites::disable_webhook(fixture.db(), &fixture.owner, site_id)
            .await
            .unwrap();
        assert!(matches!(
            webhooks::receive(queue, sealer, site_id, Provider::GitHub, &signed).await,
            Err(WebhookError::NotFound)
        ));
    }
}

#[tokio::test]
async fn site_commands_need_a_live_release_and_are_one_job_each() {
    for fixture in both().await {
        let backend = fixture.backend;
        let queue = fixture.queue();
        let site_id = fixture.active_site("commands.example.com").await;
        let command = CommandInput {
            command: Some("php artisan migrate --force".to_owned()),
            timeout_seconds: Some(json!("300")),
        };
        assert!(matches!(
            site_commands::run(queue, &fixture.owner, site_id, &command).await,
            Err(AppError::Conflict(_))
        ));
        site_table::set_live_release(
            fixture.db(),
            site_id,
            "20261127093000",
            Some(COMMIT_A),
            brokeforge_db::clock::now(),
        )
        .await
        .unwrap();
        let errors = fields(
            site_commands::run(
                queue,
                &fixture.owner,
                site_id,
                &CommandInput {
                    command: Some("  ".to_owned()),
                    timeout_seconds: Some(json!(0)),
                },
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            ["command", "timeout_seconds"],
            "{backend}"
        );
        not_found(
            site_commands::run(queue, &fixture.other, site_id, &command)
                .await
                .unwrap_err(),
        );
        let reader = principal(fixture.owner.user_id, &[Scope::Read, Scope::Write]);
        assert!(matches!(
            site_commands::run(queue, &reader, site_id, &command).await,
            Err(AppError::Forbidden(_))
        ));
        let before = fixture.jobs().await.len();
        let started = site_commands::run(queue, &fixture.owner, site_id, &command)
            .await
            .unwrap();
        let jobs = fixture.jobs().await;
        assert_eq!(jobs.len(), before + 1, "{backend}");
        let job = jobs.last().unwrap();
        assert_eq!(job.kind, COMMAND_KIND);
        assert_eq!(
            job.max_attempts, 1,
            "{backend}: a command is never run twice by the queue"
        );
        let payload: CommandPayload = serde_json::from_value(job.payload.clone()).unwrap();
        assert_eq!(payload.run_id, started.run.id);
        assert_eq!(started.run.timeout_seconds, 300);
        assert_eq!(started.run.status, "queued");
        let history = site_commands::list(queue, &fixture.owner, site_id, None, 10)
            .await
            .unwrap();
        assert_eq!(history.len(), 1, "{backend}");
        assert_eq!(history[0].command, "php artisan migrate --force");
        not_found(
            site_commands::list(queue, &fixture.other, site_id, None, 10)
                .await
                .unwrap_err(),
        );
        not_found(
            site_commands::get(queue, &fixture.other, site_id, started.run.id)
                .await
                .unwrap_err(),
        );
    }
}

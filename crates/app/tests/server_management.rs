//! PHP versions and firewall rules after provisioning, on SQLite and on PostgreSQL:
//! other users' servers are not found, scopes are enforced, input is validated into
//! the packages' types field by field, a rule closing the SSH port is refused, a PHP
//! version in use or set as the default cannot be removed, every change enqueues
//! exactly one job with the right payload, and follow-ups move rules and extension
//! lists on as their jobs end.

mod common;

use brokeforge_app::AppError;
use brokeforge_app::auth::Scope;
use brokeforge_app::firewall_rules::{self, RuleInput};
use brokeforge_app::follow_up::{self, Finished, FollowUp};
use brokeforge_app::operations::{
    EventTarget, OperationError, OperationOutcome, PACKAGE_OPERATION_KIND, PackageOperation, PackageOperationPayload,
};
use brokeforge_app::php_versions;
use brokeforge_core::PhpVersion;
use brokeforge_db::firewall_rules as rule_table;
use brokeforge_db::package_records;
use brokeforge_db::with_pool;
use brokeforge_packages::firewall::rule::{PortSpec, Protocol, RuleAction};
use brokeforge_packages::php::extension::PhpExtension;
use brokeforge_queue::JobId;
use common::{BackendFixture, fields, principal, server};
use serde_json::json;

/// A fixture on each backend, its server recorded with SSH on port 2222 and nothing
/// installed on it yet.
async fn both() -> Vec<BackendFixture> {
    BackendFixture::on_both_backends(2222, &[]).await
}

impl BackendFixture {
    /// Records what provisioning leaves: the firewall, and PHP versions with the given
    /// extensions, `default` as the command-line default.
    async fn provisioned(&self, server_id: i64, versions: &[(&str, &[&str])], default: &str) {
        package_records::upsert_server_package(
            self.db(),
            server_id,
            "firewall",
            "ufw",
            "",
            "distro",
            &json!({ "ssh_port": 2222 }),
            "active",
        )
        .await
        .unwrap();
        for (version, extensions) in versions {
            package_records::upsert_server_package(
                self.db(),
                server_id,
                "php",
                "php",
                version,
                version,
                &json!({ "source": "sury", "extensions": extensions, "fpm_service": format!("php{version}-fpm") }),
                "active",
            )
            .await
            .unwrap();
        }
        package_records::upsert_server_package(
            self.db(),
            server_id,
            "php",
            "php-cli-default",
            "",
            default,
            &serde_json::Value::Null,
            "active",
        )
        .await
        .unwrap();
    }

    async fn site(&self, domain: &str, php_version: &str) {
        with_pool!(self.db(), |pool| sqlx::query(
            "INSERT INTO server_sites (server_id, domain, site_type, document_root, php_version, created_at, \
             updated_at) VALUES ($1, $2, 'php', '/home/brokeforge/site/current/public', $3, $4, $4)"
        )
        .bind(self.server_id)
        .bind(domain)
        .bind(php_version)
        .bind(brokeforge_db::clock::now())
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());
    }

    /// The payload of the one job enqueued since `before` jobs existed.
    async fn only_new_job(&self, before: usize, job_id: JobId) -> PackageOperationPayload {
        let jobs = self.jobs().await;
        assert_eq!(jobs.len(), before + 1, "{}: exactly one job per change", self.backend);
        let job = jobs.last().unwrap();
        assert_eq!(job.id, job_id, "{}", self.backend);
        assert_eq!(job.kind, PACKAGE_OPERATION_KIND);
        assert_eq!(
            job.exclusivity_key.as_deref(),
            Some(format!("server:{}", self.server_id).as_str())
        );
        serde_json::from_value(job.payload.clone()).unwrap()
    }

    /// The status and error of rule `rule_id`; `None` once the rule is deleted.
    async fn rule_status(&self, rule_id: i64) -> Option<(String, Option<String>)> {
        rule_table::find_by_id(self.db(), rule_id)
            .await
            .unwrap()
            .map(|rule| (rule.status, rule.error))
    }

    /// Runs the follow-up of job `job_id` on rule `rule_id`; returns the rule's status
    /// and error after it.
    async fn finish_rule(
        &self,
        job_id: JobId,
        rule_id: i64,
        finished: Finished<'_>,
    ) -> Option<(String, Option<String>)> {
        let follow_up = FollowUp::FirewallRule { rule_id };
        follow_up::run(&self.environment, self.server_id, job_id.0, &follow_up, finished)
            .await
            .unwrap();
        self.rule_status(rule_id).await
    }

    async fn audit_actions(&self) -> Vec<String> {
        brokeforge_app::audit::list_for_server(self.db(), self.owner.user_id, self.server_id, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.action)
            .collect()
    }
}

fn conflict(error: AppError) -> String {
    match error {
        AppError::Conflict(message) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn rule(action: &str, port: serde_json::Value, protocol: &str) -> RuleInput {
    RuleInput {
        action: Some(action.to_owned()),
        port: Some(port),
        protocol: Some(protocol.to_owned()),
        source: None,
        comment: None,
    }
}

#[tokio::test]
async fn firewall_rules_are_owned_scoped_and_validated() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture.provisioned(fixture.server_id, &[], "8.3").await;
        let queue = fixture.queue();
        let input = rule("allow", json!(8080), "tcp");

        // Another user's server answers like an unknown one, for every use case.
        for result in [
            firewall_rules::list(fixture.db(), &fixture.other, fixture.server_id)
                .await
                .map(|_| ()),
            firewall_rules::add(queue, &fixture.other, fixture.server_id, &input)
                .await
                .map(|_| ()),
            firewall_rules::remove(queue, &fixture.other, fixture.server_id, 1)
                .await
                .map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(AppError::NotFound("server"))),
                "{backend}: {result:?}"
            );
        }

        // Listing needs `read`; changing needs `deploy`.
        let read_only = principal(fixture.owner.user_id, &[Scope::Read, Scope::Write]);
        assert!(
            firewall_rules::list(fixture.db(), &read_only, fixture.server_id)
                .await
                .unwrap()
                .is_empty()
        );
        let refused = firewall_rules::add(queue, &read_only, fixture.server_id, &input).await;
        assert!(matches!(refused, Err(AppError::Forbidden(_))), "{backend}: {refused:?}");
        let no_read = principal(fixture.owner.user_id, &[Scope::Write, Scope::Deploy]);
        let refused = firewall_rules::list(fixture.db(), &no_read, fixture.server_id).await;
        assert!(matches!(refused, Err(AppError::Forbidden(_))), "{backend}: {refused:?}");

        // Every invalid field is named, with the packages' own reasons.
        let bad = RuleInput {
            action: Some("drop".to_owned()),
            port: Some(json!("3000-3005")),
            protocol: Some("icmp".to_owned()),
            source: Some("10.0.0.0/40".to_owned()),
            comment: Some("it's mine".to_owned()),
        };
        let errors = fields(
            firewall_rules::add(queue, &fixture.owner, fixture.server_id, &bad)
                .await
                .unwrap_err(),
        );
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            ["action", "comment", "port", "protocol", "source"],
            "{backend}"
        );
        assert_eq!(
            errors.first("port"),
            Some("Write a port range with a colon, like 3000:3005.")
        );
        assert_eq!(
            errors.first("comment"),
            Some("A comment cannot contain a single quote (').")
        );
        let missing = fields(
            firewall_rules::add(queue, &fixture.owner, fixture.server_id, &RuleInput::default())
                .await
                .unwrap_err(),
        );
        assert_eq!(missing.fields().collect::<Vec<_>>(), ["port"]);
        assert!(fixture.jobs().await.is_empty(), "{backend}: nothing enqueued");
        assert!(
            rule_table::list_for_server(fixture.db(), fixture.server_id)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_rule_that_would_close_the_ssh_port_is_refused() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture.provisioned(fixture.server_id, &[], "8.3").await;
        let queue = fixture.queue();
        // The server's own SSH port (2222), alone or inside a range, cannot be denied.
        for port in [json!(2222), json!("2000:3000")] {
            let errors = fields(
                firewall_rules::add(queue, &fixture.owner, fixture.server_id, &rule("deny", port, "tcp"))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(
                errors.first("port"),
                Some("This rule would block SSH on port 2222, which BrokeForge needs to reach the server."),
                "{backend}"
            );
        }
        assert!(fixture.jobs().await.is_empty(), "{backend}");
        // Port 22 is not this server's SSH port; UDP on 2222 is not SSH.
        for (port, protocol) in [(json!(22), "tcp"), (json!(2222), "udp")] {
            firewall_rules::add(queue, &fixture.owner, fixture.server_id, &rule("deny", port, protocol))
                .await
                .unwrap();
        }
        assert_eq!(fixture.jobs().await.len(), 2, "{backend}");

        // A server without the firewall refuses rules until provisioning installed it.
        let bare = server(fixture.db(), fixture.owner.user_id, "bare", 22).await;
        let message = conflict(
            firewall_rules::add(queue, &fixture.owner, bare, &rule("allow", json!(8080), "tcp"))
                .await
                .unwrap_err(),
        );
        assert!(message.contains("firewall is not installed"), "{backend}: {message}");
    }
}

#[tokio::test]
async fn adding_and_removing_a_rule_enqueue_one_job_each() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture.provisioned(fixture.server_id, &[], "8.3").await;
        let queue = fixture.queue();
        let input = RuleInput {
            action: Some("allow".to_owned()),
            port: Some(json!("3000:3005")),
            protocol: Some("udp".to_owned()),
            source: Some("10.1.2.3/8".to_owned()),
            comment: Some("  Game servers  ".to_owned()),
        };
        let added = firewall_rules::add(queue, &fixture.owner, fixture.server_id, &input)
            .await
            .unwrap();
        let payload = fixture.only_new_job(0, added.job_id).await;
        assert_eq!(
            payload.events,
            EventTarget::Server {
                server_id: fixture.server_id
            }
        );
        assert_eq!(
            payload.follow_up,
            Some(FollowUp::FirewallRule { rule_id: added.rule.id })
        );
        let PackageOperation::FirewallRuleInstall(sent) = &payload.operation else {
            panic!("{backend}: expected a rule installation, got {:?}", payload.operation)
        };
        assert_eq!(sent.ssh_port.get(), 2222);
        assert_eq!(sent.rule.action, RuleAction::Allow);
        assert_eq!(sent.rule.port, "3000:3005".parse::<PortSpec>().unwrap());
        assert_eq!(sent.rule.protocol, Protocol::Udp);
        assert_eq!(sent.rule.source.unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(sent.rule.comment.as_ref().unwrap().as_str(), "Game servers");

        // The row is stored normalized, waiting for its job.
        let rules = firewall_rules::list(fixture.db(), &fixture.owner, fixture.server_id)
            .await
            .unwrap();
        assert_eq!(rules.len(), 1, "{backend}");
        let stored = &rules[0];
        assert_eq!(
            (
                stored.rule_action.as_str(),
                stored.port.as_str(),
                stored.protocol.as_str(),
                stored.source.as_deref(),
                stored.comment.as_deref(),
                stored.status.as_str(),
                stored.job_id
            ),
            (
                "allow",
                "3000:3005",
                "udp",
                Some("10.0.0.0/8"),
                Some("Game servers"),
                "installing",
                Some(added.job_id.0)
            ),
            "{backend}"
        );

        // The same rule twice is refused.
        let errors = fields(
            firewall_rules::add(queue, &fixture.owner, fixture.server_id, &input)
                .await
                .unwrap_err(),
        );
        assert!(
            errors.first("port").unwrap().contains("already has this rule"),
            "{backend}"
        );

        // Removing: one job carrying the stored rule, the row marked `removing`.
        let removal = firewall_rules::remove(queue, &fixture.owner, fixture.server_id, stored.id)
            .await
            .unwrap();
        let payload = fixture.only_new_job(1, removal.job_id).await;
        let PackageOperation::FirewallRuleRemove(sent) = &payload.operation else {
            panic!("{backend}: expected a rule removal, got {:?}", payload.operation)
        };
        assert_eq!(sent.rule.port.to_string(), "3000:3005");
        assert_eq!(sent.ssh_port.get(), 2222);
        assert_eq!(payload.follow_up, Some(FollowUp::FirewallRule { rule_id: stored.id }));
        assert_eq!(removal.rule.status, "removing");
        assert_eq!(removal.rule.job_id, Some(removal.job_id.0));
        let message = conflict(
            firewall_rules::remove(queue, &fixture.owner, fixture.server_id, stored.id)
                .await
                .unwrap_err(),
        );
        assert!(message.contains("already being removed"), "{backend}: {message}");
        assert_eq!(fixture.jobs().await.len(), 2, "{backend}");

        // Unknown rules, and rules of another server, are not found.
        let elsewhere = server(fixture.db(), fixture.owner.user_id, "web-2", 22).await;
        let missing = firewall_rules::remove(queue, &fixture.owner, elsewhere, stored.id).await;
        assert!(
            matches!(missing, Err(AppError::NotFound("firewall rule"))),
            "{backend}: {missing:?}"
        );

        let actions = fixture.audit_actions().await;
        assert!(
            actions.contains(&"firewall_rule.added".to_owned()),
            "{backend}: {actions:?}"
        );
        assert!(
            actions.contains(&"firewall_rule.removal_started".to_owned()),
            "{backend}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_rule_status_follows_its_job() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture.provisioned(fixture.server_id, &[], "8.3").await;
        let queue = fixture.queue();
        let outcome = OperationOutcome {
            changed: true,
            steps_run: 1,
        };
        let refused = OperationError::Refused("ufw said no".to_owned());
        // Installed: nothing while the queue retries, then active.
        let first = firewall_rules::add(
            queue,
            &fixture.owner,
            fixture.server_id,
            &rule("allow", json!(8080), "tcp"),
        )
        .await
        .unwrap();
        let status = fixture
            .finish_rule(first.job_id, first.rule.id, Finished::WillRetry(&refused))
            .await;
        assert_eq!(status, Some(("installing".to_owned(), None)), "{backend}");
        // A job the rule is not waiting for changes nothing.
        let status = fixture
            .finish_rule(
                JobId(first.job_id.0 + 1000),
                first.rule.id,
                Finished::Succeeded(&outcome),
            )
            .await;
        assert_eq!(status, Some(("installing".to_owned(), None)), "{backend}");
        let status = fixture
            .finish_rule(first.job_id, first.rule.id, Finished::Succeeded(&outcome))
            .await;
        assert_eq!(status, Some(("active".to_owned(), None)), "{backend}");

        // Failed for good: failed, with the job's message.
        let second = firewall_rules::add(
            queue,
            &fixture.owner,
            fixture.server_id,
            &rule("deny", json!(25), "tcp"),
        )
        .await
        .unwrap();
        let status = fixture
            .finish_rule(second.job_id, second.rule.id, Finished::Failed(&refused))
            .await;
        assert_eq!(
            status,
            Some(("failed".to_owned(), Some("ufw said no".to_owned()))),
            "{backend}"
        );

        // A failed rule can be removed; the row goes once the removal succeeded.
        let removal = firewall_rules::remove(queue, &fixture.owner, fixture.server_id, second.rule.id)
            .await
            .unwrap();
        assert_eq!(
            fixture.rule_status(second.rule.id).await,
            Some(("removing".to_owned(), None)),
            "{backend}"
        );
        let status = fixture
            .finish_rule(removal.job_id, second.rule.id, Finished::Failed(&refused))
            .await;
        assert_eq!(
            status,
            Some(("failed".to_owned(), Some("ufw said no".to_owned()))),
            "{backend}"
        );
        // The failed removal, retried from its job page, succeeds: its payload says it
        // removes the rule, whatever the row's status.
        let status = fixture
            .finish_rule(removal.job_id, second.rule.id, Finished::Succeeded(&outcome))
            .await;
        assert_eq!(status, None, "{backend}: removed rules are deleted");

        // A job that ends before the rule names it still finds the rule waiting.
        let quick = rule_table::insert(
            fixture.db(),
            &rule_table::NewFirewallRule {
                server_id: fixture.server_id,
                rule_action: "allow",
                port: "9000",
                protocol: "tcp",
                source: None,
                comment: None,
                status: "installing",
            },
        )
        .await
        .unwrap();
        fixture
            .finish_rule(JobId(777), quick.id, Finished::Succeeded(&outcome))
            .await;
        assert!(rule_table::set_job(fixture.db(), quick.id, 777).await.unwrap());
        let quick = rule_table::find_by_id(fixture.db(), quick.id).await.unwrap().unwrap();
        assert_eq!(
            (quick.status.as_str(), quick.job_id),
            ("active", Some(777)),
            "{backend}"
        );
        // Once named, the job is not replaced by a late call.
        assert!(!rule_table::set_job(fixture.db(), quick.id, 778).await.unwrap());
    }
}

#[tokio::test]
async fn php_versions_are_listed_with_default_extensions_and_sites() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture
            .provisioned(
                fixture.server_id,
                &[("8.3", &["mbstring", "curl"]), ("8.2", &["curl"])],
                "8.3",
            )
            .await;
        fixture.site("shop.example.com", "8.2").await;
        let read_only = principal(fixture.owner.user_id, &[Scope::Read]);
        let overview = php_versions::overview(fixture.queue(), &read_only, fixture.server_id)
            .await
            .unwrap();
        let summary: Vec<(PhpVersion, bool, Vec<String>, Vec<String>)> = overview
            .versions
            .iter()
            .map(|installed| {
                (
                    installed.version,
                    installed.is_cli_default,
                    installed.extensions.clone(),
                    installed.sites.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    PhpVersion::Php82,
                    false,
                    vec!["curl".to_owned()],
                    vec!["shop.example.com".to_owned()]
                ),
                (
                    PhpVersion::Php83,
                    true,
                    vec!["mbstring".to_owned(), "curl".to_owned()],
                    vec![]
                ),
            ],
            "{backend}"
        );
        assert_eq!(overview.cli_default, Some(PhpVersion::Php83));
        assert!(!overview.installable().contains(&PhpVersion::Php83));
        assert!(overview.installable().contains(&PhpVersion::Php84));
        let hidden = php_versions::overview(fixture.queue(), &fixture.other, fixture.server_id).await;
        assert!(
            matches!(hidden, Err(AppError::NotFound("server"))),
            "{backend}: {hidden:?}"
        );
        let no_read = principal(fixture.owner.user_id, &[Scope::Deploy]);
        let refused = php_versions::overview(fixture.queue(), &no_read, fixture.server_id).await;
        assert!(matches!(refused, Err(AppError::Forbidden(_))), "{backend}: {refused:?}");
    }
}

#[tokio::test]
async fn php_versions_install_once_and_are_not_removed_while_in_use() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture
            .provisioned(
                fixture.server_id,
                &[("8.3", &["curl"]), ("8.2", &[]), ("8.1", &[])],
                "8.3",
            )
            .await;
        fixture.site("shop.example.com", "8.2").await;
        let queue = fixture.queue();
        let owner = &fixture.owner;
        let server_id = fixture.server_id;

        // Ownership and scope come first.
        let hidden = php_versions::install(queue, &fixture.other, server_id, "8.4").await;
        assert!(
            matches!(hidden, Err(AppError::NotFound("server"))),
            "{backend}: {hidden:?}"
        );
        let read_write = principal(owner.user_id, &[Scope::Read, Scope::Write]);
        for result in [
            php_versions::install(queue, &read_write, server_id, "8.4").await,
            php_versions::remove(queue, &read_write, server_id, "8.1").await,
            php_versions::set_cli_default(queue, &read_write, server_id, "8.2").await,
            php_versions::install_extension(queue, &read_write, server_id, "8.3", "redis").await,
            php_versions::remove_extension(queue, &read_write, server_id, "8.3", "curl").await,
        ] {
            assert!(matches!(result, Err(AppError::Forbidden(_))), "{backend}: {result:?}");
        }

        // Installing: unknown and installed versions are refused; one job otherwise,
        // and a second request while it is pending is refused.
        let errors = fields(php_versions::install(queue, owner, server_id, "5.6").await.unwrap_err());
        assert!(
            errors.first("version").unwrap().starts_with("Unsupported PHP version"),
            "{backend}"
        );
        let message = conflict(php_versions::install(queue, owner, server_id, "8.3").await.unwrap_err());
        assert_eq!(message, "PHP 8.3 is already installed on this server.");
        let job = php_versions::install(queue, owner, server_id, "8.4").await.unwrap();
        let payload = fixture.only_new_job(0, job).await;
        let PackageOperation::PhpInstall(input) = &payload.operation else {
            panic!("{backend}: expected a PHP installation, got {:?}", payload.operation)
        };
        assert_eq!(input.version, PhpVersion::Php84);
        assert_eq!(payload.follow_up, None);
        let message = conflict(php_versions::install(queue, owner, server_id, "8.4").await.unwrap_err());
        assert_eq!(message, format!("Install PHP 8.4 is already under way (job #{job})."));
        let overview = php_versions::overview(queue, owner, server_id).await.unwrap();
        assert_eq!(overview.pending.len(), 1, "{backend}");
        assert_eq!(overview.pending[0].job_id, job.0);
        assert!(!overview.installable().contains(&PhpVersion::Php84));

        // Removing: refused while a site uses the version, while it is the default,
        // and when it is not installed; one job otherwise.
        let message = conflict(php_versions::remove(queue, owner, server_id, "8.2").await.unwrap_err());
        assert_eq!(
            message,
            "PHP 8.2 is used by the site shop.example.com; switch it to another PHP version or delete it first.",
            "{backend}"
        );
        let message = conflict(php_versions::remove(queue, owner, server_id, "8.3").await.unwrap_err());
        assert!(message.contains("command-line default"), "{backend}: {message}");
        let message = conflict(php_versions::remove(queue, owner, server_id, "7.4").await.unwrap_err());
        assert_eq!(message, "PHP 7.4 is not installed on this server; install it first.");
        assert_eq!(fixture.jobs().await.len(), 1, "{backend}: refusals enqueue nothing");
        let job = php_versions::remove(queue, owner, server_id, "8.1").await.unwrap();
        let payload = fixture.only_new_job(1, job).await;
        let PackageOperation::PhpRemove(input) = &payload.operation else {
            panic!("{backend}: expected a PHP removal, got {:?}", payload.operation)
        };
        assert_eq!(input.version, PhpVersion::Php81);

        // The default: refused when already set or not installed; one job otherwise.
        let message = conflict(
            php_versions::set_cli_default(queue, owner, server_id, "8.3")
                .await
                .unwrap_err(),
        );
        assert_eq!(message, "PHP 8.3 is already the command-line default.");
        conflict(
            php_versions::set_cli_default(queue, owner, server_id, "8.5")
                .await
                .unwrap_err(),
        );
        let job = php_versions::set_cli_default(queue, owner, server_id, "8.2")
            .await
            .unwrap();
        let payload = fixture.only_new_job(2, job).await;
        let PackageOperation::PhpCliDefaultInstall(input) = &payload.operation else {
            panic!("{backend}: expected a default change, got {:?}", payload.operation)
        };
        assert_eq!(input.version, PhpVersion::Php82);

        let actions = fixture.audit_actions().await;
        for action in ["php.install_started", "php.remove_started", "php.cli_default_started"] {
            assert!(
                actions.contains(&action.to_owned()),
                "{backend}: {action} in {actions:?}"
            );
        }
    }
}

#[tokio::test]
async fn php_extensions_are_validated_queued_and_recorded() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture
            .provisioned(fixture.server_id, &[("8.3", &["curl"]), ("8.5", &[])], "8.3")
            .await;
        let queue = fixture.queue();
        let owner = &fixture.owner;
        let server_id = fixture.server_id;

        // Names outside the PHP package's list are refused.
        for hostile in ["redis; reboot", "../redis", "Redis", ""] {
            let errors = fields(
                php_versions::install_extension(queue, owner, server_id, "8.3", hostile)
                    .await
                    .unwrap_err(),
            );
            assert!(
                errors.first("extension").unwrap().starts_with("Unknown PHP extension"),
                "{backend}: {hostile:?}"
            );
        }
        let errors = fields(
            php_versions::remove_extension(queue, owner, server_id, "8.5", "opcache")
                .await
                .unwrap_err(),
        );
        assert_eq!(
            errors.first("extension"),
            Some("Opcache is part of PHP 8.5 itself and cannot be removed.")
        );
        let message = conflict(
            php_versions::install_extension(queue, owner, server_id, "8.3", "curl")
                .await
                .unwrap_err(),
        );
        assert_eq!(message, "curl is already installed for PHP 8.3.");
        conflict(
            php_versions::install_extension(queue, owner, server_id, "8.4", "redis")
                .await
                .unwrap_err(),
        );
        assert!(fixture.jobs().await.is_empty(), "{backend}");

        // One job each, with the follow-up that records the outcome.
        let job = php_versions::install_extension(queue, owner, server_id, "8.3", "redis")
            .await
            .unwrap();
        let install = fixture.only_new_job(0, job).await;
        let PackageOperation::PhpExtensionInstall(input) = &install.operation else {
            panic!(
                "{backend}: expected an extension installation, got {:?}",
                install.operation
            )
        };
        assert_eq!(
            (input.version, input.extension),
            (PhpVersion::Php83, PhpExtension::Redis)
        );
        let message = conflict(
            php_versions::install_extension(queue, owner, server_id, "8.3", "redis")
                .await
                .unwrap_err(),
        );
        assert!(message.contains("already under way"), "{backend}: {message}");
        let removal_job = php_versions::remove_extension(queue, owner, server_id, "8.3", "curl")
            .await
            .unwrap();
        let removal = fixture.only_new_job(1, removal_job).await;
        assert_eq!(
            removal.follow_up,
            Some(FollowUp::PhpExtension {
                version: PhpVersion::Php83,
                extension: PhpExtension::Curl,
                installed: false
            })
        );

        let extensions = || async {
            php_versions::overview(queue, owner, server_id)
                .await
                .unwrap()
                .installed(PhpVersion::Php83)
                .unwrap()
                .extensions
                .clone()
        };
        let outcome = OperationOutcome {
            changed: true,
            steps_run: 3,
        };
        let failure = OperationError::Refused("apt failed".to_owned());
        let environment = &fixture.environment;
        let install_follow_up = install.follow_up.clone().unwrap();
        follow_up::run(
            environment,
            server_id,
            job.0,
            &install_follow_up,
            Finished::Failed(&failure),
        )
        .await
        .unwrap();
        assert_eq!(extensions().await, ["curl"], "{backend}: a failed job changes nothing");
        follow_up::run(
            environment,
            server_id,
            job.0,
            &install_follow_up,
            Finished::Succeeded(&outcome),
        )
        .await
        .unwrap();
        assert_eq!(extensions().await, ["curl", "redis"], "{backend}");
        follow_up::run(
            environment,
            server_id,
            removal_job.0,
            removal.follow_up.as_ref().unwrap(),
            Finished::Succeeded(&outcome),
        )
        .await
        .unwrap();
        assert_eq!(extensions().await, ["redis"], "{backend}");
        // The rest of the version's record is kept.
        let record = package_records::server_packages(fixture.db(), server_id)
            .await
            .unwrap()
            .into_iter()
            .find(|record| record.package_name == "php" && record.instance == "8.3")
            .unwrap();
        assert_eq!(record.configuration.0["source"], "sury", "{backend}");
    }
}

#[tokio::test]
async fn the_job_handler_runs_the_follow_up_of_a_rule() {
    for fixture in both().await {
        let backend = fixture.backend;
        fixture.provisioned(fixture.server_id, &[], "8.3").await;
        let queue = fixture.queue().clone();
        let mut registry = brokeforge_queue::Registry::new();
        brokeforge_app::operations::register(&mut registry, &fixture.environment);
        let mut config = brokeforge_queue::WorkerConfig::new(1);
        config.poll_interval = std::time::Duration::from_millis(20);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let pool = tokio::spawn(brokeforge_queue::WorkerPool::new(queue.clone(), registry, config).run(stopped));

        // The server was never bootstrapped, so the job fails for good at once, and
        // the rule says why.
        let added = firewall_rules::add(
            &queue,
            &fixture.owner,
            fixture.server_id,
            &rule("allow", json!(8080), "tcp"),
        )
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let rule = loop {
            let rule = rule_table::find_by_id(fixture.db(), added.rule.id)
                .await
                .unwrap()
                .unwrap();
            if rule.status != "installing" {
                break rule;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: the rule never left `installing`"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let _ = stop.send(true);
        pool.await.unwrap();
        assert_eq!(rule.status, "failed", "{backend}");
        assert_eq!(rule.job_id, Some(added.job_id.0));
        let error = rule.error.unwrap();
        assert!(error.contains("bootstrap"), "{backend}: {error}");
        let job = queue.get(added.job_id).await.unwrap().unwrap();
        assert_eq!(job.last_error.as_deref(), Some(error.as_str()), "{backend}");
    }
}

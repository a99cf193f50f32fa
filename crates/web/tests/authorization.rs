//! The authorization table: every route the router serves, called as an anonymous
//! visitor, as another user, with a token that lacks the route's scope, and as the
//! owner, with the status each must get. The routes come from the same table that
//! builds the router, so a new route without an entry here fails this test.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, header};
use brokeforge_app::auth::Scope;
use brokeforge_app::diagnostics::DiagnosticsInput;
use brokeforge_app::servers::{AddressPolicy, ServerInput};
use brokeforge_web::routes::{self, Access};
use common::{PASSWORD, TestApp, TestUser};
use serde_json::json;

/// Expected statuses: anonymous, other user, token without the scope, owner.
type Expected = [u16; 4];

fn expectations() -> BTreeMap<(&'static str, &'static str), Expected> {
    let entries: &[(&str, &str, Expected)] = &[
        ("GET", "/healthz", [200, 200, 200, 200]),
        ("GET", "/readyz", [200, 200, 200, 200]),
        ("GET", "/static/{file}", [200, 200, 200, 200]),
        ("GET", "/login", [200, 303, 200, 303]),
        ("POST", "/login", [403, 303, 403, 303]),
        ("POST", "/logout", [403, 303, 403, 303]),
        ("GET", "/setup/{token}", [404, 404, 404, 404]),
        ("POST", "/setup/{token}", [403, 404, 403, 404]),
        ("GET", "/account", [303, 200, 303, 200]),
        ("POST", "/account/password", [403, 303, 403, 303]),
        ("GET", "/account/tokens", [303, 200, 303, 200]),
        ("POST", "/account/tokens", [403, 200, 403, 200]),
        ("POST", "/account/tokens/{token_id}/revoke", [403, 404, 403, 303]),
        ("GET", "/admin/users", [303, 403, 303, 200]),
        ("POST", "/admin/users", [403, 403, 403, 303]),
        ("POST", "/admin/users/{user_id}/delete", [403, 403, 403, 303]),
        ("GET", "/", [303, 200, 303, 200]),
        ("GET", "/servers", [303, 200, 303, 200]),
        ("GET", "/servers/new", [303, 200, 303, 200]),
        ("POST", "/servers", [403, 303, 403, 303]),
        ("GET", "/servers/{server_id}", [303, 404, 303, 200]),
        ("GET", "/servers/{server_id}/edit", [303, 404, 303, 200]),
        ("POST", "/servers/{server_id}", [403, 404, 403, 303]),
        ("POST", "/servers/{server_id}/delete", [403, 404, 403, 303]),
        ("POST", "/servers/{server_id}/diagnostics", [403, 404, 403, 303]),
        ("GET", "/servers/{server_id}/php", [303, 404, 303, 200]),
        ("POST", "/servers/{server_id}/php", [403, 404, 403, 303]),
        (
            "POST",
            "/servers/{server_id}/php/{version}/remove",
            [403, 404, 403, 303],
        ),
        (
            "POST",
            "/servers/{server_id}/php/{version}/default",
            [403, 404, 403, 303],
        ),
        (
            "POST",
            "/servers/{server_id}/php/{version}/extensions",
            [403, 404, 403, 303],
        ),
        (
            "POST",
            "/servers/{server_id}/php/{version}/extensions/{extension}/remove",
            [403, 404, 403, 303],
        ),
        ("GET", "/servers/{server_id}/firewall", [303, 404, 303, 200]),
        ("POST", "/servers/{server_id}/firewall", [403, 404, 403, 303]),
        (
            "POST",
            "/servers/{server_id}/firewall/{rule_id}/remove",
            [403, 404, 403, 303],
        ),
        ("GET", "/servers/{server_id}/sites/new", [303, 404, 303, 200]),
        ("POST", "/servers/{server_id}/sites", [403, 404, 403, 303]),
        ("GET", "/sites/{site_id}", [303, 404, 303, 200]),
        ("POST", "/sites/{site_id}/deploy", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/rollback", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/reinstall", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/delete", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/default", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/default/unset", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/settings", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/webhook", [403, 404, 403, 200]),
        ("POST", "/sites/{site_id}/webhook/disable", [403, 404, 403, 303]),
        ("POST", "/sites/{site_id}/commands", [403, 404, 403, 303]),
        ("GET", "/sites/{site_id}/commands/{run_id}", [303, 404, 303, 200]),
        (
            "GET",
            "/sites/{site_id}/deployments/{deployment_id}",
            [303, 404, 303, 200],
        ),
        // The fixture's server has no pinned host key and its site no key of its own:
        // the owner's calls that reach the server answer 409.
        ("POST", "/sites/{site_id}/deploy-key", [403, 404, 403, 409]),
        ("POST", "/sites/{site_id}/deploy-key/delete", [403, 404, 403, 409]),
        ("GET", "/api/v1/sites/{site_id}/deploy-key", [401, 404, 403, 200]),
        ("POST", "/api/v1/sites/{site_id}/deploy-key", [401, 404, 403, 409]),
        ("DELETE", "/api/v1/sites/{site_id}/deploy-key", [401, 404, 403, 409]),
        // The fixture's server has no pinned host key: the owner's calls that reach
        // the server answer 409, and a missing path 422.
        ("GET", "/sites/{site_id}/env", [303, 404, 303, 409]),
        ("POST", "/sites/{site_id}/env", [403, 404, 403, 409]),
        ("GET", "/sites/{site_id}/files", [303, 404, 303, 409]),
        ("POST", "/sites/{site_id}/files", [403, 404, 403, 409]),
        ("POST", "/sites/{site_id}/files/delete", [403, 404, 403, 409]),
        ("GET", "/sites/{site_id}/files/download", [303, 404, 303, 422]),
        ("POST", "/webhooks/sites/{site_id}/{provider}", [401, 401, 401, 401]),
        ("GET", "/jobs", [303, 200, 303, 200]),
        ("GET", "/jobs/{job_id}", [303, 404, 303, 200]),
        ("GET", "/jobs/{job_id}/events", [303, 404, 303, 200]),
        ("POST", "/jobs/{job_id}/retry", [403, 404, 403, 303]),
        ("POST", "/jobs/{job_id}/cancel", [403, 404, 403, 303]),
        ("GET", "/activity", [303, 200, 303, 200]),
        ("GET", "/admin/users/{user_id}/activity", [303, 403, 303, 200]),
        ("GET", "/api", [200, 200, 200, 200]),
        ("GET", "/bootstrap/{token}", [200, 200, 200, 200]),
        ("POST", "/bootstrap/callback/{line_id}/{kind}", [401, 401, 401, 401]),
        ("GET", "/servers/{server_id}/onboarding", [303, 404, 303, 200]),
        ("POST", "/servers/{server_id}/bootstrap-line", [403, 404, 403, 303]),
        (
            "POST",
            "/servers/{server_id}/bootstrap-line/revoke",
            [403, 404, 403, 303],
        ),
        ("POST", "/servers/{server_id}/provisioning/resume", [403, 404, 403, 409]),
        ("POST", "/servers/{server_id}/provisioning", [403, 404, 403, 409]),
        (
            "GET",
            "/api/v1/servers/{server_id}/bootstrap-line",
            [401, 404, 403, 200],
        ),
        (
            "POST",
            "/api/v1/servers/{server_id}/bootstrap-line",
            [401, 404, 403, 201],
        ),
        (
            "DELETE",
            "/api/v1/servers/{server_id}/bootstrap-line",
            [401, 404, 403, 204],
        ),
        ("GET", "/api/v1/servers/{server_id}/provisioning", [401, 404, 403, 200]),
        ("POST", "/api/v1/servers/{server_id}/provisioning", [401, 404, 403, 409]),
        (
            "POST",
            "/api/v1/servers/{server_id}/provisioning/resume",
            [401, 404, 403, 409],
        ),
        ("GET", "/api/v1/openapi.json", [200, 200, 200, 200]),
        ("POST", "/api/v1/auth/token", [201, 201, 201, 201]),
        ("GET", "/api/v1/me", [401, 200, 403, 200]),
        ("GET", "/api/v1/servers", [401, 200, 403, 200]),
        ("POST", "/api/v1/servers", [401, 201, 403, 201]),
        ("GET", "/api/v1/servers/{server_id}", [401, 404, 403, 200]),
        ("PATCH", "/api/v1/servers/{server_id}", [401, 404, 403, 200]),
        ("DELETE", "/api/v1/servers/{server_id}", [401, 404, 403, 204]),
        ("POST", "/api/v1/servers/{server_id}/diagnostics", [401, 404, 403, 202]),
        ("GET", "/api/v1/servers/{server_id}/php", [401, 404, 403, 200]),
        ("POST", "/api/v1/servers/{server_id}/php", [401, 404, 403, 202]),
        (
            "DELETE",
            "/api/v1/servers/{server_id}/php/{version}",
            [401, 404, 403, 202],
        ),
        (
            "POST",
            "/api/v1/servers/{server_id}/php/{version}/cli-default",
            [401, 404, 403, 202],
        ),
        (
            "POST",
            "/api/v1/servers/{server_id}/php/{version}/extensions",
            [401, 404, 403, 202],
        ),
        (
            "DELETE",
            "/api/v1/servers/{server_id}/php/{version}/extensions/{extension}",
            [401, 404, 403, 202],
        ),
        (
            "GET",
            "/api/v1/servers/{server_id}/firewall-rules",
            [401, 404, 403, 200],
        ),
        (
            "POST",
            "/api/v1/servers/{server_id}/firewall-rules",
            [401, 404, 403, 202],
        ),
        (
            "DELETE",
            "/api/v1/servers/{server_id}/firewall-rules/{rule_id}",
            [401, 404, 403, 202],
        ),
        ("GET", "/api/v1/servers/{server_id}/sites", [401, 404, 403, 200]),
        ("POST", "/api/v1/servers/{server_id}/sites", [401, 404, 403, 202]),
        ("GET", "/api/v1/sites/{site_id}", [401, 404, 403, 200]),
        ("PATCH", "/api/v1/sites/{site_id}", [401, 404, 403, 200]),
        ("DELETE", "/api/v1/sites/{site_id}", [401, 404, 403, 202]),
        ("POST", "/api/v1/sites/{site_id}/reinstall", [401, 404, 403, 202]),
        ("POST", "/api/v1/sites/{site_id}/default", [401, 404, 403, 202]),
        ("DELETE", "/api/v1/sites/{site_id}/default", [401, 404, 403, 202]),
        ("GET", "/api/v1/sites/{site_id}/deployments", [401, 404, 403, 200]),
        ("POST", "/api/v1/sites/{site_id}/deployments", [401, 404, 403, 202]),
        (
            "GET",
            "/api/v1/sites/{site_id}/deployments/{deployment_id}",
            [401, 404, 403, 200],
        ),
        ("GET", "/api/v1/sites/{site_id}/releases", [401, 404, 403, 200]),
        ("POST", "/api/v1/sites/{site_id}/rollback", [401, 404, 403, 202]),
        ("POST", "/api/v1/sites/{site_id}/webhook", [401, 404, 403, 201]),
        ("DELETE", "/api/v1/sites/{site_id}/webhook", [401, 404, 403, 204]),
        ("GET", "/api/v1/sites/{site_id}/commands", [401, 404, 403, 200]),
        ("POST", "/api/v1/sites/{site_id}/commands", [401, 404, 403, 202]),
        ("GET", "/api/v1/sites/{site_id}/commands/{run_id}", [401, 404, 403, 200]),
        ("GET", "/api/v1/sites/{site_id}/env", [401, 404, 403, 409]),
        ("PUT", "/api/v1/sites/{site_id}/env", [401, 404, 403, 409]),
        ("GET", "/api/v1/sites/{site_id}/files", [401, 404, 403, 409]),
        ("PUT", "/api/v1/sites/{site_id}/files", [401, 404, 403, 422]),
        ("DELETE", "/api/v1/sites/{site_id}/files", [401, 404, 403, 422]),
        ("GET", "/api/v1/jobs", [401, 200, 403, 200]),
        ("GET", "/api/v1/jobs/{job_id}", [401, 404, 403, 200]),
        ("GET", "/api/v1/jobs/{job_id}/events", [401, 404, 403, 200]),
        ("POST", "/api/v1/jobs/{job_id}/cancel", [401, 404, 403, 202]),
        ("POST", "/api/v1/jobs/{job_id}/retry", [401, 404, 403, 202]),
        ("GET", "/api/v1/audit", [401, 200, 403, 200]),
        ("GET", "/api/v1/tokens", [401, 200, 403, 200]),
        ("POST", "/api/v1/tokens", [401, 201, 403, 201]),
        ("DELETE", "/api/v1/tokens/{token_id}", [401, 404, 403, 204]),
        ("GET", "/api/v1/users", [401, 403, 403, 200]),
        ("POST", "/api/v1/users", [401, 403, 403, 201]),
        ("DELETE", "/api/v1/users/{user_id}", [401, 403, 403, 204]),
    ];
    let mut map = BTreeMap::new();
    for (method, path, expected) in entries {
        assert!(
            map.insert((*method, *path), *expected).is_none(),
            "{method} {path} is listed twice"
        );
    }
    map
}

/// Records what provisioning leaves on a server (the firewall; PHP 8.3 as the
/// command-line default and PHP 8.2 with curl) and one firewall rule, whose id it
/// returns, so PHP and firewall routes have something to act on.
async fn provisioned(app: &TestApp, server_id: i64) -> i64 {
    use brokeforge_db::package_records::upsert_server_package;
    let db = app.db();
    upsert_server_package(db, server_id, "firewall", "ufw", "", "distro", &json!({}), "active")
        .await
        .unwrap();
    for (version, extensions) in [("8.3", json!([])), ("8.2", json!(["curl"]))] {
        let configuration = json!({ "extensions": extensions });
        upsert_server_package(db, server_id, "php", "php", version, version, &configuration, "active")
            .await
            .unwrap();
    }
    upsert_server_package(db, server_id, "php", "php-cli-default", "", "8.3", &json!({}), "active")
        .await
        .unwrap();
    let rule = brokeforge_db::firewall_rules::NewFirewallRule {
        server_id,
        rule_action: "allow",
        port: "3306",
        protocol: "tcp",
        source: None,
        comment: None,
        status: "active",
    };
    brokeforge_db::firewall_rules::insert(db, &rule).await.unwrap().id
}

/// The release a site fixture keeps besides the live one, for rollbacks.
const KEPT_RELEASE: &str = "20260101000000";

/// What a site fixture holds: the site, a finished deployment and a command run.
struct SiteFixture {
    site_id: i64,
    deployment_id: i64,
    run_id: i64,
}

/// An installed static site on the server with two finished deployments (the older
/// one kept for rollbacks), a command run and its webhook turned on.
async fn site_fixture(app: &TestApp, server_id: i64) -> SiteFixture {
    use brokeforge_db::{site_commands, site_deployments, sites};
    let db = app.db();
    brokeforge_db::package_records::upsert_server_package(
        db,
        server_id,
        "webserver",
        "nginx",
        "",
        "1.22",
        &json!({}),
        "active",
    )
    .await
    .unwrap();
    let site = sites::insert(
        db,
        &sites::NewSite {
            server_id,
            domain: "site.example.com",
            site_type: "static",
            document_root: "/home/brokeforge/site.example.com/current",
            php_version: None,
            aliases: &[],
            www: false,
            web_directory: "",
            git_repository: Some("git@github.com:acme/site.git"),
            git_branch: Some("main"),
            git_host_keys: "",
            deploy_script: "",
            keep_releases: 5,
            status: "active",
        },
    )
    .await
    .unwrap();
    let mut deployment_id = 0;
    for release in [KEPT_RELEASE, "20260101000001"] {
        let deployment = site_deployments::insert(
            db,
            &site_deployments::NewDeployment {
                site_id: site.id,
                server_id,
                trigger_kind: "manual",
                actor: "owner@example.com",
                provider: None,
                delivery_id: None,
                commit_sha: Some("9fceb02d0ae598e95dc970b74767f19372d61af8"),
                branch: Some("main"),
                author: None,
                message: None,
                release_id: release,
            },
        )
        .await
        .unwrap();
        site_deployments::finish(db, deployment.id, site_deployments::SUCCEEDED, None)
            .await
            .unwrap();
        deployment_id = deployment.id;
    }
    sites::set_live_release(db, site.id, "20260101000001", None, brokeforge_db::clock::now())
        .await
        .unwrap();
    let run = site_commands::insert(db, site.id, server_id, "owner@example.com", "ls", 60)
        .await
        .unwrap();
    let sealed = app
        .state
        .sealer
        .seal_str(&"5".repeat(64), &sites::webhook_secret_aad(site.id))
        .unwrap();
    sites::set_webhook_secret(db, site.id, Some(&sealed)).await.unwrap();
    SiteFixture {
        site_id: site.id,
        deployment_id,
        run_id: run.id,
    }
}

/// The body a route needs for its owner call to succeed.
fn form_fields(path: &str, unique: &str) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = match path {
        "/login" => vec![("email", "owner@example.com".into()), ("password", PASSWORD.into())],
        "/account/password" => vec![
            ("current_password", PASSWORD.into()),
            ("new_password", PASSWORD.into()),
            ("password_confirmation", PASSWORD.into()),
        ],
        "/account/tokens" => vec![("name", "ci".into()), ("scopes", "read".into())],
        "/admin/users" => vec![
            ("email", format!("new-{unique}@example.com")),
            ("password", PASSWORD.into()),
        ],
        "/servers" | "/servers/{server_id}" => vec![
            ("name", "web".into()),
            ("public_address", format!("203.0.113.{}", 10 + unique.len())),
            ("ssh_port", format!("{}", 2000 + unique.parse::<u32>().unwrap_or(0))),
            ("php_version", "8.3".into()),
            ("database", "none".into()),
            ("provider", "custom".into()),
        ],
        "/servers/{server_id}/diagnostics" => vec![("steps", "1".into())],
        "/servers/{server_id}/php" => vec![("version", "8.4".into())],
        "/servers/{server_id}/php/{version}/extensions" => vec![("extension", "redis".into())],
        "/servers/{server_id}/firewall" => vec![("port", "8080".into()), ("comment", "web".into())],
        "/servers/{server_id}/sites" => vec![
            ("domain", format!("new-{unique}.example.com")),
            ("site_type", "static".into()),
        ],
        "/sites/{site_id}/rollback" => vec![("release", KEPT_RELEASE.into())],
        "/sites/{site_id}/settings" => vec![
            ("git_repository", "git@github.com:acme/site.git".into()),
            ("git_branch", "main".into()),
            ("keep_releases", "5".into()),
            ("deploy_script", "echo built\n".into()),
        ],
        "/sites/{site_id}/commands" => vec![("command", "ls -la".into()), ("timeout_seconds", "60".into())],
        "/sites/{site_id}/env" => vec![("contents", "APP_KEY=x\n".into())],
        "/sites/{site_id}/files" => vec![("path", "notes.txt".into()), ("contents", "hello\n".into())],
        "/sites/{site_id}/files/delete" => vec![("path", "notes.txt".into())],
        _ => vec![],
    };
    pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}

fn json_body(method: &str, path: &str, unique: &str) -> Option<serde_json::Value> {
    match (method, path) {
        ("POST", "/api/v1/auth/token") => Some(json!({ "email": "owner@example.com", "password": PASSWORD })),
        ("POST", "/api/v1/servers") => Some(
            json!({ "name": "api", "public_address": "198.51.100.7", "ssh_port": 3000 + unique.parse::<u32>().unwrap_or(0) }),
        ),
        ("PATCH", "/api/v1/servers/{server_id}") => Some(json!({ "name": "renamed" })),
        ("POST", "/api/v1/servers/{server_id}/diagnostics") => Some(json!({ "steps": 1 })),
        ("POST", "/api/v1/servers/{server_id}/php") => Some(json!({ "version": "8.4" })),
        ("POST", "/api/v1/servers/{server_id}/php/{version}/extensions") => Some(json!({ "extension": "redis" })),
        ("POST", "/api/v1/servers/{server_id}/firewall-rules") => Some(json!({ "port": 8080 })),
        ("POST", "/api/v1/servers/{server_id}/sites") => {
            Some(json!({ "domain": format!("api-{unique}.example.com"), "site_type": "static" }))
        }
        ("PATCH", "/api/v1/sites/{site_id}") => Some(json!({ "keep_releases": 3 })),
        ("POST", "/api/v1/sites/{site_id}/rollback") => Some(json!({ "release": KEPT_RELEASE })),
        ("POST", "/api/v1/sites/{site_id}/commands") => Some(json!({ "command": "ls -la" })),
        ("PUT", "/api/v1/sites/{site_id}/env") => Some(json!({ "contents": "APP_KEY=x\n" })),
        ("POST", "/api/v1/tokens") => Some(json!({ "name": "ci", "scopes": ["read"] })),
        ("POST", "/api/v1/users") => {
            Some(json!({ "email": format!("api-{unique}@example.com"), "password": PASSWORD }))
        }
        _ => None,
    }
}

/// A token lacking the scope a route needs (read-only for write routes, and so on).
fn scopes_without(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::Read => &["write", "deploy"],
        Scope::Write => &["read", "deploy"],
        Scope::Deploy => &["read", "write"],
    }
}

#[tokio::test]
async fn every_route_enforces_its_access_rules() {
    let app = TestApp::sqlite().await;
    let mut owner = app.user("owner@example.com", true).await;
    let mut other = app.user("other@example.com", false).await;
    let expectations = expectations();
    let table = routes::table();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for (index, route) in table.routes().iter().enumerate() {
        let key = (route.method, route.path);
        seen.push(key);
        let Some(expected) = expectations.get(&key) else {
            failures.push(format!(
                "{} {} has no entry in the authorization table",
                route.method, route.path
            ));
            continue;
        };
        // Fresh fixtures for every route: sessions, a server with a job, a token, a victim user.
        app.new_session(&mut owner).await;
        app.new_session(&mut other).await;
        let principal = app.principal(&owner);
        let (server, _line) = brokeforge_app::onboarding::create_server(
            app.db(),
            &app.state.sealer,
            &principal,
            AddressPolicy::default(),
            &ServerInput {
                name: Some(format!("s{index}")),
                public_address: Some(format!("192.0.2.{}", index % 250 + 1)),
                ssh_port: Some(json!(1000 + index)),
                ..Default::default()
            },
            "http://127.0.0.1:8080",
        )
        .await
        .unwrap();
        let job =
            brokeforge_app::diagnostics::start(&app.state.queue, &principal, server.id, &DiagnosticsInput::default())
                .await
                .unwrap();
        if route.path.ends_with("/retry") {
            app.state.queue.cancel(job).await.unwrap();
        }
        let rule_id = provisioned(&app, server.id).await;
        let site = site_fixture(&app, server.id).await;
        let token = brokeforge_app::auth::create_token(
            app.db(),
            &principal,
            brokeforge_app::auth::NewToken {
                name: "victim",
                scopes: &["read".to_owned()],
                expires_in_days: None,
            },
        )
        .await
        .unwrap();
        let victim = app.user(&format!("victim{index}@example.com"), false).await;
        let path = route
            .path
            .replace("{server_id}", &server.id.to_string())
            .replace("{job_id}", &job.0.to_string())
            .replace("{token_id}", &token.record.id.to_string())
            .replace("{user_id}", &victim.id.to_string())
            .replace("{token}", &"0".repeat(64))
            .replace("{version}", "8.2")
            .replace("{extension}", "curl")
            .replace("{rule_id}", &rule_id.to_string())
            .replace("{line_id}", "1")
            .replace("{kind}", "progress")
            .replace("{file}", "app.css")
            .replace("{site_id}", &site.site_id.to_string())
            .replace("{deployment_id}", &site.deployment_id.to_string())
            .replace("{run_id}", &site.run_id.to_string())
            .replace("{provider}", "github");
        let unique = index.to_string();
        let scope_token = match route.access {
            Access::Token(scope) => app.token(&owner, scopes_without(scope)).await,
            _ => app.token(&owner, &["read", "write", "deploy"]).await,
        };
        let callers: [(&str, Option<&TestUser>, Option<String>); 4] = [
            ("anonymous", None, None),
            ("other user", Some(&other), Some(other.token.clone())),
            ("token without scope", None, Some(scope_token)),
            ("owner", Some(&owner), Some(owner.token.clone())),
        ];
        for (caller_index, (caller, user, token)) in callers.iter().enumerate() {
            let method: Method = route.method.parse().unwrap();
            let is_api = route.path.starts_with("/api/v1/");
            let mut builder = Request::builder().method(method.clone()).uri(&path);
            // API routes see only tokens; pages see only sessions (a bearer token is ignored there).
            if is_api {
                if let Some(token) = token {
                    builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
            } else {
                if let Some(user) = user {
                    builder = builder.header(header::COOKIE, format!("bf_session={}", user.cookie));
                }
                if let Some(token) = token {
                    builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
            }
            let request = if let Some(body) = json_body(route.method, route.path, &unique) {
                builder
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap()
            } else if method == Method::POST && !is_api {
                let mut fields = form_fields(route.path, &format!("{unique}{caller_index}"));
                if let Some(user) = user {
                    fields.push(("_csrf".to_owned(), user.csrf.clone()));
                }
                builder
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(serde_urlencoded::to_string(&fields).unwrap()))
                    .unwrap()
            } else {
                builder.body(Body::empty()).unwrap()
            };
            let (status, _, body) = app.send(request).await;
            if status.as_u16() != expected[caller_index] {
                failures.push(format!(
                    "{} {} as {caller}: expected {}, got {} ({})",
                    route.method,
                    route.path,
                    expected[caller_index],
                    status.as_u16(),
                    body.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    for key in expectations.keys() {
        if !seen.contains(key) {
            failures.push(format!("{} {} is in the table but not served", key.0, key.1));
        }
    }
    assert!(
        failures.is_empty(),
        "authorization table mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_api_route_is_in_the_openapi_document_and_needs_a_token_scope() {
    let document = brokeforge_web::api::openapi_document();
    for route in routes::table().routes() {
        if !route.path.starts_with("/api/v1/") || route.path == "/api/v1/openapi.json" {
            continue;
        }
        let method = route.method.to_lowercase();
        let operation = document.pointer(&format!("/paths/{}/{method}", route.path.replace('/', "~1")));
        assert!(
            operation.is_some(),
            "{} {} is missing from openapi.json",
            route.method,
            route.path
        );
        if let Access::Token(scope) = route.access {
            let documented = operation
                .unwrap()
                .pointer("/security/0/token/0")
                .and_then(|value| value.as_str());
            assert_eq!(
                documented,
                Some(scope.as_str()),
                "{} {} documents the wrong scope",
                route.method,
                route.path
            );
        }
    }
}

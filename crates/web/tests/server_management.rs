//! PHP versions and firewall rules over the JSON API and the web UI, on SQLite and on
//! PostgreSQL: lists show what the records say, every change answers `202` (or
//! opens the job page) with the one job it queued, refusals answer 409 or 422 with
//! the reason, and other users' servers answer 404 like unknown ones.

mod common;

use axum::http::{Method, StatusCode};
use brokeforge_db::package_records;
use brokeforge_db::{Db, with_pool};
use common::{TestApp, location};
use serde_json::{Value, json};

/// Creates a server for the user through the API and records what provisioning
/// leaves on it: the firewall, PHP 8.3 (the default, with curl) and PHP 8.2 (used by
/// shop.example.com).
async fn provisioned_server(app: &TestApp, token: &str) -> i64 {
    let (status, server) = app
        .api(
            Method::POST,
            "/api/v1/servers",
            Some(token),
            Some(json!({
                "name": "web-1", "public_address": "203.0.113.10", "ssh_port": 2222
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");
    let server_id = server["id"].as_i64().unwrap();
    let db = app.db();
    let record = |package_type: &'static str,
                  name: &'static str,
                  instance: &'static str,
                  version: &'static str,
                  configuration: Value| async move {
        package_records::upsert_server_package(
            db,
            server_id,
            package_type,
            name,
            instance,
            version,
            &configuration,
            "active",
        )
        .await
        .unwrap()
    };
    record("firewall", "ufw", "", "distro", json!({ "ssh_port": 2222 })).await;
    record(
        "php",
        "php",
        "8.3",
        "8.3",
        json!({ "source": "distro", "extensions": ["curl"] }),
    )
    .await;
    record(
        "php",
        "php",
        "8.2",
        "8.2",
        json!({ "source": "sury", "extensions": [] }),
    )
    .await;
    record("php", "php-cli-default", "", "8.3", Value::Null).await;
    site(db, server_id, "shop.example.com", "8.2").await;
    server_id
}

async fn site(db: &Db, server_id: i64, domain: &str, php_version: &str) {
    with_pool!(db, |pool| sqlx::query(
        "INSERT INTO server_sites (server_id, domain, site_type, document_root, php_version, created_at, updated_at) \
         VALUES ($1, $2, 'php', '/home/brokeforge/site/current/public', $3, $4, $4)"
    )
    .bind(server_id)
    .bind(domain)
    .bind(php_version)
    .bind(brokeforge_db::clock::now())
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
}

fn assert_job(backend: &str, status: StatusCode, job: &Value, server_id: i64) -> i64 {
    assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {job}");
    assert_eq!(job["kind"], "package.operation", "{backend}: {job}");
    assert_eq!(job["state"], "queued", "{backend}: {job}");
    assert_eq!(job["server_id"], server_id, "{backend}: {job}");
    job["id"].as_i64().unwrap()
}

#[tokio::test]
async fn php_versions_over_the_api() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let bob = app.user("bob@example.com", false).await;
        let token = ada.token.as_str();
        let server_id = provisioned_server(&app, token).await;
        let base = format!("/api/v1/servers/{server_id}/php");

        let (status, php) = app.api(Method::GET, &base, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {php}");
        assert_eq!(php["cli_default"], "8.3");
        assert_eq!(php["versions"][0]["version"], "8.2");
        assert_eq!(php["versions"][0]["sites"], json!(["shop.example.com"]));
        assert_eq!(php["versions"][1]["is_cli_default"], true);
        assert_eq!(php["versions"][1]["extensions"], json!(["curl"]));
        assert!(php["installable"].as_array().unwrap().contains(&json!("8.4")));
        assert!(php["known_extensions"].as_array().unwrap().contains(&json!("redis")));

        // Other users' servers are not found; changes need the deploy scope.
        let (status, _) = app.api(Method::GET, &base, Some(&bob.token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");
        let read_write = app.token(&ada, &["read", "write"]).await;
        let (status, body) = app
            .api(
                Method::POST,
                &base,
                Some(&read_write),
                Some(json!({ "version": "8.4" })),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}: {body}");

        // Install: 422 for an unknown version, 202 with the job, 409 while pending.
        let (status, body) = app
            .api(Method::POST, &base, Some(token), Some(json!({ "version": "5.6" })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert!(body["error"]["fields"]["version"].is_array(), "{backend}: {body}");
        let (status, job) = app
            .api(Method::POST, &base, Some(token), Some(json!({ "version": "8.4" })))
            .await;
        let install_job = assert_job(backend, status, &job, server_id);
        let (status, body) = app
            .api(Method::POST, &base, Some(token), Some(json!({ "version": "8.4" })))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        assert_eq!(
            body["error"]["message"],
            format!("Install PHP 8.4 is already under way (job #{install_job}).")
        );
        let (_, php) = app.api(Method::GET, &base, Some(token), None).await;
        assert_eq!(php["pending"][0]["job_id"], install_job, "{backend}: {php}");
        assert_eq!(php["pending"][0]["change"], "install");

        // Remove: refused while a site uses it, or while it is the default.
        let (status, body) = app.api(Method::DELETE, &format!("{base}/8.2"), Some(token), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("shop.example.com"),
            "{backend}: {body}"
        );
        let (status, body) = app.api(Method::DELETE, &format!("{base}/8.3"), Some(token), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("command-line default"),
            "{backend}: {body}"
        );

        // The default, then extensions.
        let (status, job) = app
            .api(Method::POST, &format!("{base}/8.2/cli-default"), Some(token), None)
            .await;
        assert_job(backend, status, &job, server_id);
        let (status, body) = app
            .api(
                Method::POST,
                &format!("{base}/8.3/extensions"),
                Some(token),
                Some(json!({ "extension": "redis; id" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert!(body["error"]["fields"]["extension"].is_array(), "{backend}: {body}");
        let (status, job) = app
            .api(
                Method::POST,
                &format!("{base}/8.3/extensions"),
                Some(token),
                Some(json!({ "extension": "redis" })),
            )
            .await;
        assert_job(backend, status, &job, server_id);
        let (status, job) = app
            .api(
                Method::DELETE,
                &format!("{base}/8.3/extensions/curl"),
                Some(token),
                None,
            )
            .await;
        assert_job(backend, status, &job, server_id);
        let (_, php) = app.api(Method::GET, &base, Some(token), None).await;
        let summaries: Vec<&str> = php["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["summary"].as_str().unwrap())
            .collect();
        assert_eq!(
            summaries,
            [
                "Install PHP 8.4",
                "Make PHP 8.2 the command-line default",
                "Install redis for PHP 8.3",
                "Remove curl from PHP 8.3"
            ],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn firewall_rules_over_the_api() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let bob = app.user("bob@example.com", false).await;
        let token = ada.token.as_str();
        let server_id = provisioned_server(&app, token).await;
        let base = format!("/api/v1/servers/{server_id}/firewall-rules");

        let (status, page) = app.api(Method::GET, &base, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {page}");
        assert_eq!(page["data"], json!([]));

        // The SSH port cannot be closed; invalid fields are named.
        let (status, body) = app
            .api(
                Method::POST,
                &base,
                Some(token),
                Some(json!({ "action": "deny", "port": 2222 })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert!(
            body["error"]["fields"]["port"][0]
                .as_str()
                .unwrap()
                .contains("block SSH on port 2222"),
            "{backend}: {body}"
        );
        let (status, body) = app
            .api(
                Method::POST,
                &base,
                Some(token),
                Some(json!({ "port": "80-90", "source": "nowhere" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        let fields: Vec<&str> = body["error"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["port", "source"], "{backend}");

        // Adding answers the stored rule and its job.
        let (status, added) = app
            .api(
                Method::POST,
                &base,
                Some(token),
                Some(json!({
                    "port": "3306", "source": "203.0.113.7", "comment": "MySQL from the office"
                })),
            )
            .await;
        let job_id = assert_job(backend, status, &added["job"], server_id);
        assert_eq!(added["rule"]["status"], "installing", "{backend}: {added}");
        assert_eq!(added["rule"]["job_id"], job_id);
        assert_eq!(added["rule"]["action"], "allow");
        assert_eq!(added["rule"]["protocol"], "tcp");
        let rule_id = added["rule"]["id"].as_i64().unwrap();
        let (_, page) = app.api(Method::GET, &base, Some(token), None).await;
        assert_eq!(page["data"][0]["id"], rule_id, "{backend}: {page}");
        assert_eq!(page["data"][0]["comment"], "MySQL from the office");

        // Other users see nothing and change nothing.
        for (method, path) in [
            (Method::GET, base.clone()),
            (Method::DELETE, format!("{base}/{rule_id}")),
        ] {
            let (status, _) = app.api(method, &path, Some(&bob.token), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {path}");
        }
        let (status, _) = app
            .api(Method::POST, &base, Some(&bob.token), Some(json!({ "port": 8080 })))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");

        // Removing answers the rule, now `removing`, and its job; twice is a conflict.
        let (status, removed) = app
            .api(Method::DELETE, &format!("{base}/{rule_id}"), Some(token), None)
            .await;
        let removal_job = assert_job(backend, status, &removed["job"], server_id);
        assert_eq!(removed["rule"]["status"], "removing", "{backend}: {removed}");
        assert_eq!(removed["rule"]["job_id"], removal_job);
        let (status, body) = app
            .api(Method::DELETE, &format!("{base}/{rule_id}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        let (status, _) = app
            .api(Method::DELETE, &format!("{base}/999999"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");
    }
}

#[tokio::test]
async fn php_and_firewall_pages_start_jobs_and_explain_refusals() {
    let app = TestApp::sqlite().await;
    let ada = app.user("ada@example.com", false).await;
    let server_id = provisioned_server(&app, &ada.token).await;

    let (status, _, html) = app
        .page(Method::GET, &format!("/servers/{server_id}"), Some(&ada), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("href=\"/servers/{server_id}/php\"")));
    assert!(html.contains(&format!("href=\"/servers/{server_id}/firewall\"")));

    let (status, _, html) = app
        .page(Method::GET, &format!("/servers/{server_id}/php"), Some(&ada), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("PHP 8.3") && html.contains("CLI default") && html.contains("shop.example.com"));

    // Installing opens the job's page; a refusal shows the page with the reason.
    let (status, headers, _) = app
        .page(
            Method::POST,
            &format!("/servers/{server_id}/php"),
            Some(&ada),
            &[("version", "8.4")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let job_page = location(&headers);
    assert!(job_page.starts_with("/jobs/"), "{job_page}");
    let (status, _, html) = app
        .page(
            Method::POST,
            &format!("/servers/{server_id}/php/8.2/remove"),
            Some(&ada),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("shop.example.com; switch it to another PHP version"),
        "{html}"
    );
    let (_, _, html) = app
        .page(Method::GET, &format!("/servers/{server_id}/php"), Some(&ada), &[])
        .await;
    assert!(
        html.contains(&format!("href=\"{job_page}\"")),
        "the pending job is linked"
    );

    // The firewall form keeps what was typed and names the problem.
    let (status, _, html) = app
        .page(
            Method::POST,
            &format!("/servers/{server_id}/firewall"),
            Some(&ada),
            &[("action", "deny"), ("port", "2222"), ("protocol", "tcp")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("would block SSH on port 2222"), "{html}");
    assert!(html.contains("value=\"2222\""));
    let (status, headers, _) = app
        .page(
            Method::POST,
            &format!("/servers/{server_id}/firewall"),
            Some(&ada),
            &[
                ("action", "allow"),
                ("port", "8080"),
                ("protocol", "tcp"),
                ("source", ""),
                ("comment", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let job_page = location(&headers);
    assert!(job_page.starts_with("/jobs/"), "{job_page}");
    let (status, _, html) = app
        .page(Method::GET, &format!("/servers/{server_id}/firewall"), Some(&ada), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("8080/tcp") && html.contains("installing"), "{html}");
    assert!(
        html.contains(&format!("href=\"{job_page}\"")),
        "the rule's job is linked"
    );
}

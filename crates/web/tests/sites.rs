//! Sites over HTTP, on SQLite and PostgreSQL: the JSON API creates a site (202 with
//! its install job), refuses a domain the server already serves (422 on `domain`),
//! turns the webhook on (its secret answered once, never again), and the public
//! webhook URL deploys a signed GitHub push (202) while refusing a forged one (401)
//! and ignoring another branch (202 with the reason). A deployment's log is answered
//! by its own API and page (escaped), never in lists; the deploy key to add is the
//! server's until the site has its own. The pages render: the server page lists the
//! site, the site page shows the deploy button, history, releases, Git access,
//! settings and webhook, the new-site form and a command run's page.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use brokeforge_app::webhooks;
use common::{TestApp, location};
use serde_json::{Value, json};

const COMMIT: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

async fn provisioned_server(app: &TestApp, token: &str) -> i64 {
    let (status, created) = app
        .api(
            Method::POST,
            "/api/v1/servers",
            Some(token),
            Some(json!({ "name": "web", "public_address": "198.51.100.20" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let server_id = created["id"].as_i64().unwrap();
    for (package_type, name, instance, version) in [
        ("webserver", "nginx", "", "1.22"),
        ("php", "php", "8.3", "8.3"),
        ("php", "php-cli-default", "", "8.3"),
    ] {
        brokeforge_db::package_records::upsert_server_package(
            app.db(),
            server_id,
            package_type,
            name,
            instance,
            version,
            &json!({}),
            "active",
        )
        .await
        .unwrap();
    }
    server_id
}

async fn webhook(app: &TestApp, site_id: i64, headers: &[(&str, &str)], body: &[u8]) -> (StatusCode, Value) {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/sites/{site_id}/github"))
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let (status, _, text) = app.send(builder.body(Body::from(body.to_vec())).unwrap()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sites_deploy_from_signed_webhooks_and_render_their_pages() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let owner = app.user("owner@example.com", false).await;
        let other = app.user("other@example.com", false).await;
        let server_id = provisioned_server(&app, &owner.token).await;

        let (status, created) = app
            .api(
                Method::POST,
                &format!("/api/v1/servers/{server_id}/sites"),
                Some(&owner.token),
                Some(json!({
                    "domain": "Example.com", "site_type": "static", "aliases": ["shop.example.com"],
                    "git_repository": "git@github.com:acme/site.git",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {created}");
        assert_eq!(created["site"]["domain"], "example.com");
        assert_eq!(created["site"]["status"], "installing");
        assert_eq!(created["job"]["kind"], "package.operation");
        let site_id = created["site"]["id"].as_i64().unwrap();

        let (status, refused) = app
            .api(
                Method::POST,
                &format!("/api/v1/servers/{server_id}/sites"),
                Some(&owner.token),
                Some(json!({ "domain": "shop.example.com", "site_type": "static" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {refused}");
        assert!(refused["error"]["fields"]["domain"].is_array(), "{refused}");

        // The install job finishes; the site can be deployed.
        brokeforge_db::sites::set_status(app.db(), site_id, "active", None)
            .await
            .unwrap();

        // The webhook's secret is answered once; reading the site never shows it.
        let (status, enabled) = app
            .api(
                Method::POST,
                &format!("/api/v1/sites/{site_id}/webhook"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {enabled}");
        let secret = enabled["secret"].as_str().unwrap().to_owned();
        assert!(
            enabled["urls"]["github"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/webhooks/sites/{site_id}/github"))
        );
        let (_, shown) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(shown["webhook_enabled"], true);
        assert!(
            !shown.to_string().contains(&secret),
            "{backend}: the secret is shown once only"
        );
        let (status, _) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}"),
                Some(&other.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Signed push: deployed. Forged: 401. Another branch: ignored with a reason.
        let push =
            json!({ "ref": "refs/heads/main", "after": COMMIT, "head_commit": { "id": COMMIT, "message": "Hello" } })
                .to_string()
                .into_bytes();
        let signature = webhooks::sign(secret.as_bytes(), &push);
        let (status, answer) = webhook(
            &app,
            site_id,
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
                ("x-github-delivery", "d-1"),
            ],
            &push,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {answer}");
        assert_eq!(answer["deployed"], true);
        let (status, _) = webhook(
            &app,
            site_id,
            &[("x-github-event", "push"), ("x-hub-signature-256", "sha256=00")],
            &push,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}");
        let develop = json!({ "ref": "refs/heads/develop", "after": COMMIT })
            .to_string()
            .into_bytes();
        let develop_signature = webhooks::sign(secret.as_bytes(), &develop);
        let (status, answer) = webhook(
            &app,
            site_id,
            &[("x-github-event", "push"), ("x-hub-signature-256", &develop_signature)],
            &develop,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}");
        assert_eq!(answer["deployed"], false);
        assert!(answer["reason"].as_str().unwrap().contains("develop"), "{answer}");
        let (status, _) = webhook(&app, site_id + 1000, &[("x-hub-signature-256", &signature)], &push).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");

        let (status, history) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/deployments"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(history["data"][0]["commit"], COMMIT);
        assert_eq!(history["data"][0]["trigger"], "webhook");
        assert!(
            history["data"][0].get("output").is_none(),
            "{backend}: lists leave the logs out"
        );
        let deployment_id = history["data"][0]["id"].as_i64().unwrap();
        brokeforge_db::site_deployments::set_output(
            app.db(),
            deployment_id,
            "==> Fetching the repository\n<script>alert(1)</script>\n",
        )
        .await
        .unwrap();
        let (status, deployment) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/deployments/{deployment_id}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            deployment["output"],
            "==> Fetching the repository\n<script>alert(1)</script>\n"
        );
        let (status, _, html) = app
            .page(
                Method::GET,
                &format!("/sites/{site_id}/deployments/{deployment_id}"),
                Some(&owner),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("==&gt; Fetching the repository"), "{backend}: {html}");
        assert!(!html.contains("<script>alert(1)"), "{backend}: the log is escaped");
        let (status, _, _) = app
            .page(
                Method::GET,
                &format!("/sites/{site_id}/deployments/{deployment_id}"),
                Some(&other),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");

        // The deploy key to add: the server's until the site has its own.
        brokeforge_db::servers::record_bootstrap(
            app.db(),
            server_id,
            &brokeforge_db::servers::BootstrapReport {
                host_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey",
                deploy_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIServerKey brokeforge@web",
                os_name: "debian",
                os_version: "12",
                os_codename: "bookworm",
            },
        )
        .await
        .unwrap();
        let (status, key) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/deploy-key"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend}: {key}");
        assert_eq!(key["kind"], "server");
        assert_eq!(
            key["public_key"],
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIServerKey brokeforge@web"
        );
        brokeforge_db::sites::set_deploy_key(
            app.db(),
            site_id,
            Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISiteKey brokeforge-site-example.com\n"),
        )
        .await
        .unwrap();
        let (_, key) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/deploy-key"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(key["kind"], "site");
        assert_eq!(
            key["public_key"],
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISiteKey brokeforge-site-example.com"
        );
        let (status, _) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/deploy-key"),
                Some(&other.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");

        // Pages.
        let (status, _, html) = app
            .page(Method::GET, &format!("/servers/{server_id}"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(&format!("/sites/{site_id}")),
            "{backend}: the server page lists its sites"
        );
        let (status, _, html) = app
            .page(Method::GET, &format!("/sites/{site_id}"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        for expected in [
            "data-testid=\"site-deploy\"",
            "data-testid=\"deployments\"",
            "9fceb02",
            "Deploy settings",
            "AAAAISiteKey",
            "data-testid=\"deploy-key-delete\"",
            "data-testid=\"git-host-keys\"",
        ] {
            assert!(html.contains(expected), "{backend}: the site page shows {expected}");
        }
        assert!(!html.contains(&secret), "{backend}");
        let (status, _, html) = app
            .page(
                Method::GET,
                &format!("/servers/{server_id}/sites/new"),
                Some(&owner),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("data-testid=\"site-create\""), "{backend}");
        let (status, headers, _) = app
            .page(
                Method::POST,
                &format!("/servers/{server_id}/sites"),
                Some(&owner),
                &[("domain", "second.example.com"), ("site_type", "php")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        assert!(location(&headers).starts_with("/jobs/"));
        let (status, _, html) = app
            .page(
                Method::POST,
                &format!("/servers/{server_id}/sites"),
                Some(&owner),
                &[("domain", "example.com"), ("site_type", "static")],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert!(html.contains("already served by the site example.com"), "{backend}");

        // A new secret from the page is shown on it once.
        let (status, _, html) = app
            .page(Method::POST, &format!("/sites/{site_id}/webhook"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("data-testid=\"webhook-secret\""), "{backend}");

        // A command run's page.
        brokeforge_db::sites::set_live_release(app.db(), site_id, "20260101000000", None, brokeforge_db::clock::now())
            .await
            .unwrap();
        let (status, headers, _) = app
            .page(
                Method::POST,
                &format!("/sites/{site_id}/commands"),
                Some(&owner),
                &[("command", "ls -la"), ("timeout_seconds", "60")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        let run_page = location(&headers);
        let (status, _, html) = app.page(Method::GET, &run_page, Some(&owner), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("$ ls -la"), "{backend}");
        assert!(
            html.contains("http-equiv=\"refresh\""),
            "{backend}: a queued run's page reloads itself"
        );
        let (status, _, _) = app.page(Method::GET, &run_page, Some(&other), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn the_environment_and_files_of_another_users_site_answer_like_unknown_ones() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let owner = app.user("owner@example.com", false).await;
        let other = app.user("other@example.com", false).await;
        let server_id = provisioned_server(&app, &owner.token).await;
        let (status, created) = app
            .api(
                Method::POST,
                &format!("/api/v1/servers/{server_id}/sites"),
                Some(&owner.token),
                Some(json!({ "domain": "files.example.com", "site_type": "laravel" })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {created}");
        let site_id = created["site"]["id"].as_i64().unwrap();
        brokeforge_db::sites::set_status(app.db(), site_id, "active", None)
            .await
            .unwrap();

        // Another user's site and an unknown one: the same 404, on every route.
        for id in [site_id, 999_999] {
            for (method, path, body) in [
                (Method::GET, format!("/api/v1/sites/{id}/env"), None),
                (
                    Method::PUT,
                    format!("/api/v1/sites/{id}/env"),
                    Some(json!({ "contents": "A=1\n" })),
                ),
                (Method::GET, format!("/api/v1/sites/{id}/files?path=public"), None),
                (Method::PUT, format!("/api/v1/sites/{id}/files?path=public/x.txt"), None),
                (
                    Method::DELETE,
                    format!("/api/v1/sites/{id}/files?path=public/x.txt"),
                    None,
                ),
            ] {
                let (status, body) = app.api(method.clone(), &path, Some(&other.token), body).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {method} {path}: {body}");
                assert_eq!(body["error"]["code"], "not_found", "{backend}: {body}");
            }
            for path in [format!("/sites/{id}/env"), format!("/sites/{id}/files")] {
                let (status, _, _) = app.page(Method::GET, &path, Some(&other), &[]).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {path}");
            }
            let (status, _, _) = app
                .page(
                    Method::POST,
                    &format!("/sites/{id}/env"),
                    Some(&other),
                    &[("contents", "A=1\n")],
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend}");
        }

        // The owner: `..` and oversized bodies are refused before the server is asked.
        let (status, body) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/sites/{site_id}/files?path=../x"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert!(body["error"]["fields"]["path"].is_array(), "{backend}: {body}");
        for size in [
            brokeforge_app::site_files::MAX_FILE_BYTES + 1,
            3 * brokeforge_app::site_files::MAX_FILE_BYTES,
        ] {
            let request = Request::builder()
                .method(Method::PUT)
                .uri(format!("/api/v1/sites/{site_id}/files?path=public/big.bin"))
                .header(header::AUTHORIZATION, format!("Bearer {}", owner.token))
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(vec![0u8; size]))
                .unwrap();
            let (status, _, text) = app.send(request).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {size}: {text}");
            assert!(text.contains("at most 1 MiB"), "{backend}: {text}");
        }
        // The server was never bootstrapped: reading says so.
        let (status, body) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}/env"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("bootstrap"),
            "{backend}: {body}"
        );
        let (status, _, page) = app
            .page(Method::GET, &format!("/sites/{site_id}/env"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}");
        assert!(page.contains("bootstrap"), "{backend}");
    }
}

#[tokio::test]
async fn a_wordpress_site_keeps_its_password_and_the_default_site_is_the_owners_to_change() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let owner = app.user("owner@example.com", false).await;
        let other = app.user("other@example.com", false).await;
        let server_id = provisioned_server(&app, &owner.token).await;
        let sites = format!("/api/v1/servers/{server_id}/sites");

        // A WordPress site needs its database; the password never comes back.
        let (status, refused) = app
            .api(
                Method::POST,
                &sites,
                Some(&owner.token),
                Some(json!({ "domain": "blog.example.com", "site_type": "wordpress", "table_prefix": "wp-" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {refused}");
        for field in ["database_name", "database_user", "database_password", "table_prefix"] {
            assert!(
                refused["error"]["fields"][field].is_array(),
                "{backend}: {field}: {refused}"
            );
        }
        let password = "s3cret-'pass'\\word";
        let (status, created) = app
            .api(
                Method::POST,
                &sites,
                Some(&owner.token),
                Some(json!({
                    "domain": "blog.example.com", "site_type": "wordpress", "database_name": "blog",
                    "database_user": "blog", "database_password": password,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {created}");
        let text = created.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("database_password"),
            "{backend}: {text}"
        );
        let site_id = created["site"]["id"].as_i64().unwrap();
        assert_eq!(created["site"]["is_default"], false);
        let (_, shown) = app
            .api(
                Method::GET,
                &format!("/api/v1/sites/{site_id}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert!(!shown.to_string().contains("s3cret"), "{backend}: {shown}");
        let stored = brokeforge_db::site_wordpress::find(app.db(), site_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.database_name.as_str(), stored.table_prefix.as_str()),
            ("blog", "wp_")
        );
        let sealed = brokeforge_db::site_wordpress::password_sealed(app.db(), site_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&sealed).contains("s3cret"),
            "{backend}: sealed at rest"
        );
        let opened = app
            .state
            .sealer
            .open_string(&sealed, &brokeforge_db::site_wordpress::password_aad(site_id))
            .unwrap();
        assert_eq!(opened.as_str(), password);
        // Database settings belong to WordPress sites only.
        let (status, refused) = app
            .api(
                Method::POST,
                &sites,
                Some(&owner.token),
                Some(json!({ "domain": "static.example.com", "site_type": "static", "database_name": "x" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {refused}");
        assert!(refused["error"]["fields"]["database_name"].is_array(), "{refused}");

        // The default site: another user's site and an unknown one answer 404, on the
        // API and the pages; the owner's starts one job.
        let default = format!("/api/v1/sites/{site_id}/default");
        let (status, body) = app.api(Method::POST, &default, Some(&owner.token), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: an installing site: {body}");
        brokeforge_db::sites::set_status(app.db(), site_id, "active", None)
            .await
            .unwrap();
        for id in [site_id, 999_999] {
            for method in [Method::POST, Method::DELETE] {
                let path = format!("/api/v1/sites/{id}/default");
                let (status, body) = app.api(method.clone(), &path, Some(&other.token), None).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {method} {path}: {body}");
                assert_eq!(body["error"]["code"], "not_found", "{backend}: {body}");
            }
            for path in [format!("/sites/{id}/default"), format!("/sites/{id}/default/unset")] {
                let (status, _, _) = app.page(Method::POST, &path, Some(&other), &[]).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {path}");
            }
        }
        let (status, started) = app.api(Method::POST, &default, Some(&owner.token), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {started}");
        assert_eq!(started["job"]["kind"], "package.operation");
        let job = brokeforge_queue::Queue::new(app.db().clone())
            .get(brokeforge_queue::JobId(started["job"]["id"].as_i64().unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            job.payload["operation"]["operation"], "default-site-update",
            "{backend}"
        );
        assert_eq!(job.payload["follow_up"]["kind"], "default_site", "{backend}");
        let (status, _, html) = app
            .page(Method::GET, &format!("/sites/{site_id}"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("data-testid=\"site-default-set\""), "{backend}");
        // The new-site form always posts the WordPress fields: other types ignore them,
        // WordPress takes them (and never shows the password again).
        let form = |site_type: &'static str, domain: &'static str| {
            vec![
                ("domain", domain),
                ("site_type", site_type),
                ("database_name", "shop"),
                ("database_user", "shop"),
                ("database_password", "form-secret"),
                ("database_host", "localhost"),
                ("table_prefix", "wp_"),
            ]
        };
        let new_site = format!("/servers/{server_id}/sites");
        let (status, _, html) = app
            .page(Method::POST, &new_site, Some(&owner), &form("php", "php.example.com"))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: {html}");
        let (status, _, html) = app
            .page(
                Method::POST,
                &new_site,
                Some(&owner),
                &[
                    ("domain", "shop.example.com"),
                    ("site_type", "wordpress"),
                    ("database_password", "form-secret"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert!(
            html.contains("Enter the name of the database WordPress uses."),
            "{backend}"
        );
        assert!(
            !html.contains("form-secret"),
            "{backend}: the password is not sent back"
        );
        let (status, _, html) = app
            .page(
                Method::POST,
                &new_site,
                Some(&owner),
                &form("wordpress", "shop.example.com"),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: {html}");
        let (status, _, html) = app
            .page(Method::GET, &format!("{new_site}/new"), Some(&owner), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("name=\"database_password\""), "{backend}");

        let (status, headers, _) = app
            .page(
                Method::POST,
                &format!("/sites/{site_id}/default/unset"),
                Some(&owner),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        assert!(location(&headers).starts_with("/jobs/"), "{backend}");
    }
}

//! The JSON API and the session/CSRF machinery, in-process, on SQLite and on
//! PostgreSQL alike: validation answers 422 with field names and changes nothing,
//! other users' ids answer 404 like unknown ones, tokens are scoped, revocable and
//! expire, jobs run with live progress that replays from `Last-Event-ID`, sign-in
//! locks after repeated failures, and forms need a same-site origin and a token.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use brokeforge_queue::{WorkerConfig, WorkerPool};
use brokeforge_web::WebConfig;
use common::{PASSWORD, TestApp, location};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Runs the application's job handlers until dropped.
struct Workers {
    stop: watch::Sender<bool>,
}

impl Workers {
    fn start(app: &TestApp) -> Workers {
        let mut config = WorkerConfig::new(2);
        config.poll_interval = Duration::from_millis(20);
        config.heartbeat_interval = Duration::from_millis(200);
        let registry = brokeforge_app::jobs::registry(&brokeforge_app::jobs::JobEnvironment { db: app.db().clone() });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(WorkerPool::new(app.state.queue.clone(), registry, config).run(stopped));
        Workers { stop }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn wait_for_state(app: &TestApp, token: &str, job_id: i64, wanted: &str) -> Value {
    for _ in 0..400 {
        let (status, job) = app
            .api(Method::GET, &format!("/api/v1/jobs/{job_id}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["state"] == wanted {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {job_id} never became {wanted}");
}

async fn server_count(app: &TestApp, token: &str) -> usize {
    let (_, page) = app
        .api(Method::GET, "/api/v1/servers?limit=200", Some(token), None)
        .await;
    page["data"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test]
async fn servers_are_validated_paged_and_private() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let bob = app.user("bob@example.com", false).await;
        let token = ada.token.as_str();

        // Every invalid field is named, and nothing is created.
        let (status, body) = app
            .api(Method::POST, "/api/v1/servers", Some(token), Some(json!({
                "name": "", "public_address": "127.0.0.1", "ssh_port": 70000, "php_version": "5.6", "database": "oracle", "provider": "mars"
            })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        let fields: Vec<&str> = body["error"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "database",
                "name",
                "php_version",
                "provider",
                "public_address",
                "ssh_port"
            ],
            "{backend}"
        );
        for bad in [json!("not json"), json!({ "name": 42 })] {
            let (status, body) = app.api(Method::POST, "/api/v1/servers", Some(token), Some(bad)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
            assert!(body["error"]["fields"]["body"].is_array(), "{backend}: {body}");
        }
        assert_eq!(server_count(&app, token).await, 0, "{backend}: nothing half-created");

        // Create three, page through them two at a time.
        let mut ids = Vec::new();
        for index in 0..3 {
            let (status, server) = app
                .api(Method::POST, "/api/v1/servers", Some(token), Some(json!({
                    "name": format!("web-{index}"), "public_address": format!("203.0.113.{}", 10 + index), "php_version": "8.2", "database": "mariadb"
                })))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{backend}: {server}");
            assert_eq!(server["ssh_port"], 22);
            assert_eq!(server["database"], "mariadb");
            assert_eq!(server["connection_status"], "pending");
            ids.push(server["id"].as_i64().unwrap());
        }
        let (_, first) = app.api(Method::GET, "/api/v1/servers?limit=2", Some(token), None).await;
        assert_eq!(first["data"].as_array().unwrap().len(), 2, "{backend}");
        let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
        let (_, second) = app
            .api(
                Method::GET,
                &format!("/api/v1/servers?limit=2&cursor={cursor}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(second["data"][0]["id"].as_i64(), Some(ids[2]), "{backend}");
        assert!(second["next_cursor"].is_null(), "{backend}");
        let (status, body) = app
            .api(Method::GET, "/api/v1/servers?limit=0&cursor=x", Some(token), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["error"]["fields"]["limit"].is_array() && body["error"]["fields"]["cursor"].is_array(),
            "{body}"
        );

        // The same address and port twice is refused on the field.
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/servers",
                Some(token),
                Some(json!({ "name": "dup", "public_address": "203.0.113.10" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        assert!(body["error"]["fields"]["public_address"].is_array(), "{body}");

        // Partial updates keep the other fields; invalid updates change nothing.
        let path = format!("/api/v1/servers/{}", ids[0]);
        let (status, server) = app
            .api(
                Method::PATCH,
                &path,
                Some(token),
                Some(json!({ "name": "renamed", "ssh_port": "2222" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{server}");
        assert_eq!(
            (
                server["name"].as_str(),
                server["ssh_port"].as_i64(),
                server["php_version"].as_str()
            ),
            (Some("renamed"), Some(2222), Some("8.2"))
        );
        let (status, _) = app
            .api(
                Method::PATCH,
                &path,
                Some(token),
                Some(json!({ "name": "x", "public_address": "10.1.2.3" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, server) = app.api(Method::GET, &path, Some(token), None).await;
        assert_eq!(
            server["name"], "renamed",
            "{backend}: the failed update changed nothing"
        );

        // Another user's server answers exactly like an unknown one.
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(|| json!({ "name": "mine" }));
            let (theirs, theirs_body) = app.api(method.clone(), &path, Some(&bob.token), body.clone()).await;
            let (unknown, unknown_body) = app
                .api(method.clone(), "/api/v1/servers/999999", Some(&bob.token), body.clone())
                .await;
            assert_eq!(
                (theirs, unknown),
                (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
                "{backend} {method}"
            );
            assert_eq!(theirs_body, unknown_body);
            let (garbage, _) = app.api(method, "/api/v1/servers/abc", Some(&bob.token), body).await;
            assert_eq!(garbage, StatusCode::NOT_FOUND);
        }
        assert_eq!(server_count(&app, &bob.token).await, 0);

        // Delete, then it is gone; the audit log remembers.
        let (status, _) = app.api(Method::DELETE, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.api(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, audit) = app.api(Method::GET, "/api/v1/audit", Some(token), None).await;
        let actions: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"server.created")
                && actions.contains(&"server.updated")
                && actions.contains(&"server.deleted"),
            "{actions:?}"
        );
        let (status, _) = app
            .api(
                Method::GET,
                &format!("/api/v1/audit?server_id={}", ids[1]),
                Some(&bob.token),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "another user's server history is private"
        );
        let (_, bob_audit) = app.api(Method::GET, "/api/v1/audit", Some(&bob.token), None).await;
        assert!(!bob_audit.to_string().contains("web-1"), "{bob_audit}");
    }
}

#[tokio::test]
async fn tokens_are_scoped_revocable_expiring_and_never_shown_again() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let read_only = app.token(&ada, &["read"]).await;
        let (status, me) = app.api(Method::GET, "/api/v1/me", Some(&read_only), None).await;
        assert_eq!(
            (status, me["scopes"].clone()),
            (StatusCode::OK, json!(["read"])),
            "{backend}"
        );
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/servers",
                Some(&read_only),
                Some(json!({ "name": "a", "public_address": "203.0.113.9" })),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");

        // A token cannot hand out scopes it does not hold.
        let write_only = app.token(&ada, &["write"]).await;
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/tokens",
                Some(&write_only),
                Some(json!({ "name": "x", "scopes": ["deploy"] })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["fields"]["scopes"].is_array());
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/tokens",
                Some(&ada.token),
                Some(json!({ "name": "", "scopes": ["root"], "expires_in_days": 0 })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = body["error"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["expires_in_days", "name", "scopes"]);

        // Created once, listed without the secret, used, revoked.
        let (status, created) = app
            .api(
                Method::POST,
                "/api/v1/tokens",
                Some(&ada.token),
                Some(json!({ "name": "ci", "scopes": ["read"], "expires_in_days": 30 })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["token"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("bf_") && secret.len() == 80, "{secret}");
        assert!(created["info"]["expires_at"].is_string());
        let (_, me) = app.api(Method::GET, "/api/v1/me", Some(&secret), None).await;
        assert_eq!(me["email"], "ada@example.com");
        let (_, list) = app.api(Method::GET, "/api/v1/tokens", Some(&ada.token), None).await;
        let text = list.to_string();
        assert!(!text.contains(&secret[16..]), "{backend}: the secret is never listed");
        assert!(!text.contains("hash"), "{text}");
        let ci = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|token| token["name"] == "ci")
            .unwrap()
            .clone();
        assert!(ci["last_used_at"].is_string(), "{backend}: last use is recorded: {ci}");
        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", ci["id"]),
                Some(&ada.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app.api(Method::GET, "/api/v1/me", Some(&secret), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: revoked: {body}");
        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", ci["id"]),
                Some(&ada.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        // Expired tokens stop working.
        let (_, created) = app
            .api(
                Method::POST,
                "/api/v1/tokens",
                Some(&ada.token),
                Some(json!({ "name": "short", "scopes": ["read"], "expires_in_days": 1 })),
            )
            .await;
        let id = created["info"]["id"].as_i64().unwrap();
        let past = chrono::Utc::now() - chrono::Duration::hours(1);
        brokeforge_db::with_pool!(app.db(), |pool| {
            sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
                .bind(past)
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        });
        let (status, _) = app
            .api(
                Method::GET,
                "/api/v1/me",
                Some(created["token"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: expired");

        // Malformed and unknown tokens look the same.
        for bogus in [
            "",
            "bf_",
            "bf_000000000000_",
            &format!("bf_000000000000_{}", "0".repeat(64)),
            &secret.replace('a', "b"),
        ] {
            let (status, body) = app.api(Method::GET, "/api/v1/me", Some(bogus), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{bogus}");
            assert_eq!(body["error"]["code"], "unauthenticated");
        }
    }
}

#[tokio::test]
async fn jobs_run_report_failures_retry_and_replay_progress() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let _workers = Workers::start(&app);
        let ada = app.user("ada@example.com", false).await;
        let bob = app.user("bob@example.com", false).await;
        let token = ada.token.as_str();
        let (_, server) = app
            .api(
                Method::POST,
                "/api/v1/servers",
                Some(token),
                Some(json!({ "name": "web", "public_address": "203.0.113.5" })),
            )
            .await;
        let server_id = server["id"].as_i64().unwrap();

        let (status, job) = app
            .api(
                Method::POST,
                &format!("/api/v1/servers/{server_id}/diagnostics"),
                Some(token),
                Some(json!({ "steps": 3, "step_ms": 10 })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {job}");
        let job_id = job["id"].as_i64().unwrap();
        let done = wait_for_state(&app, token, job_id, "succeeded").await;
        let steps: Vec<(i64, &str)> = done["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                (
                    event["current_step"].as_i64().unwrap(),
                    event["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [(1, "running"), (2, "running"), (3, "running"), (3, "success")],
            "{backend}"
        );
        assert_eq!(done["events"][3]["percentage"], 100);

        // A failing step reports its masked command, exit code and stderr tail.
        let stderr: String = (1..=30).map(|line| format!("line {line}\n")).collect();
        let (_, job) = app
            .api(Method::POST, &format!("/api/v1/servers/{server_id}/diagnostics"), Some(token), Some(json!({
                "steps": 4, "step_ms": 5, "fail_at_step": 2, "fail_command": "mysql -p*** -e 'SELECT 1'", "fail_exit_code": 7, "fail_stderr": stderr
            })))
            .await;
        let failing_id = job["id"].as_i64().unwrap();
        let failed = wait_for_state(&app, token, failing_id, "failed").await;
        let failure = failed["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(failure["status"], "failed", "{backend}: {failed}");
        assert_eq!(failure["command"], "mysql -p*** -e 'SELECT 1'");
        assert_eq!(failure["exit_code"], 7);
        let tail = failure["stderr_tail"].as_str().unwrap();
        assert!(tail.starts_with("line 11\n") && tail.ends_with("line 30"), "{tail}");
        assert!(
            failed["last_error"].as_str().unwrap().contains("exit code 7"),
            "{failed}"
        );

        // Someone else cannot see, follow, cancel or retry it.
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::GET, "/events"),
            (Method::POST, "/retry"),
            (Method::POST, "/cancel"),
        ] {
            let (status, _) = app
                .api(
                    method,
                    &format!("/api/v1/jobs/{failing_id}{suffix}"),
                    Some(&bob.token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {suffix}");
        }
        let (_, bob_jobs) = app.api(Method::GET, "/api/v1/jobs", Some(&bob.token), None).await;
        assert_eq!(bob_jobs["data"], json!([]));

        // Only failed or cancelled jobs can be retried; a retry starts a new run.
        let (status, _) = app
            .api(Method::POST, &format!("/api/v1/jobs/{job_id}/retry"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = app
            .api(
                Method::POST,
                &format!("/api/v1/jobs/{failing_id}/retry"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let again = wait_for_state(&app, token, failing_id, "failed").await;
        let runs: Vec<i64> = again["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["run"].as_i64().unwrap())
            .collect();
        assert!(
            runs.windows(2).all(|pair| pair[0] == pair[1]) && runs[0] > failure["run"].as_i64().unwrap(),
            "{backend}: only the latest run is shown: {runs:?}"
        );

        // The event stream replays after Last-Event-ID and ends once the job is final.
        let first_event = done["events"][0]["id"].as_i64().unwrap();
        let request = Request::builder()
            .uri(format!("/api/v1/jobs/{job_id}/events"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("last-event-id", first_event.to_string())
            .body(Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = tokio::time::timeout(
            Duration::from_secs(10),
            http_body_util::BodyExt::collect(response.into_body()),
        )
        .await
        .expect("the stream ends after a final job")
        .unwrap()
        .to_bytes();
        let text = String::from_utf8_lossy(&body);
        let ids: Vec<i64> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 3, "{backend}: events after the first: {text}");
        assert!(ids.iter().all(|id| *id > first_event));
        assert!(
            text.contains("event: state") && text.contains("\"succeeded\"") && text.trim_end().ends_with("data: {}"),
            "{text}"
        );

        // Listing filters by server; cancelling a finished job is a conflict.
        let (_, listed) = app
            .api(
                Method::GET,
                &format!("/api/v1/jobs?server_id={server_id}&limit=1"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert!(listed["next_cursor"].is_string());
        let (status, _) = app
            .api(
                Method::POST,
                &format!("/api/v1/jobs/{job_id}/cancel"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (_, audit) = app
            .api(
                Method::GET,
                &format!("/api/v1/audit?server_id={server_id}"),
                Some(token),
                None,
            )
            .await;
        let actions: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"job.started") && actions.contains(&"job.retried"),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn sign_in_locks_after_repeated_failures_and_sets_safe_cookies() {
    for app in TestApp::both().await {
        let backend = app.backend;
        app.user("ada@example.com", false).await;
        let form_cookie = "f".repeat(64);
        let sign_in = |password: &str| {
            let body = serde_urlencoded::to_string([
                ("_csrf", form_cookie.as_str()),
                ("email", "Ada@Example.com"),
                ("password", password),
                ("next", "/servers"),
            ])
            .unwrap();
            Request::builder()
                .method(Method::POST)
                .uri("/login")
                .header(header::COOKIE, format!("bf_form={form_cookie}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        };
        let (status, headers, _) = app.send(sign_in(PASSWORD)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(location(&headers), "/servers");
        let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
            "{cookie}"
        );
        for attempt in 1..=5 {
            let (status, _, body) = app.send(sign_in("wrong password!")).await;
            let expected = if attempt < 5 {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(status, expected, "{backend} attempt {attempt}");
            assert!(
                body.contains(if attempt < 5 {
                    "email or password is not right"
                } else {
                    "Too many failed sign-ins"
                }),
                "{body}"
            );
        }
        let (status, _, body) = app.send(sign_in(PASSWORD)).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{backend}: locked even with the right password"
        );
        assert!(body.contains("locked for 15 more minutes"), "{body}");
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({ "email": "ada@example.com", "password": PASSWORD })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{backend}: the API shares the lockout: {body}"
        );
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    let directory = brokeforge_testkit::temp_data_dir();
    let db = brokeforge_db::Db::connect_sqlite(directory.path()).await.unwrap();
    let config = WebConfig {
        public_url: Some("https://forge.example.com".into()),
        address_policy: Default::default(),
    };
    let secure = TestApp::with_config(db, "sqlite", Some(directory), config).await;
    let (_, headers, _) = secure.page(Method::GET, "/login", None, &[]).await;
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[tokio::test]
async fn forms_need_a_same_site_origin_and_the_session_token() {
    let app = TestApp::sqlite().await;
    let ada = app.user("ada@example.com", false).await;
    let fields = [("name", "web"), ("public_address", "203.0.113.8")];
    let (status, _, _) = app
        .page(
            Method::POST,
            "/servers",
            Some(&ada),
            &[("_csrf", "0"), fields[0], fields[1]],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token");
    let body = serde_urlencoded::to_string([("_csrf", ada.csrf.as_str()), fields[0], fields[1]]).unwrap();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "null"),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/servers")
            .header(header::COOKIE, format!("bf_session={}", ada.cookie))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "forge.example.com")
            .header(name, value)
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, _, _) = app.send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri("/servers")
        .header(header::COOKIE, format!("bf_session={}", ada.cookie))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "forge.example.com")
        .header(header::ORIGIN, "http://forge.example.com")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap();
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).starts_with("/servers/"));

    // Field errors come back on the form, and nothing is created.
    let (status, _, html) = app
        .page(
            Method::POST,
            "/servers",
            Some(&ada),
            &[("name", ""), ("public_address", "192.168.1.1"), ("ssh_port", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name-error", "public_address-error", "ssh_port-error"] {
        assert!(html.contains(field), "{field} in the form");
    }
    assert_eq!(server_count(&app, &ada.token).await, 1);
    // Pages carry the security headers.
    let (_, headers, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    assert!(
        headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
}

#[tokio::test]
async fn first_run_setup_creates_one_administrator_once() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let token = brokeforge_app::auth::issue_setup_token(app.db())
            .await
            .unwrap()
            .expect("no user yet");
        let token = token.expose().clone();
        assert_eq!(token.len(), 64, "256 random bits");
        let (status, headers, _) = app.page(Method::GET, &format!("/setup/{token}"), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{backend}");
        let form_cookie = headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let form_token = form_cookie.trim_start_matches("bf_form=").to_owned();
        let submit = |fields: Vec<(&str, &str)>| {
            let mut fields = fields;
            fields.push(("_csrf", &form_token));
            Request::builder()
                .method(Method::POST)
                .uri(format!("/setup/{token}"))
                .header(header::COOKIE, &form_cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(serde_urlencoded::to_string(&fields).unwrap()))
                .unwrap()
        };
        let (status, _, html) = app
            .send(submit(vec![
                ("email", "nope"),
                ("password", "short"),
                ("password_confirmation", "other"),
            ]))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert!(
            html.contains("email-error")
                && html.contains("password-error")
                && html.contains("password_confirmation-error")
        );
        assert_eq!(
            brokeforge_db::users::count(app.db()).await.unwrap(),
            0,
            "nothing created"
        );
        let good = vec![
            ("email", "root@example.com"),
            ("name", "Root"),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ];
        let (status, headers, _) = app.send(submit(good.clone())).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        assert!(
            headers
                .get(header::SET_COOKIE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("bf_session=")
        );
        let user = brokeforge_db::users::find_by_email(app.db(), "root@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(user.is_admin);
        let (status, _, _) = app.send(submit(good)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: the link works once");
        assert!(
            brokeforge_app::auth::issue_setup_token(app.db())
                .await
                .unwrap()
                .is_none(),
            "no new link once a user exists"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_and_reference_page_describe_the_api() {
    let app = TestApp::sqlite().await;
    let (status, document) = app.api(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for schema in [
        "ServerView",
        "JobView",
        "EventView",
        "AuditView",
        "TokenView",
        "ErrorEnvelope",
        "ServerCreateBody",
    ] {
        assert!(document["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let (status, _, html) = app.page(Method::GET, "/api", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("diagnostics") && html.contains("ServerCreateBody") && html.contains("Start a diagnostics run"),
        "{html}"
    );
}

#[tokio::test]
async fn administrators_manage_users_and_nobody_sees_password_hashes() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let root = app.user("root@example.com", true).await;
        let ada = app.user("ada@example.com", false).await;
        let (status, _) = app.api(Method::GET, "/api/v1/users", Some(&ada.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}");
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/users",
                Some(&root.token),
                Some(json!({ "email": "ada@example.com", "password": "short" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {body}");
        let fields: Vec<&str> = body["error"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["password"]);
        let (status, body) = app
            .api(
                Method::POST,
                "/api/v1/users",
                Some(&root.token),
                Some(json!({ "email": "ADA@example.com", "password": PASSWORD })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{backend}: a duplicate email: {body}"
        );
        assert!(body["error"]["fields"]["email"].is_array());
        let (status, created) = app
            .api(
                Method::POST,
                "/api/v1/users",
                Some(&root.token),
                Some(json!({ "email": "cy@example.com", "name": "Cy", "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {created}");
        let (_, list) = app.api(Method::GET, "/api/v1/users", Some(&root.token), None).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 3);
        assert!(
            !list.to_string().contains("argon2"),
            "{backend}: no password hash leaves the server"
        );
        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/users/{}", root.id),
                Some(&root.token),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "an administrator cannot delete themselves"
        );
        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/users/{}", created["id"]),
                Some(&root.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (page, _, html) = app
            .page(
                Method::GET,
                &format!("/admin/users/{}/activity", ada.id),
                Some(&root),
                &[],
            )
            .await;
        assert_eq!(page, StatusCode::OK);
        assert!(html.contains("Activity of ada@example.com"), "{html}");
        let (status, _, _) = app
            .page(Method::GET, "/admin/users/999999/activity", Some(&root), &[])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn sign_out_and_password_changes_end_sessions() {
    let app = TestApp::sqlite().await;
    let mut ada = app.user("ada@example.com", false).await;
    let first = ada.clone();
    app.new_session(&mut ada).await;
    let (status, _, _) = app.page(Method::GET, "/", Some(&first), &[]).await;
    assert_eq!(status, StatusCode::OK);

    // A wrong current password and a mismatched confirmation are both reported.
    let (status, _, html) = app
        .page(
            Method::POST,
            "/account/password",
            Some(&ada),
            &[
                ("current_password", "nope"),
                ("new_password", "another long password"),
                ("password_confirmation", "x"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("current_password-error") && html.contains("password_confirmation-error"));
    let new_password = "another long password";
    let (status, headers, _) = app
        .page(
            Method::POST,
            "/account/password",
            Some(&ada),
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("password_confirmation", new_password),
            ],
        )
        .await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/account?notice=password_changed".to_owned())
    );
    let (status, headers, _) = app.page(Method::GET, "/", Some(&first), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the other session ended");
    assert!(location(&headers).starts_with("/login"));
    let (status, _, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    assert_eq!(status, StatusCode::OK, "the session that changed the password stays");

    // Signing out ends the session and clears the cookie.
    let (status, headers, _) = app.page(Method::POST, "/logout", Some(&ada), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({ "email": "ada@example.com", "password": new_password })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the new password works: {body}");
}

#[tokio::test]
async fn a_password_typed_into_the_email_field_is_not_recorded() {
    let app = TestApp::sqlite().await;
    app.user("ada@example.com", false).await;
    let (status, _) = app
        .api(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({ "email": "my secret password", "password": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .api(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({ "email": "ada@example.com", "password": "wrong one" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let actors: Vec<(String, Option<i64>)> = brokeforge_db::with_pool!(app.db(), |pool| {
        sqlx::query_as::<_, (String, Option<i64>)>(
            "SELECT actor, user_id FROM audit_events WHERE action = 'auth.sign_in_failed' ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(
        actors,
        [
            ("(not an email address)".to_owned(), None),
            ("ada@example.com".to_owned(), Some(1))
        ],
        "failed sign-ins are audited, on the account when it exists"
    );
}

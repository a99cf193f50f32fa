//! The caches of principals and pages (`brokeforge_web::cache`) never serve what a
//! change in this process made stale: a revoked token, an ended session, a changed
//! password or a deleted user is refused on the very next request, a changed server
//! shows on the very next list and dashboard, and no page reaches another user or
//! session. Changes made by another process show within the caches' time to live.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use brokeforge_web::cache::TTL;
use common::{TestApp, TestUser, location};
use serde_json::{Value, json};

async fn servers(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.api(Method::GET, "/api/v1/servers", Some(token), None).await
}

fn names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .map(|servers| {
            servers
                .iter()
                .map(|server| server["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn create_server(app: &TestApp, user: &TestUser, name: &str, address: &str) -> i64 {
    let (status, server) = app
        .api(
            Method::POST,
            "/api/v1/servers",
            Some(&user.token),
            Some(json!({ "name": name, "public_address": address })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");
    server["id"].as_i64().unwrap()
}

/// The id of the user's token whose text is `token`.
async fn token_id(app: &TestApp, user: &TestUser, token: &str) -> i64 {
    let (_, tokens) = app.api(Method::GET, "/api/v1/tokens", Some(&user.token), None).await;
    tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|info| token.starts_with(info["prefix"].as_str().unwrap()))
        .and_then(|info| info["id"].as_i64())
        .expect("the token is listed")
}

#[tokio::test]
async fn revoked_tokens_are_refused_on_the_very_next_request() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let ci = app.token(&ada, &["read"]).await;
        let laptop = app.token(&ada, &["read"]).await;
        for _ in 0..3 {
            assert_eq!(servers(&app, &ci).await.0, StatusCode::OK, "{backend}");
            assert_eq!(servers(&app, &laptop).await.0, StatusCode::OK, "{backend}");
        }

        // Through the API.
        let id = token_id(&app, &ada, &ci).await;
        let (status, _) = app
            .api(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&ada.token), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend}");
        let (status, body) = servers(&app, &ci).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{backend}: revoked through the API: {body}"
        );
        let (status, _) = app.api(Method::GET, "/api/v1/me", Some(&ci), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}");

        // Through the use case, as the web UI's form does.
        let id = token_id(&app, &ada, &laptop).await;
        brokeforge_app::auth::revoke_token(app.db(), &app.principal(&ada), id)
            .await
            .unwrap();
        let (status, body) = servers(&app, &laptop).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{backend}: revoked by the use case: {body}"
        );

        // The token that revoked them still works.
        assert_eq!(servers(&app, &ada.token).await.0, StatusCode::OK, "{backend}");
    }
}

#[tokio::test]
async fn ended_sessions_and_deleted_users_are_refused_on_the_very_next_request() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let root = app.user("root@example.com", true).await;
        let mut ada = app.user("ada@example.com", false).await;
        let signed_out = ada.clone();
        app.new_session(&mut ada).await;
        for user in [&signed_out, &ada] {
            let (status, _, _) = app.page(Method::GET, "/", Some(user), &[]).await;
            assert_eq!(status, StatusCode::OK, "{backend}");
        }

        let (status, _, _) = app.page(Method::POST, "/logout", Some(&signed_out), &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        let (status, headers, _) = app.page(Method::GET, "/", Some(&signed_out), &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: signed out");
        assert!(location(&headers).starts_with("/login"), "{backend}");
        let (status, _, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert_eq!(status, StatusCode::OK, "{backend}: the other session stays");

        // Deleting the user ends its sessions and tokens at once.
        assert_eq!(servers(&app, &ada.token).await.0, StatusCode::OK, "{backend}");
        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/users/{}", ada.id),
                Some(&root.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend}");
        let (status, _, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: the deleted user's session");
        assert_eq!(
            servers(&app, &ada.token).await.0,
            StatusCode::UNAUTHORIZED,
            "{backend}: the deleted user's token"
        );
    }
}

#[tokio::test]
async fn server_changes_show_on_the_very_next_list_and_dashboard() {
    for app in TestApp::both().await {
        let backend = app.backend;
        let ada = app.user("ada@example.com", false).await;
        let first = create_server(&app, &ada, "alpha", "203.0.113.10").await;
        let (_, page) = servers(&app, &ada.token).await;
        assert_eq!(names(&page), ["alpha"], "{backend}");
        let (_, _, html) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert!(html.contains("alpha") && html.contains("1 server ·"), "{backend}");

        // Created, renamed through the API, a status set by a job handler, deleted.
        let second = create_server(&app, &ada, "beta", "203.0.113.11").await;
        let (_, page) = servers(&app, &ada.token).await;
        assert_eq!(names(&page), ["alpha", "beta"], "{backend}");
        let (_, _, html) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert!(html.contains("beta") && html.contains("2 servers ·"), "{backend}");

        let (status, _) = app
            .api(
                Method::PATCH,
                &format!("/api/v1/servers/{first}"),
                Some(&ada.token),
                Some(json!({ "name": "alpha-renamed" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend}");
        let (_, page) = servers(&app, &ada.token).await;
        assert_eq!(names(&page), ["alpha-renamed", "beta"], "{backend}");

        brokeforge_db::servers::set_connection_status(app.db(), second, "failed")
            .await
            .unwrap();
        let (_, page) = servers(&app, &ada.token).await;
        assert_eq!(page["data"][1]["connection_status"], "failed", "{backend}");
        let (_, _, html) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert!(html.contains("status-failed"), "{backend}");

        // A job shows in the dashboard's recent jobs as soon as it is queued.
        let (status, job) = app
            .api(
                Method::POST,
                &format!("/api/v1/servers/{second}/diagnostics"),
                Some(&ada.token),
                Some(json!({ "steps": 1, "step_ms": 0 })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {job}");
        let (_, _, html) = app.page(Method::GET, "/", Some(&ada), &[]).await;
        assert!(html.contains(&format!("/jobs/{}", job["id"])), "{backend}");

        let (status, _) = app
            .api(
                Method::DELETE,
                &format!("/api/v1/servers/{first}"),
                Some(&ada.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend}");
        let (_, page) = servers(&app, &ada.token).await;
        assert_eq!(names(&page), ["beta"], "{backend}");
    }
}

#[tokio::test]
async fn pages_are_never_served_to_another_user_or_session() {
    let app = TestApp::sqlite().await;
    let mut ada = app.user("ada@example.com", false).await;
    let bob = app.user("bob@example.com", false).await;
    create_server(&app, &ada, "ada-web", "203.0.113.20").await;
    create_server(&app, &bob, "bob-web", "203.0.113.21").await;
    for _ in 0..2 {
        assert_eq!(names(&servers(&app, &ada.token).await.1), ["ada-web"]);
        assert_eq!(names(&servers(&app, &bob.token).await.1), ["bob-web"]);
    }
    let (_, _, ada_page) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    let (_, _, bob_page) = app.page(Method::GET, "/", Some(&bob), &[]).await;
    assert!(ada_page.contains("ada-web") && !ada_page.contains("bob-web"));
    assert!(bob_page.contains("bob-web") && !bob_page.contains("ada-web"));

    // Each session of one user gets its own form token in the page.
    let first = ada.clone();
    app.new_session(&mut ada).await;
    let (_, _, first_page) = app.page(Method::GET, "/", Some(&first), &[]).await;
    let (_, _, second_page) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    assert!(first_page.contains(&first.csrf) && !first_page.contains(&ada.csrf));
    assert!(second_page.contains(&ada.csrf) && !second_page.contains(&first.csrf));

    // A token without the read scope gets no cached page.
    let writer = app.token(&ada, &["write"]).await;
    assert_eq!(servers(&app, &writer).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn changes_made_by_another_process_show_within_the_time_to_live() {
    let app = TestApp::sqlite().await;
    let ada = app.user("ada@example.com", false).await;
    let server = create_server(&app, &ada, "alpha", "203.0.113.30").await;
    assert_eq!(names(&servers(&app, &ada.token).await.1), ["alpha"]);

    // Another process writes to the same file: this process counts none of it.
    let path = app.db().sqlite_path().unwrap().to_owned();
    let other = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    sqlx::query("UPDATE servers SET name = 'renamed elsewhere' WHERE id = ?")
        .bind(server)
        .execute(&other)
        .await
        .unwrap();
    sqlx::query("UPDATE api_tokens SET revoked_at = created_at WHERE user_id = ?")
        .bind(ada.id)
        .execute(&other)
        .await
        .unwrap();
    sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(ada.id)
        .execute(&other)
        .await
        .unwrap();
    other.close().await;

    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let (status, _) = servers(&app, &ada.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the token revoked elsewhere");
    let (status, _, _) = app.page(Method::GET, "/", Some(&ada), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session ended elsewhere");
    let token = app.token(&ada, &["read"]).await;
    assert_eq!(names(&servers(&app, &token).await.1), ["renamed elsewhere"]);
}

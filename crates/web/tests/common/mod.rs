//! Shared test harness: a BrokeForge web application on a fresh SQLite or
//! PostgreSQL database, users with sessions and tokens, and request helpers that
//! drive the router in-process.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use brokeforge_app::accounts::{self, CreateUser};
use brokeforge_app::auth::{self, Credential, NewToken, Principal, Scopes};
use brokeforge_app::operations::OperationEnvironment;
use brokeforge_core::Secret;
use brokeforge_db::Db;
use brokeforge_queue::Queue;
use brokeforge_web::{AppState, WebConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery staple";

/// A web application on its own database.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub backend: &'static str,
    _directory: Option<tempfile::TempDir>,
}

/// A user with a browser session and a full-scope token.
#[derive(Clone)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub cookie: String,
    pub csrf: String,
    pub token: String,
}

fn config() -> WebConfig {
    WebConfig {
        public_url: None,
        address_policy: Default::default(),
    }
}

impl TestApp {
    pub async fn on(db: Db, backend: &'static str, directory: Option<tempfile::TempDir>) -> TestApp {
        TestApp::with_config(db, backend, directory, config()).await
    }

    pub async fn with_config(
        db: Db,
        backend: &'static str,
        directory: Option<tempfile::TempDir>,
        config: WebConfig,
    ) -> TestApp {
        brokeforge_db::migrate::run(&db).await.expect("migrations apply");
        let sealer = std::sync::Arc::new(brokeforge_db::Sealer::new(
            &brokeforge_db::MasterKey::generate().expect("a master key"),
        ));
        let operations = OperationEnvironment::new(db.clone(), Queue::new(db), sealer);
        let state = AppState::new(operations, config);
        TestApp {
            router: brokeforge_web::router(state.clone()),
            state,
            backend,
            _directory: directory,
        }
    }

    pub async fn sqlite() -> TestApp {
        let directory = brokeforge_testkit::temp_data_dir();
        let db = Db::connect_sqlite(directory.path()).await.expect("open SQLite");
        TestApp::on(db, "sqlite", Some(directory)).await
    }

    pub async fn postgres() -> TestApp {
        let url = tokio::task::spawn_blocking(brokeforge_testkit::fresh_postgres_database)
            .await
            .unwrap();
        let db = Db::connect_postgres(&url).await.expect("connect to PostgreSQL");
        TestApp::on(db, "postgres", None).await
    }

    /// One application per backend.
    pub async fn both() -> Vec<TestApp> {
        vec![TestApp::sqlite().await, TestApp::postgres().await]
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Creates a user with a session and a full-scope token.
    pub async fn user(&self, email: &str, is_admin: bool) -> TestUser {
        let password = Secret::from(PASSWORD);
        let record = accounts::create_user(
            self.db(),
            CreateUser {
                email,
                name: "",
                password: &password,
                is_admin,
            },
        )
        .await
        .expect("create user");
        let mut user = TestUser {
            id: record.id,
            email: record.email,
            cookie: String::new(),
            csrf: String::new(),
            token: String::new(),
        };
        self.new_session(&mut user).await;
        user.token = self.token(&user, &["read", "write", "deploy"]).await;
        user
    }

    /// Gives the user a fresh browser session.
    pub async fn new_session(&self, user: &mut TestUser) {
        let session = auth::open_session(self.db(), user.id, None, None)
            .await
            .expect("open session");
        user.cookie = session.cookie_value.expose().clone();
        user.csrf = session.csrf_token;
    }

    /// The user as a principal with every scope (for calling use cases directly).
    pub fn principal(&self, user: &TestUser) -> Principal {
        Principal {
            user_id: user.id,
            email: user.email.clone(),
            name: String::new(),
            is_admin: false,
            scopes: Scopes::all(),
            credential: Credential::Token { token_id: 0 },
            ip: None,
        }
    }

    /// Creates a token with `scopes` for the user.
    pub async fn token(&self, user: &TestUser, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|scope| scope.to_string()).collect();
        let created = auth::create_token(
            self.db(),
            &self.principal(user),
            NewToken {
                name: "test",
                scopes: &scopes,
                expires_in_days: None,
            },
        )
        .await
        .expect("create token");
        created.secret.expose().clone()
    }

    /// Sends a request; returns the status, the headers and the body as text. Does
    /// not read the body of event streams.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let is_stream = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if is_stream {
            return (status, headers, String::new());
        }
        let bytes = response.into_body().collect().await.expect("read the body").to_bytes();
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Calls the API with an optional token and JSON body; returns the status and JSON.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let (status, _, text) = self.send(request).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Requests a page as `user` (or anonymously). Forms get the user's CSRF token
    /// unless `fields` already has one.
    pub async fn page(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        fields: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut builder = Request::builder().method(method.clone()).uri(path);
        if let Some(user) = user {
            builder = builder.header(header::COOKIE, format!("bf_session={}", user.cookie));
        }
        let request = if method == Method::GET {
            builder.body(Body::empty()).unwrap()
        } else {
            let mut pairs: Vec<(&str, &str)> = fields.to_vec();
            if let Some(user) = user
                && !pairs.iter().any(|(key, _)| *key == "_csrf")
            {
                pairs.push(("_csrf", &user.csrf));
            }
            let body = serde_urlencoded::to_string(&pairs).unwrap();
            builder
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        };
        self.send(request).await
    }
}

/// The `Location` header of a redirect.
pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

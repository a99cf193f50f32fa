//! The route table: every route of the application with the access it requires.
//! The same list builds the router and drives the authorization table test, so a
//! route cannot exist without being listed here.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use brokeforge_app::site_files::MAX_FILE_BYTES;

use crate::AppState;
use crate::{api, bootstrap, health, sse, ui, webhooks};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in browser session (anonymous callers are sent to the sign-in page).
    Session,
    /// A signed-in administrator.
    Admin,
    /// A bearer token holding this scope.
    Token(brokeforge_app::auth::Scope),
}

/// One route: its method, its path (axum syntax) and who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// The routes and the router they build.
pub struct RouteTable {
    router: Router<AppState>,
    routes: Vec<RouteInfo>,
}

impl RouteTable {
    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> RouteTable {
        self.routes.push(RouteInfo { method, path, access });
        self.router = self.router.route(path, handler);
        self
    }

    /// Every route, in declaration order.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Builds the table of every route.
pub fn table() -> RouteTable {
    use Access::{Admin, Public, Session, Token};
    use brokeforge_app::auth::Scope::{Deploy, Read, Write};
    let table = RouteTable {
        router: Router::new(),
        routes: Vec::new(),
    };
    table
        // Health and static assets.
        .add("GET", "/healthz", Public, get(health::healthz))
        .add("GET", "/readyz", Public, get(health::readyz))
        .add("GET", "/static/{file}", Public, get(ui::assets::asset))
        // Accounts and sessions.
        .add("GET", "/login", Public, get(ui::account::login_page))
        .add("POST", "/login", Public, post(ui::account::login_submit))
        .add("POST", "/logout", Session, post(ui::account::logout))
        .add("GET", "/setup/{token}", Public, get(ui::account::setup_page))
        .add("POST", "/setup/{token}", Public, post(ui::account::setup_submit))
        .add("GET", "/account", Session, get(ui::account::account_page))
        .add("POST", "/account/password", Session, post(ui::account::change_password))
        .add("GET", "/account/tokens", Session, get(ui::account::tokens_page))
        .add("POST", "/account/tokens", Session, post(ui::account::create_token))
        .add(
            "POST",
            "/account/tokens/{token_id}/revoke",
            Session,
            post(ui::account::revoke_token),
        )
        .add("GET", "/admin/users", Admin, get(ui::account::users_page))
        .add("POST", "/admin/users", Admin, post(ui::account::create_user))
        .add(
            "POST",
            "/admin/users/{user_id}/delete",
            Admin,
            post(ui::account::delete_user),
        )
        // Dashboard, servers, jobs and activity.
        .add("GET", "/", Session, get(ui::pages::dashboard))
        .add("GET", "/servers", Session, get(ui::pages::servers_list))
        .add("GET", "/servers/new", Session, get(ui::pages::server_new))
        .add("POST", "/servers", Session, post(ui::pages::server_create))
        .add("GET", "/servers/{server_id}", Session, get(ui::pages::server_show))
        .add("GET", "/servers/{server_id}/edit", Session, get(ui::pages::server_edit))
        .add("POST", "/servers/{server_id}", Session, post(ui::pages::server_update))
        .add(
            "POST",
            "/servers/{server_id}/delete",
            Session,
            post(ui::pages::server_delete),
        )
        .add(
            "POST",
            "/servers/{server_id}/diagnostics",
            Session,
            post(ui::pages::server_diagnostics),
        )
        // PHP versions and firewall rules of a server.
        .add("GET", "/servers/{server_id}/php", Session, get(ui::php::php_page))
        .add("POST", "/servers/{server_id}/php", Session, post(ui::php::php_install))
        .add(
            "POST",
            "/servers/{server_id}/php/{version}/remove",
            Session,
            post(ui::php::php_remove),
        )
        .add(
            "POST",
            "/servers/{server_id}/php/{version}/default",
            Session,
            post(ui::php::php_cli_default),
        )
        .add(
            "POST",
            "/servers/{server_id}/php/{version}/extensions",
            Session,
            post(ui::php::php_extension_install),
        )
        .add(
            "POST",
            "/servers/{server_id}/php/{version}/extensions/{extension}/remove",
            Session,
            post(ui::php::php_extension_remove),
        )
        .add(
            "GET",
            "/servers/{server_id}/firewall",
            Session,
            get(ui::firewall::firewall_page),
        )
        .add(
            "POST",
            "/servers/{server_id}/firewall",
            Session,
            post(ui::firewall::firewall_add),
        )
        .add(
            "POST",
            "/servers/{server_id}/firewall/{rule_id}/remove",
            Session,
            post(ui::firewall::firewall_remove),
        )
        // Sites: pages, deployments, webhooks and commands.
        .add(
            "GET",
            "/servers/{server_id}/sites/new",
            Session,
            get(ui::sites::site_new),
        )
        .add(
            "POST",
            "/servers/{server_id}/sites",
            Session,
            post(ui::sites::site_create),
        )
        .add("GET", "/sites/{site_id}", Session, get(ui::sites::site_show))
        .add("POST", "/sites/{site_id}/deploy", Session, post(ui::sites::site_deploy))
        .add(
            "POST",
            "/sites/{site_id}/rollback",
            Session,
            post(ui::sites::site_rollback),
        )
        .add(
            "POST",
            "/sites/{site_id}/reinstall",
            Session,
            post(ui::sites::site_reinstall),
        )
        .add("POST", "/sites/{site_id}/delete", Session, post(ui::sites::site_delete))
        .add(
            "GET",
            "/sites/{site_id}/deployments/{deployment_id}",
            Session,
            get(ui::sites::site_deployment_show),
        )
        .add(
            "POST",
            "/sites/{site_id}/deploy-key",
            Session,
            post(ui::sites::site_deploy_key_generate),
        )
        .add(
            "POST",
            "/sites/{site_id}/deploy-key/delete",
            Session,
            post(ui::sites::site_deploy_key_remove),
        )
        .add(
            "POST",
            "/sites/{site_id}/default",
            Session,
            post(ui::sites::site_default_set),
        )
        .add(
            "POST",
            "/sites/{site_id}/default/unset",
            Session,
            post(ui::sites::site_default_unset),
        )
        .add(
            "POST",
            "/sites/{site_id}/settings",
            Session,
            post(ui::sites::site_settings),
        )
        .add(
            "POST",
            "/sites/{site_id}/webhook",
            Session,
            post(ui::sites::site_webhook_enable),
        )
        .add(
            "POST",
            "/sites/{site_id}/webhook/disable",
            Session,
            post(ui::sites::site_webhook_disable),
        )
        .add(
            "POST",
            "/sites/{site_id}/commands",
            Session,
            post(ui::sites::site_command_run),
        )
        .add(
            "GET",
            "/sites/{site_id}/commands/{run_id}",
            Session,
            get(ui::sites::site_command_show),
        )
        .add("GET", "/sites/{site_id}/env", Session, get(ui::site_files::env_show))
        .add("POST", "/sites/{site_id}/env", Session, post(ui::site_files::env_save))
        .add(
            "GET",
            "/sites/{site_id}/files",
            Session,
            get(ui::site_files::files_show),
        )
        .add(
            "POST",
            "/sites/{site_id}/files",
            Session,
            post(ui::site_files::files_save),
        )
        .add(
            "POST",
            "/sites/{site_id}/files/delete",
            Session,
            post(ui::site_files::files_delete),
        )
        .add(
            "GET",
            "/sites/{site_id}/files/download",
            Session,
            get(ui::site_files::files_download),
        )
        .add(
            "POST",
            "/webhooks/sites/{site_id}/{provider}",
            Public,
            post(webhooks::receive),
        )
        .add("GET", "/jobs", Session, get(ui::pages::jobs_list))
        .add("GET", "/jobs/{job_id}", Session, get(ui::pages::job_show))
        .add("GET", "/jobs/{job_id}/events", Session, get(sse::job_events_page))
        .add("POST", "/jobs/{job_id}/retry", Session, post(ui::pages::job_retry))
        .add("POST", "/jobs/{job_id}/cancel", Session, post(ui::pages::job_cancel))
        .add("GET", "/activity", Session, get(ui::pages::activity))
        .add(
            "GET",
            "/admin/users/{user_id}/activity",
            Admin,
            get(ui::pages::user_activity),
        )
        // Onboarding: the bootstrap script and its callbacks (public; the token and
        // the signatures are the credentials), and the owner's actions.
        .add("GET", "/bootstrap/{token}", Public, get(bootstrap::script))
        .add(
            "POST",
            "/bootstrap/callback/{line_id}/{kind}",
            Public,
            post(bootstrap::callback),
        )
        .add(
            "GET",
            "/servers/{server_id}/onboarding",
            Session,
            get(ui::onboarding::status_json),
        )
        .add(
            "POST",
            "/servers/{server_id}/bootstrap-line",
            Session,
            post(ui::onboarding::regenerate_line),
        )
        .add(
            "POST",
            "/servers/{server_id}/bootstrap-line/revoke",
            Session,
            post(ui::onboarding::revoke_line),
        )
        .add(
            "POST",
            "/servers/{server_id}/provisioning/resume",
            Session,
            post(ui::onboarding::resume),
        )
        .add(
            "POST",
            "/servers/{server_id}/provisioning",
            Session,
            post(ui::onboarding::reprovision),
        )
        .add(
            "GET",
            "/api/v1/servers/{server_id}/bootstrap-line",
            Token(Write),
            get(api::onboarding::show_line),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/bootstrap-line",
            Token(Write),
            post(api::onboarding::regenerate_line),
        )
        .add(
            "DELETE",
            "/api/v1/servers/{server_id}/bootstrap-line",
            Token(Write),
            delete(api::onboarding::revoke_line),
        )
        .add(
            "GET",
            "/api/v1/servers/{server_id}/provisioning",
            Token(Read),
            get(api::onboarding::status),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/provisioning",
            Token(Write),
            post(api::onboarding::reprovision),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/provisioning/resume",
            Token(Write),
            post(api::onboarding::resume),
        )
        .add("GET", "/api", Public, get(ui::pages::api_reference))
        // The JSON API.
        .add("GET", "/api/v1/openapi.json", Public, get(api::openapi_json))
        .add(
            "POST",
            "/api/v1/auth/token",
            Public,
            post(api::tokens::exchange_password),
        )
        .add("GET", "/api/v1/me", Token(Read), get(api::me::me))
        .add("GET", "/api/v1/servers", Token(Read), get(api::servers::list))
        .add("POST", "/api/v1/servers", Token(Write), post(api::servers::create))
        .add(
            "GET",
            "/api/v1/servers/{server_id}",
            Token(Read),
            get(api::servers::show),
        )
        .add(
            "PATCH",
            "/api/v1/servers/{server_id}",
            Token(Write),
            patch(api::servers::update),
        )
        .add(
            "DELETE",
            "/api/v1/servers/{server_id}",
            Token(Write),
            delete(api::servers::remove),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/diagnostics",
            Token(Deploy),
            post(api::servers::diagnostics),
        )
        .add(
            "GET",
            "/api/v1/servers/{server_id}/php",
            Token(Read),
            get(api::php::show),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/php",
            Token(Deploy),
            post(api::php::install),
        )
        .add(
            "DELETE",
            "/api/v1/servers/{server_id}/php/{version}",
            Token(Deploy),
            delete(api::php::remove),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/php/{version}/cli-default",
            Token(Deploy),
            post(api::php::cli_default),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/php/{version}/extensions",
            Token(Deploy),
            post(api::php::install_extension),
        )
        .add(
            "DELETE",
            "/api/v1/servers/{server_id}/php/{version}/extensions/{extension}",
            Token(Deploy),
            delete(api::php::remove_extension),
        )
        .add(
            "GET",
            "/api/v1/servers/{server_id}/firewall-rules",
            Token(Read),
            get(api::firewall::list),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/firewall-rules",
            Token(Deploy),
            post(api::firewall::add),
        )
        .add(
            "DELETE",
            "/api/v1/servers/{server_id}/firewall-rules/{rule_id}",
            Token(Deploy),
            delete(api::firewall::remove),
        )
        .add(
            "GET",
            "/api/v1/servers/{server_id}/sites",
            Token(Read),
            get(api::sites::list),
        )
        .add(
            "POST",
            "/api/v1/servers/{server_id}/sites",
            Token(Deploy),
            post(api::sites::create),
        )
        .add("GET", "/api/v1/sites/{site_id}", Token(Read), get(api::sites::show))
        .add(
            "PATCH",
            "/api/v1/sites/{site_id}",
            Token(Write),
            patch(api::sites::update),
        )
        .add(
            "DELETE",
            "/api/v1/sites/{site_id}",
            Token(Deploy),
            delete(api::sites::remove),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/reinstall",
            Token(Deploy),
            post(api::sites::reinstall),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/default",
            Token(Deploy),
            post(api::sites::default_set),
        )
        .add(
            "DELETE",
            "/api/v1/sites/{site_id}/default",
            Token(Deploy),
            delete(api::sites::default_unset),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/deployments",
            Token(Read),
            get(api::sites::deployment_list),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/deployments",
            Token(Deploy),
            post(api::sites::deploy),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/deployments/{deployment_id}",
            Token(Read),
            get(api::sites::deployment_show),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/deploy-key",
            Token(Read),
            get(api::sites::deploy_key_show),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/deploy-key",
            Token(Deploy),
            post(api::sites::deploy_key_generate),
        )
        .add(
            "DELETE",
            "/api/v1/sites/{site_id}/deploy-key",
            Token(Deploy),
            delete(api::sites::deploy_key_remove),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/releases",
            Token(Read),
            get(api::sites::release_list),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/rollback",
            Token(Deploy),
            post(api::sites::rollback),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/webhook",
            Token(Write),
            post(api::sites::webhook_enable),
        )
        .add(
            "DELETE",
            "/api/v1/sites/{site_id}/webhook",
            Token(Write),
            delete(api::sites::webhook_disable),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/commands",
            Token(Read),
            get(api::sites::command_list),
        )
        .add(
            "POST",
            "/api/v1/sites/{site_id}/commands",
            Token(Deploy),
            post(api::sites::command_run),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/commands/{run_id}",
            Token(Read),
            get(api::sites::command_show),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/env",
            Token(Deploy),
            get(api::site_files::env_show),
        )
        .add(
            "PUT",
            "/api/v1/sites/{site_id}/env",
            Token(Deploy),
            put(api::site_files::env_write),
        )
        .add(
            "GET",
            "/api/v1/sites/{site_id}/files",
            Token(Read),
            get(api::site_files::files_show),
        )
        // A file may be up to 1 MiB; the body limit leaves room so a larger one is
        // refused by the use case with its size.
        .add(
            "PUT",
            "/api/v1/sites/{site_id}/files",
            Token(Deploy),
            put(api::site_files::files_write).layer(DefaultBodyLimit::max(2 * MAX_FILE_BYTES)),
        )
        .add(
            "DELETE",
            "/api/v1/sites/{site_id}/files",
            Token(Deploy),
            delete(api::site_files::files_delete),
        )
        .add("GET", "/api/v1/jobs", Token(Read), get(api::jobs::list))
        .add("GET", "/api/v1/jobs/{job_id}", Token(Read), get(api::jobs::show))
        .add(
            "GET",
            "/api/v1/jobs/{job_id}/events",
            Token(Read),
            get(sse::job_events_api),
        )
        .add(
            "POST",
            "/api/v1/jobs/{job_id}/cancel",
            Token(Deploy),
            post(api::jobs::cancel),
        )
        .add(
            "POST",
            "/api/v1/jobs/{job_id}/retry",
            Token(Deploy),
            post(api::jobs::retry),
        )
        .add("GET", "/api/v1/audit", Token(Read), get(api::audit::list))
        .add("GET", "/api/v1/tokens", Token(Read), get(api::tokens::list))
        .add("POST", "/api/v1/tokens", Token(Write), post(api::tokens::create))
        .add(
            "DELETE",
            "/api/v1/tokens/{token_id}",
            Token(Write),
            delete(api::tokens::revoke),
        )
        .add("GET", "/api/v1/users", Token(Read), get(api::users::list))
        .add("POST", "/api/v1/users", Token(Write), post(api::users::create))
        .add(
            "DELETE",
            "/api/v1/users/{user_id}",
            Token(Write),
            delete(api::users::remove),
        )
}

/// Parses an id from a path. Anything that is not a positive number is simply an
/// unknown id: 404, like another user's.
pub fn parse_id(text: &str, what: &'static str) -> Result<i64, brokeforge_app::AppError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(brokeforge_app::AppError::NotFound(what)),
    }
}

//! The site pages: the form that creates a site on a server (with the database
//! settings WordPress sites need), a site's page (details, the buttons that make it
//! the server's default site or stop it being so, deploy button, deployment history, kept releases with rollback buttons, deploy
//! settings with the deploy script editor, the webhook with its URLs and its secret
//! shown once, and commands with their history), and a command run's page, which
//! reloads itself while the command runs so its output grows without JavaScript.
//!
//! A deployment or rollback opens the deployment's page, which shows its log as it
//! grows; other actions that start a job open the job's progress page; a refused
//! request shows the page again with the reason. The site page also shows the deploy
//! key to add to the repository (the site's own, or the server's) with buttons to
//! give the site its own key or delete it.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::deployments;
use brokeforge_app::site_commands::{self, CommandInput};
use brokeforge_app::site_deploy_keys;
use brokeforge_app::sites::{self, DeploySettingsInput, SiteInput};
use brokeforge_app::{AppError, FieldErrors, servers};
use brokeforge_core::Secret;
use minijinja::context;
use serde_json::json;

use super::{FormFields, NoticeQuery, errors_context, page_context, render, sv};
use crate::AppState;
use crate::api::sites::{CommandRunView, DeploymentView, ReleaseView, SiteView, webhook_urls};
use crate::auth::SessionUser;
use crate::error::PageError;
use crate::routes::parse_id;
use crate::views::ServerView;

/// The fixed messages a redirect can ask the site page to show.
fn site_notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "settings_saved" => "Deploy settings saved.",
        "webhook_disabled" => "The deploy webhook is off and its secret forgotten.",
        "deploy_key_generated" => "The site has its own deploy key now: add it to the repository's deploy keys.",
        "deploy_key_deleted" => "The site's own deploy key was deleted; it uses the server's deploy key again.",
        _ => return None,
    })
}

/// What the site page shows besides the site: a refusal, the values of a form that
/// was refused, and a webhook secret shown this once.
#[derive(Default)]
struct Shown {
    settings: Option<minijinja::Value>,
    command: Option<minijinja::Value>,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    notice: Option<&'static str>,
    webhook_secret: Option<String>,
}

async fn site_page_response(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    site_id: i64,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, PageError> {
    let site = sites::get(&state.db, principal, site_id).await?;
    let server = servers::get(&state.db, principal, site.server_id).await?;
    let deployments: Vec<DeploymentView> = deployments::list(&state.queue, principal, site_id, None, 20)
        .await?
        .iter()
        .map(DeploymentView::from_record)
        .collect();
    let releases: Vec<ReleaseView> = deployments::releases(&state.db, principal, site_id)
        .await?
        .iter()
        .map(ReleaseView::from_release)
        .collect();
    let commands: Vec<CommandRunView> = site_commands::list(&state.queue, principal, site_id, None, 10)
        .await?
        .iter()
        .map(CommandRunView::from_record)
        .collect();
    let view = SiteView::from_record(&site);
    let settings = shown.settings.unwrap_or_else(|| {
        context! {
            git_repository => view.git_repository.clone().unwrap_or_default(),
            git_branch => view.git_branch.clone().unwrap_or_else(|| "main".to_owned()),
            deploy_script => view.deploy_script.clone(),
            keep_releases => view.keep_releases.to_string(),
            git_host_keys => view.git_host_keys.join("\n"),
        }
    });
    let deploy_key = site_deploy_keys::view(&site, server.deploy_public_key.as_deref());
    let command = shown
        .command
        .unwrap_or_else(|| context! { command => "", timeout_seconds => "120" });
    let context = page_context(
        principal,
        "servers",
        context! {
            site => sv(&view), server => sv(ServerView::from_record(&server)),
            deployments => sv(deployments), releases => sv(releases), commands => sv(commands),
            settings => settings, command => command, deploy_key => sv(deploy_key),
            webhook_urls => sv(webhook_urls(state, headers, site_id)),
            webhook_secret => shown.webhook_secret,
            errors => shown.errors.as_ref().map(errors_context), alert => shown.alert, notice => shown.notice,
        },
    );
    Ok(render(status, "site_show.html", context))
}

/// A started job opens its page (or the page that follows it); a refusal shows the
/// site page with the reason.
async fn outcome(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    site_id: i64,
    result: Result<String, AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(location) => Ok(Redirect::to(&location).into_response()),
        Err(AppError::Validation(errors)) => {
            let shown = Shown {
                errors: Some(errors),
                ..Shown::default()
            };
            site_page_response(
                state,
                principal,
                headers,
                site_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                shown,
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            let shown = Shown {
                alert: Some(message),
                ..Shown::default()
            };
            site_page_response(state, principal, headers, site_id, StatusCode::CONFLICT, shown).await
        }
        Err(error) => Err(PageError(error)),
    }
}

fn new_site_form(
    principal: &Principal,
    status: StatusCode,
    server: &ServerView,
    offer: &sites::ServerOffer,
    values: minijinja::Value,
    errors: Option<&FieldErrors>,
    alert: Option<String>,
) -> Response {
    let php_versions: Vec<&str> = offer.php_versions.iter().map(|version| version.as_str()).collect();
    let context = page_context(
        principal,
        "servers",
        context! {
            server => sv(server), values => values, errors => errors.map(errors_context), alert => alert,
            php_versions => sv(php_versions), nginx_installed => offer.nginx_installed,
            site_types => sv([
                ("php", "Generic PHP"), ("laravel", "Laravel"), ("wordpress", "WordPress"), ("static", "Static HTML"),
            ]),
        },
    );
    render(status, "site_new.html", context)
}

/// `GET /servers/{server_id}/sites/new`.
pub async fn site_new(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let server = ServerView::from_record(&servers::get(&state.db, &principal, server_id).await?);
    let offer = sites::server_offer(&state.db, &principal, server_id).await?;
    let values = context! {
        site_type => "php", git_branch => "main",
        php_version => offer.cli_default.map(|version| version.as_str()).unwrap_or(""),
    };
    Ok(new_site_form(
        &principal,
        StatusCode::OK,
        &server,
        &offer,
        values,
        None,
        None,
    ))
}

/// `POST /servers/{server_id}/sites`: creates a site and opens its install job.
pub async fn site_create(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let wordpress = form.get("site_type").trim().eq_ignore_ascii_case("wordpress");
    let input = SiteInput {
        domain: form.optional("domain"),
        aliases: form.optional("aliases").map(|aliases| json!(aliases)),
        www: Some(form.get("www") == "on"),
        site_type: form.optional("site_type"),
        php_version: form.optional("php_version"),
        web_directory: form.optional("web_directory"),
        git_repository: form.optional("git_repository"),
        git_branch: form.optional("git_branch"),
        git_host_keys: form.optional("git_host_keys").map(|keys| json!(keys)),
        // The form always holds the WordPress fields; only a WordPress site takes them.
        database_name: wordpress.then(|| form.optional("database_name")).flatten(),
        database_user: wordpress.then(|| form.optional("database_user")).flatten(),
        database_password: wordpress
            .then(|| form.optional("database_password"))
            .flatten()
            .map(Secret::new),
        database_host: wordpress.then(|| form.optional("database_host")).flatten(),
        table_prefix: wordpress.then(|| form.optional("table_prefix")).flatten(),
        wordpress_download_url: None,
    };
    // The password is never sent back into the form.
    let values = context! {
        domain => form.get("domain"), aliases => form.get("aliases"), www => form.get("www") == "on",
        site_type => form.get("site_type"), php_version => form.get("php_version"),
        web_directory => form.get("web_directory"), git_repository => form.get("git_repository"),
        git_branch => form.get("git_branch"), database_name => form.get("database_name"),
        database_user => form.get("database_user"), database_host => form.get("database_host"),
        table_prefix => form.get("table_prefix"), git_host_keys => form.get("git_host_keys"),
    };
    match sites::create(&state.queue, &state.sealer, &principal, server_id, &input).await {
        Ok(started) => Ok(Redirect::to(&format!("/jobs/{}", started.job_id)).into_response()),
        Err(error @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let server = ServerView::from_record(&servers::get(&state.db, &principal, server_id).await?);
            let offer = sites::server_offer(&state.db, &principal, server_id).await?;
            let (status, errors, alert) = match error {
                AppError::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, Some(errors), None),
                AppError::Conflict(message) => (StatusCode::CONFLICT, None, Some(message)),
                _ => unreachable!("matched above"),
            };
            Ok(new_site_form(
                &principal,
                status,
                &server,
                &offer,
                values,
                errors.as_ref(),
                alert,
            ))
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `GET /sites/{site_id}`.
pub async fn site_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let shown = Shown {
        notice: site_notice(query.notice.as_deref()),
        ..Shown::default()
    };
    site_page_response(&state, &principal, &headers, site_id, StatusCode::OK, shown).await
}

/// `POST /sites/{site_id}/deploy`: deploys the branch head and opens the job.
pub async fn site_deploy(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = deployments::deploy(&state.queue, &principal, site_id, None)
        .await
        .map(|started| format!("/sites/{site_id}/deployments/{}", started.deployment.id));
    outcome(&state, &principal, &headers, site_id, result).await
}

/// `POST /sites/{site_id}/rollback`: rolls back to the release in the `release` field.
pub async fn site_rollback(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = deployments::rollback(&state.queue, &principal, site_id, form.get("release"))
        .await
        .map(|started| format!("/sites/{site_id}/deployments/{}", started.deployment.id));
    outcome(&state, &principal, &headers, site_id, result).await
}

/// `POST /sites/{site_id}/reinstall`.
pub async fn site_reinstall(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = sites::reinstall(&state.queue, &principal, site_id)
        .await
        .map(|started| format!("/jobs/{}", started.job_id.0));
    outcome(&state, &principal, &headers, site_id, result).await
}

/// `POST /sites/{site_id}/delete`: removes the site and opens the job.
pub async fn site_delete(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = sites::delete(&state.queue, &principal, site_id)
        .await
        .map(|started| format!("/jobs/{}", started.job_id.0));
    outcome(&state, &principal, &headers, site_id, result).await
}

/// `POST /sites/{site_id}/default`: makes the site the server's default site and
/// opens the job.
pub async fn site_default_set(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    change_default(&state, &principal, &headers, &site_id, true).await
}

/// `POST /sites/{site_id}/default/unset`: makes no site the default in place of this
/// one and opens the job.
pub async fn site_default_unset(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    change_default(&state, &principal, &headers, &site_id, false).await
}

/// Starts the job that makes the site the default (or no longer the default) and
/// opens it.
async fn change_default(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    site_id: &str,
    default: bool,
) -> Result<Response, PageError> {
    let site_id = parse_id(site_id, "site")?;
    let result = sites::set_default(&state.queue, principal, site_id, default)
        .await
        .map(|started| format!("/jobs/{}", started.job_id.0));
    outcome(state, principal, headers, site_id, result).await
}

/// `POST /sites/{site_id}/settings`: saves the deploy settings.
pub async fn site_settings(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let input = DeploySettingsInput {
        git_repository: Some(form.get("git_repository").to_owned()),
        git_branch: Some(form.get("git_branch").to_owned()),
        deploy_script: Some(form.get("deploy_script").to_owned()),
        keep_releases: Some(json!(form.get("keep_releases"))),
        git_host_keys: Some(json!(form.get("git_host_keys"))),
    };
    match sites::update_deploy_settings(&state.db, &principal, site_id, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/sites/{site_id}?notice=settings_saved")).into_response()),
        Err(AppError::Validation(errors)) => {
            let shown = Shown {
                settings: Some(context! {
                    git_repository => form.get("git_repository"), git_branch => form.get("git_branch"),
                    deploy_script => form.get("deploy_script"), keep_releases => form.get("keep_releases"),
                    git_host_keys => form.get("git_host_keys"),
                }),
                errors: Some(errors),
                ..Shown::default()
            };
            site_page_response(
                &state,
                &principal,
                &headers,
                site_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                shown,
            )
            .await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /sites/{site_id}/webhook`: turns the webhook on with a new secret, shown
/// on the page this once.
pub async fn site_webhook_enable(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    match sites::enable_webhook(&state.db, &state.sealer, &principal, site_id).await {
        Ok(created) => {
            let shown = Shown {
                webhook_secret: Some(created.secret.expose().clone()),
                ..Shown::default()
            };
            site_page_response(&state, &principal, &headers, site_id, StatusCode::OK, shown).await
        }
        Err(AppError::Conflict(message)) => {
            let shown = Shown {
                alert: Some(message),
                ..Shown::default()
            };
            site_page_response(&state, &principal, &headers, site_id, StatusCode::CONFLICT, shown).await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /sites/{site_id}/webhook/disable`.
pub async fn site_webhook_disable(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    sites::disable_webhook(&state.db, &principal, site_id).await?;
    Ok(Redirect::to(&format!("/sites/{site_id}?notice=webhook_disabled")).into_response())
}

/// `POST /sites/{site_id}/commands`: runs a command and opens its run's page.
pub async fn site_command_run(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let input = CommandInput {
        command: form.optional("command"),
        timeout_seconds: form.optional("timeout_seconds").map(|timeout| json!(timeout)),
    };
    match site_commands::run(&state.queue, &principal, site_id, &input).await {
        Ok(started) => Ok(Redirect::to(&format!("/sites/{site_id}/commands/{}", started.run.id)).into_response()),
        Err(error @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let (status, errors, alert) = match error {
                AppError::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, Some(errors), None),
                AppError::Conflict(message) => (StatusCode::CONFLICT, None, Some(message)),
                _ => unreachable!("matched above"),
            };
            let shown = Shown {
                command: Some(context! {
                    command => form.get("command"), timeout_seconds => form.get("timeout_seconds"),
                }),
                errors,
                alert,
                ..Shown::default()
            };
            site_page_response(&state, &principal, &headers, site_id, status, shown).await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `GET /sites/{site_id}/commands/{run_id}`: a run with its output; the page reloads
/// itself every two seconds while the command is queued or running.
pub async fn site_command_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((site_id, run_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let run_id = parse_id(&run_id, "command run")?;
    let site = sites::get(&state.db, &principal, site_id).await?;
    let run = CommandRunView::from_record(&site_commands::get(&state.queue, &principal, site_id, run_id).await?);
    let live = matches!(run.status.as_str(), "queued" | "running");
    let context = page_context(
        &principal,
        "servers",
        context! { site => sv(SiteView::from_record(&site)), run => sv(run), live => live },
    );
    Ok(render(StatusCode::OK, "site_command.html", context))
}

/// `GET /sites/{site_id}/deployments/{deployment_id}`: a deployment with its log,
/// reloading itself while it runs so the log grows without JavaScript.
pub async fn site_deployment_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((site_id, deployment_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let deployment_id = parse_id(&deployment_id, "deployment")?;
    let site = sites::get(&state.db, &principal, site_id).await?;
    let deployment =
        DeploymentView::with_output(&deployments::get(&state.queue, &principal, site_id, deployment_id).await?);
    let live = matches!(deployment.status.as_str(), "queued" | "running");
    let context = page_context(
        &principal,
        "servers",
        context! { site => sv(SiteView::from_record(&site)), deployment => sv(deployment), live => live },
    );
    Ok(render(StatusCode::OK, "site_deployment.html", context))
}

/// `POST /sites/{site_id}/deploy-key`: gives the site its own deploy key.
pub async fn site_deploy_key_generate(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = site_deploy_keys::generate(&state.operations, &principal, site_id)
        .await
        .map(|_| format!("/sites/{site_id}?notice=deploy_key_generated#git-access"));
    outcome(&state, &principal, &headers, site_id, result).await
}

/// `POST /sites/{site_id}/deploy-key/delete`: the site uses the server's key again.
pub async fn site_deploy_key_remove(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: HeaderMap,
    Path(site_id): Path<String>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let result = site_deploy_keys::remove(&state.operations, &principal, site_id)
        .await
        .map(|_| format!("/sites/{site_id}?notice=deploy_key_deleted#git-access"));
    outcome(&state, &principal, &headers, site_id, result).await
}

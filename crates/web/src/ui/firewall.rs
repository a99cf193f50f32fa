//! The firewall page of a server: the rules a user added, each with its status and
//! the job that acts on it, a form to add a rule and a button to remove one. Adding
//! and removing each start one job and open its progress page; invalid input shows
//! the form again with each problem next to its field.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::firewall_rules::{self, RuleInput};
use brokeforge_app::{AppError, FieldErrors, servers};
use minijinja::context;
use serde_json::json;

use super::{FormFields, NoticeQuery, errors_context, notice_text, page_context, render, sv};
use crate::AppState;
use crate::api::firewall::FirewallRuleView;
use crate::auth::SessionUser;
use crate::error::PageError;
use crate::routes::parse_id;
use crate::views::ServerView;

/// What the page shows besides the rules: the add form's values and a refusal.
#[derive(Default)]
struct Shown {
    values: Option<minijinja::Value>,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    notice: Option<&'static str>,
}

async fn firewall_page_response(
    state: &AppState,
    principal: &Principal,
    server_id: i64,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, PageError> {
    let record = servers::get(&state.db, principal, server_id).await?;
    let rules: Vec<FirewallRuleView> = firewall_rules::list(&state.db, principal, server_id)
        .await?
        .iter()
        .map(FirewallRuleView::from_record)
        .collect();
    let values = shown
        .values
        .unwrap_or_else(|| context! { action => "allow", protocol => "tcp" });
    let context = page_context(
        principal,
        "servers",
        context! {
            server => sv(ServerView::from_record(&record)), rules => sv(rules), values => values,
            errors => shown.errors.as_ref().map(errors_context), alert => shown.alert, notice => shown.notice,
        },
    );
    Ok(render(status, "server_firewall.html", context))
}

/// `GET /servers/{server_id}/firewall`.
pub async fn firewall_page(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let shown = Shown {
        notice: notice_text(query.notice.as_deref()),
        ..Shown::default()
    };
    firewall_page_response(&state, &principal, server_id, StatusCode::OK, shown).await
}

/// `POST /servers/{server_id}/firewall`: adds a rule and opens its job.
pub async fn firewall_add(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let input = RuleInput {
        action: form.optional("action"),
        port: form.optional("port").map(|port| json!(port)),
        protocol: form.optional("protocol"),
        source: form.optional("source"),
        comment: form.optional("comment"),
    };
    let values = context! {
        action => form.get("action"), port => form.get("port"), protocol => form.get("protocol"),
        source => form.get("source"), comment => form.get("comment"),
    };
    match firewall_rules::add(&state.queue, &principal, server_id, &input).await {
        Ok(started) => Ok(Redirect::to(&format!("/jobs/{}", started.job_id)).into_response()),
        Err(AppError::Validation(errors)) => {
            let shown = Shown {
                values: Some(values),
                errors: Some(errors),
                ..Shown::default()
            };
            firewall_page_response(&state, &principal, server_id, StatusCode::UNPROCESSABLE_ENTITY, shown).await
        }
        Err(AppError::Conflict(message)) => {
            let shown = Shown {
                values: Some(values),
                alert: Some(message),
                ..Shown::default()
            };
            firewall_page_response(&state, &principal, server_id, StatusCode::CONFLICT, shown).await
        }
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /servers/{server_id}/firewall/{rule_id}/remove`: removes a rule and opens
/// its job.
pub async fn firewall_remove(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path((server_id, rule_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let rule_id = parse_id(&rule_id, "firewall rule")?;
    match firewall_rules::remove(&state.queue, &principal, server_id, rule_id).await {
        Ok(started) => Ok(Redirect::to(&format!("/jobs/{}", started.job_id)).into_response()),
        Err(AppError::Conflict(message)) => {
            let shown = Shown {
                alert: Some(message),
                ..Shown::default()
            };
            firewall_page_response(&state, &principal, server_id, StatusCode::CONFLICT, shown).await
        }
        Err(error) => Err(PageError(error)),
    }
}

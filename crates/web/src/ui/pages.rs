//! The dashboard, server pages, job pages, the activity log and the API reference.

use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::diagnostics::{self, DiagnosticsInput};
use brokeforge_app::servers::{self, DatabaseChoice, Provider, ServerInput};
use brokeforge_app::{AppError, FieldErrors, audit, jobs};
use brokeforge_core::PhpVersion;
use brokeforge_db::Topic;
use minijinja::context;
use serde_json::json;

use super::{FormFields, NoticeQuery, errors_context, notice_text, page_context, render, sv};
use crate::AppState;
use crate::auth::SessionUser;
use crate::cache::PageKey;
use crate::error::PageError;
use crate::routes::parse_id;
use crate::views::{AuditView, EventView, JobView, ServerView, next_cursor};

#[derive(serde::Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
}

fn choices() -> minijinja::Value {
    let providers: Vec<Choice> = Provider::ALL
        .iter()
        .map(|p| Choice {
            value: p.as_str(),
            label: p.label(),
        })
        .collect();
    let databases: Vec<Choice> = DatabaseChoice::ALL
        .iter()
        .map(|d| Choice {
            value: d.as_str(),
            label: d.label(),
        })
        .collect();
    let php_versions: Vec<&str> = PhpVersion::ALL.iter().map(|v| v.as_str()).collect();
    context! { providers => sv(providers), databases => sv(databases), php_versions => sv(php_versions) }
}

fn cursor_of(query: &NoticeQuery) -> Option<i64> {
    query
        .cursor
        .as_deref()
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
}

/// `GET /`: servers with their status, recent jobs and recent activity.
pub async fn dashboard(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = notice_text(query.notice.as_deref());
    // The page carries the session's form token, so it is cached per session.
    let key = PageKey::for_credential(&principal, "dashboard", notice.unwrap_or_default().to_owned());
    let html = state
        .caches
        .page(&state.db, key, &[Topic::Servers, Topic::Jobs, Topic::Audit], || {
            render_dashboard(&state, &principal, notice)
        })
        .await?;
    Ok(Html(html).into_response())
}

async fn render_dashboard(
    state: &AppState,
    principal: &Principal,
    notice: Option<&'static str>,
) -> Result<Bytes, AppError> {
    let db = &state.db;
    let server_list: Vec<ServerView> = servers::list(db, principal, None, 50)
        .await?
        .iter()
        .map(ServerView::from_record)
        .collect();
    let server_count = brokeforge_db::servers::count_for_user(db, principal.user_id)
        .await
        .map_err(AppError::from)?;
    let recent_jobs: Vec<JobView> = jobs::list(db, principal, None, None, 8)
        .await?
        .iter()
        .map(JobView::from_row)
        .collect();
    let activity: Vec<AuditView> = audit::list_for_user(db, principal.user_id, None, 8)
        .await?
        .iter()
        .map(AuditView::from_record)
        .collect();
    let running = recent_jobs
        .iter()
        .filter(|job| job.state == "running" || job.state == "queued")
        .count();
    let context = page_context(
        principal,
        "dashboard",
        context! {
            servers => sv(server_list), server_count => server_count, jobs => sv(recent_jobs), activity => sv(activity),
            running_jobs => running, notice => notice,
        },
    );
    // A page that cannot be rendered is an error, never a cached page.
    crate::templates::render("dashboard.html", context)
        .map(Bytes::from)
        .map_err(|_| AppError::internal("the dashboard template could not be rendered"))
}

/// `GET /servers`.
pub async fn servers_list(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let limit = 50;
    let records = servers::list(&state.db, &principal, cursor_of(&query), limit).await?;
    let views: Vec<ServerView> = records.iter().map(ServerView::from_record).collect();
    let next = next_cursor(&views, limit, |server| server.id);
    let context = page_context(
        &principal,
        "servers",
        context! { servers => sv(views), next_cursor => next, notice => notice_text(query.notice.as_deref()) },
    );
    Ok(render(StatusCode::OK, "servers_list.html", context))
}

fn server_form(
    principal: &Principal,
    status: StatusCode,
    server_id: Option<i64>,
    values: minijinja::Value,
    errors: Option<&FieldErrors>,
) -> Response {
    let context = page_context(
        principal,
        "servers",
        context! { server_id => server_id, values => values, errors => errors.map(errors_context), ..choices() },
    );
    render(status, "server_form.html", context)
}

/// `GET /servers/new`.
pub async fn server_new(SessionUser(principal): SessionUser) -> Response {
    let values = context! { provider => "custom", ssh_port => "22", php_version => "8.3", database => "none" };
    server_form(&principal, StatusCode::OK, None, values, None)
}

fn input_from_form(form: &FormFields) -> ServerInput {
    // Optional fields left empty take their defaults (on edit: keep their values).
    let optional = |name: &str| form.optional(name).filter(|value| !value.trim().is_empty());
    ServerInput {
        name: Some(form.get("name").to_owned()),
        provider: optional("provider"),
        public_address: Some(form.get("public_address").to_owned()),
        ssh_port: optional("ssh_port").map(|port| json!(port)),
        php_version: optional("php_version"),
        database: optional("database"),
    }
}

fn values_from_form(form: &FormFields) -> minijinja::Value {
    context! {
        name => form.get("name"), provider => form.get("provider"), public_address => form.get("public_address"),
        ssh_port => form.get("ssh_port"), php_version => form.get("php_version"), database => form.get("database"),
    }
}

/// `POST /servers`.
pub async fn server_create(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: axum::http::HeaderMap,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    match brokeforge_app::onboarding::create_server(
        &state.db,
        &state.sealer,
        &principal,
        state.config.address_policy,
        &input_from_form(&form),
        &state.base_url(&headers),
    )
    .await
    {
        Ok((record, _line)) => {
            Ok(Redirect::to(&format!("/servers/{}?notice=server_created", record.id)).into_response())
        }
        Err(AppError::Validation(errors)) => Ok(server_form(
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            values_from_form(&form),
            Some(&errors),
        )),
        Err(error) => Err(PageError(error)),
    }
}

/// `GET /servers/{server_id}`: details, diagnostics, jobs and the server's audit log.
pub async fn server_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    headers: axum::http::HeaderMap,
    Path(server_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let record = servers::get(&state.db, &principal, server_id).await?;
    let server_jobs: Vec<JobView> = jobs::list(&state.db, &principal, Some(server_id), None, 10)
        .await?
        .iter()
        .map(JobView::from_row)
        .collect();
    let activity: Vec<AuditView> = audit::list_for_server(&state.db, principal.user_id, server_id, None, 20)
        .await?
        .iter()
        .map(AuditView::from_record)
        .collect();
    let onboarding = super::onboarding::onboarding_context(&state, &principal, &headers, server_id).await?;
    let sites: Vec<crate::api::sites::SiteView> = brokeforge_app::sites::list(&state.db, &principal, server_id)
        .await?
        .iter()
        .map(crate::api::sites::SiteView::from_record)
        .collect();
    let context = page_context(
        &principal,
        "servers",
        context! {
            server => sv(ServerView::from_record(&record)), jobs => sv(server_jobs), activity => sv(activity),
            onboarding => onboarding, sites => sv(sites),
            notice => notice_text(query.notice.as_deref()),
        },
    );
    Ok(render(StatusCode::OK, "server_show.html", context))
}

/// `GET /servers/{server_id}/edit`.
pub async fn server_edit(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let view = ServerView::from_record(&servers::get(&state.db, &principal, server_id).await?);
    let values = context! {
        name => view.name, provider => view.provider, public_address => view.public_address,
        ssh_port => view.ssh_port.to_string(), php_version => view.php_version, database => view.database,
    };
    Ok(server_form(&principal, StatusCode::OK, Some(server_id), values, None))
}

/// `POST /servers/{server_id}`: saves the edit form.
pub async fn server_update(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    match servers::update(
        &state.db,
        &principal,
        state.config.address_policy,
        server_id,
        &input_from_form(&form),
    )
    .await
    {
        Ok(record) => Ok(Redirect::to(&format!("/servers/{}?notice=server_updated", record.id)).into_response()),
        Err(AppError::Validation(errors)) => Ok(server_form(
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(server_id),
            values_from_form(&form),
            Some(&errors),
        )),
        Err(error) => Err(PageError(error)),
    }
}

/// `POST /servers/{server_id}/delete`.
pub async fn server_delete(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let remove_access = form.get("remove_access") == "on";
    let server_id = parse_id(&server_id, "server")?;
    match brokeforge_app::onboarding::delete_server(&state.db, &state.queue, &principal, server_id, remove_access)
        .await?
    {
        brokeforge_app::onboarding::Deletion::Deleted => {
            Ok(Redirect::to("/servers?notice=server_deleted").into_response())
        }
        brokeforge_app::onboarding::Deletion::RemovingAccess(job) => {
            Ok(Redirect::to(&format!("/jobs/{job}?notice=server_deleting")).into_response())
        }
    }
}

/// `POST /servers/{server_id}/diagnostics`: starts a diagnostics run and shows its progress.
pub async fn server_diagnostics(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(server_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let server_id = parse_id(&server_id, "server")?;
    let input = DiagnosticsInput {
        steps: form.optional("steps").map(|text| json!(text)),
        step_ms: form.optional("step_ms").map(|text| json!(text)),
        fail_at_step: form.optional("fail_at_step").map(|text| json!(text)),
        fail_command: form.optional("fail_command"),
        fail_exit_code: form.optional("fail_exit_code").map(|text| json!(text)),
        fail_stderr: form.optional("fail_stderr"),
    };
    let job_id = diagnostics::start(&state.queue, &principal, server_id, &input).await?;
    Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response())
}

/// `GET /jobs`.
pub async fn jobs_list(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let limit = 50;
    let views: Vec<JobView> = jobs::list(&state.db, &principal, None, cursor_of(&query), limit)
        .await?
        .iter()
        .map(JobView::from_row)
        .collect();
    let next = next_cursor(&views, limit, |job| job.id);
    let context = page_context(&principal, "jobs", context! { jobs => sv(views), next_cursor => next });
    Ok(render(StatusCode::OK, "jobs_list.html", context))
}

/// `GET /jobs/{job_id}`: the milestone list, updated live by the script over SSE.
pub async fn job_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(job_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let job_id = parse_id(&job_id, "job")?;
    let job = jobs::get(&state.db, &principal, job_id).await?;
    let all_events = jobs::events_after(&state.db, job_id, 0).await?;
    let last_event_id = all_events.last().map(|event| event.id).unwrap_or(0);
    let events: Vec<EventView> = jobs::latest_run(all_events).iter().map(EventView::from_event).collect();
    let current = events.last().cloned();
    let failed = events.iter().rev().find(|event| event.status == "failed").cloned();
    let context = page_context(
        &principal,
        "jobs",
        context! {
            job => sv(JobView::from_row(&job)), events => sv(events), current => sv(current), failed => sv(failed),
            last_event_id => last_event_id, notice => notice_text(query.notice.as_deref()),
        },
    );
    Ok(render(StatusCode::OK, "job_show.html", context))
}

/// `POST /jobs/{job_id}/retry`.
pub async fn job_retry(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(job_id): Path<String>,
) -> Result<Response, PageError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::retry(&state.queue, &principal, job_id).await?;
    Ok(Redirect::to(&format!("/jobs/{job_id}?notice=job_retried")).into_response())
}

/// `POST /jobs/{job_id}/cancel`.
pub async fn job_cancel(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(job_id): Path<String>,
) -> Result<Response, PageError> {
    let job_id = parse_id(&job_id, "job")?;
    jobs::cancel(&state.queue, &principal, job_id).await?;
    Ok(Redirect::to(&format!("/jobs/{job_id}?notice=job_cancelled")).into_response())
}

/// `GET /activity`: the caller's own audit log.
pub async fn activity(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let limit = 100;
    let events: Vec<AuditView> = audit::list_for_user(&state.db, principal.user_id, cursor_of(&query), limit)
        .await?
        .iter()
        .map(AuditView::from_record)
        .collect();
    let next = next_cursor(&events, limit, |event| event.id);
    let context = page_context(
        &principal,
        "activity",
        context! { events => sv(events), next_cursor => next },
    );
    Ok(render(StatusCode::OK, "activity.html", context))
}

/// `GET /api`: a readable reference generated from the OpenAPI document.
pub async fn api_reference(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let document = crate::api::openapi_document();
    let mut operations = Vec::new();
    if let Some(paths) = document.get("paths").and_then(|paths| paths.as_object()) {
        for (path, item) in paths {
            let Some(methods) = item.as_object() else { continue };
            for (method, operation) in methods {
                let parameters: Vec<serde_json::Value> = operation
                    .get("parameters")
                    .and_then(|value| value.as_array())
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|parameter| {
                        json!({
                            "name": parameter.get("name"), "location": parameter.get("in"),
                            "required": parameter.get("required"), "description": parameter.get("description"),
                        })
                    })
                    .collect();
                let responses: Vec<serde_json::Value> = operation
                    .get("responses")
                    .and_then(|value| value.as_object())
                    .map(|responses| {
                        responses
                            .iter()
                            .map(|(code, response)| {
                                let schema = response
                                    .pointer("/content/application~1json/schema/$ref")
                                    .and_then(|value| value.as_str())
                                    .map(|reference| reference.rsplit('/').next().unwrap_or("").to_owned());
                                let description = response
                                    .get("description")
                                    .and_then(|value| value.as_str())
                                    .filter(|text| !text.is_empty());
                                json!({ "code": code, "description": description, "schema": schema })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let scopes: Vec<String> = operation
                    .get("security")
                    .and_then(|value| value.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|requirement| requirement.get("token").and_then(|scopes| scopes.as_array()).cloned())
                    .flatten()
                    .filter_map(|scope| scope.as_str().map(str::to_owned))
                    .collect();
                let request_schema = operation
                    .pointer("/requestBody/content/application~1json/schema/$ref")
                    .and_then(|value| value.as_str())
                    .map(|reference| reference.rsplit('/').next().unwrap_or("").to_owned());
                operations.push(json!({
                    "method": method.to_uppercase(), "path": path, "summary": operation.get("summary"),
                    "description": operation.get("description"), "tag": operation.pointer("/tags/0"),
                    "parameters": parameters, "responses": responses, "scopes": scopes, "request_schema": request_schema,
                }));
            }
        }
    }
    let schemas: Vec<serde_json::Value> = document
        .pointer("/components/schemas")
        .and_then(|value| value.as_object())
        .map(|schemas| {
            schemas
                .iter()
                .map(|(name, schema)| {
                    let required: Vec<String> = schema.get("required").and_then(|value| value.as_array()).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                    let properties: Vec<serde_json::Value> = schema
                        .get("properties")
                        .and_then(|value| value.as_object())
                        .map(|properties| {
                            properties
                                .iter()
                                .map(|(field, property)| json!({
                                    "name": field,
                                    "type": property.get("type").map(|t| t.to_string().replace('"', "")).or_else(|| property.get("$ref").and_then(|r| r.as_str()).map(|r| r.rsplit('/').next().unwrap_or("").to_owned())),
                                    "description": property.get("description"),
                                    "required": required.contains(field),
                                }))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({ "name": name, "description": schema.get("description"), "properties": properties })
                })
                .collect()
        })
        .unwrap_or_default();
    let principal = match crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE) {
        Some(value) => brokeforge_app::auth::authenticate_session(&state.db, value, None)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let values = context! { operations => sv(operations), schemas => sv(schemas), title => sv(document.pointer("/info/title")), version => sv(document.pointer("/info/version")) };
    let context = match &principal {
        Some(principal) => page_context(principal, "api", values),
        None => values,
    };
    render(StatusCode::OK, "api_reference.html", context)
}

/// `GET /admin/users/{user_id}/activity`: what one user did, for administrators.
pub async fn user_activity(
    State(state): State<AppState>,
    crate::auth::AdminUser(principal): crate::auth::AdminUser,
    Path(user_id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let user_id = parse_id(&user_id, "user")?;
    let user = brokeforge_db::users::find_by_id(&state.db, user_id)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound("user"))?;
    let limit = 100;
    let events: Vec<AuditView> = audit::list_for_user(&state.db, user_id, cursor_of(&query), limit)
        .await?
        .iter()
        .map(AuditView::from_record)
        .collect();
    let next = next_cursor(&events, limit, |event| event.id);
    let context = page_context(
        &principal,
        "users",
        context! { events => sv(events), next_cursor => next, subject => user.email, subject_id => user_id },
    );
    Ok(render(StatusCode::OK, "activity.html", context))
}

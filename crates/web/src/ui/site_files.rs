//! A site's environment page (its `.env` or `wp-config.php` in a textarea) and its
//! file explorer: a directory listing with links, a text file's editor, a form that
//! writes a new file, downloads, and deletion behind a confirmation.
//!
//! Both act on the server while the request waits. A path the server refuses, a
//! missing file or an unreachable server shows the page again with the reason. Text
//! areas send `\r\n` line endings; they are saved as `\n`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use brokeforge_app::auth::Principal;
use brokeforge_app::site_files::{self, Browse, MAX_FILE_BYTES};
use brokeforge_app::{AppError, site_env, sites};
use brokeforge_core::Secret;
use minijinja::context;
use serde::Deserialize;

use super::{FormFields, render, sv};
use crate::AppState;
use crate::api::site_files::{FileEntryView, file_response, refusal_status};
use crate::api::sites::SiteView;
use crate::auth::SessionUser;
use crate::error::PageError;
use crate::routes::parse_id;

/// The query of the file pages: a path in the site, and a fixed notice.
#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    pub path: Option<String>,
    pub notice: Option<String>,
}

fn files_notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "env_saved" => "Environment file saved.",
        "env_unchanged" => "The environment file already held exactly this; nothing changed.",
        "file_saved" => "File saved.",
        "file_deleted" => "Deleted.",
        "file_missing" => "It was gone already.",
        _ => return None,
    })
}

/// `?path=...` for a link, with the path encoded.
fn path_query(path: &str) -> String {
    serde_urlencoded::to_string([("path", path)]).unwrap_or_default()
}

fn unix_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

async fn site_view(state: &AppState, principal: &Principal, site_id: i64) -> Result<SiteView, PageError> {
    Ok(SiteView::from_record(&sites::get(&state.db, principal, site_id).await?))
}

/// The refusal of an action shown on the page: its status and message.
fn refusal(error: AppError) -> Result<(StatusCode, String), PageError> {
    let Some(status) = refusal_status(&error) else {
        return Err(PageError(error));
    };
    let message = match &error {
        AppError::Validation(fields) => fields
            .iter()
            .flat_map(|(_, messages)| messages.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        other => crate::error::message_of(other),
    };
    Ok((status, message))
}

fn env_page(
    principal: &Principal,
    status: StatusCode,
    site: &SiteView,
    file: Option<String>,
    contents: Option<String>,
    alert: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    let context = super::page_context(
        principal,
        "servers",
        context! {
            site => sv(site), file => file, contents => contents, alert => alert, notice => notice,
        },
    );
    render(status, "site_env.html", context)
}

/// `GET /sites/{site_id}/env`: the environment file in an editor.
pub async fn env_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilesQuery>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let site = site_view(&state, &principal, site_id).await?;
    let notice = files_notice(query.notice.as_deref());
    match site_env::read(&state.operations, &principal, site_id).await {
        Ok(env) => Ok(env_page(
            &principal,
            StatusCode::OK,
            &site,
            Some(env.file.to_string()),
            Some(env.contents.expose().clone()),
            None,
            notice,
        )),
        Err(error) => {
            let (status, message) = refusal(error)?;
            Ok(env_page(&principal, status, &site, None, None, Some(message), None))
        }
    }
}

/// `POST /sites/{site_id}/env`: saves the `contents` field as the environment file.
pub async fn env_save(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let text = unix_lines(form.get("contents"));
    let contents = Secret::new(text.clone().into_bytes());
    match site_env::write(&state.operations, &principal, site_id, contents).await {
        Ok(written) => {
            let notice = if written.changed { "env_saved" } else { "env_unchanged" };
            Ok(Redirect::to(&format!("/sites/{site_id}/env?notice={notice}")).into_response())
        }
        Err(error) => {
            let site = site_view(&state, &principal, site_id).await?;
            let (status, message) = refusal(error)?;
            // The owner's own text comes back so nothing typed is lost.
            Ok(env_page(
                &principal,
                status,
                &site,
                None,
                Some(text),
                Some(message),
                None,
            ))
        }
    }
}

/// What the file page shows.
#[derive(Default)]
struct FilesShown {
    path: String,
    entries: Option<Vec<FileEntryView>>,
    /// The file's text, or `None` for a file that is not UTF-8.
    file: Option<Option<String>>,
    new_path: Option<String>,
    new_contents: Option<String>,
    alert: Option<String>,
    notice: Option<&'static str>,
}

fn files_page(principal: &Principal, status: StatusCode, site: &SiteView, shown: FilesShown) -> Response {
    let site_id = site.id;
    let mut crumbs = vec![context! { name => site.domain.clone(), href => format!("/sites/{site_id}/files") }];
    let mut so_far = String::new();
    for part in shown.path.split('/').filter(|part| !part.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        crumbs.push(context! { name => part, href => format!("/sites/{site_id}/files?{}", path_query(&so_far)) });
    }
    let parent = shown.path.rsplit_once('/').map(|(parent, _)| parent).unwrap_or("");
    let entries = shown.entries.map(|entries| {
        entries
            .into_iter()
            .map(|entry| {
                let query = path_query(&entry.path);
                context! {
                    name => entry.name, path => entry.path, kind => entry.kind, size => entry.size,
                    modified => chrono::DateTime::<chrono::Utc>::from_timestamp(entry.modified as i64, 0)
                        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string()),
                    link_target => entry.link_target,
                    href => format!("/sites/{site_id}/files?{query}"),
                    download => format!("/sites/{site_id}/files/download?{query}"),
                }
            })
            .collect::<Vec<_>>()
    });
    let is_file = shown.file.is_some();
    let new_file_path = match shown.new_path {
        Some(path) => path,
        None if is_file || shown.path.is_empty() => String::new(),
        None => format!("{}/", shown.path),
    };
    let context = super::page_context(
        principal,
        "servers",
        context! {
            site => sv(site), path => shown.path.clone(), crumbs => crumbs, entries => entries,
            is_file => is_file, text => shown.file.flatten(),
            download => format!("/sites/{site_id}/files/download?{}", path_query(&shown.path)),
            parent_href => format!("/sites/{site_id}/files?{}", path_query(parent)),
            new_file_path => new_file_path, new_contents => shown.new_contents,
            max_kib => MAX_FILE_BYTES / 1024, alert => shown.alert, notice => shown.notice,
        },
    );
    render(status, "site_files.html", context)
}

/// `GET /sites/{site_id}/files?path=...`: a directory's listing, or a file's editor.
pub async fn files_show(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilesQuery>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let site = site_view(&state, &principal, site_id).await?;
    let requested = query.path.clone().unwrap_or_default();
    let notice = files_notice(query.notice.as_deref());
    match site_files::browse(&state.operations, &principal, site_id, &requested).await {
        Ok(Browse::Directory { path, entries }) => {
            let entries = entries
                .iter()
                .map(|entry| FileEntryView::from_entry(&path, entry))
                .collect();
            let shown = FilesShown {
                path: path.to_string(),
                entries: Some(entries),
                notice,
                ..FilesShown::default()
            };
            Ok(files_page(&principal, StatusCode::OK, &site, shown))
        }
        Ok(Browse::File { path, contents }) => {
            let text = String::from_utf8(contents.expose().clone()).ok();
            let shown = FilesShown {
                path: path.to_string(),
                file: Some(text),
                notice,
                ..FilesShown::default()
            };
            Ok(files_page(&principal, StatusCode::OK, &site, shown))
        }
        Err(error) => {
            let (status, message) = refusal(error)?;
            let shown = FilesShown {
                path: requested.trim_matches('/').to_owned(),
                alert: Some(message),
                ..FilesShown::default()
            };
            Ok(files_page(&principal, status, &site, shown))
        }
    }
}

/// `POST /sites/{site_id}/files`: writes the `contents` field to the file `path`
/// (an edited file, or a new one).
pub async fn files_save(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let text = unix_lines(form.get("contents"));
    let contents = Secret::new(text.clone().into_bytes());
    match site_files::write(&state.operations, &principal, site_id, form.get("path"), contents).await {
        Ok(path) => Ok(Redirect::to(&format!(
            "/sites/{site_id}/files?{}&notice=file_saved",
            path_query(path.as_str())
        ))
        .into_response()),
        Err(error) => {
            let site = site_view(&state, &principal, site_id).await?;
            let (status, message) = refusal(error)?;
            let path = form.get("path").trim_matches('/');
            let shown = FilesShown {
                path: path.rsplit_once('/').map(|(parent, _)| parent).unwrap_or("").to_owned(),
                new_path: Some(path.to_owned()),
                new_contents: Some(text),
                alert: Some(format!("{path}: {message}")),
                ..FilesShown::default()
            };
            Ok(files_page(&principal, status, &site, shown))
        }
    }
}

/// `POST /sites/{site_id}/files/delete`: deletes `path` and shows its directory.
pub async fn files_delete(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Form(form): Form<FormFields>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    match site_files::delete(&state.operations, &principal, site_id, form.get("path")).await {
        Ok((path, deleted)) => {
            let parent = path.as_str().rsplit_once('/').map(|(parent, _)| parent).unwrap_or("");
            let notice = if deleted { "file_deleted" } else { "file_missing" };
            Ok(Redirect::to(&format!(
                "/sites/{site_id}/files?{}&notice={notice}",
                path_query(parent)
            ))
            .into_response())
        }
        Err(error) => {
            let site = site_view(&state, &principal, site_id).await?;
            let (status, message) = refusal(error)?;
            let path = form.get("path").trim_matches('/');
            let shown = FilesShown {
                path: path.rsplit_once('/').map(|(parent, _)| parent).unwrap_or("").to_owned(),
                alert: Some(format!("{path}: {message}")),
                ..FilesShown::default()
            };
            Ok(files_page(&principal, status, &site, shown))
        }
    }
}

/// `GET /sites/{site_id}/files/download?path=...`: a file's bytes as an attachment.
pub async fn files_download(
    State(state): State<AppState>,
    SessionUser(principal): SessionUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilesQuery>,
) -> Result<Response, PageError> {
    let site_id = parse_id(&site_id, "site")?;
    let requested = query.path.unwrap_or_default();
    let contents = site_files::read(&state.operations, &principal, site_id, &requested).await?;
    let path = site_files::parse_path(&requested)?;
    Ok(file_response(&path, contents, true))
}

//! `/api/v1/sites/{site_id}/env` and `/api/v1/sites/{site_id}/files`: a site's
//! environment file, and the file explorer of its directory. Both act on the server
//! while the request waits (no job), so an unreachable server answers 409 with the
//! reason.
//!
//! The environment file travels as JSON (`{"contents": "..."}`) both ways. Files
//! travel as raw bytes: `GET ?path=` answers a directory's listing as JSON and a
//! file's bytes as `application/octet-stream`, `PUT ?path=` takes the new bytes as
//! the body (at most 1 MiB). Paths are relative to the site's directory; one that
//! leads out of it (`..`, or a symbolic link to elsewhere) is refused with 422.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokeforge_app::site_env;
use brokeforge_app::site_files::{self, Browse, MAX_FILE_BYTES};
use brokeforge_app::{AppError, FieldErrors};
use brokeforge_core::Secret;
use brokeforge_packages::site::files::{EntryKind, FileEntry, SiteFilePath};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiJson;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::routes::parse_id;

/// A site's environment file.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvFileView {
    /// `.env`, or `wp-config.php` for WordPress sites.
    pub file: String,
    /// False when the file does not exist yet (the contents are then empty).
    pub exists: bool,
    /// The file's text. Secret: keep it out of logs.
    pub contents: String,
}

/// The new contents of a site's environment file.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnvBody {
    /// The whole file, at most 256 KiB.
    pub contents: String,
}

/// What writing the environment file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvWrittenView {
    pub file: String,
    /// False when the file already held exactly these contents.
    pub changed: bool,
}

/// A path inside the site's directory.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilePathQuery {
    /// Relative to the site's directory, such as `shared/storage/logs`; empty for
    /// the directory itself.
    pub path: Option<String>,
}

impl FilePathQuery {
    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("")
    }
}

/// One entry of a listed directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileEntryView {
    pub name: String,
    /// The entry's path relative to the site's directory.
    pub path: String,
    /// file, directory, symbolic-link or other.
    pub kind: String,
    /// Bytes.
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: f64,
    /// Where a symbolic link points.
    pub link_target: Option<String>,
}

impl FileEntryView {
    pub fn from_entry(directory: &SiteFilePath, entry: &FileEntry) -> FileEntryView {
        let path = if directory.is_root() {
            entry.name.clone()
        } else {
            format!("{directory}/{}", entry.name)
        };
        FileEntryView {
            name: entry.name.clone(),
            path,
            kind: match entry.kind {
                EntryKind::File => "file",
                EntryKind::Directory => "directory",
                EntryKind::SymbolicLink => "symbolic-link",
                EntryKind::Other => "other",
            }
            .to_owned(),
            size: entry.size,
            modified: entry.modified,
            link_target: entry.link_target.clone(),
        }
    }
}

/// A directory's entries, sorted by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryView {
    /// The directory, relative to the site's directory (empty for the site itself).
    pub path: String,
    pub entries: Vec<FileEntryView>,
}

/// What writing or deleting a file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileChangeView {
    pub path: String,
    /// For writes: the bytes written.
    pub size: Option<usize>,
    /// For deletions: false when the path was gone already.
    pub deleted: Option<bool>,
}

/// A file's bytes as a response, downloaded as an attachment named after the file
/// when `attachment` is set.
pub fn file_response(path: &SiteFilePath, contents: Secret<Vec<u8>>, attachment: bool) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        contents.expose().clone(),
    )
        .into_response();
    if attachment {
        let name = path.as_str().rsplit('/').next().unwrap_or("download");
        let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(name));
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// Percent-encodes every byte but ASCII letters, digits and `-._~`, so a hostile
/// file name stays one header parameter.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Read a site's environment file.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/env", tag = "sites", summary = "Read the site's environment file (.env, or wp-config.php for WordPress)",
    description = "Read from the server while the request waits. The contents are secret, so reading them needs the deploy scope, like writing.",
    params(("site_id" = i64, Path, description = "The site's id")),
    responses((status = 200, body = EnvFileView), (status = 404, description = "No such site (or not yours)", body = crate::api::ErrorEnvelope), (status = 409, description = "The server cannot be reached, or the site is being installed or removed", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn env_show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
) -> Result<Json<EnvFileView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let env = site_env::read(&state.operations, &principal, site_id).await?;
    Ok(Json(EnvFileView {
        file: env.file.to_string(),
        exists: env.exists,
        contents: env.contents.expose().clone(),
    }))
}

/// Write a site's environment file.
#[utoipa::path(
    put, path = "/api/v1/sites/{site_id}/env", tag = "sites", summary = "Replace the site's environment file",
    description = "Written on the server while the request waits (mode 0600, replaced atomically). The contents never reach a log, an event or the audit log.",
    params(("site_id" = i64, Path, description = "The site's id")),
    request_body = EnvBody,
    responses((status = 200, body = EnvWrittenView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The server cannot be reached, or the site is being installed or removed", body = crate::api::ErrorEnvelope), (status = 422, description = "Longer than 256 KiB", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn env_write(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    ApiJson(body): ApiJson<EnvBody>,
) -> Result<Json<EnvWrittenView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let contents = Secret::new(body.contents.into_bytes());
    let written = site_env::write(&state.operations, &principal, site_id, contents).await?;
    Ok(Json(EnvWrittenView {
        file: written.file.to_string(),
        changed: written.changed,
    }))
}

/// List a directory or read a file of a site.
#[utoipa::path(
    get, path = "/api/v1/sites/{site_id}/files", tag = "sites", summary = "List a directory of the site (JSON) or download a file (bytes)",
    description = "Listing needs the read scope; a file's bytes (at most 1 MiB) need the deploy scope, since files hold the site's secrets.",
    params(("site_id" = i64, Path, description = "The site's id"), FilePathQuery),
    responses(
        (status = 200, description = "A directory's entries as JSON, or a file's bytes", content((DirectoryView = "application/json"), (Vec<u8> = "application/octet-stream"))),
        (status = 404, description = "No such site (or not yours), or no such file", body = crate::api::ErrorEnvelope),
        (status = 409, description = "The server cannot be reached", body = crate::api::ErrorEnvelope),
        (status = 422, description = "A path that leads out of the site, or a file too large to open", body = crate::api::ErrorEnvelope),
    ),
    security(("token" = ["read"]))
)]
pub async fn files_show(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilePathQuery>,
) -> Result<Response, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    match site_files::browse(&state.operations, &principal, site_id, query.path()).await? {
        Browse::Directory { path, entries } => Ok(Json(DirectoryView {
            path: path.to_string(),
            entries: entries
                .iter()
                .map(|entry| FileEntryView::from_entry(&path, entry))
                .collect(),
        })
        .into_response()),
        Browse::File { path, contents } => Ok(file_response(&path, contents, false)),
    }
}

/// Write a file of a site.
#[utoipa::path(
    put, path = "/api/v1/sites/{site_id}/files", tag = "sites", summary = "Write a file of the site (the body is its bytes, at most 1 MiB)",
    description = "A new file gets mode 0644, an existing one keeps its mode; a symbolic link inside the site is followed.",
    params(("site_id" = i64, Path, description = "The site's id"), FilePathQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FileChangeView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The server cannot be reached", body = crate::api::ErrorEnvelope), (status = 422, description = "A path that leads out of the site, a directory, or more than 1 MiB", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn files_write(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilePathQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FileChangeView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let body = body.map_err(|_| {
        AppError::Validation(FieldErrors::single(
            "contents",
            format!("A file written here can be at most 1 MiB ({MAX_FILE_BYTES} bytes)."),
        ))
    })?;
    let size = body.len();
    let path = site_files::write(
        &state.operations,
        &principal,
        site_id,
        query.path(),
        Secret::new(body.to_vec()),
    )
    .await?;
    Ok(Json(FileChangeView {
        path: path.to_string(),
        size: Some(size),
        deleted: None,
    }))
}

/// Delete a file or directory of a site.
#[utoipa::path(
    delete, path = "/api/v1/sites/{site_id}/files", tag = "sites", summary = "Delete a file, link or directory of the site",
    description = "A symbolic link is removed itself, never what it points to. The site's layout (current, releases, shared, ...) cannot be deleted here.",
    params(("site_id" = i64, Path, description = "The site's id"), FilePathQuery),
    responses((status = 200, body = FileChangeView), (status = 404, body = crate::api::ErrorEnvelope), (status = 409, description = "The server cannot be reached", body = crate::api::ErrorEnvelope), (status = 422, description = "A path that leads out of the site, or part of its layout", body = crate::api::ErrorEnvelope)),
    security(("token" = ["deploy"]))
)]
pub async fn files_delete(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(site_id): Path<String>,
    Query(query): Query<FilePathQuery>,
) -> Result<Json<FileChangeView>, ApiError> {
    let site_id = parse_id(&site_id, "site")?;
    let (path, deleted) = site_files::delete(&state.operations, &principal, site_id, query.path()).await?;
    Ok(Json(FileChangeView {
        path: path.to_string(),
        size: None,
        deleted: Some(deleted),
    }))
}

/// The status a refused file action answers, for pages that show it inline.
pub fn refusal_status(error: &AppError) -> Option<StatusCode> {
    match error {
        AppError::Validation(_) | AppError::Conflict(_) | AppError::NotFound("file") => {
            Some(crate::error::status_of(error))
        }
        _ => None,
    }
}

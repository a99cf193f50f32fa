//! The file explorer: listing, reading, writing and deleting files inside a site's
//! directory (`/home/brokeforge/<domain>`), as brokeforge, at request time over the
//! process's SSH pool.
//!
//! Paths are [`SiteFilePath`]s (relative, no `..` part); the site package resolves
//! each one on the server with `realpath` and refuses anything that leads out of
//! the site's directory, through a symbolic link or otherwise. A refused or invalid
//! path is invalid input on the `path` field; a name from the server is data, never
//! markup or a command.
//!
//! Listing needs the `read` scope; reading, writing and deleting need `deploy`,
//! since a site's files hold its secrets (`shared/.env`). Files are read and written
//! up to [`MAX_FILE_BYTES`]; written bytes are treated as secret like the
//! environment file's, so events show them as `secret contents`. Writes and
//! deletions are audited with the path, never the contents.

use brokeforge_core::Secret;
use brokeforge_db::servers::ServerRecord;
use brokeforge_db::sites::SiteRecord;
use brokeforge_packages::site::files::{
    FileEntry, SiteFileContents, SiteFileDeleteInput, SiteFileError, SiteFilePath, SiteFileWriteInput, list_probe,
    parse_list, parse_read, read_probe,
};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::operations::{self, EventTarget, OperationEnvironment, PackageOperation, PackageOperationPayload};
use crate::site_operations::{self, probe_output, remote_error, run_probe};
use crate::sites::{STATUS_INSTALLING, STATUS_REMOVING, owned_site_and_server, sentence};

/// The largest file the explorer opens, downloads or writes: 1 MiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// What a path names: a directory's entries or a file's bytes.
#[derive(Debug)]
pub enum Browse {
    Directory {
        path: SiteFilePath,
        entries: Vec<FileEntry>,
    },
    File {
        path: SiteFilePath,
        contents: Secret<Vec<u8>>,
    },
}

/// Parses a path typed by a person or sent by a client.
pub fn parse_path(text: &str) -> Result<SiteFilePath, AppError> {
    text.parse::<SiteFilePath>()
        .map_err(|error| AppError::Validation(FieldErrors::single("path", sentence(&error.to_string()))))
}

/// The server's refusal of a file action as the caller sees it.
fn file_error(error: SiteFileError) -> AppError {
    match error {
        SiteFileError::NotFound => AppError::NotFound("file"),
        SiteFileError::Changed | SiteFileError::Failed { .. } => AppError::Conflict(sentence(&error.to_string())),
        SiteFileError::OutsideSite | SiteFileError::WrongKind(_) | SiteFileError::TooLarge(_) => {
            AppError::Validation(FieldErrors::single("path", sentence(&error.to_string())))
        }
    }
}

async fn site_for(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    scope: Scope,
) -> Result<(SiteRecord, ServerRecord), AppError> {
    principal.require(scope)?;
    let (site, server) = owned_site_and_server(&environment.db, principal, site_id).await?;
    match site.status.as_str() {
        STATUS_INSTALLING => Err(AppError::Conflict(
            "This site is still being installed; its files appear once that finished.".to_owned(),
        )),
        STATUS_REMOVING => Err(AppError::Conflict("This site is being removed.".to_owned())),
        _ => Ok((site, server)),
    }
}

/// Lists the directory `path` of one of the caller's sites (`""` for the site's
/// directory), sorted by name.
pub async fn list(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    path: &str,
) -> Result<Vec<FileEntry>, AppError> {
    let (site, server) = site_for(environment, principal, site_id, Scope::Read).await?;
    let path = parse_path(path)?;
    list_in(environment, &site, &server, &path).await
}

async fn list_in(
    environment: &OperationEnvironment,
    site: &SiteRecord,
    server: &ServerRecord,
    path: &SiteFilePath,
) -> Result<Vec<FileEntry>, AppError> {
    let domain = site_operations::domain(site)?;
    let output = run_probe(environment, server.id, &list_probe(&domain, path)).await?;
    parse_list(&probe_output(&output)).map_err(file_error)
}

/// Reads the file `path` of one of the caller's sites: its bytes, at most
/// [`MAX_FILE_BYTES`].
pub async fn read(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    path: &str,
) -> Result<Secret<Vec<u8>>, AppError> {
    let (site, server) = site_for(environment, principal, site_id, Scope::Deploy).await?;
    let path = parse_path(path)?;
    read_in(environment, &site, &server, &path).await
}

async fn read_in(
    environment: &OperationEnvironment,
    site: &SiteRecord,
    server: &ServerRecord,
    path: &SiteFilePath,
) -> Result<Secret<Vec<u8>>, AppError> {
    if path.is_root() {
        return Err(AppError::Validation(FieldErrors::single(
            "path",
            "Choose a file inside the site, not its directory.",
        )));
    }
    let domain = site_operations::domain(site)?;
    let mut output = run_probe(
        environment,
        server.id,
        &read_probe(&domain, path, MAX_FILE_BYTES as u64),
    )
    .await?;
    if output.exit_code != 0 {
        let error = parse_read(&probe_output(&output)).expect_err("a failed read is an error");
        return Err(file_error(error));
    }
    // The raw bytes: the parser's text would replace what is not UTF-8.
    Ok(Secret::new(std::mem::take(&mut output.stdout)))
}

/// Lists `path` when it is a directory, reads it when it is a file. Listing needs
/// the `read` scope, reading a file `deploy`.
pub async fn browse(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    path: &str,
) -> Result<Browse, AppError> {
    let (site, server) = site_for(environment, principal, site_id, Scope::Read).await?;
    let path = parse_path(path)?;
    let domain = site_operations::domain(&site)?;
    let output = run_probe(environment, server.id, &list_probe(&domain, &path)).await?;
    match parse_list(&probe_output(&output)) {
        Ok(entries) => Ok(Browse::Directory { path, entries }),
        Err(SiteFileError::WrongKind(_)) if !path.is_root() => {
            principal.require(Scope::Deploy)?;
            let contents = read_in(environment, &site, &server, &path).await?;
            Ok(Browse::File { path, contents })
        }
        Err(error) => Err(file_error(error)),
    }
}

/// Writes `contents` to the file `path` of one of the caller's sites: a new file
/// gets mode 0644, an existing one keeps its mode; a link inside the site is
/// followed. At most [`MAX_FILE_BYTES`].
pub async fn write(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    path: &str,
    contents: Secret<Vec<u8>>,
) -> Result<SiteFilePath, AppError> {
    let (site, server) = site_for(environment, principal, site_id, Scope::Deploy).await?;
    let path = parse_path(path)?;
    let size = contents.expose().len();
    if size > MAX_FILE_BYTES {
        return Err(AppError::Validation(FieldErrors::single(
            "contents",
            format!("A file written here can be at most 1 MiB ({MAX_FILE_BYTES} bytes); this one has {size} bytes."),
        )));
    }
    if path.is_root() {
        return Err(AppError::Validation(FieldErrors::single(
            "path",
            "Name the file to write inside the site.",
        )));
    }
    let contents = SiteFileContents::new(contents.expose().clone())
        .map_err(|error| AppError::Validation(FieldErrors::single("contents", sentence(&error.to_string()))))?;
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: server.id,
            site_id,
        },
        operation: PackageOperation::SiteFileWrite(SiteFileWriteInput {
            domain: site_operations::domain(&site)?,
            path: path.clone(),
            contents,
        }),
        follow_up: None,
    };
    operations::execute_payload(environment, None, &payload)
        .await
        .map_err(remote_error)?;
    crate::audit::record(
        &environment.db,
        &principal.actor(),
        "site.file_written",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Wrote {path} ({size} bytes) in the site {} on \"{}\"",
            site.domain, server.name
        ),
    )
    .await;
    Ok(path)
}

/// Deletes the file, link or directory `path` of one of the caller's sites. A link
/// is removed itself, never what it points to; the site's own layout entries
/// (`current`, `releases`, `shared`, ...) cannot be deleted. Returns the path and
/// false when it was gone already.
pub async fn delete(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    path: &str,
) -> Result<(SiteFilePath, bool), AppError> {
    let (site, server) = site_for(environment, principal, site_id, Scope::Deploy).await?;
    let path = parse_path(path)?;
    if path.is_root() {
        return Err(AppError::Validation(FieldErrors::single(
            "path",
            "Name the file or directory to delete inside the site.",
        )));
    }
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: server.id,
            site_id,
        },
        operation: PackageOperation::SiteFileDelete(SiteFileDeleteInput {
            domain: site_operations::domain(&site)?,
            path: path.clone(),
        }),
        follow_up: None,
    };
    let outcome = operations::execute_payload(environment, None, &payload)
        .await
        .map_err(remote_error)?;
    if outcome.changed {
        crate::audit::record(
            &environment.db,
            &principal.actor(),
            "site.file_deleted",
            Some(server.id),
            Some(&format!("site:{site_id}")),
            &format!("Deleted {path} from the site {} on \"{}\"", site.domain, server.name),
        )
        .await;
    }
    Ok((path, outcome.changed))
}

//! The environment editor: reading and writing a site's environment file (`.env`,
//! or `wp-config.php` for WordPress) in its `shared/` directory, as brokeforge.
//!
//! Both run at request time over the process's SSH pool, not as jobs: a job payload
//! is stored in the database, and the contents are secrets (database passwords,
//! application keys). They are held as [`Secret`]s in memory only; the write's
//! progress events show the upload as `secret contents`, and the audit log records
//! who read or changed which file, never what it holds. Both need the `deploy`
//! scope, since the file holds the site's credentials.

use brokeforge_core::Secret;
use brokeforge_db::sites::SiteRecord;
use brokeforge_packages::site::SiteType;
use brokeforge_packages::site::env::{EnvContents, EnvFileName, EnvFileWriteInput, env_file_probe, parse_env_file};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};
use crate::operations::{self, EventTarget, OperationEnvironment, PackageOperation, PackageOperationPayload};
use crate::site_operations::{self, probe_output, remote_error, run_probe};
use crate::sites::{STATUS_INSTALLING, STATUS_REMOVING, owned_site_and_server};

/// A site's environment file as read from its server.
#[derive(Debug)]
pub struct EnvFile {
    /// `.env` or `wp-config.php`.
    pub file: EnvFileName,
    /// False when the file does not exist yet (the contents are then empty).
    pub exists: bool,
    pub contents: Secret<String>,
}

/// What writing the environment file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvWritten {
    pub file: EnvFileName,
    /// False when the file already held exactly these contents.
    pub changed: bool,
}

/// The environment file of a site: by its type.
pub fn file_of(site: &SiteRecord) -> Result<EnvFileName, AppError> {
    let site_type = site
        .site_type
        .parse::<SiteType>()
        .map_err(|error| AppError::internal(format!("site {} has an unreadable type: {error}", site.id)))?;
    Ok(EnvFileName::for_site_type(site_type))
}

fn ready(site: &SiteRecord) -> Result<(), AppError> {
    match site.status.as_str() {
        STATUS_INSTALLING => Err(AppError::Conflict(
            "This site is still being installed; edit its environment once that finished.".to_owned(),
        )),
        STATUS_REMOVING => Err(AppError::Conflict("This site is being removed.".to_owned())),
        _ => Ok(()),
    }
}

/// Reads the environment file of one of the caller's sites.
pub async fn read(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
) -> Result<EnvFile, AppError> {
    principal.require(Scope::Deploy)?;
    let (site, server) = owned_site_and_server(&environment.db, principal, site_id).await?;
    ready(&site)?;
    let file = file_of(&site)?;
    let domain = site_operations::domain(&site)?;
    let output = run_probe(environment, server.id, &env_file_probe(&domain, file)).await?;
    let current = parse_env_file(&probe_output(&output)).map_err(|_| {
        AppError::Conflict(format!(
            "The site's {file} cannot be read (exit code {}); check its owner and mode on the server.",
            output.exit_code
        ))
    })?;
    crate::audit::record(
        &environment.db,
        &principal.actor(),
        "site.env_viewed",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!("Opened the {file} of the site {} on \"{}\"", site.domain, server.name),
    )
    .await;
    Ok(match current {
        Some(contents) => EnvFile {
            file,
            exists: true,
            contents,
        },
        None => EnvFile {
            file,
            exists: false,
            contents: Secret::new(String::new()),
        },
    })
}

/// Writes `contents` as the environment file of one of the caller's sites (mode
/// 0600, replaced atomically). At most 256 KiB.
pub async fn write(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
    contents: Secret<Vec<u8>>,
) -> Result<EnvWritten, AppError> {
    principal.require(Scope::Deploy)?;
    let (site, server) = owned_site_and_server(&environment.db, principal, site_id).await?;
    ready(&site)?;
    let file = file_of(&site)?;
    let contents = EnvContents::new(contents.expose().clone()).map_err(|error| {
        AppError::Validation(FieldErrors::single(
            "contents",
            crate::sites::sentence(&error.to_string()),
        ))
    })?;
    let payload = PackageOperationPayload {
        events: EventTarget::Site {
            server_id: server.id,
            site_id,
        },
        operation: PackageOperation::EnvFileWrite(EnvFileWriteInput {
            domain: site_operations::domain(&site)?,
            file,
            contents,
        }),
        follow_up: None,
    };
    let outcome = operations::execute_payload(environment, None, &payload)
        .await
        .map_err(remote_error)?;
    crate::audit::record(
        &environment.db,
        &principal.actor(),
        "site.env_written",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Saved the {file} of the site {} on \"{}\"{}",
            site.domain,
            server.name,
            if outcome.changed { "" } else { " (unchanged)" }
        ),
    )
    .await;
    Ok(EnvWritten {
        file,
        changed: outcome.changed,
    })
}

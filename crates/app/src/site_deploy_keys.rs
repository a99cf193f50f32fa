//! A site's own deploy key: generated on the server at the owner's request (the
//! private half never leaves it), its public half read back and stored for the site's
//! page, and Git switched to it for the site's fetches. Deleting it switches the site
//! back to the server's deploy key. Both run at request time over the shared SSH
//! connection: they take about a second.

use brokeforge_core::RemoteUser;
use brokeforge_db::sites::{self as site_table, SiteRecord};
use brokeforge_packages::site::deploy_key::{SiteDeployKeyInput, public_key_cmd};
use brokeforge_ssh::HostKey;
use serde::Serialize;

use crate::auth::{Principal, Scope};
use crate::error::AppError;
use crate::operations::{self, EventTarget, OperationEnvironment, OperationError, PackageOperation};
use crate::site_operations::{self, remote_error};
use crate::sites::{STATUS_INSTALLING, STATUS_REMOVING, owned_site_and_server};

/// Which key a site's Git fetches log in with, and its public half to add to the
/// repository's deploy keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployKeyView {
    /// `site` for the site's own key, `server` for the server's deploy key.
    pub kind: &'static str,
    /// The public key in OpenSSH format; `None` when the server's key is unknown
    /// (a server added before BrokeForge recorded it).
    pub public_key: Option<String>,
}

/// The key the site's fetches use.
pub fn view(site: &SiteRecord, server_deploy_key: Option<&str>) -> DeployKeyView {
    match &site.deploy_key_public {
        Some(key) => DeployKeyView {
            kind: "site",
            public_key: Some(key.trim().to_owned()),
        },
        None => DeployKeyView {
            kind: "server",
            public_key: server_deploy_key.map(|key| key.trim().to_owned()),
        },
    }
}

fn ready(site: &SiteRecord) -> Result<(), AppError> {
    match site.status.as_str() {
        STATUS_INSTALLING => Err(AppError::Conflict(
            "This site is still being installed; give it its own deploy key once that finished.".to_owned(),
        )),
        STATUS_REMOVING => Err(AppError::Conflict("This site is being removed.".to_owned())),
        _ => Ok(()),
    }
}

fn key_input(site: &SiteRecord) -> Result<SiteDeployKeyInput, AppError> {
    Ok(SiteDeployKeyInput {
        domain: site_operations::domain(site)?,
    })
}

/// Gives one of the caller's sites its own deploy key, generated on the server
/// (an existing one is kept), and returns the site with the key's public half.
pub async fn generate(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
) -> Result<SiteRecord, AppError> {
    principal.require(Scope::Deploy)?;
    let db = &environment.db;
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    ready(&site)?;
    let input = key_input(&site)?;
    let events = EventTarget::Site {
        server_id: server.id,
        site_id,
    };
    operations::execute_payload(
        environment,
        None,
        &operations::PackageOperationPayload {
            events,
            operation: PackageOperation::SiteDeployKeyInstall(input.clone()),
            follow_up: None,
        },
    )
    .await
    .map_err(remote_error)?;
    let target = operations::target(environment, server.id, RemoteUser::BrokeForge)
        .await
        .map_err(remote_error)?;
    let output = environment
        .ssh
        .run_command(
            &target,
            &public_key_cmd(&input.domain),
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|error| remote_error(OperationError::Ssh(error)))?;
    let public_key = output.stdout_text().trim().to_owned();
    let valid =
        output.exit_code == 0 && HostKey::parse(&public_key).is_ok_and(|key| key.algorithm().as_str() == "ssh-ed25519");
    if !valid {
        return Err(AppError::Conflict(format!(
            "The server did not return the new deploy key (exit code {}); try again.",
            output.exit_code
        )));
    }
    site_table::set_deploy_key(db, site_id, Some(&public_key)).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.deploy_key_generated",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Gave the site {} on \"{}\" its own deploy key",
            site.domain, server.name
        ),
    )
    .await;
    site_table::find(db, site_id).await?.ok_or(AppError::NotFound("site"))
}

/// Deletes the site's own deploy key from the server; its fetches use the server's
/// deploy key again.
pub async fn remove(
    environment: &OperationEnvironment,
    principal: &Principal,
    site_id: i64,
) -> Result<SiteRecord, AppError> {
    principal.require(Scope::Deploy)?;
    let db = &environment.db;
    let (site, server) = owned_site_and_server(db, principal, site_id).await?;
    ready(&site)?;
    if site.deploy_key_public.is_none() {
        return Err(AppError::Conflict(
            "This site uses the server's deploy key; it has no key of its own to delete.".to_owned(),
        ));
    }
    operations::execute_payload(
        environment,
        None,
        &operations::PackageOperationPayload {
            events: EventTarget::Site {
                server_id: server.id,
                site_id,
            },
            operation: PackageOperation::SiteDeployKeyRemove(key_input(&site)?),
            follow_up: None,
        },
    )
    .await
    .map_err(remote_error)?;
    site_table::set_deploy_key(db, site_id, None).await?;
    crate::audit::record(
        db,
        &principal.actor(),
        "site.deploy_key_deleted",
        Some(server.id),
        Some(&format!("site:{site_id}")),
        &format!(
            "Deleted the own deploy key of the site {} on \"{}\"; it uses the server's again",
            site.domain, server.name
        ),
    )
    .await;
    site_table::find(db, site_id).await?.ok_or(AppError::NotFound("site"))
}

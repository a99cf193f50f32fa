//! WordPress sites: the `site.wordpress` job that puts WordPress into a new site's
//! first release once its installation succeeded, and the settings it needs.
//!
//! The site's installation (directories, PHP-FPM pool, nginx server block) runs as
//! root; when it succeeds, [`crate::sites::after_job`] enqueues this job, and the site
//! stays `installing` until it ends. The job builds the package's
//! `WordPressInstallInput` in memory: the settings stored with the site, its database
//! password opened from its sealed column, and eight fresh keys and salts from the
//! system's random generator. Neither secret is ever in a job payload, an event or a
//! log: the payload names the site and the release only, and the rendered
//! `wp-config.php` travels as secret bytes. A site that already has WordPress live
//! (installed again, or deployed from Git) keeps it: the plan changes nothing then, and
//! the salts drawn for it are thrown away.

use brokeforge_core::Secret;
use brokeforge_db::site_wordpress;
use brokeforge_db::sites::{self as site_table, SiteRecord};
use brokeforge_packages::facts::FactProbe;
use brokeforge_packages::site::install::{link_target_cmd, parse_link_target};
use brokeforge_packages::site::wordpress::{WordPress, WordPressInstall, WordPressInstallInput};
use brokeforge_packages::site::wp_config::{
    DatabasePassword, SALT_ALPHABET, SALT_LENGTH, SALT_NAMES, WordPressDatabase, WordPressSalts,
};
use brokeforge_packages::site::{ReleaseId, deploy::current_release};
use brokeforge_queue::{JobContext, JobError, JobId, NewJob, Queue, Registry};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::AppError;
use crate::operations::{EventTarget, OperationEnvironment, OperationError};
use crate::sites::{STATUS_ACTIVE, STATUS_FAILED, STATUS_INSTALLING};

/// The job kind that installs WordPress into a site.
pub const WORDPRESS_KIND: &str = "site.wordpress";

/// The payload of a `site.wordpress` job: the site and the release WordPress goes
/// into. It holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordPressPayload {
    pub server_id: i64,
    pub site_id: i64,
    pub release: ReleaseId,
}

/// Eight keys and salts for `wp-config.php`: [`SALT_LENGTH`] characters each, drawn
/// uniformly from [`SALT_ALPHABET`] with the system's random generator (bytes that
/// would bias the draw are rejected).
pub fn generate_salts() -> WordPressSalts {
    let alphabet = SALT_ALPHABET.len();
    let limit = 256 - 256 % alphabet;
    let mut values = Vec::with_capacity(SALT_NAMES.len());
    let mut buffer = Zeroizing::new([0u8; 256]);
    for _ in SALT_NAMES {
        let mut value = String::with_capacity(SALT_LENGTH);
        while value.len() < SALT_LENGTH {
            getrandom::fill(buffer.as_mut_slice()).expect("the system random generator works");
            for byte in buffer
                .iter()
                .map(|byte| usize::from(*byte))
                .filter(|byte| *byte < limit)
            {
                if value.len() == SALT_LENGTH {
                    break;
                }
                value.push(char::from(SALT_ALPHABET[byte % alphabet]));
            }
        }
        values.push(value);
    }
    WordPressSalts::new(Secret::new(values)).expect("generated from the salt alphabet")
}

/// Enqueues the job that installs WordPress into `site` and hands the site over to it
/// (still `installing`).
pub async fn start(queue: &Queue, site: &SiteRecord) -> Result<JobId, AppError> {
    let db = queue.db();
    let release = crate::deployments::next_release_id(db, site.id).await?;
    let subject = format!("server:{}", site.server_id);
    let job = NewJob::with_payload(
        WORDPRESS_KIND,
        &WordPressPayload {
            server_id: site.server_id,
            site_id: site.id,
            release,
        },
    )
    .map_err(AppError::internal)?
    .subject(subject.clone())
    .exclusive(subject)
    .max_attempts(3)
    .timeout(std::time::Duration::from_secs(60 * 60));
    site_table::start_job(db, site.id, STATUS_INSTALLING).await?;
    let job_id = queue.enqueue(job).await?;
    site_table::set_job(db, site.id, job_id.0).await?;
    Ok(job_id)
}

fn refused(message: String) -> OperationError {
    OperationError::Refused(message)
}

/// The package's input for `site`: its stored settings, its password opened in
/// memory and fresh salts.
pub async fn install_input(
    environment: &OperationEnvironment,
    site: &SiteRecord,
    release: &ReleaseId,
) -> Result<WordPressInstallInput, OperationError> {
    let db = &environment.db;
    let unreadable = |what: &str, error: &dyn std::fmt::Display| {
        refused(format!("site {} has an unreadable {what}: {error}", site.id))
    };
    let settings = site_wordpress::find(db, site.id)
        .await?
        .ok_or_else(|| refused(format!("site {} has no WordPress settings", site.id)))?;
    let sealed = site_wordpress::password_sealed(db, site.id)
        .await?
        .ok_or_else(|| refused(format!("site {} has no WordPress settings", site.id)))?;
    let mut opened = environment
        .sealer
        .open_string(&sealed, &site_wordpress::password_aad(site.id))
        .map_err(|error| unreadable("database password", &error))?;
    let password = DatabasePassword::new(Secret::new(std::mem::take(&mut *opened)))
        .map_err(|error| unreadable("database password", &error))?;
    let database = WordPressDatabase {
        name: settings
            .database_name
            .parse()
            .map_err(|error| unreadable("database name", &error))?,
        user: settings
            .database_user
            .parse()
            .map_err(|error| unreadable("database user", &error))?,
        host: settings
            .database_host
            .parse()
            .map_err(|error| unreadable("database host", &error))?,
        table_prefix: settings
            .table_prefix
            .parse()
            .map_err(|error| unreadable("table prefix", &error))?,
    };
    Ok(WordPressInstallInput {
        domain: crate::site_operations::domain(site).map_err(|error| refused(error.to_string()))?,
        release: release.clone(),
        download_url: settings
            .download_url
            .parse()
            .map_err(|error| unreadable("download URL", &error))?,
        database,
        password,
        salts: generate_salts(),
    })
}

/// The release `current` names on the server, read as brokeforge.
async fn live_release(environment: &OperationEnvironment, site: &SiteRecord) -> Option<ReleaseId> {
    let layout = crate::site_operations::layout(site).ok()?;
    let probe = FactProbe::new::<WordPress>("wordpress_current", link_target_cmd(&layout.current()));
    let output = crate::site_operations::run_probe(environment, site.server_id, &probe)
        .await
        .ok()?;
    let target = parse_link_target(&crate::site_operations::probe_output(&output)).ok()??;
    current_release(&target)
}

/// Carries out one `site.wordpress` job: installs WordPress with the site's events and
/// records the live release. A site deleted in the meantime is not an error.
pub async fn run(
    environment: &OperationEnvironment,
    job_id: i64,
    payload: &WordPressPayload,
) -> Result<(), OperationError> {
    let db = &environment.db;
    let Some(site) = site_table::find(db, payload.site_id).await? else {
        return Ok(());
    };
    let input = install_input(environment, &site, &payload.release).await?;
    let events = EventTarget::Site {
        server_id: payload.server_id,
        site_id: payload.site_id,
    };
    crate::operations::execute::<WordPressInstall>(environment, events, Some(job_id), &input).await?;
    if let Some(release) = live_release(environment, &site).await
        && site.current_release.as_deref() != Some(release.as_str())
    {
        site_table::set_live_release(db, site.id, release.as_str(), None, brokeforge_db::clock::now()).await?;
    }
    Ok(())
}

/// Moves the site on when its `site.wordpress` job ended: `active`, or `failed` with
/// the message once the queue gives up. A job the site was since handed away from
/// changes nothing.
async fn finish(
    environment: &OperationEnvironment,
    job_id: i64,
    site_id: i64,
    result: &Result<(), OperationError>,
    final_failure: bool,
) -> Result<(), brokeforge_db::DbError> {
    let db = &environment.db;
    let Some(site) = site_table::find(db, site_id).await? else {
        return Ok(());
    };
    if site.job_id != Some(job_id) {
        return Ok(());
    }
    match result {
        Ok(()) => {
            site_table::set_status(db, site_id, STATUS_ACTIVE, None).await?;
        }
        Err(error) if final_failure => {
            site_table::set_status(db, site_id, STATUS_FAILED, Some(&error.to_string())).await?;
        }
        Err(_) => {}
    }
    Ok(())
}

/// Registers the `site.wordpress` handler.
pub fn register(registry: &mut Registry, environment: &OperationEnvironment) {
    let environment = environment.clone();
    registry.register(WORDPRESS_KIND, move |context: JobContext, payload: WordPressPayload| {
        let environment = environment.clone();
        async move {
            let result = run(&environment, context.id.0, &payload).await;
            let final_failure = match &result {
                Ok(()) => false,
                Err(OperationError::Refused(_)) => true,
                Err(error) => !error.is_transient() || context.is_last_attempt(),
            };
            finish(&environment, context.id.0, payload.site_id, &result, final_failure)
                .await
                .map_err(|error| JobError::retryable(error.to_string()))?;
            result.map_err(|error| match error {
                OperationError::Refused(_) => JobError::permanent(error.to_string()),
                other => other.into_job_error(),
            })
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_are_random_and_from_the_alphabet() {
        let first = generate_salts();
        let second = generate_salts();
        assert_eq!(first.secret().expose().len(), 8);
        for value in first.secret().expose() {
            assert_eq!(value.len(), SALT_LENGTH);
            assert!(value.bytes().all(|byte| SALT_ALPHABET.contains(&byte)));
            assert!(!value.contains(['\'', '\\']));
        }
        assert_ne!(first.secret().expose(), second.secret().expose());
        let distinct: std::collections::HashSet<&String> = first.secret().expose().iter().collect();
        assert_eq!(distinct.len(), 8);
    }
}

//! What happens after a package operation's job finishes: the next step of a
//! server's provisioning is enqueued, a firewall rule's status follows its job, a
//! PHP version's extension list follows its extension jobs, a site's default flag
//! follows its default-site job. The follow-up travels
//! in the job's payload, so the handler itself stays thin.

use serde::{Deserialize, Serialize};

use crate::operations::{OperationEnvironment, OperationError, OperationOutcome};

/// A follow-up named in a `package.operation` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    /// Step `index` of the server's provisioning sequence.
    Provisioning { index: usize },
    /// The job installs or removes firewall rule `rule_id`.
    FirewallRule { rule_id: i64 },
    /// The job installs (or removes) `extension` of PHP `version`.
    PhpExtension {
        version: brokeforge_core::PhpVersion,
        extension: brokeforge_packages::php::extension::PhpExtension,
        installed: bool,
    },
    /// The job removed BrokeForge's access; the server's records go next.
    DeleteServer,
    /// The job installs (or, `removing`, removes) site `site_id`.
    Site { site_id: i64, removing: bool },
    /// The job makes site `site_id` the default site (`default`), or makes no site
    /// the default in its place.
    DefaultSite { site_id: i64, default: bool },
}

/// How the job ended.
#[derive(Debug)]
pub enum Finished<'a> {
    Succeeded(&'a OperationOutcome),
    /// Failed, but the queue will try again.
    WillRetry(&'a OperationError),
    /// Failed for good (or at its last attempt).
    Failed(&'a OperationError),
}

/// Runs the follow-up of job `job_id` on server `server_id`.
pub async fn run(
    environment: &OperationEnvironment,
    server_id: i64,
    job_id: i64,
    follow_up: &FollowUp,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    match follow_up {
        FollowUp::Provisioning { index } => {
            crate::provisioning::after_step(environment, server_id, job_id, *index, finished).await
        }
        FollowUp::DeleteServer => crate::onboarding::after_access_removed(environment, server_id, finished).await,
        FollowUp::FirewallRule { rule_id } => {
            crate::firewall_rules::after_job(environment, job_id, *rule_id, finished).await
        }
        FollowUp::PhpExtension {
            version,
            extension,
            installed,
        } => {
            crate::php_versions::after_extension_job(environment, server_id, *version, *extension, *installed, finished)
                .await
        }
        FollowUp::Site { site_id, removing } => {
            crate::sites::after_job(environment, job_id, *site_id, *removing, finished).await
        }
        FollowUp::DefaultSite { site_id, default } => {
            crate::sites::after_default_job(environment, server_id, *site_id, *default, finished).await
        }
    }
}

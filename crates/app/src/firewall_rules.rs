//! Firewall rules a user adds after provisioning: one job per rule, each rule listed
//! with the status of its job.

use crate::follow_up::Finished;
use crate::operations::OperationEnvironment;

/// Updates rule `rule_id` after its job `job_id` finished.
pub async fn after_job(
    environment: &OperationEnvironment,
    job_id: i64,
    rule_id: i64,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let _ = (environment, job_id, rule_id, finished);
    Ok(())
}

//! Provisioning: the sequence of package jobs that turns a bootstrapped server into
//! a web server, one job per package, resumable from the package that failed.

use crate::follow_up::Finished;
use crate::operations::OperationEnvironment;

/// Moves provisioning of `server_id` on after step `index` (job `job_id`) finished.
pub async fn after_step(
    environment: &OperationEnvironment,
    server_id: i64,
    job_id: i64,
    index: usize,
    finished: Finished<'_>,
) -> Result<(), brokeforge_db::DbError> {
    let _ = (environment, server_id, job_id, index, finished);
    Ok(())
}

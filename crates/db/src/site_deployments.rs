//! The `site_deployments` table: one row per deployment or rollback of a site, each
//! carried out by one job. A row starts `queued`, becomes `running` when its job
//! starts, and ends `succeeded` or `failed` with the error. The commit is known at
//! creation (a webhook's push) or resolved by the job (the branch head), and the
//! commit's author and message are filled in when the job learns them.
//!
//! Rows are read by site id; the application checks that the caller owns the site
//! first. A webhook delivery id is unique per site, so a replayed delivery cannot
//! create a second row.

use chrono::{DateTime, Utc};

use crate::error::{DbError, is_unique_violation};
use crate::pool::Db;

/// Waiting for its job.
pub const QUEUED: &str = "queued";
/// Its job is running.
pub const RUNNING: &str = "running";
/// The release went live.
pub const SUCCEEDED: &str = "succeeded";
/// It stopped; the live release was left as it was.
pub const FAILED: &str = "failed";

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeploymentRecord {
    pub id: i64,
    pub site_id: i64,
    pub server_id: i64,
    pub job_id: Option<i64>,
    /// `manual`, `webhook` or `rollback`.
    pub trigger_kind: String,
    /// Who asked: a user's email, or the webhook provider.
    pub actor: String,
    /// For webhooks: `github`, `gitlab` or `generic`.
    pub provider: Option<String>,
    pub delivery_id: Option<String>,
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// The release directory's name under `releases/`.
    pub release_id: String,
    pub status: String,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The end of the deployment's output, written while it runs.
    pub output: String,
}

/// The values of a new deployment; validation happens before this point.
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    pub site_id: i64,
    pub server_id: i64,
    pub trigger_kind: &'a str,
    pub actor: &'a str,
    pub provider: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub commit_sha: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub author: Option<&'a str>,
    pub message: Option<&'a str>,
    pub release_id: &'a str,
}

macro_rules! deployment_columns {
    () => {
        "id, site_id, server_id, job_id, trigger_kind, actor, provider, delivery_id, commit_sha, branch, author, \
         message, release_id, status, error, started_at, finished_at, created_at, output"
    };
}

/// Inserts a `queued` deployment without a job yet. A delivery id the site already
/// saw is a conflict.
pub async fn insert(db: &Db, deployment: &NewDeployment<'_>) -> Result<DeploymentRecord, DbError> {
    let sql = concat!(
        "INSERT INTO site_deployments (site_id, server_id, trigger_kind, actor, provider, delivery_id, commit_sha, ",
        "branch, author, message, release_id, status, created_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12) RETURNING ",
        deployment_columns!()
    );
    let now = crate::clock::now();
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(deployment.site_id)
            .bind(deployment.server_id)
            .bind(deployment.trigger_kind)
            .bind(deployment.actor)
            .bind(deployment.provider)
            .bind(deployment.delivery_id)
            .bind(deployment.commit_sha)
            .bind(deployment.branch)
            .bind(deployment.author)
            .bind(deployment.message)
            .bind(deployment.release_id)
            .bind(now)
            .fetch_one(pool)
            .await
    });
    result.map_err(|error| {
        if is_unique_violation(&error) {
            DbError::Conflict("this webhook delivery was already received".to_owned())
        } else {
            DbError::Query(error)
        }
    })
}

/// A site's deployments, newest first, at most `limit` before the id `before`.
pub async fn list_for_site(
    db: &Db,
    site_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeploymentRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM site_deployments WHERE site_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(site_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// One deployment of a site.
pub async fn find(db: &Db, site_id: i64, id: i64) -> Result<Option<DeploymentRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM site_deployments WHERE site_id = $1 AND id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(site_id)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// One deployment by id, whatever its site (for job handlers).
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<DeploymentRecord>, DbError> {
    let sql = concat!("SELECT ", deployment_columns!(), " FROM site_deployments WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// The deployments of a site that are queued or running, oldest first.
pub async fn pending_for_site(db: &Db, site_id: i64) -> Result<Vec<DeploymentRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM site_deployments WHERE site_id = $1 AND status IN ('queued', 'running') ORDER BY id"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(site_id)
            .fetch_all(pool)
            .await?
    }))
}

/// The latest successful deployment of each release of a site, newest first: what
/// each release on the server was made from.
pub async fn succeeded_for_site(db: &Db, site_id: i64, limit: i64) -> Result<Vec<DeploymentRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM site_deployments WHERE site_id = $1 AND status = 'succeeded' AND trigger_kind <> 'rollback' ",
        "ORDER BY id DESC LIMIT $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, DeploymentRecord>(sql)
            .bind(site_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// Names the deployment's job.
pub async fn set_job(db: &Db, id: i64, job_id: i64) -> Result<bool, DbError> {
    let sql = "UPDATE site_deployments SET job_id = $2 WHERE id = $1";
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(job_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Marks the deployment `running` (again, for a retried job), clearing a previous
/// error, end time and output.
pub async fn mark_running(db: &Db, id: i64) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE site_deployments SET status = 'running', error = NULL, finished_at = NULL, output = '', ",
        "started_at = $2 WHERE id = $1"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql).bind(id).bind(now).execute(pool).await?.rows_affected()
    });
    Ok(changed == 1)
}

/// Replaces the recorded end of a running deployment's output.
pub async fn set_output(db: &Db, id: i64, output: &str) -> Result<bool, DbError> {
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE site_deployments SET output = $2 WHERE id = $1")
            .bind(id)
            .bind(output)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Records the commit a deployment builds, with its author and message when known.
pub async fn set_commit(
    db: &Db,
    id: i64,
    commit_sha: &str,
    author: Option<&str>,
    message: Option<&str>,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE site_deployments SET commit_sha = $2, author = COALESCE($3, author), ",
        "message = COALESCE($4, message) WHERE id = $1"
    );
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(commit_sha)
            .bind(author)
            .bind(message)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Ends a deployment: `succeeded`, or `failed` with the error.
pub async fn finish(db: &Db, id: i64, status: &str, error: Option<&str>) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE site_deployments SET status = $2, error = $3, finished_at = $4, ",
        "started_at = COALESCE(started_at, $4) WHERE id = $1"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// The newest release id any deployment of the site used, rollbacks included.
pub async fn latest_release_id(db: &Db, site_id: i64) -> Result<Option<String>, DbError> {
    let sql = "SELECT MAX(release_id) FROM site_deployments WHERE site_id = $1";
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .bind(site_id)
            .fetch_one(pool)
            .await?
    }))
}

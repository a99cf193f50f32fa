//! The `site_command_runs` table: the history of commands run in a site's current
//! release, each carried out by one job, with its exit code and the tail of its
//! output. While the job runs, the output tail is updated every so often, so a page
//! can show it growing. Rows are read by site id; the application checks that the
//! caller owns the site first.

use chrono::{DateTime, Utc};

use crate::error::DbError;
use crate::pool::Db;

/// A command run as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommandRunRecord {
    pub id: i64,
    pub site_id: i64,
    pub server_id: i64,
    pub job_id: Option<i64>,
    /// Who ran it (a user's email).
    pub actor: String,
    pub command: String,
    pub timeout_seconds: i32,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub exit_code: Option<i32>,
    /// The last part of stdout and stderr, interleaved as they came.
    pub output_tail: String,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

macro_rules! run_columns {
    () => {
        "id, site_id, server_id, job_id, actor, command, timeout_seconds, status, exit_code, output_tail, error, \
         started_at, finished_at, created_at"
    };
}

/// Inserts a `queued` run without a job yet.
pub async fn insert(
    db: &Db,
    site_id: i64,
    server_id: i64,
    actor: &str,
    command: &str,
    timeout_seconds: i32,
) -> Result<CommandRunRecord, DbError> {
    let sql = concat!(
        "INSERT INTO site_command_runs (site_id, server_id, actor, command, timeout_seconds, status, created_at) ",
        "VALUES ($1, $2, $3, $4, $5, 'queued', $6) RETURNING ",
        run_columns!()
    );
    let now = crate::clock::now();
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, CommandRunRecord>(sql)
            .bind(site_id)
            .bind(server_id)
            .bind(actor)
            .bind(command)
            .bind(timeout_seconds)
            .bind(now)
            .fetch_one(pool)
            .await?
    }))
}

/// A site's runs, newest first, at most `limit` before the id `before`.
pub async fn list_for_site(
    db: &Db,
    site_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CommandRunRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        run_columns!(),
        " FROM site_command_runs WHERE site_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, CommandRunRecord>(sql)
            .bind(site_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// One run of a site.
pub async fn find(db: &Db, site_id: i64, id: i64) -> Result<Option<CommandRunRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        run_columns!(),
        " FROM site_command_runs WHERE site_id = $1 AND id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, CommandRunRecord>(sql)
            .bind(site_id)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// One run by id, whatever its site (for job handlers).
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<CommandRunRecord>, DbError> {
    let sql = concat!("SELECT ", run_columns!(), " FROM site_command_runs WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, CommandRunRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Names the run's job.
pub async fn set_job(db: &Db, id: i64, job_id: i64) -> Result<bool, DbError> {
    let sql = "UPDATE site_command_runs SET job_id = $2 WHERE id = $1";
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

/// Marks the run `running` (again, for a retried job) with an empty output.
pub async fn mark_running(db: &Db, id: i64) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE site_command_runs SET status = 'running', exit_code = NULL, output_tail = '', error = NULL, ",
        "finished_at = NULL, started_at = $2 WHERE id = $1"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql).bind(id).bind(now).execute(pool).await?.rows_affected()
    });
    Ok(changed == 1)
}

/// Replaces the output tail of a running command.
pub async fn set_output(db: &Db, id: i64, output_tail: &str) -> Result<bool, DbError> {
    let sql = "UPDATE site_command_runs SET output_tail = $2 WHERE id = $1";
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(output_tail)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Ends a run with its status, exit code, output tail and error.
pub async fn finish(
    db: &Db,
    id: i64,
    status: &str,
    exit_code: Option<i32>,
    output_tail: &str,
    error: Option<&str>,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE site_command_runs SET status = $2, exit_code = $3, output_tail = $4, error = $5, finished_at = $6, ",
        "started_at = COALESCE(started_at, $6) WHERE id = $1"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(status)
            .bind(exit_code)
            .bind(output_tail)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

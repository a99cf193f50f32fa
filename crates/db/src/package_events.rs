//! The `server_package_events` table: one row per milestone a package operation
//! reaches, with its step count, status and (masked) failure details. Live progress
//! pages replay these rows by id.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::error::DbError;
use crate::pool::Db;

/// An event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PackageEventRecord {
    pub id: i64,
    pub server_id: i64,
    pub job_id: Option<i64>,
    pub service_type: String,
    pub provision_type: String,
    pub milestone: String,
    pub current_step: i32,
    pub total_steps: i32,
    pub details: Json<serde_json::Value>,
    pub status: String,
    pub error_log: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A new event. `details` and `error_log` must already be free of secrets.
#[derive(Debug, Clone)]
pub struct NewPackageEvent<'a> {
    pub server_id: i64,
    pub job_id: Option<i64>,
    pub service_type: &'a str,
    pub provision_type: &'a str,
    pub milestone: &'a str,
    pub current_step: i32,
    pub total_steps: i32,
    pub details: serde_json::Value,
    pub status: &'a str,
    pub error_log: Option<&'a str>,
}

macro_rules! event_columns {
    () => {
        "id, server_id, job_id, service_type, provision_type, milestone, current_step, total_steps, details, \
         status, error_log, created_at"
    };
}

/// Stores an event and returns its id.
pub async fn insert(db: &Db, event: &NewPackageEvent<'_>) -> Result<i64, DbError> {
    let now = crate::clock::now();
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO server_package_events (server_id, job_id, service_type, provision_type, milestone, \
             current_step, total_steps, details, status, error_log, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(event.server_id)
        .bind(event.job_id)
        .bind(event.service_type)
        .bind(event.provision_type)
        .bind(event.milestone)
        .bind(event.current_step)
        .bind(event.total_steps)
        .bind(Json(&event.details))
        .bind(event.status)
        .bind(event.error_log)
        .bind(now)
        .fetch_one(pool)
        .await?
    }))
}

/// A job's events with an id above `after_id`, oldest first.
///
/// A job's events live in `server_package_events` (server operations) or in
/// `server_site_package_events` (site operations); one job writes to one table only,
/// so ids stay increasing within a job and `after_id` works for both.
pub async fn list_for_job(db: &Db, job_id: i64, after_id: i64) -> Result<Vec<PackageEventRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        event_columns!(),
        " FROM server_package_events WHERE job_id = $1 AND id > $2 UNION ALL SELECT ",
        event_columns!(),
        " FROM server_site_package_events WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT 500"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, PackageEventRecord>(sql)
            .bind(job_id)
            .bind(after_id)
            .fetch_all(pool)
            .await?
    }))
}

/// The newest `limit` events of one service on a server (such as its bootstrap
/// reports, which belong to no job), oldest first.
pub async fn list_for_server_service(
    db: &Db,
    server_id: i64,
    service_type: &str,
    limit: i64,
) -> Result<Vec<PackageEventRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        event_columns!(),
        " FROM server_package_events WHERE server_id = $1 AND service_type = $2 ORDER BY id DESC LIMIT $3"
    );
    let mut records = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, PackageEventRecord>(sql)
            .bind(server_id)
            .bind(service_type)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    records.reverse();
    Ok(records)
}

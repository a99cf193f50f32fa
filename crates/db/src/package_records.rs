//! Persisted package state: `server_packages` (server scope) and
//! `server_site_packages` (site scope), upserted when a plan reaches a `Persist`
//! step and deleted after a successful removal. Also the site-scoped progress events.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::error::DbError;
use crate::pool::Db;

/// A package record on a server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerPackageRecord {
    pub id: i64,
    pub server_id: i64,
    pub package_type: String,
    pub package_name: String,
    pub package_version: Option<String>,
    /// Tells apart records of a package installed in several versions side by side.
    pub instance: String,
    pub configuration: Json<serde_json::Value>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Inserts or updates the record of `package_type`/`package_name` (and `instance`,
/// empty unless the package is installed in several versions side by side).
#[allow(clippy::too_many_arguments)]
pub async fn upsert_server_package(
    db: &Db,
    server_id: i64,
    package_type: &str,
    package_name: &str,
    instance: &str,
    version: &str,
    configuration: &serde_json::Value,
    status: &str,
) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO server_packages (server_id, package_type, package_name, instance, package_version, \
             configuration, status, created_at, updated_at) VALUES ($1, $2, $3, $8, $4, $5, $6, $7, $7) \
             ON CONFLICT (server_id, package_type, package_name, instance) DO UPDATE SET \
             package_version = excluded.package_version, configuration = excluded.configuration, \
             status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(server_id)
        .bind(package_type)
        .bind(package_name)
        .bind(version)
        .bind(Json(configuration))
        .bind(status)
        .bind(now)
        .bind(instance)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Deletes the record of a package (or of one `instance` of it) removed from a server.
pub async fn delete_server_package(
    db: &Db,
    server_id: i64,
    package_type: &str,
    package_name: &str,
    instance: &str,
) -> Result<bool, DbError> {
    let deleted = crate::with_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM server_packages WHERE server_id = $1 AND package_type = $2 AND package_name = $3 \
             AND instance = $4",
        )
        .bind(server_id)
        .bind(package_type)
        .bind(package_name)
        .bind(instance)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(deleted > 0)
}

/// Every package record of a server.
pub async fn server_packages(db: &Db, server_id: i64) -> Result<Vec<ServerPackageRecord>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerPackageRecord>(
            "SELECT id, server_id, package_type, package_name, package_version, instance, configuration, status, \
             created_at, updated_at FROM server_packages WHERE server_id = $1 \
             ORDER BY package_type, package_name, instance",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?
    }))
}

/// Inserts or updates a site's package record.
pub async fn upsert_site_package(
    db: &Db,
    server_id: i64,
    site_id: i64,
    service_type: &str,
    service_name: &str,
    configuration: &serde_json::Value,
    status: &str,
) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO server_site_packages (server_id, site_id, service_name, service_type, configuration, status, \
             installed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) \
             ON CONFLICT (site_id, service_type, service_name) DO UPDATE SET \
             configuration = excluded.configuration, status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(server_id)
        .bind(site_id)
        .bind(service_name)
        .bind(service_type)
        .bind(Json(configuration))
        .bind(status)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// A new site-scoped progress event. `details` and `error_log` must be free of secrets.
#[derive(Debug, Clone)]
pub struct NewSitePackageEvent<'a> {
    pub server_id: i64,
    pub site_id: i64,
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

/// Stores a site-scoped progress event.
pub async fn insert_site_event(db: &Db, event: &NewSitePackageEvent<'_>) -> Result<i64, DbError> {
    let now = crate::clock::now();
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO server_site_package_events (server_id, site_id, job_id, service_type, provision_type, \
             milestone, current_step, total_steps, details, status, error_log, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(event.server_id)
        .bind(event.site_id)
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

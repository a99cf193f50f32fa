//! PHP on a server, beyond the package records themselves: the sites that use one
//! PHP version (a version cannot be removed while a site runs on it), and changes to
//! a version's recorded configuration, such as its list of extensions.

use sqlx::types::Json;

use crate::error::DbError;
use crate::pool::Db;

/// A site that runs on some PHP version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SiteUsingPhp {
    pub id: i64,
    pub domain: String,
}

/// The sites of a server whose PHP version is `version` (such as `8.3`), by domain.
pub async fn sites_using(db: &Db, server_id: i64, version: &str) -> Result<Vec<SiteUsingPhp>, DbError> {
    let sql = "SELECT id, domain FROM server_sites WHERE server_id = $1 AND php_version = $2 ORDER BY domain";
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SiteUsingPhp>(sql)
            .bind(server_id)
            .bind(version)
            .fetch_all(pool)
            .await?
    }))
}

/// Replaces the configuration of one package record of a server (`instance` tells
/// apart the records of a package installed in several versions). False when there
/// is no such record.
pub async fn set_configuration(
    db: &Db,
    server_id: i64,
    package_type: &str,
    package_name: &str,
    instance: &str,
    configuration: &serde_json::Value,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE server_packages SET configuration = $5, updated_at = $6 ",
        "WHERE server_id = $1 AND package_type = $2 AND package_name = $3 AND instance = $4"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(server_id)
            .bind(package_type)
            .bind(package_name)
            .bind(instance)
            .bind(Json(configuration))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

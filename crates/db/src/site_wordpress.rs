//! The `site_wordpress` table: the settings of a WordPress site, one row per site,
//! deleted with it. The database password is stored sealed (`database_password_sealed`,
//! associated data [`password_aad`]); records never carry it.

use chrono::{DateTime, Utc};

use crate::error::DbError;
use crate::pool::Db;

/// A WordPress site's settings as stored, without its password.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WordPressRecord {
    pub site_id: i64,
    pub database_name: String,
    pub database_user: String,
    pub database_host: String,
    pub table_prefix: String,
    /// Where WordPress is downloaded from (its SHA-1 from the same URL with `.sha1`).
    pub download_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The values of a new row; validation happens before this point.
#[derive(Debug, Clone)]
pub struct NewWordPress<'a> {
    pub site_id: i64,
    pub database_name: &'a str,
    pub database_user: &'a str,
    pub database_host: &'a str,
    pub table_prefix: &'a str,
    pub database_password_sealed: &'a [u8],
    pub download_url: &'a str,
}

/// The associated data a site's sealed database password is bound to.
pub fn password_aad(site_id: i64) -> String {
    format!("site_wordpress:{site_id}:database_password")
}

/// Stores the settings of a WordPress site.
pub async fn insert(db: &Db, row: &NewWordPress<'_>) -> Result<(), DbError> {
    let sql = concat!(
        "INSERT INTO site_wordpress (site_id, database_name, database_user, database_host, table_prefix, ",
        "database_password_sealed, download_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    );
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(row.site_id)
            .bind(row.database_name)
            .bind(row.database_user)
            .bind(row.database_host)
            .bind(row.table_prefix)
            .bind(row.database_password_sealed)
            .bind(row.download_url)
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The settings of a site, if it is a WordPress site.
pub async fn find(db: &Db, site_id: i64) -> Result<Option<WordPressRecord>, DbError> {
    let sql = concat!(
        "SELECT site_id, database_name, database_user, database_host, table_prefix, download_url, created_at, ",
        "updated_at FROM site_wordpress WHERE site_id = $1"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, WordPressRecord>(sql)
            .bind(site_id)
            .fetch_optional(pool)
            .await?
    }))
}

/// The sealed database password of a site.
pub async fn password_sealed(db: &Db, site_id: i64) -> Result<Option<Vec<u8>>, DbError> {
    let sql = "SELECT database_password_sealed FROM site_wordpress WHERE site_id = $1";
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(site_id)
            .fetch_optional(pool)
            .await?
    }))
}

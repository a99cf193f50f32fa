//! The `server_sites` table: the sites of a server, their Git settings, deploy script,
//! how many releases they keep and which one is live. Sites are read by server id or
//! by site id; the application checks that the caller owns the server first (see
//! [`find_owned`], which joins the owner in the same query).
//!
//! The webhook secret is stored sealed (`webhook_secret_sealed`, associated data
//! [`webhook_secret_aad`]); records never carry it, only whether one is set. A
//! WordPress site's settings live in [`crate::site_wordpress`].

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::error::{DbError, is_unique_violation};
use crate::pool::Db;

/// A site as stored. `aliases` lists extra domains; `web_directory` is relative to
/// the release (empty for its root).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SiteRecord {
    pub id: i64,
    pub server_id: i64,
    pub domain: String,
    pub site_type: String,
    pub document_root: String,
    pub php_version: Option<String>,
    /// `installing`, `active`, `removing` or `failed`.
    pub status: String,
    pub is_default: bool,
    pub aliases: Json<Vec<String>>,
    pub www: bool,
    pub web_directory: String,
    pub git_repository: Option<String>,
    pub git_branch: Option<String>,
    pub deploy_script: String,
    pub keep_releases: i32,
    pub current_release: Option<String>,
    /// Whether a webhook secret is set (the webhook is on).
    pub webhook_enabled: bool,
    pub last_deployed_commit: Option<String>,
    pub last_deployed_at: Option<DateTime<Utc>>,
    /// Why the last install or removal failed.
    pub error_log: Option<String>,
    /// The job that installs or removes the site.
    pub job_id: Option<i64>,
    /// The public half of the site's own deploy key; `None` while it uses the server's.
    pub deploy_key_public: Option<String>,
    /// Extra `known_hosts` lines for the site's own Git server, one per line.
    pub git_host_keys: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The values of a new site; validation happens before this point.
#[derive(Debug, Clone)]
pub struct NewSite<'a> {
    pub server_id: i64,
    pub domain: &'a str,
    pub site_type: &'a str,
    pub document_root: &'a str,
    pub php_version: Option<&'a str>,
    pub aliases: &'a [String],
    pub www: bool,
    pub web_directory: &'a str,
    pub git_repository: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    /// Extra `known_hosts` lines, one per line.
    pub git_host_keys: &'a str,
    pub deploy_script: &'a str,
    pub keep_releases: i32,
    pub status: &'a str,
}

macro_rules! site_columns {
    () => {
        "server_sites.id, server_sites.server_id, domain, site_type, document_root, php_version, status, is_default, \
         aliases, www, web_directory, git_repository, git_branch, deploy_script, keep_releases, current_release, \
         (webhook_secret_sealed IS NOT NULL) AS webhook_enabled, last_deployed_commit, last_deployed_at, error_log, \
         job_id, deploy_key_public, git_host_keys, server_sites.created_at, server_sites.updated_at"
    };
}

/// The associated data a site's sealed webhook secret is bound to.
pub fn webhook_secret_aad(site_id: i64) -> String {
    format!("server_sites:{site_id}:webhook")
}

/// Inserts a site. A domain the server already has is a conflict.
pub async fn insert(db: &Db, site: &NewSite<'_>) -> Result<SiteRecord, DbError> {
    let sql = concat!(
        "INSERT INTO server_sites (server_id, domain, site_type, document_root, php_version, aliases, www, ",
        "web_directory, git_repository, git_branch, deploy_script, keep_releases, status, git_host_keys, created_at, ",
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING ",
        site_columns!()
    );
    let now = crate::clock::now();
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SiteRecord>(sql)
            .bind(site.server_id)
            .bind(site.domain)
            .bind(site.site_type)
            .bind(site.document_root)
            .bind(site.php_version)
            .bind(Json(site.aliases))
            .bind(site.www)
            .bind(site.web_directory)
            .bind(site.git_repository)
            .bind(site.git_branch)
            .bind(site.deploy_script)
            .bind(site.keep_releases)
            .bind(site.status)
            .bind(site.git_host_keys)
            .bind(now)
            .fetch_one(pool)
            .await
    });
    result.map_err(|error| {
        if is_unique_violation(&error) {
            DbError::Conflict(format!("this server already has a site for {}", site.domain))
        } else {
            DbError::Query(error)
        }
    })
}

/// Every site of a server, by domain.
pub async fn list_for_server(db: &Db, server_id: i64) -> Result<Vec<SiteRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        site_columns!(),
        " FROM server_sites WHERE server_id = $1 ORDER BY domain"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SiteRecord>(sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?
    }))
}

/// One site of a server owned by `user_id`; `None` for unknown ids and for other
/// users' sites alike.
pub async fn find_owned(db: &Db, user_id: i64, site_id: i64) -> Result<Option<SiteRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        site_columns!(),
        " FROM server_sites JOIN servers ON servers.id = server_sites.server_id ",
        "WHERE servers.user_id = $1 AND server_sites.id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SiteRecord>(sql)
            .bind(user_id)
            .bind(site_id)
            .fetch_optional(pool)
            .await?
    }))
}

/// One site by id, whoever owns it (for job handlers and signed webhooks).
pub async fn find(db: &Db, site_id: i64) -> Result<Option<SiteRecord>, DbError> {
    let sql = concat!("SELECT ", site_columns!(), " FROM server_sites WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SiteRecord>(sql)
            .bind(site_id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Whether the server has a site for `domain`, or with `domain` among its aliases.
pub async fn domain_taken(db: &Db, server_id: i64, domain: &str) -> Result<bool, DbError> {
    let sites = list_for_server(db, server_id).await?;
    Ok(sites
        .iter()
        .any(|site| site.domain == domain || site.aliases.0.iter().any(|alias| alias == domain)))
}

/// The deploy settings a user can change after creation.
#[derive(Debug, Clone)]
pub struct DeploySettings<'a> {
    pub git_repository: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    /// Extra `known_hosts` lines, one per line.
    pub git_host_keys: &'a str,
    pub deploy_script: &'a str,
    pub keep_releases: i32,
}

/// Replaces a site's deploy settings. False when the site is gone.
pub async fn update_deploy_settings(db: &Db, site_id: i64, settings: &DeploySettings<'_>) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE server_sites SET git_repository = $2, git_branch = $3, deploy_script = $4, keep_releases = $5, ",
        "git_host_keys = $6, updated_at = $7 WHERE id = $1"
    );
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(settings.git_repository)
            .bind(settings.git_branch)
            .bind(settings.deploy_script)
            .bind(settings.keep_releases)
            .bind(settings.git_host_keys)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Records the public half of the site's own deploy key, or `None` when the site
/// goes back to the server's key. False when the site is gone.
pub async fn set_deploy_key(db: &Db, site_id: i64, public_key: Option<&str>) -> Result<bool, DbError> {
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE server_sites SET deploy_key_public = $2, updated_at = $3 WHERE id = $1")
            .bind(site_id)
            .bind(public_key)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Hands the site over to a job about to be enqueued: sets `status` and clears the
/// job and the last error until [`set_job`] names the new job. False when the site
/// is gone.
pub async fn start_job(db: &Db, site_id: i64, status: &str) -> Result<bool, DbError> {
    let sql = "UPDATE server_sites SET status = $2, job_id = NULL, error_log = NULL, updated_at = $3 WHERE id = $1";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Names the job that installs or removes the site, unless one is named already (a
/// job that finished before this call left the row as it wanted it).
pub async fn set_job(db: &Db, site_id: i64, job_id: i64) -> Result<bool, DbError> {
    let sql = "UPDATE server_sites SET job_id = $2, updated_at = $3 WHERE id = $1 AND job_id IS NULL";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Sets the site's status and last error. False when the site is gone.
pub async fn set_status(db: &Db, site_id: i64, status: &str, error: Option<&str>) -> Result<bool, DbError> {
    let sql = "UPDATE server_sites SET status = $2, error_log = $3, updated_at = $4 WHERE id = $1";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Records a release that went live: the release, its commit and when.
pub async fn set_live_release(
    db: &Db,
    site_id: i64,
    release_id: &str,
    commit: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE server_sites SET current_release = $2, last_deployed_commit = $3, last_deployed_at = $4, ",
        "updated_at = $4 WHERE id = $1"
    );
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(release_id)
            .bind(commit)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Makes `site_id` the default site of its server (and no other), or clears the
/// default when `site_id` is `None`.
pub async fn set_default(db: &Db, server_id: i64, site_id: Option<i64>) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        let mut transaction = pool.begin().await?;
        sqlx::query("UPDATE server_sites SET is_default = FALSE, updated_at = $2 WHERE server_id = $1 AND is_default")
            .bind(server_id)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        if let Some(site_id) = site_id {
            sqlx::query("UPDATE server_sites SET is_default = TRUE, updated_at = $3 WHERE server_id = $1 AND id = $2")
                .bind(server_id)
                .bind(site_id)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

/// The sealed webhook secret of a site, if its webhook is on.
pub async fn webhook_secret_sealed(db: &Db, site_id: i64) -> Result<Option<Vec<u8>>, DbError> {
    let sql = "SELECT webhook_secret_sealed FROM server_sites WHERE id = $1";
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Option<Vec<u8>>>(sql)
            .bind(site_id)
            .fetch_optional(pool)
            .await?
    })
    .flatten())
}

/// Stores a new sealed webhook secret (turning the webhook on), or removes it
/// (turning it off) when `sealed` is `None`. False when the site is gone.
pub async fn set_webhook_secret(db: &Db, site_id: i64, sealed: Option<&[u8]>) -> Result<bool, DbError> {
    let sql = "UPDATE server_sites SET webhook_secret_sealed = $2, updated_at = $3 WHERE id = $1";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(site_id)
            .bind(sealed)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Deletes a site with its deployments, command history, events and WordPress
/// settings; its sealed webhook secret and database password are overwritten first.
/// False when it was already gone.
pub async fn delete(db: &Db, site_id: i64) -> Result<bool, DbError> {
    let deleted = crate::with_pool!(db, |pool| {
        let mut transaction = pool.begin().await?;
        sqlx::query("UPDATE server_sites SET webhook_secret_sealed = NULL WHERE id = $1")
            .bind(site_id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("UPDATE site_wordpress SET database_password_sealed = $2 WHERE site_id = $1")
            .bind(site_id)
            .bind(Vec::<u8>::new())
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM server_sites WHERE id = $1")
            .bind(site_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        deleted
    });
    Ok(deleted == 1)
}

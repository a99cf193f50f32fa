//! The `firewall_rules` table: the rules a user added to a server's firewall after
//! provisioning. Each row names the job that installs or removes it, its status
//! (`installing`, `active`, `removing`, `failed`) and the last error. Rules are read
//! by server id; the application checks that the caller owns the server first.

use chrono::{DateTime, Utc};

use crate::error::DbError;
use crate::pool::Db;

/// A firewall rule as stored. `port` is a port or a range `first:last`; `source` an
/// address or a network, `None` for every address.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FirewallRuleRecord {
    pub id: i64,
    pub server_id: i64,
    pub rule_action: String,
    pub port: String,
    pub protocol: String,
    pub source: Option<String>,
    pub comment: Option<String>,
    pub status: String,
    pub job_id: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The values of a new rule; validation happens before this point.
#[derive(Debug, Clone)]
pub struct NewFirewallRule<'a> {
    pub server_id: i64,
    pub rule_action: &'a str,
    pub port: &'a str,
    pub protocol: &'a str,
    pub source: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub status: &'a str,
}

macro_rules! rule_columns {
    () => {
        "id, server_id, rule_action, port, protocol, source, comment, status, job_id, error, created_at, updated_at"
    };
}

/// Inserts a rule without a job yet.
pub async fn insert(db: &Db, rule: &NewFirewallRule<'_>) -> Result<FirewallRuleRecord, DbError> {
    let sql = concat!(
        "INSERT INTO firewall_rules (server_id, rule_action, port, protocol, source, comment, status, ",
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ",
        rule_columns!()
    );
    let now = crate::clock::now();
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, FirewallRuleRecord>(sql)
            .bind(rule.server_id)
            .bind(rule.rule_action)
            .bind(rule.port)
            .bind(rule.protocol)
            .bind(rule.source)
            .bind(rule.comment)
            .bind(rule.status)
            .bind(now)
            .fetch_one(pool)
            .await?
    }))
}

/// Every rule of a server, oldest first.
pub async fn list_for_server(db: &Db, server_id: i64) -> Result<Vec<FirewallRuleRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        rule_columns!(),
        " FROM firewall_rules WHERE server_id = $1 ORDER BY id"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, FirewallRuleRecord>(sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?
    }))
}

/// One rule of a server; `None` when the server has no such rule.
pub async fn find(db: &Db, server_id: i64, id: i64) -> Result<Option<FirewallRuleRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        rule_columns!(),
        " FROM firewall_rules WHERE server_id = $1 AND id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, FirewallRuleRecord>(sql)
            .bind(server_id)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// One rule by id, whatever its server (for job follow-ups, which act for the owner).
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<FirewallRuleRecord>, DbError> {
    let sql = concat!("SELECT ", rule_columns!(), " FROM firewall_rules WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, FirewallRuleRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Hands the rule over to a job about to be enqueued: sets `status`, and clears the
/// job and the last error until [`set_job`] names the new job. False when the rule
/// is gone.
pub async fn start_job(db: &Db, id: i64, status: &str) -> Result<bool, DbError> {
    let sql = "UPDATE firewall_rules SET status = $2, job_id = NULL, error = NULL, updated_at = $3 WHERE id = $1";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Names the job that acts on the rule, unless the rule already names one (a job
/// that finished before this call leaves the row as it set it). False when nothing
/// changed.
pub async fn set_job(db: &Db, id: i64, job_id: i64) -> Result<bool, DbError> {
    let sql = "UPDATE firewall_rules SET job_id = $2, updated_at = $3 WHERE id = $1 AND job_id IS NULL";
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(id)
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

/// Sets the rule's status and error. False when the rule is gone.
pub async fn set_status(db: &Db, id: i64, status: &str, error: Option<&str>) -> Result<bool, DbError> {
    let sql = "UPDATE firewall_rules SET status = $2, error = $3, updated_at = $4 WHERE id = $1";
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

/// Deletes a rule. False when it was already gone.
pub async fn delete(db: &Db, id: i64) -> Result<bool, DbError> {
    let sql = "DELETE FROM firewall_rules WHERE id = $1";
    let deleted = crate::with_pool!(db, |pool| {
        sqlx::query(sql).bind(id).execute(pool).await?.rows_affected()
    });
    Ok(deleted == 1)
}

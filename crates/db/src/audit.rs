//! The `audit_events` table: who did what to which server, and when. Rows keep the
//! actor's email so the history stays readable after a user or server is deleted.

use chrono::{DateTime, Utc};

use crate::changes::Topic;
use crate::error::DbError;
use crate::pool::Db;

/// An audit event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEventRecord {
    pub id: i64,
    pub user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub server_id: Option<i64>,
    pub target: Option<String>,
    pub summary: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A new audit event. The summary must be free of secrets.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub user_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'a str,
    pub server_id: Option<i64>,
    pub target: Option<&'a str>,
    pub summary: &'a str,
    pub ip: Option<&'a str>,
}

macro_rules! audit_columns {
    () => {
        "id, user_id, actor, action, server_id, target, summary, ip, created_at"
    };
}

/// Stores an audit event.
pub async fn insert(db: &Db, event: &NewAuditEvent<'_>) -> Result<i64, DbError> {
    let now = crate::clock::now();
    let id = crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO audit_events (user_id, actor, action, server_id, target, summary, ip, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(event.user_id)
        .bind(event.actor)
        .bind(event.action)
        .bind(event.server_id)
        .bind(event.target)
        .bind(event.summary)
        .bind(event.ip)
        .bind(now)
        .fetch_one(pool)
        .await?
    });
    db.changes().bump(Topic::Audit);
    Ok(id)
}

/// A user's own actions, newest first, below the id `before`.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEventRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, AuditEventRecord>(sql)
            .bind(user_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// Everything recorded about one server, newest first, below the id `before`. The
/// caller checks that the reader owns the server.
pub async fn list_for_server(
    db: &Db,
    server_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEventRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE server_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, AuditEventRecord>(sql)
            .bind(server_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

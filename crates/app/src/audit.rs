//! The audit log: who did what to which server, and when. Writing an audit event
//! never fails the action it records; a failure to write is logged instead.

use brokeforge_db::Db;
use brokeforge_db::audit::{self as audit_table, AuditEventRecord, NewAuditEvent};

use crate::error::AppError;

/// Who acted: a user (or an unknown person, for failed sign-ins) and their address.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    pub user_id: Option<i64>,
    pub email: &'a str,
    pub ip: Option<&'a str>,
}

/// Records an event. `summary` must be free of secrets.
pub async fn record(
    db: &Db,
    actor: &Actor<'_>,
    action: &str,
    server_id: Option<i64>,
    target: Option<&str>,
    summary: &str,
) {
    let email: String = actor.email.chars().take(254).collect();
    let event = NewAuditEvent {
        user_id: actor.user_id,
        actor: &email,
        action,
        server_id,
        target,
        summary,
        ip: actor.ip,
    };
    if let Err(error) = audit_table::insert(db, &event).await {
        tracing::error!(%error, action, "writing an audit event failed");
    }
}

/// The caller's own recent actions.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEventRecord>, AppError> {
    Ok(audit_table::list_for_user(db, user_id, before, limit).await?)
}

/// What happened to one of the caller's servers.
pub async fn list_for_server(
    db: &Db,
    user_id: i64,
    server_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEventRecord>, AppError> {
    brokeforge_db::servers::find_owned(db, user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    Ok(audit_table::list_for_server(db, server_id, before, limit).await?)
}

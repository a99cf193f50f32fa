//! The `servers` table: the machines a user registered. Every query that reads or
//! changes one server takes the owner's id, so a caller cannot reach another user's
//! server by guessing its id.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::changes::Topic;
use crate::error::{DbError, is_unique_violation};
use crate::pool::Db;

/// A server as stored. `provision_config` holds choices made at creation such as
/// `{"php_version": "8.3", "database": "mariadb"}`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub provider: String,
    pub public_ip: String,
    pub ssh_port: i32,
    pub connection_status: String,
    pub provision_status: String,
    pub provision_config: Json<serde_json::Value>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub os_codename: Option<String>,
    /// The pinned SSH host keys, one OpenSSH public key per line.
    pub host_key: Option<String>,
    /// The public half of the deploy key the server made for brokeforge.
    pub deploy_public_key: Option<String>,
    /// Where provisioning stands: see `brokeforge_app::provisioning`.
    pub provision_state: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The values that make up a server record; validation happens before this point.
#[derive(Debug, Clone)]
pub struct ServerFields<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub public_ip: &'a str,
    pub ssh_port: i32,
    pub provision_config: serde_json::Value,
}

macro_rules! server_columns {
    () => {
        "id, user_id, name, provider, public_ip, ssh_port, connection_status, provision_status, \
         provision_config, os_name, os_version, os_codename, host_key, deploy_public_key, provision_state, \
         created_at, updated_at"
    };
}

fn conflict_or_query(error: sqlx::Error, fields: &ServerFields<'_>) -> DbError {
    if is_unique_violation(&error) {
        DbError::Conflict(format!(
            "you already have a server at {} port {}",
            fields.public_ip, fields.ssh_port
        ))
    } else {
        DbError::Query(error)
    }
}

/// Inserts a server for `user_id`; the same address and port twice is a conflict.
pub async fn insert(db: &Db, user_id: i64, fields: &ServerFields<'_>) -> Result<ServerRecord, DbError> {
    let sql = concat!(
        "INSERT INTO servers (user_id, name, provider, public_ip, ssh_port, provision_config, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
        server_columns!()
    );
    let now = crate::clock::now();
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerRecord>(sql)
            .bind(user_id)
            .bind(fields.name)
            .bind(fields.provider)
            .bind(fields.public_ip)
            .bind(fields.ssh_port)
            .bind(Json(&fields.provision_config))
            .bind(now)
            .fetch_one(pool)
            .await
    });
    let record = result.map_err(|error| conflict_or_query(error, fields))?;
    db.changes().bump(Topic::Servers);
    Ok(record)
}

/// Replaces the editable fields of a server the user owns. `None` when there is none.
pub async fn update_owned(
    db: &Db,
    user_id: i64,
    id: i64,
    fields: &ServerFields<'_>,
) -> Result<Option<ServerRecord>, DbError> {
    let sql = concat!(
        "UPDATE servers SET name = $3, provider = $4, public_ip = $5, ssh_port = $6, provision_config = $7, ",
        "updated_at = $8 WHERE user_id = $1 AND id = $2 RETURNING ",
        server_columns!()
    );
    let now = crate::clock::now();
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerRecord>(sql)
            .bind(user_id)
            .bind(id)
            .bind(fields.name)
            .bind(fields.provider)
            .bind(fields.public_ip)
            .bind(fields.ssh_port)
            .bind(Json(&fields.provision_config))
            .bind(now)
            .fetch_optional(pool)
            .await
    });
    let record = result.map_err(|error| conflict_or_query(error, fields))?;
    db.changes().bump(Topic::Servers);
    Ok(record)
}

/// One server of a user.
pub async fn find_owned(db: &Db, user_id: i64, id: i64) -> Result<Option<ServerRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        server_columns!(),
        " FROM servers WHERE user_id = $1 AND id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerRecord>(sql)
            .bind(user_id)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// One server by id, whoever owns it (for job handlers, which run on behalf of the owner).
pub async fn find(db: &Db, id: i64) -> Result<Option<ServerRecord>, DbError> {
    let sql = concat!("SELECT ", server_columns!(), " FROM servers WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// A user's servers by id, at most `limit` after the id `after`.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ServerRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        server_columns!(),
        " FROM servers WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerRecord>(sql)
            .bind(user_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// How many servers a user has.
pub async fn count_for_user(db: &Db, user_id: i64) -> Result<i64, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM servers WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await?
    }))
}

/// Deletes a server the user owns (its credentials, packages, sites and events go
/// with it). False when the user has no such server.
pub async fn delete_owned(db: &Db, user_id: i64, id: i64) -> Result<bool, DbError> {
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM servers WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    db.changes().bump(Topic::Servers);
    Ok(changed == 1)
}

/// What a completed bootstrap reported, validated.
#[derive(Debug, Clone)]
pub struct BootstrapReport<'a> {
    /// The host keys to pin, one OpenSSH public key per line.
    pub host_keys: &'a str,
    pub deploy_public_key: &'a str,
    pub os_name: &'a str,
    pub os_version: &'a str,
    pub os_codename: &'a str,
}

/// Pins the reported host keys and records the server's release; the connection is
/// then being verified.
pub async fn record_bootstrap(db: &Db, id: i64, report: &BootstrapReport<'_>) -> Result<(), DbError> {
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE servers SET host_key = $2, host_key_pinned_at = $3, deploy_public_key = $4, os_name = $5, \
             os_version = $6, os_codename = $7, connection_status = 'verifying', updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(report.host_keys)
        .bind(now)
        .bind(report.deploy_public_key)
        .bind(report.os_name)
        .bind(report.os_version)
        .bind(report.os_codename)
        .execute(pool)
        .await?
        .rows_affected()
    });
    db.changes().bump(Topic::Servers);
    if changed == 1 {
        Ok(())
    } else {
        Err(DbError::NotFound("server"))
    }
}

/// Sets a server's connection status (`pending`, `bootstrapping`, `verifying`,
/// `connected`, `failed`).
pub async fn set_connection_status(db: &Db, id: i64, status: &str) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE servers SET connection_status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await?;
    });
    db.changes().bump(Topic::Servers);
    Ok(())
}

/// Sets a server's provisioning status and state.
pub async fn set_provisioning(db: &Db, id: i64, status: &str, state: &serde_json::Value) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE servers SET provision_status = $2, provision_state = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(Json(state))
            .bind(now)
            .execute(pool)
            .await?;
    });
    db.changes().bump(Topic::Servers);
    Ok(())
}

/// Overwrites and deletes the sealed secrets of a server (its SSH keys and
/// bootstrap lines) ahead of deleting the server itself.
pub async fn erase_secrets(db: &Db, id: i64) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        let mut transaction = pool.begin().await?;
        sqlx::query("UPDATE server_credentials SET private_key_sealed = $2 WHERE server_id = $1")
            .bind(id)
            .bind(Vec::<u8>::new())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM server_credentials WHERE server_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("UPDATE bootstrap_tokens SET token_sealed = $2 WHERE server_id = $1")
            .bind(id)
            .bind(Vec::<u8>::new())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM bootstrap_tokens WHERE server_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    });
    Ok(())
}

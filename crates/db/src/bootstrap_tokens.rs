//! The `bootstrap_tokens` table: one row per bootstrap line. A line is looked up by
//! the SHA-256 of its token; the token itself is kept only sealed, so the owner's page
//! can show the line again until it is used. A line is used once: the first script run
//! that checks in claims it with a random run nonce, and only that run's callbacks
//! are accepted afterwards.

use crate::error::DbError;
use crate::pool::Db;

/// A bootstrap line as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BootstrapTokenRecord {
    pub id: i64,
    pub server_id: i64,
    pub token_sealed: Vec<u8>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub downloaded_at_ms: Option<i64>,
    pub run_nonce: Option<String>,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl BootstrapTokenRecord {
    /// Whether the line can still start a bootstrap at `now_ms`.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        self.run_nonce.is_none() && self.revoked_at_ms.is_none() && self.expires_at_ms > now_ms
    }
}

macro_rules! token_columns {
    () => {
        "id, server_id, token_sealed, created_at_ms, expires_at_ms, downloaded_at_ms, run_nonce, started_at_ms, \
         completed_at_ms, revoked_at_ms"
    };
}

/// Revokes the server's unused lines and inserts a new one; returns its id.
pub async fn replace(
    db: &Db,
    server_id: i64,
    token_hash: &[u8],
    token_sealed: &[u8],
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<i64, DbError> {
    revoke_unused(db, server_id, now_ms).await?;
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO bootstrap_tokens (server_id, token_hash, token_sealed, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(server_id)
        .bind(token_hash)
        .bind(token_sealed)
        .bind(now_ms)
        .bind(expires_at_ms)
        .fetch_one(pool)
        .await?
    }))
}

/// Revokes every line of the server that no script run has claimed yet.
pub async fn revoke_unused(db: &Db, server_id: i64, now_ms: i64) -> Result<u64, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE bootstrap_tokens SET revoked_at_ms = $2 \
             WHERE server_id = $1 AND revoked_at_ms IS NULL AND run_nonce IS NULL",
        )
        .bind(server_id)
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected()
    }))
}

/// The line whose token hashes to `token_hash`.
pub async fn find_by_hash(db: &Db, token_hash: &[u8]) -> Result<Option<BootstrapTokenRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        token_columns!(),
        " FROM bootstrap_tokens WHERE token_hash = $1"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, BootstrapTokenRecord>(sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
    }))
}

/// One line by id.
pub async fn find(db: &Db, id: i64) -> Result<Option<BootstrapTokenRecord>, DbError> {
    let sql = concat!("SELECT ", token_columns!(), " FROM bootstrap_tokens WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, BootstrapTokenRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// The server's newest line.
pub async fn latest_for_server(db: &Db, server_id: i64) -> Result<Option<BootstrapTokenRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        token_columns!(),
        " FROM bootstrap_tokens WHERE server_id = $1 ORDER BY id DESC LIMIT 1"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, BootstrapTokenRecord>(sql)
            .bind(server_id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Notes that the script was downloaded (the first time only).
pub async fn mark_downloaded(db: &Db, id: i64, now_ms: i64) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE bootstrap_tokens SET downloaded_at_ms = $2 WHERE id = $1 AND downloaded_at_ms IS NULL")
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Claims the line for the script run `run_nonce`. False when another run claimed
/// it first, or it was revoked or has expired: the line is used once.
pub async fn claim(db: &Db, id: i64, run_nonce: &str, now_ms: i64) -> Result<bool, DbError> {
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE bootstrap_tokens SET run_nonce = $2, started_at_ms = $3 \
             WHERE id = $1 AND run_nonce IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > $3",
        )
        .bind(id)
        .bind(run_nonce)
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// Marks the claimed line complete. False when it is not claimed by `run_nonce` or
/// was completed already (a replayed report).
pub async fn complete(db: &Db, id: i64, run_nonce: &str, now_ms: i64) -> Result<bool, DbError> {
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE bootstrap_tokens SET completed_at_ms = $3 \
             WHERE id = $1 AND run_nonce = $2 AND completed_at_ms IS NULL AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(run_nonce)
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

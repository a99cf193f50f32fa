//! First-run setup: one-time tokens (stored as SHA-256) that allow creating the
//! first administrator, and that creation itself, which succeeds only once.

use crate::error::DbError;
use crate::pool::Db;
use crate::users::{NewUser, UserRecord};

/// Replaces any earlier setup token with this one.
pub async fn replace_token(db: &Db, token_hash: &[u8], expires_at_ms: i64) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        let mut transaction = pool.begin().await?;
        sqlx::query("DELETE FROM setup_tokens")
            .execute(&mut *transaction)
            .await?;
        sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at_ms) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(expires_at_ms)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    });
    Ok(())
}

/// True when `token_hash` names an unexpired setup token.
pub async fn token_is_valid(db: &Db, token_hash: &[u8], now_ms: i64) -> Result<bool, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND expires_at_ms > $2")
            .bind(token_hash)
            .bind(now_ms)
            .fetch_one(pool)
            .await?
    }) > 0)
}

/// Consumes the setup token and creates the first user, in one transaction. Returns
/// `None` (and changes nothing) when the token is unknown or expired, or when a user
/// already exists.
pub async fn create_first_user(
    db: &Db,
    token_hash: &[u8],
    now_ms: i64,
    user: &NewUser<'_>,
) -> Result<Option<UserRecord>, DbError> {
    let now = crate::clock::now();
    Ok(crate::with_pool!(db, |pool| {
        let mut transaction = pool.begin().await?;
        let consumed = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at_ms > $2")
            .bind(token_hash)
            .bind(now_ms)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if consumed != 1 {
            return Ok(None);
        }
        let created = sqlx::query_as::<_, UserRecord>(
            "INSERT INTO users (email, name, password_hash, is_admin, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $5 WHERE NOT EXISTS (SELECT 1 FROM users) \
             RETURNING id, email, name, password_hash, is_admin, created_at, updated_at",
        )
        .bind(user.email)
        .bind(user.name)
        .bind(user.password_hash)
        .bind(user.is_admin)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        if created.is_some() {
            sqlx::query("DELETE FROM setup_tokens")
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
        }
        created
    }))
}

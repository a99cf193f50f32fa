//! The `api_tokens` table: bearer tokens for the API and the CLI. A token is stored
//! as a public lookup prefix plus the SHA-256 of the whole token; the token itself
//! is shown once and never stored.

use chrono::{DateTime, Utc};

use crate::changes::Topic;
use crate::error::{DbError, is_unique_violation};
use crate::pool::Db;

/// A token as stored, without its secret part.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub token_prefix: String,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A token found by its prefix, with its hash and its owner, for authentication.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenLookup {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: Vec<u8>,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

/// What a new token is made of.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_prefix: &'a str,
    pub token_hash: &'a [u8],
    pub scopes: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

macro_rules! token_columns {
    () => {
        "id, user_id, name, token_prefix, scopes, expires_at, last_used_at, revoked_at, created_at"
    };
}

/// Stores a token.
pub async fn insert(db: &Db, token: &NewApiToken<'_>) -> Result<ApiTokenRecord, DbError> {
    let sql = concat!(
        "INSERT INTO api_tokens (user_id, name, token_prefix, token_hash, scopes, expires_at, created_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        token_columns!()
    );
    let now = crate::clock::now();
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ApiTokenRecord>(sql)
            .bind(token.user_id)
            .bind(token.name)
            .bind(token.token_prefix)
            .bind(token.token_hash)
            .bind(token.scopes)
            .bind(token.expires_at)
            .bind(now)
            .fetch_one(pool)
            .await
    });
    result.map_err(|error| {
        if is_unique_violation(&error) {
            DbError::Conflict("a token with this prefix already exists".to_owned())
        } else {
            DbError::Query(error)
        }
    })
}

/// Finds a token by its public prefix, with its owner.
pub async fn find_by_prefix(db: &Db, prefix: &str) -> Result<Option<TokenLookup>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, TokenLookup>(
            "SELECT t.id, t.user_id, t.token_hash, t.scopes, t.expires_at, t.last_used_at, t.revoked_at, \
             u.email, u.name, u.is_admin FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(pool)
        .await?
    }))
}

/// The tokens of a user, newest first.
pub async fn list_for_user(db: &Db, user_id: i64) -> Result<Vec<ApiTokenRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ApiTokenRecord>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?
    }))
}

/// One token of a user.
pub async fn find_owned(db: &Db, user_id: i64, id: i64) -> Result<Option<ApiTokenRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE user_id = $1 AND id = $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ApiTokenRecord>(sql)
            .bind(user_id)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Revokes a token of a user. False when the user has no such unrevoked token.
pub async fn revoke(db: &Db, user_id: i64, id: i64) -> Result<bool, DbError> {
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE api_tokens SET revoked_at = $3 WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    db.changes().bump(Topic::Credentials);
    Ok(changed == 1)
}

/// Records that a token was used.
pub async fn touch_last_used(db: &Db, id: i64) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

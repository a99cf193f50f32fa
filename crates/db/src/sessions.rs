//! The `sessions` table: server-side sign-in sessions. The browser's cookie holds a
//! random token; only its SHA-256 is stored, so a database leak yields no cookies.

use crate::changes::Topic;
use crate::error::DbError;
use crate::pool::Db;

/// A live session joined with the user it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionWithUser {
    pub session_id: i64,
    pub user_id: i64,
    pub csrf_token: String,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

/// What a new session is made of.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// Stores a new session and returns its id.
pub async fn insert(db: &Db, session: &NewSession<'_>) -> Result<i64, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, ip, user_agent, created_at_ms, last_seen_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
        )
        .bind(session.token_hash)
        .bind(session.user_id)
        .bind(session.csrf_token)
        .bind(session.ip)
        .bind(session.user_agent)
        .bind(session.now_ms)
        .bind(session.expires_at_ms)
        .fetch_one(pool)
        .await?
    }))
}

/// Finds the unexpired session whose token hashes to `token_hash`, with its user.
pub async fn find_live(db: &Db, token_hash: &[u8], now_ms: i64) -> Result<Option<SessionWithUser>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, SessionWithUser>(
            "SELECT s.id AS session_id, s.user_id, s.csrf_token, s.last_seen_at_ms, s.expires_at_ms, \
             u.email, u.name, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(pool)
        .await?
    }))
}

/// Records activity on a session and slides its expiry.
pub async fn touch(db: &Db, session_id: i64, now_ms: i64, expires_at_ms: i64) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE sessions SET last_seen_at_ms = $2, expires_at_ms = $3 WHERE id = $1")
            .bind(session_id)
            .bind(now_ms)
            .bind(expires_at_ms)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Ends the session whose token hashes to `token_hash`.
pub async fn delete_by_hash(db: &Db, token_hash: &[u8]) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await?;
    });
    db.changes().bump(Topic::Credentials);
    Ok(())
}

/// Ends every session of a user except `keep` (used after a password change).
pub async fn delete_for_user_except(db: &Db, user_id: i64, keep: Option<i64>) -> Result<u64, DbError> {
    let deleted = crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)")
            .bind(user_id)
            .bind(keep)
            .execute(pool)
            .await?
            .rows_affected()
    });
    db.changes().bump(Topic::Credentials);
    Ok(deleted)
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired(db: &Db, now_ms: i64) -> Result<u64, DbError> {
    let deleted = crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if deleted > 0 {
        db.changes().bump(Topic::Credentials);
    }
    Ok(deleted)
}

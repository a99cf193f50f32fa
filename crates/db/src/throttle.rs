//! The `sign_in_throttle` table: failed sign-ins counted per key (an email address
//! or a client address) within a window, and the lockout they lead to. The limits
//! are the caller's; this module only counts.

use crate::error::DbError;
use crate::pool::Db;

/// A key's current count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ThrottleState {
    pub failures: i32,
    pub window_started_at_ms: i64,
    pub locked_until_ms: Option<i64>,
}

/// The state of `key`, if it has failed before.
pub async fn get(db: &Db, key: &str) -> Result<Option<ThrottleState>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ThrottleState>(
            "SELECT failures, window_started_at_ms, locked_until_ms FROM sign_in_throttle WHERE throttle_key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await?
    }))
}

/// Counts one failure for `key`, starting a new window when the last one began
/// before `window_start_ms`. Returns the new state.
pub async fn record_failure(db: &Db, key: &str, now_ms: i64, window_start_ms: i64) -> Result<ThrottleState, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ThrottleState>(
            "INSERT INTO sign_in_throttle (throttle_key, failures, window_started_at_ms, locked_until_ms) \
             VALUES ($1, 1, $2, NULL) ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = CASE WHEN sign_in_throttle.window_started_at_ms < $3 THEN 1 ELSE sign_in_throttle.failures + 1 END, \
             window_started_at_ms = CASE WHEN sign_in_throttle.window_started_at_ms < $3 THEN $2 ELSE sign_in_throttle.window_started_at_ms END \
             RETURNING failures, window_started_at_ms, locked_until_ms",
        )
        .bind(key)
        .bind(now_ms)
        .bind(window_start_ms)
        .fetch_one(pool)
        .await?
    }))
}

/// Locks `key` until `until_ms`.
pub async fn lock(db: &Db, key: &str, until_ms: i64) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE sign_in_throttle SET locked_until_ms = $2 WHERE throttle_key = $1")
            .bind(key)
            .bind(until_ms)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Forgets the failures of `key` (after a successful sign-in).
pub async fn clear(db: &Db, key: &str) -> Result<(), DbError> {
    crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM sign_in_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

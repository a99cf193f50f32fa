//! Jobs as their owners see them. A job belongs to the owner of the server its
//! subject names (`server:42`), so these queries join `jobs` with `servers` and take
//! the reader's user id: another user's jobs are simply not found.

use crate::error::DbError;
use crate::pool::Db;

/// A job with the server it is about.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnedJobRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub server_id: i64,
    pub server_name: String,
}

macro_rules! owned_job_select {
    () => {
        "SELECT j.id, j.kind, j.state, j.attempts, j.max_attempts, j.last_error, j.created_at, j.started_at, \
         j.finished_at, s.id AS server_id, s.name AS server_name FROM servers s \
         JOIN jobs j ON j.subject = 'server:' || s.id WHERE s.user_id = $1 "
    };
}

/// A user's jobs, newest first, optionally for one server, below the id `before`.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    server_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<OwnedJobRow>, DbError> {
    let sql = concat!(
        owned_job_select!(),
        "AND ($2 IS NULL OR s.id = $2) AND ($3 IS NULL OR j.id < $3) ORDER BY j.id DESC LIMIT $4"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, OwnedJobRow>(sql)
            .bind(user_id)
            .bind(server_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// One job of a user; `None` for unknown ids and for other users' jobs alike.
pub async fn find_for_user(db: &Db, user_id: i64, job_id: i64) -> Result<Option<OwnedJobRow>, DbError> {
    let sql = concat!(owned_job_select!(), "AND j.id = $2");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, OwnedJobRow>(sql)
            .bind(user_id)
            .bind(job_id)
            .fetch_optional(pool)
            .await?
    }))
}

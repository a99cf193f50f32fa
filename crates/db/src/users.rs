//! The `users` table: people who sign in to the control plane and own servers.

use chrono::{DateTime, Utc};

use crate::changes::Topic;
use crate::error::{DbError, is_unique_violation};
use crate::pool::Db;

/// A user as stored. The password hash is a PHC string and never leaves the server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The values needed to create a user; validation happens before this point.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
}

/// The columns of [`UserRecord`], as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, is_admin, created_at, updated_at"
    };
}

/// Inserts a user; an email already taken is a [`DbError::Conflict`].
pub async fn insert(db: &Db, user: &NewUser<'_>) -> Result<UserRecord, DbError> {
    let now = crate::clock::now();
    let sql = concat!(
        "INSERT INTO users (email, name, password_hash, is_admin, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
        user_columns!()
    );
    let result = crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, UserRecord>(sql)
            .bind(user.email)
            .bind(user.name)
            .bind(user.password_hash)
            .bind(user.is_admin)
            .bind(now)
            .fetch_one(pool)
            .await
    });
    result.map_err(|error| {
        if is_unique_violation(&error) {
            DbError::Conflict(format!("a user with email {} already exists", user.email))
        } else {
            DbError::Query(error)
        }
    })
}

/// Finds a user by email (emails are stored lowercase).
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRecord>, DbError> {
    let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, UserRecord>(sql)
            .bind(email)
            .fetch_optional(pool)
            .await?
    }))
}

/// Counts users; zero means the control plane still needs its first admin.
pub async fn count(db: &Db) -> Result<i64, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await?
    }))
}

/// Finds a user by id.
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<UserRecord>, DbError> {
    let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, UserRecord>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Lists users by id, at most `limit` after the id `after` (for paging).
pub async fn list(db: &Db, after: Option<i64>, limit: i64) -> Result<Vec<UserRecord>, DbError> {
    let sql = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
    );
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, UserRecord>(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// Replaces a user's password hash. Returns false when the user does not exist.
pub async fn update_password_hash(db: &Db, id: i64, password_hash: &str) -> Result<bool, DbError> {
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    db.changes().bump(Topic::Credentials);
    Ok(changed == 1)
}

/// Deletes a user and, through the foreign keys, everything the user owns.
pub async fn delete(db: &Db, id: i64) -> Result<bool, DbError> {
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    // The user's sessions, tokens and servers went with it.
    db.changes().bump(Topic::Credentials);
    db.changes().bump(Topic::Servers);
    Ok(changed == 1)
}

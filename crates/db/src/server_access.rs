//! What the control plane needs to reach a server over SSH: its address, its pinned
//! host key, and the sealed key pair of each SSH role (`root`, `brokeforge`).
//! Private keys are stored only sealed, with associated data naming the row.

use crate::changes::Topic;
use crate::error::DbError;
use crate::pool::Db;

/// A server's SSH address and pinned host key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerEndpoint {
    pub id: i64,
    pub user_id: i64,
    pub public_ip: String,
    pub ssh_port: i32,
    /// The host key pinned at bootstrap, in OpenSSH public-key format.
    pub host_key: Option<String>,
}

/// One SSH role's credentials on a server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRecord {
    pub server_id: i64,
    /// The role: `root` or `brokeforge`.
    pub ssh_user: String,
    /// The account the role logs in as, when it is not named like the role.
    pub login_name: Option<String>,
    pub private_key_sealed: Vec<u8>,
    pub public_key: String,
}

impl CredentialRecord {
    /// The account name to log in as.
    pub fn login(&self) -> &str {
        self.login_name.as_deref().unwrap_or(&self.ssh_user)
    }
}

/// The associated data that binds a sealed private key to its row.
pub fn credential_aad(server_id: i64, role: &str) -> String {
    format!("server_credentials:{server_id}:{role}")
}

/// The server's endpoint, if the server exists.
pub async fn endpoint(db: &Db, server_id: i64) -> Result<Option<ServerEndpoint>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, ServerEndpoint>(
            "SELECT id, user_id, public_ip, ssh_port, host_key FROM servers WHERE id = $1",
        )
        .bind(server_id)
        .fetch_optional(pool)
        .await?
    }))
}

/// Pins the server's host key (OpenSSH public-key format).
pub async fn pin_host_key(db: &Db, server_id: i64, host_key: &str) -> Result<(), DbError> {
    let now = crate::clock::now();
    let changed = crate::with_pool!(db, |pool| {
        sqlx::query("UPDATE servers SET host_key = $2, host_key_pinned_at = $3, updated_at = $3 WHERE id = $1")
            .bind(server_id)
            .bind(host_key)
            .bind(now)
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

/// Stores (or replaces) a role's credentials. `private_key_sealed` must have been
/// sealed with [`credential_aad`] for this server and role.
pub async fn store_credential(
    db: &Db,
    server_id: i64,
    role: &str,
    login_name: Option<&str>,
    private_key_sealed: &[u8],
    public_key: &str,
) -> Result<(), DbError> {
    let now = crate::clock::now();
    crate::with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO server_credentials (server_id, ssh_user, login_name, private_key_sealed, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (server_id, ssh_user) DO UPDATE SET \
             login_name = excluded.login_name, private_key_sealed = excluded.private_key_sealed, \
             public_key = excluded.public_key",
        )
        .bind(server_id)
        .bind(role)
        .bind(login_name)
        .bind(private_key_sealed)
        .bind(public_key)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// A role's credentials on a server.
pub async fn credential(db: &Db, server_id: i64, role: &str) -> Result<Option<CredentialRecord>, DbError> {
    Ok(crate::with_pool!(db, |pool| {
        sqlx::query_as::<_, CredentialRecord>(
            "SELECT server_id, ssh_user, login_name, private_key_sealed, public_key FROM server_credentials \
             WHERE server_id = $1 AND ssh_user = $2",
        )
        .bind(server_id)
        .bind(role)
        .fetch_optional(pool)
        .await?
    }))
}

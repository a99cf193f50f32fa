//! What the API returns and the pages show: plain serializable views of stored
//! records. Nothing secret is ever copied into a view (no password hashes, no token
//! hashes, no job payloads).

use brokeforge_app::AppError;
use brokeforge_app::FieldErrors;
use brokeforge_app::jobs::ProgressEvent;
use brokeforge_app::servers::{DatabaseChoice, Provider, valid_from_record};
use brokeforge_db::api_tokens::ApiTokenRecord;
use brokeforge_db::audit::AuditEventRecord;
use brokeforge_db::job_listing::OwnedJobRow;
use brokeforge_db::servers::ServerRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A server record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServerView {
    pub id: i64,
    pub name: String,
    /// One of custom, hetzner, digitalocean, aws, linode, vultr, other.
    pub provider: String,
    pub provider_label: String,
    /// The public IP address or host name BrokeForge connects to.
    pub public_address: String,
    pub ssh_port: i32,
    pub php_version: String,
    /// One of none, mysql, mariadb, postgresql.
    pub database: String,
    pub database_label: String,
    /// Whether BrokeForge has reached the server yet (`pending` until onboarding).
    pub connection_status: String,
    pub provision_status: String,
    /// The operating system the server reported at bootstrap, such as `debian 12 (bookworm)`.
    pub os: Option<String>,
    /// Whether the server's SSH host keys are pinned (after bootstrap).
    pub host_key_pinned: bool,
    /// The public half of the deploy key the server made for Git (after bootstrap).
    pub deploy_public_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServerView {
    pub fn from_record(record: &ServerRecord) -> ServerView {
        let valid = valid_from_record(record);
        ServerView {
            id: record.id,
            name: record.name.clone(),
            provider: record.provider.clone(),
            provider_label: Provider::parse(&record.provider)
                .map(Provider::label)
                .unwrap_or("Other")
                .to_owned(),
            public_address: record.public_ip.clone(),
            ssh_port: record.ssh_port,
            php_version: valid.php_version.as_str().to_owned(),
            database: valid.database.as_str().to_owned(),
            database_label: DatabaseChoice::parse(valid.database.as_str())
                .map(DatabaseChoice::label)
                .unwrap_or("")
                .to_owned(),
            connection_status: record.connection_status.clone(),
            provision_status: record.provision_status.clone(),
            os: record.os_name.as_ref().map(|name| {
                let version = record.os_version.as_deref().unwrap_or_default();
                match record.os_codename.as_deref().filter(|codename| !codename.is_empty()) {
                    Some(codename) => format!("{name} {version} ({codename})"),
                    None => format!("{name} {version}"),
                }
            }),
            host_key_pinned: record.host_key.is_some(),
            deploy_public_key: record.deploy_public_key.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default()
}

/// A job, as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    /// One of queued, running, succeeded, failed, cancelled.
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Why the last attempt failed, already free of secrets.
    pub last_error: Option<String>,
    pub server_id: i64,
    pub server_name: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobView {
    pub fn from_row(row: &OwnedJobRow) -> JobView {
        JobView {
            id: row.id,
            kind: row.kind.clone(),
            state: row.state.clone(),
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            last_error: row.last_error.clone(),
            server_id: row.server_id,
            server_name: row.server_name.clone(),
            created_at: from_millis(row.created_at),
            started_at: row.started_at.map(from_millis),
            finished_at: row.finished_at.map(from_millis),
        }
    }
}

/// One milestone a job reached.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    /// Names the execution of the job; a retry starts a new run with a larger number.
    pub run: i64,
    pub milestone: String,
    pub current_step: i32,
    pub total_steps: i32,
    pub percentage: i32,
    /// One of running, success, failed.
    pub status: String,
    /// For a failed step: the command, with secrets masked as ***.
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub stderr_tail: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl EventView {
    pub fn from_event(event: &ProgressEvent) -> EventView {
        EventView {
            id: event.id,
            run: event.run,
            milestone: event.milestone.clone(),
            current_step: event.current_step,
            total_steps: event.total_steps,
            percentage: event.percentage,
            status: event.status.clone(),
            command: event.command.clone(),
            exit_code: event.exit_code,
            stderr_tail: event.stderr_tail.clone(),
            created_at: event.created_at,
        }
    }
}

/// A job with the milestones of its latest run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDetailView {
    #[serde(flatten)]
    pub job: JobView,
    pub events: Vec<EventView>,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    /// The email of who acted.
    pub actor: String,
    /// What happened, such as `server.created` or `auth.signed_in`.
    pub action: String,
    pub server_id: Option<i64>,
    /// What it happened to, such as `server:42` or `job:7`.
    pub target: Option<String>,
    pub summary: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AuditView {
    pub fn from_record(record: &AuditEventRecord) -> AuditView {
        AuditView {
            id: record.id,
            actor: record.actor.clone(),
            action: record.action.clone(),
            server_id: record.server_id,
            target: record.target.clone(),
            summary: record.summary.clone(),
            ip: record.ip.clone(),
            created_at: record.created_at,
        }
    }
}

/// An API token, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The public part of the token (`bf_<prefix>_…`), to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// False once revoked or expired.
    pub active: bool,
}

impl TokenView {
    pub fn from_record(record: &ApiTokenRecord) -> TokenView {
        let now = Utc::now();
        TokenView {
            id: record.id,
            name: record.name.clone(),
            prefix: format!("bf_{}_", record.token_prefix),
            scopes: record
                .scopes
                .split(',')
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
            created_at: record.created_at,
            active: record.revoked_at.is_none() && record.expires_at.is_none_or(|expiry| expiry > now),
        }
    }
}

/// The paging parameters every list takes, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return, 1 to 200 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only items about this server (jobs and audit events).
    pub server_id: Option<String>,
}

/// Validated paging parameters.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub limit: i64,
    pub cursor: Option<i64>,
    pub server_id: Option<i64>,
}

impl PageQuery {
    pub fn validate(&self) -> Result<Paging, AppError> {
        let mut errors = FieldErrors::new();
        let limit = match self.limit.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
            None => 50,
            Some(text) => match text.parse::<i64>() {
                Ok(limit) if (1..=200).contains(&limit) => limit,
                _ => {
                    errors.add("limit", "Enter a whole number from 1 to 200.");
                    50
                }
            },
        };
        let mut id =
            |field: &str, value: &Option<String>| match value.as_deref().map(str::trim).filter(|text| !text.is_empty())
            {
                None => None,
                Some(text) => match text.parse::<i64>() {
                    Ok(id) if id > 0 => Some(id),
                    _ => {
                        errors.add(field, "Not a valid value here.");
                        None
                    }
                },
            };
        let cursor = id("cursor", &self.cursor);
        let server_id = id("server_id", &self.server_id);
        errors.into_result()?;
        Ok(Paging {
            limit,
            cursor,
            server_id,
        })
    }
}

/// The cursor of the page after `items`, when the page was full.
pub fn next_cursor<T>(items: &[T], limit: i64, id_of: impl Fn(&T) -> i64) -> Option<String> {
    if items.len() as i64 >= limit {
        items.last().map(|item| id_of(item).to_string())
    } else {
        None
    }
}

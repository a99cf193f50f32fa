//! Deploy webhooks: a Git host (or any script) calls a site's URL,
//! `/webhooks/sites/<site id>/<provider>`, after a push, and BrokeForge deploys the
//! pushed commit. The request's signature is the credential; there is no session.
//!
//! - **GitHub** (`github`): `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
//!   raw body with the site's secret. Only `push` events (and `ping`, answered) are
//!   read; a push deploys its `after` commit, the one pushed, never whatever the
//!   branch points at when the job starts.
//! - **GitLab** (`gitlab`): `X-Gitlab-Token`, equal to the secret. Only `Push Hook`
//!   events; a push deploys its `after` commit.
//! - **Generic** (`generic`): `X-BrokeForge-Signature: sha256=<hex>`, the HMAC-SHA256
//!   of the raw body. The body is empty (deploy the branch head) or JSON with an
//!   optional `commit` and an optional `branch` (which must be the site's).
//!
//! Pushes to another branch, tag pushes and branch deletions are ignored and say
//! why. Signatures and tokens are compared in constant time, and nothing of a
//! request is parsed before its signature checked out. A site whose webhook is off
//! answers exactly like an unknown site. The secret is random (256 bits), sealed at
//! rest, shown once when the webhook is turned on, and never empty.
//!
//! Replays: a captured request stays valid (Git hosts sign no timestamp), so a
//! replay is made harmless instead. A delivery id (`X-GitHub-Delivery`,
//! `X-Gitlab-Event-UUID`, `X-BrokeForge-Delivery`) is recorded with the deployment and
//! a second request with the same id does nothing; a commit already queued or being
//! deployed for the site is not queued again. At worst, a replay without a delivery id
//! deploys again a commit that was really pushed to the site's branch: it cannot
//! choose what is deployed.

use brokeforge_core::GitBranch;
use brokeforge_db::sites::{self as site_table, SiteRecord, webhook_secret_aad};
use brokeforge_db::{Db, Sealer};
use brokeforge_packages::site::CommitSha;
use brokeforge_queue::{JobId, Queue};
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::crypto::constant_time_eq;
use crate::deployments::{self, PushOutcome, PushedCommit};
use crate::error::AppError;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Who calls the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Generic,
}

impl Provider {
    /// Every provider, in the order pages list them.
    pub const ALL: [Provider; 3] = [Provider::GitHub, Provider::GitLab, Provider::Generic];

    /// The provider's name in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Generic => "generic",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|provider| provider.as_str() == text)
    }
}

/// The path of a site's webhook for `provider`.
pub fn webhook_path(site_id: i64, provider: Provider) -> String {
    format!("/webhooks/sites/{site_id}/{}", provider.as_str())
}

/// What a webhook request carries, as the HTTP layer read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookRequest<'a> {
    /// `X-GitHub-Event` or `X-Gitlab-Event`.
    pub event: Option<&'a str>,
    /// `X-Hub-Signature-256` (GitHub) or `X-BrokeForge-Signature` (generic).
    pub signature: Option<&'a str>,
    /// `X-Gitlab-Token`.
    pub token: Option<&'a str>,
    /// `X-GitHub-Delivery`, `X-Gitlab-Event-UUID` or `X-BrokeForge-Delivery`.
    pub delivery_id: Option<&'a str>,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
}

/// What a verified webhook did.
#[derive(Debug, Clone)]
pub enum WebhookOutcome {
    /// A deployment was queued.
    Queued { deployment_id: i64, job_id: JobId },
    /// Nothing was deployed, for this reason (another branch, a tag, a duplicate).
    Ignored(String),
}

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No such site, or its webhook is off (the two look alike).
    #[error("no such webhook")]
    NotFound,
    /// The signature or token is missing or wrong.
    #[error("the signature does not match this webhook's secret")]
    BadSignature,
    /// Signed, but not a payload BrokeForge understands.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

/// Checks `X-...-Signature` (`sha256=<hex>`) against the HMAC-SHA256 of `body`.
pub fn verify_hmac(secret: &[u8], signature: Option<&str>, body: &[u8]) -> bool {
    let Some(hex_digest) = signature.map(str::trim).and_then(|value| value.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `sha256=<hex>` signature of `body` with `secret`, as a generic trigger sends it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery id worth recording: short, printable, without spaces.
fn delivery_id(text: Option<&str>) -> Option<&str> {
    text.map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_graphic()))
}

#[derive(Debug, Deserialize)]
struct Author {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    id: Option<String>,
    message: Option<String>,
    author: Option<Author>,
}

/// The fields of GitHub's and GitLab's push events that deployments use.
#[derive(Debug, Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    reference: Option<String>,
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    head_commit: Option<Commit>,
    #[serde(default)]
    commits: Vec<Commit>,
}

/// The generic trigger's optional body.
#[derive(Debug, Default, Deserialize)]
struct GenericTrigger {
    commit: Option<String>,
    branch: Option<String>,
}

/// What a push asks to deploy.
#[derive(Debug)]
struct Push {
    commit: Option<CommitSha>,
    author: Option<String>,
    message: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|error| WebhookError::Invalid(format!("the body is not the JSON this webhook expects: {error}")))
}

/// Reads a push event: the pushed commit when it is the site's branch, or why not.
fn read_push(body: &[u8], branch: &GitBranch) -> Result<Result<Push, String>, WebhookError> {
    let event: PushEvent = parse_json(body)?;
    let reference = event.reference.unwrap_or_default();
    let wanted = format!("refs/heads/{branch}");
    if reference != wanted {
        let pushed = reference
            .strip_prefix("refs/heads/")
            .map(|name| format!("the branch {name}"))
            .or_else(|| {
                reference
                    .strip_prefix("refs/tags/")
                    .map(|name| format!("the tag {name}"))
            })
            .unwrap_or_else(|| format!("{reference:?}"));
        return Ok(Err(format!(
            "the push was to {pushed}, not to the site's branch {branch}; nothing was deployed"
        )));
    }
    let after = event.after.unwrap_or_default();
    if event.deleted || (!after.is_empty() && after.bytes().all(|byte| byte == b'0')) {
        return Ok(Err(format!("the branch {branch} was deleted; nothing was deployed")));
    }
    let commit = after
        .parse::<CommitSha>()
        .map_err(|_| WebhookError::Invalid("the push names no valid commit in \"after\"".to_owned()))?;
    let details = event.head_commit.into_iter().chain(event.commits).find(|candidate| {
        candidate
            .id
            .as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(commit.as_str()))
    });
    let (author, message) = match details {
        Some(details) => (details.author.and_then(|author| author.name), details.message),
        None => (None, None),
    };
    Ok(Ok(Push {
        commit: Some(commit),
        author,
        message,
    }))
}

/// Reads the generic trigger's body.
fn read_generic(body: &[u8], branch: &GitBranch) -> Result<Result<Push, String>, WebhookError> {
    let trigger: GenericTrigger = if body.iter().all(u8::is_ascii_whitespace) {
        GenericTrigger::default()
    } else {
        parse_json(body)?
    };
    if let Some(named) = trigger.branch.as_deref().map(str::trim).filter(|name| !name.is_empty())
        && named != branch.as_str()
    {
        return Ok(Err(format!(
            "the trigger names the branch {named}, not the site's branch {branch}; nothing was deployed"
        )));
    }
    let commit = match trigger.commit.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<CommitSha>()
                .map_err(|error| WebhookError::Invalid(format!("\"commit\": {error}")))?,
        ),
    };
    Ok(Ok(Push {
        commit,
        author: None,
        message: None,
    }))
}

/// Checks the request's credential against the site's secret.
fn authentic(provider: Provider, secret: &[u8], request: &WebhookRequest<'_>) -> bool {
    match provider {
        Provider::GitHub | Provider::Generic => verify_hmac(secret, request.signature, request.body),
        Provider::GitLab => request
            .token
            .is_some_and(|token| constant_time_eq(token.as_bytes(), secret)),
    }
}

/// The site behind a webhook URL and its opened secret; `NotFound` when there is no
/// such site or its webhook is off.
async fn site_and_secret(
    db: &Db,
    sealer: &Sealer,
    site_id: i64,
) -> Result<(SiteRecord, zeroize::Zeroizing<Vec<u8>>), WebhookError> {
    let Some(site) = site_table::find(db, site_id).await.map_err(AppError::from)? else {
        return Err(WebhookError::NotFound);
    };
    let Some(sealed) = site_table::webhook_secret_sealed(db, site_id)
        .await
        .map_err(AppError::from)?
    else {
        return Err(WebhookError::NotFound);
    };
    let secret = sealer
        .open(&sealed, &webhook_secret_aad(site_id))
        .map_err(|error| WebhookError::App(AppError::internal(format!("site {site_id}'s webhook secret: {error}"))))?;
    if secret.is_empty() {
        return Err(WebhookError::NotFound);
    }
    Ok((site, secret))
}

/// Handles one webhook request for site `site_id`: checks its signature, reads what
/// was pushed, and queues a deployment of the pushed commit when it is the site's
/// branch.
pub async fn receive(
    queue: &Queue,
    sealer: &Sealer,
    site_id: i64,
    provider: Provider,
    request: &WebhookRequest<'_>,
) -> Result<WebhookOutcome, WebhookError> {
    let db = queue.db();
    let (site, secret) = site_and_secret(db, sealer, site_id).await?;
    if !authentic(provider, &secret, request) {
        return Err(WebhookError::BadSignature);
    }
    drop(secret);
    // Signed: the request may now be read.
    let event = request.event.map(str::trim).unwrap_or_default();
    let Some((_, branch)) = crate::site_operations::git(&site)? else {
        return Ok(WebhookOutcome::Ignored(
            "the site has no Git repository; nothing was deployed".to_owned(),
        ));
    };
    let push = match provider {
        Provider::GitHub => match event {
            "ping" => return Ok(WebhookOutcome::Ignored("pong: the webhook works".to_owned())),
            "push" => read_push(request.body, &branch)?,
            other => {
                return Ok(WebhookOutcome::Ignored(format!(
                    "only push events deploy, this was {other:?}"
                )));
            }
        },
        Provider::GitLab => match event {
            "Push Hook" => read_push(request.body, &branch)?,
            other => {
                return Ok(WebhookOutcome::Ignored(format!(
                    "only Push Hook events deploy, this was {other:?}"
                )));
            }
        },
        Provider::Generic => read_generic(request.body, &branch)?,
    };
    let push = match push {
        Ok(push) => push,
        Err(reason) => return Ok(WebhookOutcome::Ignored(reason)),
    };
    let Some(server) = brokeforge_db::servers::find(db, site.server_id)
        .await
        .map_err(AppError::from)?
    else {
        return Err(WebhookError::NotFound);
    };
    let outcome = deployments::deploy_push(
        queue,
        &site,
        &server,
        &PushedCommit {
            provider: provider.as_str(),
            delivery_id: delivery_id(request.delivery_id),
            commit: push.commit.as_ref(),
            branch: &branch,
            author: push.author.as_deref(),
            message: push.message.as_deref(),
        },
    )
    .await;
    match outcome {
        Ok(PushOutcome::Started(started)) => Ok(WebhookOutcome::Queued {
            deployment_id: started.deployment.id,
            job_id: started.job_id,
        }),
        Ok(PushOutcome::Duplicate) => Ok(WebhookOutcome::Ignored(
            "this delivery was received before; nothing was deployed again".to_owned(),
        )),
        Ok(PushOutcome::AlreadyPending(id)) => Ok(WebhookOutcome::Ignored(format!(
            "this commit is already being deployed (deployment #{id})"
        ))),
        Err(AppError::Conflict(reason)) => Ok(WebhookOutcome::Ignored(reason)),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_raw_body() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        // The example from GitHub's documentation on validating webhook deliveries.
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), expected);
        assert!(verify_hmac(secret, Some(expected), body));
        assert!(!verify_hmac(secret, Some(expected), b"Hello, World?"));
        assert!(!verify_hmac(b"another secret", Some(expected), body));
        assert!(!verify_hmac(secret, Some(&expected[7..]), body));
        assert!(!verify_hmac(secret, Some("sha256=zz"), body));
        assert!(!verify_hmac(secret, None, body));
    }

    #[test]
    fn pushes_deploy_their_after_commit_on_the_sites_branch_only() {
        let branch: GitBranch = "main".parse().unwrap();
        let after = "9fceb02d0ae598e95dc970b74767f19372d61af8";
        let body = serde_json::json!({
            "ref": "refs/heads/main", "after": after,
            "head_commit": { "id": after, "message": "Fix the header\n\nLonger text", "author": { "name": "Ada" } },
        });
        let push = read_push(body.to_string().as_bytes(), &branch).unwrap().unwrap();
        assert_eq!(push.commit.unwrap().as_str(), after);
        assert_eq!(push.author.as_deref(), Some("Ada"));
        let other = serde_json::json!({ "ref": "refs/heads/develop", "after": after });
        let reason = read_push(other.to_string().as_bytes(), &branch).unwrap().unwrap_err();
        assert!(reason.contains("the branch develop"), "{reason}");
        let tag = serde_json::json!({ "ref": "refs/tags/v1.0", "after": after });
        assert!(
            read_push(tag.to_string().as_bytes(), &branch)
                .unwrap()
                .unwrap_err()
                .contains("the tag v1.0")
        );
        let deleted = serde_json::json!({ "ref": "refs/heads/main", "after": "0".repeat(40), "deleted": true });
        assert!(read_push(deleted.to_string().as_bytes(), &branch).unwrap().is_err());
        assert!(matches!(read_push(b"not json", &branch), Err(WebhookError::Invalid(_))));
    }

    #[test]
    fn generic_triggers_may_name_a_commit_and_the_branch() {
        let branch: GitBranch = "main".parse().unwrap();
        assert!(read_generic(b"", &branch).unwrap().unwrap().commit.is_none());
        let named = br#"{"commit": "9FCEB02D0AE598E95DC970B74767F19372D61AF8", "branch": "main"}"#;
        assert_eq!(
            read_generic(named, &branch).unwrap().unwrap().commit.unwrap().as_str(),
            "9fceb02d0ae598e95dc970b74767f19372d61af8"
        );
        assert!(read_generic(br#"{"branch": "dev"}"#, &branch).unwrap().is_err());
        assert!(read_generic(br#"{"commit": "abc"}"#, &branch).is_err());
        assert_eq!(delivery_id(Some(" 72d3162e-cc78 ")), Some("72d3162e-cc78"));
        assert_eq!(delivery_id(Some("a b")), None);
    }
}

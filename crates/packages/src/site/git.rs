//! Git for sites: how brokeforge reaches repositories, the pinned host keys of the
//! big Git hosts, and the probe that resolves a branch to the commit a deployment
//! gets.
//!
//! Every Git command runs with [`git_cmd`]'s environment: SSH uses the server's deploy
//! key (`/home/brokeforge/.ssh/id_ed25519`, made by the bootstrap script) or the
//! site's own key ([`GitKey`], made by [`super::deploy_key`]) and
//! `StrictHostKeyChecking=yes`, so only host keys already in brokeforge's
//! `known_hosts` are accepted, never one learned on first contact; `BatchMode` and
//! `GIT_TERMINAL_PROMPT=0` make a missing credential fail at once instead of waiting
//! for a password; `GIT_ALLOW_PROTOCOL` limits Git to `ssh`, `https` and `file`, also
//! for submodules, so no `ext::` transport can run a program.
//!
//! [`GitKnownHostsInstall`] writes the published host keys of github.com, gitlab.com
//! and bitbucket.org ([`PINNED_KNOWN_HOSTS`]) and any extra ones the user adds for a
//! self-hosted Git server into `known_hosts`, merged with what is there: every line
//! already there stays byte for byte, and keys already present are not added twice.
//! Lines are never removed: a key the user added for a pinned host (after the host
//! rotated its keys, before BrokeForge's list follows) keeps working, and an outdated
//! key next to a current one does no harm, since ssh accepts a host when one of its
//! known keys matches. Deployments do the same before they fetch.
//!
//! [`resolve_branch_probe`] and [`parse_branch_head`]: the application runs this
//! `git ls-remote` (as brokeforge, after the known hosts are in place) to turn the
//! site's branch into a [`CommitSha`] before it enqueues a deployment, and records it.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use brokeforge_core::{Cmd, Domain, GitBranch, Plan, PlanBuilder, RemotePath, ShellArg};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::bootstrap::DEPLOY_KEY_PATH;
use crate::facts::{FactError, FactProbe, ProbeOutput, ProbeOutputs, file_contents_cmd, parse_file_contents};
use crate::framework::{Action, Operation};

use super::layout::path;
use super::values::{CommitSha, GitRepositoryUrl};
use super::{Deployment, GitRepository};

/// brokeforge's `.ssh` directory.
pub const SSH_DIRECTORY: &str = "/home/brokeforge/.ssh";
/// brokeforge's `known_hosts`, which SSH reads for every Git host.
pub const KNOWN_HOSTS_PATH: &str = "/home/brokeforge/.ssh/known_hosts";

/// Where a site's own deploy keys live, one pair per domain.
pub const SITE_KEYS_DIRECTORY: &str = "/home/brokeforge/.ssh/sites";

/// The SSH options Git's `ssh` runs with besides the key and the known hosts files:
/// that key only, pinned host keys only, no prompts.
const GIT_SSH_OPTIONS: &str = "-o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o BatchMode=yes \
     -o ConnectTimeout=30";

/// Which private key Git's SSH logs in with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GitKey {
    /// The server's deploy key, made by the bootstrap script.
    #[default]
    Server,
    /// The site's own key pair, generated on the server (see [`super::deploy_key`]).
    Site {
        #[serde(deserialize_with = "super::layout::deserialize_site_domain")]
        domain: Domain,
    },
}

impl GitKey {
    /// The private key's path on the server.
    pub fn private_key_path(&self) -> RemotePath {
        match self {
            GitKey::Server => path(DEPLOY_KEY_PATH),
            GitKey::Site { domain } => site_key_path(domain),
        }
    }
}

/// The private half of `domain`'s own deploy key; the public half is beside it with
/// `.pub` appended.
pub fn site_key_path(domain: &Domain) -> RemotePath {
    path(&format!("{SITE_KEYS_DIRECTORY}/{domain}"))
}

/// The host keys one site pins for its own Git server, beside its key pair. Only
/// that site's Git commands read it, so one site's pinned hosts are not trusted for
/// another's repositories, and sites deploying at once never write the same file.
pub fn site_known_hosts_path(domain: &Domain) -> RemotePath {
    path(&format!("{SITE_KEYS_DIRECTORY}/{domain}.known_hosts"))
}

/// The SSH command Git runs with `key`, trusting the pinned hosts in brokeforge's
/// `known_hosts` and, for a site, the site's own. Git hands it to a shell, so it holds
/// only fixed text and paths made of a validated domain name (letters, digits, dots
/// and hyphens).
pub fn git_ssh_command(key: &GitKey, site: Option<&Domain>) -> String {
    let known_hosts = match site {
        Some(domain) => format!("{KNOWN_HOSTS_PATH} {}", site_known_hosts_path(domain)),
        None => KNOWN_HOSTS_PATH.to_owned(),
    };
    format!(
        "ssh -i {} {GIT_SSH_OPTIONS} -o \"UserKnownHostsFile={known_hosts}\"",
        key.private_key_path()
    )
}

/// The transports Git may use, for the repository and its submodules.
pub const GIT_ALLOWED_PROTOCOLS: &str = "ssh:https:file";

/// The published host keys of github.com, gitlab.com and bitbucket.org, as
/// `known_hosts` lines (ed25519, ECDSA and RSA each). Sources, checked against the
/// SHA-256 fingerprints published there (the tests recompute them with `ssh-keygen`):
/// <https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints>,
/// <https://docs.gitlab.com/ee/user/gitlab_com/#ssh-host-keys-fingerprints>,
/// <https://support.atlassian.com/bitbucket-cloud/docs/configure-ssh-and-two-step-verification/>.
pub const PINNED_KNOWN_HOSTS: &[&str] = &[
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
    "github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
    "gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
    "gitlab.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=",
    "gitlab.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9",
    "bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
    "bitbucket.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=",
    "bitbucket.org ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=",
];

/// `git` with BrokeForge's environment (see the module documentation), logging in
/// to SSH hosts with `key` and trusting `site`'s pinned hosts too.
pub fn git_cmd(key: &GitKey, site: Option<&Domain>) -> Cmd {
    Cmd::new("git")
        .env(
            "GIT_SSH_COMMAND",
            ShellArg::new(git_ssh_command(key, site)).expect("a path made of a domain holds no NUL byte"),
        )
        .env("GIT_TERMINAL_PROMPT", text_arg("0"))
        .env("GIT_ALLOW_PROTOCOL", text_arg(GIT_ALLOWED_PROTOCOLS))
}

fn text_arg(text: &'static str) -> ShellArg {
    ShellArg::new(text).expect("a literal without NUL")
}

/// The probe key of [`resolve_branch_probe`].
pub const BRANCH_HEAD_PROBE: &str = "git_branch_head";

/// `git ls-remote --exit-code -- URL refs/heads/BRANCH`, with [`git_cmd`]'s
/// environment.
pub fn resolve_branch_cmd(repository: &GitRepositoryUrl, branch: &GitBranch, key: &GitKey, site: &Domain) -> Cmd {
    git_cmd(key, Some(site))
        .lit("ls-remote")
        .lit("--exit-code")
        .lit("--")
        .arg(repository)
        .arg(ShellArg::new(format!("refs/heads/{branch}")).expect("a branch holds no NUL byte"))
}

/// The read-only probe that resolves `branch` of `repository` to its head commit, run
/// as brokeforge. The application runs it (its key is [`BRANCH_HEAD_PROBE`]) and
/// passes the output to [`parse_branch_head`] before it builds a deployment's input.
pub fn resolve_branch_probe(
    repository: &GitRepositoryUrl,
    branch: &GitBranch,
    key: &GitKey,
    site: &Domain,
) -> FactProbe {
    FactProbe::new::<Deployment>(BRANCH_HEAD_PROBE, resolve_branch_cmd(repository, branch, key, site))
}

/// Why Git could not read a repository (or find a branch in it). The messages say
/// what to do.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GitRemoteError {
    #[error("the branch {branch} does not exist in the repository; check its name (branch names are case-sensitive)")]
    BranchNotFound { branch: String },
    #[error(
        "the Git host's SSH key is not known to this server, so BrokeForge did not connect: it pins the keys of \
         github.com, gitlab.com and bitbucket.org; add your Git server's host key to the known hosts first"
    )]
    HostKeyUnknown,
    #[error(
        "the Git host's SSH key does not match the pinned one; this can be an attack, or the host changed its key: \
         compare it with the key your Git host publishes"
    )]
    HostKeyChanged,
    #[error(
        "the Git host refused the deploy key: add the site's public deploy key (shown on the site's page) to the \
         repository's deploy keys, and check the URL"
    )]
    AccessDenied,
    #[error(
        "the repository was not found or this server may not read it: check the URL, and add the server's deploy key \
         to the repository if it is private"
    )]
    RepositoryNotFound,
    #[error("the Git host cannot be reached from the server ({detail}); check the host name and the server's network")]
    Unreachable { detail: String },
    #[error("git failed (exit code {exit_code}): {detail}")]
    Other { exit_code: u32, detail: String },
}

/// What a failed Git command's stderr says went wrong, when it is one of the known
/// causes (unknown or changed host key, refused key, missing repository, unreachable
/// host). For the failed step of a deployment's fetch as for the branch probe.
pub fn explain_git_failure(stderr: &str) -> Option<GitRemoteError> {
    let text = stderr.to_ascii_lowercase();
    if text.contains("remote host identification has changed")
        || (text.contains("host key for") && text.contains("has changed"))
    {
        return Some(GitRemoteError::HostKeyChanged);
    }
    if text.contains("host key verification failed") || text.contains("host key is known") {
        return Some(GitRemoteError::HostKeyUnknown);
    }
    if text.contains("permission denied (publickey")
        || text.contains("could not read username")
        || text.contains("authentication failed")
    {
        return Some(GitRemoteError::AccessDenied);
    }
    if text.contains("repository not found")
        || text.contains("does not appear to be a git repository")
        || text.contains("project you were looking for could not be found")
    {
        return Some(GitRemoteError::RepositoryNotFound);
    }
    for unreachable in [
        "could not resolve hostname",
        "could not resolve host",
        "connection timed out",
        "connection refused",
        "network is unreachable",
        "no route to host",
        "failed to connect",
    ] {
        if text.contains(unreachable) {
            return Some(GitRemoteError::Unreachable {
                detail: last_line(stderr),
            });
        }
    }
    None
}

fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect()
}

/// Parses the output of [`resolve_branch_cmd`]: the commit `refs/heads/<branch>`
/// points at. `git ls-remote --exit-code` exits with 2 when no ref matched.
pub fn parse_branch_head(output: &ProbeOutput, branch: &GitBranch) -> Result<CommitSha, GitRemoteError> {
    let not_found = || GitRemoteError::BranchNotFound {
        branch: branch.to_string(),
    };
    match output.exit_code {
        0 => {}
        2 => return Err(not_found()),
        exit_code => {
            return Err(
                explain_git_failure(&output.stderr).unwrap_or_else(|| GitRemoteError::Other {
                    exit_code,
                    detail: last_line(&output.stderr),
                }),
            );
        }
    }
    let wanted = format!("refs/heads/{branch}");
    output
        .stdout
        .lines()
        .find_map(|line| {
            let (sha, reference) = line.split_once('\t')?;
            (reference == wanted).then(|| sha.parse::<CommitSha>().ok())?
        })
        .ok_or_else(not_found)
}

/// Why a `known_hosts` line is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KnownHostError {
    #[error("a known host line is \"HOST KEY-TYPE KEY\", such as \"git.example.com ssh-ed25519 AAAA...\"")]
    Format,
    #[error("the host {0:?} is not a host name (or [host]:port)")]
    Host(String),
    #[error("unsupported key type {0:?}; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa")]
    KeyType(String),
    #[error("the key is not base64 text")]
    Key,
}

/// One `known_hosts` line a user adds for their own Git server: `HOSTS KEY-TYPE KEY`,
/// where `HOSTS` is one or more host names, IP addresses or `[host]:port`, separated
/// by commas. A trailing comment is dropped; markers (`@revoked`) and hashed host
/// names are refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KnownHostEntry {
    hosts: Vec<String>,
    key_type: String,
    key: String,
}

impl KnownHostEntry {
    /// The host names the line is for.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// `KEY-TYPE KEY`.
    pub fn key_material(&self) -> String {
        format!("{} {}", self.key_type, self.key)
    }

    fn line(&self) -> String {
        format!("{} {} {}", self.hosts.join(","), self.key_type, self.key)
    }
}

impl FromStr for KnownHostEntry {
    type Err = KnownHostError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [hosts, key_type, key, ..] = words.as_slice() else {
            return Err(KnownHostError::Format);
        };
        let hosts: Vec<String> = hosts.split(',').map(str::to_ascii_lowercase).collect();
        for host in &hosts {
            let name = match host.strip_prefix('[') {
                Some(rest) => {
                    let (name, port) = rest
                        .split_once("]:")
                        .ok_or_else(|| KnownHostError::Host(host.clone()))?;
                    if port.parse::<brokeforge_core::Port>().is_err() {
                        return Err(KnownHostError::Host(host.clone()));
                    }
                    name
                }
                None => host.as_str(),
            };
            let valid = !name.is_empty()
                && !name.starts_with(['-', '.'])
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'));
            if !valid {
                return Err(KnownHostError::Host(host.clone()));
            }
        }
        const KEY_TYPES: &[&str] = &[
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "ssh-rsa",
        ];
        if !KEY_TYPES.contains(key_type) {
            return Err(KnownHostError::KeyType((*key_type).to_owned()));
        }
        if key.len() < 16
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        {
            return Err(KnownHostError::Key);
        }
        Ok(KnownHostEntry {
            hosts,
            key_type: (*key_type).to_owned(),
            key: (*key).to_owned(),
        })
    }
}

impl fmt::Display for KnownHostEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

impl Serialize for KnownHostEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.line())
    }
}

impl<'de> Deserialize<'de> for KnownHostEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The pinned lines as entries.
pub fn pinned_entries() -> Vec<KnownHostEntry> {
    PINNED_KNOWN_HOSTS
        .iter()
        .map(|line| line.parse().expect("the pinned lines are valid"))
        .collect()
}

/// `current` (the contents of a `known_hosts` file, empty when it does not exist)
/// with every `wanted` entry present: lines already there stay byte for byte and in
/// order, and entries not there yet (for each of their hosts, the same key type and
/// key on a plain line) are appended. Hashed lines and lines with markers are kept and
/// never count as holding an entry.
pub fn merge_known_hosts(current: &str, wanted: &[KnownHostEntry]) -> String {
    let mut present: Vec<(String, String)> = Vec::new();
    for line in current.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let plain = matches!(words.first(), Some(first) if !first.starts_with(['#', '@', '|']));
        if plain && words.len() >= 3 {
            let material = format!("{} {}", words[1], words[2]);
            for host in words[0].split(',') {
                present.push((host.to_ascii_lowercase(), material.clone()));
            }
        }
    }
    let mut merged: String = current.lines().map(|line| format!("{line}\n")).collect();
    for entry in wanted {
        let material = entry.key_material();
        let missing = entry
            .hosts
            .iter()
            .any(|host| !present.iter().any(|(known, key)| known == host && *key == material));
        if missing {
            merged.push_str(&entry.line());
            merged.push('\n');
            present.extend(entry.hosts.iter().map(|host| (host.clone(), material.clone())));
        }
    }
    merged
}

/// Adds the steps that make `known_hosts` hold `wanted`, given its current contents
/// (`None` when it does not exist): nothing when it already does; otherwise the `.ssh`
/// directory (mode 0700) and the merged file, uploaded as bytes with mode 0600.
pub fn write_known_hosts_steps(steps: &mut PlanBuilder, current: Option<&str>, wanted: &[KnownHostEntry]) -> bool {
    let merged = merge_known_hosts(current.unwrap_or_default(), wanted);
    if current == Some(merged.as_str()) {
        return false;
    }
    steps
        .run(
            Cmd::new("mkdir")
                .lit("-p")
                .lit("-m")
                .lit("0700")
                .lit("--")
                .lit(SSH_DIRECTORY),
        )
        .upload(path(KNOWN_HOSTS_PATH), merged, 0o600, None);
    true
}

/// Adds the steps that make `domain`'s own known hosts file hold exactly `entries`,
/// given its current contents (`None` when it does not exist): nothing when it
/// already does; the file (mode 0600, in a 0700 directory) when there are entries;
/// its removal when there are none.
pub fn write_site_known_hosts_steps(
    steps: &mut PlanBuilder,
    current: Option<&str>,
    domain: &Domain,
    entries: &[KnownHostEntry],
) -> bool {
    let wanted: String = entries.iter().map(|entry| format!("{}\n", entry.line())).collect();
    let file = site_known_hosts_path(domain);
    match (current, entries.is_empty()) {
        (None, true) => false,
        (Some(_), true) => {
            steps.run(Cmd::new("rm").lit("-f").lit("--").arg(&file));
            true
        }
        (Some(current), false) if current == wanted => false,
        (_, false) => {
            steps
                .run(
                    Cmd::new("mkdir")
                        .lit("-p")
                        .lit("-m")
                        .lit("0700")
                        .lit("--")
                        .lit(SITE_KEYS_DIRECTORY),
                )
                .upload(file, wanted, 0o600, None);
            true
        }
    }
}

/// The probe key of a site's own known hosts file.
pub const SITE_KNOWN_HOSTS_PROBE: &str = "site_known_hosts";

/// The probe that reads `domain`'s own known hosts file, run as brokeforge by
/// package `P`.
pub(crate) fn site_known_hosts_probe<P: crate::framework::Package>(domain: &Domain) -> FactProbe {
    FactProbe::new::<P>(
        SITE_KNOWN_HOSTS_PROBE,
        file_contents_cmd(&site_known_hosts_path(domain)),
    )
}

/// The probe key of brokeforge's `known_hosts`.
pub const KNOWN_HOSTS_PROBE: &str = "known_hosts";

fn known_hosts_path() -> RemotePath {
    path(KNOWN_HOSTS_PATH)
}

/// The probe that reads brokeforge's `known_hosts`, run as brokeforge by package `P`.
pub(crate) fn known_hosts_probe<P: crate::framework::Package>() -> FactProbe {
    FactProbe::new::<P>(KNOWN_HOSTS_PROBE, file_contents_cmd(&known_hosts_path()))
}

/// What writing the known hosts needs: the site whose own Git server's host keys
/// (`extra_hosts`) go into its own file. Without a site, the extra keys go into
/// brokeforge's `known_hosts` next to the pinned ones, for every site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitKnownHostsInput {
    #[serde(default)]
    pub extra_hosts: Vec<KnownHostEntry>,
    #[serde(default)]
    pub site: Option<Domain>,
}

impl GitKnownHostsInput {
    /// What brokeforge's `known_hosts` must hold: the pinned entries, and the extra
    /// ones when they are not a site's.
    pub fn wanted(&self) -> Vec<KnownHostEntry> {
        let mut wanted = pinned_entries();
        if self.site.is_none() {
            wanted.extend(self.extra_hosts.iter().cloned());
        }
        wanted
    }
}

/// What writing the known hosts reads: the current files, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitKnownHostsFacts {
    pub known_hosts: Option<String>,
    /// The site's own file (`None` without a site, or when it does not exist).
    pub site_known_hosts: Option<String>,
}

milestones! {
    /// Milestones of writing the known hosts.
    pub enum GitKnownHostsMilestone {
        WriteKnownHosts => ("write_known_hosts", "Pinning the Git hosts' SSH keys"),
        Complete => ("complete", "Complete"),
    }
}

/// Writes the pinned (and extra) Git host keys into brokeforge's `known_hosts`. Runs
/// once per server before the first `git ls-remote` (deployments also ensure the
/// pinned keys before they fetch).
pub struct GitKnownHostsInstall;

impl Operation for GitKnownHostsInstall {
    type Package = GitRepository;
    const ACTION: Action = Action::Install;
    type Milestone = GitKnownHostsMilestone;
    type Input = GitKnownHostsInput;
    type Facts = GitKnownHostsFacts;
    type Error = Infallible;

    fn fact_probes(input: &GitKnownHostsInput) -> Vec<FactProbe> {
        let mut probes = vec![known_hosts_probe::<GitRepository>()];
        if let Some(domain) = &input.site {
            probes.push(site_known_hosts_probe::<GitRepository>(domain));
        }
        probes
    }

    fn parse_facts(input: &GitKnownHostsInput, outputs: &ProbeOutputs) -> Result<GitKnownHostsFacts, FactError> {
        Ok(GitKnownHostsFacts {
            known_hosts: outputs.read(KNOWN_HOSTS_PROBE, parse_file_contents)?,
            site_known_hosts: match input.site {
                Some(_) => outputs.read(SITE_KNOWN_HOSTS_PROBE, parse_file_contents)?,
                None => None,
            },
        })
    }

    fn plan(input: &GitKnownHostsInput, facts: &GitKnownHostsFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(GitKnownHostsMilestone::WriteKnownHosts);
        write_known_hosts_steps(steps, facts.known_hosts.as_deref(), &input.wanted());
        if let Some(domain) = &input.site {
            write_site_known_hosts_steps(steps, facts.site_known_hosts.as_deref(), domain, &input.extra_hosts);
        }
        plan.milestone(GitKnownHostsMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::APP_HOME;

    #[test]
    fn the_ssh_command_uses_the_deploy_key_and_pinned_keys_only() {
        let domain: Domain = "shop.example.com".parse().unwrap();
        let server = git_ssh_command(&GitKey::Server, None);
        assert!(server.starts_with(&format!("ssh -i {DEPLOY_KEY_PATH} ")), "{server}");
        assert!(
            server.ends_with(&format!("\"UserKnownHostsFile={KNOWN_HOSTS_PATH}\"")),
            "{server}"
        );
        let site = git_ssh_command(&GitKey::Site { domain: domain.clone() }, Some(&domain));
        assert!(
            site.starts_with(&format!("ssh -i {SITE_KEYS_DIRECTORY}/shop.example.com ")),
            "{site}"
        );
        assert!(
            site.ends_with(&format!(
                "\"UserKnownHostsFile={KNOWN_HOSTS_PATH} {SITE_KEYS_DIRECTORY}/shop.example.com.known_hosts\""
            )),
            "{site}"
        );
        for command in [&server, &site] {
            assert!(command.contains("StrictHostKeyChecking=yes"));
            assert!(command.contains("IdentitiesOnly=yes"));
            assert!(!command.contains("  "), "{command}");
        }
        assert!(KNOWN_HOSTS_PATH.starts_with(APP_HOME) && KNOWN_HOSTS_PATH.starts_with(SSH_DIRECTORY));
        assert!(SITE_KEYS_DIRECTORY.starts_with(SSH_DIRECTORY));
    }

    #[test]
    fn git_keys_serialize_with_their_kind() {
        assert_eq!(
            serde_json::to_value(GitKey::Server).unwrap(),
            serde_json::json!({ "kind": "server" })
        );
        let site = GitKey::Site {
            domain: "shop.example.com".parse().unwrap(),
        };
        let value = serde_json::to_value(&site).unwrap();
        assert_eq!(
            value,
            serde_json::json!({ "kind": "site", "domain": "shop.example.com" })
        );
        assert_eq!(serde_json::from_value::<GitKey>(value).unwrap(), site);
        assert!(serde_json::from_value::<GitKey>(serde_json::json!({ "kind": "site", "domain": "a b" })).is_err());
    }

    #[test]
    fn known_host_entries() {
        let entry: KnownHostEntry = "Git.Example.com,[10.0.0.5]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA comment"
            .parse()
            .unwrap();
        assert_eq!(
            entry.to_string(),
            "git.example.com,[10.0.0.5]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"
        );
        for bad in [
            "",
            "host",
            "host ssh-ed25519",
            "|1|abc= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "@revoked host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "-oProxyCommand=x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "host ssh-dss AAAAC3NzaC1lZDI1NTE5AAAAIA",
            "host ssh-ed25519 AAAA$(id)AAAAAAAAAA",
            "[host]:0 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
        ] {
            assert!(bad.parse::<KnownHostEntry>().is_err(), "{bad:?}");
        }
        assert_eq!(pinned_entries().len(), 9);
    }

    #[test]
    fn merging_keeps_other_lines_and_adds_missing_keys_once() {
        let wanted = pinned_entries();
        let merged = merge_known_hosts("", &wanted);
        assert_eq!(
            merged,
            PINNED_KNOWN_HOSTS
                .iter()
                .map(|line| format!("{line}\n"))
                .collect::<String>()
        );
        assert_eq!(merge_known_hosts(&merged, &wanted), merged, "merging is idempotent");

        let old_github_rsa = "github.com ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa";
        let current = format!(
            "# my hosts\n|1|hash=|x= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC\n{old_github_rsa}\n{}\n",
            PINNED_KNOWN_HOSTS[0]
        );
        let merged = merge_known_hosts(&current, &wanted);
        assert!(merged.starts_with(&current), "every line stays:\n{merged}");
        assert!(merged.contains(old_github_rsa));
        // A key a user added for a pinned host stays too.
        let added = format!("{current}github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDnew\n");
        assert!(merge_known_hosts(&added, &wanted).starts_with(&added));
        for line in PINNED_KNOWN_HOSTS {
            assert_eq!(merged.matches(line).count(), 1, "{line}");
        }
        // A file without a final newline gets one before the appended lines.
        let merged = merge_known_hosts("example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC", &wanted);
        assert!(merged.starts_with("example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC\ngithub.com "));
    }

    #[test]
    fn branch_heads_and_git_failures() {
        let main: GitBranch = "main".parse().unwrap();
        let sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
        let output = ProbeOutput::success(format!(
            "1111111111111111111111111111111111111111\trefs/heads/x/refs/heads/main\n{sha}\trefs/heads/main\n"
        ));
        assert_eq!(parse_branch_head(&output, &main).unwrap().as_str(), sha);
        assert_eq!(
            parse_branch_head(&ProbeOutput::new(2, "", ""), &main),
            Err(GitRemoteError::BranchNotFound {
                branch: "main".to_owned()
            })
        );
        let cases = [
            (
                "Host key verification failed.\nfatal: Could not read from remote repository.",
                GitRemoteError::HostKeyUnknown,
            ),
            (
                "No ED25519 host key is known for git.example.com and you have requested strict checking.",
                GitRemoteError::HostKeyUnknown,
            ),
            (
                "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
                GitRemoteError::HostKeyChanged,
            ),
            (
                "git@github.com: Permission denied (publickey).",
                GitRemoteError::AccessDenied,
            ),
            (
                "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
                GitRemoteError::AccessDenied,
            ),
            (
                "ERROR: Repository not found.\nfatal: Could not read from remote repository.",
                GitRemoteError::RepositoryNotFound,
            ),
            (
                "fatal: '/srv/x' does not appear to be a git repository",
                GitRemoteError::RepositoryNotFound,
            ),
            (
                "ssh: Could not resolve hostname gitt.example.com: Name or service not known",
                GitRemoteError::Unreachable {
                    detail: "ssh: Could not resolve hostname gitt.example.com: Name or service not known".to_owned(),
                },
            ),
        ];
        for (stderr, expected) in cases {
            assert_eq!(
                parse_branch_head(&ProbeOutput::new(128, "", stderr), &main),
                Err(expected),
                "{stderr}"
            );
        }
        assert_eq!(
            parse_branch_head(&ProbeOutput::new(129, "", "usage: git ls-remote\n"), &main),
            Err(GitRemoteError::Other {
                exit_code: 129,
                detail: "usage: git ls-remote".to_owned()
            })
        );
    }
}

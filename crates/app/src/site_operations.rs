//! Stored sites read back into the site package's inputs: what installing, removing,
//! deploying and rolling back a site needs. Rows are written from validated values
//! only, so reading one fails only if someone edited the table by hand; that is an
//! internal error naming the site, never a user's fault. Also the Git steps a
//! deployment's job takes before the package's own: the known hosts, the branch
//! probe, and reading the deployed commit's author and subject.

use std::time::Duration;

use brokeforge_core::{Domain, GitBranch, PhpVersion, RemoteUser};
use brokeforge_db::sites::SiteRecord;
use brokeforge_packages::facts::{FactProbe, ProbeOutput};
use brokeforge_packages::site::deploy::{SiteDeployInput, SiteRollbackInput};
use brokeforge_packages::site::git::{
    self, GitKey, GitKnownHostsInput, GitKnownHostsInstall, KnownHostEntry, resolve_branch_probe,
};
use brokeforge_packages::site::install::{SiteInstallInput, SiteRemoveInput};
use brokeforge_packages::site::{CommitSha, DeployScript, GitRepositoryUrl, KeepReleases, ReleaseId, SiteLayout};
use brokeforge_ssh::CommandOutput;

use crate::error::AppError;
use crate::operations::{EventTarget, OperationEnvironment, OperationError, PackageOperation};

fn parsed<T: std::str::FromStr>(site: &SiteRecord, what: &str, text: &str) -> Result<T, AppError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|error| AppError::internal(format!("site {} has an unreadable {what}: {error}", site.id)))
}

/// The site's domain.
pub fn domain(site: &SiteRecord) -> Result<Domain, AppError> {
    parsed(site, "domain", &site.domain)
}

/// Where the site lives on its server.
pub fn layout(site: &SiteRecord) -> Result<SiteLayout, AppError> {
    Ok(SiteLayout::new(&domain(site)?))
}

/// What installing the site needs.
pub fn install_input(site: &SiteRecord) -> Result<SiteInstallInput, AppError> {
    let aliases = site
        .aliases
        .0
        .iter()
        .map(|alias| parsed::<Domain>(site, "alias", alias))
        .collect::<Result<Vec<_>, _>>()?;
    let php_version = site
        .php_version
        .as_deref()
        .map(|version| parsed(site, "PHP version", version))
        .transpose()?;
    let input = SiteInstallInput::new(domain(site)?, parsed(site, "type", &site.site_type)?, php_version)
        .and_then(|input| input.with_aliases(aliases))
        .and_then(|input| input.with_www(site.www))
        .map_err(|error| AppError::internal(format!("site {} cannot be installed: {error}", site.id)))?;
    Ok(input.with_web_directory(parsed(site, "web directory", &site.web_directory)?))
}

/// The operation that installs (or brings up to date) the site.
pub fn install(site: &SiteRecord) -> Result<PackageOperation, AppError> {
    Ok(PackageOperation::SiteInstall(install_input(site)?))
}

/// The operation that removes the site from its server.
pub fn remove(site: &SiteRecord) -> Result<PackageOperation, AppError> {
    Ok(PackageOperation::SiteRemove(SiteRemoveInput { domain: domain(site)? }))
}

/// The site's repository and branch, if it deploys from Git.
pub fn git(site: &SiteRecord) -> Result<Option<(GitRepositoryUrl, GitBranch)>, AppError> {
    match (&site.git_repository, &site.git_branch) {
        (Some(repository), Some(branch)) => Ok(Some((
            parsed(site, "repository", repository)?,
            parsed(site, "branch", branch)?,
        ))),
        _ => Ok(None),
    }
}

/// The key the site's Git fetches log in with: its own once it has one.
pub fn git_key(site: &SiteRecord) -> Result<GitKey, AppError> {
    Ok(match site.deploy_key_public {
        Some(_) => GitKey::Site { domain: domain(site)? },
        None => GitKey::Server,
    })
}

/// The host keys the site pins for its own Git server.
pub fn extra_known_hosts(site: &SiteRecord) -> Result<Vec<KnownHostEntry>, AppError> {
    site.git_host_keys
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| parsed(site, "Git host key", line))
        .collect()
}

/// The site's deploy script.
pub fn deploy_script(site: &SiteRecord) -> Result<DeployScript, AppError> {
    parsed(site, "deploy script", &site.deploy_script)
}

/// How many releases the site keeps.
pub fn keep_releases(site: &SiteRecord) -> KeepReleases {
    u32::try_from(site.keep_releases)
        .ok()
        .and_then(|count| KeepReleases::new(count).ok())
        .unwrap_or_default()
}

/// The operation that builds `commit` as `release` and makes it live.
pub fn deploy(site: &SiteRecord, release: &ReleaseId, commit: &CommitSha) -> Result<PackageOperation, AppError> {
    let Some((repository, _)) = git(site)? else {
        return Err(AppError::Conflict(
            "the site has no Git repository; set one in its deploy settings".to_owned(),
        ));
    };
    let php_version = php_version(site)?;
    let mut input = SiteDeployInput::new(
        domain(site)?,
        parsed(site, "type", &site.site_type)?,
        php_version,
        repository,
        commit.clone(),
        release.clone(),
    )
    .map_err(|error| AppError::internal(format!("site {} cannot be deployed: {error}", site.id)))?;
    input.deploy_script = deploy_script(site)?;
    input.keep_releases = keep_releases(site);
    input.git_key = git_key(site)?;
    input.extra_known_hosts = extra_known_hosts(site)?;
    Ok(PackageOperation::SiteDeploy(input))
}

/// The operation that makes the kept `release` live again.
pub fn rollback(site: &SiteRecord, release: &ReleaseId) -> Result<PackageOperation, AppError> {
    Ok(PackageOperation::SiteRollback(SiteRollbackInput {
        domain: domain(site)?,
        site_type: parsed(site, "type", &site.site_type)?,
        php_version: php_version(site)?,
        release: release.clone(),
    }))
}

fn php_version(site: &SiteRecord) -> Result<Option<PhpVersion>, AppError> {
    site.php_version
        .as_deref()
        .map(|version| parsed(site, "PHP version", version))
        .transpose()
}

/// The read-only probe that resolves `branch` of `repository` to its head commit,
/// as the site's Git commands reach it (its key and its pinned hosts).
pub fn branch_head_probe(
    site: &SiteRecord,
    repository: &GitRepositoryUrl,
    branch: &GitBranch,
) -> Result<FactProbe, AppError> {
    Ok(resolve_branch_probe(
        repository,
        branch,
        &git_key(site)?,
        &domain(site)?,
    ))
}

/// Reads the probe's output: the head commit, or what went wrong and how to fix it.
pub fn parse_branch_head(
    repository: &GitRepositoryUrl,
    branch: &GitBranch,
    output: &CommandOutput,
) -> Result<CommitSha, String> {
    let probe_output = ProbeOutput::new(
        u32::try_from(output.exit_code).unwrap_or(255),
        output.stdout_text(),
        output.stderr_text(),
    );
    git::parse_branch_head(&probe_output, branch).map_err(|error| format!("{repository}: {error}"))
}

/// Makes sure brokeforge's `known_hosts` holds the pinned keys of the big Git hosts
/// and the site's own file the host keys it pins, so the branch probe can reach them
/// (a deployment's own fetch does the same).
pub async fn ensure_known_hosts(
    environment: &OperationEnvironment,
    events: EventTarget,
    job_id: i64,
    site: &SiteRecord,
) -> Result<(), OperationError> {
    let refused = |error: AppError| OperationError::Refused(error.to_string());
    let input = GitKnownHostsInput {
        extra_hosts: extra_known_hosts(site).map_err(refused)?,
        site: Some(domain(site).map_err(refused)?),
    };
    crate::operations::execute::<GitKnownHostsInstall>(environment, events, Some(job_id), &input)
        .await
        .map(|_| ())
}

/// The author and the subject of `commit`, read from the site's mirror on the server
/// as brokeforge. `None` when they cannot be read; the deployment is recorded without.
pub async fn commit_details(
    environment: &OperationEnvironment,
    site: &SiteRecord,
    commit: &str,
) -> Option<(Option<String>, Option<String>)> {
    let layout = layout(site).ok()?;
    let commit = commit.parse::<CommitSha>().ok()?;
    let cmd = git::git_cmd(&GitKey::Server, None)
        .lit("--git-dir")
        .arg(layout.repository_cache())
        .lit("log")
        .lit("-1")
        .lit("--format=%an%n%s")
        .arg(&commit)
        .lit("--");
    let target = crate::operations::target(environment, site.server_id, RemoteUser::BrokeForge)
        .await
        .ok()?;
    let output = environment
        .ssh
        .run_command(&target, &cmd, Duration::from_secs(30))
        .await
        .ok()?;
    if output.exit_code != 0 {
        return None;
    }
    let text = output.stdout_text();
    let mut lines = text.lines();
    let clip = |line: Option<&str>, max: usize| {
        line.map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.chars().take(max).collect::<String>())
    };
    let author = clip(lines.next(), 200);
    let message = clip(lines.next(), 500);
    Some((author, message))
}

/// Runs one read-only probe on the site's server, as the probe's account. The raw
/// output comes back; reading it is the caller's job.
pub async fn run_probe(
    environment: &OperationEnvironment,
    server_id: i64,
    probe: &FactProbe,
) -> Result<CommandOutput, AppError> {
    let target = crate::operations::target(environment, server_id, probe.as_user())
        .await
        .map_err(remote_error)?;
    environment
        .ssh
        .run_command(&target, probe.cmd(), probe.timeout())
        .await
        .map_err(|error| remote_error(OperationError::Ssh(error)))
}

/// The probe's output as the packages' parsers read it.
pub fn probe_output(output: &CommandOutput) -> ProbeOutput {
    ProbeOutput::new(
        u32::try_from(output.exit_code).unwrap_or(255),
        output.stdout_text(),
        output.stderr_text(),
    )
}

/// An operation run at request time that did not complete, as the caller sees it:
/// a server that cannot be reached or is not ready is a conflict with the server's
/// state (the message says which, free of secrets), a plan the package refused is
/// invalid input on `path`, and a broken credential or database is internal.
pub fn remote_error(error: OperationError) -> AppError {
    match error {
        OperationError::ServerGone(_) => AppError::NotFound("site"),
        OperationError::Refused(message) => {
            AppError::Validation(crate::FieldErrors::single("path", crate::sites::sentence(&message)))
        }
        error @ (OperationError::NotBootstrapped(_)
        | OperationError::MissingCredentials { .. }
        | OperationError::Ssh(_)
        | OperationError::Facts(_)) => AppError::Conflict(crate::sites::sentence(&error.to_string())),
        error @ (OperationError::BadCredentials { .. } | OperationError::Database(_)) => AppError::internal(error),
    }
}

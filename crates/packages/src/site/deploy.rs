//! Deployments and rollbacks, as brokeforge.
//!
//! [`SiteDeploy`] builds one release of one exact commit (the application resolves a
//! branch to its head with [`super::git::resolve_branch_probe`] first, or takes the
//! commit a webhook names) and makes it live without downtime:
//!
//! 1. **prepare**: remove releases an earlier deployment left unfinished (no
//!    [`RELEASE_MARKER`]; never the live one), create `releases/<id>`; for PHP sites,
//!    link `.brokeforge/bin/php` to the site's PHP version;
//! 2. **fetch**: make sure `known_hosts` holds the pinned Git host keys (and the
//!    site's own Git server's), then, with the site's [`GitKey`], update
//!    the bare mirror `repository.git` (`git clone --mirror` the first time, else
//!    `git remote set-url` to the current URL and `git fetch --prune`);
//! 3. **check out**: check the commit is in the mirror (a clear error if it was
//!    force-pushed away), then `git archive <commit> | tar -x` into the release (no
//!    `.git` directory in releases; `BROKEFORGE_COMMIT` names the commit), with umask
//!    022 so nginx can read the static files;
//! 4. **link shared paths**: each shared path is created in `shared/` when missing
//!    (seeded from the release when the repository has it, such as Laravel's
//!    `storage` skeleton; otherwise an empty directory, or an empty file with mode
//!    0600), then replaces the release's copy with a link. A shared path whose parent
//!    leads out of the release through a symbolic link in the repository is refused;
//! 5. **build**: the deploy script is uploaded as bytes to
//!    `<release>/.brokeforge-deploy.sh` (mode 0700) and run by
//!    `bash -euo pipefail` in the release, with the script timeout, stdin closed and
//!    its output streamed as the step's output. Its environment: `BROKEFORGE_DOMAIN`,
//!    `BROKEFORGE_SITE_DIR`, `BROKEFORGE_RELEASE`, `BROKEFORGE_RELEASE_DIR`,
//!    `BROKEFORGE_SHARED_DIR`, `BROKEFORGE_COMMIT`, and for PHP sites a `PATH` that
//!    starts with `.brokeforge/bin`, so `php` runs the site's PHP version (and so does
//!    Composer when its script starts with `#!/usr/bin/env php`, as the official
//!    installer's does). The release has no `.git` directory. On success the release
//!    gets its marker;
//! 6. **activate**: for PHP sites, check that the version's PHP-FPM runs (a stopped
//!    one fails here, before anything is live); then `ln -sfn releases/<id>
//!    current.tmp-<id> && mv -fT current.tmp-<id> current`: `rename(2)` replaces the
//!    link in one step, so every request sees either the old release or the new one;
//! 7. **reload PHP-FPM** (PHP types): `sudo -n /usr/bin/systemctl reload phpX.Y-fpm`,
//!    one of the bootstrap's sudo rules, so workers drop their caches;
//! 8. **prune**: keep `keep_releases` releases, the live one included: the newest
//!    finished ones; unfinished ones and older ones are removed, never the live one.
//!
//! # Failures
//!
//! The step runner stops at the first failed step, so a failing checkout, shared link
//! or deploy script (or its timeout) stops the deployment before the switch: `current`
//! still names the previous release and nothing was reloaded. The half-built release
//! is left as it is, without its marker, for the user to inspect in the file explorer;
//! it can never go live or be rolled back to, and the next deployment's first step
//! removes it (so at most one failed build stays on disk). A retried job is safe: a
//! release already live is not rebuilt, a finished one is switched to, an unfinished
//! one is built again from scratch.
//!
//! [`SiteRollback`] switches `current` to a kept, finished release (refusing a missing
//! or unfinished one with the list of releases it could use) and reloads PHP-FPM.

use std::time::Duration;

use brokeforge_core::{Cmd, Domain, PhpVersion, Plan, Record, ShellArg};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::facts::{
    FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput, parse_file_contents, parse_path_kinds,
    path_kinds_cmd,
};
use crate::framework::{Action, Operation, Package};
use crate::php::names::{cli_binary_path, fpm_service};

use super::git::{
    GitKey, KNOWN_HOSTS_PROBE, KnownHostEntry, SITE_KNOWN_HOSTS_PROBE, git_cmd, known_hosts_probe, pinned_entries,
    site_known_hosts_probe, write_known_hosts_steps, write_site_known_hosts_steps,
};
use super::install::{link_target_cmd, parse_link_target};
use super::layout::{DEPLOY_SCRIPT_FILE, RELEASE_MARKER, SiteLayout, deserialize_site_domain};
use super::values::{CommitSha, DeployScript, DeployTimeout, GitRepositoryUrl, KeepReleases, ReleaseId, SharedPaths};
use super::{Deployment, SitePhpError, SiteType, check_php_version};

/// How long fetching or cloning the repository may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What deploying a site needs. The application fills it from the site's settings and
/// the commit it resolved; [`SiteDeployInput::new`] takes the type's defaults for the
/// rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDeployInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
    pub site_type: SiteType,
    /// The site's PHP version: required for the PHP types, absent for static sites.
    #[serde(default)]
    pub php_version: Option<PhpVersion>,
    pub repository: GitRepositoryUrl,
    /// The exact commit to deploy.
    pub commit: CommitSha,
    /// The new release's id: the UTC time the deployment was asked for.
    pub release: ReleaseId,
    pub shared_paths: SharedPaths,
    pub deploy_script: DeployScript,
    #[serde(default)]
    pub keep_releases: KeepReleases,
    #[serde(default)]
    pub script_timeout: DeployTimeout,
    /// The key Git logs in with: the server's deploy key unless the site has its own.
    #[serde(default)]
    pub git_key: GitKey,
    /// Host keys of the site's own Git server, pinned next to the built-in ones.
    #[serde(default)]
    pub extra_known_hosts: Vec<KnownHostEntry>,
}

impl SiteDeployInput {
    /// A deployment of `commit` as `release`, with the type's shared paths and deploy
    /// script, 5 releases kept and a 15-minute script timeout. Checks the PHP version
    /// against the type.
    pub fn new(
        domain: Domain,
        site_type: SiteType,
        php_version: Option<PhpVersion>,
        repository: GitRepositoryUrl,
        commit: CommitSha,
        release: ReleaseId,
    ) -> Result<Self, SitePhpError> {
        check_php_version(site_type, php_version)?;
        Ok(SiteDeployInput {
            domain,
            site_type,
            php_version,
            repository,
            commit,
            release,
            shared_paths: site_type.default_shared_paths(),
            deploy_script: site_type.default_deploy_script(),
            keep_releases: KeepReleases::default(),
            script_timeout: DeployTimeout::default(),
            git_key: GitKey::Server,
            extra_known_hosts: Vec::new(),
        })
    }
}

/// One release on the server and whether its deployment finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseState {
    pub id: ReleaseId,
    /// Whether the release holds [`RELEASE_MARKER`]: its deploy script succeeded.
    pub finished: bool,
}

/// Lists the directories of `releases/`, run as `sh -c SCRIPT sh RELEASES`: one
/// `NAME finished|unfinished` line each; nothing when `releases/` does not exist.
const LIST_RELEASES_SCRIPT: &str = concat!(
    "'",
    r#"cd -- "$1" 2>/dev/null || exit 0; for d in */; do n=${d%/}; [ -d "$n" ] || continue; "#,
    r#"if [ -e "$n/.brokeforge-release" ]; then echo "$n finished"; else echo "$n unfinished"; fi; done"#,
    "'",
);

/// The probe command that lists a site's releases.
pub fn releases_cmd(layout: &SiteLayout) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(LIST_RELEASES_SCRIPT)
        .lit("sh")
        .arg(layout.releases())
}

/// Parses the output of [`releases_cmd`], oldest first. Directories that are not
/// release ids are left out.
pub fn parse_releases(output: &ProbeOutput) -> Result<Vec<ReleaseState>, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Err(UnexpectedOutput("listing the releases failed".to_owned()));
    }
    let mut releases = Vec::new();
    for line in output.stdout.lines().filter(|line| !line.is_empty()) {
        let (name, state) = line
            .rsplit_once(' ')
            .ok_or_else(|| UnexpectedOutput(format!("expected \"NAME finished|unfinished\", got {line:?}")))?;
        let finished = match state {
            "finished" => true,
            "unfinished" => false,
            _ => {
                return Err(UnexpectedOutput(format!(
                    "expected \"NAME finished|unfinished\", got {line:?}"
                )));
            }
        };
        if let Ok(id) = name.parse() {
            releases.push(ReleaseState { id, finished });
        }
    }
    releases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(releases)
}

/// The live release named by the target of `current`: `releases/<id>` (or an absolute
/// path ending so).
pub fn current_release(target: &str) -> Option<ReleaseId> {
    let (parent, name) = target.trim_end_matches('/').rsplit_once('/')?;
    if parent == "releases" || parent.ends_with("/releases") {
        name.parse().ok()
    } else {
        None
    }
}

/// Probe keys.
const SITE_PATHS_PROBE: &str = "deploy_site_paths";
const RELEASES_PROBE: &str = "deploy_releases";
const CURRENT_PROBE: &str = "deploy_current";

/// What deploying or rolling back reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// Whether the site's directory exists.
    pub site_exists: bool,
    /// Whether the repository's mirror exists.
    pub mirror_exists: bool,
    /// The releases, oldest first.
    pub releases: Vec<ReleaseState>,
    /// The live release, if `current` names one.
    pub current: Option<ReleaseId>,
    /// brokeforge's `known_hosts`, if it exists (deployments only; `None` for
    /// rollbacks).
    pub known_hosts: Option<String>,
    /// The site's own known hosts file, if it exists (deployments only).
    pub site_known_hosts: Option<String>,
}

impl DeploymentFacts {
    fn release(&self, id: &ReleaseId) -> Option<&ReleaseState> {
        self.releases.iter().find(|release| release.id == *id)
    }
}

fn deployment_probes(layout: &SiteLayout, known_hosts: bool) -> Vec<FactProbe> {
    let mut probes = vec![
        FactProbe::new::<Deployment>(
            SITE_PATHS_PROBE,
            path_kinds_cmd(&[layout.root().clone(), layout.repository_cache()]),
        ),
        FactProbe::new::<Deployment>(RELEASES_PROBE, releases_cmd(layout)),
        FactProbe::new::<Deployment>(CURRENT_PROBE, link_target_cmd(&layout.current())),
    ];
    if known_hosts {
        probes.push(known_hosts_probe::<Deployment>());
        probes.push(site_known_hosts_probe::<Deployment>(layout.domain()));
    }
    probes
}

fn parse_deployment_facts(
    layout: &SiteLayout,
    outputs: &ProbeOutputs,
    known_hosts: bool,
) -> Result<DeploymentFacts, FactError> {
    let paths = [layout.root().clone(), layout.repository_cache()];
    let kinds = outputs.read(SITE_PATHS_PROBE, |output| parse_path_kinds(output, &paths))?;
    Ok(DeploymentFacts {
        site_exists: kinds[0].is_some(),
        mirror_exists: kinds[1].is_some(),
        releases: outputs.read(RELEASES_PROBE, parse_releases)?,
        current: outputs
            .read(CURRENT_PROBE, parse_link_target)?
            .as_deref()
            .and_then(current_release),
        known_hosts: if known_hosts {
            outputs.read(KNOWN_HOSTS_PROBE, parse_file_contents)?
        } else {
            None
        },
        site_known_hosts: if known_hosts {
            outputs.read(SITE_KNOWN_HOSTS_PROBE, parse_file_contents)?
        } else {
            None
        },
    })
}

/// Prepares a release directory, run as `sh -c SCRIPT sh SITE ID`: removes every
/// release directory that is neither live nor finished (and an earlier attempt at
/// `ID`), then creates `releases/ID`.
const PREPARE_SCRIPT: &str = concat!(
    "'",
    r#"site=$1 id=$2; mkdir -p -- "$site/releases" "$site/shared" || exit 1; "#,
    r#"current=$(readlink -- "$site/current") || current=; current=${current##*/}; "#,
    r#"for dir in "$site"/releases/*; do name=${dir##*/}; "#,
    r#"case $name in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;; *) continue ;; esac; "#,
    r#"[ "$name" = "$current" ] && continue; "#,
    r#"if [ "$name" = "$id" ] || [ ! -e "$dir/.brokeforge-release" ]; then rm -rf -- "$dir" || exit 1; fi; done; "#,
    r#"mkdir -- "$site/releases/$id""#,
    "'",
);

/// Checks out one commit of the mirror into the release, run as
/// `bash -c SCRIPT bash MIRROR COMMIT RELEASE`.
const CHECKOUT_SCRIPT: &str = concat!(
    "'",
    r#"set -o pipefail; umask 022; mirror=$1 commit=$2 release=$3; "#,
    r#"if ! git --git-dir "$mirror" cat-file -e "$commit^{commit}" 2>/dev/null; then "#,
    r#"echo "commit $commit is not in the repository: it may have been force-pushed away; deploy the branch again to get its current head" >&2; exit 1; fi; "#,
    r#"git --git-dir "$mirror" archive --format=tar "$commit" | tar -x -f - -C "$release" && "#,
    r#"rm -f -- "$release/.brokeforge-release" "$release/.brokeforge-deploy.sh""#,
    "'",
);

/// Links the shared paths into the release, run as
/// `sh -c SCRIPT sh SITE RELEASE KIND PATH [KIND PATH]...` (see the module
/// documentation, step 4).
const LINK_SHARED_SCRIPT: &str = concat!(
    "'",
    r#"site=$1 release=$2; shift 2; root=$(cd -P -- "$release" && pwd) || exit 1; "#,
    r#"while [ $# -ge 2 ]; do kind=$1 rel=$2; shift 2; shared=$site/shared/$rel target=$release/$rel; "#,
    r#"parent=${target%/*}; mkdir -p -- "$parent" || exit 1; real=$(cd -P -- "$parent" && pwd) || exit 1; "#,
    r#"case $real/ in "$root"/*) ;; *) echo "the shared path $rel leads out of the release through a symbolic link in the repository; remove that link from the repository" >&2; exit 1 ;; esac; "#,
    r#"if [ ! -e "$shared" ] && [ ! -L "$shared" ]; then mkdir -p -- "${shared%/*}" || exit 1; "#,
    r#"if [ "$kind" = dir ]; then if [ -d "$target" ] && [ ! -L "$target" ]; then cp -a -- "$target" "$shared" || exit 1; "#,
    r#"else mkdir -m 0755 -- "$shared" || exit 1; fi; "#,
    r#"elif [ -f "$target" ] && [ ! -L "$target" ]; then cp -p -- "$target" "$shared" || exit 1; "#,
    r#"else (umask 077 && : >"$shared") || exit 1; fi; fi; "#,
    r#"rm -rf -- "$target" && ln -s -- "$shared" "$target" || exit 1; done"#,
    "'",
);

/// Runs the deploy script in the release, run as `bash -c SCRIPT bash RELEASE BIN`:
/// `BIN` (empty for none) goes first on `PATH`.
const RUN_SCRIPT: &str = concat!(
    "'",
    r#"cd -- "$1" || exit 1; if [ -n "$2" ]; then PATH=$2:$PATH; export PATH; fi; "#,
    r#"exec bash -euo pipefail ./.brokeforge-deploy.sh"#,
    "'",
);

/// Removes old releases, run as `sh -c SCRIPT sh SITE KEEP`: keeps the live release
/// and the newest finished ones up to `KEEP` in all, removes the rest (unfinished ones
/// first of all). Only directories named like release ids are considered.
const PRUNE_SCRIPT: &str = concat!(
    "'",
    r#"site=$1 keep=$2; current=$(readlink -- "$site/current") || current=; current=${current##*/}; "#,
    r#"slots=$keep; if [ -n "$current" ] && [ -d "$site/releases/$current" ]; then slots=$((keep - 1)); fi; kept=0; "#,
    r#"list=; for dir in "$site"/releases/*; do list="${dir##*/} $list"; done; for name in $list; do "#,
    r#"case $name in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;; *) continue ;; esac; "#,
    r#"[ "$name" = "$current" ] && continue; dir=$site/releases/$name; "#,
    r#"if [ -e "$dir/.brokeforge-release" ] && [ "$kept" -lt "$slots" ]; then kept=$((kept + 1)); continue; fi; "#,
    r#"rm -rf -- "$dir" || exit 1; done"#,
    "'",
);

/// The command that prepares `release` (see [`PREPARE_SCRIPT`]).
pub fn prepare_release_cmd(layout: &SiteLayout, release: &ReleaseId) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(PREPARE_SCRIPT)
        .lit("sh")
        .arg(layout.root())
        .arg(release)
}

/// The command that links the shared paths into `release`.
pub fn link_shared_cmd(layout: &SiteLayout, release: &ReleaseId, shared: &SharedPaths) -> Cmd {
    let cmd = Cmd::new("sh")
        .lit("-c")
        .lit(LINK_SHARED_SCRIPT)
        .lit("sh")
        .arg(layout.root())
        .arg(layout.release(release));
    shared
        .as_slice()
        .iter()
        .fold(cmd, |cmd, shared| cmd.lit(shared.kind.script_word()).arg(&shared.path))
}

/// The command that makes `release` live atomically.
pub fn switch_current_cmd(layout: &SiteLayout, release: &ReleaseId) -> Cmd {
    let temporary = layout.current_temporary(release);
    Cmd::new("ln")
        .lit("-sfn")
        .lit("--")
        .arg(ShellArg::new(SiteLayout::current_target(release)).expect("digits"))
        .arg(&temporary)
        .and(
            Cmd::new("mv")
                .lit("-fT")
                .lit("--")
                .arg(&temporary)
                .arg(layout.current()),
        )
}

/// The command that removes old releases, keeping `keep` (see [`PRUNE_SCRIPT`]).
pub fn prune_releases_cmd(layout: &SiteLayout, keep: KeepReleases) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(PRUNE_SCRIPT)
        .lit("sh")
        .arg(layout.root())
        .arg(keep.get())
}

/// Checks that PHP-FPM runs, run as `sh -c SCRIPT sh SERVICE`, before `current`
/// switches: a stopped PHP-FPM could not serve the new release and its reload after
/// the switch would fail with the release already live.
const FPM_RUNNING_SCRIPT: &str = concat!(
    "'",
    r#"systemctl is-active --quiet -- "$1" && exit 0; "#,
    r#"echo "$1 is not running, so no release can be served: start it (systemctl start $1) and deploy again; the live release was left as it was" >&2; "#,
    r#"exit 1"#,
    "'",
);

/// The check that the version's PHP-FPM runs (see [`FPM_RUNNING_SCRIPT`]).
pub fn fpm_running_cmd(version: PhpVersion) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(FPM_RUNNING_SCRIPT)
        .lit("sh")
        .arg(fpm_service(version))
}

/// `sudo -n /usr/bin/systemctl reload phpX.Y-fpm`, exactly the bootstrap's sudo rule
/// [`SudoRule::ReloadPhpFpm`](crate::bootstrap::SudoRule::ReloadPhpFpm).
pub fn reload_fpm_cmd(version: PhpVersion) -> Cmd {
    Cmd::new("sudo")
        .lit("-n")
        .lit("/usr/bin/systemctl")
        .lit("reload")
        .arg(fpm_service(version))
}

/// The command that runs the uploaded deploy script in `release`.
pub fn run_deploy_script_cmd(input: &SiteDeployInput, layout: &SiteLayout) -> Cmd {
    let release = layout.release(&input.release);
    let bin = match input.php_version {
        Some(_) => ShellArg::from(&layout.tools_bin()),
        None => ShellArg::new("").expect("empty"),
    };
    Cmd::new("bash")
        .env("BROKEFORGE_DOMAIN", &input.domain)
        .env("BROKEFORGE_SITE_DIR", layout.root())
        .env("BROKEFORGE_RELEASE", &input.release)
        .env("BROKEFORGE_RELEASE_DIR", &release)
        .env("BROKEFORGE_SHARED_DIR", layout.shared())
        .env("BROKEFORGE_COMMIT", &input.commit)
        .lit("-c")
        .lit(RUN_SCRIPT)
        .lit("bash")
        .arg(&release)
        .arg(bin)
}

/// Why a deployment refuses to plan.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteDeployError {
    #[error(transparent)]
    Php(#[from] SitePhpError),
    #[error("the site's directory {path} does not exist on the server; install the site first")]
    SiteMissing { path: String },
}

milestones! {
    /// Milestones of deploying a site.
    pub enum SiteDeployMilestone {
        PrepareRelease => ("prepare_release", "Preparing the release directory"),
        FetchRepository => ("fetch_repository", "Fetching the repository"),
        CheckOut => ("check_out", "Checking out the commit"),
        LinkShared => ("link_shared", "Linking shared files"),
        RunDeployScript => ("run_deploy_script", "Running the deploy script"),
        Activate => ("activate", "Switching to the new release"),
        ReloadPhpFpm => ("reload_php_fpm", "Reloading PHP-FPM"),
        PruneReleases => ("prune_releases", "Removing old releases"),
        Complete => ("complete", "Complete"),
    }
}

/// Deploys one commit of a site's repository as a new release (see the module
/// documentation).
pub struct SiteDeploy;

impl Operation for SiteDeploy {
    type Package = Deployment;
    const ACTION: Action = Action::Install;
    type Milestone = SiteDeployMilestone;
    type Input = SiteDeployInput;
    type Facts = DeploymentFacts;
    type Error = SiteDeployError;

    fn fact_probes(input: &SiteDeployInput) -> Vec<FactProbe> {
        deployment_probes(&SiteLayout::new(&input.domain), true)
    }

    fn parse_facts(input: &SiteDeployInput, outputs: &ProbeOutputs) -> Result<DeploymentFacts, FactError> {
        parse_deployment_facts(&SiteLayout::new(&input.domain), outputs, true)
    }

    fn plan(input: &SiteDeployInput, facts: &DeploymentFacts) -> Result<Plan, SiteDeployError> {
        check_php_version(input.site_type, input.php_version)?;
        let layout = SiteLayout::new(&input.domain);
        if !facts.site_exists {
            return Err(SiteDeployError::SiteMissing {
                path: layout.root().to_string(),
            });
        }
        let live = facts.current.as_ref() == Some(&input.release);
        let finished = facts.release(&input.release).is_some_and(|release| release.finished);
        // A retried job: a release already live or already built is not built again.
        let build = !live && !finished;
        let release = layout.release(&input.release);
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(SiteDeployMilestone::PrepareRelease);
        if build {
            steps.run(prepare_release_cmd(&layout, &input.release));
            if let Some(version) = input.php_version {
                let bin = layout.tools_bin();
                steps.run(
                    Cmd::new("mkdir").lit("-p").lit("--").arg(&bin).and(
                        Cmd::new("ln")
                            .lit("-sfn")
                            .lit("--")
                            .arg(cli_binary_path(version))
                            .arg(bin.join("php").expect("a fixed name")),
                    ),
                );
            }
        }

        let steps = plan.milestone(SiteDeployMilestone::FetchRepository);
        if build {
            write_known_hosts_steps(steps, facts.known_hosts.as_deref(), &pinned_entries());
            write_site_known_hosts_steps(
                steps,
                facts.site_known_hosts.as_deref(),
                &input.domain,
                &input.extra_known_hosts,
            );
            let mirror = layout.repository_cache();
            if facts.mirror_exists {
                steps.run_with_timeout(
                    git_cmd(&input.git_key, Some(&input.domain))
                        .lit("--git-dir")
                        .arg(&mirror)
                        .lit("remote")
                        .lit("set-url")
                        .lit("origin")
                        .lit("--")
                        .arg(&input.repository)
                        .and(
                            git_cmd(&input.git_key, Some(&input.domain))
                                .lit("--git-dir")
                                .arg(&mirror)
                                .lit("fetch")
                                .lit("--prune")
                                .lit("--quiet")
                                .lit("origin"),
                        ),
                    FETCH_TIMEOUT,
                );
            } else {
                steps.run_with_timeout(
                    git_cmd(&input.git_key, Some(&input.domain))
                        .lit("clone")
                        .lit("--mirror")
                        .lit("--quiet")
                        .lit("--")
                        .arg(&input.repository)
                        .arg(&mirror),
                    FETCH_TIMEOUT,
                );
            }
        }

        let steps = plan.milestone(SiteDeployMilestone::CheckOut);
        if build {
            steps.run(
                Cmd::new("bash")
                    .lit("-c")
                    .lit(CHECKOUT_SCRIPT)
                    .lit("bash")
                    .arg(layout.repository_cache())
                    .arg(&input.commit)
                    .arg(&release),
            );
        }

        let steps = plan.milestone(SiteDeployMilestone::LinkShared);
        if build && !input.shared_paths.is_empty() {
            steps.run(link_shared_cmd(&layout, &input.release, &input.shared_paths));
        }

        let steps = plan.milestone(SiteDeployMilestone::RunDeployScript);
        if build {
            if !input.deploy_script.is_blank() {
                steps
                    .upload(
                        release.join(DEPLOY_SCRIPT_FILE).expect("a fixed name"),
                        input.deploy_script.file_contents(),
                        0o700,
                        None,
                    )
                    .run_with_timeout(run_deploy_script_cmd(input, &layout), input.script_timeout.duration());
            }
            steps.upload(
                release.join(RELEASE_MARKER).expect("a fixed name"),
                format!("release={}\ncommit={}\n", input.release, input.commit),
                0o644,
                None,
            );
        }

        let steps = plan.milestone(SiteDeployMilestone::Activate);
        if !live {
            if let Some(version) = input.php_version {
                steps.run(fpm_running_cmd(version));
            }
            steps.run(switch_current_cmd(&layout, &input.release));
        }

        let steps = plan.milestone(SiteDeployMilestone::ReloadPhpFpm);
        if let Some(version) = input.php_version {
            steps.run(reload_fpm_cmd(version));
        }

        plan.milestone(SiteDeployMilestone::PruneReleases)
            .run(prune_releases_cmd(&layout, input.keep_releases));

        plan.milestone(SiteDeployMilestone::Complete).persist(
            Record::new(
                Deployment::TYPE.as_str(),
                Deployment::NAME.as_str(),
                input.release.as_str(),
            )
            .with_configuration(serde_json::json!({
                "release": input.release,
                "commit": input.commit,
                "repository": input.repository,
                "previous_release": if live { None } else { facts.current.as_ref() },
            })),
        );
        Ok(plan.finish())
    }
}

/// What rolling back needs: the site and the release to make live again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRollbackInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
    pub site_type: SiteType,
    /// The site's PHP version: required for the PHP types, absent for static sites.
    #[serde(default)]
    pub php_version: Option<PhpVersion>,
    pub release: ReleaseId,
}

/// Why a rollback refuses to plan. The messages are meant for users.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteRollbackError {
    #[error(transparent)]
    Php(#[from] SitePhpError),
    #[error("the site's directory {path} does not exist on the server")]
    SiteMissing { path: String },
    #[error("release {release} is not on the server (it may have been pruned); kept releases: {kept}")]
    ReleaseMissing { release: ReleaseId, kept: String },
    #[error("release {release} never finished deploying, so it cannot go live; kept releases: {kept}")]
    ReleaseUnfinished { release: ReleaseId, kept: String },
}

milestones! {
    /// Milestones of rolling back.
    pub enum SiteRollbackMilestone {
        Activate => ("activate", "Switching to the release"),
        ReloadPhpFpm => ("reload_php_fpm", "Reloading PHP-FPM"),
        Complete => ("complete", "Complete"),
    }
}

/// Makes a kept release live again. Nothing happens when it already is.
pub struct SiteRollback;

impl Operation for SiteRollback {
    type Package = Deployment;
    const ACTION: Action = Action::Update;
    type Milestone = SiteRollbackMilestone;
    type Input = SiteRollbackInput;
    type Facts = DeploymentFacts;
    type Error = SiteRollbackError;

    fn fact_probes(input: &SiteRollbackInput) -> Vec<FactProbe> {
        deployment_probes(&SiteLayout::new(&input.domain), false)
    }

    fn parse_facts(input: &SiteRollbackInput, outputs: &ProbeOutputs) -> Result<DeploymentFacts, FactError> {
        parse_deployment_facts(&SiteLayout::new(&input.domain), outputs, false)
    }

    fn plan(input: &SiteRollbackInput, facts: &DeploymentFacts) -> Result<Plan, SiteRollbackError> {
        check_php_version(input.site_type, input.php_version)?;
        let layout = SiteLayout::new(&input.domain);
        if !facts.site_exists {
            return Err(SiteRollbackError::SiteMissing {
                path: layout.root().to_string(),
            });
        }
        let kept = || {
            let finished: Vec<&str> = facts
                .releases
                .iter()
                .filter(|release| release.finished)
                .map(|release| release.id.as_str())
                .collect();
            if finished.is_empty() {
                "none".to_owned()
            } else {
                finished.join(", ")
            }
        };
        match facts.release(&input.release) {
            None => {
                return Err(SiteRollbackError::ReleaseMissing {
                    release: input.release.clone(),
                    kept: kept(),
                });
            }
            Some(release) if !release.finished => {
                return Err(SiteRollbackError::ReleaseUnfinished {
                    release: input.release.clone(),
                    kept: kept(),
                });
            }
            Some(_) => {}
        }
        let live = facts.current.as_ref() == Some(&input.release);
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(SiteRollbackMilestone::Activate);
        if !live {
            if let Some(version) = input.php_version {
                steps.run(fpm_running_cmd(version));
            }
            steps.run(switch_current_cmd(&layout, &input.release));
        }
        let steps = plan.milestone(SiteRollbackMilestone::ReloadPhpFpm);
        if !live && let Some(version) = input.php_version {
            steps.run(reload_fpm_cmd(version));
        }
        plan.milestone(SiteRollbackMilestone::Complete).persist(
            Record::new(
                Deployment::TYPE.as_str(),
                Deployment::NAME.as_str(),
                input.release.as_str(),
            )
            .with_configuration(serde_json::json!({
                "release": input.release,
                "previous_release": facts.current,
                "rollback": true,
            })),
        );
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::SudoRule;

    #[test]
    fn the_fpm_reload_is_exactly_the_sudo_rule() {
        for version in PhpVersion::ALL {
            let command = reload_fpm_cmd(*version).to_string();
            assert_eq!(
                command.strip_prefix("sudo -n "),
                Some(SudoRule::ReloadPhpFpm(*version).command().as_str())
            );
        }
    }

    #[test]
    fn the_scripts_are_single_quoted_words() {
        for script in [
            LIST_RELEASES_SCRIPT,
            PREPARE_SCRIPT,
            CHECKOUT_SCRIPT,
            LINK_SHARED_SCRIPT,
            RUN_SCRIPT,
            PRUNE_SCRIPT,
        ] {
            let inner = script
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap();
            assert!(!inner.contains(['\'', '\n']), "{script}");
        }
        assert!(PREPARE_SCRIPT.contains(RELEASE_MARKER) && PRUNE_SCRIPT.contains(RELEASE_MARKER));
        assert!(RUN_SCRIPT.contains(DEPLOY_SCRIPT_FILE));
    }

    #[test]
    fn releases_are_listed_oldest_first_without_strangers() {
        let output = ProbeOutput::success(
            "20261127093000 finished\nnot-a-release finished\n20261101000000 unfinished\n20261201000000 finished\n",
        );
        let releases = parse_releases(&output).unwrap();
        let listed: Vec<(&str, bool)> = releases.iter().map(|r| (r.id.as_str(), r.finished)).collect();
        assert_eq!(
            listed,
            [
                ("20261101000000", false),
                ("20261127093000", true),
                ("20261201000000", true)
            ]
        );
        assert!(parse_releases(&ProbeOutput::success("20261127093000 maybe\n")).is_err());
        assert_eq!(
            current_release("releases/20261127093000").map(|id| id.to_string()),
            Some("20261127093000".to_owned())
        );
        assert!(current_release("/home/brokeforge/a.com/releases/20261127093000/").is_some());
        assert_eq!(current_release("/srv/www"), None);
        assert_eq!(current_release("releases/latest"), None);
    }
}

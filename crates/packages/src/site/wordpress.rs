//! WordPress in a site's first release, as brokeforge.
//!
//! [`WordPressInstall`] runs after the site's installation made its directories, pool
//! and server block. While the site has no live release it builds one from
//! WordPress's download:
//!
//! 1. **prepare**: remove releases an earlier attempt left unfinished and create
//!    `releases/<id>` (the same step as a deployment's, see [`super::deploy`]);
//! 2. **download**: `curl` the archive and its published SHA-1 checksum (the same URL
//!    with `.sha1`, as wordpress.org serves it) into `<site>/.brokeforge/`, outside
//!    every release and the web root, over HTTP(S) only;
//! 3. **verify**: compare the archive's SHA-1 with the published one; a mismatch stops
//!    the installation with both values named and the download removed;
//! 4. **unpack**: `tar` the archive into the release without its top directory
//!    (`wordpress/`), with umask 022 so nginx can read the files, and check that it
//!    held WordPress (`wp-settings.php`);
//! 5. **configure**: upload `shared/wp-config.php` (rendered by
//!    [`super::wp_config::render_wp_config`], secret bytes, mode 0600: only the site
//!    user, which its PHP-FPM pool runs as, reads it) unless the site has one; then
//!    link `wp-config.php` and `wp-content/uploads` from `shared/` into the release
//!    (the same step as a deployment's), so both outlive releases and the environment
//!    editor edits the file WordPress reads;
//! 6. **activate**: mark the release finished and switch `current` to it atomically.
//!
//! A site that already has a live release keeps it; only a missing `wp-config.php` is
//! written. So running the operation again changes nothing, and a later deployment
//! from Git replaces the release the usual way, with the same shared paths.

use std::time::Duration;

use brokeforge_core::{Cmd, Domain, FileContents, Plan, Record, RemotePath, ShellArg};
use thiserror::Error;

use crate::facts::{FactError, FactProbe, FileKind, ProbeOutputs, parse_path_kinds, path_kinds_cmd};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::templates::TemplateError;

use super::SiteType;
use super::deploy::{
    ReleaseState, current_release, link_shared_cmd, parse_releases, prepare_release_cmd, releases_cmd,
    switch_current_cmd,
};
use super::env::EnvFileName;
use super::install::{link_target_cmd, parse_link_target};
use super::layout::{RELEASE_MARKER, SiteLayout};
use super::values::ReleaseId;
use super::wp_config::{DatabasePassword, DownloadUrl, WordPressDatabase, WordPressSalts, render_wp_config};

/// WordPress in a site's release, installed as brokeforge, which owns the site's files.
pub struct WordPress;

impl Package for WordPress {
    const NAME: PackageName = PackageName::WordPress;
    const SCOPE: Scope = Scope::Site;
}

/// How long downloading the archive may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What installing WordPress needs. It holds the database password and the salts, so
/// it cannot be serialized: the application builds it in memory when the job runs,
/// from the site's settings and its sealed password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordPressInstallInput {
    pub domain: Domain,
    /// The id of the release WordPress goes into, when the site has none live.
    pub release: ReleaseId,
    pub download_url: DownloadUrl,
    pub database: WordPressDatabase,
    pub password: DatabasePassword,
    pub salts: WordPressSalts,
}

/// What installing WordPress reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordPressFacts {
    /// Whether the site's directory exists.
    pub site_exists: bool,
    /// The releases, oldest first.
    pub releases: Vec<ReleaseState>,
    /// The release `current` names, if any.
    pub current: Option<ReleaseId>,
    /// Whether `shared/wp-config.php` exists.
    pub config_exists: bool,
}

impl WordPressFacts {
    /// The live release: the one `current` names, when it exists.
    pub fn live(&self) -> Option<&ReleaseId> {
        self.current
            .as_ref()
            .filter(|current| self.releases.iter().any(|release| release.id == **current))
    }
}

/// Probe keys.
const PATHS_PROBE: &str = "wordpress_paths";
const RELEASES_PROBE: &str = "wordpress_releases";
const CURRENT_PROBE: &str = "wordpress_current";

fn probed_paths(layout: &SiteLayout) -> [RemotePath; 2] {
    [layout.root().clone(), EnvFileName::WpConfig.path(layout)]
}

/// The directory the download waits in: `<site>/.brokeforge`.
fn download_directory(layout: &SiteLayout) -> RemotePath {
    layout.root().join(".brokeforge").expect("a fixed name")
}

fn archive_path(layout: &SiteLayout, release: &ReleaseId) -> RemotePath {
    download_directory(layout)
        .join(&format!("wordpress-{release}.tar.gz"))
        .expect("a release id is digits")
}

fn checksum_path(layout: &SiteLayout, release: &ReleaseId) -> RemotePath {
    download_directory(layout)
        .join(&format!("wordpress-{release}.tar.gz.sha1"))
        .expect("a release id is digits")
}

/// `curl` of `url` into `file`: failing on HTTP errors, HTTP(S) only (redirects too),
/// with a few retries on transient failures.
fn download_cmd(url: ShellArg, file: &RemotePath) -> Cmd {
    Cmd::new("curl")
        .lit("--fail")
        .lit("--silent")
        .lit("--show-error")
        .lit("--location")
        .lit("--proto")
        .lit("=http,https")
        .lit("--proto-redir")
        .lit("=http,https")
        .lit("--retry")
        .lit("2")
        .lit("--connect-timeout")
        .lit("30")
        .lit("--output")
        .arg(file)
        .lit("--url")
        .arg(url)
}

/// Compares an archive's SHA-1 with the published one, run as
/// `sh -c SCRIPT sh ARCHIVE CHECKSUM_FILE URL`. The published file holds the digest,
/// optionally followed by a file name. On a mismatch both files are removed.
const VERIFY_SCRIPT: &str = concat!(
    "'",
    r#"archive=$1 published=$2 url=$3; "#,
    r#"expected=$(head -n 1 -- "$published" | cut -d " " -f 1 | tr -d "\r\n" | tr "A-F" "a-f"); "#,
    r#"case $expected in *[!0-9a-f]*|"") expected=; esac; "#,
    r#"if [ ${#expected} -ne 40 ]; then echo "$url.sha1 holds no SHA-1 checksum; nothing was installed" >&2; "#,
    r#"rm -f -- "$archive" "$published"; exit 1; fi; "#,
    r#"actual=$(sha1sum -- "$archive") || exit 1; actual=${actual%% *}; "#,
    r#"if [ "$actual" != "$expected" ]; then "#,
    r#"echo "the download of $url does not match its published SHA-1 checksum (expected $expected, got $actual); nothing was installed" >&2; "#,
    r#"rm -f -- "$archive" "$published"; exit 1; fi; "#,
    r#"echo "SHA-1 $actual matches $url.sha1""#,
    "'",
);

/// Unpacks the archive into the release, run as `sh -c SCRIPT sh ARCHIVE RELEASE`.
const UNPACK_SCRIPT: &str = concat!(
    "'",
    r#"archive=$1 release=$2; umask 022; "#,
    r#"tar -x -z -f "$archive" -C "$release" --strip-components=1 --no-same-owner --no-same-permissions || exit 1; "#,
    r#"if [ ! -f "$release/wp-settings.php" ]; then "#,
    r#"echo "the archive holds no WordPress: wp-settings.php is missing below its top directory" >&2; exit 1; fi; "#,
    r#"rm -f -- "$archive" "$archive.sha1""#,
    "'",
);

/// The command that checks the downloaded archive against the published SHA-1.
pub fn verify_checksum_cmd(archive: &RemotePath, checksum: &RemotePath, url: &DownloadUrl) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(VERIFY_SCRIPT)
        .lit("sh")
        .arg(archive)
        .arg(checksum)
        .arg(url)
}

/// The command that unpacks the archive into `release` and checks it held WordPress.
pub fn unpack_cmd(archive: &RemotePath, release: &RemotePath) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(UNPACK_SCRIPT)
        .lit("sh")
        .arg(archive)
        .arg(release)
}

/// Why installing WordPress refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum WordPressInstallError {
    #[error("the site's directory {path} does not exist on the server; install the site first")]
    SiteMissing { path: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

milestones! {
    /// Milestones of installing WordPress.
    pub enum WordPressMilestone {
        PrepareRelease => ("prepare_release", "Preparing the release directory"),
        Download => ("download", "Downloading WordPress"),
        VerifyChecksum => ("verify_checksum", "Checking the download against its published SHA-1 checksum"),
        Unpack => ("unpack", "Unpacking WordPress into the release"),
        WriteConfig => ("write_config", "Writing wp-config.php"),
        LinkShared => ("link_shared", "Linking wp-config.php and the uploads from shared/"),
        Activate => ("activate", "Switching to the new release"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs WordPress into a site's first release (see the module documentation).
pub struct WordPressInstall;

impl Operation for WordPressInstall {
    type Package = WordPress;
    const ACTION: Action = Action::Install;
    type Milestone = WordPressMilestone;
    type Input = WordPressInstallInput;
    type Facts = WordPressFacts;
    type Error = WordPressInstallError;

    fn fact_probes(input: &WordPressInstallInput) -> Vec<FactProbe> {
        let layout = SiteLayout::new(&input.domain);
        vec![
            FactProbe::new::<WordPress>(PATHS_PROBE, path_kinds_cmd(&probed_paths(&layout))),
            FactProbe::new::<WordPress>(RELEASES_PROBE, releases_cmd(&layout)),
            FactProbe::new::<WordPress>(CURRENT_PROBE, link_target_cmd(&layout.current())),
        ]
    }

    fn parse_facts(input: &WordPressInstallInput, outputs: &ProbeOutputs) -> Result<WordPressFacts, FactError> {
        let layout = SiteLayout::new(&input.domain);
        let paths = probed_paths(&layout);
        let kinds = outputs.read(PATHS_PROBE, |output| parse_path_kinds(output, &paths))?;
        Ok(WordPressFacts {
            site_exists: matches!(kinds[0], Some(FileKind::Directory)),
            releases: outputs.read(RELEASES_PROBE, parse_releases)?,
            current: outputs
                .read(CURRENT_PROBE, parse_link_target)?
                .as_deref()
                .and_then(current_release),
            config_exists: kinds[1].is_some(),
        })
    }

    fn plan(input: &WordPressInstallInput, facts: &WordPressFacts) -> Result<Plan, WordPressInstallError> {
        let layout = SiteLayout::new(&input.domain);
        if !facts.site_exists {
            return Err(WordPressInstallError::SiteMissing {
                path: layout.root().to_string(),
            });
        }
        let build = facts.live().is_none();
        let release = layout.release(&input.release);
        let archive = archive_path(&layout, &input.release);
        let checksum = checksum_path(&layout, &input.release);
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(WordPressMilestone::PrepareRelease);
        if build {
            steps.run(prepare_release_cmd(&layout, &input.release)).run(
                Cmd::new("mkdir")
                    .lit("-p")
                    .lit("-m")
                    .lit("0700")
                    .lit("--")
                    .arg(download_directory(&layout)),
            );
        }

        let steps = plan.milestone(WordPressMilestone::Download);
        if build {
            steps
                .run_with_timeout(
                    download_cmd(ShellArg::from(&input.download_url), &archive),
                    DOWNLOAD_TIMEOUT,
                )
                .run(download_cmd(
                    ShellArg::new(input.download_url.checksum_url()).expect("a validated URL holds no NUL byte"),
                    &checksum,
                ));
        }

        let steps = plan.milestone(WordPressMilestone::VerifyChecksum);
        if build {
            steps.run(verify_checksum_cmd(&archive, &checksum, &input.download_url));
        }

        let steps = plan.milestone(WordPressMilestone::Unpack);
        if build {
            steps.run(unpack_cmd(&archive, &release));
        }

        let steps = plan.milestone(WordPressMilestone::WriteConfig);
        if !facts.config_exists {
            let contents = render_wp_config(&layout, &input.database, &input.password, &input.salts)?;
            steps
                .run(Cmd::new("mkdir").lit("-p").lit("--").arg(layout.shared()))
                .upload(
                    EnvFileName::WpConfig.path(&layout),
                    FileContents::Secret(contents),
                    0o600,
                    None,
                );
        }

        let steps = plan.milestone(WordPressMilestone::LinkShared);
        if build {
            steps.run(link_shared_cmd(
                &layout,
                &input.release,
                &SiteType::WordPress.default_shared_paths(),
            ));
        }

        let steps = plan.milestone(WordPressMilestone::Activate);
        if build {
            steps
                .upload(
                    release.join(RELEASE_MARKER).expect("a fixed name"),
                    format!("release={}\nsource=wordpress\n", input.release),
                    0o644,
                    None,
                )
                .run(switch_current_cmd(&layout, &input.release));
        }

        let live = if build { Some(&input.release) } else { facts.live() };
        plan.milestone(WordPressMilestone::Complete).persist(
            Record::new(
                WordPress::TYPE.as_str(),
                WordPress::NAME.as_str(),
                live.map_or("none", ReleaseId::as_str),
            )
            .with_configuration(serde_json::json!({
                "release": live,
                "downloaded_from": build.then_some(&input.download_url),
                "database": input.database.name,
                "database_user": input.database.user,
                "database_host": input.database.host,
                "table_prefix": input.database.table_prefix,
                "config": EnvFileName::WpConfig.path(&layout),
            })),
        );
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_are_single_quoted_words() {
        for script in [VERIFY_SCRIPT, UNPACK_SCRIPT] {
            let inner = script
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap();
            assert!(!inner.contains(['\'', '\n']), "{script}");
        }
    }
}

//! Installing and removing a site, as root.
//!
//! [`SiteInstall`] makes the site's directories (as brokeforge, through `runuser`, so
//! nothing brokeforge planted in its home, such as a symbolic link, can turn root's
//! `mkdir` against another directory), lets nginx's `www-data` traverse
//! `/home/brokeforge` (`o+x`, no listing), writes the PHP-FPM pool for PHP types and
//! the nginx server block, and records the site. Facts first: a site already installed
//! the same way gives a plan that changes nothing.
//!
//! # A bad configuration never takes other sites down
//!
//! The step runner stops at the first failed step and has no "on failure" steps, so
//! each new configuration file goes live through one command,
//! [`install_checked_cmd`]: the file is uploaded next to its place with the suffix
//! `.brokeforge-new` (which neither nginx's `sites-enabled/*` nor FPM's `pool.d/*.conf`
//! includes), then one `sh` script checks the configuration as it is (and stops if it
//! already fails, changing nothing), keeps a copy of the previous file, moves the new
//! one in place (and links it into `sites-enabled`), and checks again (`nginx -t`,
//! `php-fpmX.Y -t`). If that check fails, the script puts the previous file (and link)
//! back, or removes the new ones, prints the check's errors and exits 1, so the plan
//! stops before any reload and the running nginx or FPM keeps serving every other site
//! with the configuration that passed. Reloads are chained after another check
//! (`nginx -t && systemctl reload-or-restart nginx`).
//!
//! When a site changes its PHP version (or becomes static), the new pool and the new
//! server block go live first and the previous pool is removed last, so no request
//! meets a missing socket.
//!
//! Whether the site is the server's default site is read from its server block on the
//! server (`default_server` on its `listen` lines): installing again keeps it, and
//! only [`super::default_site::DefaultSiteUpdate`] changes it.
//!
//! [`SiteRemove`] takes the site out of nginx first (link, check, reload; the default
//! site's removal enables the catch-all site again when no other server block
//! declares `default_server`), then removes its pools, its directory (as brokeforge),
//! its nginx logs and their rotations. Each step runs only when its fact shows
//! something to remove.

use std::convert::Infallible;

use brokeforge_core::{Cmd, Domain, PhpVersion, Plan, Record, RemotePath, UnixUserName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bootstrap::{APP_HOME, APP_USER};
use crate::facts::{
    FactError, FactProbe, FileKind, PackageStates, ProbeOutput, ProbeOutputs, UnexpectedOutput, file_contents_cmd,
    package_states_cmd, parse_file_contents, parse_package_states, parse_path_kinds, path_kinds_cmd,
};
use crate::framework::{Action, Operation, Package};
use crate::nginx::{
    DEFAULT_SITE_LINK, DEFAULT_SITE_PATH, DISTRO_DEFAULT_SITE_LINK, NGINX_PACKAGE, declares_default_server,
    default_servers_cmd, enable_catch_all_cmd, parse_default_servers, test_and_reload_cmd,
};
use crate::php::names::{fpm_binary, fpm_service, package as php_package};
use crate::templates::TemplateError;

use super::deploy_key::key_paths;
use super::git::site_known_hosts_path;
use super::layout::{
    NEW_SUFFIX, PREVIOUS_SUFFIX, SiteLayout, SocketPathTooLong, check_site_domain, deserialize_site_domain, path,
    with_suffix,
};
use super::pool::{POOL_HEADER, render_pool};
use super::values::WebDirectory;
use super::vhost::{VHOST_HEADER, render_vhost};
use super::{Site, SitePhpError, SiteType, check_php_version};

/// Why a site's description is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteInputError {
    #[error(transparent)]
    Php(#[from] SitePhpError),
    #[error("the alias {0} is the site's own domain")]
    AliasIsDomain(String),
    #[error("the alias {0} is listed twice")]
    DuplicateAlias(String),
    #[error("a site can have at most {max} aliases")]
    TooManyAliases { max: usize },
    #[error("{domain} has no valid www variant (it would be too long)")]
    NoWwwVariant { domain: String },
    #[error(transparent)]
    Socket(#[from] SocketPathTooLong),
}

/// What installing a site needs: its domain, aliases and `www` choice, its type, PHP
/// version (exactly for the PHP types) and web directory.
///
/// Built with [`SiteInstallInput::new`] and the `with_*` methods, or deserialized
/// from `{"domain", "site_type", "php_version"?, "aliases"?, "www"?,
/// "web_directory"?}` through the same checks; an omitted web directory is the type's
/// default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SiteInstallFields", into = "SiteInstallFields")]
pub struct SiteInstallInput {
    domain: Domain,
    aliases: Vec<Domain>,
    www: bool,
    site_type: SiteType,
    php_version: Option<PhpVersion>,
    web_directory: WebDirectory,
}

/// The fields of [`SiteInstallInput`] before validation.
#[derive(Clone, Serialize, Deserialize)]
struct SiteInstallFields {
    domain: Domain,
    #[serde(default)]
    aliases: Vec<Domain>,
    #[serde(default)]
    www: bool,
    site_type: SiteType,
    #[serde(default)]
    php_version: Option<PhpVersion>,
    #[serde(default)]
    web_directory: Option<WebDirectory>,
}

impl TryFrom<SiteInstallFields> for SiteInstallInput {
    type Error = SiteInputError;

    fn try_from(fields: SiteInstallFields) -> Result<Self, Self::Error> {
        let input = SiteInstallInput::new(fields.domain, fields.site_type, fields.php_version)?
            .with_aliases(fields.aliases)?
            .with_www(fields.www)?;
        Ok(match fields.web_directory {
            Some(web_directory) => input.with_web_directory(web_directory),
            None => input,
        })
    }
}

impl From<SiteInstallInput> for SiteInstallFields {
    fn from(input: SiteInstallInput) -> Self {
        SiteInstallFields {
            domain: input.domain,
            aliases: input.aliases,
            www: input.www,
            site_type: input.site_type,
            php_version: input.php_version,
            web_directory: Some(input.web_directory),
        }
    }
}

impl SiteInstallInput {
    /// The most aliases a site can have.
    pub const MAX_ALIASES: usize = 20;

    /// A site of `site_type` on `domain`, without aliases or `www`, serving the type's
    /// default web directory. `php_version` is required for the PHP types and refused
    /// for static sites; a PHP site's domain must leave room for its socket path.
    pub fn new(domain: Domain, site_type: SiteType, php_version: Option<PhpVersion>) -> Result<Self, SiteInputError> {
        check_php_version(site_type, php_version)?;
        check_site_domain(&domain)?;
        Ok(SiteInstallInput {
            domain,
            aliases: Vec::new(),
            www: false,
            site_type,
            php_version,
            web_directory: site_type.default_web_directory(),
        })
    }

    /// Serves the site under `aliases` too: at most 20, none twice, none the domain.
    pub fn with_aliases(mut self, aliases: Vec<Domain>) -> Result<Self, SiteInputError> {
        if aliases.len() > Self::MAX_ALIASES {
            return Err(SiteInputError::TooManyAliases { max: Self::MAX_ALIASES });
        }
        for (index, alias) in aliases.iter().enumerate() {
            if *alias == self.domain {
                return Err(SiteInputError::AliasIsDomain(alias.to_string()));
            }
            if aliases[..index].contains(alias) {
                return Err(SiteInputError::DuplicateAlias(alias.to_string()));
            }
        }
        self.aliases = aliases;
        Ok(self)
    }

    /// Serves the site under its `www` variant too (`www.example.com`, or
    /// `example.com` for a domain that starts with `www.`).
    pub fn with_www(mut self, www: bool) -> Result<Self, SiteInputError> {
        if www && www_variant(&self.domain).is_none() {
            return Err(SiteInputError::NoWwwVariant {
                domain: self.domain.to_string(),
            });
        }
        self.www = www;
        Ok(self)
    }

    /// Serves `web_directory` of the release instead of the type's default.
    pub fn with_web_directory(mut self, web_directory: WebDirectory) -> Self {
        self.web_directory = web_directory;
        self
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn aliases(&self) -> &[Domain] {
        &self.aliases
    }

    pub fn www(&self) -> bool {
        self.www
    }

    pub fn site_type(&self) -> SiteType {
        self.site_type
    }

    pub fn php_version(&self) -> Option<PhpVersion> {
        self.php_version
    }

    pub fn web_directory(&self) -> &WebDirectory {
        &self.web_directory
    }

    /// The site's paths.
    pub fn layout(&self) -> SiteLayout {
        SiteLayout::new(&self.domain)
    }

    /// The names nginx answers for: the domain, its `www` variant when chosen, then
    /// the aliases, without repeats.
    pub fn server_names(&self) -> Vec<Domain> {
        let mut names = vec![self.domain.clone()];
        if self.www
            && let Some(variant) = www_variant(&self.domain)
        {
            names.push(variant);
        }
        for alias in &self.aliases {
            if !names.contains(alias) {
                names.push(alias.clone());
            }
        }
        names
    }
}

/// `www.<domain>`, or the domain without `www.` when it starts with it.
fn www_variant(domain: &Domain) -> Option<Domain> {
    match domain.as_str().strip_prefix("www.") {
        Some(bare) => bare.parse().ok(),
        None => format!("www.{domain}").parse().ok(),
    }
}

/// What removing a site needs: its domain. Its pools are found for every PHP version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRemoveInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
}

/// What `stat` says about one path: kind, owner and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathState {
    pub kind: FileKind,
    pub owner: String,
    pub mode: u32,
}

/// The probe command for the [`PathState`]s of `paths`: one `PATH<TAB>KIND<TAB>OWNER<TAB>MODE`
/// line for each that exists; links are reported as links, not followed.
pub fn path_states_cmd(paths: &[RemotePath]) -> Cmd {
    let cmd = Cmd::new("stat").lit("--printf").lit("'%n\\t%F\\t%U\\t%a\\n'").lit("--");
    paths.iter().fold(cmd, |cmd, path| cmd.arg(path))
}

/// Parses the output of [`path_states_cmd`] for the same `paths`; `None` for those
/// that do not exist.
pub fn parse_path_states(
    output: &ProbeOutput,
    paths: &[RemotePath],
) -> Result<Vec<Option<PathState>>, UnexpectedOutput> {
    let only_missing = output
        .stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .all(|line| line.contains("No such file or directory"));
    if !(output.exit_code == 0 || output.exit_code == 1 && only_missing) {
        return Err(UnexpectedOutput("stat failed".to_owned()));
    }
    let mut states = vec![None; paths.len()];
    for line in output.stdout.lines().filter(|line| !line.is_empty()) {
        let unexpected = || UnexpectedOutput(format!("expected \"PATH\\tKIND\\tOWNER\\tMODE\", got {line:?}"));
        let mut fields = line.split('\t');
        let (Some(name), Some(kind), Some(owner), Some(mode), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(unexpected());
        };
        let position = paths
            .iter()
            .position(|path| path.as_str() == name)
            .ok_or_else(|| UnexpectedOutput(format!("stat printed a path that was not asked for: {line:?}")))?;
        let mode = u32::from_str_radix(mode, 8).map_err(|_| unexpected())?;
        states[position] = Some(PathState {
            kind: file_kind(kind),
            owner: owner.to_owned(),
            mode,
        });
    }
    Ok(states)
}

fn file_kind(text: &str) -> FileKind {
    match text {
        "regular file" | "regular empty file" => FileKind::RegularFile,
        "directory" => FileKind::Directory,
        "symbolic link" => FileKind::SymbolicLink,
        other => FileKind::Other(other.to_owned()),
    }
}

/// The probe command for the target of the symbolic link at `link`.
pub fn link_target_cmd(link: &RemotePath) -> Cmd {
    Cmd::new("readlink").lit("--").arg(link)
}

/// Parses the output of [`link_target_cmd`]: the target, or `None` when `link` is
/// missing or not a link (`readlink` then exits 1 without a word).
pub fn parse_link_target(output: &ProbeOutput) -> Result<Option<String>, UnexpectedOutput> {
    match output.exit_code {
        0 => Ok(Some(output.stdout.trim_end_matches('\n').to_owned())),
        1 if output.stdout.is_empty() => Ok(None),
        _ => Err(UnexpectedOutput("readlink failed".to_owned())),
    }
}

/// Moves a checked configuration file in place, run as
/// `sh -c SCRIPT sh NEW FINAL LINK CHECK...` (see the module documentation): `NEW` is
/// the uploaded file, `FINAL` its place, `LINK` the link that enables it (empty for
/// none), `CHECK...` the command that checks the whole configuration.
const INSTALL_CHECKED_SCRIPT: &str = concat!(
    "'",
    r#"new=$1 final=$2 link=$3; shift 3; "#,
    r#"if ! "$@" >/dev/null 2>&1; then "#,
    r#"echo "the configuration already fails its check, before this change; nothing was changed. Fix this first:" >&2; "#,
    r#""$@"; rm -f -- "$new"; exit 1; fi; "#,
    r#"previous=; if [ -e "$final" ]; then previous=$final.brokeforge-previous; cp -p -- "$final" "$previous" || exit 1; fi; "#,
    r#"old_link=; if [ -n "$link" ]; then old_link=$(readlink -- "$link") || old_link=; fi; "#,
    r#"if mv -f -- "$new" "$final" && { [ -z "$link" ] || ln -sfn -- "$final" "$link"; } && "$@"; then "#,
    r#"if [ -n "$previous" ]; then rm -f -- "$previous"; fi; exit 0; fi; "#,
    r#"if [ -n "$previous" ]; then mv -f -- "$previous" "$final"; else rm -f -- "$final" "$new"; fi; "#,
    r#"if [ -n "$link" ]; then if [ -n "$old_link" ]; then ln -sfn -- "$old_link" "$link"; else rm -f -- "$link"; fi; fi; "#,
    r#"echo "the new configuration failed its check and was taken out again; the previous configuration is in place" >&2; "#,
    r#"exit 1"#,
    "'",
);

/// The command that checks a configuration: `nginx -t`, or `php-fpmX.Y -t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigCheck {
    Nginx,
    PhpFpm(PhpVersion),
}

/// Moves the uploaded `new` file to `final` (and links it from `link`) only if the
/// configuration passes `check` afterwards; otherwise restores the previous file and
/// link and fails (see the module documentation). Also fails, changing nothing, when
/// the configuration fails its check before the change.
pub fn install_checked_cmd(
    new: &RemotePath,
    final_path: &RemotePath,
    link: Option<&RemotePath>,
    check: ConfigCheck,
) -> Cmd {
    let cmd = Cmd::new("sh")
        .lit("-c")
        .lit(INSTALL_CHECKED_SCRIPT)
        .lit("sh")
        .arg(new)
        .arg(final_path);
    let cmd = match link {
        Some(link) => cmd.arg(link),
        None => cmd.lit("''"),
    };
    match check {
        ConfigCheck::Nginx => cmd.lit("nginx").lit("-t"),
        ConfigCheck::PhpFpm(version) => cmd.lit(fpm_binary(version)).lit("-t"),
    }
}

/// `php-fpmX.Y -t && systemctl reload-or-restart phpX.Y-fpm`: the pools of one
/// version reloaded once their configuration passes its check.
pub fn fpm_test_and_reload_cmd(version: PhpVersion) -> Cmd {
    Cmd::new(fpm_binary(version))
        .lit("-t")
        .and(Cmd::new("systemctl").lit("reload-or-restart").arg(fpm_service(version)))
}

/// Runs `cmd` as the brokeforge user: `runuser -u brokeforge -- ...`.
fn as_app_user(program: &'static str) -> Cmd {
    Cmd::new("runuser").lit("-u").lit(APP_USER).lit("--").lit(program)
}

/// Probe keys.
const PACKAGES_PROBE: &str = "site_packages";
const PATHS_PROBE: &str = "site_paths";
const VHOST_PROBE: &str = "site_vhost";
const VHOST_LINK_PROBE: &str = "site_vhost_link";
const POOL_PROBE: &str = "site_pool";
const POOLS_PROBE: &str = "site_pools";
const LOGS_PROBE: &str = "site_logs";
const CATCH_ALL_PROBE: &str = "site_catch_all";
const DEFAULT_SERVERS_PROBE: &str = "site_default_servers";

fn pool_paths(layout: &SiteLayout) -> Vec<RemotePath> {
    PhpVersion::ALL.iter().map(|version| layout.pool(*version)).collect()
}

fn parse_pools(outputs: &ProbeOutputs, layout: &SiteLayout) -> Result<Vec<PhpVersion>, FactError> {
    let paths = pool_paths(layout);
    let kinds = outputs.read(POOLS_PROBE, |output| parse_path_kinds(output, &paths))?;
    Ok(PhpVersion::ALL
        .iter()
        .zip(kinds)
        .filter(|(_, kind)| kind.is_some())
        .map(|(version, _)| *version)
        .collect())
}

fn site_packages_probe() -> FactProbe {
    FactProbe::new::<Site>(PACKAGES_PROBE, package_states_cmd(&["nginx", "php*-fpm"]))
}

/// The directories of a site as installing it reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteDirectories {
    /// `/home/brokeforge`.
    pub home: Option<PathState>,
    pub root: Option<PathState>,
    pub releases: Option<PathState>,
    pub shared: Option<PathState>,
}

/// What installing a site reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInstallFacts {
    /// nginx and every `phpX.Y-fpm`.
    pub packages: PackageStates,
    pub directories: SiteDirectories,
    /// The site's server block, if it exists.
    pub vhost: Option<String>,
    /// Where `sites-enabled/<domain>.conf` points, if it is a link.
    pub vhost_link: Option<String>,
    /// The site's pool file for the input's PHP version, if it exists (always `None`
    /// for static sites).
    pub pool: Option<String>,
    /// The PHP versions that have a pool file for this site.
    pub pools: Vec<PhpVersion>,
}

fn install_paths(layout: &SiteLayout) -> [RemotePath; 4] {
    [
        path(APP_HOME),
        layout.root().clone(),
        layout.releases(),
        layout.shared(),
    ]
}

/// Why installing a site refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum SiteInstallError {
    #[error("nginx is not installed on this server; provision the server (or install nginx) first")]
    NginxNotInstalled,
    #[error("PHP {version} with FPM (php{version}-fpm) is not installed on this server; install PHP {version} first")]
    PhpNotInstalled { version: PhpVersion },
    #[error(
        "{path} exists and was not written by BrokeForge: the domain is already configured on this server; \
         remove or rename that file, then try again"
    )]
    ForeignConfiguration { path: RemotePath },
    #[error("{path} exists but belongs to {owner}, not {APP_USER}; move it away, then try again")]
    ForeignDirectory { path: RemotePath, owner: String },
    #[error("{path} exists and is not a directory; move it away, then try again")]
    NotADirectory { path: RemotePath },
    #[error("the brokeforge user's home {APP_HOME} does not exist; run the server's bootstrap again")]
    NoAppHome,
    #[error(transparent)]
    Template(#[from] TemplateError),
}

milestones! {
    /// Milestones of installing a site.
    pub enum SiteInstallMilestone {
        CreateDirectories => ("create_directories", "Creating the site's directories"),
        ConfigurePhpFpm => ("configure_php_fpm", "Configuring the site's PHP-FPM pool"),
        ConfigureNginx => ("configure_nginx", "Configuring nginx for the site"),
        RemovePreviousPool => ("remove_previous_pool", "Removing the site's previous PHP-FPM pool"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs (or updates) a site: directories, PHP-FPM pool, nginx server block.
pub struct SiteInstall;

impl Operation for SiteInstall {
    type Package = Site;
    const ACTION: Action = Action::Install;
    type Milestone = SiteInstallMilestone;
    type Input = SiteInstallInput;
    type Facts = SiteInstallFacts;
    type Error = SiteInstallError;

    fn fact_probes(input: &SiteInstallInput) -> Vec<FactProbe> {
        let layout = input.layout();
        let mut probes = vec![
            site_packages_probe(),
            FactProbe::new::<Site>(PATHS_PROBE, path_states_cmd(&install_paths(&layout))),
            FactProbe::new::<Site>(VHOST_PROBE, file_contents_cmd(&layout.vhost())),
            FactProbe::new::<Site>(VHOST_LINK_PROBE, link_target_cmd(&layout.vhost_link())),
        ];
        if let Some(version) = input.php_version {
            probes.push(FactProbe::new::<Site>(
                POOL_PROBE,
                file_contents_cmd(&layout.pool(version)),
            ));
        }
        probes.push(FactProbe::new::<Site>(
            POOLS_PROBE,
            path_kinds_cmd(&pool_paths(&layout)),
        ));
        probes
    }

    fn parse_facts(input: &SiteInstallInput, outputs: &ProbeOutputs) -> Result<SiteInstallFacts, FactError> {
        let layout = input.layout();
        let paths = install_paths(&layout);
        let [home, root, releases, shared] = outputs
            .read(PATHS_PROBE, |output| parse_path_states(output, &paths))?
            .try_into()
            .expect("one state per path asked for");
        Ok(SiteInstallFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            directories: SiteDirectories {
                home,
                root,
                releases,
                shared,
            },
            vhost: outputs.read(VHOST_PROBE, parse_file_contents)?,
            vhost_link: outputs.read(VHOST_LINK_PROBE, parse_link_target)?,
            pool: match input.php_version {
                Some(_) => outputs.read(POOL_PROBE, parse_file_contents)?,
                None => None,
            },
            pools: parse_pools(outputs, &layout)?,
        })
    }

    fn plan(input: &SiteInstallInput, facts: &SiteInstallFacts) -> Result<Plan, SiteInstallError> {
        let layout = input.layout();
        if !facts.packages.is_installed(NGINX_PACKAGE) {
            return Err(SiteInstallError::NginxNotInstalled);
        }
        if let Some(version) = input.php_version
            && !facts.packages.is_installed(php_package(version, "fpm").as_str())
        {
            return Err(SiteInstallError::PhpNotInstalled { version });
        }
        if let Some(current) = &facts.vhost
            && !current.starts_with(VHOST_HEADER)
        {
            return Err(SiteInstallError::ForeignConfiguration { path: layout.vhost() });
        }
        // The default site stays the default: only the default-site operation changes it.
        let default_server = facts.vhost.as_deref().is_some_and(declares_default_server);
        let vhost = render_vhost(input, default_server)?;
        let pool = match input.php_version {
            Some(version) => Some((version, render_pool(&layout, version)?)),
            None => None,
        };
        if let Some(current) = &facts.pool
            && !current.starts_with(POOL_HEADER)
            && let Some(version) = input.php_version
        {
            return Err(SiteInstallError::ForeignConfiguration {
                path: layout.pool(version),
            });
        }
        let directories = &facts.directories;
        let Some(home) = &directories.home else {
            return Err(SiteInstallError::NoAppHome);
        };
        let mut directories_missing = false;
        for (state, path) in [
            (&directories.root, layout.root().clone()),
            (&directories.releases, layout.releases()),
            (&directories.shared, layout.shared()),
        ] {
            match state {
                None => directories_missing = true,
                Some(state) if state.kind != FileKind::Directory => {
                    return Err(SiteInstallError::NotADirectory { path });
                }
                Some(state) if state.owner != APP_USER => {
                    return Err(SiteInstallError::ForeignDirectory {
                        path,
                        owner: state.owner.clone(),
                    });
                }
                Some(_) => {}
            }
        }

        let mut plan = Self::plan_writer();
        let steps = plan.milestone(SiteInstallMilestone::CreateDirectories);
        if home.mode & 0o001 == 0 {
            // nginx (www-data) reads the sites' public files below the home directory.
            steps.run(Cmd::new("chmod").lit("o+x").lit("--").lit(APP_HOME));
        }
        if directories_missing {
            steps.run(
                as_app_user("mkdir")
                    .lit("-p")
                    .lit("-m")
                    .lit("0755")
                    .lit("--")
                    .arg(layout.root())
                    .arg(layout.releases())
                    .arg(layout.shared()),
            );
        }

        let steps = plan.milestone(SiteInstallMilestone::ConfigurePhpFpm);
        if let Some((version, pool)) = &pool
            && facts.pool.as_deref().map(str::as_bytes) != Some(pool.as_slice())
        {
            let final_path = layout.pool(*version);
            let new = with_suffix(&final_path, NEW_SUFFIX);
            steps
                .upload(new.clone(), pool.clone(), 0o644, Some(root_user()))
                .run(install_checked_cmd(
                    &new,
                    &final_path,
                    None,
                    ConfigCheck::PhpFpm(*version),
                ))
                .run(fpm_test_and_reload_cmd(*version));
        }

        let steps = plan.milestone(SiteInstallMilestone::ConfigureNginx);
        let linked = facts.vhost_link.as_deref() == Some(layout.vhost().as_str());
        if facts.vhost.as_deref().map(str::as_bytes) != Some(vhost.as_slice()) || !linked {
            let new = with_suffix(&layout.vhost(), NEW_SUFFIX);
            steps
                .upload(new.clone(), vhost, 0o644, Some(root_user()))
                .run(install_checked_cmd(
                    &new,
                    &layout.vhost(),
                    Some(&layout.vhost_link()),
                    ConfigCheck::Nginx,
                ))
                .run(test_and_reload_cmd());
        }

        let steps = plan.milestone(SiteInstallMilestone::RemovePreviousPool);
        for version in facts
            .pools
            .iter()
            .filter(|version| Some(**version) != input.php_version)
        {
            steps.run(Cmd::new("rm").lit("-f").lit("--").arg(layout.pool(*version)));
            if facts.packages.is_installed(php_package(*version, "fpm").as_str()) {
                steps.run(fpm_test_and_reload_cmd(*version));
            }
        }

        plan.milestone(SiteInstallMilestone::Complete)
            .persist(site_record(input, &layout));
        Ok(plan.finish())
    }
}

/// The record of an installed site. It holds no secret.
fn site_record(input: &SiteInstallInput, layout: &SiteLayout) -> Record {
    let socket = input.php_version.map(|version| layout.socket(version).to_string());
    Record::new(Site::TYPE.as_str(), Site::NAME.as_str(), input.site_type.as_str()).with_configuration(
        serde_json::json!({
            "domain": input.domain,
            "aliases": input.aliases,
            "www": input.www,
            "server_names": input.server_names(),
            "site_type": input.site_type,
            "php_version": input.php_version,
            "web_directory": input.web_directory,
            "root": layout.root(),
            "web_root": layout.web_root(&input.web_directory),
            "vhost": layout.vhost(),
            "pool": input.php_version.map(|version| layout.pool(version)),
            "socket": socket,
        }),
    )
}

fn root_user() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

/// What removing a site reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRemoveFacts {
    /// nginx and every `phpX.Y-fpm`.
    pub packages: PackageStates,
    /// Whether `sites-enabled/<domain>.conf` exists (as anything).
    pub vhost_link_exists: bool,
    /// The server block and the leftovers of an interrupted change that exist.
    pub vhost_files: Vec<RemotePath>,
    /// The PHP versions that have a pool file for this site.
    pub pools: Vec<PhpVersion>,
    /// Whether the site's directory exists.
    pub root_exists: bool,
    /// The site's own deploy key halves and known hosts file that exist.
    pub git_access_files: Vec<RemotePath>,
    /// The site's nginx logs, rotations included.
    pub logs: Vec<String>,
    /// Whether the site's server block declares `default_server`: it is the default
    /// site.
    pub is_default: bool,
    /// Whether the catch-all site's configuration exists, and whether it is enabled.
    pub catch_all: CatchAll,
    /// The enabled server blocks of other sites that declare `default_server`.
    pub other_default_servers: Vec<String>,
}

/// The state of nginx's catch-all site (see [`crate::nginx`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchAll {
    /// `sites-available/brokeforge-default` exists.
    pub available: bool,
    /// `sites-enabled/brokeforge-default` is a link.
    pub enabled: bool,
}

fn catch_all_paths() -> [RemotePath; 2] {
    [path(DEFAULT_SITE_PATH), path(DEFAULT_SITE_LINK)]
}

/// The probe of the catch-all site's state.
pub(crate) fn catch_all_probe<P: crate::framework::Package>(key: &'static str) -> FactProbe {
    FactProbe::new::<P>(key, path_kinds_cmd(&catch_all_paths()))
}

/// Parses the output of [`catch_all_probe`].
pub(crate) fn parse_catch_all(output: &ProbeOutput) -> Result<CatchAll, UnexpectedOutput> {
    let kinds = parse_path_kinds(output, &catch_all_paths())?;
    Ok(CatchAll {
        available: kinds[0].is_some(),
        enabled: matches!(kinds[1], Some(FileKind::SymbolicLink)),
    })
}

/// The enabled server blocks that declare `default_server`, without the catch-all,
/// the distribution's default site and the links in `except`.
pub(crate) fn other_default_servers(servers: Vec<String>, except: &[RemotePath]) -> Vec<String> {
    servers
        .into_iter()
        .filter(|server| {
            server != DEFAULT_SITE_LINK
                && server != DISTRO_DEFAULT_SITE_LINK
                && !except.iter().any(|link| link.as_str() == server)
        })
        .collect()
}

fn vhost_paths(layout: &SiteLayout) -> [RemotePath; 4] {
    let vhost = layout.vhost();
    [
        layout.vhost_link(),
        with_suffix(&vhost, NEW_SUFFIX),
        with_suffix(&vhost, PREVIOUS_SUFFIX),
        vhost,
    ]
}

/// The probe command that lists the site's nginx logs: `find` in `/var/log/nginx`
/// with a regular expression that matches no other site's logs.
pub fn site_logs_cmd(layout: &SiteLayout) -> Cmd {
    Cmd::new("find")
        .lit("/var/log/nginx")
        .lit("-maxdepth")
        .lit("1")
        .lit("-regextype")
        .lit("posix-extended")
        .lit("-regex")
        .arg(brokeforge_core::ShellArg::new(layout.log_regex()).expect("a domain holds no NUL byte"))
}

fn parse_logs(output: &ProbeOutput) -> Result<Vec<String>, UnexpectedOutput> {
    match output.exit_code {
        0 => Ok(output
            .stdout
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect()),
        1 if output.stderr.contains("No such file or directory") => Ok(Vec::new()),
        _ => Err(UnexpectedOutput("find failed".to_owned())),
    }
}

milestones! {
    /// Milestones of removing a site.
    pub enum SiteRemoveMilestone {
        DisableSite => ("disable_site", "Taking the site out of nginx"),
        RemovePool => ("remove_pool", "Removing the site's PHP-FPM pool"),
        RemoveFiles => ("remove_files", "Removing the site's releases and shared files"),
        RemoveLogs => ("remove_logs", "Removing the site's nginx logs"),
        Complete => ("complete", "Complete"),
    }
}

/// Removes a site: its server block, pools, directory (releases, shared files, the
/// Git mirror), its own deploy key and pinned Git hosts, and nginx logs. The
/// application deletes the site's records once the plan succeeded.
pub struct SiteRemove;

impl Operation for SiteRemove {
    type Package = Site;
    const ACTION: Action = Action::Remove;
    type Milestone = SiteRemoveMilestone;
    type Input = SiteRemoveInput;
    type Facts = SiteRemoveFacts;
    type Error = Infallible;

    fn fact_probes(input: &SiteRemoveInput) -> Vec<FactProbe> {
        let layout = SiteLayout::new(&input.domain);
        let mut paths = vhost_paths(&layout).to_vec();
        paths.push(layout.root().clone());
        paths.extend(key_paths(&input.domain));
        paths.push(site_known_hosts_path(&input.domain));
        vec![
            site_packages_probe(),
            FactProbe::new::<Site>(PATHS_PROBE, path_kinds_cmd(&paths)),
            FactProbe::new::<Site>(POOLS_PROBE, path_kinds_cmd(&pool_paths(&layout))),
            FactProbe::new::<Site>(LOGS_PROBE, site_logs_cmd(&layout)),
            FactProbe::new::<Site>(VHOST_PROBE, file_contents_cmd(&layout.vhost())),
            catch_all_probe::<Site>(CATCH_ALL_PROBE),
            FactProbe::new::<Site>(DEFAULT_SERVERS_PROBE, default_servers_cmd()),
        ]
    }

    fn parse_facts(input: &SiteRemoveInput, outputs: &ProbeOutputs) -> Result<SiteRemoveFacts, FactError> {
        let layout = SiteLayout::new(&input.domain);
        let mut paths = vhost_paths(&layout).to_vec();
        paths.push(layout.root().clone());
        paths.extend(key_paths(&input.domain));
        paths.push(site_known_hosts_path(&input.domain));
        let kinds = outputs.read(PATHS_PROBE, |output| parse_path_kinds(output, &paths))?;
        Ok(SiteRemoveFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            vhost_link_exists: kinds[0].is_some(),
            vhost_files: paths[1..4]
                .iter()
                .zip(&kinds[1..4])
                .filter(|(_, kind)| kind.is_some())
                .map(|(path, _)| path.clone())
                .collect(),
            pools: parse_pools(outputs, &layout)?,
            root_exists: kinds[4].is_some(),
            git_access_files: paths[5..8]
                .iter()
                .zip(&kinds[5..8])
                .filter(|(_, kind)| kind.is_some())
                .map(|(path, _)| path.clone())
                .collect(),
            logs: outputs.read(LOGS_PROBE, parse_logs)?,
            is_default: outputs
                .read(VHOST_PROBE, parse_file_contents)?
                .as_deref()
                .is_some_and(|vhost| vhost.starts_with(VHOST_HEADER) && declares_default_server(vhost)),
            catch_all: outputs.read(CATCH_ALL_PROBE, parse_catch_all)?,
            other_default_servers: other_default_servers(
                outputs.read(DEFAULT_SERVERS_PROBE, parse_default_servers)?,
                &[layout.vhost_link()],
            ),
        })
    }

    fn plan(input: &SiteRemoveInput, facts: &SiteRemoveFacts) -> Result<Plan, Infallible> {
        let layout = SiteLayout::new(&input.domain);
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(SiteRemoveMilestone::DisableSite);
        if facts.vhost_link_exists {
            steps.run(Cmd::new("rm").lit("-f").lit("--").arg(layout.vhost_link()));
            // The default site goes: the catch-all answers unknown names again.
            if facts.is_default
                && facts.catch_all.available
                && !facts.catch_all.enabled
                && facts.other_default_servers.is_empty()
            {
                steps.run(enable_catch_all_cmd());
            }
            if facts.packages.is_installed(NGINX_PACKAGE) {
                steps.run(test_and_reload_cmd());
            }
        }
        if !facts.vhost_files.is_empty() {
            let cmd = Cmd::new("rm").lit("-f").lit("--");
            steps.run(facts.vhost_files.iter().fold(cmd, |cmd, path| cmd.arg(path)));
        }

        let steps = plan.milestone(SiteRemoveMilestone::RemovePool);
        for version in &facts.pools {
            let pool = layout.pool(*version);
            steps.run(
                Cmd::new("rm")
                    .lit("-f")
                    .lit("--")
                    .arg(with_suffix(&pool, NEW_SUFFIX))
                    .arg(with_suffix(&pool, PREVIOUS_SUFFIX))
                    .arg(&pool),
            );
            if facts.packages.is_installed(php_package(*version, "fpm").as_str()) {
                steps.run(fpm_test_and_reload_cmd(*version));
            }
        }

        let steps = plan.milestone(SiteRemoveMilestone::RemoveFiles);
        if facts.root_exists {
            steps.run(as_app_user("rm").lit("-rf").lit("--").arg(layout.root()));
        }
        if !facts.git_access_files.is_empty() {
            let cmd = Cmd::new("rm").lit("-f").lit("--");
            steps.run(facts.git_access_files.iter().fold(cmd, |cmd, path| cmd.arg(path)));
        }

        let steps = plan.milestone(SiteRemoveMilestone::RemoveLogs);
        if !facts.logs.is_empty() {
            steps.run(site_logs_cmd(&layout).lit("-delete"));
        }

        plan.milestone(SiteRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(text: &str) -> Domain {
        text.parse().unwrap()
    }

    #[test]
    fn inputs_are_checked_as_a_whole() {
        let input = SiteInstallInput::new(domain("example.com"), SiteType::Laravel, Some(PhpVersion::Php83))
            .unwrap()
            .with_aliases(vec![domain("example.org"), domain("www.example.com")])
            .unwrap()
            .with_www(true)
            .unwrap();
        let names: Vec<String> = input.server_names().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["example.com", "www.example.com", "example.org"]);
        assert_eq!(input.web_directory().as_str(), "public");
        let www = SiteInstallInput::new(domain("www.example.com"), SiteType::Static, None)
            .unwrap()
            .with_www(true)
            .unwrap();
        let names: Vec<String> = www.server_names().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["www.example.com", "example.com"]);

        assert_eq!(
            SiteInstallInput::new(domain("example.com"), SiteType::Php, None),
            Err(SiteInputError::Php(SitePhpError::Required {
                site_type: SiteType::Php
            }))
        );
        let base = SiteInstallInput::new(domain("example.com"), SiteType::Static, None).unwrap();
        assert_eq!(
            base.clone().with_aliases(vec![domain("example.com")]),
            Err(SiteInputError::AliasIsDomain("example.com".to_owned()))
        );
        assert_eq!(
            base.clone().with_aliases(vec![domain("a.com"), domain("a.com")]),
            Err(SiteInputError::DuplicateAlias("a.com".to_owned()))
        );
        let too_long = format!("{}.{}.com", "a".repeat(40), "b".repeat(38));
        for (site_type, php) in [(SiteType::Static, None), (SiteType::Php, Some(PhpVersion::Php83))] {
            assert!(matches!(
                SiteInstallInput::new(domain(&too_long), site_type, php),
                Err(SiteInputError::Socket(_))
            ));
        }
        assert!(matches!(
            SiteInstallInput::new(domain("www.com"), SiteType::Static, None)
                .unwrap()
                .with_www(true),
            Err(SiteInputError::NoWwwVariant { .. })
        ));
        let json = format!(r#"{{"domain":"{too_long}"}}"#);
        assert!(serde_json::from_str::<SiteRemoveInput>(&json).is_err());
    }

    #[test]
    fn inputs_deserialize_through_the_same_checks() {
        let input: SiteInstallInput =
            serde_json::from_str(r#"{"domain":"example.com","site_type":"wordpress","php_version":"8.2","www":true}"#)
                .unwrap();
        assert!(input.web_directory().is_root());
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(serde_json::from_value::<SiteInstallInput>(json).unwrap(), input);
        for bad in [
            r#"{"domain":"example.com","site_type":"laravel"}"#,
            r#"{"domain":"example.com","site_type":"static","php_version":"8.3"}"#,
            r#"{"domain":"example.com","site_type":"static","web_directory":"../etc"}"#,
            r#"{"domain":"example.com;reboot","site_type":"static"}"#,
            r#"{"domain":"example.com","site_type":"static","aliases":["example.com"]}"#,
        ] {
            assert!(serde_json::from_str::<SiteInstallInput>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_states_as_stat_prints_them() {
        let paths: Vec<RemotePath> = [
            "/home/brokeforge",
            "/home/brokeforge/a.com",
            "/home/brokeforge/a.com/shared",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        let output = ProbeOutput::new(
            1,
            "/home/brokeforge\tdirectory\tbrokeforge\t750\n/home/brokeforge/a.com\tsymbolic link\troot\t777\n",
            "stat: cannot statx '/home/brokeforge/a.com/shared': No such file or directory\n",
        );
        let states = parse_path_states(&output, &paths).unwrap();
        assert_eq!(
            states[0],
            Some(PathState {
                kind: FileKind::Directory,
                owner: "brokeforge".to_owned(),
                mode: 0o750
            })
        );
        assert_eq!(states[1].as_ref().unwrap().kind, FileKind::SymbolicLink);
        assert_eq!(states[2], None);
        assert!(parse_path_states(&ProbeOutput::new(1, "", "stat: Permission denied\n"), &paths).is_err());
        assert!(parse_path_states(&ProbeOutput::success("/etc\tdirectory\troot\t755\n"), &paths).is_err());
        assert_eq!(
            parse_link_target(&ProbeOutput::success("releases/1\n"))
                .unwrap()
                .as_deref(),
            Some("releases/1")
        );
        assert_eq!(parse_link_target(&ProbeOutput::new(1, "", "")).unwrap(), None);
    }

    #[test]
    fn the_install_script_is_one_single_quoted_word() {
        let inner = INSTALL_CHECKED_SCRIPT
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .unwrap();
        assert!(!inner.contains(['\'', '\n']), "{INSTALL_CHECKED_SCRIPT}");
        assert!(inner.contains(PREVIOUS_SUFFIX));
    }
}

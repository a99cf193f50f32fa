//! The server's default site: the site that answers requests for names no site
//! serves, such as the server's IP address, in place of nginx's catch-all site (see
//! [`crate::nginx`]).
//!
//! [`DefaultSiteUpdate`] (root) makes a site the default, or makes none the default:
//!
//! - the new default site's server block is written again with `default_server` on its
//!   `listen` lines, and the previous default site's without it;
//! - the catch-all's link in `sites-enabled` is removed while a site is the default,
//!   and made again when none is (unless another server block still declares
//!   `default_server`);
//! - all of it changes in one command, [`switch_checked_cmd`], after the pattern of
//!   [`super::install::install_checked_cmd`]: the new files wait next to their places
//!   with the suffix `.brokeforge-new`, the configuration is checked before anything
//!   moves (and nothing moves when it already fails), a copy of every file it replaces
//!   is kept, and when `nginx -t` fails afterwards every file and the catch-all's link
//!   are put back as they were. nginx reloads only after that, behind another check.
//!
//! Facts: nginx's package, both sites' server blocks and links, the catch-all's files,
//! and the enabled server blocks that declare `default_server`. A site whose server
//! block is missing, not BrokeForge's or not enabled is refused with what to do; so is
//! making a site the default while a server block BrokeForge did not write declares
//! `default_server`. Asking for what is already in place changes nothing.

use brokeforge_core::{Cmd, Plan, RemotePath, UnixUserName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::facts::{
    FactError, FactProbe, PackageStates, ProbeOutputs, file_contents_cmd, package_states_cmd, parse_file_contents,
    parse_package_states,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::nginx::{
    DEFAULT_SITE_LINK, DEFAULT_SITE_PATH, NGINX_PACKAGE, default_servers_cmd, parse_default_servers,
    test_and_reload_cmd,
};
use crate::templates::TemplateError;

use super::install::{
    CatchAll, ConfigCheck, SiteInstallInput, catch_all_probe, link_target_cmd, other_default_servers, parse_catch_all,
    parse_link_target,
};
use super::layout::{NEW_SUFFIX, path, with_suffix};
use super::vhost::{VHOST_HEADER, render_vhost};

/// Which site answers requests for names no site serves. Changed as root, since
/// nginx's configuration belongs to root.
pub struct DefaultSite;

impl Package for DefaultSite {
    const NAME: PackageName = PackageName::DefaultSite;
    const SCOPE: Scope = Scope::Server;
}

/// Why a default-site change is refused before anything is read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0} cannot be both the new default site and the previous one")]
pub struct SameSiteTwice(pub String);

/// What changing the default site needs: the site to make the default (none to make
/// no site the default) and the site that is the default now, if another one is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DefaultSiteFields", into = "DefaultSiteFields")]
pub struct DefaultSiteInput {
    site: Option<SiteInstallInput>,
    previous: Option<SiteInstallInput>,
}

/// The fields of [`DefaultSiteInput`] before validation.
#[derive(Clone, Serialize, Deserialize)]
struct DefaultSiteFields {
    #[serde(default)]
    site: Option<SiteInstallInput>,
    #[serde(default)]
    previous: Option<SiteInstallInput>,
}

impl TryFrom<DefaultSiteFields> for DefaultSiteInput {
    type Error = SameSiteTwice;

    fn try_from(fields: DefaultSiteFields) -> Result<Self, Self::Error> {
        DefaultSiteInput::new(fields.site, fields.previous)
    }
}

impl From<DefaultSiteInput> for DefaultSiteFields {
    fn from(input: DefaultSiteInput) -> Self {
        DefaultSiteFields {
            site: input.site,
            previous: input.previous,
        }
    }
}

impl DefaultSiteInput {
    /// Makes `site` the default (none when `None`) in place of `previous`.
    pub fn new(site: Option<SiteInstallInput>, previous: Option<SiteInstallInput>) -> Result<Self, SameSiteTwice> {
        if let (Some(site), Some(previous)) = (&site, &previous)
            && site.domain() == previous.domain()
        {
            return Err(SameSiteTwice(site.domain().to_string()));
        }
        Ok(DefaultSiteInput { site, previous })
    }

    /// The site to make the default.
    pub fn site(&self) -> Option<&SiteInstallInput> {
        self.site.as_ref()
    }

    /// The site that is the default now.
    pub fn previous(&self) -> Option<&SiteInstallInput> {
        self.previous.as_ref()
    }
}

/// A site's server block and the target of its link in `sites-enabled`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerBlock {
    pub contents: Option<String>,
    pub link: Option<String>,
}

/// What changing the default site reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultSiteFacts {
    /// nginx's package.
    pub packages: PackageStates,
    /// The server block of the site to make the default (empty when there is none).
    pub site: ServerBlock,
    /// The server block of the previous default site (empty when there is none).
    pub previous: ServerBlock,
    pub catch_all: CatchAll,
    /// Every enabled server block that declares `default_server`.
    pub default_servers: Vec<String>,
}

/// Probe keys.
const PACKAGES_PROBE: &str = "default_site_packages";
const SITE_VHOST_PROBE: &str = "default_site_vhost";
const SITE_LINK_PROBE: &str = "default_site_link";
const PREVIOUS_VHOST_PROBE: &str = "previous_default_vhost";
const PREVIOUS_LINK_PROBE: &str = "previous_default_link";
const CATCH_ALL_PROBE: &str = "default_site_catch_all";
const DEFAULT_SERVERS_PROBE: &str = "default_site_default_servers";

/// Why changing the default site refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum DefaultSiteError {
    #[error("nginx is not installed on this server; provision the server (or install nginx) first")]
    NginxNotInstalled,
    #[error("the server block of {domain} ({path}) is missing; install the site again first")]
    SiteNotInstalled { domain: String, path: RemotePath },
    #[error("{path} was not written by BrokeForge; remove or rename it, then install the site {domain} again")]
    ForeignConfiguration { domain: String, path: RemotePath },
    #[error("the site {domain} is not enabled in nginx ({link}); install the site again first")]
    SiteNotEnabled { domain: String, link: RemotePath },
    #[error(
        "{others} also declare default_server, and nginx allows one default server; remove default_server \
         there first"
    )]
    OtherDefaultServer { others: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

milestones! {
    /// Milestones of changing the default site.
    pub enum DefaultSiteMilestone {
        WriteServerBlocks => ("write_server_blocks", "Writing the server blocks"),
        SwitchDefault => ("switch_default", "Switching the default site and checking nginx's configuration"),
        ReloadNginx => ("reload_nginx", "Reloading nginx"),
        Complete => ("complete", "Complete"),
    }
}

/// What [`switch_checked_cmd`] does with the catch-all site's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchAllChange {
    /// Leaves the link as it is.
    Keep,
    /// Makes the link (the catch-all answers unknown names again).
    Enable,
    /// Removes the link (a site answers them).
    Disable,
}

impl CatchAllChange {
    fn word(self) -> &'static str {
        match self {
            CatchAllChange::Keep => "keep",
            CatchAllChange::Enable => "enable",
            CatchAllChange::Disable => "disable",
        }
    }
}

/// Moves uploaded files in place and changes a link together, checked as one change,
/// run as `bash -c SCRIPT bash MODE TARGET LINK COUNT [NEW FINAL]... CHECK...`: `MODE`
/// is `keep`, `enable` (link `LINK` to `TARGET`) or `disable` (remove `LINK`), then
/// `COUNT` pairs of an uploaded file and its place, then the command that checks the
/// whole configuration. Every place must exist. See the module documentation.
const SWITCH_CHECKED_SCRIPT: &str = concat!(
    "'",
    r#"mode=$1 target=$2 link=$3 count=$4; shift 4; news=(); finals=(); "#,
    r#"for ((i = 0; i < count; i++)); do news+=("$1"); finals+=("$2"); shift 2; done; "#,
    r#"if ! "$@" >/dev/null 2>&1; then "#,
    r#"echo "the configuration already fails its check, before this change; nothing was changed. Fix this first:" >&2; "#,
    r#""$@"; rm -f -- "${news[@]}"; exit 1; fi; "#,
    r#"had_link=; if [ -L "$link" ]; then had_link=$(readlink -- "$link"); fi; "#,
    r#"restore() { for ((i = 0; i < count; i++)); do "#,
    r#"if [ -e "${finals[i]}.brokeforge-previous" ]; then mv -f -- "${finals[i]}.brokeforge-previous" "${finals[i]}"; fi; "#,
    r#"rm -f -- "${news[i]}"; done; "#,
    r#"if [ -n "$had_link" ]; then ln -sfn -- "$had_link" "$link"; else rm -f -- "$link"; fi; }; "#,
    r#"for ((i = 0; i < count; i++)); do cp -p -- "${finals[i]}" "${finals[i]}.brokeforge-previous" || { restore; exit 1; }; done; "#,
    r#"ok=1; for ((i = 0; i < count; i++)); do mv -f -- "${news[i]}" "${finals[i]}" || ok=; done; "#,
    r#"case $mode in enable) ln -sfn -- "$target" "$link" || ok= ;; disable) rm -f -- "$link" || ok= ;; esac; "#,
    r#"if [ -n "$ok" ] && "$@"; then for ((i = 0; i < count; i++)); do rm -f -- "${finals[i]}.brokeforge-previous"; done; exit 0; fi; "#,
    r#"restore; echo "the new configuration failed its check and was taken out again; the previous configuration is in place" >&2; "#,
    r#"exit 1"#,
    "'",
);

/// Moves each uploaded file of `files` (`(uploaded, place)`) to its place and applies
/// `change` to the link `link` (to `target`), only if the configuration passes `check`
/// afterwards; otherwise puts every file and the link back and fails (see the module
/// documentation). Also fails, changing nothing, when the configuration fails its
/// check before the change.
pub fn switch_checked_cmd(
    files: &[(RemotePath, RemotePath)],
    change: CatchAllChange,
    target: &RemotePath,
    link: &RemotePath,
    check: ConfigCheck,
) -> Cmd {
    let cmd = Cmd::new("bash")
        .lit("-c")
        .lit(SWITCH_CHECKED_SCRIPT)
        .lit("bash")
        .lit(change.word())
        .arg(target)
        .arg(link)
        .arg(files.len());
    let cmd = files
        .iter()
        .fold(cmd, |cmd, (new, final_path)| cmd.arg(new).arg(final_path));
    match check {
        ConfigCheck::Nginx => cmd.lit("nginx").lit("-t"),
        ConfigCheck::PhpFpm(version) => cmd.lit(crate::php::names::fpm_binary(version)).lit("-t"),
    }
}

/// Changes which site is the server's default site (see the module documentation).
pub struct DefaultSiteUpdate;

fn server_block(
    outputs: &ProbeOutputs,
    vhost_key: &'static str,
    link_key: &'static str,
) -> Result<ServerBlock, FactError> {
    Ok(ServerBlock {
        contents: outputs.read(vhost_key, parse_file_contents)?,
        link: outputs.read(link_key, parse_link_target)?,
    })
}

/// Checks that `block` is the enabled server block BrokeForge wrote for `site`.
fn check_installed(site: &SiteInstallInput, block: &ServerBlock) -> Result<(), DefaultSiteError> {
    let layout = site.layout();
    let domain = site.domain().to_string();
    let Some(contents) = &block.contents else {
        return Err(DefaultSiteError::SiteNotInstalled {
            domain,
            path: layout.vhost(),
        });
    };
    if !contents.starts_with(VHOST_HEADER) {
        return Err(DefaultSiteError::ForeignConfiguration {
            domain,
            path: layout.vhost(),
        });
    }
    if block.link.as_deref() != Some(layout.vhost().as_str()) {
        return Err(DefaultSiteError::SiteNotEnabled {
            domain,
            link: layout.vhost_link(),
        });
    }
    Ok(())
}

impl Operation for DefaultSiteUpdate {
    type Package = DefaultSite;
    const ACTION: Action = Action::Update;
    type Milestone = DefaultSiteMilestone;
    type Input = DefaultSiteInput;
    type Facts = DefaultSiteFacts;
    type Error = DefaultSiteError;

    fn fact_probes(input: &DefaultSiteInput) -> Vec<FactProbe> {
        let mut probes = vec![FactProbe::new::<DefaultSite>(
            PACKAGES_PROBE,
            package_states_cmd(&[NGINX_PACKAGE]),
        )];
        for (site, vhost_key, link_key) in [
            (&input.site, SITE_VHOST_PROBE, SITE_LINK_PROBE),
            (&input.previous, PREVIOUS_VHOST_PROBE, PREVIOUS_LINK_PROBE),
        ] {
            if let Some(site) = site {
                let layout = site.layout();
                probes.push(FactProbe::new::<DefaultSite>(
                    vhost_key,
                    file_contents_cmd(&layout.vhost()),
                ));
                probes.push(FactProbe::new::<DefaultSite>(
                    link_key,
                    link_target_cmd(&layout.vhost_link()),
                ));
            }
        }
        probes.push(catch_all_probe::<DefaultSite>(CATCH_ALL_PROBE));
        probes.push(FactProbe::new::<DefaultSite>(
            DEFAULT_SERVERS_PROBE,
            default_servers_cmd(),
        ));
        probes
    }

    fn parse_facts(input: &DefaultSiteInput, outputs: &ProbeOutputs) -> Result<DefaultSiteFacts, FactError> {
        Ok(DefaultSiteFacts {
            packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
            site: match input.site {
                Some(_) => server_block(outputs, SITE_VHOST_PROBE, SITE_LINK_PROBE)?,
                None => ServerBlock::default(),
            },
            previous: match input.previous {
                Some(_) => server_block(outputs, PREVIOUS_VHOST_PROBE, PREVIOUS_LINK_PROBE)?,
                None => ServerBlock::default(),
            },
            catch_all: outputs.read(CATCH_ALL_PROBE, parse_catch_all)?,
            default_servers: outputs.read(DEFAULT_SERVERS_PROBE, parse_default_servers)?,
        })
    }

    fn plan(input: &DefaultSiteInput, facts: &DefaultSiteFacts) -> Result<Plan, DefaultSiteError> {
        if !facts.packages.is_installed(NGINX_PACKAGE) {
            return Err(DefaultSiteError::NginxNotInstalled);
        }
        let mut wanted = Vec::new();
        let mut links = Vec::new();
        for (site, block, default_server) in [
            (&input.site, &facts.site, true),
            (&input.previous, &facts.previous, false),
        ] {
            if let Some(site) = site {
                check_installed(site, block)?;
                links.push(site.layout().vhost_link());
                let rendered = render_vhost(site, default_server)?;
                if block.contents.as_deref().map(str::as_bytes) != Some(rendered.as_slice()) {
                    wanted.push((site.layout().vhost(), rendered));
                }
            }
        }
        let others = other_default_servers(facts.default_servers.clone(), &links);
        if input.site.is_some() && !others.is_empty() {
            return Err(DefaultSiteError::OtherDefaultServer {
                others: others.join(", "),
            });
        }
        let catch_all_wanted = input.site.is_none() && others.is_empty() && facts.catch_all.available;
        let change = match (catch_all_wanted, facts.catch_all.enabled) {
            (true, false) => CatchAllChange::Enable,
            (false, true) => CatchAllChange::Disable,
            _ => CatchAllChange::Keep,
        };
        let changed = !wanted.is_empty() || change != CatchAllChange::Keep;

        let mut plan = Self::plan_writer();
        let steps = plan.milestone(DefaultSiteMilestone::WriteServerBlocks);
        let mut files = Vec::new();
        for (final_path, rendered) in wanted {
            let new = with_suffix(&final_path, NEW_SUFFIX);
            steps.upload(new.clone(), rendered, 0o644, Some(root_user()));
            files.push((new, final_path));
        }
        let steps = plan.milestone(DefaultSiteMilestone::SwitchDefault);
        if changed {
            steps.run(switch_checked_cmd(
                &files,
                change,
                &path(DEFAULT_SITE_PATH),
                &path(DEFAULT_SITE_LINK),
                ConfigCheck::Nginx,
            ));
        }
        let steps = plan.milestone(DefaultSiteMilestone::ReloadNginx);
        if changed {
            steps.run(test_and_reload_cmd());
        }
        plan.milestone(DefaultSiteMilestone::Complete);
        Ok(plan.finish())
    }
}

fn root_user() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::SiteType;

    #[test]
    fn the_switch_script_is_one_single_quoted_word() {
        let inner = SWITCH_CHECKED_SCRIPT
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .unwrap();
        assert!(!inner.contains(['\'', '\n']), "{SWITCH_CHECKED_SCRIPT}");
        assert!(inner.contains(super::super::layout::PREVIOUS_SUFFIX));
    }

    #[test]
    fn a_site_cannot_replace_itself() {
        let site = SiteInstallInput::new("example.com".parse().unwrap(), SiteType::Static, None).unwrap();
        assert_eq!(
            DefaultSiteInput::new(Some(site.clone()), Some(site.clone())),
            Err(SameSiteTwice("example.com".to_owned()))
        );
        let json = serde_json::json!({ "site": site, "previous": site });
        assert!(serde_json::from_value::<DefaultSiteInput>(json).is_err());
        let input: DefaultSiteInput = serde_json::from_value(serde_json::json!({ "previous": site })).unwrap();
        assert!(input.site().is_none() && input.previous().is_some());
    }
}

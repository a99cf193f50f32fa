//! Nginx: the web server, from the distribution's archive, with hardened defaults and
//! a catch-all default site.
//!
//! Installing writes BrokeForge's `/etc/nginx/nginx.conf` (rendered from a template and
//! uploaded as bytes; a changed distribution file is first copied to
//! `nginx.conf.before-brokeforge`): version hidden (`server_tokens off`), short client
//! timeouts, a body size limit, gzip for text types, and TLS 1.2/1.3 only for the
//! sites that use TLS. The distribution's own default site is disabled, and replaced by
//! BrokeForge's catch-all site:
//!
//! - HTTP requests for any name no site serves, such as the server's bare IP address,
//!   get one static page, "No site here yet", and 404 for every other path. A page
//!   rather than a silent `444`, because the server's IP answering is the visible proof
//!   that nginx and the firewall work after provisioning; static, so the catch-all runs
//!   no code, and neutral, so it names neither the server nor BrokeForge.
//! - HTTPS connections for unknown names have their TLS handshake refused
//!   (`ssl_reject_handshake`), so no site's certificate is shown for a name it does not
//!   own. nginx 1.18 on Ubuntu 22.04 predates that directive; there the catch-all
//!   listens on HTTP only.
//!
//! A site can take the catch-all's place as the server's default site (see
//! [`crate::site::default_site`]): its server block then declares `default_server` and the
//! catch-all is disabled. Installing nginx again leaves it so: the enabled server
//! blocks that declare `default_server` are a fact, and while one of them is a site's,
//! the catch-all stays disabled (and is disabled, should both be enabled).
//!
//! Every reload is chained after `nginx -t`, so a configuration that fails its check
//! never reaches the running server. Facts: the release, the nginx (and apache2)
//! package states, `nginx -v`, the nginx service, BrokeForge's files and the enabled
//! server blocks that declare `default_server`.
//! Installing refuses while apache2 is installed and nginx is not, since apache2 holds
//! port 80; BrokeForge does not remove someone else's web server.

use std::convert::Infallible;

use brokeforge_core::{Cmd, Plan, Record, RemotePath, UnixUserName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt::{self, DebianPackage};
use crate::facts::{
    FactError, FactProbe, FileKind, PackageStates, ProbeOutput, ProbeOutputs, ServiceState, UnexpectedOutput,
    file_contents_cmd, package_states_cmd, parse_file_contents, parse_package_states, parse_path_kinds,
    parse_service_state, path_kinds_cmd, service_state_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::os::{OsRelease, UnsupportedOs, os_release_cmd, parse_os_release};
use crate::templates::{self, Template, TemplateError};

/// The Debian package.
pub const NGINX_PACKAGE: &str = "nginx";
/// nginx's main configuration file.
pub const MAIN_CONFIG_PATH: &str = "/etc/nginx/nginx.conf";
/// Where a distribution `nginx.conf` is kept when BrokeForge first replaces it.
pub const MAIN_CONFIG_BACKUP_PATH: &str = "/etc/nginx/nginx.conf.before-brokeforge";
/// The catch-all site's configuration.
pub const DEFAULT_SITE_PATH: &str = "/etc/nginx/sites-available/brokeforge-default";
/// The link that enables the catch-all site.
pub const DEFAULT_SITE_LINK: &str = "/etc/nginx/sites-enabled/brokeforge-default";
/// The link that enables the distribution's default site.
pub const DISTRO_DEFAULT_SITE_LINK: &str = "/etc/nginx/sites-enabled/default";
/// The directory of the catch-all site's page.
pub const DEFAULT_PAGE_ROOT: &str = "/var/www/brokeforge-default";
/// The catch-all site's page.
pub const DEFAULT_PAGE_PATH: &str = "/var/www/brokeforge-default/index.html";

/// The first line of every `nginx.conf` BrokeForge writes.
const MAIN_CONFIG_HEADER: &str = "# Written by BrokeForge";

/// Probe keys.
const OS_PROBE: &str = "os_release";
const PACKAGES_PROBE: &str = "nginx_packages";
const VERSION_PROBE: &str = "nginx_version";
const SERVICE_PROBE: &str = "nginx_service";
const MAIN_CONFIG_PROBE: &str = "nginx_main_config";
const DEFAULT_SITE_PROBE: &str = "nginx_default_site";
const DEFAULT_PAGE_PROBE: &str = "nginx_default_page";
const LINKS_PROBE: &str = "nginx_site_links";
const DEFAULT_SERVERS_PROBE: &str = "nginx_default_servers";

/// The directory of the enabled server blocks.
pub const SITES_ENABLED: &str = "/etc/nginx/sites-enabled";

/// Lists the enabled server blocks that declare `default_server` on a `listen` line,
/// run as `sh -c SCRIPT`: one path a line; nothing when there are none.
const DEFAULT_SERVERS_SCRIPT: &str = concat!(
    "'",
    r#"for f in /etc/nginx/sites-enabled/*; do [ -f "$f" ] || continue; "#,
    r#"if grep -Eq "^[[:space:]]*listen[[:space:]][^;#]*[[:space:]]default_server" -- "$f"; then printf "%s\n" "$f"; fi; done"#,
    "'",
);

/// The probe command for the enabled server blocks that declare `default_server`.
pub fn default_servers_cmd() -> Cmd {
    Cmd::new("sh").lit("-c").lit(DEFAULT_SERVERS_SCRIPT)
}

/// Parses the output of [`default_servers_cmd`]: the paths below `sites-enabled`.
pub fn parse_default_servers(output: &ProbeOutput) -> Result<Vec<String>, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Err(UnexpectedOutput(
            "listing the server blocks that declare default_server failed".to_owned(),
        ));
    }
    let servers: Vec<String> = output
        .stdout
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(stranger) = servers
        .iter()
        .find(|path| !path.starts_with(&format!("{SITES_ENABLED}/")))
    {
        return Err(UnexpectedOutput(format!(
            "expected paths below {SITES_ENABLED}, got {stranger:?}"
        )));
    }
    Ok(servers)
}

/// Whether a server block declares `default_server` on one of its `listen` lines,
/// as [`default_servers_cmd`] finds it.
pub fn declares_default_server(text: &str) -> bool {
    text.lines().any(|line| {
        let Some(rest) = line.trim_start().strip_prefix("listen") else {
            return false;
        };
        let directive = rest.split([';', '#']).next().unwrap_or_default();
        rest.starts_with(char::is_whitespace) && directive.split_whitespace().any(|word| word == "default_server")
    })
}

/// nginx, a server package.
pub struct Nginx;

impl Package for Nginx {
    const NAME: PackageName = PackageName::Nginx;
    const SCOPE: Scope = Scope::Server;
}

/// The version `nginx -v` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NginxVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl NginxVersion {
    /// `major.minor`, such as `1.22`, as records store it.
    pub fn major_minor(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// The probe command for [`NginxVersion`]. nginx prints it on stderr.
pub fn nginx_version_cmd() -> Cmd {
    Cmd::new("nginx").lit("-v")
}

/// Parses the output of [`nginx_version_cmd`]: `nginx version: nginx/1.22.1`, with
/// a distribution suffix on Ubuntu (`nginx/1.24.0 (Ubuntu)`); `None` when nginx is not
/// installed (the shell exits with 127).
pub fn parse_nginx_version(output: &ProbeOutput) -> Result<Option<NginxVersion>, UnexpectedOutput> {
    match output.exit_code {
        0 => {}
        127 => return Ok(None),
        _ => return Err(UnexpectedOutput("nginx -v failed".to_owned())),
    }
    let text = if output.stderr.trim().is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    let unexpected = || UnexpectedOutput(format!("expected \"nginx version: nginx/1.2.3\", got {text:?}"));
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("nginx version: "))
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, number)| number.split_whitespace().next().unwrap_or_default())
        .ok_or_else(unexpected)?;
    let parts: Vec<u32> = version
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| unexpected())?;
    let [major, minor, patch] = parts.as_slice() else {
        return Err(unexpected());
    };
    Ok(Some(NginxVersion {
        major: *major,
        minor: *minor,
        patch: *patch,
    }))
}

/// Why an nginx setting is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("the request body limit must be from 1 to 10240 MB")]
pub struct NginxSettingsError;

/// What installing nginx needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NginxInstallFields")]
pub struct NginxInstallInput {
    client_max_body_mb: u32,
}

/// The fields of [`NginxInstallInput`] before validation.
#[derive(Deserialize)]
struct NginxInstallFields {
    #[serde(default = "default_client_max_body_mb")]
    client_max_body_mb: u32,
}

fn default_client_max_body_mb() -> u32 {
    100
}

impl TryFrom<NginxInstallFields> for NginxInstallInput {
    type Error = NginxSettingsError;

    fn try_from(fields: NginxInstallFields) -> Result<Self, Self::Error> {
        NginxInstallInput::new(fields.client_max_body_mb)
    }
}

impl NginxInstallInput {
    /// Checks that the request body limit, in MB, is from 1 to 10240. Match it to
    /// PHP's upload limit.
    pub fn new(client_max_body_mb: u32) -> Result<Self, NginxSettingsError> {
        if (1..=10240).contains(&client_max_body_mb) {
            Ok(NginxInstallInput { client_max_body_mb })
        } else {
            Err(NginxSettingsError)
        }
    }

    /// The request body limit, in MB.
    pub fn client_max_body_mb(self) -> u32 {
        self.client_max_body_mb
    }
}

/// A 100 MB request body limit, PHP's default upload limit.
impl Default for NginxInstallInput {
    fn default() -> Self {
        NginxInstallInput {
            client_max_body_mb: default_client_max_body_mb(),
        }
    }
}

/// What nginx operations read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxFacts {
    pub os: OsRelease,
    /// Packages matching `nginx*` and `libnginx-mod-*`, and apache2.
    pub packages: PackageStates,
    /// What `nginx -v` says; `None` while nginx is not installed.
    pub version: Option<NginxVersion>,
    pub service: ServiceState,
    /// The contents of `/etc/nginx/nginx.conf`, if it exists.
    pub main_config: Option<String>,
    /// The contents of the catch-all site's configuration, if it exists.
    pub default_site: Option<String>,
    /// The contents of the catch-all site's page, if it exists.
    pub default_page: Option<String>,
    /// Whether the distribution's default site is enabled.
    pub distro_default_enabled: bool,
    /// Whether the catch-all site is enabled.
    pub brokeforge_default_enabled: bool,
    /// Whether a copy of the distribution's `nginx.conf` exists.
    pub main_config_backup_exists: bool,
    /// The enabled server blocks other than the catch-all and the distribution's
    /// default site that declare `default_server`: a site made the default.
    pub site_default_servers: Vec<String>,
}

fn link_paths() -> [RemotePath; 3] {
    [
        path(DISTRO_DEFAULT_SITE_LINK),
        path(DEFAULT_SITE_LINK),
        path(MAIN_CONFIG_BACKUP_PATH),
    ]
}

fn nginx_probes() -> Vec<FactProbe> {
    vec![
        FactProbe::new::<Nginx>(OS_PROBE, os_release_cmd()),
        FactProbe::new::<Nginx>(
            PACKAGES_PROBE,
            package_states_cmd(&["nginx*", "libnginx-mod-*", "apache2"]),
        ),
        FactProbe::new::<Nginx>(VERSION_PROBE, nginx_version_cmd()),
        FactProbe::new::<Nginx>(SERVICE_PROBE, service_state_cmd(unit_arg("nginx.service"))),
        FactProbe::new::<Nginx>(MAIN_CONFIG_PROBE, file_contents_cmd(&path(MAIN_CONFIG_PATH))),
        FactProbe::new::<Nginx>(DEFAULT_SITE_PROBE, file_contents_cmd(&path(DEFAULT_SITE_PATH))),
        FactProbe::new::<Nginx>(DEFAULT_PAGE_PROBE, file_contents_cmd(&path(DEFAULT_PAGE_PATH))),
        FactProbe::new::<Nginx>(LINKS_PROBE, path_kinds_cmd(&link_paths())),
        FactProbe::new::<Nginx>(DEFAULT_SERVERS_PROBE, default_servers_cmd()),
    ]
}

fn parse_nginx_facts(outputs: &ProbeOutputs) -> Result<NginxFacts, FactError> {
    let paths = link_paths();
    let kinds = outputs.read(LINKS_PROBE, |output| parse_path_kinds(output, &paths))?;
    let exists = |index: usize| kinds.get(index).is_some_and(Option::is_some);
    Ok(NginxFacts {
        os: outputs.read(OS_PROBE, parse_os_release)?,
        packages: outputs.read(PACKAGES_PROBE, parse_package_states)?,
        version: outputs.read(VERSION_PROBE, parse_nginx_version)?,
        service: outputs.read(SERVICE_PROBE, parse_service_state)?,
        main_config: outputs.read(MAIN_CONFIG_PROBE, parse_file_contents)?,
        default_site: outputs.read(DEFAULT_SITE_PROBE, parse_file_contents)?,
        default_page: outputs.read(DEFAULT_PAGE_PROBE, parse_file_contents)?,
        distro_default_enabled: exists(0),
        brokeforge_default_enabled: matches!(kinds.get(1), Some(Some(FileKind::SymbolicLink))),
        main_config_backup_exists: exists(2),
        site_default_servers: outputs
            .read(DEFAULT_SERVERS_PROBE, parse_default_servers)?
            .into_iter()
            .filter(|path| path != DEFAULT_SITE_LINK && path != DISTRO_DEFAULT_SITE_LINK)
            .collect(),
    })
}

/// Why installing nginx refuses to plan. The messages are meant for users.
#[derive(Debug, Error)]
pub enum NginxInstallError {
    #[error(transparent)]
    UnsupportedOs(#[from] UnsupportedOs),
    #[error(
        "apache2 is installed on this server and would keep port 80 from nginx; \
         BrokeForge does not remove another web server. Remove it (apt-get purge apache2) and try again"
    )]
    ApacheInstalled,
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The template context of [`Template::NginxConf`].
#[derive(Serialize)]
struct MainConfigContext {
    client_max_body_size_mb: u32,
}

/// The template context of [`Template::NginxDefaultSite`].
#[derive(Serialize)]
struct DefaultSiteContext {
    page_root: &'static str,
    reject_tls_handshakes: bool,
}

/// Enables the catch-all site: `ln -sfn` of its configuration into `sites-enabled`.
pub fn enable_catch_all_cmd() -> Cmd {
    Cmd::new("ln")
        .lit("-sfn")
        .lit("--")
        .lit(DEFAULT_SITE_PATH)
        .lit(DEFAULT_SITE_LINK)
}

/// Checks the whole configuration, then reloads nginx (or starts it when stopped);
/// a failed check stops the chain before anything reloads.
pub fn test_and_reload_cmd() -> Cmd {
    Cmd::new("nginx")
        .lit("-t")
        .and(Cmd::new("systemctl").lit("reload-or-restart").lit("nginx"))
}

milestones! {
    /// Milestones of installing nginx.
    pub enum NginxInstallMilestone {
        InstallNginx => ("install_nginx", "Installing nginx"),
        WriteConfiguration => ("write_configuration", "Writing nginx's configuration"),
        SetUpDefaultSite => ("set_up_default_site", "Setting up the default site"),
        TestAndReload => ("test_and_reload", "Testing the configuration and reloading nginx"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs nginx with hardened defaults and the catch-all site.
pub struct NginxInstall;

impl Operation for NginxInstall {
    type Package = Nginx;
    const ACTION: Action = Action::Install;
    type Milestone = NginxInstallMilestone;
    type Input = NginxInstallInput;
    type Facts = NginxFacts;
    type Error = NginxInstallError;

    fn fact_probes(_input: &NginxInstallInput) -> Vec<FactProbe> {
        nginx_probes()
    }

    fn parse_facts(_input: &NginxInstallInput, outputs: &ProbeOutputs) -> Result<NginxFacts, FactError> {
        parse_nginx_facts(outputs)
    }

    fn plan(input: &NginxInstallInput, facts: &NginxFacts) -> Result<Plan, NginxInstallError> {
        let os = facts.os.supported()?;
        let nginx_installed = facts.packages.is_installed(NGINX_PACKAGE);
        if !nginx_installed && facts.packages.is_installed("apache2") {
            return Err(NginxInstallError::ApacheInstalled);
        }
        let mut plan = Self::plan_writer();
        let mut changed = false;

        let steps = plan.milestone(NginxInstallMilestone::InstallNginx);
        let install =
            apt::commands_to_install_all(&[DebianPackage::from_static(NGINX_PACKAGE)], &facts.packages, false);
        changed |= !install.is_empty();
        for cmd in install {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(NginxInstallMilestone::WriteConfiguration);
        let main_config = templates::render(
            Template::NginxConf,
            &MainConfigContext {
                client_max_body_size_mb: input.client_max_body_mb,
            },
        )?;
        if facts.main_config.as_deref().map(str::as_bytes) != Some(main_config.as_slice()) {
            if let Some(current) = &facts.main_config
                && !current.starts_with(MAIN_CONFIG_HEADER)
            {
                steps.run(
                    Cmd::new("cp")
                        .lit("-p")
                        .lit("--")
                        .lit(MAIN_CONFIG_PATH)
                        .lit(MAIN_CONFIG_BACKUP_PATH),
                );
            }
            steps.upload(path(MAIN_CONFIG_PATH), main_config, 0o644, Some(root()));
            changed = true;
        }

        let steps = plan.milestone(NginxInstallMilestone::SetUpDefaultSite);
        let page = templates::render(Template::NginxDefaultPage, &serde_json::json!({}))?;
        if facts.default_page.as_deref().map(str::as_bytes) != Some(page.as_slice()) {
            steps
                .run(
                    Cmd::new("install")
                        .lit("-d")
                        .lit("-m")
                        .lit("0755")
                        .lit("--")
                        .lit(DEFAULT_PAGE_ROOT),
                )
                .upload(path(DEFAULT_PAGE_PATH), page, 0o644, Some(root()));
            changed = true;
        }
        let site = templates::render(
            Template::NginxDefaultSite,
            &DefaultSiteContext {
                page_root: DEFAULT_PAGE_ROOT,
                reject_tls_handshakes: os.nginx_rejects_tls_handshakes(),
            },
        )?;
        if facts.default_site.as_deref().map(str::as_bytes) != Some(site.as_slice()) {
            steps.upload(path(DEFAULT_SITE_PATH), site, 0o644, Some(root()));
            changed = true;
        }
        // A site made the default replaces the catch-all; two default servers would
        // fail nginx's check.
        let site_is_default = !facts.site_default_servers.is_empty();
        if !site_is_default && !facts.brokeforge_default_enabled {
            steps.run(enable_catch_all_cmd());
            changed = true;
        }
        if site_is_default && facts.brokeforge_default_enabled {
            steps.run(Cmd::new("rm").lit("-f").lit("--").lit(DEFAULT_SITE_LINK));
            changed = true;
        }
        // Installing nginx enables the distribution's default site, whose
        // `default_server` would clash with the catch-all.
        if facts.distro_default_enabled || !nginx_installed {
            steps.run(Cmd::new("rm").lit("-f").lit("--").lit(DISTRO_DEFAULT_SITE_LINK));
            changed = true;
        }

        let steps = plan.milestone(NginxInstallMilestone::TestAndReload);
        if !facts.service.is_enabled() {
            steps.run(Cmd::new("systemctl").lit("enable").lit("nginx"));
        }
        if changed || !facts.service.is_active() {
            steps.run(test_and_reload_cmd());
        }

        let version = match facts.version {
            Some(version) if nginx_installed => version.major_minor(),
            _ => os.distro_nginx_version().to_owned(),
        };
        plan.milestone(NginxInstallMilestone::Complete).persist(
            Record::new(Nginx::TYPE.as_str(), Nginx::NAME.as_str(), version).with_configuration(serde_json::json!({
                "default_site": if site_is_default { "site" } else { "static-page" },
                "default_site_rejects_unknown_tls": os.nginx_rejects_tls_handshakes(),
                "client_max_body_mb": input.client_max_body_mb,
            })),
        );
        Ok(plan.finish())
    }
}

milestones! {
    /// Milestones of removing nginx.
    pub enum NginxRemoveMilestone {
        RemoveNginx => ("remove_nginx", "Removing nginx"),
        RemoveDefaultSite => ("remove_default_site", "Removing the default site"),
        Complete => ("complete", "Complete"),
    }
}

/// Purges nginx and its modules, then BrokeForge's catch-all site and the copy of the
/// distribution's configuration. The application refuses beforehand while sites
/// exist, and deletes the record once the plan succeeded.
pub struct NginxRemove;

impl Operation for NginxRemove {
    type Package = Nginx;
    const ACTION: Action = Action::Remove;
    type Milestone = NginxRemoveMilestone;
    type Input = ();
    type Facts = NginxFacts;
    type Error = Infallible;

    fn fact_probes(_input: &()) -> Vec<FactProbe> {
        nginx_probes()
    }

    fn parse_facts(_input: &(), outputs: &ProbeOutputs) -> Result<NginxFacts, FactError> {
        parse_nginx_facts(outputs)
    }

    fn plan(_input: &(), facts: &NginxFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(NginxRemoveMilestone::RemoveNginx);
        let present: Vec<DebianPackage> = facts
            .packages
            .present()
            .filter(|package| package.starts_with("nginx") || package.starts_with("libnginx-mod-"))
            .map(|package| DebianPackage::new(package).expect("dpkg lists valid package names"))
            .collect();
        if !present.is_empty() {
            steps.run_with_timeout(apt::purge_all(&present), apt::APT_TIMEOUT);
        }

        let steps = plan.milestone(NginxRemoveMilestone::RemoveDefaultSite);
        let files: Vec<&'static str> = [
            (facts.brokeforge_default_enabled, DEFAULT_SITE_LINK),
            (facts.default_site.is_some(), DEFAULT_SITE_PATH),
            (facts.main_config_backup_exists, MAIN_CONFIG_BACKUP_PATH),
        ]
        .into_iter()
        .filter_map(|(exists, file)| exists.then_some(file))
        .collect();
        if !files.is_empty() {
            steps.run(
                files
                    .iter()
                    .fold(Cmd::new("rm").lit("-f").lit("--"), |cmd, file| cmd.lit(file)),
            );
        }
        if facts.default_page.is_some() {
            steps.run(Cmd::new("rm").lit("-rf").lit("--").lit(DEFAULT_PAGE_ROOT));
        }

        plan.milestone(NginxRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

fn unit_arg(unit: &'static str) -> brokeforge_core::ShellArg {
    brokeforge_core::ShellArg::new(unit).expect("a literal without NUL")
}

fn root() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_are_bounded() {
        assert_eq!(NginxInstallInput::default().client_max_body_mb(), 100);
        assert!(NginxInstallInput::new(0).is_err());
        assert!(NginxInstallInput::new(10241).is_err());
        let input: NginxInstallInput = serde_json::from_str("{}").unwrap();
        assert_eq!(input, NginxInstallInput::default());
        assert!(serde_json::from_str::<NginxInstallInput>(r#"{"client_max_body_mb":0}"#).is_err());
        assert!(serde_json::from_str::<NginxInstallInput>(r#"{"client_max_body_mb":"100m; return 200"}"#).is_err());
    }

    #[test]
    fn default_servers_are_found_on_listen_lines_only() {
        assert!(declares_default_server("server {\n    listen 80 default_server;\n}\n"));
        assert!(declares_default_server("    listen [::]:80   default_server ;\n"));
        assert!(declares_default_server("listen 443 ssl default_server;"));
        assert!(!declares_default_server("# listen 80 default_server;\n"));
        assert!(!declares_default_server("listen 80; # default_server\n"));
        assert!(!declares_default_server("listen 80;\nserver_name default_server;\n"));
        assert!(!declares_default_server("listener default_server;\n"));
        assert!(!declares_default_server("listen 80 default_servers;\n"));
        let output =
            ProbeOutput::success("/etc/nginx/sites-enabled/a.conf\n/etc/nginx/sites-enabled/brokeforge-default\n");
        assert_eq!(parse_default_servers(&output).unwrap().len(), 2);
        assert!(parse_default_servers(&ProbeOutput::success("/etc/passwd\n")).is_err());
        assert!(parse_default_servers(&ProbeOutput::new(2, "", "sh: oops")).is_err());
        let inner = DEFAULT_SERVERS_SCRIPT
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .unwrap();
        assert!(!inner.contains(['\'', '\n']) && inner.contains(SITES_ENABLED));
    }
}

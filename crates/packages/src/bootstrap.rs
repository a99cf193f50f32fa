//! The bootstrap script: what a user pipes into `sudo bash` on a fresh server so that
//! BrokeForge can reach and manage it.
//!
//! [`render_bootstrap_script`] renders [`Template::BootstrapScript`] from a
//! [`BootstrapScriptInput`] whose every value is validated (callback URLs, OpenSSH
//! public keys, the SSH port, typed sudo rules) and inserted through the `shell_quote`
//! filter. The script:
//!
//! - refuses to run as anything but root, and on anything but a supported release;
//! - waits (boundedly, saying so) for other package managers to let go of apt's locks,
//!   and installs curl, sudo, ca-certificates and the SSH server if they are missing;
//! - checks that sshd listens on the SSH port the server was added with;
//! - creates the `brokeforge` user (home `/home/brokeforge`, shell `/bin/bash`, no
//!   password) with sudo rules for exactly the commands of [`SudoRules`], checked
//!   with `visudo -cf` before they are moved into `/etc/sudoers.d/brokeforge`;
//! - adds the control plane's public keys to root's and brokeforge's
//!   `authorized_keys` (once: a line already holding the key is kept as it is);
//! - generates an ed25519 deploy key for brokeforge on the server if it has none;
//! - turns off password and keyboard-interactive logins over SSH and limits root to
//!   keys, with a drop-in in `/etc/ssh/sshd_config.d` that `sshd -t` checks before
//!   sshd reloads, keeping the SSH port as it is;
//! - reports each step to the progress URL, then the server's SSH host keys, the
//!   deploy key's public half and `/etc/os-release` to the completion URL (bodies are
//!   JSON built by a small escaping function; see [`BootstrapProgress`] and
//!   [`BootstrapCompletion`]), and prints a summary.
//!
//! No private key or password travels from the control plane to the server: the
//! script carries only public keys and two signed URLs. When a callback answers 401 or
//! 410 (the line was used or has expired), the script stops and tells the user to get
//! a new line from BrokeForge. Everything runs from a `main` function called on the
//! script's last line, so a download cut short runs nothing.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use brokeforge_core::{PhpVersion, Port};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::os::{OsRelease, SupportedOs, UnsupportedOs, parse_os_release_text};
use crate::php::names::cli_binary;
use crate::ssh_key::{OpenSshPublicKey, OpenSshPublicKeyError};
use crate::templates::{self, Template, TemplateError};

/// The account BrokeForge creates for sites.
pub const APP_USER: &str = "brokeforge";
/// Its home directory.
pub const APP_HOME: &str = "/home/brokeforge";
/// Its sudo rules.
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/brokeforge";
/// BrokeForge's sshd settings; `00-` sorts it first, and sshd keeps the first value
/// it reads for each keyword.
pub const SSHD_DROP_IN: &str = "/etc/ssh/sshd_config.d/00-brokeforge.conf";
/// The deploy key generated on the server, brokeforge's default identity for Git.
pub const DEPLOY_KEY_PATH: &str = "/home/brokeforge/.ssh/id_ed25519";

/// Why a text is not a [`CallbackUrl`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CallbackUrlError {
    #[error("a callback URL can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("a callback URL cannot contain {0:?}")]
    InvalidCharacter(char),
    #[error("a callback URL must start with https:// (or http:// for a loopback or private address)")]
    Scheme,
    #[error("a callback URL needs a host")]
    MissingHost,
    #[error("a callback URL cannot carry a user name or password")]
    UserInfo,
    #[error("a callback URL on a public host must use https://")]
    InsecureHttp,
}

/// An absolute URL the bootstrap script posts to: `https://`, or `http://` only for
/// `localhost` and loopback or private addresses (test and LAN set-ups); no user
/// name or password; only the characters RFC 3986 allows. It is shell-quoted in the
/// script and passed to curl through its configuration on stdin, so it never appears
/// in the server's process list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    /// The longest URL accepted.
    pub const MAX_LENGTH: usize = 2048;

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn validate(text: &str) -> Result<Self, CallbackUrlError> {
        if text.len() > Self::MAX_LENGTH {
            return Err(CallbackUrlError::TooLong { max: Self::MAX_LENGTH });
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(*c)))
        {
            return Err(CallbackUrlError::InvalidCharacter(bad));
        }
        let (secure, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(CallbackUrlError::Scheme);
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(CallbackUrlError::UserInfo);
        }
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            authority.rsplit_once(':').map_or(authority, |(host, _port)| host)
        };
        if host.is_empty() {
            return Err(CallbackUrlError::MissingHost);
        }
        if !secure && !is_local_host(host) {
            return Err(CallbackUrlError::InsecureHttp);
        }
        Ok(CallbackUrl(text.to_owned()))
    }
}

/// Whether `host` is `localhost` or a loopback, private or link-local address.
fn is_local_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) => address.is_loopback() || address.is_private() || address.is_link_local(),
        Ok(IpAddr::V6(address)) => {
            let first = address.segments()[0];
            address.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
        Err(_) => false,
    }
}

impl FromStr for CallbackUrl {
    type Err = CallbackUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CallbackUrl::validate(text)
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CallbackUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One command the brokeforge user may run as root without a password. Nothing else
/// can be granted: there is no variant for a shell, an editor or a file command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SudoRule {
    /// `nginx -t`, to check a site's configuration before reloading.
    TestNginx,
    ReloadNginx,
    RestartNginx,
    ReloadPhpFpm(PhpVersion),
    RestartPhpFpm(PhpVersion),
}

impl SudoRule {
    /// The command as sudoers matches it: a full path and exact arguments, no
    /// wildcards, so `sudo systemctl reload nginx` matches and nothing longer does.
    pub fn command(self) -> String {
        match self {
            SudoRule::TestNginx => "/usr/sbin/nginx -t".to_owned(),
            SudoRule::ReloadNginx => "/usr/bin/systemctl reload nginx".to_owned(),
            SudoRule::RestartNginx => "/usr/bin/systemctl restart nginx".to_owned(),
            SudoRule::ReloadPhpFpm(version) => format!("/usr/bin/systemctl reload {}-fpm", cli_binary(version)),
            SudoRule::RestartPhpFpm(version) => format!("/usr/bin/systemctl restart {}-fpm", cli_binary(version)),
        }
    }
}

/// The sudo rules of the brokeforge user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SudoRules(Vec<SudoRule>);

impl SudoRules {
    /// Testing, reloading and restarting nginx, and reloading and restarting the FPM of
    /// every PHP version BrokeForge can install.
    pub fn standard() -> Self {
        let mut rules = vec![SudoRule::TestNginx, SudoRule::ReloadNginx, SudoRule::RestartNginx];
        for version in PhpVersion::ALL {
            rules.push(SudoRule::ReloadPhpFpm(*version));
            rules.push(SudoRule::RestartPhpFpm(*version));
        }
        SudoRules(rules)
    }

    /// Exactly `rules`, without duplicates, in the order given.
    pub fn new(rules: impl IntoIterator<Item = SudoRule>) -> Self {
        let mut unique: Vec<SudoRule> = Vec::new();
        for rule in rules {
            if !unique.contains(&rule) {
                unique.push(rule);
            }
        }
        SudoRules(unique)
    }

    /// The rules.
    pub fn as_slice(&self) -> &[SudoRule] {
        &self.0
    }

    /// The lines of `/etc/sudoers.d/brokeforge`.
    pub fn sudoers_lines(&self) -> Vec<String> {
        let mut lines = vec![
            "# Written by BrokeForge's bootstrap script: the brokeforge user may run exactly".to_owned(),
            "# these commands as root, without a password, and nothing else.".to_owned(),
        ];
        lines.extend(
            self.0
                .iter()
                .map(|rule| format!("{APP_USER} ALL=(root) NOPASSWD: {}", rule.command())),
        );
        lines
    }
}

impl Default for SudoRules {
    fn default() -> Self {
        SudoRules::standard()
    }
}

/// The lines of BrokeForge's sshd drop-in. The port is not among them: the server
/// keeps listening where it did, which the script checks matches `ssh_port`.
pub fn sshd_drop_in_lines(ssh_port: Port) -> Vec<String> {
    vec![
        "# Written by BrokeForge's bootstrap script. sshd keeps the first value it reads".to_owned(),
        "# for each keyword, and this file sorts first in sshd_config.d.".to_owned(),
        format!("# sshd keeps listening on port {ssh_port}, as before."),
        "PasswordAuthentication no".to_owned(),
        "KbdInteractiveAuthentication no".to_owned(),
        "PermitRootLogin prohibit-password".to_owned(),
        "PubkeyAuthentication yes".to_owned(),
    ]
}

string_enum! {
    /// A step of the bootstrap script, as it reports progress.
    pub enum BootstrapStep ("bootstrap step") {
        /// The script runs as root on a supported release and reached BrokeForge.
        Started => "started",
        /// curl, sudo and the SSH server are installed, and sshd's port checked.
        Prerequisites => "prerequisites",
        /// The brokeforge user and its sudo rules exist.
        User => "user",
        /// The public keys and the deploy key are in place.
        Keys => "keys",
        /// sshd is hardened.
        Sshd => "sshd",
        /// The host keys and the deploy key are being reported.
        Report => "report",
    }
}

impl BootstrapStep {
    /// What the step does, as the script prints it and the UI shows it.
    pub const fn label(self) -> &'static str {
        match self {
            BootstrapStep::Started => "Checking in with BrokeForge",
            BootstrapStep::Prerequisites => "Installing prerequisites",
            BootstrapStep::User => "Creating the brokeforge user",
            BootstrapStep::Keys => "Installing SSH keys",
            BootstrapStep::Sshd => "Hardening SSH",
            BootstrapStep::Report => "Reporting to BrokeForge",
        }
    }
}

string_enum! {
    /// The status a progress report carries.
    pub enum BootstrapStepStatus ("bootstrap step status") {
        Running => "running",
        Success => "success",
        Failed => "failed",
    }
}

/// The JSON body the script posts to the progress URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapProgress {
    pub step: BootstrapStep,
    pub status: BootstrapStepStatus,
    /// Why the step failed, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The JSON body the script posts to the completion URL, before validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapCompletion {
    /// The lines of `/etc/ssh/ssh_host_*_key.pub`.
    pub ssh_host_keys: Vec<String>,
    /// The public half of brokeforge's deploy key.
    pub deploy_public_key: String,
    /// The text of `/etc/os-release`.
    pub os_release: String,
    /// The SSH port the script checked.
    pub ssh_port: Port,
}

/// Why a completion report is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BootstrapReportError {
    #[error("the report holds no SSH host key")]
    NoHostKeys,
    #[error("SSH host key {position} is not a valid public key: {source}")]
    HostKey {
        position: usize,
        #[source]
        source: OpenSshPublicKeyError,
    },
    #[error("the deploy key is not a valid public key: {0}")]
    DeployKey(OpenSshPublicKeyError),
    #[error("the deploy key must be an ed25519 key, not {0}")]
    DeployKeyType(String),
    #[error("the os-release text does not parse: {0}")]
    OsRelease(String),
    #[error(transparent)]
    UnsupportedOs(#[from] UnsupportedOs),
    #[error("the script checked SSH port {reported}, but the server was added with {expected}")]
    PortMismatch { reported: Port, expected: Port },
}

/// A completion report whose every value is validated, for the application to pin the
/// host keys, store the deploy key and record the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCompletion {
    pub ssh_host_keys: Vec<OpenSshPublicKey>,
    pub deploy_public_key: OpenSshPublicKey,
    pub os_release: OsRelease,
    pub os: SupportedOs,
}

impl BootstrapCompletion {
    /// Validates the report of a server added with `expected_ssh_port`.
    pub fn verify(&self, expected_ssh_port: Port) -> Result<VerifiedCompletion, BootstrapReportError> {
        if self.ssh_port != expected_ssh_port {
            return Err(BootstrapReportError::PortMismatch {
                reported: self.ssh_port,
                expected: expected_ssh_port,
            });
        }
        if self.ssh_host_keys.is_empty() {
            return Err(BootstrapReportError::NoHostKeys);
        }
        let ssh_host_keys = self
            .ssh_host_keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                key.parse().map_err(|source| BootstrapReportError::HostKey {
                    position: index + 1,
                    source,
                })
            })
            .collect::<Result<Vec<OpenSshPublicKey>, _>>()?;
        let deploy_public_key: OpenSshPublicKey = self
            .deploy_public_key
            .parse()
            .map_err(BootstrapReportError::DeployKey)?;
        if deploy_public_key.key_type() != "ssh-ed25519" {
            return Err(BootstrapReportError::DeployKeyType(
                deploy_public_key.key_type().to_owned(),
            ));
        }
        let os_release =
            parse_os_release_text(&self.os_release).map_err(|error| BootstrapReportError::OsRelease(error.0))?;
        let os = os_release.supported()?;
        Ok(VerifiedCompletion {
            ssh_host_keys,
            deploy_public_key,
            os_release,
            os,
        })
    }
}

/// What rendering the bootstrap script needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapScriptInput {
    /// Where the script posts each step's [`BootstrapProgress`]: a signed, expiring URL.
    pub progress_url: CallbackUrl,
    /// Where the script posts its [`BootstrapCompletion`]: a signed, expiring URL.
    pub completion_url: CallbackUrl,
    /// The control plane's public key for root.
    pub root_public_key: OpenSshPublicKey,
    /// The control plane's public key for brokeforge.
    pub brokeforge_public_key: OpenSshPublicKey,
    /// The port the server's sshd listens on, as the user entered it.
    pub ssh_port: Port,
    /// What brokeforge may run as root.
    pub sudo_rules: SudoRules,
}

/// Why the bootstrap script cannot be rendered.
#[derive(Debug, Error)]
pub enum BootstrapScriptError {
    #[error("root and brokeforge must have different SSH keys, so that each account has its own identity")]
    SameKeyForBothUsers,
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// One step's key and label, for the template.
#[derive(Serialize)]
struct StepContext {
    key: &'static str,
    label: &'static str,
}

/// The template context of [`Template::BootstrapScript`]. Every value reaches the
/// script through `shell_quote`.
#[derive(Serialize)]
struct ScriptContext<'a> {
    progress_url: &'a str,
    completion_url: &'a str,
    ssh_port: u16,
    root_public_key: String,
    root_key_material: String,
    brokeforge_public_key: String,
    brokeforge_key_material: String,
    app_user: &'static str,
    app_home: &'static str,
    sudoers_file: &'static str,
    sudoers_lines: Vec<String>,
    sshd_drop_in: &'static str,
    sshd_lines: Vec<String>,
    deploy_key: &'static str,
    supported_os: Vec<String>,
    supported_os_text: String,
    steps: std::collections::BTreeMap<&'static str, StepContext>,
}

/// Renders the bootstrap script for `input`. Pure: the same input gives the same
/// bytes.
pub fn render_bootstrap_script(input: &BootstrapScriptInput) -> Result<Vec<u8>, BootstrapScriptError> {
    if input.root_public_key.key_material() == input.brokeforge_public_key.key_material() {
        return Err(BootstrapScriptError::SameKeyForBothUsers);
    }
    let steps = BootstrapStep::ALL
        .iter()
        .map(|step| {
            (
                step.as_str(),
                StepContext {
                    key: step.as_str(),
                    label: step.label(),
                },
            )
        })
        .collect();
    let context = ScriptContext {
        progress_url: input.progress_url.as_str(),
        completion_url: input.completion_url.as_str(),
        ssh_port: input.ssh_port.get(),
        root_public_key: input.root_public_key.authorized_keys_line(),
        root_key_material: input.root_public_key.key_material(),
        brokeforge_public_key: input.brokeforge_public_key.authorized_keys_line(),
        brokeforge_key_material: input.brokeforge_public_key.key_material(),
        app_user: APP_USER,
        app_home: APP_HOME,
        sudoers_file: SUDOERS_FILE,
        sudoers_lines: input.sudo_rules.sudoers_lines(),
        sshd_drop_in: SSHD_DROP_IN,
        sshd_lines: sshd_drop_in_lines(input.ssh_port),
        deploy_key: DEPLOY_KEY_PATH,
        supported_os: SupportedOs::ALL
            .iter()
            .map(|os| format!("{}:{}", os.id(), os.version_id()))
            .collect(),
        supported_os_text: SupportedOs::supported_list(),
        steps,
    };
    Ok(templates::render(Template::BootstrapScript, &context)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_are_validated() {
        let ok = [
            "https://brokeforge.example.com/bootstrap/callbacks/42/progress?expires=1767225600&signature=Zm9v-YmFy_",
            "http://127.0.0.1:8080/cb",
            "http://localhost:3000/cb",
            "http://10.0.0.5/cb",
            "http://[::1]:8080/cb",
            "https://[2001:db8::1]/cb",
        ];
        for url in ok {
            assert_eq!(url.parse::<CallbackUrl>().unwrap().as_str(), url);
        }
        let refused = [
            ("http://brokeforge.example.com/cb", CallbackUrlError::InsecureHttp),
            ("http://8.8.8.8/cb", CallbackUrlError::InsecureHttp),
            ("ftp://example.com/cb", CallbackUrlError::Scheme),
            ("https://user:pass@example.com/cb", CallbackUrlError::UserInfo),
            ("https:///cb", CallbackUrlError::MissingHost),
            ("https://example.com/a b", CallbackUrlError::InvalidCharacter(' ')),
            ("https://example.com/\"x", CallbackUrlError::InvalidCharacter('"')),
            ("https://example.com/`id`", CallbackUrlError::InvalidCharacter('`')),
            ("https://example.com/\\x", CallbackUrlError::InvalidCharacter('\\')),
            ("https://example.com/\nx", CallbackUrlError::InvalidCharacter('\n')),
        ];
        for (url, error) in refused {
            assert_eq!(url.parse::<CallbackUrl>(), Err(error), "{url:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(
            long.parse::<CallbackUrl>(),
            Err(CallbackUrlError::TooLong { max: 2048 })
        );
    }

    #[test]
    fn sudo_rules_are_exact_commands() {
        let lines = SudoRules::standard().sudoers_lines();
        assert_eq!(lines.len(), 2 + 3 + 2 * PhpVersion::ALL.len());
        assert!(lines.contains(&"brokeforge ALL=(root) NOPASSWD: /usr/bin/systemctl reload php8.3-fpm".to_owned()));
        for line in &lines[2..] {
            assert!(
                !line.contains('*') && !line.contains("ALL=(ALL)") && !line.ends_with("ALL"),
                "{line}"
            );
        }
        assert_eq!(
            SudoRules::new([SudoRule::ReloadNginx, SudoRule::ReloadNginx]).as_slice(),
            &[SudoRule::ReloadNginx]
        );
    }
}

/// The line a user runs on the server: `curl -fsSL '<script URL>' | sudo bash`, with
/// the URL quoted for the shell.
pub fn bootstrap_command_line(script_url: &str) -> Result<String, brokeforge_core::CmdError> {
    Ok(brokeforge_core::Cmd::new("curl")
        .lit("-fsSL")
        .try_arg(script_url)?
        .pipe(brokeforge_core::Cmd::new("sudo").lit("bash"))
        .render_for_execution())
}

/// The script served for a bootstrap line that cannot be used: it prints `message`
/// on standard error and exits with status 3, changing nothing.
pub fn render_refusal_script(message: &str) -> Vec<u8> {
    let message: String = message.chars().filter(|c| *c != '\0').collect();
    let print = brokeforge_core::Cmd::new("printf")
        .lit("'BrokeForge: %s\\n'")
        .try_arg(message)
        .expect("NUL bytes were removed")
        .render_for_execution();
    let mut script = String::from("#!/usr/bin/env bash\n# BrokeForge cannot bootstrap this server with this line.\n");
    script.push_str(&print);
    script.push_str(" >&2\nexit 3\n");
    script.into_bytes()
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn the_bootstrap_line_quotes_its_url() {
        assert_eq!(
            bootstrap_command_line("https://forge.example.com/bootstrap/ab12").unwrap(),
            "curl -fsSL https://forge.example.com/bootstrap/ab12 | sudo bash"
        );
        let url = "https://x/'; rm -rf / #";
        let hostile = bootstrap_command_line(url).unwrap();
        let quoted = hostile
            .strip_prefix("curl -fsSL ")
            .and_then(|rest| rest.strip_suffix(" | sudo bash"))
            .unwrap_or_else(|| panic!("unexpected shape: {hostile}"));
        // The shell reads the quoted URL back as exactly one, unchanged word.
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(String::from("printf '%s|' ") + quoted)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{url}|"));
    }

    #[test]
    fn a_refusal_script_prints_its_message_and_fails() {
        let script = render_refusal_script("this line was already used; it's $(gone)");
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(String::from_utf8(script).unwrap())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "BrokeForge: this line was already used; it's $(gone)\n"
        );
        assert!(output.stdout.is_empty());
    }
}

//! The server's operating system, from `/etc/os-release`: which distribution and
//! release it runs, and whether BrokeForge supports it.
//!
//! BrokeForge supports Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12
//! (bookworm). [`OsRelease`] holds what the file says; [`OsRelease::supported`] turns
//! it into a [`SupportedOs`], which knows what each release's own archive ships (its
//! PHP version, its Node.js major, its nginx), or into an [`UnsupportedOs`] error that
//! names what was found and what is supported.
//!
//! The file is a list of `KEY=value` lines whose values may be quoted like shell
//! words (`"..."` with `\"`, `\\`, `\$` and `` \` `` escapes, or `'...'`); the parser
//! reads them without running a shell.

use std::fmt;

use brokeforge_core::{Cmd, PhpVersion, RemotePath};
use serde::Serialize;
use thiserror::Error;

use crate::facts::{ProbeOutput, UnexpectedOutput};

/// Where the operating system describes itself.
pub const OS_RELEASE_PATH: &str = "/etc/os-release";

/// What `/etc/os-release` says about the operating system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID`, such as `ubuntu` or `debian`.
    pub id: String,
    /// `VERSION_ID`, such as `24.04` or `12`; missing on rolling releases.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, such as `noble` or `bookworm`.
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`, such as `Ubuntu 24.04.1 LTS`.
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// The supported release this is, or why it is not supported.
    pub fn supported(&self) -> Result<SupportedOs, UnsupportedOs> {
        SupportedOs::ALL
            .iter()
            .copied()
            .find(|os| self.id == os.id() && self.version_id.as_deref() == Some(os.version_id()))
            .ok_or_else(|| UnsupportedOs { found: self.describe() })
    }

    /// A one-line description for messages: the pretty name, or the ID and version.
    pub fn describe(&self) -> String {
        match (&self.pretty_name, &self.version_id) {
            (Some(pretty_name), _) => pretty_name.clone(),
            (None, Some(version_id)) => format!("{} {version_id}", self.id),
            (None, None) => self.id.clone(),
        }
    }
}

/// The distribution families BrokeForge supports, which differ in where third-party
/// packages come from (the sury repository on Debian, Launchpad PPAs on Ubuntu).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Debian,
    Ubuntu,
}

/// A release BrokeForge supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupportedOs {
    /// Ubuntu 22.04 LTS, jammy.
    Ubuntu2204,
    /// Ubuntu 24.04 LTS, noble.
    Ubuntu2404,
    /// Debian 12, bookworm.
    Debian12,
}

impl SupportedOs {
    /// Every supported release, in the order messages list them.
    pub const ALL: &'static [SupportedOs] = &[SupportedOs::Ubuntu2204, SupportedOs::Ubuntu2404, SupportedOs::Debian12];

    /// The distribution.
    pub const fn distribution(self) -> Distribution {
        match self {
            SupportedOs::Ubuntu2204 | SupportedOs::Ubuntu2404 => Distribution::Ubuntu,
            SupportedOs::Debian12 => Distribution::Debian,
        }
    }

    /// `ID` in `/etc/os-release`.
    pub const fn id(self) -> &'static str {
        match self.distribution() {
            Distribution::Ubuntu => "ubuntu",
            Distribution::Debian => "debian",
        }
    }

    /// `VERSION_ID` in `/etc/os-release`.
    pub const fn version_id(self) -> &'static str {
        match self {
            SupportedOs::Ubuntu2204 => "22.04",
            SupportedOs::Ubuntu2404 => "24.04",
            SupportedOs::Debian12 => "12",
        }
    }

    /// The release's code name, which APT repositories use as their suite.
    pub const fn codename(self) -> &'static str {
        match self {
            SupportedOs::Ubuntu2204 => "jammy",
            SupportedOs::Ubuntu2404 => "noble",
            SupportedOs::Debian12 => "bookworm",
        }
    }

    /// How users see the release, such as `Ubuntu 24.04 (noble)`.
    pub const fn label(self) -> &'static str {
        match self {
            SupportedOs::Ubuntu2204 => "Ubuntu 22.04 (jammy)",
            SupportedOs::Ubuntu2404 => "Ubuntu 24.04 (noble)",
            SupportedOs::Debian12 => "Debian 12 (bookworm)",
        }
    }

    /// The one PHP version the release's own archive ships.
    pub const fn distro_php_version(self) -> PhpVersion {
        match self {
            SupportedOs::Ubuntu2204 => PhpVersion::Php81,
            SupportedOs::Ubuntu2404 => PhpVersion::Php83,
            SupportedOs::Debian12 => PhpVersion::Php82,
        }
    }

    /// The Node.js major version the release's own archive ships.
    pub const fn distro_node_major(self) -> u8 {
        match self {
            SupportedOs::Ubuntu2204 => 12,
            SupportedOs::Ubuntu2404 | SupportedOs::Debian12 => 18,
        }
    }

    /// The `major.minor` version of the nginx the release's archive ships (stable
    /// releases only take security fixes, so the minor version does not change).
    pub const fn distro_nginx_version(self) -> &'static str {
        match self {
            SupportedOs::Ubuntu2204 => "1.18",
            SupportedOs::Ubuntu2404 => "1.24",
            SupportedOs::Debian12 => "1.22",
        }
    }

    /// Whether the release's nginx knows `ssl_reject_handshake` (nginx 1.19.4 and
    /// later), which lets a catch-all HTTPS server refuse unknown names without a
    /// certificate.
    pub const fn nginx_rejects_tls_handshakes(self) -> bool {
        !matches!(self, SupportedOs::Ubuntu2204)
    }

    /// The list of supported releases for messages: `A, B and C`.
    pub fn supported_list() -> String {
        let labels: Vec<&str> = SupportedOs::ALL.iter().map(|os| os.label()).collect();
        match labels.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, others)) => format!("{} and {last}", others.join(", ")),
            None => String::new(),
        }
    }
}

impl fmt::Display for SupportedOs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for SupportedOs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

/// The operating system is not one BrokeForge supports. The message names what was
/// found and what is supported.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "unsupported operating system: this server runs {found}; BrokeForge supports {supported}. \
     Reinstall the server with one of those releases",
    supported = SupportedOs::supported_list()
)]
pub struct UnsupportedOs {
    /// What the server runs, such as `Ubuntu 20.04.6 LTS`.
    pub found: String,
}

/// The path of `/etc/os-release`.
pub fn os_release_path() -> RemotePath {
    OS_RELEASE_PATH.parse().expect("a valid absolute path")
}

/// The probe command that prints `/etc/os-release`.
pub fn os_release_cmd() -> Cmd {
    crate::facts::file_contents_cmd(&os_release_path())
}

/// Parses the output of [`os_release_cmd`].
pub fn parse_os_release(output: &ProbeOutput) -> Result<OsRelease, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Err(UnexpectedOutput(format!("cannot read {OS_RELEASE_PATH}")));
    }
    parse_os_release_text(&output.stdout)
}

/// Parses the text of an os-release file, such as the one the bootstrap script
/// reports.
pub fn parse_os_release_text(text: &str) -> Result<OsRelease, UnexpectedOutput> {
    let mut id = None;
    let mut version_id = None;
    let mut version_codename = None;
    let mut pretty_name = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw_value)) = line.split_once('=') else {
            return Err(UnexpectedOutput(format!(
                "line {} of {OS_RELEASE_PATH} is not KEY=value: {line:?}",
                number + 1
            )));
        };
        let value = unquote(raw_value)
            .ok_or_else(|| UnexpectedOutput(format!("the value of {key} is not closed: {raw_value:?}")))?;
        let slot = match key {
            "ID" => &mut id,
            "VERSION_ID" => &mut version_id,
            "VERSION_CODENAME" => &mut version_codename,
            "PRETTY_NAME" => &mut pretty_name,
            _ => continue,
        };
        *slot = Some(value).filter(|value| !value.is_empty());
    }
    // The specification makes ID default to "linux" when it is missing.
    let id = id.unwrap_or_else(|| "linux".to_owned()).to_ascii_lowercase();
    Ok(OsRelease {
        id,
        version_id,
        version_codename,
        pretty_name,
    })
}

/// Reads a value as a shell word: unquoted, `"..."` with backslash escapes of `"`,
/// `\`, `$` and `` ` ``, or `'...'`. `None` when a quote is not closed.
fn unquote(raw: &str) -> Option<String> {
    let mut value = String::new();
    let mut characters = raw.chars();
    while let Some(c) = characters.next() {
        match c {
            '"' => loop {
                match characters.next()? {
                    '"' => break,
                    '\\' => {
                        let escaped = characters.next()?;
                        if !matches!(escaped, '"' | '\\' | '$' | '`') {
                            value.push('\\');
                        }
                        value.push(escaped);
                    }
                    other => value.push(other),
                }
            },
            '\'' => loop {
                match characters.next()? {
                    '\'' => break,
                    other => value.push(other),
                }
            },
            '\\' => value.push(characters.next()?),
            other => value.push(other),
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_unquoted_like_shell_words() {
        assert_eq!(unquote("plain").as_deref(), Some("plain"));
        assert_eq!(
            unquote("\"Debian GNU/Linux 12 (bookworm)\"").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(unquote("'single $x'").as_deref(), Some("single $x"));
        assert_eq!(unquote(r#""a \"b\" \$c \\d \e""#).as_deref(), Some(r#"a "b" $c \d \e"#));
        assert_eq!(unquote("\"open"), None);
        assert_eq!(unquote("'open"), None);
    }

    #[test]
    fn the_supported_list_reads_as_a_sentence() {
        assert_eq!(
            SupportedOs::supported_list(),
            "Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12 (bookworm)"
        );
    }
}

//! Third-party APT repositories, added only when the distribution's own archive
//! cannot provide what an operation installs: the sury repository (Debian) or the
//! ondrej/php PPA (Ubuntu) for PHP versions the release does not ship, and NodeSource
//! for Node.js majors it does not ship.
//!
//! A repository is added the modern way: its signing key is downloaded over HTTPS
//! into its own keyring file under `/etc/apt/keyrings` (never into apt's global trust
//! store), and its deb822 `.sources` file, rendered from a template, is uploaded as
//! bytes with `Signed-By` naming that keyring, so the key vouches for this repository
//! only. Facts first: the repository is added only when BrokeForge's own file is
//! missing or outdated or its keyring is missing, and it is left alone when another
//! file already configures it (adding a second entry with a different `Signed-By`
//! would make apt refuse to work at all).

use std::time::Duration;

use brokeforge_core::{Cmd, PlanBuilder, RemotePath, ShellArg, UnixUserName};
use serde::Serialize;

use crate::apt;
use crate::facts::{
    FactError, FactProbe, FileKind, ProbeOutput, ProbeOutputs, UnexpectedOutput, file_contents_cmd,
    parse_file_contents, parse_path_kinds, path_kinds_cmd,
};
use crate::framework::Package;
use crate::nodejs::NodeMajor;
use crate::os::SupportedOs;
use crate::templates::{self, Template, TemplateError};

/// How long downloading a signing key may take.
pub const KEY_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Where BrokeForge keeps the keyrings of the repositories it adds.
pub const KEYRINGS_DIRECTORY: &str = "/etc/apt/keyrings";

/// A group of repositories that provide the same software, one per distribution:
/// an operation's probes cover the whole family, because which member it needs
/// depends on the server's release, a fact read at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositoryFamily {
    /// PHP versions the release does not ship: sury (Debian) or ondrej/php (Ubuntu).
    Php,
    /// Node.js from NodeSource.
    NodeSource,
}

impl RepositoryFamily {
    /// BrokeForge's `.sources` file for this family.
    pub fn sources_path(self) -> RemotePath {
        match self {
            RepositoryFamily::Php => path("/etc/apt/sources.list.d/brokeforge-php.sources"),
            RepositoryFamily::NodeSource => path("/etc/apt/sources.list.d/brokeforge-nodesource.sources"),
        }
    }

    /// The keyrings the family's members use.
    pub fn keyring_paths(self) -> Vec<RemotePath> {
        match self {
            RepositoryFamily::Php => vec![
                ThirdPartyRepository::SuryPhp.keyring_path(),
                ThirdPartyRepository::OndrejPhp.keyring_path(),
            ],
            RepositoryFamily::NodeSource => vec![ThirdPartyRepository::NodeSource(NodeMajor::Node22).keyring_path()],
        }
    }

    /// Texts that identify an APT source line of this family, in any file.
    pub const fn source_patterns(self) -> &'static [&'static str] {
        match self {
            RepositoryFamily::Php => &[
                "packages.sury.org/php",
                "ppa.launchpadcontent.net/ondrej/php",
                "ppa.launchpad.net/ondrej/php",
            ],
            RepositoryFamily::NodeSource => &["deb.nodesource.com"],
        }
    }

    /// The probes that read this family's [`RepositoryFacts`], keyed `PREFIX_...`.
    pub fn probes<P: Package>(self, keys: RepositoryProbeKeys) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<P>(keys.source_lines, source_lines_cmd(self.source_patterns())),
            FactProbe::new::<P>(keys.sources_file, file_contents_cmd(&self.sources_path())),
            FactProbe::new::<P>(keys.keyrings, path_kinds_cmd(&self.keyring_paths())),
        ]
    }

    /// Reads this family's [`RepositoryFacts`] from the outputs of [`Self::probes`].
    pub fn parse_facts(self, keys: RepositoryProbeKeys, outputs: &ProbeOutputs) -> Result<RepositoryFacts, FactError> {
        let keyring_paths = self.keyring_paths();
        let kinds = outputs.read(keys.keyrings, |output| parse_path_kinds(output, &keyring_paths))?;
        Ok(RepositoryFacts {
            source_lines: outputs.read(keys.source_lines, parse_source_lines)?,
            sources_file: outputs.read(keys.sources_file, parse_file_contents)?,
            keyrings: keyring_paths.into_iter().zip(kinds).collect(),
        })
    }
}

/// The probe keys of one family's facts, chosen by the operation.
#[derive(Clone, Copy, Debug)]
pub struct RepositoryProbeKeys {
    pub source_lines: &'static str,
    pub sources_file: &'static str,
    pub keyrings: &'static str,
}

/// One repository BrokeForge can add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThirdPartyRepository {
    /// Ondřej Surý's PHP repository for Debian, `packages.sury.org/php`.
    SuryPhp,
    /// Ondřej Surý's PHP PPA for Ubuntu, `ppa:ondrej/php`.
    OndrejPhp,
    /// NodeSource's repository for one Node.js major version.
    NodeSource(NodeMajor),
}

impl ThirdPartyRepository {
    /// The PHP repository for `os`.
    pub const fn php_for(os: SupportedOs) -> Self {
        match os.distribution() {
            crate::os::Distribution::Debian => ThirdPartyRepository::SuryPhp,
            crate::os::Distribution::Ubuntu => ThirdPartyRepository::OndrejPhp,
        }
    }

    /// The family this repository belongs to.
    pub const fn family(self) -> RepositoryFamily {
        match self {
            ThirdPartyRepository::SuryPhp | ThirdPartyRepository::OndrejPhp => RepositoryFamily::Php,
            ThirdPartyRepository::NodeSource(_) => RepositoryFamily::NodeSource,
        }
    }

    /// The stable name stored in package records.
    pub const fn key(self) -> &'static str {
        match self {
            ThirdPartyRepository::SuryPhp => "sury",
            ThirdPartyRepository::OndrejPhp => "ondrej-ppa",
            ThirdPartyRepository::NodeSource(_) => "nodesource",
        }
    }

    /// What the repository is, for the comment in its sources file.
    pub const fn description(self) -> &'static str {
        match self {
            ThirdPartyRepository::SuryPhp => "PHP packages from packages.sury.org (Ondřej Surý)",
            ThirdPartyRepository::OndrejPhp => "PHP packages from the ondrej/php PPA (Ondřej Surý)",
            ThirdPartyRepository::NodeSource(_) => "Node.js packages from NodeSource",
        }
    }

    /// The repository's base URI.
    pub const fn uri(self) -> &'static str {
        match self {
            ThirdPartyRepository::SuryPhp => "https://packages.sury.org/php/",
            ThirdPartyRepository::OndrejPhp => "https://ppa.launchpadcontent.net/ondrej/php/ubuntu/",
            ThirdPartyRepository::NodeSource(major) => major.nodesource_uri(),
        }
    }

    /// The suite to use on `os`: its code name, or NodeSource's single suite.
    pub const fn suite(self, os: SupportedOs) -> &'static str {
        match self {
            ThirdPartyRepository::SuryPhp | ThirdPartyRepository::OndrejPhp => os.codename(),
            ThirdPartyRepository::NodeSource(_) => "nodistro",
        }
    }

    /// Where the signing key is downloaded from, over HTTPS. The PPA's key is looked
    /// up on Ubuntu's key server by its full fingerprint.
    pub const fn key_url(self) -> &'static str {
        match self {
            ThirdPartyRepository::SuryPhp => "https://packages.sury.org/php/apt.gpg",
            ThirdPartyRepository::OndrejPhp => {
                "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x14AA40EC0831756756D7F66C4F4EA0AAE5267A6C"
            }
            ThirdPartyRepository::NodeSource(_) => "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key",
        }
    }

    /// Whether the key is ASCII-armored (`.asc`, checked for its armor header after
    /// the download) rather than a binary keyring (`.gpg`).
    const fn key_is_armored(self) -> bool {
        !matches!(self, ThirdPartyRepository::SuryPhp)
    }

    /// The keyring file that `Signed-By` names. apt reads `.asc` files as armored.
    pub fn keyring_path(self) -> RemotePath {
        match self {
            ThirdPartyRepository::SuryPhp => path("/etc/apt/keyrings/brokeforge-php.gpg"),
            ThirdPartyRepository::OndrejPhp => path("/etc/apt/keyrings/brokeforge-php.asc"),
            ThirdPartyRepository::NodeSource(_) => path("/etc/apt/keyrings/brokeforge-nodesource.asc"),
        }
    }

    /// The path the key is downloaded to before it replaces the keyring.
    fn keyring_download_path(self) -> RemotePath {
        match self {
            ThirdPartyRepository::SuryPhp => path("/etc/apt/keyrings/brokeforge-php.gpg.download"),
            ThirdPartyRepository::OndrejPhp => path("/etc/apt/keyrings/brokeforge-php.asc.download"),
            ThirdPartyRepository::NodeSource(_) => path("/etc/apt/keyrings/brokeforge-nodesource.asc.download"),
        }
    }

    /// Texts that identify this repository's source lines.
    fn source_patterns(self) -> &'static [&'static str] {
        match self {
            ThirdPartyRepository::SuryPhp => &["packages.sury.org/php"],
            ThirdPartyRepository::OndrejPhp => &["ppa.launchpadcontent.net/ondrej/php", "ppa.launchpad.net/ondrej/php"],
            ThirdPartyRepository::NodeSource(_) => &["deb.nodesource.com"],
        }
    }

    /// The sources file for `os`, as uploaded.
    pub fn render_sources(self, os: SupportedOs) -> Result<Vec<u8>, TemplateError> {
        templates::render(
            Template::AptRepositorySources,
            &SourcesContext {
                description: self.description(),
                uri: self.uri(),
                suite: self.suite(os),
                component: "main",
                keyring: self.keyring_path(),
            },
        )
    }

    /// What to do so that this repository serves `os`, given the family's facts.
    pub fn state(self, os: SupportedOs, facts: &RepositoryFacts) -> Result<RepositoryState, TemplateError> {
        let desired = self.render_sources(os)?;
        let ours = self.family().sources_path();
        let ours_is_current = facts.sources_file.as_deref().map(str::as_bytes) == Some(desired.as_slice());
        let keyring = self.keyring_path();
        let keyring_present = facts
            .keyrings
            .iter()
            .any(|(path, kind)| *path == keyring && *kind == Some(FileKind::RegularFile));
        if ours_is_current && keyring_present {
            return Ok(RepositoryState::Ready);
        }
        if facts.sources_file.is_none()
            && let Some(line) = facts
                .source_lines
                .iter()
                .find(|line| line.file != ours.as_str() && self.source_patterns().iter().any(|p| line.text.contains(p)))
        {
            return Ok(RepositoryState::ConfiguredElsewhere {
                file: line.file.clone(),
            });
        }
        Ok(RepositoryState::Add {
            fetch_key: !keyring_present,
            sources: (!ours_is_current).then_some(desired),
        })
    }
}

/// The template context of [`Template::AptRepositorySources`].
#[derive(Serialize)]
struct SourcesContext {
    description: &'static str,
    uri: &'static str,
    suite: &'static str,
    component: &'static str,
    keyring: RemotePath,
}

/// Whether a repository serves the server, and if not, what adding it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepositoryState {
    /// BrokeForge's sources file is current and its keyring is in place.
    Ready,
    /// Another file (the administrator's, or `add-apt-repository`'s) configures it.
    ConfiguredElsewhere { file: String },
    /// The repository must be added (or updated) before installing from it.
    Add {
        /// The keyring is missing and must be downloaded.
        fetch_key: bool,
        /// The sources file to upload, when it is missing or outdated.
        sources: Option<Vec<u8>>,
    },
}

impl RepositoryState {
    /// Adds the steps that bring the repository in place: downloading its key,
    /// uploading its sources file and refreshing the package lists. Returns whether
    /// the lists were refreshed, so that the installation need not refresh them again.
    pub fn write_steps(self, repository: ThirdPartyRepository, steps: &mut PlanBuilder) -> bool {
        let RepositoryState::Add { fetch_key, sources } = self else {
            return false;
        };
        if fetch_key {
            steps.run(
                Cmd::new("install")
                    .lit("-d")
                    .lit("-m")
                    .lit("0755")
                    .lit("--")
                    .lit(KEYRINGS_DIRECTORY),
            );
            steps.run_with_timeout(fetch_key_cmd(repository), KEY_DOWNLOAD_TIMEOUT);
        }
        if let Some(sources) = sources {
            steps.upload(repository.family().sources_path(), sources, 0o644, Some(root()));
        }
        steps.run_with_timeout(apt::update(), apt::APT_TIMEOUT);
        true
    }
}

/// Downloads the repository's key over HTTPS only (TLS 1.2 or later, failing on HTTP
/// errors), checks an armored key's header, and moves it into place, so a failed
/// download never leaves a broken keyring behind.
fn fetch_key_cmd(repository: ThirdPartyRepository) -> Cmd {
    let download = repository.keyring_download_path();
    let keyring = repository.keyring_path();
    let fetch = Cmd::new("curl")
        .lit("-fsSL")
        .lit("--proto")
        .lit("=https")
        .lit("--tlsv1.2")
        .lit("--retry")
        .lit("3")
        .lit("--max-time")
        .lit("120")
        .lit("-o")
        .arg(&download)
        .arg(ShellArg::new(repository.key_url()).expect("a URL without NUL"));
    let check = if repository.key_is_armored() {
        Some(
            Cmd::new("grep")
                .lit("-q")
                .lit("--")
                .lit("'-----BEGIN PGP PUBLIC KEY BLOCK-----'")
                .arg(&download),
        )
    } else {
        None
    };
    let place = Cmd::new("chmod")
        .lit("0644")
        .lit("--")
        .arg(&download)
        .and(Cmd::new("mv").lit("-f").lit("--").arg(&download).arg(&keyring));
    match check {
        Some(check) => fetch.and(check).and(place),
        None => fetch.and(place),
    }
}

/// What the server's APT configuration says about one repository family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryFacts {
    /// Active source lines, in any file, that mention the family.
    pub source_lines: Vec<SourceLine>,
    /// The contents of BrokeForge's sources file for the family, if it exists.
    pub sources_file: Option<String>,
    /// Each keyring of the family and what is at its path.
    pub keyrings: Vec<(RemotePath, Option<FileKind>)>,
}

/// One active line of an APT sources file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// The file, such as `/etc/apt/sources.list.d/ondrej-ubuntu-php-noble.sources`.
    pub file: String,
    /// The line, such as `URIs: https://ppa.launchpadcontent.net/ondrej/php/ubuntu/`.
    pub text: String,
}

/// The probe command that prints `FILE:LINE` for every line of APT's sources
/// (`*.list` and `*.sources` files below `/etc/apt`) containing one of `patterns`.
pub fn source_lines_cmd(patterns: &[&'static str]) -> Cmd {
    let cmd = Cmd::new("grep")
        .lit("-rsF")
        .lit("'--include=*.list'")
        .lit("'--include=*.sources'");
    patterns
        .iter()
        .fold(cmd, |cmd, pattern| {
            cmd.lit("-e")
                .arg(ShellArg::new(*pattern).expect("a literal without NUL"))
        })
        .lit("--")
        .lit("/etc/apt")
}

/// Parses the output of [`source_lines_cmd`]; commented-out lines are not active.
/// grep exits with code 1 when nothing matches.
pub fn parse_source_lines(output: &ProbeOutput) -> Result<Vec<SourceLine>, UnexpectedOutput> {
    match output.exit_code {
        0 => {}
        1 => return Ok(Vec::new()),
        _ => return Err(UnexpectedOutput("grep failed to read APT's sources".to_owned())),
    }
    let mut lines = Vec::new();
    for line in output.stdout.lines().filter(|line| !line.is_empty()) {
        let Some((file, text)) = line.split_once(':') else {
            return Err(UnexpectedOutput(format!("expected FILE:LINE, got {line:?}")));
        };
        let text = text.trim();
        if text.starts_with('#') {
            continue;
        }
        lines.push(SourceLine {
            file: file.to_owned(),
            text: text.to_owned(),
        });
    }
    Ok(lines)
}

fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

fn root() -> UnixUserName {
    "root".parse().expect("a valid user name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_follow_the_distribution() {
        assert_eq!(
            ThirdPartyRepository::php_for(SupportedOs::Debian12),
            ThirdPartyRepository::SuryPhp
        );
        assert_eq!(
            ThirdPartyRepository::php_for(SupportedOs::Ubuntu2404),
            ThirdPartyRepository::OndrejPhp
        );
        assert_eq!(ThirdPartyRepository::OndrejPhp.suite(SupportedOs::Ubuntu2204), "jammy");
        assert_eq!(
            ThirdPartyRepository::NodeSource(NodeMajor::Node20).suite(SupportedOs::Debian12),
            "nodistro"
        );
    }

    #[test]
    fn the_key_url_with_a_query_is_quoted() {
        let cmd = fetch_key_cmd(ThirdPartyRepository::OndrejPhp).to_string();
        assert!(
            cmd.contains(
                "https://keyserver.ubuntu.com/pks/lookup'?op=get&search=0x14AA40EC0831756756D7F66C4F4EA0AAE5267A6C'"
            ),
            "{cmd}"
        );
    }
}

//! The validated values of sites and deployments: a release's id, a commit, a Git
//! repository's URL, a site's web directory and shared paths, its deploy script and
//! how many releases to keep. Each type can only hold a value that is safe to place in
//! a command (as one quoted argument), an nginx configuration or a path below the
//! site's directory; each parses with `FromStr`, explains a refusal with a typed error
//! meant for users, serializes as its text and deserializes through the same checks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use brokeforge_core::ShellArg;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Implements display, string access, parsing, serde through validation and use as a
/// shell argument for a validated text type whose `validate` returns `Result<Self, E>`.
macro_rules! site_text {
    ($value_type:ident, $error_type:ty) => {
        impl $value_type {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $value_type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $value_type {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $value_type {
            type Err = $error_type;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::validate(input)
            }
        }

        impl TryFrom<&str> for $value_type {
            type Error = $error_type;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                Self::validate(input)
            }
        }

        impl Serialize for $value_type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $value_type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::validate(&text).map_err(serde::de::Error::custom)
            }
        }

        impl From<&$value_type> for ShellArg {
            fn from(value: &$value_type) -> ShellArg {
                ShellArg::new(value.0.as_str()).expect("validated values hold no NUL byte")
            }
        }
    };
}

/// The id of one release: the UTC time the deployment started, `YYYYMMDDHHMMSS`, such
/// as `20261127093000`. It names the release's directory, and sorting ids as text
/// sorts releases by age.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseId(String);

/// Why a text is not a [`ReleaseId`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReleaseIdError {
    #[error("a release id is a UTC time written YYYYMMDDHHMMSS (14 digits), such as 20261127093000")]
    Format,
    #[error("a release id must name a real UTC time from the year 2000 to 9999, written YYYYMMDDHHMMSS")]
    NotATime,
}

impl ReleaseId {
    /// The id of the UTC time `year-month-day hour:minute:second`.
    pub fn from_utc(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<Self, ReleaseIdError> {
        let valid = (2000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return Err(ReleaseIdError::NotATime);
        }
        Ok(ReleaseId(format!(
            "{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}"
        )))
    }

    /// The id of a moment given as seconds since the Unix epoch (UTC), as the
    /// application's clock reads it.
    pub fn from_unix_seconds(seconds: u64) -> Result<Self, ReleaseIdError> {
        let days = seconds / 86_400;
        let of_day = seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        let year = u32::try_from(year).map_err(|_| ReleaseIdError::NotATime)?;
        let of_day = u32::try_from(of_day).expect("less than a day of seconds");
        ReleaseId::from_utc(year, month, day, of_day / 3600, of_day / 60 % 60, of_day % 60)
    }

    fn validate(input: &str) -> Result<Self, ReleaseIdError> {
        if input.len() != 14 || !input.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ReleaseIdError::Format);
        }
        let number = |range: std::ops::Range<usize>| input[range].parse::<u32>().expect("digits");
        ReleaseId::from_utc(
            number(0..4),
            number(4..6),
            number(6..8),
            number(8..10),
            number(10..12),
            number(12..14),
        )
    }
}

site_text!(ReleaseId, ReleaseIdError);

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The proleptic Gregorian date of `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (
        year,
        u32::try_from(month).expect("1 to 12"),
        u32::try_from(day).expect("1 to 31"),
    )
}

/// A Git commit id: 40 hexadecimal digits (SHA-1), or 64 for a repository that uses
/// SHA-256. Stored lowercase; an uppercase input is lowercased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitSha(String);

/// Why a text is not a [`CommitSha`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a commit id is the full 40-character hexadecimal hash, such as 9fceb02d0ae598e95dc970b74767f19372d61af8")]
pub struct CommitShaError;

impl CommitSha {
    /// The first seven digits, as Git abbreviates a commit for people.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    fn validate(input: &str) -> Result<Self, CommitShaError> {
        if !matches!(input.len(), 40 | 64) || !input.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(CommitShaError);
        }
        Ok(CommitSha(input.to_ascii_lowercase()))
    }
}

site_text!(CommitSha, CommitShaError);

/// How a [`GitRepositoryUrl`] reaches its repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitTransport {
    /// `ssh://[user@]host[:port]/path` or the short form `[user@]host:path`: the
    /// server's deploy key authenticates, the host's key must be pinned.
    Ssh,
    /// `https://host/path`: public repositories, or a Git host that accepts anonymous
    /// reads.
    Https,
    /// `file:///path`: a repository on the server itself (tests, mirrors).
    File,
}

/// The URL of a Git repository that Git may fetch from: `git@github.com:owner/repo.git`,
/// `ssh://git@host:2222/path/repo.git`, `https://host/owner/repo.git` or
/// `file:///srv/git/repo.git`.
///
/// Refused: anything that starts with `-` (Git would read it as an option), control
/// characters and whitespace, Git's `<transport>::<address>` syntax (`ext::` runs
/// programs), other schemes (`http://` is unauthenticated and `git://` unencrypted),
/// and a password or token inside an `https://` URL (it would show wherever the URL
/// does; use a deploy key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GitRepositoryUrl(String);

/// Why a text is not a [`GitRepositoryUrl`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GitRepositoryUrlError {
    #[error("enter the repository's URL, such as git@github.com:owner/repository.git")]
    Empty,
    #[error("a repository URL can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("a repository URL cannot start with '-'")]
    LeadingHyphen,
    #[error("a repository URL cannot contain spaces or control characters")]
    Whitespace,
    #[error("Git's <transport>::<address> URLs (such as ext::) are not allowed; use an ssh:// or https:// URL")]
    TransportHelper,
    #[error(
        "unsupported repository URL; use git@host:owner/repository.git, ssh://git@host/owner/repository.git \
         or https://host/owner/repository.git"
    )]
    Unsupported,
    #[error("{scheme}:// repositories are not supported; use ssh:// or https://")]
    InsecureScheme { scheme: String },
    #[error("the URL names no valid host")]
    InvalidHost,
    #[error("the URL names no repository path after the host")]
    MissingPath,
    #[error(
        "do not put a password or token in the repository URL; add the server's deploy key to the repository instead"
    )]
    Credentials,
    #[error("the user name in the URL is not valid; use letters, digits, '.', '_' and '-', such as git")]
    InvalidUser,
}

impl GitRepositoryUrl {
    /// The longest URL accepted.
    pub const MAX_LENGTH: usize = 2048;

    /// How the URL reaches the repository.
    pub fn transport(&self) -> GitTransport {
        if self.0.starts_with("https://") {
            GitTransport::Https
        } else if self.0.starts_with("file://") {
            GitTransport::File
        } else {
            GitTransport::Ssh
        }
    }

    /// The host name (or address) of the URL, lowercased, such as `github.com`;
    /// `None` for `file://` URLs.
    pub fn host(&self) -> Option<String> {
        let text = self.0.as_str();
        let authority = if let Some(rest) = text.strip_prefix("ssh://").or_else(|| text.strip_prefix("https://")) {
            rest.split('/').next().unwrap_or_default()
        } else if text.starts_with("file://") {
            return None;
        } else {
            text.split(':').next().unwrap_or_default()
        };
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host = if let Some(bracketed) = host_port.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        Some(host.to_ascii_lowercase())
    }

    fn validate(input: &str) -> Result<Self, GitRepositoryUrlError> {
        if input.is_empty() {
            return Err(GitRepositoryUrlError::Empty);
        }
        if input.len() > Self::MAX_LENGTH {
            return Err(GitRepositoryUrlError::TooLong { max: Self::MAX_LENGTH });
        }
        if input.starts_with('-') {
            return Err(GitRepositoryUrlError::LeadingHyphen);
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(GitRepositoryUrlError::Whitespace);
        }
        if let Some((transport, _)) = input.split_once("::")
            && !transport.is_empty()
            && transport
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(GitRepositoryUrlError::TransportHelper);
        }
        if let Some((scheme, rest)) = input.split_once("://") {
            match scheme {
                "ssh" => check_authority_and_path(rest, false)?,
                "https" => check_authority_and_path(rest, true)?,
                "file" => {
                    if !rest.starts_with('/') || rest.len() < 2 {
                        return Err(GitRepositoryUrlError::MissingPath);
                    }
                }
                "http" | "git" | "ftp" | "ftps" | "rsync" => {
                    return Err(GitRepositoryUrlError::InsecureScheme {
                        scheme: scheme.to_owned(),
                    });
                }
                _ => return Err(GitRepositoryUrlError::Unsupported),
            }
            return Ok(GitRepositoryUrl(input.to_owned()));
        }
        // The short SSH form, `[user@]host:path`, which Git recognizes only when no
        // slash comes before the first colon.
        let Some((authority, path)) = input.split_once(':') else {
            return Err(GitRepositoryUrlError::Unsupported);
        };
        if authority.contains('/') {
            return Err(GitRepositoryUrlError::Unsupported);
        }
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                check_user(user)?;
                host
            }
            None => authority,
        };
        check_host(host)?;
        if path.is_empty() || path == "/" {
            return Err(GitRepositoryUrlError::MissingPath);
        }
        if path.starts_with('-') {
            return Err(GitRepositoryUrlError::LeadingHyphen);
        }
        Ok(GitRepositoryUrl(input.to_owned()))
    }
}

site_text!(GitRepositoryUrl, GitRepositoryUrlError);

/// Checks `[user@]host[:port]/path` after `ssh://` or `https://`.
fn check_authority_and_path(rest: &str, https: bool) -> Result<(), GitRepositoryUrlError> {
    let (authority, path) = rest.split_once('/').ok_or(GitRepositoryUrlError::MissingPath)?;
    if path.is_empty() {
        return Err(GitRepositoryUrlError::MissingPath);
    }
    let host_port = match authority.rsplit_once('@') {
        Some((user_info, host_port)) => {
            if https && user_info.contains(':') {
                return Err(GitRepositoryUrlError::Credentials);
            }
            check_user(user_info)?;
            host_port
        }
        None => authority,
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or(GitRepositoryUrlError::InvalidHost)?;
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(GitRepositoryUrlError::InvalidHost);
        }
        (None, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(host_port), None),
        }
    };
    if let Some(host) = host {
        check_host(host)?;
    }
    if let Some(port) = port
        && port.parse::<brokeforge_core::Port>().is_err()
    {
        return Err(GitRepositoryUrlError::InvalidHost);
    }
    Ok(())
}

fn check_user(user: &str) -> Result<(), GitRepositoryUrlError> {
    if user.is_empty()
        || user.starts_with('-')
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '%' | '~'))
    {
        return Err(GitRepositoryUrlError::InvalidUser);
    }
    Ok(())
}

/// A host name or an IPv4 address: letters, digits, `-` and `.`, not starting with `-`.
fn check_host(host: &str) -> Result<(), GitRepositoryUrlError> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && !host.ends_with('-')
        && !host.contains("..")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(GitRepositoryUrlError::InvalidHost)
    }
}

/// Why a text is not a relative path below a release ([`WebDirectory`],
/// [`RelativePath`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RelativePathError {
    #[error("enter a path inside the release, such as storage")]
    Empty,
    #[error("a path inside the release cannot start with '/'; write it relative to the release, such as public")]
    Absolute,
    #[error("a path inside the release can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("a path inside the release cannot contain '.' or '..' parts or empty parts ('//')")]
    DotComponent,
    #[error("a part of a path inside the release cannot start with '-'")]
    LeadingHyphen,
    #[error("a path inside the release cannot contain {0:?}; use letters, digits, '.', '_', '-', '@', '+' and '/'")]
    InvalidCharacter(char),
    #[error("the web directory cannot be hidden (start with '.'), since nginx refuses to serve hidden paths")]
    Hidden,
    #[error("{0:?} belongs to Git or BrokeForge and cannot be used here")]
    Reserved(String),
}

/// Checks a relative path: components of `[A-Za-z0-9._@+-]`, none empty, `.` or `..`,
/// none starting with `-`, at most 255 characters, none reserved (`.git`,
/// `.brokeforge*`).
fn check_relative(input: &str, allow_hidden: bool) -> Result<String, RelativePathError> {
    const MAX: usize = 255;
    let trimmed = input.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(RelativePathError::Empty);
    }
    if trimmed.starts_with('/') {
        return Err(RelativePathError::Absolute);
    }
    if trimmed.len() > MAX {
        return Err(RelativePathError::TooLong { max: MAX });
    }
    if let Some(bad) = trimmed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | '/')))
    {
        return Err(RelativePathError::InvalidCharacter(bad));
    }
    for component in trimmed.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(RelativePathError::DotComponent);
        }
        if component.starts_with('-') {
            return Err(RelativePathError::LeadingHyphen);
        }
        if component == ".git" || component.starts_with(".brokeforge") {
            return Err(RelativePathError::Reserved(component.to_owned()));
        }
        if component.starts_with('.') && !allow_hidden {
            return Err(RelativePathError::Hidden);
        }
    }
    Ok(trimmed.to_owned())
}

/// The directory nginx serves, relative to the release: `public` for Laravel, empty
/// for the release's root. Its text is safe in an nginx configuration (no blanks,
/// quotes, `;`, braces or `$`) and contains no hidden part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WebDirectory(String);

impl WebDirectory {
    /// The release's root.
    pub fn root() -> Self {
        WebDirectory(String::new())
    }

    /// Whether this is the release's root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn validate(input: &str) -> Result<Self, RelativePathError> {
        if input.is_empty() || input == "/" || input == "." {
            return Ok(WebDirectory::root());
        }
        check_relative(input, false).map(WebDirectory)
    }
}

site_text!(WebDirectory, RelativePathError);

/// A path relative to the release, such as `.env` or `wp-content/uploads`: the same
/// characters as a [`WebDirectory`], hidden parts allowed, never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelativePath(String);

impl RelativePath {
    fn validate(input: &str) -> Result<Self, RelativePathError> {
        check_relative(input, true).map(RelativePath)
    }

    /// Whether `other` is this path or lies below it.
    pub fn contains(&self, other: &RelativePath) -> bool {
        other.0 == self.0 || other.0.strip_prefix(&self.0).is_some_and(|rest| rest.starts_with('/'))
    }
}

site_text!(RelativePath, RelativePathError);

/// Whether a shared path is a file or a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedKind {
    File,
    Directory,
}

impl SharedKind {
    /// The word the link script reads: `file` or `dir`.
    pub(crate) const fn script_word(self) -> &'static str {
        match self {
            SharedKind::File => "file",
            SharedKind::Directory => "dir",
        }
    }
}

/// A file or directory that outlives releases: it lives once in the site's `shared/`
/// directory and every release links to it, such as Laravel's `.env` and `storage`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SharedPath {
    /// The path relative to the release (and to `shared/`).
    pub path: RelativePath,
    pub kind: SharedKind,
}

impl SharedPath {
    /// A shared file.
    pub fn file(path: &str) -> Result<Self, RelativePathError> {
        Ok(SharedPath {
            path: path.parse()?,
            kind: SharedKind::File,
        })
    }

    /// A shared directory.
    pub fn directory(path: &str) -> Result<Self, RelativePathError> {
        Ok(SharedPath {
            path: path.parse()?,
            kind: SharedKind::Directory,
        })
    }
}

/// Why a list of shared paths is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SharedPathsError {
    #[error("a site can have at most {max} shared paths")]
    TooMany { max: usize },
    #[error("the shared path {0} is listed twice")]
    Duplicate(String),
    #[error("the shared path {inner} lies inside the shared path {outer}; share only {outer}")]
    Nested { outer: String, inner: String },
}

/// The shared paths of a site: at most 20, none listed twice, none inside another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<SharedPath>", into = "Vec<SharedPath>")]
pub struct SharedPaths(Vec<SharedPath>);

impl SharedPaths {
    /// The most shared paths a site can have.
    pub const MAX: usize = 20;

    /// Checks `paths`, keeping their order.
    pub fn new(paths: Vec<SharedPath>) -> Result<Self, SharedPathsError> {
        if paths.len() > Self::MAX {
            return Err(SharedPathsError::TooMany { max: Self::MAX });
        }
        for (index, path) in paths.iter().enumerate() {
            for other in &paths[index + 1..] {
                if path.path == other.path {
                    return Err(SharedPathsError::Duplicate(path.path.to_string()));
                }
                let (outer, inner) = if path.path.contains(&other.path) {
                    (path, other)
                } else if other.path.contains(&path.path) {
                    (other, path)
                } else {
                    continue;
                };
                return Err(SharedPathsError::Nested {
                    outer: outer.path.to_string(),
                    inner: inner.path.to_string(),
                });
            }
        }
        Ok(SharedPaths(paths))
    }

    /// The paths, in order.
    pub fn as_slice(&self) -> &[SharedPath] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<SharedPath>> for SharedPaths {
    type Error = SharedPathsError;

    fn try_from(paths: Vec<SharedPath>) -> Result<Self, Self::Error> {
        SharedPaths::new(paths)
    }
}

impl From<SharedPaths> for Vec<SharedPath> {
    fn from(paths: SharedPaths) -> Vec<SharedPath> {
        paths.0
    }
}

/// Why a deploy script is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeployScriptError {
    #[error("a deploy script can be at most {max} bytes long")]
    TooLong { max: usize },
    #[error("a deploy script cannot contain a NUL byte")]
    NulByte,
}

/// The text of a site's deploy script, run by `bash -euo pipefail` in the new release
/// before it goes live. It is code the user means to run and is passed on byte for
/// byte (Windows line endings become Unix ones); it may be empty, and a script of only
/// blanks and comments is skipped. At most 64 KiB, no NUL byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployScript(String);

impl DeployScript {
    /// The longest script, in bytes.
    pub const MAX_LENGTH: usize = 64 * 1024;

    /// Whether running the script would do nothing: it holds only blank lines and
    /// comments.
    pub fn is_blank(&self) -> bool {
        self.0
            .lines()
            .map(str::trim)
            .all(|line| line.is_empty() || line.starts_with('#'))
    }

    /// The file uploaded to the release: the script with a header that names it.
    pub fn file_contents(&self) -> Vec<u8> {
        let mut contents = String::from(
            "# BrokeForge's deploy script for this release, run as: bash -euo pipefail .brokeforge-deploy.sh\n",
        );
        contents.push_str(&self.0);
        if !contents.ends_with('\n') {
            contents.push('\n');
        }
        contents.into_bytes()
    }

    fn validate(input: &str) -> Result<Self, DeployScriptError> {
        if input.len() > Self::MAX_LENGTH {
            return Err(DeployScriptError::TooLong { max: Self::MAX_LENGTH });
        }
        if input.contains('\0') {
            return Err(DeployScriptError::NulByte);
        }
        Ok(DeployScript(input.replace("\r\n", "\n")))
    }
}

site_text!(DeployScript, DeployScriptError);

/// Why a number of releases to keep is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("keep from 1 to {max} releases", max = KeepReleases::MAX)]
pub struct KeepReleasesError;

/// How many releases a site keeps on disk, the live one included: 1 to 50, 5 by
/// default. Older ones are removed after each successful deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct KeepReleases(u32);

impl KeepReleases {
    /// The most releases a site can keep.
    pub const MAX: u32 = 50;

    /// Keeps `count` releases.
    pub fn new(count: u32) -> Result<Self, KeepReleasesError> {
        if (1..=Self::MAX).contains(&count) {
            Ok(KeepReleases(count))
        } else {
            Err(KeepReleasesError)
        }
    }

    /// The number of releases kept.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for KeepReleases {
    fn default() -> Self {
        KeepReleases(5)
    }
}

impl TryFrom<u32> for KeepReleases {
    type Error = KeepReleasesError;

    fn try_from(count: u32) -> Result<Self, Self::Error> {
        KeepReleases::new(count)
    }
}

impl From<KeepReleases> for u32 {
    fn from(keep: KeepReleases) -> u32 {
        keep.0
    }
}

/// Why a deploy script timeout is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a deploy script timeout must be from 1 to {max} seconds", max = DeployTimeout::MAX_SECONDS)]
pub struct DeployTimeoutError;

/// How long a deploy script may run: 1 second to 1 hour, 15 minutes by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct DeployTimeout(Duration);

impl DeployTimeout {
    /// The longest timeout, in seconds.
    pub const MAX_SECONDS: u64 = 60 * 60;

    /// A timeout of `seconds`.
    pub fn from_secs(seconds: u64) -> Result<Self, DeployTimeoutError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(DeployTimeout(Duration::from_secs(seconds)))
        } else {
            Err(DeployTimeoutError)
        }
    }

    /// The timeout as a duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl Default for DeployTimeout {
    fn default() -> Self {
        DeployTimeout(Duration::from_secs(15 * 60))
    }
}

impl TryFrom<u64> for DeployTimeout {
    type Error = DeployTimeoutError;

    fn try_from(seconds: u64) -> Result<Self, Self::Error> {
        DeployTimeout::from_secs(seconds)
    }
}

impl From<DeployTimeout> for u64 {
    fn from(timeout: DeployTimeout) -> u64 {
        timeout.0.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_are_real_utc_times() {
        assert_eq!(
            "20261127093000".parse::<ReleaseId>().unwrap().as_str(),
            "20261127093000"
        );
        assert_eq!(
            "20240229235959".parse::<ReleaseId>().unwrap().as_str(),
            "20240229235959"
        );
        for bad in [
            "",
            "2026112709300",
            "202611270930000",
            "2026-11-27T09",
            "2026112709300a",
            " 20261127093000",
        ] {
            assert_eq!(bad.parse::<ReleaseId>(), Err(ReleaseIdError::Format), "{bad:?}");
        }
        for bad in [
            "20230229000000",
            "21000229000000",
            "20261327000000",
            "20261100000000",
            "20261131000000",
            "20261127240000",
            "20261127236000",
            "20261127235960",
            "19991231235959",
        ] {
            assert_eq!(bad.parse::<ReleaseId>(), Err(ReleaseIdError::NotATime), "{bad:?}");
        }
        assert_eq!(
            ReleaseId::from_utc(2000, 2, 29, 0, 0, 0).unwrap().as_str(),
            "20000229000000"
        );
    }

    #[test]
    fn release_ids_from_the_unix_clock() {
        assert_eq!(
            ReleaseId::from_unix_seconds(946_684_800).unwrap().as_str(),
            "20000101000000"
        );
        assert_eq!(
            ReleaseId::from_unix_seconds(1_709_251_199).unwrap().as_str(),
            "20240229235959"
        );
        assert_eq!(
            ReleaseId::from_unix_seconds(1_798_364_245).unwrap().as_str(),
            "20261227093725"
        );
        assert_eq!(ReleaseId::from_unix_seconds(0), Err(ReleaseIdError::NotATime));
    }

    #[test]
    fn commits_are_full_hashes() {
        let sha = "9FCEB02D0AE598E95DC970B74767F19372D61AF8".parse::<CommitSha>().unwrap();
        assert_eq!(sha.as_str(), "9fceb02d0ae598e95dc970b74767f19372d61af8");
        assert_eq!(sha.short(), "9fceb02");
        assert!(
            format!("{}{}", "a".repeat(32), "b".repeat(32))
                .parse::<CommitSha>()
                .is_ok()
        );
        for bad in [
            "",
            "9fceb02",
            "main",
            "HEAD",
            &"g".repeat(40),
            &"a".repeat(41),
            "--upload-pack=x",
        ] {
            assert_eq!(bad.parse::<CommitSha>(), Err(CommitShaError), "{bad:?}");
        }
    }

    #[test]
    fn repository_urls() {
        let accepted = [
            ("git@github.com:owner/repo.git", GitTransport::Ssh, Some("github.com")),
            ("github.com:owner/repo", GitTransport::Ssh, Some("github.com")),
            (
                "ssh://git@gitlab.com/group/sub/repo.git",
                GitTransport::Ssh,
                Some("gitlab.com"),
            ),
            (
                "ssh://git@Git.Example.com:2222/repo.git",
                GitTransport::Ssh,
                Some("git.example.com"),
            ),
            (
                "ssh://git@[2001:db8::1]:2222/repo.git",
                GitTransport::Ssh,
                Some("2001:db8::1"),
            ),
            (
                "https://github.com/owner/repo.git",
                GitTransport::Https,
                Some("github.com"),
            ),
            (
                "https://deploy@bitbucket.org/team/repo.git",
                GitTransport::Https,
                Some("bitbucket.org"),
            ),
            ("file:///srv/git/repo.git", GitTransport::File, None),
        ];
        for (text, transport, host) in accepted {
            let url: GitRepositoryUrl = text.parse().unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(url.transport(), transport, "{text}");
            assert_eq!(url.host().as_deref(), host, "{text}");
        }
        let refused: &[(&str, GitRepositoryUrlError)] = &[
            ("", GitRepositoryUrlError::Empty),
            ("--upload-pack=touch /tmp/x", GitRepositoryUrlError::LeadingHyphen),
            ("-oProxyCommand=x:y", GitRepositoryUrlError::LeadingHyphen),
            ("ext::sh -c touch% /tmp/pwned", GitRepositoryUrlError::Whitespace),
            ("ext::sh", GitRepositoryUrlError::TransportHelper),
            ("fd::17", GitRepositoryUrlError::TransportHelper),
            ("git@github.com:owner/repo.git\n--x", GitRepositoryUrlError::Whitespace),
            ("https://github.com/a b", GitRepositoryUrlError::Whitespace),
            (
                "https://user:token@github.com/owner/repo.git",
                GitRepositoryUrlError::Credentials,
            ),
            (
                "http://github.com/owner/repo.git",
                GitRepositoryUrlError::InsecureScheme {
                    scheme: "http".to_owned(),
                },
            ),
            (
                "git://github.com/owner/repo.git",
                GitRepositoryUrlError::InsecureScheme {
                    scheme: "git".to_owned(),
                },
            ),
            ("gopher://host/repo", GitRepositoryUrlError::Unsupported),
            ("/srv/git/repo.git", GitRepositoryUrlError::Unsupported),
            ("owner/repo", GitRepositoryUrlError::Unsupported),
            ("https://github.com", GitRepositoryUrlError::MissingPath),
            ("https://github.com/", GitRepositoryUrlError::MissingPath),
            ("git@github.com:", GitRepositoryUrlError::MissingPath),
            ("git@github.com:-oProxyCommand=x", GitRepositoryUrlError::LeadingHyphen),
            ("-git@github.com:x", GitRepositoryUrlError::LeadingHyphen),
            ("git@-oProxyCommand=x:repo", GitRepositoryUrlError::InvalidHost),
            ("ssh://-oProxyCommand=x/repo", GitRepositoryUrlError::InvalidHost),
            ("ssh://git@host:99999/repo", GitRepositoryUrlError::InvalidHost),
            ("ssh://git@[not-ipv6]/repo", GitRepositoryUrlError::InvalidHost),
            ("ssh://-u@host/repo", GitRepositoryUrlError::InvalidUser),
            ("file://relative", GitRepositoryUrlError::MissingPath),
        ];
        for (text, error) in refused {
            assert_eq!(text.parse::<GitRepositoryUrl>().as_ref(), Err(error), "{text:?}");
        }
        assert!(
            "x".repeat(2049).parse::<GitRepositoryUrl>().is_err(),
            "overlong URLs are refused"
        );
    }

    #[test]
    fn relative_paths() {
        assert!(WebDirectory::validate("").unwrap().is_root());
        assert_eq!(WebDirectory::validate("public/").unwrap().as_str(), "public");
        assert_eq!(WebDirectory::validate("web/dist").unwrap().as_str(), "web/dist");
        assert_eq!(WebDirectory::validate(".output"), Err(RelativePathError::Hidden));
        assert_eq!(RelativePath::validate(".env").unwrap().as_str(), ".env");
        assert_eq!(
            RelativePath::validate("wp-content/uploads").unwrap().as_str(),
            "wp-content/uploads"
        );
        let refused: &[(&str, RelativePathError)] = &[
            ("", RelativePathError::Empty),
            ("/etc", RelativePathError::Absolute),
            ("../x", RelativePathError::DotComponent),
            ("a/../b", RelativePathError::DotComponent),
            ("a//b", RelativePathError::DotComponent),
            ("./a", RelativePathError::DotComponent),
            ("-rf", RelativePathError::LeadingHyphen),
            ("a b", RelativePathError::InvalidCharacter(' ')),
            ("a;b", RelativePathError::InvalidCharacter(';')),
            ("$(id)", RelativePathError::InvalidCharacter('$')),
            ("a\nb", RelativePathError::InvalidCharacter('\n')),
            ("é", RelativePathError::InvalidCharacter('é')),
            (".git", RelativePathError::Reserved(".git".to_owned())),
            ("a/.git/hooks", RelativePathError::Reserved(".git".to_owned())),
            (
                ".brokeforge-deploy.sh",
                RelativePathError::Reserved(".brokeforge-deploy.sh".to_owned()),
            ),
        ];
        for (text, error) in refused {
            assert_eq!(RelativePath::validate(text).as_ref(), Err(error), "{text:?}");
        }
        assert_eq!(
            RelativePath::validate(&"a".repeat(256)),
            Err(RelativePathError::TooLong { max: 255 })
        );
    }

    #[test]
    fn shared_paths_do_not_repeat_or_nest() {
        let env = SharedPath::file(".env").unwrap();
        let storage = SharedPath::directory("storage").unwrap();
        let logs = SharedPath::directory("storage/logs").unwrap();
        let storage_two = SharedPath::directory("storage2").unwrap();
        assert!(SharedPaths::new(vec![env.clone(), storage.clone(), storage_two]).is_ok());
        assert_eq!(
            SharedPaths::new(vec![env.clone(), env.clone()]),
            Err(SharedPathsError::Duplicate(".env".to_owned()))
        );
        assert_eq!(
            SharedPaths::new(vec![logs, storage]),
            Err(SharedPathsError::Nested {
                outer: "storage".to_owned(),
                inner: "storage/logs".to_owned()
            })
        );
        let json = serde_json::to_string(&SharedPaths::new(vec![env]).unwrap()).unwrap();
        assert_eq!(json, r#"[{"path":".env","kind":"file"}]"#);
        assert!(serde_json::from_str::<SharedPaths>(r#"[{"path":"../x","kind":"file"}]"#).is_err());
        let too_many: Vec<SharedPath> = (0..21).map(|n| SharedPath::file(&format!("f{n}")).unwrap()).collect();
        assert_eq!(SharedPaths::new(too_many), Err(SharedPathsError::TooMany { max: 20 }));
    }

    #[test]
    fn deploy_scripts_keep_their_text() {
        let hostile = "echo 'a' \"$(id)\" `id`; rm -rf ~ &&\nEOF\n";
        assert_eq!(hostile.parse::<DeployScript>().unwrap().as_str(), hostile);
        assert_eq!("a\r\nb\r\n".parse::<DeployScript>().unwrap().as_str(), "a\nb\n");
        assert_eq!("a\0b".parse::<DeployScript>(), Err(DeployScriptError::NulByte));
        assert!("".parse::<DeployScript>().unwrap().is_blank());
        assert!("# nothing\n\n   # here\n".parse::<DeployScript>().unwrap().is_blank());
        assert!(!"# a\nnpm ci\n".parse::<DeployScript>().unwrap().is_blank());
        assert_eq!(
            "x".repeat(64 * 1024 + 1).parse::<DeployScript>(),
            Err(DeployScriptError::TooLong { max: 65536 })
        );
        let file = String::from_utf8("npm ci".parse::<DeployScript>().unwrap().file_contents()).unwrap();
        assert!(
            file.starts_with("# BrokeForge's deploy script") && file.ends_with("\nnpm ci\n"),
            "{file}"
        );
    }

    #[test]
    fn counts_and_timeouts_are_bounded() {
        assert_eq!(KeepReleases::default().get(), 5);
        assert!(KeepReleases::new(0).is_err());
        assert!(KeepReleases::new(51).is_err());
        assert_eq!(KeepReleases::new(50).unwrap().get(), 50);
        assert!(serde_json::from_str::<KeepReleases>("0").is_err());
        assert_eq!(DeployTimeout::default().duration(), Duration::from_secs(900));
        assert!(DeployTimeout::from_secs(0).is_err());
        assert!(DeployTimeout::from_secs(3601).is_err());
        assert_eq!(serde_json::to_string(&DeployTimeout::default()).unwrap(), "900");
    }
}

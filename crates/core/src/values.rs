//! Validated value types. Each one can only hold a value that is safe and meaningful
//! for its purpose, so code that receives a `Domain` or a `GitBranch` never checks
//! again. Every type parses with `FromStr`/`TryFrom<&str>`, explains a refusal with a
//! typed error, serializes as its text and deserializes through the same validation.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::cmd::ShellArg;

/// Implements the conversions shared by every validated text value: display, string
/// access, parsing, serde through validation, and use as a shell argument.
macro_rules! validated_text {
    ($value_type:ident, $error_type:ident) => {
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

        impl TryFrom<String> for $value_type {
            type Error = $error_type;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::validate(&input)
            }
        }

        impl From<$value_type> for String {
            fn from(value: $value_type) -> String {
                value.0
            }
        }

        impl Serialize for $value_type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $value_type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::validate(&text).map_err(serde::de::Error::custom)
            }
        }

        impl From<&$value_type> for ShellArg {
            fn from(value: &$value_type) -> ShellArg {
                ShellArg::from_nul_free(value.0.clone())
            }
        }

        impl From<$value_type> for ShellArg {
            fn from(value: $value_type) -> ShellArg {
                ShellArg::from_nul_free(value.0)
            }
        }
    };
}

/// A DNS host name such as `example.com` or `xn--bcher-kva.example`: lowercase ASCII,
/// at least two labels, no IP addresses, no trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

/// Why a text is not a [`Domain`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("a domain cannot be empty")]
    Empty,
    #[error("an IP address is not a domain; enter a host name like example.com")]
    IpAddress,
    #[error(
        "a domain cannot contain {0:?}; use letters a-z, digits, '-' and '.' \
         (write internationalized names in punycode, xn--...)"
    )]
    InvalidCharacter(char),
    #[error("a domain can be at most 253 characters long")]
    TooLong,
    #[error("a domain cannot contain an empty label (a leading dot or two dots in a row)")]
    EmptyLabel,
    #[error("each label of a domain can be at most 63 characters long")]
    LabelTooLong,
    #[error("a domain label cannot start or end with '-'")]
    LabelEdgeHyphen,
    #[error("a domain needs at least two labels, like example.com")]
    SingleLabel,
    #[error("the last label of a domain cannot be all digits")]
    NumericTopLevelLabel,
}

impl Domain {
    /// The longest domain DNS can carry, without the trailing dot.
    pub const MAX_LENGTH: usize = 253;
    /// The longest single label DNS can carry.
    pub const MAX_LABEL_LENGTH: usize = 63;

    fn validate(input: &str) -> Result<Self, DomainError> {
        let without_root_dot = input.strip_suffix('.').unwrap_or(input);
        if without_root_dot.is_empty() {
            return Err(DomainError::Empty);
        }
        if without_root_dot.parse::<IpAddr>().is_ok() {
            return Err(DomainError::IpAddress);
        }
        if let Some(bad) = without_root_dot
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(DomainError::InvalidCharacter(bad));
        }
        let domain = without_root_dot.to_ascii_lowercase();
        if domain.len() > Self::MAX_LENGTH {
            return Err(DomainError::TooLong);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err(DomainError::EmptyLabel);
            }
            if label.len() > Self::MAX_LABEL_LENGTH {
                return Err(DomainError::LabelTooLong);
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::LabelEdgeHyphen);
            }
        }
        if labels.len() < 2 {
            return Err(DomainError::SingleLabel);
        }
        if labels.last().is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DomainError::NumericTopLevelLabel);
        }
        Ok(Domain(domain))
    }
}

validated_text!(Domain, DomainError);

/// A TCP or UDP port number from 1 to 65535. It serializes as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(u16);

/// Why a value is not a [`Port`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PortError {
    #[error("a port must be a whole number from 1 to 65535")]
    NotANumber,
    #[error("port 0 is not a usable port; use a number from 1 to 65535")]
    Zero,
    #[error("a port can be at most 65535")]
    TooLarge,
}

impl Port {
    /// Makes a port from a number, refusing 0.
    pub fn new(number: u16) -> Result<Self, PortError> {
        if number == 0 {
            Err(PortError::Zero)
        } else {
            Ok(Port(number))
        }
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Port {
    type Err = PortError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PortError::NotANumber);
        }
        let number: u16 = input.parse().map_err(|_| PortError::TooLarge)?;
        Port::new(number)
    }
}

impl TryFrom<&str> for Port {
    type Error = PortError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl TryFrom<u16> for Port {
    type Error = PortError;

    fn try_from(number: u16) -> Result<Self, Self::Error> {
        Port::new(number)
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = u16::deserialize(deserializer)?;
        Port::new(number).map_err(serde::de::Error::custom)
    }
}

impl From<Port> for ShellArg {
    fn from(port: Port) -> ShellArg {
        ShellArg::from(port.0)
    }
}

/// A Git branch name that `git check-ref-format --branch` accepts and that cannot be
/// mistaken for a command-line option.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitBranch(String);

/// Why a text is not a [`GitBranch`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GitBranchError {
    #[error("a branch name cannot be empty")]
    Empty,
    #[error("a branch name can be at most 255 bytes long")]
    TooLong,
    #[error("a branch name cannot start with '-'")]
    LeadingHyphen,
    #[error("a branch name cannot contain {0:?}")]
    ForbiddenCharacter(char),
    #[error("a branch name cannot contain '..'")]
    DoubleDot,
    #[error("a branch name cannot contain '@{{'")]
    AtBrace,
    #[error("a branch name cannot be '@'")]
    SingleAt,
    #[error("a branch name cannot be 'HEAD'")]
    Head,
    #[error("a branch name cannot start or end with '/' or contain '//'")]
    MisplacedSlash,
    #[error("a part of a branch name between slashes cannot start with '.'")]
    ComponentLeadingDot,
    #[error("a part of a branch name between slashes cannot end with '.lock'")]
    ComponentLockSuffix,
    #[error("a branch name cannot end with '.'")]
    TrailingDot,
}

impl GitBranch {
    /// A practical limit; Git itself has none, but file systems do.
    pub const MAX_LENGTH: usize = 255;

    fn validate(input: &str) -> Result<Self, GitBranchError> {
        if input.is_empty() {
            return Err(GitBranchError::Empty);
        }
        if input.len() > Self::MAX_LENGTH {
            return Err(GitBranchError::TooLong);
        }
        if input.starts_with('-') {
            return Err(GitBranchError::LeadingHyphen);
        }
        if let Some(bad) = input
            .chars()
            .find(|c| c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
        {
            return Err(GitBranchError::ForbiddenCharacter(bad));
        }
        if input.contains("..") {
            return Err(GitBranchError::DoubleDot);
        }
        if input.contains("@{") {
            return Err(GitBranchError::AtBrace);
        }
        if input == "@" {
            return Err(GitBranchError::SingleAt);
        }
        if input == "HEAD" {
            return Err(GitBranchError::Head);
        }
        if input.starts_with('/') || input.ends_with('/') || input.contains("//") {
            return Err(GitBranchError::MisplacedSlash);
        }
        for component in input.split('/') {
            if component.starts_with('.') {
                return Err(GitBranchError::ComponentLeadingDot);
            }
            if component.ends_with(".lock") {
                return Err(GitBranchError::ComponentLockSuffix);
            }
        }
        if input.ends_with('.') {
            return Err(GitBranchError::TrailingDot);
        }
        Ok(GitBranch(input.to_owned()))
    }
}

validated_text!(GitBranch, GitBranchError);

/// A Unix account name such as `brokeforge` or `www-data`: `[a-z_][a-z0-9_-]{0,31}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixUserName(String);

/// Why a text is not a [`UnixUserName`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UnixUserNameError {
    #[error("a user name cannot be empty")]
    Empty,
    #[error("a user name can be at most 32 characters long")]
    TooLong,
    #[error("a user name must start with a lowercase letter a-z or '_'")]
    InvalidStart,
    #[error("a user name cannot contain {0:?}; use lowercase letters a-z, digits, '_' and '-'")]
    InvalidCharacter(char),
}

impl UnixUserName {
    /// The longest name `useradd` accepts on the supported distributions.
    pub const MAX_LENGTH: usize = 32;

    fn validate(input: &str) -> Result<Self, UnixUserNameError> {
        let Some(first) = input.chars().next() else {
            return Err(UnixUserNameError::Empty);
        };
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(UnixUserNameError::InvalidStart);
        }
        if let Some(bad) = input
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
        {
            return Err(UnixUserNameError::InvalidCharacter(bad));
        }
        if input.len() > Self::MAX_LENGTH {
            return Err(UnixUserNameError::TooLong);
        }
        Ok(UnixUserName(input.to_owned()))
    }
}

validated_text!(UnixUserName, UnixUserNameError);

/// A PHP version BrokeForge can install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhpVersion {
    Php74,
    Php80,
    Php81,
    Php82,
    Php83,
    Php84,
    Php85,
}

/// Why a text is not a supported [`PhpVersion`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unsupported PHP version; choose one of 7.4, 8.0, 8.1, 8.2, 8.3, 8.4, 8.5")]
pub struct PhpVersionError;

impl PhpVersion {
    /// Every supported version, oldest first.
    pub const ALL: &'static [PhpVersion] = &[
        PhpVersion::Php74,
        PhpVersion::Php80,
        PhpVersion::Php81,
        PhpVersion::Php82,
        PhpVersion::Php83,
        PhpVersion::Php84,
        PhpVersion::Php85,
    ];

    /// The version as Debian package names spell it, for example `8.3`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PhpVersion::Php74 => "7.4",
            PhpVersion::Php80 => "8.0",
            PhpVersion::Php81 => "8.1",
            PhpVersion::Php82 => "8.2",
            PhpVersion::Php83 => "8.3",
            PhpVersion::Php84 => "8.4",
            PhpVersion::Php85 => "8.5",
        }
    }
}

impl fmt::Display for PhpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhpVersion {
    type Err = PhpVersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PhpVersion::ALL
            .iter()
            .copied()
            .find(|version| version.as_str() == input)
            .ok_or(PhpVersionError)
    }
}

impl TryFrom<&str> for PhpVersion {
    type Error = PhpVersionError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl Serialize for PhpVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PhpVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<PhpVersion> for ShellArg {
    fn from(version: PhpVersion) -> ShellArg {
        ShellArg::from_nul_free(version.as_str().to_owned())
    }
}

/// An absolute, normalized path on a managed server: it starts with `/`, has no empty,
/// `.` or `..` components, no trailing slash (except the root itself) and no control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemotePath(String);

/// Why a text is not a [`RemotePath`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RemotePathError {
    #[error("a remote path cannot be empty")]
    Empty,
    #[error("a remote path must be absolute (start with '/')")]
    NotAbsolute,
    #[error("a remote path cannot contain control characters such as NUL, tab or newline")]
    ControlCharacter,
    #[error("a remote path cannot contain '..' components")]
    ParentComponent,
    #[error("a remote path can be at most 4095 bytes long")]
    TooLong,
    #[error("each part of a remote path can be at most 255 bytes long")]
    ComponentTooLong,
}

impl RemotePath {
    /// The longest path Linux accepts (`PATH_MAX` minus the terminating NUL).
    pub const MAX_LENGTH: usize = 4095;
    /// The longest file name Linux accepts (`NAME_MAX`).
    pub const MAX_COMPONENT_LENGTH: usize = 255;

    fn validate(input: &str) -> Result<Self, RemotePathError> {
        if input.is_empty() {
            return Err(RemotePathError::Empty);
        }
        if !input.starts_with('/') {
            return Err(RemotePathError::NotAbsolute);
        }
        Self::normalize_below("", input)
    }

    /// Appends `relative` below this path. A leading `/` in `relative` is ignored and
    /// `..` is refused, so the result always stays inside this path.
    pub fn join(&self, relative: &str) -> Result<RemotePath, RemotePathError> {
        Self::normalize_below(&self.0, relative)
    }

    /// Builds the normalized path of `base` followed by the components of `rest`.
    fn normalize_below(base: &str, rest: &str) -> Result<RemotePath, RemotePathError> {
        if rest.chars().any(char::is_control) {
            return Err(RemotePathError::ControlCharacter);
        }
        let mut normalized = String::from(base.trim_end_matches('/'));
        for component in rest.split('/') {
            match component {
                "" | "." => {}
                ".." => return Err(RemotePathError::ParentComponent),
                _ if component.len() > Self::MAX_COMPONENT_LENGTH => {
                    return Err(RemotePathError::ComponentTooLong);
                }
                _ => {
                    normalized.push('/');
                    normalized.push_str(component);
                }
            }
        }
        if normalized.is_empty() {
            normalized.push('/');
        }
        if normalized.len() > Self::MAX_LENGTH {
            return Err(RemotePathError::TooLong);
        }
        Ok(RemotePath(normalized))
    }
}

validated_text!(RemotePath, RemotePathError);

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks each input against its expected normalized value or error message.
    fn check<T, E>(cases: &[(&str, Result<&str, &str>)])
    where
        T: FromStr<Err = E> + fmt::Display,
        E: fmt::Display,
    {
        for (input, expected) in cases {
            let actual = input
                .parse::<T>()
                .map(|value| value.to_string())
                .map_err(|error| error.to_string());
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(actual, expected, "input {input:?}");
        }
    }

    #[test]
    fn domains() {
        let long_label = "a".repeat(63);
        let too_long_label = "a".repeat(64);
        let long_domain = format!("{long_label}.{long_label}.{long_label}.{}.com", "b".repeat(57));
        let too_long_domain = format!("{long_label}.{long_label}.{long_label}.{}.com", "b".repeat(58));
        let with_long_label = format!("{long_label}.com");
        let with_too_long_label = format!("{too_long_label}.com");
        assert_eq!(long_domain.len(), 253);
        check::<Domain, _>(&[
            ("example.com", Ok("example.com")),
            ("www.example.co.uk", Ok("www.example.co.uk")),
            ("Example.COM", Ok("example.com")),
            ("example.com.", Ok("example.com")),
            ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
            ("a-b.c0", Ok("a-b.c0")),
            ("123.example.com", Ok("123.example.com")),
            (&with_long_label, Ok(&with_long_label)),
            (&long_domain, Ok(&long_domain)),
            ("", Err("a domain cannot be empty")),
            (".", Err("a domain cannot be empty")),
            ("localhost", Err("a domain needs at least two labels, like example.com")),
            (
                "192.168.1.1",
                Err("an IP address is not a domain; enter a host name like example.com"),
            ),
            (
                "::1",
                Err("an IP address is not a domain; enter a host name like example.com"),
            ),
            ("1.2.3", Err("the last label of a domain cannot be all digits")),
            (
                "bücher.de",
                Err(
                    "a domain cannot contain 'ü'; use letters a-z, digits, '-' and '.' (write internationalized names in punycode, xn--...)",
                ),
            ),
            (
                "exa mple.com",
                Err(
                    "a domain cannot contain ' '; use letters a-z, digits, '-' and '.' (write internationalized names in punycode, xn--...)",
                ),
            ),
            (
                "under_score.com",
                Err(
                    "a domain cannot contain '_'; use letters a-z, digits, '-' and '.' (write internationalized names in punycode, xn--...)",
                ),
            ),
            (
                "*.example.com",
                Err(
                    "a domain cannot contain '*'; use letters a-z, digits, '-' and '.' (write internationalized names in punycode, xn--...)",
                ),
            ),
            (
                "example.com;reboot",
                Err(
                    "a domain cannot contain ';'; use letters a-z, digits, '-' and '.' (write internationalized names in punycode, xn--...)",
                ),
            ),
            (
                ".example.com",
                Err("a domain cannot contain an empty label (a leading dot or two dots in a row)"),
            ),
            (
                "example..com",
                Err("a domain cannot contain an empty label (a leading dot or two dots in a row)"),
            ),
            (
                "example.com..",
                Err("a domain cannot contain an empty label (a leading dot or two dots in a row)"),
            ),
            ("-example.com", Err("a domain label cannot start or end with '-'")),
            ("example-.com", Err("a domain label cannot start or end with '-'")),
            (
                &with_too_long_label,
                Err("each label of a domain can be at most 63 characters long"),
            ),
            (&too_long_domain, Err("a domain can be at most 253 characters long")),
        ]);
    }

    #[test]
    fn ports() {
        check::<Port, _>(&[
            ("1", Ok("1")),
            ("22", Ok("22")),
            ("65535", Ok("65535")),
            ("0", Err("port 0 is not a usable port; use a number from 1 to 65535")),
            ("65536", Err("a port can be at most 65535")),
            ("99999999999999999999", Err("a port can be at most 65535")),
            ("", Err("a port must be a whole number from 1 to 65535")),
            ("-1", Err("a port must be a whole number from 1 to 65535")),
            ("+80", Err("a port must be a whole number from 1 to 65535")),
            (" 80", Err("a port must be a whole number from 1 to 65535")),
            ("8o", Err("a port must be a whole number from 1 to 65535")),
        ]);
        assert_eq!(Port::new(0), Err(PortError::Zero));
        assert_eq!(Port::try_from(443).map(Port::get), Ok(443));
    }

    #[test]
    fn git_branches() {
        let long_branch = "b".repeat(255);
        let too_long_branch = "b".repeat(256);
        check::<GitBranch, _>(&[
            ("main", Ok("main")),
            ("feature/login-form", Ok("feature/login-form")),
            ("release-1.2", Ok("release-1.2")),
            ("fix_#12", Ok("fix_#12")),
            ("v1.2.3", Ok("v1.2.3")),
            ("zweig-ä", Ok("zweig-ä")),
            ("a@b", Ok("a@b")),
            (&long_branch, Ok(&long_branch)),
            ("", Err("a branch name cannot be empty")),
            (&too_long_branch, Err("a branch name can be at most 255 bytes long")),
            ("-main", Err("a branch name cannot start with '-'")),
            ("--upload-pack=evil", Err("a branch name cannot start with '-'")),
            ("my branch", Err("a branch name cannot contain ' '")),
            ("a~1", Err("a branch name cannot contain '~'")),
            ("a^", Err("a branch name cannot contain '^'")),
            ("a:b", Err("a branch name cannot contain ':'")),
            ("a?", Err("a branch name cannot contain '?'")),
            ("a*", Err("a branch name cannot contain '*'")),
            ("a[b", Err("a branch name cannot contain '['")),
            ("a\\b", Err("a branch name cannot contain '\\\\'")),
            ("a\nb", Err("a branch name cannot contain '\\n'")),
            ("a\u{7f}", Err("a branch name cannot contain '\\u{7f}'")),
            ("a..b", Err("a branch name cannot contain '..'")),
            ("a@{1}", Err("a branch name cannot contain '@{'")),
            ("@", Err("a branch name cannot be '@'")),
            ("HEAD", Err("a branch name cannot be 'HEAD'")),
            (
                "/main",
                Err("a branch name cannot start or end with '/' or contain '//'"),
            ),
            (
                "main/",
                Err("a branch name cannot start or end with '/' or contain '//'"),
            ),
            (
                "a//b",
                Err("a branch name cannot start or end with '/' or contain '//'"),
            ),
            (
                ".hidden",
                Err("a part of a branch name between slashes cannot start with '.'"),
            ),
            (
                "a/.b",
                Err("a part of a branch name between slashes cannot start with '.'"),
            ),
            (
                "main.lock",
                Err("a part of a branch name between slashes cannot end with '.lock'"),
            ),
            (
                "a.lock/b",
                Err("a part of a branch name between slashes cannot end with '.lock'"),
            ),
            ("main.", Err("a branch name cannot end with '.'")),
        ]);
    }

    #[test]
    fn unix_user_names() {
        let long_name = "u".repeat(32);
        let too_long_name = "u".repeat(33);
        check::<UnixUserName, _>(&[
            ("brokeforge", Ok("brokeforge")),
            ("www-data", Ok("www-data")),
            ("_apt", Ok("_apt")),
            ("user42", Ok("user42")),
            ("root", Ok("root")),
            (&long_name, Ok(&long_name)),
            ("", Err("a user name cannot be empty")),
            (&too_long_name, Err("a user name can be at most 32 characters long")),
            (
                "1user",
                Err("a user name must start with a lowercase letter a-z or '_'"),
            ),
            (
                "-user",
                Err("a user name must start with a lowercase letter a-z or '_'"),
            ),
            ("User", Err("a user name must start with a lowercase letter a-z or '_'")),
            (
                "useR",
                Err("a user name cannot contain 'R'; use lowercase letters a-z, digits, '_' and '-'"),
            ),
            (
                "us er",
                Err("a user name cannot contain ' '; use lowercase letters a-z, digits, '_' and '-'"),
            ),
            (
                "user;id",
                Err("a user name cannot contain ';'; use lowercase letters a-z, digits, '_' and '-'"),
            ),
            (
                "user$",
                Err("a user name cannot contain '$'; use lowercase letters a-z, digits, '_' and '-'"),
            ),
        ]);
    }

    #[test]
    fn php_versions() {
        let refusal = "unsupported PHP version; choose one of 7.4, 8.0, 8.1, 8.2, 8.3, 8.4, 8.5";
        check::<PhpVersion, _>(&[
            ("7.4", Ok("7.4")),
            ("8.0", Ok("8.0")),
            ("8.3", Ok("8.3")),
            ("8.5", Ok("8.5")),
            ("8", Err(refusal)),
            ("5.6", Err(refusal)),
            ("8.3 ", Err(refusal)),
            ("php8.3", Err(refusal)),
            ("", Err(refusal)),
        ]);
        let listed: Vec<&str> = PhpVersion::ALL.iter().map(|version| version.as_str()).collect();
        assert!(refusal.ends_with(&listed.join(", ")), "the error lists every version");
    }

    #[test]
    fn remote_paths() {
        let too_long_component = "c".repeat(256);
        let too_long_path = format!("/{}", vec!["d".repeat(200); 21].join("/"));
        check::<RemotePath, _>(&[
            ("/", Ok("/")),
            ("/etc/nginx/nginx.conf", Ok("/etc/nginx/nginx.conf")),
            ("/home/brokeforge/example.com/", Ok("/home/brokeforge/example.com")),
            ("//etc///nginx//", Ok("/etc/nginx")),
            ("/etc/./nginx/.", Ok("/etc/nginx")),
            ("/srv/my site/.env", Ok("/srv/my site/.env")),
            ("/srv/...", Ok("/srv/...")),
            ("/srv/$(reboot)", Ok("/srv/$(reboot)")),
            ("", Err("a remote path cannot be empty")),
            ("etc/nginx", Err("a remote path must be absolute (start with '/')")),
            ("~/site", Err("a remote path must be absolute (start with '/')")),
            ("/etc/../root", Err("a remote path cannot contain '..' components")),
            ("/..", Err("a remote path cannot contain '..' components")),
            (
                "/etc/\0",
                Err("a remote path cannot contain control characters such as NUL, tab or newline"),
            ),
            (
                "/etc/a\nb",
                Err("a remote path cannot contain control characters such as NUL, tab or newline"),
            ),
            (
                &format!("/{too_long_component}"),
                Err("each part of a remote path can be at most 255 bytes long"),
            ),
            (&too_long_path, Err("a remote path can be at most 4095 bytes long")),
        ]);
    }

    #[test]
    fn remote_path_join_stays_below_its_base() {
        let base: RemotePath = "/home/brokeforge".parse().unwrap();
        assert_eq!(
            base.join("example.com/current").unwrap().as_str(),
            "/home/brokeforge/example.com/current"
        );
        assert_eq!(
            base.join("/etc/passwd").unwrap().as_str(),
            "/home/brokeforge/etc/passwd"
        );
        assert_eq!(base.join("").unwrap(), base);
        assert_eq!(base.join("../root"), Err(RemotePathError::ParentComponent));
        let root: RemotePath = "/".parse().unwrap();
        assert_eq!(root.join("etc").unwrap().as_str(), "/etc");
    }

    #[test]
    fn values_serialize_as_text_and_deserialize_through_validation() {
        let domain: Domain = serde_json::from_str("\"Example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&domain).unwrap(), "\"example.com\"");
        let error = serde_json::from_str::<Domain>("\"localhost\"").unwrap_err();
        assert!(error.to_string().contains("at least two labels"), "{error}");

        let port: Port = serde_json::from_str("8080").unwrap();
        assert_eq!(serde_json::to_string(&port).unwrap(), "8080");
        assert!(serde_json::from_str::<Port>("0").is_err());

        let version: PhpVersion = serde_json::from_str("\"8.3\"").unwrap();
        assert_eq!(version, PhpVersion::Php83);
        assert_eq!(serde_json::to_string(&version).unwrap(), "\"8.3\"");
        assert!(serde_json::from_str::<PhpVersion>("\"9.9\"").is_err());

        assert!(serde_json::from_str::<GitBranch>("\"a..b\"").is_err());
        assert!(serde_json::from_str::<UnixUserName>("\"Root\"").is_err());
        let path: RemotePath = serde_json::from_str("\"/srv//www/\"").unwrap();
        assert_eq!(path.as_str(), "/srv/www");
        assert!(serde_json::from_str::<RemotePath>("\"/srv/../etc\"").is_err());
    }
}

//! Firewall rules as validated values: a port or port range, a protocol, an optional
//! source address or network, and an optional comment.
//!
//! Every value here reaches `ufw` as one quoted argument, but quoting is not enough:
//! ufw scans its whole argument list for some words (`--rootdir=...` anywhere relocates
//! its configuration; a lone `in`, `out`, `log` or `log-all` changes how it parses the
//! rule), and `ufw show added` prints comments between single quotes. So comments
//! cannot start with `-`, cannot be one of those words, and cannot contain `'` or
//! control characters; addresses are parsed as IP addresses, which never start with
//! `-`. ufw does not accept `--` to end options, so this validation is the boundary.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use brokeforge_core::{Port, PortError, ShellArg};
use serde::{Deserialize, Serialize};
use thiserror::Error;

string_enum! {
    /// What a rule does with matching traffic.
    pub enum RuleAction ("rule action") {
        /// Let it in.
        Allow => "allow",
        /// Drop it silently.
        Deny => "deny",
    }
}

string_enum! {
    /// The transport protocol a rule matches.
    pub enum Protocol ("protocol") {
        Tcp => "tcp",
        Udp => "udp",
    }
}

/// Why a port specification is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PortSpecError {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("write a port range with a colon, like 3000:3005")]
    HyphenRange,
    #[error("a port range must go from a lower to a higher port, like 3000:3005")]
    EmptyRange,
    #[error("enter a port (such as 8080) or a port range (such as 3000:3005)")]
    NotAPort,
}

/// One port, or an inclusive range of ports written `first:last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    Single(Port),
    Range { first: Port, last: Port },
}

impl PortSpec {
    /// The range from `first` to `last`; `first` must be lower.
    pub fn range(first: Port, last: Port) -> Result<Self, PortSpecError> {
        if first.get() >= last.get() {
            return Err(PortSpecError::EmptyRange);
        }
        Ok(PortSpec::Range { first, last })
    }

    /// Whether `port` is this port or lies in this range.
    pub fn contains(self, port: Port) -> bool {
        match self {
            PortSpec::Single(single) => single == port,
            PortSpec::Range { first, last } => (first.get()..=last.get()).contains(&port.get()),
        }
    }

    pub(crate) fn shell_arg(self) -> ShellArg {
        ShellArg::new(self.to_string()).expect("digits and a colon hold no NUL")
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Single(port) => write!(f, "{port}"),
            PortSpec::Range { first, last } => write!(f, "{first}:{last}"),
        }
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let is_number = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
        if let Some((first, last)) = text.split_once(':') {
            if !is_number(first) || !is_number(last) {
                return Err(PortSpecError::NotAPort);
            }
            return PortSpec::range(first.parse()?, last.parse()?);
        }
        if let Some((first, last)) = text.split_once('-')
            && is_number(first)
            && is_number(last)
        {
            return Err(PortSpecError::HyphenRange);
        }
        if !is_number(text) {
            return Err(PortSpecError::NotAPort);
        }
        Ok(PortSpec::Single(text.parse()?))
    }
}

impl Serialize for PortSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A port as JSON gives it: `8080` or `"3000:3005"`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrText {
            Number(u64),
            Text(String),
        }
        let text = match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(number) => number.to_string(),
            NumberOrText::Text(text) => text,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a source address is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SourceAddressError {
    #[error("enter an IP address or a network in CIDR form, such as 203.0.113.7 or 10.0.0.0/8")]
    NotAnAddress,
    #[error("a network prefix can be at most /{max} for this address")]
    PrefixTooLong { max: u8 },
    #[error("leave the source empty to match every address")]
    Anywhere,
}

/// An IPv4 or IPv6 address, or a network in CIDR form, normalized the way ufw stores
/// it: a full-length prefix is dropped and host bits are cleared (`10.1.2.3/8` is
/// `10.0.0.0/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceAddress {
    address: IpAddr,
    prefix: Option<u8>,
}

impl SourceAddress {
    /// The address, or the network address of a network.
    pub fn address(self) -> IpAddr {
        self.address
    }

    /// The prefix length of a network; `None` for a single address.
    pub fn prefix(self) -> Option<u8> {
        self.prefix
    }

    pub(crate) fn shell_arg(self) -> ShellArg {
        ShellArg::new(self.to_string()).expect("an IP address holds no NUL")
    }
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(prefix) => write!(f, "{}/{prefix}", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

impl FromStr for SourceAddress {
    type Err = SourceAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| SourceAddressError::NotAnAddress)?;
        if address.is_unspecified() {
            return Err(SourceAddressError::Anywhere);
        }
        let max_prefix: u8 = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max_prefix,
            Some(prefix) if !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse::<u8>().map_err(|_| SourceAddressError::NotAnAddress)?
            }
            Some(_) => return Err(SourceAddressError::NotAnAddress),
        };
        if prefix > max_prefix {
            return Err(SourceAddressError::PrefixTooLong { max: max_prefix });
        }
        if prefix == 0 {
            return Err(SourceAddressError::Anywhere);
        }
        if prefix == max_prefix {
            return Ok(SourceAddress { address, prefix: None });
        }
        let network = match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX << (32 - u32::from(prefix));
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX << (128 - u32::from(prefix));
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        };
        Ok(SourceAddress {
            address: network,
            prefix: Some(prefix),
        })
    }
}

impl Serialize for SourceAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SourceAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Why a rule comment is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RuleCommentError {
    #[error("a comment cannot be empty; leave it out instead")]
    Empty,
    #[error("a comment can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("a comment cannot contain a single quote (')")]
    SingleQuote,
    #[error("a comment cannot contain control characters such as newlines or tabs")]
    ControlCharacter,
    #[error("a comment cannot start with '-'")]
    LeadingDash,
    #[error("a comment cannot be just the word {word:?}, which ufw reads as part of the rule")]
    UfwKeyword { word: String },
}

/// A short note shown next to a rule, such as `MySQL from the office`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleComment(String);

impl RuleComment {
    /// The longest comment, in characters.
    pub const MAX_LENGTH: usize = 64;

    /// Words ufw looks for anywhere in its arguments before it reads the comment.
    const UFW_KEYWORDS: &'static [&'static str] = &["in", "out", "log", "log-all"];

    /// The comment text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shell_arg(&self) -> ShellArg {
        ShellArg::new(self.0.as_str()).expect("control characters, NUL included, are refused")
    }
}

impl fmt::Display for RuleComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RuleComment {
    type Err = RuleCommentError;

    /// Surrounding whitespace is dropped; everything else is checked.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RuleCommentError::Empty);
        }
        if text.chars().count() > Self::MAX_LENGTH {
            return Err(RuleCommentError::TooLong { max: Self::MAX_LENGTH });
        }
        if text.contains('\'') {
            return Err(RuleCommentError::SingleQuote);
        }
        if text.chars().any(char::is_control) {
            return Err(RuleCommentError::ControlCharacter);
        }
        if text.starts_with('-') {
            return Err(RuleCommentError::LeadingDash);
        }
        if let Some(word) = Self::UFW_KEYWORDS.iter().find(|word| word.eq_ignore_ascii_case(text)) {
            return Err(RuleCommentError::UfwKeyword {
                word: (*word).to_owned(),
            });
        }
        Ok(RuleComment(text.to_owned()))
    }
}

impl Serialize for RuleComment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RuleComment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One incoming-traffic rule, as a user adds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    /// Allow or deny.
    pub action: RuleAction,
    /// The destination port or port range.
    pub port: PortSpec,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Where the traffic comes from; `None` matches every address.
    #[serde(default)]
    pub source: Option<SourceAddress>,
    /// A note shown with the rule.
    #[serde(default)]
    pub comment: Option<RuleComment>,
}

impl FirewallRule {
    /// Whether this rule matches traffic from somewhere to `port` over `protocol`.
    pub fn matches_port(&self, port: Port, protocol: Protocol) -> bool {
        self.protocol == protocol && self.port.contains(port)
    }
}

impl fmt::Display for FirewallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.action, self.port, self.protocol)?;
        if let Some(source) = &self.source {
            write!(f, " from {source}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: FromStr + fmt::Display>(cases: &[(&str, Result<&str, &str>)])
    where
        T::Err: fmt::Display,
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
    fn port_specs() {
        let not_a_port = "enter a port (such as 8080) or a port range (such as 3000:3005)";
        check::<PortSpec>(&[
            ("22", Ok("22")),
            ("65535", Ok("65535")),
            ("3000:3005", Ok("3000:3005")),
            ("1:65535", Ok("1:65535")),
            ("3000-3005", Err("write a port range with a colon, like 3000:3005")),
            (
                "3005:3000",
                Err("a port range must go from a lower to a higher port, like 3000:3005"),
            ),
            (
                "80:80",
                Err("a port range must go from a lower to a higher port, like 3000:3005"),
            ),
            ("0", Err("port 0 is not a usable port; use a number from 1 to 65535")),
            ("70000", Err("a port can be at most 65535")),
            ("1:70000", Err("a port can be at most 65535")),
            ("", Err(not_a_port)),
            ("-22", Err(not_a_port)),
            ("+22", Err(not_a_port)),
            (" 22", Err(not_a_port)),
            ("22/tcp", Err(not_a_port)),
            ("80,443", Err(not_a_port)),
            ("http", Err(not_a_port)),
            ("22;reboot", Err(not_a_port)),
            ("3000:", Err(not_a_port)),
            (":3000", Err(not_a_port)),
            ("1:2:3", Err(not_a_port)),
        ]);
        let range: PortSpec = "3000:3005".parse().unwrap();
        assert!(range.contains(Port::new(3000).unwrap()));
        assert!(range.contains(Port::new(3005).unwrap()));
        assert!(!range.contains(Port::new(3006).unwrap()));
        assert_eq!(serde_json::from_str::<PortSpec>("8080").unwrap().to_string(), "8080");
        assert_eq!(serde_json::from_str::<PortSpec>("\"1:9\"").unwrap().to_string(), "1:9");
        assert!(serde_json::from_str::<PortSpec>("0").is_err());
        assert!(serde_json::from_str::<PortSpec>("-1").is_err());
    }

    #[test]
    fn source_addresses() {
        let not_an_address = "enter an IP address or a network in CIDR form, such as 203.0.113.7 or 10.0.0.0/8";
        let anywhere = "leave the source empty to match every address";
        check::<SourceAddress>(&[
            ("203.0.113.7", Ok("203.0.113.7")),
            ("203.0.113.7/32", Ok("203.0.113.7")),
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("10.1.2.3/8", Ok("10.0.0.0/8")),
            ("192.168.1.77/24", Ok("192.168.1.0/24")),
            ("2001:db8::/32", Ok("2001:db8::/32")),
            ("2001:DB8:0:0:0:0:0:1", Ok("2001:db8::1")),
            ("2001:db8::1/128", Ok("2001:db8::1")),
            ("2001:db8::1/64", Ok("2001:db8::/64")),
            ("0.0.0.0/0", Err(anywhere)),
            ("0.0.0.0", Err(anywhere)),
            ("::/0", Err(anywhere)),
            ("10.0.0.0/0", Err(anywhere)),
            (
                "10.0.0.0/33",
                Err("a network prefix can be at most /32 for this address"),
            ),
            (
                "2001:db8::/129",
                Err("a network prefix can be at most /128 for this address"),
            ),
            ("10.0.0.0/", Err(not_an_address)),
            ("10.0.0.0/+8", Err(not_an_address)),
            ("10.0.0.0/0008", Err(not_an_address)),
            ("10.0.0.256", Err(not_an_address)),
            ("010.0.0.1", Err(not_an_address)),
            ("example.com", Err(not_an_address)),
            ("-10.0.0.1", Err(not_an_address)),
            ("--rootdir=/tmp", Err(not_an_address)),
            (" 10.0.0.1", Err(not_an_address)),
            ("10.0.0.1; reboot", Err(not_an_address)),
            ("10.0.0.1\nufw disable", Err(not_an_address)),
            ("$(reboot)", Err(not_an_address)),
            ("", Err(not_an_address)),
        ]);
    }

    #[test]
    fn rule_comments() {
        check::<RuleComment>(&[
            ("SSH", Ok("SSH")),
            ("  MySQL from the office  ", Ok("MySQL from the office")),
            (
                "$(reboot) `id`; rm -rf / && \"x\"",
                Ok("$(reboot) `id`; rm -rf / && \"x\""),
            ),
            ("ünïcode ✓", Ok("ünïcode ✓")),
            ("inbound", Ok("inbound")),
            ("in out", Ok("in out")),
            ("", Err("a comment cannot be empty; leave it out instead")),
            ("   ", Err("a comment cannot be empty; leave it out instead")),
            (&"x".repeat(65), Err("a comment can be at most 64 characters long")),
            ("it's", Err("a comment cannot contain a single quote (')")),
            (
                "line\nufw disable",
                Err("a comment cannot contain control characters such as newlines or tabs"),
            ),
            (
                "tab\there",
                Err("a comment cannot contain control characters such as newlines or tabs"),
            ),
            (
                "nul\0byte",
                Err("a comment cannot contain control characters such as newlines or tabs"),
            ),
            ("--rootdir=/tmp/evil", Err("a comment cannot start with '-'")),
            ("-x", Err("a comment cannot start with '-'")),
            (
                "in",
                Err("a comment cannot be just the word \"in\", which ufw reads as part of the rule"),
            ),
            (
                "LOG",
                Err("a comment cannot be just the word \"log\", which ufw reads as part of the rule"),
            ),
            (
                "log-all",
                Err("a comment cannot be just the word \"log-all\", which ufw reads as part of the rule"),
            ),
        ]);
        assert_eq!("x".repeat(64).parse::<RuleComment>().unwrap().as_str().len(), 64);
    }

    #[test]
    fn rules_deserialize_through_validation() {
        let rule: FirewallRule = serde_json::from_str(
            r#"{"action":"deny","port":"5000:5010","protocol":"udp","source":"203.0.113.7/32","comment":" blocked "}"#,
        )
        .unwrap();
        assert_eq!(rule.to_string(), "deny 5000:5010/udp from 203.0.113.7");
        assert_eq!(rule.comment.as_ref().unwrap().as_str(), "blocked");
        let minimal: FirewallRule = serde_json::from_str(r#"{"action":"allow","port":8080,"protocol":"tcp"}"#).unwrap();
        assert_eq!(minimal.to_string(), "allow 8080/tcp");
        for hostile in [
            r#"{"action":"allow","port":"8080;reboot","protocol":"tcp"}"#,
            r#"{"action":"allow","port":8080,"protocol":"icmp"}"#,
            r#"{"action":"reject","port":8080,"protocol":"tcp"}"#,
            r#"{"action":"allow","port":8080,"protocol":"tcp","source":"-1.2.3.4"}"#,
            r#"{"action":"allow","port":8080,"protocol":"tcp","comment":"a'b"}"#,
            r#"{"action":"allow","port":8080,"protocol":"tcp","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<FirewallRule>(hostile).is_err(), "{hostile}");
        }
    }
}

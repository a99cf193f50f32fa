//! ufw's side: the commands BrokeForge runs and pure parsers for what ufw prints.
//!
//! Facts come from two commands, run with `LC_ALL=C` because ufw translates its
//! output: `ufw status verbose` (is the firewall on, and its default policies) and
//! `ufw show added` (the rules as commands, even while the firewall is off). Rules are
//! added in ufw's extended syntax (`ufw allow proto tcp to any port 80`), which ufw
//! prints back in its own canonical form (`ufw allow 80/tcp`); the parser reads that
//! form, so a rule BrokeForge added is recognized when it looks for it again.

use brokeforge_core::{Cmd, Port, ShellArg};

use crate::facts::{ProbeOutput, UnexpectedOutput};
use crate::firewall::rule::{FirewallRule, PortSpec, Protocol, RuleAction, SourceAddress};

string_enum! {
    /// A default policy of the firewall.
    pub enum UfwPolicy ("firewall policy") {
        Allow => "allow",
        Deny => "deny",
        Reject => "reject",
    }
}

/// What `ufw status verbose` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfwStatus {
    /// Whether the firewall filters traffic now.
    pub active: bool,
    /// The policy for incoming traffic no rule matches; shown only while active.
    pub default_incoming: Option<UfwPolicy>,
    /// The policy for outgoing traffic no rule matches; shown only while active.
    pub default_outgoing: Option<UfwPolicy>,
}

string_enum! {
    /// What a rule in `ufw show added` does.
    pub enum UfwRuleAction ("ufw rule action") {
        Allow => "allow",
        Deny => "deny",
        Reject => "reject",
        /// Allow, with connection rate limiting.
        Limit => "limit",
    }
}

/// A rule from `ufw show added` in the forms BrokeForge understands: incoming, to any
/// local address, optionally from one source, without interfaces or logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfwRule {
    pub action: UfwRuleAction,
    /// `None` when the rule matches every port.
    pub port: Option<PortSpec>,
    /// `None` when the rule matches every protocol.
    pub protocol: Option<Protocol>,
    /// `None` when the rule matches every source.
    pub source: Option<SourceAddress>,
    pub comment: Option<String>,
}

impl UfwRule {
    /// The rule as ufw stores `rule`.
    pub fn from_rule(rule: &FirewallRule) -> Self {
        UfwRule {
            action: match rule.action {
                RuleAction::Allow => UfwRuleAction::Allow,
                RuleAction::Deny => UfwRuleAction::Deny,
            },
            port: Some(rule.port),
            protocol: Some(rule.protocol),
            source: rule.source,
            comment: rule.comment.as_ref().map(|comment| comment.as_str().to_owned()),
        }
    }

    /// Whether this rule lets traffic from every source reach `port` over TCP.
    pub fn allows_tcp_from_anywhere(&self, port: Port) -> bool {
        matches!(self.action, UfwRuleAction::Allow | UfwRuleAction::Limit)
            && self.source.is_none()
            && self.port.is_none_or(|spec| spec.contains(port))
            && self.protocol.is_none_or(|protocol| protocol == Protocol::Tcp)
    }

    /// Whether both rules match the same traffic the same way; comments aside, which
    /// is how `ufw delete` compares rules.
    pub fn same_traffic(&self, other: &UfwRule) -> bool {
        self.action == other.action
            && self.port == other.port
            && self.protocol == other.protocol
            && self.source == other.source
    }
}

/// One line of `ufw show added`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddedRule {
    /// A rule in a form BrokeForge understands.
    Parsed(UfwRule),
    /// Any other rule (application profiles, interfaces, routing, logging, port lists,
    /// destination addresses), kept as ufw printed it after `ufw `.
    Other(String),
}

/// `LC_ALL=C ufw`, so that ufw's output is not translated.
fn ufw() -> Cmd {
    Cmd::new("ufw").env("LC_ALL", ShellArg::new("C").expect("a literal without NUL"))
}

/// The probe command for [`UfwStatus`].
pub fn status_cmd() -> Cmd {
    ufw().lit("status").lit("verbose")
}

/// The probe command for the added rules.
pub fn show_added_cmd() -> Cmd {
    ufw().lit("show").lit("added")
}

/// Allows `port` over TCP from anywhere, with a comment such as `SSH`.
pub fn allow_tcp_port_cmd(port: Port, comment: &'static str) -> Cmd {
    ufw()
        .lit("allow")
        .lit("proto")
        .lit("tcp")
        .lit("to")
        .lit("any")
        .lit("port")
        .arg(port)
        .lit("comment")
        .lit(comment)
}

/// Sets the default policy for incoming traffic to deny.
pub fn deny_incoming_by_default_cmd() -> Cmd {
    ufw().lit("default").lit("deny").lit("incoming")
}

/// Sets the default policy for outgoing traffic to allow.
pub fn allow_outgoing_by_default_cmd() -> Cmd {
    ufw().lit("default").lit("allow").lit("outgoing")
}

/// Turns the firewall on now and at boot, without asking for confirmation.
pub fn enable_cmd() -> Cmd {
    ufw().lit("--force").lit("enable")
}

/// Adds `rule`. Deny rules go first (`prepend`) so that no earlier allow rule lets the
/// traffic through; allow rules go last.
pub fn add_rule_cmd(rule: &FirewallRule) -> Cmd {
    let cmd = match rule.action {
        RuleAction::Allow => ufw().lit("allow"),
        RuleAction::Deny => ufw().lit("prepend").lit("deny"),
    };
    let cmd = rule_body(cmd, rule);
    match &rule.comment {
        Some(comment) => cmd.lit("comment").arg(comment.shell_arg()),
        None => cmd,
    }
}

/// Deletes `rule`; ufw ignores comments when it looks for the rule to delete.
pub fn delete_rule_cmd(rule: &FirewallRule) -> Cmd {
    let cmd = match rule.action {
        RuleAction::Allow => ufw().lit("delete").lit("allow"),
        RuleAction::Deny => ufw().lit("delete").lit("deny"),
    };
    rule_body(cmd, rule)
}

/// `proto P [from SOURCE] to any port PORTS`, the part shared by adding and deleting.
fn rule_body(cmd: Cmd, rule: &FirewallRule) -> Cmd {
    let cmd = cmd.lit("proto").lit(rule.protocol.as_str());
    let cmd = match rule.source {
        Some(source) => cmd.lit("from").arg(source.shell_arg()),
        None => cmd,
    };
    cmd.lit("to").lit("any").lit("port").arg(rule.port.shell_arg())
}

/// Parses `ufw status verbose`.
pub fn parse_status(output: &ProbeOutput) -> Result<UfwStatus, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Err(UnexpectedOutput("ufw status failed".to_owned()));
    }
    let mut lines = output.stdout.lines().map(str::trim_end).filter(|line| !line.is_empty());
    let active = match lines.next() {
        Some("Status: active") => true,
        Some("Status: inactive") => false,
        other => {
            return Err(UnexpectedOutput(format!(
                "expected \"Status: active\" or \"Status: inactive\", got {other:?}"
            )));
        }
    };
    let mut status = UfwStatus {
        active,
        default_incoming: None,
        default_outgoing: None,
    };
    let Some(defaults) = lines.find_map(|line| line.strip_prefix("Default: ")) else {
        return Ok(status);
    };
    // "deny (incoming), allow (outgoing), disabled (routed)"
    for part in defaults.split(", ") {
        let Some((policy, direction)) = part.split_once(' ') else {
            return Err(UnexpectedOutput(format!("cannot read the default policy {part:?}")));
        };
        let slot = match direction {
            "(incoming)" => &mut status.default_incoming,
            "(outgoing)" => &mut status.default_outgoing,
            _ => continue,
        };
        *slot = Some(
            policy
                .parse()
                .map_err(|_| UnexpectedOutput(format!("unknown default policy {policy:?}")))?,
        );
    }
    Ok(status)
}

/// Parses `ufw show added`.
pub fn parse_added_rules(output: &ProbeOutput) -> Result<Vec<AddedRule>, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Err(UnexpectedOutput("ufw show added failed".to_owned()));
    }
    let mut lines = output.stdout.lines();
    match lines.next() {
        Some(header) if header.starts_with("Added user rules") => {}
        other => {
            return Err(UnexpectedOutput(format!(
                "expected \"Added user rules ...\", got {other:?}"
            )));
        }
    }
    let mut rules = Vec::new();
    for line in lines.map(str::trim_end) {
        if line.is_empty() || line == "(None)" {
            continue;
        }
        let Some(command) = line.strip_prefix("ufw ") else {
            return Err(UnexpectedOutput(format!("expected a ufw rule, got {line:?}")));
        };
        rules.push(match parse_rule_command(command) {
            Some(rule) => AddedRule::Parsed(rule),
            None => AddedRule::Other(command.to_owned()),
        });
    }
    Ok(rules)
}

/// Reads one rule as ufw prints it (without the leading `ufw `), or `None` for forms
/// BrokeForge does not manage.
fn parse_rule_command(command: &str) -> Option<UfwRule> {
    // ufw prints the comment last, between single quotes it never allows inside.
    let (body, comment) = match command.split_once(" comment '") {
        Some((body, quoted)) => (body, Some(quoted.strip_suffix('\'')?.to_owned())),
        None => (command, None),
    };
    let mut words = body.split(' ');
    let action: UfwRuleAction = words.next()?.parse().ok()?;
    let rest: Vec<&str> = words.collect();
    let mut rule = UfwRule {
        action,
        port: None,
        protocol: None,
        source: None,
        comment,
    };
    match rest.as_slice() {
        // Short form: `allow 80/tcp`, `allow 3000:3005/tcp`, `allow 53`.
        [port_and_protocol] if !port_and_protocol.contains(['=', ',']) => {
            let (port, protocol) = match port_and_protocol.split_once('/') {
                Some((port, protocol)) => (port, Some(protocol.parse().ok()?)),
                None => (*port_and_protocol, None),
            };
            rule.port = Some(port.parse().ok()?);
            rule.protocol = protocol;
            Some(rule)
        }
        // Full form: `allow from SOURCE to any port PORTS proto P`.
        clauses => {
            let mut clauses = clauses.iter();
            // `port` after `from ADDRESS` is a source port, which BrokeForge never sets.
            let mut after_from = false;
            while let Some(word) = clauses.next() {
                match *word {
                    "from" => {
                        let source = clauses.next()?;
                        if *source != "any" {
                            rule.source = Some(source.parse().ok()?);
                        }
                        after_from = true;
                    }
                    "to" => {
                        if clauses.next()? != &"any" {
                            return None;
                        }
                        after_from = false;
                    }
                    "port" if !after_from => rule.port = Some(clauses.next()?.parse().ok()?),
                    "proto" => rule.protocol = Some(clauses.next()?.parse().ok()?),
                    _ => return None,
                }
            }
            Some(rule)
        }
    }
}

//! Firewall: ufw with BrokeForge's base rules, and one user rule per operation.
//!
//! Installing allows the server's real SSH port (from the input, never a hard-coded
//! 22), HTTP and HTTPS, then denies other incoming traffic, allows outgoing traffic
//! and turns the firewall on, in that order so that SSH is never cut. Adding and
//! removing a rule refuse, with a typed error, anything that would close the SSH port.
//! Facts: the package state, `ufw status verbose` and `ufw show added`.

pub mod rule;
pub mod ufw;

use std::convert::Infallible;

use brokeforge_core::{Plan, Port, Record};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::apt;
use crate::facts::{DpkgState, FactError, FactProbe, ProbeOutputs, dpkg_status_cmd, parse_dpkg_status};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::time_sync::DISTRO_VERSION;

use self::rule::{FirewallRule, Protocol, RuleAction};
use self::ufw::{AddedRule, UfwPolicy, UfwRule, UfwStatus};

/// The Debian package.
pub const UFW_PACKAGE: &str = "ufw";

/// Probe keys.
const PACKAGE_PROBE: &str = "ufw_package";
const STATUS_PROBE: &str = "ufw_status";
const ADDED_RULES_PROBE: &str = "ufw_added_rules";

/// ufw and its base rules, a server package.
pub struct Firewall;

impl Package for Firewall {
    const NAME: PackageName = PackageName::Ufw;
    const SCOPE: Scope = Scope::Server;
}

/// One user rule of the firewall, a server package.
pub struct FirewallRules;

impl Package for FirewallRules {
    const NAME: PackageName = PackageName::FirewallRule;
    const SCOPE: Scope = Scope::Server;
}

/// What every firewall operation reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallFacts {
    /// The state of the ufw package.
    pub package: DpkgState,
    /// What `ufw status verbose` says; `None` while ufw is not installed.
    pub status: Option<UfwStatus>,
    /// The rules ufw holds, active or not; empty while ufw is not installed.
    pub added_rules: Vec<AddedRule>,
}

impl FirewallFacts {
    /// The rules BrokeForge understands.
    pub fn parsed_rules(&self) -> impl Iterator<Item = &UfwRule> {
        self.added_rules.iter().filter_map(|rule| match rule {
            AddedRule::Parsed(rule) => Some(rule),
            AddedRule::Other(_) => None,
        })
    }

    /// Whether some rule lets every source reach `port` over TCP.
    pub fn allows_tcp_from_anywhere(&self, port: Port) -> bool {
        self.parsed_rules().any(|rule| rule.allows_tcp_from_anywhere(port))
    }
}

fn firewall_probes() -> Vec<FactProbe> {
    vec![
        FactProbe::new::<Firewall>(PACKAGE_PROBE, dpkg_status_cmd(UFW_PACKAGE)),
        FactProbe::new::<Firewall>(STATUS_PROBE, ufw::status_cmd()),
        FactProbe::new::<Firewall>(ADDED_RULES_PROBE, ufw::show_added_cmd()),
    ]
}

fn parse_firewall_facts(outputs: &ProbeOutputs) -> Result<FirewallFacts, FactError> {
    let package = outputs.read(PACKAGE_PROBE, parse_dpkg_status)?;
    // Without the package, the ufw commands fail (command not found): nothing to read.
    if package != DpkgState::Installed {
        return Ok(FirewallFacts {
            package,
            status: None,
            added_rules: Vec::new(),
        });
    }
    Ok(FirewallFacts {
        package,
        status: Some(outputs.read(STATUS_PROBE, ufw::parse_status)?),
        added_rules: outputs.read(ADDED_RULES_PROBE, ufw::parse_added_rules)?,
    })
}

/// What installing the firewall needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallInstallInput {
    /// The port the server's SSH daemon listens on, which must stay open.
    pub ssh_port: Port,
}

impl FirewallInstallInput {
    /// The ports BrokeForge opens, each with the comment ufw shows next to it.
    pub fn base_rules(&self) -> Vec<(Port, &'static str)> {
        let mut rules = vec![(self.ssh_port, "SSH")];
        for (port, comment) in [(80, "HTTP"), (443, "HTTPS")] {
            let port = Port::new(port).expect("80 and 443 are ports");
            if port != self.ssh_port {
                rules.push((port, comment));
            }
        }
        rules
    }
}

milestones! {
    /// Milestones of installing the firewall.
    pub enum FirewallInstallMilestone {
        InstallUfw => ("install_ufw", "Installing ufw"),
        AllowSshAndWeb => ("allow_ssh_and_web", "Allowing SSH, HTTP and HTTPS"),
        SetDefaultPolicies => ("set_default_policies", "Denying other incoming traffic"),
        EnableFirewall => ("enable_firewall", "Enabling the firewall"),
        Complete => ("complete", "Complete"),
    }
}

/// Installs ufw, opens SSH, HTTP and HTTPS, and turns the firewall on.
pub struct FirewallInstall;

impl Operation for FirewallInstall {
    type Package = Firewall;
    const ACTION: Action = Action::Install;
    type Milestone = FirewallInstallMilestone;
    type Input = FirewallInstallInput;
    type Facts = FirewallFacts;
    type Error = Infallible;

    fn fact_probes(_input: &FirewallInstallInput) -> Vec<FactProbe> {
        firewall_probes()
    }

    fn parse_facts(_input: &FirewallInstallInput, outputs: &ProbeOutputs) -> Result<FirewallFacts, FactError> {
        parse_firewall_facts(outputs)
    }

    fn plan(input: &FirewallInstallInput, facts: &FirewallFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(FirewallInstallMilestone::InstallUfw);
        for cmd in apt::commands_to_install(UFW_PACKAGE, &facts.package) {
            steps.run_with_timeout(cmd, apt::APT_TIMEOUT);
        }

        // Allow rules come first: with the firewall already on, a default deny before
        // them would cut new SSH connections.
        let steps = plan.milestone(FirewallInstallMilestone::AllowSshAndWeb);
        for (port, comment) in input.base_rules() {
            if !facts.allows_tcp_from_anywhere(port) {
                steps.run(ufw::allow_tcp_port_cmd(port, comment));
            }
        }

        // ufw shows its default policies only while it is on; while it is off, both
        // are set, which is harmless.
        let status = facts.status.as_ref();
        let steps = plan.milestone(FirewallInstallMilestone::SetDefaultPolicies);
        if status.and_then(|status| status.default_incoming) != Some(UfwPolicy::Deny) {
            steps.run(ufw::deny_incoming_by_default_cmd());
        }
        if status.and_then(|status| status.default_outgoing) != Some(UfwPolicy::Allow) {
            steps.run(ufw::allow_outgoing_by_default_cmd());
        }

        let steps = plan.milestone(FirewallInstallMilestone::EnableFirewall);
        if !status.is_some_and(|status| status.active) {
            steps.run(ufw::enable_cmd());
        }

        let rules: Vec<serde_json::Value> = input
            .base_rules()
            .into_iter()
            .map(|(port, comment)| serde_json::json!({ "port": port, "protocol": "tcp", "comment": comment }))
            .collect();
        plan.milestone(FirewallInstallMilestone::Complete).persist(
            Record::new(Firewall::TYPE.as_str(), Firewall::NAME.as_str(), DISTRO_VERSION).with_configuration(
                serde_json::json!({
                    "ssh_port": input.ssh_port,
                    "default_incoming": UfwPolicy::Deny,
                    "default_outgoing": UfwPolicy::Allow,
                    "rules": rules,
                }),
            ),
        );
        Ok(plan.finish())
    }
}

/// What adding or removing a firewall rule needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRuleInput {
    /// The rule.
    pub rule: FirewallRule,
    /// The port the server's SSH daemon listens on, which no rule may close.
    pub ssh_port: Port,
}

/// Why a firewall rule operation refuses to plan. The messages are meant for users.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FirewallRuleRefusal {
    #[error("the firewall is not installed on this server; install it before adding rules")]
    FirewallNotInstalled,
    #[error("this rule would block SSH on port {ssh_port}, which BrokeForge needs to reach the server")]
    WouldBlockSsh { ssh_port: Port },
    #[error(
        "removing this rule would close SSH on port {ssh_port}: no other rule allows it from every address, \
         and BrokeForge needs it to reach the server"
    )]
    WouldCloseSsh { ssh_port: Port },
}

milestones! {
    /// Milestones of adding a firewall rule.
    pub enum FirewallRuleInstallMilestone {
        AddRule => ("add_rule", "Adding the firewall rule"),
        Complete => ("complete", "Complete"),
    }
}

/// Adds one firewall rule. The application marks the rule active once the plan
/// succeeded.
pub struct FirewallRuleInstall;

impl Operation for FirewallRuleInstall {
    type Package = FirewallRules;
    const ACTION: Action = Action::Install;
    type Milestone = FirewallRuleInstallMilestone;
    type Input = FirewallRuleInput;
    type Facts = FirewallFacts;
    type Error = FirewallRuleRefusal;

    fn fact_probes(_input: &FirewallRuleInput) -> Vec<FactProbe> {
        firewall_probes()
    }

    fn parse_facts(_input: &FirewallRuleInput, outputs: &ProbeOutputs) -> Result<FirewallFacts, FactError> {
        parse_firewall_facts(outputs)
    }

    fn plan(input: &FirewallRuleInput, facts: &FirewallFacts) -> Result<Plan, FirewallRuleRefusal> {
        let rule = &input.rule;
        if rule.action == RuleAction::Deny && rule.matches_port(input.ssh_port, Protocol::Tcp) {
            return Err(FirewallRuleRefusal::WouldBlockSsh {
                ssh_port: input.ssh_port,
            });
        }
        if facts.package != DpkgState::Installed {
            return Err(FirewallRuleRefusal::FirewallNotInstalled);
        }
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(FirewallRuleInstallMilestone::AddRule);
        // The comment counts: adding the same rule with a new comment updates it.
        let wanted = UfwRule::from_rule(rule);
        if !facts.parsed_rules().any(|existing| *existing == wanted) {
            steps.run(ufw::add_rule_cmd(rule));
        }
        plan.milestone(FirewallRuleInstallMilestone::Complete);
        Ok(plan.finish())
    }
}

milestones! {
    /// Milestones of removing a firewall rule.
    pub enum FirewallRuleRemoveMilestone {
        DeleteRule => ("delete_rule", "Deleting the firewall rule"),
        Complete => ("complete", "Complete"),
    }
}

/// Removes one firewall rule. The application deletes the rule's row once the plan
/// succeeded.
pub struct FirewallRuleRemove;

impl Operation for FirewallRuleRemove {
    type Package = FirewallRules;
    const ACTION: Action = Action::Remove;
    type Milestone = FirewallRuleRemoveMilestone;
    type Input = FirewallRuleInput;
    type Facts = FirewallFacts;
    type Error = FirewallRuleRefusal;

    fn fact_probes(_input: &FirewallRuleInput) -> Vec<FactProbe> {
        firewall_probes()
    }

    fn parse_facts(_input: &FirewallRuleInput, outputs: &ProbeOutputs) -> Result<FirewallFacts, FactError> {
        parse_firewall_facts(outputs)
    }

    fn plan(input: &FirewallRuleInput, facts: &FirewallFacts) -> Result<Plan, FirewallRuleRefusal> {
        let rule = &input.rule;
        let target = UfwRule::from_rule(rule);
        let rules: Vec<&UfwRule> = facts.parsed_rules().collect();
        let position = rules.iter().position(|existing| existing.same_traffic(&target));
        if let Some(position) = position
            && rule.action == RuleAction::Allow
            && rule.matches_port(input.ssh_port, Protocol::Tcp)
        {
            let others = rules.iter().enumerate().filter(|(index, _)| *index != position);
            if !others
                .map(|(_, other)| other)
                .any(|other| other.allows_tcp_from_anywhere(input.ssh_port))
            {
                return Err(FirewallRuleRefusal::WouldCloseSsh {
                    ssh_port: input.ssh_port,
                });
            }
        }
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(FirewallRuleRemoveMilestone::DeleteRule);
        if position.is_some() {
            steps.run(ufw::delete_rule_cmd(rule));
        }
        plan.milestone(FirewallRuleRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

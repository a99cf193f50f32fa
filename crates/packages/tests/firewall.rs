//! Firewall: ufw output parsers checked against output captured from Debian 12's ufw
//! 0.36.2 (see `tests/fixtures/README.md`), and plan snapshots for installing ufw and
//! for adding and removing rules, including hostile values and refused rules.

mod common;

use brokeforge_core::Port;
use brokeforge_packages::firewall::rule::FirewallRule;
use brokeforge_packages::firewall::ufw::{self, AddedRule, UfwPolicy, UfwStatus};
use brokeforge_packages::firewall::{
    FirewallFacts, FirewallInstall, FirewallInstallInput, FirewallRuleInput, FirewallRuleInstall, FirewallRuleRefusal,
    FirewallRuleRemove,
};
use brokeforge_packages::{DpkgState, Operation, ProbeOutput};
use common::{check_plan, fixture, outputs_for, probe_text};

const UFW_NOT_FOUND: &str = "sh: 1: ufw: not found\n";

fn port(number: u16) -> Port {
    Port::new(number).unwrap()
}

fn install_input(ssh_port: u16) -> FirewallInstallInput {
    FirewallInstallInput {
        ssh_port: port(ssh_port),
    }
}

/// Facts parsed from captured `ufw status verbose` and `ufw show added` outputs.
fn installed(status: &str, added: &str) -> FirewallFacts {
    let input = install_input(2222);
    let outputs = outputs_for::<FirewallInstall>(
        &input,
        vec![
            ProbeOutput::success("install ok installed"),
            ProbeOutput::success(status),
            ProbeOutput::success(added),
        ],
    );
    FirewallInstall::parse_facts(&input, &outputs).unwrap()
}

fn not_installed() -> FirewallFacts {
    let input = install_input(2222);
    let outputs = outputs_for::<FirewallInstall>(
        &input,
        vec![
            ProbeOutput::success("unknown ok not-installed"),
            ProbeOutput::new(127, "", UFW_NOT_FOUND),
            ProbeOutput::new(127, "", UFW_NOT_FOUND),
        ],
    );
    FirewallInstall::parse_facts(&input, &outputs).unwrap()
}

fn brokeforge_server() -> FirewallFacts {
    installed(
        &fixture("ufw-status-verbose-brokeforge-2222.txt"),
        &fixture("ufw-show-added-brokeforge-2222.txt"),
    )
}

fn customized_server() -> FirewallFacts {
    installed(
        &fixture("ufw-status-verbose-customized.txt"),
        &fixture("ufw-show-added-customized.txt"),
    )
}

fn rule(json: &str) -> FirewallRule {
    serde_json::from_str(json).unwrap()
}

fn rule_input(json: &str) -> FirewallRuleInput {
    FirewallRuleInput {
        rule: rule(json),
        ssh_port: port(2222),
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<FirewallInstall>(&install_input(22)), @r"
    ufw_package: root$ dpkg-query -W -f '${Status}' ufw
    ufw_status: root$ LC_ALL=C ufw status verbose
    ufw_added_rules: root$ LC_ALL=C ufw show added
    ");
}

#[test]
fn status_of_each_captured_server() {
    let cases = [
        ("ufw-status-verbose-inactive.txt", false, None, None),
        (
            "ufw-status-verbose-brokeforge-2222.txt",
            true,
            Some(UfwPolicy::Deny),
            Some(UfwPolicy::Allow),
        ),
        (
            "ufw-status-verbose-customized.txt",
            true,
            Some(UfwPolicy::Deny),
            Some(UfwPolicy::Allow),
        ),
        (
            "ufw-status-verbose-allow-incoming.txt",
            true,
            Some(UfwPolicy::Allow),
            Some(UfwPolicy::Reject),
        ),
    ];
    for (name, active, default_incoming, default_outgoing) in cases {
        let status = ufw::parse_status(&ProbeOutput::success(fixture(name))).unwrap();
        assert_eq!(
            status,
            UfwStatus {
                active,
                default_incoming,
                default_outgoing
            },
            "{name}"
        );
    }
}

#[test]
fn status_errors() {
    let not_root = ProbeOutput::new(1, "", "ERROR: You need to be root to run this script\n");
    assert!(ufw::parse_status(&not_root).is_err());
    let translated = ProbeOutput::success("Status: aktiv\n");
    assert_eq!(
        ufw::parse_status(&translated).unwrap_err().to_string(),
        "expected \"Status: active\" or \"Status: inactive\", got Some(\"Status: aktiv\")"
    );
    let odd_default = ProbeOutput::success("Status: active\nDefault: sideways (incoming)\n");
    assert!(ufw::parse_status(&odd_default).is_err());
}

#[test]
fn added_rules_of_a_fresh_and_a_brokeforge_server() {
    let fresh = ufw::parse_added_rules(&ProbeOutput::success(fixture("ufw-show-added-fresh.txt"))).unwrap();
    assert_eq!(fresh, vec![]);
    let facts = brokeforge_server();
    for ssh_or_web in [2222, 80, 443] {
        assert!(facts.allows_tcp_from_anywhere(port(ssh_or_web)), "{ssh_or_web}");
    }
    assert!(!facts.allows_tcp_from_anywhere(port(22)));
    assert_eq!(facts.added_rules.len(), 3);
}

#[test]
fn added_rules_of_a_customized_server() {
    let rules = customized_server().added_rules;
    let lines: Vec<String> = rules
        .iter()
        .map(|rule| match rule {
            AddedRule::Parsed(rule) => format!("parsed {rule:?}"),
            AddedRule::Other(text) => format!("other  {text}"),
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn added_rules_errors() {
    let not_root = ProbeOutput::new(1, "", "ERROR: You need to be root to run this script\n");
    assert!(ufw::parse_added_rules(&not_root).is_err());
    assert!(ufw::parse_added_rules(&ProbeOutput::success("Status: active\n")).is_err());
    let stray = ProbeOutput::success("Added user rules (see 'ufw status' for running firewall):\niptables -A x\n");
    assert!(ufw::parse_added_rules(&stray).is_err());
}

#[test]
fn facts_of_a_server_without_ufw_ignore_the_failed_ufw_commands() {
    let facts = not_installed();
    assert_eq!(facts.package, DpkgState::NotInstalled);
    assert_eq!(facts.status, None);
    assert!(facts.added_rules.is_empty());
}

#[test]
fn facts_name_the_failing_probe() {
    let input = install_input(22);
    let outputs = outputs_for::<FirewallInstall>(
        &input,
        vec![
            ProbeOutput::success("install ok installed"),
            ProbeOutput::new(
                1,
                "",
                "WARN: /tmp is world writable!\nERROR: Couldn't determine iptables version\n",
            ),
            ProbeOutput::success(fixture("ufw-show-added-fresh.txt")),
        ],
    );
    insta::assert_snapshot!(
        FirewallInstall::parse_facts(&input, &outputs).unwrap_err(),
        @r#"cannot read "ufw_status" from the server: ufw status failed (exit code 1; stderr: ERROR: Couldn't determine iptables version)"#
    );
}

#[test]
fn install_when_absent_opens_the_real_ssh_port() {
    insta::assert_snapshot!(check_plan::<FirewallInstall>(&install_input(2222), &not_installed()));
}

#[test]
fn install_when_present_changes_nothing() {
    insta::assert_snapshot!(check_plan::<FirewallInstall>(
        &install_input(2222),
        &brokeforge_server()
    ));
}

#[test]
fn install_when_installed_but_inactive() {
    let facts = installed(
        &fixture("ufw-status-verbose-inactive.txt"),
        &fixture("ufw-show-added-fresh.txt"),
    );
    insta::assert_snapshot!(check_plan::<FirewallInstall>(&install_input(22), &facts));
}

#[test]
fn install_on_a_server_that_allowed_everything_in() {
    let facts = installed(
        &fixture("ufw-status-verbose-allow-incoming.txt"),
        &fixture("ufw-show-added-port-22-only.txt"),
    );
    insta::assert_snapshot!(check_plan::<FirewallInstall>(&install_input(22), &facts));
}

#[test]
fn install_when_ssh_listens_on_443() {
    let plan = check_plan::<FirewallInstall>(&install_input(443), &not_installed());
    assert_eq!(plan.matches("ufw allow").count(), 2, "{plan}");
    assert!(plan.contains("port 443 comment SSH"), "{plan}");
}

#[test]
fn add_rule_quotes_hostile_comments_as_data() {
    let input = rule_input(
        r#"{"action":"allow","port":"3000:3005","protocol":"tcp","source":"10.1.2.3/16",
            "comment":"it is \"$(reboot)\" `id`; rm -rf / && x"}"#,
    );
    insta::assert_snapshot!(check_plan::<FirewallRuleInstall>(&input, &brokeforge_server()));
}

#[test]
fn add_deny_rule_goes_before_the_allow_rules() {
    let input = rule_input(r#"{"action":"deny","port":3306,"protocol":"tcp","source":"2001:db8::1","comment":"old"}"#);
    insta::assert_snapshot!(check_plan::<FirewallRuleInstall>(&input, &brokeforge_server()));
}

#[test]
fn add_rule_that_exists_changes_nothing() {
    let input = rule_input(
        r#"{"action":"allow","port":3306,"protocol":"tcp","source":"10.0.0.0/8",
            "comment":"MySQL from $(office) `x`; \"lan\""}"#,
    );
    insta::assert_snapshot!(check_plan::<FirewallRuleInstall>(&input, &customized_server()));
}

#[test]
fn add_rule_that_exists_with_another_comment_updates_it() {
    let input =
        rule_input(r#"{"action":"allow","port":3306,"protocol":"tcp","source":"10.0.0.0/8","comment":"MySQL"}"#);
    let plan = check_plan::<FirewallRuleInstall>(&input, &customized_server());
    assert!(
        plan.contains("root$ LC_ALL=C ufw allow proto tcp from 10.0.0.0/8 to any port 3306 comment MySQL"),
        "{plan}"
    );
}

#[test]
fn add_rule_refusals() {
    let refusal = |json: &str, facts: &FirewallFacts| FirewallRuleInstall::plan(&rule_input(json), facts).unwrap_err();
    let blocks_ssh = FirewallRuleRefusal::WouldBlockSsh { ssh_port: port(2222) };
    assert_eq!(
        refusal(
            r#"{"action":"deny","port":2222,"protocol":"tcp"}"#,
            &brokeforge_server()
        ),
        blocks_ssh
    );
    assert_eq!(
        refusal(
            r#"{"action":"deny","port":"2000:3000","protocol":"tcp","source":"203.0.113.0/24"}"#,
            &brokeforge_server()
        ),
        blocks_ssh
    );
    assert_eq!(
        refusal(r#"{"action":"allow","port":80,"protocol":"tcp"}"#, &not_installed()),
        FirewallRuleRefusal::FirewallNotInstalled
    );
    assert_eq!(
        blocks_ssh.to_string(),
        "this rule would block SSH on port 2222, which BrokeForge needs to reach the server"
    );
    // UDP on the SSH port's number does not touch SSH.
    let udp = rule_input(r#"{"action":"deny","port":2222,"protocol":"udp"}"#);
    assert!(FirewallRuleInstall::plan(&udp, &brokeforge_server()).is_ok());
}

#[test]
fn remove_rule_when_present() {
    let input = rule_input(r#"{"action":"allow","port":3306,"protocol":"tcp","source":"10.0.0.0/8"}"#);
    insta::assert_snapshot!(check_plan::<FirewallRuleRemove>(&input, &customized_server()));
}

#[test]
fn remove_deny_rule_when_present() {
    let input = rule_input(r#"{"action":"deny","port":"5000:5010","protocol":"udp","source":"203.0.113.7"}"#);
    insta::assert_snapshot!(check_plan::<FirewallRuleRemove>(&input, &customized_server()));
}

#[test]
fn remove_rule_when_absent_changes_nothing() {
    let input = rule_input(r#"{"action":"allow","port":8443,"protocol":"tcp"}"#);
    insta::assert_snapshot!(check_plan::<FirewallRuleRemove>(&input, &brokeforge_server()));
    let plan = check_plan::<FirewallRuleRemove>(&input, &not_installed());
    assert!(plan.ends_with("nothing to change: the server is already in the state this operation leaves it in\n"));
}

#[test]
fn remove_rule_refuses_to_close_ssh() {
    let ssh_rule = rule_input(r#"{"action":"allow","port":2222,"protocol":"tcp","comment":"SSH"}"#);
    let closes_ssh = FirewallRuleRefusal::WouldCloseSsh { ssh_port: port(2222) };
    assert_eq!(
        FirewallRuleRemove::plan(&ssh_rule, &brokeforge_server()).unwrap_err(),
        closes_ssh
    );
    // Rules from one source do not keep SSH open for everyone.
    assert_eq!(
        FirewallRuleRemove::plan(&ssh_rule, &customized_server()).unwrap_err(),
        closes_ssh
    );
    insta::assert_snapshot!(closes_ssh, @"removing this rule would close SSH on port 2222: no other rule allows it from every address, and BrokeForge needs it to reach the server");
}

#[test]
fn remove_rule_covering_ssh_when_another_rule_keeps_it_open() {
    let added = format!(
        "{}ufw allow 2000:2999/tcp\n",
        fixture("ufw-show-added-brokeforge-2222.txt")
    );
    let facts = installed(&fixture("ufw-status-verbose-brokeforge-2222.txt"), &added);
    let input = rule_input(r#"{"action":"allow","port":"2000:2999","protocol":"tcp"}"#);
    let plan = check_plan::<FirewallRuleRemove>(&input, &facts);
    assert!(
        plan.contains("root$ LC_ALL=C ufw delete allow proto tcp to any port 2000:2999\n"),
        "{plan}"
    );
}

//! Dry runs: a plan previewed without running, with its header, its masked text, and
//! the "nothing to change" flag the API returns.

use brokeforge_core::Port;
use brokeforge_packages::firewall::{FirewallFacts, FirewallInstall, FirewallInstallInput, FirewallRuleInstall};
use brokeforge_packages::{Action, DpkgState, PackageName, PackageType, dry_run};

fn not_installed() -> FirewallFacts {
    FirewallFacts {
        package: DpkgState::NotInstalled,
        status: None,
        added_rules: Vec::new(),
    }
}

#[test]
fn a_dry_run_describes_the_operation_and_its_plan() {
    let input = FirewallInstallInput {
        ssh_port: Port::new(2222).unwrap(),
    };
    let preview = dry_run::<FirewallInstall>(&input, &not_installed()).unwrap();
    assert_eq!(preview.package_name, PackageName::Ufw);
    assert_eq!(preview.package_type, PackageType::Firewall);
    assert_eq!(preview.action, Action::Install);
    assert_eq!(preview.ssh_user, "root");
    assert_eq!(preview.total_steps, 5);
    assert!(!preview.changes_nothing);
    assert!(
        preview
            .to_string()
            .starts_with("install firewall/ufw as root, 5 steps\n[1/5] Installing ufw\n")
    );
    let json = serde_json::to_value(&preview).unwrap();
    assert_eq!(json["package_name"], "ufw");
    assert_eq!(json["action"], "install");
    assert_eq!(json["changes_nothing"], false);
}

#[test]
fn a_refused_operation_has_no_dry_run() {
    let input =
        serde_json::from_str(r#"{"rule":{"action":"allow","port":80,"protocol":"tcp"},"ssh_port":22}"#).unwrap();
    let refusal = dry_run::<FirewallRuleInstall>(&input, &not_installed()).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the firewall is not installed on this server; install it before adding rules"
    );
}

/// A made-up operation whose plan carries a secret, to show that a dry run masks it.
mod secret_operation {
    use std::convert::Infallible;

    use brokeforge_core::{Cmd, Milestone, Plan, Secret};
    use brokeforge_packages::{Action, FactError, FactProbe, Operation, Package, PackageName, ProbeOutputs, Scope};

    pub struct MySql;

    impl Package for MySql {
        const NAME: PackageName = PackageName::MySql;
        const SCOPE: Scope = Scope::Server;
    }

    #[derive(Clone, Copy, PartialEq)]
    pub enum SetRootPassword {
        SetPassword,
    }

    impl Milestone for SetRootPassword {
        const ALL: &'static [Self] = &[SetRootPassword::SetPassword];

        fn key(self) -> &'static str {
            "set_password"
        }

        fn label(self) -> &'static str {
            "Setting the root password"
        }
    }

    pub struct MySqlRootPasswordUpdate;

    impl Operation for MySqlRootPasswordUpdate {
        type Package = MySql;
        const ACTION: Action = Action::Update;
        type Milestone = SetRootPassword;
        type Input = Secret<String>;
        type Facts = ();
        type Error = Infallible;

        fn fact_probes(_input: &Secret<String>) -> Vec<FactProbe> {
            Vec::new()
        }

        fn parse_facts(_input: &Secret<String>, _outputs: &ProbeOutputs) -> Result<(), FactError> {
            Ok(())
        }

        fn plan(password: &Secret<String>, _facts: &()) -> Result<Plan, Infallible> {
            let mut plan = Self::plan_writer();
            plan.milestone(SetRootPassword::SetPassword).run(
                Cmd::new("mysqladmin")
                    .secret_env("MYSQL_PWD", password)
                    .expect("no NUL")
                    .lit("password")
                    .secret_arg(password)
                    .expect("no NUL"),
            );
            Ok(plan.finish())
        }
    }
}

#[test]
fn a_dry_run_masks_secrets() {
    let password = brokeforge_core::Secret::from("hunter2 'and' $(more)");
    let preview = dry_run::<secret_operation::MySqlRootPasswordUpdate>(&password, &()).unwrap();
    let text = preview.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        text,
        "update database/mysql as root, 1 step\n\
         [1/1] Setting the root password\n  \
         root$ MYSQL_PWD=*** mysqladmin password ***\n"
    );
}

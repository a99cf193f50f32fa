//! Framework invariants over every registered operation: milestone tables are
//! non-empty, their keys and labels unique and well-formed, every operation ends with
//! `complete`, and the registry matches the operations' own declarations.

use std::collections::HashSet;

use brokeforge_packages::{Action, PackageName, Scope, operations, packages};

#[test]
fn every_operation_has_well_formed_milestones() {
    for operation in operations() {
        let name = format!("{} {}", operation.action, operation.package_name);
        assert!(!operation.milestones.is_empty(), "{name} has no milestones");
        assert_eq!(operation.total_steps(), operation.milestones.len());
        let keys: HashSet<&str> = operation.milestones.iter().map(|milestone| milestone.key).collect();
        let labels: HashSet<&str> = operation.milestones.iter().map(|milestone| milestone.label).collect();
        assert_eq!(keys.len(), operation.milestones.len(), "{name}: keys are unique");
        assert_eq!(labels.len(), operation.milestones.len(), "{name}: labels are unique");
        for milestone in &operation.milestones {
            assert!(
                !milestone.key.is_empty()
                    && milestone.key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && !milestone.key.starts_with('_')
                    && !milestone.key.ends_with('_'),
                "{name}: key {:?} is not snake_case",
                milestone.key
            );
            let first = milestone.label.chars().next().unwrap();
            assert!(
                first.is_uppercase() && !milestone.label.ends_with('.') && milestone.label.trim() == milestone.label,
                "{name}: label {:?} is not a capitalized phrase",
                milestone.label
            );
        }
        assert_eq!(
            operation.milestones.last().unwrap().key,
            "complete",
            "{name}: the last milestone marks completion"
        );
    }
}

#[test]
fn operations_are_unique_and_their_scope_decides_the_user() {
    let mut seen = HashSet::new();
    for operation in operations() {
        assert!(
            seen.insert((operation.package_name, operation.action)),
            "{} {} is registered twice",
            operation.action,
            operation.package_name
        );
        assert_eq!(operation.package_type, operation.package_name.package_type());
        assert_eq!(operation.ssh_user, operation.scope.remote_user().as_str());
        let expected_user = match operation.scope {
            Scope::Server => "root",
            Scope::Site => "brokeforge",
        };
        assert_eq!(operation.ssh_user, expected_user);
    }
}

#[test]
fn packages_group_their_operations() {
    let packages = packages();
    let names: Vec<PackageName> = packages.iter().map(|package| package.name).collect();
    assert_eq!(
        names,
        [
            PackageName::Timesyncd,
            PackageName::Ufw,
            PackageName::FirewallRule,
            PackageName::Php,
            PackageName::PhpCliDefault,
            PackageName::PhpExtension,
            PackageName::Nginx,
            PackageName::Cron,
            PackageName::Supervisor,
            PackageName::NodeJs,
            PackageName::Composer,
            PackageName::BrokeForgeAccess,
            PackageName::Site,
            PackageName::DefaultSite,
            PackageName::WordPress,
            PackageName::GitRepository,
            PackageName::Deployment,
            PackageName::EnvFile,
            PackageName::SiteFiles,
            PackageName::SiteCommand
        ]
    );
    for package in &packages {
        let actions: Vec<Action> = operations()
            .into_iter()
            .filter(|operation| operation.package_name == package.name)
            .map(|operation| operation.action)
            .collect();
        assert_eq!(
            package.install.is_some(),
            actions.contains(&Action::Install),
            "{}",
            package.name
        );
        assert_eq!(
            package.remove.is_some(),
            actions.contains(&Action::Remove),
            "{}",
            package.name
        );
        assert_eq!(
            package.update.is_some(),
            actions.contains(&Action::Update),
            "{}",
            package.name
        );
    }
}

#[test]
fn the_registry_as_the_ui_receives_it() {
    let json = serde_json::to_string_pretty(&packages()).unwrap();
    insta::assert_snapshot!(json);
}

//! Site commands: the plan, and proof with a real `sh` and `bash` that the command
//! text arrives byte for byte as bash code, run in the (hostile-named) site directory.

mod common;

use std::process::Command;

use brokeforge_core::Step;
use brokeforge_packages::site_command::{CommandTimeout, SiteCommandInput, SiteCommandRun};
use brokeforge_packages::{Operation, ProbeOutputs};
use common::check_plan;

fn input(site_directory: &str, command: &str) -> SiteCommandInput {
    SiteCommandInput {
        site_directory: site_directory.parse().unwrap(),
        command: command.parse().unwrap(),
        timeout: CommandTimeout::from_secs(300).unwrap(),
    }
}

#[test]
fn run_a_command() {
    let input = input("/home/brokeforge/example.com", "php artisan migrate --force");
    assert!(SiteCommandRun::fact_probes(&input).is_empty());
    SiteCommandRun::parse_facts(&input, &ProbeOutputs::new()).unwrap();
    insta::assert_snapshot!(check_plan::<SiteCommandRun>(&input, &()));
}

#[test]
fn hostile_text_and_directory_are_quoted_as_data() {
    let input = input(
        "/home/brokeforge/$(reboot) it's `id`;x",
        "echo 'it''s' \"$(id -u)\" `date`; ls -la && false || true\n--help\nEOF",
    );
    insta::assert_snapshot!(check_plan::<SiteCommandRun>(&input, &()));
}

/// Runs the plan's command under a real `/bin/sh`, as the executor's remote shell
/// would, with a clean environment and a home without profile files.
#[test]
fn the_command_runs_byte_exact_in_the_site_directory() {
    let scratch = std::env::temp_dir().join(format!("brokeforge-site-command-{}", std::process::id()));
    let site = scratch.join("$(touch pwned) it's `id`;x");
    std::fs::create_dir_all(&site).unwrap();
    let command =
        "printf '%s|' \"$PWD\" 'a\"b' \"$((6 * 7))\" '$(not run)' \"`printf %s ok`\"\nprintf 'line2 %s' \"$0\"";
    let input = input(site.to_str().unwrap(), command);
    let plan = SiteCommandRun::plan(&input, &()).unwrap();
    let [_, Step::Run { cmd, timeout, .. }, _] = plan.steps() else {
        panic!("unexpected plan:\n{plan}");
    };
    assert_eq!(timeout.as_secs(), 300);

    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd.render_for_execution())
        .env_clear()
        .env("HOME", &scratch)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        format!("{}|a\"b|42|$(not run)|ok|line2 bash", site.to_str().unwrap())
    );
    assert!(!scratch.join("pwned").exists() && !site.join("pwned").exists());
}

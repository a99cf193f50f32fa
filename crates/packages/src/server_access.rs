//! ServerAccess: BrokeForge's own access to a server, which the bootstrap script set
//! up, and [`ServerAccessRemove`], which takes it away when a user deletes the server
//! from BrokeForge and asks for it. It runs as root, over the connection the control
//! plane opened with root's key, and removes, in this order:
//!
//! 1. the brokeforge user's sudo rules (`/etc/sudoers.d/brokeforge`), first, so that
//!    a removal that stops halfway leaves that account without root's powers;
//! 2. the brokeforge user's processes: `pkill -u` (which fails when there are none,
//!    and is tolerated), a wait of up to ten seconds, then `SIGKILL` for whatever is
//!    left, because `userdel` refuses to remove an account that still runs processes;
//! 3. the brokeforge user with its home directory (`userdel --remove`), which holds
//!    the control plane's brokeforge key, brokeforge's deploy key and every site's
//!    files under `/home/brokeforge`. If the account is already gone but its home
//!    directory is left, the directory is removed;
//! 4. the control plane's keys in root's `authorized_keys`, last: once it is gone no
//!    new connection can be made, and the plan's own connection, already
//!    authenticated, finishes the plan. The file is filtered by key material only
//!    (`TYPE BASE64`, whatever the options or comment of the line; every other key,
//!    comment and blank line stays byte for byte), written to a temporary file in
//!    `/root/.ssh` with mode 0600 and moved over the original, so sshd never reads
//!    a half-written file; a missing file is left missing. The brokeforge key is
//!    removed from root's file too, should someone have copied it there, since
//!    BrokeForge holds its private half.
//!
//! The sshd drop-in ([`SSHD_DROP_IN`](crate::bootstrap::SSHD_DROP_IN)) stays. It
//! turned off password and keyboard-interactive logins and limited root to keys;
//! removing it would silently turn password logins back on for every account, a
//! weaker server than the one the user had while BrokeForge managed it, and nobody
//! would be told. Undoing that hardening is the administrator's choice, and one
//! command (`rm` the file, reload sshd) once they have made it.
//!
//! Facts: whether the brokeforge user exists (`getent passwd`), whether its home
//! directory and the sudoers file exist (`stat`), and root's `authorized_keys`
//! (`cat`), which the same matching as the removal command reads for the control
//! plane's keys. Each step runs only when its fact says there is something to
//! remove, so the plan for a server already cleaned is a no-op. Removing access writes
//! no record; the application deletes the package record once the plan succeeded, as
//! for every remover.

use std::convert::Infallible;

use brokeforge_core::{Cmd, Plan, RemotePath, ShellArg};
use serde::{Deserialize, Serialize};

use crate::bootstrap::{APP_HOME, APP_USER, SUDOERS_FILE};
use crate::facts::{
    FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput, file_contents_cmd, parse_file_contents,
    parse_path_kinds, path_kinds_cmd,
};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;
use crate::ssh_key::OpenSshPublicKey;

/// Root's `authorized_keys`, where the bootstrap script put the control plane's key.
pub const ROOT_AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";

/// Probe keys.
const USER_PROBE: &str = "brokeforge_user";
const PATHS_PROBE: &str = "brokeforge_paths";
const ROOT_KEYS_PROBE: &str = "root_authorized_keys";

/// Stops the brokeforge user's processes, run as `sh -c SCRIPT sh USER`: `SIGTERM`
/// (pkill fails when nothing matches, which is fine), up to ten seconds for them to
/// exit, then `SIGKILL` for the rest and a second for their parents to reap them.
/// Always exits 0; `userdel` reports any process that survived.
const STOP_PROCESSES_SCRIPT: &str = concat!(
    "'",
    r#"pkill -u "$1"; "#,
    r#"for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -u "$1" >/dev/null || exit 0; sleep 1; done; "#,
    r#"pkill -KILL -u "$1"; sleep 1"#,
    "'",
);

/// Rewrites an `authorized_keys` file without the lines of some keys, run as
/// `BF_KEYS=... sh -c SCRIPT sh FILE AWK_PROGRAM`: nothing to do when the file is
/// missing; otherwise the filtered copy goes to a temporary file in the same
/// directory, gets mode 0600 and replaces the file in one `rename`. On any failure
/// the temporary file is removed and the original is untouched.
const REWRITE_AUTHORIZED_KEYS_SCRIPT: &str = concat!(
    "'",
    r#"f=$1; [ -e "$f" ] || exit 0; t=$(mktemp "$f.XXXXXX") || exit 1; "#,
    r#"if awk "$2" "$f" >"$t" && chmod 0600 "$t" && mv -f "$t" "$f"; then exit 0; fi; "#,
    r#"rm -f "$t"; exit 1"#,
    "'",
);

/// The POSIX awk program that drops the lines authorizing any key of `BF_KEYS` (key
/// materials, `TYPE BASE64`, separated by commas) and prints every other line
/// unchanged; the tests run it with mawk, the `awk` of Debian and Ubuntu. It reads a
/// line as sshd does: leading blanks skipped, comments and blank lines kept; the key
/// is either at the start of the line or right after the options field, which ends
/// at the first blank outside double quotes (`\"` does not end a quote); its type
/// and body are separated by blanks, and the body ends at a blank or the end of the
/// line. So neither a longer key nor a comment or an option that merely contains the
/// material matches. [`authorizes`] is the same reading in Rust.
const FILTER_AUTHORIZED_KEYS_AWK: &str = concat!(
    "'",
    r#"BEGIN { n = split(ENVIRON["BF_KEYS"], keys, ","); "#,
    r#"for (i = 1; i <= n; i++) { split(keys[i], part, " "); types[i] = part[1]; bodies[i] = part[2] } } "#,
    r#"function word(s, w, c) { c = substr(s, length(w) + 1, 1); "#,
    r#"return substr(s, 1, length(w)) == w && (c == "" || c == " " || c == "\t" || c == "\r") } "#,
    r#"function holds(s, i, rest) { for (i = 1; i <= n; i++) if (word(s, types[i])) { "#,
    r#"rest = substr(s, length(types[i]) + 1); sub(/^[ \t]+/, "", rest); if (word(rest, bodies[i])) return 1 } "#,
    r#"return 0 } "#,
    r#"function past_options(s, i, c, q) { q = 0; for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); "#,
    r#"if (c == "\\" && substr(s, i + 1, 1) == "\"") i++; else if (c == "\"") q = !q; "#,
    r#"else if (!q && (c == " " || c == "\t")) break } s = substr(s, i); sub(/^[ \t]+/, "", s); return s } "#,
    r#"{ line = $0; sub(/^[ \t]+/, "", line) } "#,
    r##"line == "" || substr(line, 1, 1) == "#" || !(holds(line) || holds(past_options(line)))"##,
    "'",
);

/// BrokeForge's access to a server: the brokeforge user and the control plane's
/// authorized keys, a server package.
pub struct ServerAccess;

impl Package for ServerAccess {
    const NAME: PackageName = PackageName::BrokeForgeAccess;
    const SCOPE: Scope = Scope::Server;
}

/// What removing BrokeForge's access needs: the control plane's public keys for the
/// server, as the bootstrap script installed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAccessRemoveInput {
    /// The control plane's key for root, removed from root's `authorized_keys`.
    pub root_public_key: OpenSshPublicKey,
    /// The control plane's key for brokeforge. It leaves with brokeforge's home
    /// directory, and is removed from root's `authorized_keys` if it is there too.
    pub brokeforge_public_key: OpenSshPublicKey,
}

impl ServerAccessRemoveInput {
    /// The keys to remove from root's `authorized_keys`, root's first.
    fn control_plane_keys(&self) -> [&OpenSshPublicKey; 2] {
        [&self.root_public_key, &self.brokeforge_public_key]
    }
}

/// What removing BrokeForge's access reads from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAccessFacts {
    /// Whether the brokeforge account exists.
    pub user_exists: bool,
    /// Whether `/home/brokeforge` exists.
    pub home_exists: bool,
    /// Whether `/etc/sudoers.d/brokeforge` exists.
    pub sudoers_file_exists: bool,
    /// Whether root's `authorized_keys` holds a line for a control-plane key.
    pub root_authorizes_control_plane: bool,
}

/// The probe command for whether the brokeforge user exists.
pub fn user_exists_cmd() -> Cmd {
    Cmd::new("getent").lit("passwd").lit(APP_USER)
}

/// Parses the output of [`user_exists_cmd`]: getent prints the passwd line and exits 0
/// for a user that exists, and exits 2 for one that does not.
pub fn parse_user_exists(output: &ProbeOutput) -> Result<bool, UnexpectedOutput> {
    match output.exit_code {
        0 if output.stdout.starts_with(APP_USER) && output.stdout[APP_USER.len()..].starts_with(':') => Ok(true),
        0 => Err(UnexpectedOutput(format!(
            "expected the passwd line of {APP_USER}, got {:?}",
            output.stdout
        ))),
        2 => Ok(false),
        _ => Err(UnexpectedOutput("getent failed".to_owned())),
    }
}

/// Whether the `authorized_keys` line `line` authorizes `key`, read as sshd reads it:
/// leading blanks skipped, comments and blank lines authorize nothing, and the key is
/// either at the start of the line or right after its options field; its type and
/// body are separated by blanks, and the body ends at a blank or at the end of the
/// line. Comments and options play no part. The removal command's awk program reads
/// lines the same way.
pub fn authorizes(line: &str, key: &OpenSshPublicKey) -> bool {
    let line = line.trim_start_matches(BLANKS);
    if line.is_empty() || line.starts_with('#') {
        return false;
    }
    let material = key.key_material();
    let (key_type, body) = material.split_once(' ').expect("key material is TYPE BASE64");
    let starts_with_key =
        |text: &str| word(text, key_type).is_some_and(|rest| word(rest.trim_start_matches(BLANKS), body).is_some());
    starts_with_key(line) || starts_with_key(past_options(line))
}

const BLANKS: [char; 2] = [' ', '\t'];

/// The rest of `text` after the word `word`, if `text` starts with it and it ends at a
/// blank, a carriage return or the end of the text.
fn word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(word)?;
    (rest.is_empty() || rest.starts_with([' ', '\t', '\r'])).then_some(rest)
}

/// The text after the options field and the blanks that follow it. As sshd's
/// `sshkey_advance_past_options`: the field ends at the first blank outside double
/// quotes, and `\"` does not open or close a quote.
fn past_options(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut quoted = false;
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'\\' if bytes.get(position + 1) == Some(&b'"') => position += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => break,
            _ => {}
        }
        position += 1;
    }
    line[position..].trim_start_matches(BLANKS)
}

/// The command that rewrites the `authorized_keys` file at `file` without the lines
/// that authorize any of `keys` (see [`authorizes`]), atomically, with mode 0600. A
/// missing file is left missing.
pub fn remove_authorized_keys_cmd(file: &RemotePath, keys: &[&OpenSshPublicKey]) -> Cmd {
    let materials: Vec<String> = keys.iter().map(|key| key.key_material()).collect();
    Cmd::new("sh")
        .lit("-c")
        .lit(REWRITE_AUTHORIZED_KEYS_SCRIPT)
        .lit("sh")
        .arg(file)
        .lit(FILTER_AUTHORIZED_KEYS_AWK)
        .env(
            "BF_KEYS",
            ShellArg::new(materials.join(",")).expect("validated public keys hold no NUL byte"),
        )
}

/// The command that stops every process of the brokeforge user; it always succeeds.
pub fn stop_processes_cmd() -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(STOP_PROCESSES_SCRIPT)
        .lit("sh")
        .lit(APP_USER)
}

fn path(text: &str) -> RemotePath {
    text.parse().expect("a valid absolute path")
}

fn brokeforge_paths() -> [RemotePath; 2] {
    [path(APP_HOME), path(SUDOERS_FILE)]
}

milestones! {
    /// Milestones of removing BrokeForge's access to a server.
    pub enum ServerAccessRemoveMilestone {
        RemoveSudoRules => ("remove_sudo_rules", "Removing the brokeforge user's sudo rules"),
        StopProcesses => ("stop_processes", "Stopping the brokeforge user's processes"),
        RemoveUser => ("remove_user", "Removing the brokeforge user and its home directory"),
        RemoveRootKey => ("remove_root_key", "Removing BrokeForge's keys from root's authorized_keys"),
        Complete => ("complete", "Complete"),
    }
}

/// Takes BrokeForge's access away from a server: the brokeforge user, its home and
/// sudo rules, and the control plane's keys in root's `authorized_keys`, the very
/// last command of the plan. The sshd hardening stays (see the module documentation).
pub struct ServerAccessRemove;

impl Operation for ServerAccessRemove {
    type Package = ServerAccess;
    const ACTION: Action = Action::Remove;
    type Milestone = ServerAccessRemoveMilestone;
    type Input = ServerAccessRemoveInput;
    type Facts = ServerAccessFacts;
    type Error = Infallible;

    fn fact_probes(_input: &ServerAccessRemoveInput) -> Vec<FactProbe> {
        vec![
            FactProbe::new::<ServerAccess>(USER_PROBE, user_exists_cmd()),
            FactProbe::new::<ServerAccess>(PATHS_PROBE, path_kinds_cmd(&brokeforge_paths())),
            FactProbe::new::<ServerAccess>(ROOT_KEYS_PROBE, file_contents_cmd(&path(ROOT_AUTHORIZED_KEYS))),
        ]
    }

    fn parse_facts(input: &ServerAccessRemoveInput, outputs: &ProbeOutputs) -> Result<ServerAccessFacts, FactError> {
        let paths = brokeforge_paths();
        let [home, sudoers] = outputs
            .read(PATHS_PROBE, |output| parse_path_kinds(output, &paths))?
            .try_into()
            .expect("one kind per path asked for");
        let root_keys = outputs.read(ROOT_KEYS_PROBE, parse_file_contents)?;
        let keys = input.control_plane_keys();
        let root_authorizes_control_plane =
            root_keys.is_some_and(|text| text.lines().any(|line| keys.iter().any(|key| authorizes(line, key))));
        Ok(ServerAccessFacts {
            user_exists: outputs.read(USER_PROBE, parse_user_exists)?,
            home_exists: home.is_some(),
            sudoers_file_exists: sudoers.is_some(),
            root_authorizes_control_plane,
        })
    }

    fn plan(input: &ServerAccessRemoveInput, facts: &ServerAccessFacts) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();

        let steps = plan.milestone(ServerAccessRemoveMilestone::RemoveSudoRules);
        if facts.sudoers_file_exists {
            steps.run(Cmd::new("rm").lit("-f").lit("--").lit(SUDOERS_FILE));
        }

        let steps = plan.milestone(ServerAccessRemoveMilestone::StopProcesses);
        if facts.user_exists {
            steps.run(stop_processes_cmd());
        }

        let steps = plan.milestone(ServerAccessRemoveMilestone::RemoveUser);
        if facts.user_exists {
            steps.run(Cmd::new("userdel").lit("--remove").lit(APP_USER));
        } else if facts.home_exists {
            steps.run(Cmd::new("rm").lit("-rf").lit("--").lit(APP_HOME));
        }

        // Root's key goes last: nothing after this command could open a connection.
        let steps = plan.milestone(ServerAccessRemoveMilestone::RemoveRootKey);
        if facts.root_authorizes_control_plane {
            steps.run(remove_authorized_keys_cmd(
                &path(ROOT_AUTHORIZED_KEYS),
                &input.control_plane_keys(),
            ));
        }

        plan.milestone(ServerAccessRemoveMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATERIAL: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT";
    const BODY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMf33zTvNfosTKtygbz4lI/6ocYLJoBBJJy670xP3gHT";

    #[test]
    fn lines_are_read_as_sshd_reads_them() {
        let key: OpenSshPublicKey = format!("{MATERIAL} root@server-42").parse().unwrap();
        let authorized = [
            MATERIAL.to_owned(),
            format!("{MATERIAL} brokeforge-control-plane root@server-42"),
            format!("  \t{MATERIAL}\tcomment"),
            format!("{MATERIAL}\r"),
            format!("ssh-ed25519 \t {BODY}"),
            format!("restrict {MATERIAL}"),
            format!("restrict,command=\"uptime; echo \\\" x\" {MATERIAL} copy"),
            format!("from=\"10.0.0.0/8\",no-pty  ssh-ed25519  {BODY}"),
        ];
        for line in &authorized {
            assert!(authorizes(line, &key), "{line:?}");
        }
        let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDPfbM0wy689IZRj/FWkGT/uWuBqvBaJTSOVHT0/f7Cd";
        let not_authorized = [
            String::new(),
            format!("# {MATERIAL}"),
            format!("{other} {MATERIAL}"),
            format!("{other} comment {MATERIAL}"),
            format!("command=\"{MATERIAL}\" {other}"),
            format!("command=\"a \\\" {MATERIAL}\" {other}"),
            format!("{MATERIAL}x"),
            format!("{MATERIAL}=="),
            format!("x{MATERIAL}"),
            format!("ssh-rsa {BODY}"),
            format!("ssh-ed25519{BODY}"),
            "ssh-ed25519".to_owned(),
            other.to_owned(),
        ];
        for line in &not_authorized {
            assert!(!authorizes(line, &key), "{line:?}");
        }
    }

    #[test]
    fn the_scripts_are_single_quoted_words() {
        for script in [
            STOP_PROCESSES_SCRIPT,
            REWRITE_AUTHORIZED_KEYS_SCRIPT,
            FILTER_AUTHORIZED_KEYS_AWK,
        ] {
            let inner = script
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap();
            assert!(!inner.contains(['\'', '\n']), "{script}");
        }
    }
}

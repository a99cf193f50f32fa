//! The file explorer: listing, reading, writing and deleting files inside a site's
//! directory (`/home/brokeforge/<domain>`), as brokeforge.
//!
//! # Containment is checked on the server
//!
//! A [`SiteFilePath`] is refused when it is absolute or has a `..` part, but a string
//! check cannot see symbolic links: `current/public/x` may be a link to
//! `/home/brokeforge/.ssh`. So every action first resolves the path on the server with
//! `realpath` (one `sh` script, [`FILES_SCRIPT`], with the site's directory and the
//! path as quoted arguments) and refuses, with exit code 3 and a message, anything
//! whose resolved path is not the site's resolved directory or below it:
//!
//! - listing and reading follow every link (`realpath -m`), so a link inside the site
//!   (`current/.env` to `shared/.env`) works and a link out of it is refused;
//! - writing follows the links too and uploads to the resolved path, so editing
//!   `current/.env` changes `shared/.env` instead of replacing the link with a file;
//! - deleting resolves only the parent directory (`realpath -e`), so deleting a link
//!   removes the link itself, never what it points to.
//!
//! Writing and deleting read the resolved path as a fact, plan with it, and check it
//! again with the same script right before the upload or `rm`, so a link changed in
//! between fails the step instead of redirecting it. The site's layout entries
//! themselves (`current`, `releases`, `shared`, `repository.git`, `.brokeforge`) cannot
//! be deleted here.

use brokeforge_core::{Cmd, Domain, FileContents, Plan, RemotePath, Secret, ShellArg};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::facts::{FactError, FactProbe, ProbeOutput, ProbeOutputs, UnexpectedOutput};
use crate::framework::{Action, Operation};

use super::SiteFiles;
use super::layout::{SiteLayout, deserialize_site_domain};

/// Resolves and checks a path, then acts, run as
/// `sh -c SCRIPT sh ROOT RELATIVE HOW ACTION [ARGUMENT]`: `HOW` is `follow` (resolve
/// every link) or `entry` (resolve the parent only); `ACTION` is `list`, `read MAX`,
/// `stat` (print the resolved path, kind and mode, NUL-separated) or `check EXPECTED`
/// (fail unless the path still resolves to `EXPECTED`). Exit codes: 3 outside the site,
/// 4 wrong kind of file, 5 too large, 6 changed since checked.
pub const FILES_SCRIPT: &str = concat!(
    "'",
    r#"root=$1 rel=$2 how=$3 action=$4; base=$(realpath -e -- "$root") || exit 1; "#,
    r#"if [ "$how" = entry ]; then case $rel in */*) parent=$(realpath -e -- "$root/${rel%/*}") || exit 1; "#,
    r#"target=$parent/${rel##*/} ;; *) target=$base/$rel ;; esac; "#,
    r#"else target=$(realpath -m -- "$root/$rel") || exit 1; fi; "#,
    r#"case $target in "$base" | "$base"/*) ;; *) echo "refused: $rel leads out of the site directory" >&2; exit 3 ;; esac; "#,
    r#"case $action in "#,
    r#"list) [ -d "$target" ] || { echo "$rel is not a directory" >&2; exit 4; }; "#,
    r#"exec find "$target" -mindepth 1 -maxdepth 1 -printf "%y\\0%s\\0%T@\\0%f\\0%l\\0" ;; "#,
    r#"read) [ -f "$target" ] || { echo "$rel is not a regular file" >&2; exit 4; }; size=$(stat -c %s -- "$target") || exit 1; "#,
    r#"[ "$size" -le "$5" ] || { echo "$rel is too large to open here ($size bytes, at most $5)" >&2; exit 5; }; exec cat -- "$target" ;; "#,
    r#"stat) if [ -e "$target" ] || [ -L "$target" ]; then kind=$(stat -c %F -- "$target") mode=$(stat -c %a -- "$target") || exit 1; "#,
    r#"else kind=missing mode=; fi; printf "%s\\0%s\\0%s\\0" "$target" "$kind" "$mode" ;; "#,
    r#"check) [ "$target" = "$5" ] || { echo "$rel changed since it was checked; try again" >&2; exit 6; } ;; "#,
    r#"*) exit 2 ;; esac"#,
    "'",
);

/// Why a path is refused before it reaches the server.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteFilePathError {
    #[error("a path in the site cannot start with '/'; write it relative to the site's directory")]
    Absolute,
    #[error("a path in the site cannot contain '..'")]
    ParentComponent,
    #[error("a path in the site cannot contain control characters")]
    ControlCharacter,
    #[error("a path in the site can be at most 4095 bytes long, each part at most 255")]
    TooLong,
    #[error("choose a file or directory inside the site, not the site's directory itself")]
    Root,
}

/// A path relative to a site's directory, such as `current/.env` or `shared/storage/logs`:
/// no `..` part, not absolute, no control character; `.` and empty parts are dropped.
/// The empty path is the site's directory itself (listing only). Any other character
/// is allowed: the path reaches the server as one quoted argument.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SiteFilePath(String);

impl SiteFilePath {
    /// The site's directory itself.
    pub fn root() -> Self {
        SiteFilePath(String::new())
    }

    /// The normalized relative path (empty for the site's directory).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the site's directory itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn validate(input: &str) -> Result<Self, SiteFilePathError> {
        if input.starts_with('/') {
            return Err(SiteFilePathError::Absolute);
        }
        if input.chars().any(char::is_control) {
            return Err(SiteFilePathError::ControlCharacter);
        }
        let mut parts = Vec::new();
        for part in input.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(SiteFilePathError::ParentComponent),
                _ if part.len() > 255 => return Err(SiteFilePathError::TooLong),
                _ => parts.push(part),
            }
        }
        let path = parts.join("/");
        if path.len() > 4095 {
            return Err(SiteFilePathError::TooLong);
        }
        Ok(SiteFilePath(path))
    }

    fn shell_arg(&self) -> ShellArg {
        ShellArg::new(self.0.as_str()).expect("control characters are refused")
    }
}

impl std::str::FromStr for SiteFilePath {
    type Err = SiteFilePathError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        SiteFilePath::validate(input)
    }
}

impl std::fmt::Display for SiteFilePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SiteFilePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SiteFilePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The command running [`FILES_SCRIPT`] for `path` of the site at `layout`.
fn files_cmd(layout: &SiteLayout, path: &SiteFilePath, how: &'static str, action: &'static str) -> Cmd {
    Cmd::new("sh")
        .lit("-c")
        .lit(FILES_SCRIPT)
        .lit("sh")
        .arg(layout.root())
        .arg(path.shell_arg())
        .lit(how)
        .lit(action)
}

/// The probe key of the file explorer's probes.
pub const FILES_PROBE: &str = "site_files";

/// The probe that lists the directory `path` of the site `domain`.
pub fn list_probe(domain: &Domain, path: &SiteFilePath) -> FactProbe {
    FactProbe::new::<SiteFiles>(FILES_PROBE, files_cmd(&SiteLayout::new(domain), path, "follow", "list"))
}

/// The probe that reads the file `path` of the site `domain`, refusing files larger
/// than `max_bytes`.
pub fn read_probe(domain: &Domain, path: &SiteFilePath, max_bytes: u64) -> FactProbe {
    FactProbe::new::<SiteFiles>(
        FILES_PROBE,
        files_cmd(&SiteLayout::new(domain), path, "follow", "read").arg(max_bytes),
    )
}

/// Why the server refused a file action. The messages are meant for users.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteFileError {
    #[error("that path leads out of the site's directory (through a symbolic link); refused")]
    OutsideSite,
    #[error("{0}")]
    WrongKind(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the path changed while it was being checked; try again")]
    Changed,
    #[error("the path does not exist")]
    NotFound,
    #[error("the file action failed (exit code {exit_code}): {detail}")]
    Failed { exit_code: u32, detail: String },
}

fn file_error(output: &ProbeOutput) -> SiteFileError {
    let detail = output
        .stderr
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("no message")
        .to_owned();
    match output.exit_code {
        3 => SiteFileError::OutsideSite,
        4 => SiteFileError::WrongKind(detail),
        5 => SiteFileError::TooLarge(detail),
        6 => SiteFileError::Changed,
        1 if detail.contains("No such file or directory") => SiteFileError::NotFound,
        exit_code => SiteFileError::Failed { exit_code, detail },
    }
}

/// What kind of entry a directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    File,
    Directory,
    SymbolicLink,
    Other,
}

/// One entry of a listed directory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: f64,
    /// Where a symbolic link points.
    pub link_target: Option<String>,
}

/// Parses the output of [`list_probe`]: the entries, sorted by name.
pub fn parse_list(output: &ProbeOutput) -> Result<Vec<FileEntry>, SiteFileError> {
    if output.exit_code != 0 {
        return Err(file_error(output));
    }
    let fields: Vec<&str> = output.stdout.split('\0').collect();
    let mut entries = Vec::new();
    for chunk in fields.chunks(5) {
        let [kind, size, modified, name, link] = chunk else {
            break;
        };
        let kind = match *kind {
            "f" => EntryKind::File,
            "d" => EntryKind::Directory,
            "l" => EntryKind::SymbolicLink,
            _ => EntryKind::Other,
        };
        entries.push(FileEntry {
            name: (*name).to_owned(),
            kind,
            size: size.parse().unwrap_or(0),
            modified: modified.parse().unwrap_or(0.0),
            link_target: (kind == EntryKind::SymbolicLink).then(|| (*link).to_owned()),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Parses the output of [`read_probe`]: the file's text (bytes that are not UTF-8 were
/// replaced when the output was captured).
pub fn parse_read(output: &ProbeOutput) -> Result<String, SiteFileError> {
    if output.exit_code != 0 {
        return Err(file_error(output));
    }
    Ok(output.stdout.clone())
}

/// What the server says about a path before a write or a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The resolved absolute path, inside the site's directory.
    pub path: RemotePath,
    /// `stat`'s kind (`regular file`, `directory`, ...), or `None` when it does not
    /// exist.
    pub kind: Option<String>,
    /// The permission bits when it exists.
    pub mode: Option<u32>,
}

fn parse_resolved(output: &ProbeOutput) -> Result<Result<ResolvedPath, SiteFileError>, UnexpectedOutput> {
    if output.exit_code != 0 {
        return Ok(Err(file_error(output)));
    }
    let fields: Vec<&str> = output.stdout.split('\0').collect();
    let [path, kind, mode, ""] = fields.as_slice() else {
        return Err(UnexpectedOutput(format!(
            "expected PATH, KIND and MODE, got {:?}",
            output.stdout
        )));
    };
    let path = path
        .parse::<RemotePath>()
        .map_err(|error| UnexpectedOutput(format!("the resolved path is not usable: {error}")))?;
    Ok(Ok(ResolvedPath {
        path,
        kind: (*kind != "missing").then(|| (*kind).to_owned()),
        mode: u32::from_str_radix(mode, 8).ok(),
    }))
}

/// Why file contents are refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a file written from the file explorer can be at most {max} bytes", max = SiteFileContents::MAX_LENGTH)]
pub struct SiteFileContentsError;

/// The bytes written to a file: treated as secret (a file may be `.env`), at most
/// 10 MiB. Like [`super::env::EnvContents`], it deserializes but never serializes.
#[derive(Clone)]
pub struct SiteFileContents(Secret<Vec<u8>>);

impl SiteFileContents {
    /// The largest file, in bytes.
    pub const MAX_LENGTH: usize = 10 * 1024 * 1024;

    /// Wraps `bytes`, refusing more than [`SiteFileContents::MAX_LENGTH`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, SiteFileContentsError> {
        if bytes.len() > Self::MAX_LENGTH {
            return Err(SiteFileContentsError);
        }
        Ok(SiteFileContents(Secret::new(bytes)))
    }

    /// The secret bytes.
    pub fn secret(&self) -> &Secret<Vec<u8>> {
        &self.0
    }
}

impl std::fmt::Debug for SiteFileContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SiteFileContents({} bytes)", self.0.expose().len())
    }
}

impl PartialEq for SiteFileContents {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}

impl Eq for SiteFileContents {}

impl Serialize for SiteFileContents {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "file contents are treated as secret and are never serialized; build the operation's input in memory",
        ))
    }
}

impl<'de> Deserialize<'de> for SiteFileContents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SiteFileContents::new(text.into_bytes()).map_err(serde::de::Error::custom)
    }
}

/// What writing a file needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFileWriteInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
    pub path: SiteFilePath,
    pub contents: SiteFileContents,
}

/// What deleting a file or directory needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFileDeleteInput {
    #[serde(deserialize_with = "deserialize_site_domain")]
    pub domain: Domain,
    pub path: SiteFilePath,
}

/// What writing or deleting reads: where the path resolves, or why the server refused
/// it (kept as facts, so the refusal reaches the user as the plan's error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteFileFacts {
    pub resolved: Result<ResolvedPath, SiteFileError>,
}

const RESOLVE_PROBE: &str = "site_file_path";

fn resolve_probe(domain: &Domain, path: &SiteFilePath, how: &'static str) -> FactProbe {
    FactProbe::new::<SiteFiles>(RESOLVE_PROBE, files_cmd(&SiteLayout::new(domain), path, how, "stat"))
}

fn parse_file_facts(outputs: &ProbeOutputs) -> Result<SiteFileFacts, FactError> {
    Ok(SiteFileFacts {
        resolved: outputs.read(RESOLVE_PROBE, parse_resolved)?,
    })
}

/// The check run right before a change: `path` still resolves to `expected`.
fn check_cmd(layout: &SiteLayout, path: &SiteFilePath, how: &'static str, expected: &RemotePath) -> Cmd {
    files_cmd(layout, path, how, "check").arg(expected)
}

milestones! {
    /// Milestones of writing a file from the file explorer.
    pub enum SiteFileWriteMilestone {
        WriteFile => ("write_file", "Writing the file"),
        Complete => ("complete", "Complete"),
    }
}

/// Writes one file inside a site's directory (see the module documentation). A new
/// file gets mode 0644; an existing one keeps its mode.
pub struct SiteFileWrite;

impl Operation for SiteFileWrite {
    type Package = SiteFiles;
    const ACTION: Action = Action::Install;
    type Milestone = SiteFileWriteMilestone;
    type Input = SiteFileWriteInput;
    type Facts = SiteFileFacts;
    type Error = SiteFileError;

    fn fact_probes(input: &SiteFileWriteInput) -> Vec<FactProbe> {
        vec![resolve_probe(&input.domain, &input.path, "follow")]
    }

    fn parse_facts(_input: &SiteFileWriteInput, outputs: &ProbeOutputs) -> Result<SiteFileFacts, FactError> {
        parse_file_facts(outputs)
    }

    fn plan(input: &SiteFileWriteInput, facts: &SiteFileFacts) -> Result<Plan, SiteFileError> {
        if input.path.is_root() {
            return Err(SiteFileError::WrongKind(
                "the site's directory is not a file".to_owned(),
            ));
        }
        let resolved = facts.resolved.clone()?;
        if let Some(kind) = &resolved.kind
            && !kind.starts_with("regular")
        {
            return Err(SiteFileError::WrongKind(format!(
                "{} is a {kind}, not a regular file",
                input.path
            )));
        }
        let layout = SiteLayout::new(&input.domain);
        let mut plan = Self::plan_writer();
        plan.milestone(SiteFileWriteMilestone::WriteFile)
            .run(check_cmd(&layout, &input.path, "follow", &resolved.path))
            .upload(
                resolved.path.clone(),
                FileContents::Secret(input.contents.secret().clone()),
                resolved.mode.unwrap_or(0o644),
                None,
            );
        plan.milestone(SiteFileWriteMilestone::Complete);
        Ok(plan.finish())
    }
}

/// The site's own layout entries, which the file explorer does not delete.
pub const PROTECTED_ENTRIES: &[&str] = &["current", "releases", "shared", "repository.git", ".brokeforge"];

milestones! {
    /// Milestones of deleting from the file explorer.
    pub enum SiteFileDeleteMilestone {
        DeletePath => ("delete_path", "Deleting the file"),
        Complete => ("complete", "Complete"),
    }
}

/// Deletes one file, link or directory (with its contents) inside a site's directory.
/// Deleting what is already gone changes nothing.
pub struct SiteFileDelete;

impl Operation for SiteFileDelete {
    type Package = SiteFiles;
    const ACTION: Action = Action::Remove;
    type Milestone = SiteFileDeleteMilestone;
    type Input = SiteFileDeleteInput;
    type Facts = SiteFileFacts;
    type Error = SiteFileError;

    fn fact_probes(input: &SiteFileDeleteInput) -> Vec<FactProbe> {
        vec![resolve_probe(&input.domain, &input.path, "entry")]
    }

    fn parse_facts(_input: &SiteFileDeleteInput, outputs: &ProbeOutputs) -> Result<SiteFileFacts, FactError> {
        parse_file_facts(outputs)
    }

    fn plan(input: &SiteFileDeleteInput, facts: &SiteFileFacts) -> Result<Plan, SiteFileError> {
        if input.path.is_root() {
            return Err(SiteFileError::WrongKind(
                "the site's directory itself cannot be deleted here".to_owned(),
            ));
        }
        if PROTECTED_ENTRIES.contains(&input.path.as_str()) {
            return Err(SiteFileError::WrongKind(format!(
                "{} is part of the site's layout and cannot be deleted here",
                input.path
            )));
        }
        let resolved = match facts.resolved.clone() {
            Ok(resolved) => Some(resolved),
            // A parent that no longer exists: the path is gone already.
            Err(SiteFileError::NotFound) => None,
            Err(error) => return Err(error),
        };
        let layout = SiteLayout::new(&input.domain);
        let mut plan = Self::plan_writer();
        let steps = plan.milestone(SiteFileDeleteMilestone::DeletePath);
        if let Some(resolved) = resolved.filter(|resolved| resolved.kind.is_some()) {
            steps.run(
                check_cmd(&layout, &input.path, "entry", &resolved.path)
                    .and(Cmd::new("rm").lit("-rf").lit("--").arg(&resolved.path)),
            );
        }
        plan.milestone(SiteFileDeleteMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_without_parent_parts() {
        assert_eq!("current/.env".parse::<SiteFilePath>().unwrap().as_str(), "current/.env");
        assert_eq!("./a//b/./c/".parse::<SiteFilePath>().unwrap().as_str(), "a/b/c");
        assert!("".parse::<SiteFilePath>().unwrap().is_root());
        assert_eq!(
            "a b/it's $(id).txt".parse::<SiteFilePath>().unwrap().as_str(),
            "a b/it's $(id).txt"
        );
        assert_eq!("/etc/passwd".parse::<SiteFilePath>(), Err(SiteFilePathError::Absolute));
        assert_eq!("../x".parse::<SiteFilePath>(), Err(SiteFilePathError::ParentComponent));
        assert_eq!(
            "a/../../x".parse::<SiteFilePath>(),
            Err(SiteFilePathError::ParentComponent)
        );
        assert_eq!("a\nb".parse::<SiteFilePath>(), Err(SiteFilePathError::ControlCharacter));
        assert_eq!("a\0b".parse::<SiteFilePath>(), Err(SiteFilePathError::ControlCharacter));
        assert!(serde_json::from_str::<SiteFilePath>("\"../../etc\"").is_err());
    }

    #[test]
    fn the_script_is_one_single_quoted_word() {
        let inner = FILES_SCRIPT
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .unwrap();
        assert!(!inner.contains(['\'', '\n']), "{FILES_SCRIPT}");
    }

    #[test]
    fn contents_never_serialize() {
        let contents = SiteFileContents::new(b"secret".to_vec()).unwrap();
        assert!(serde_json::to_string(&contents).is_err());
        assert_eq!(format!("{contents:?}"), "SiteFileContents(6 bytes)");
    }
}

//! Tidy checks over the whole workspace, run with the test suite: the pure crates
//! stay free of I/O dependencies, every Rust module opens with a `//!` doc comment,
//! shell commands are only built by core's `Cmd` builder, and no test is marked to be skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates whose code must stay pure data: plans, values, templates.
const PURE_CRATES: &[&str] = &["brokeforge-core", "brokeforge-packages"];

/// Dependencies that do I/O (networking, async runtimes, databases, HTTP).
const IO_CRATES: &[&str] = &[
    "tokio",
    "sqlx",
    "russh",
    "russh-sftp",
    "axum",
    "hyper",
    "reqwest",
    "mio",
    "tower",
    "tower-http",
    "async-std",
    "smol",
    "ureq",
    "libc",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|name| name == "target" || name == "node_modules")
            {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    files.sort();
    assert!(files.len() > 10, "the tidy check found the sources");
    files
}

#[test]
fn pure_crates_have_no_io_dependencies() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| (package["id"].as_str().unwrap(), package["name"].as_str().unwrap()))
        .collect();
    let nodes = metadata["resolve"]["nodes"].as_array().unwrap();
    let normal_dependencies = |id: &str| -> Vec<String> {
        let node = nodes.iter().find(|node| node["id"] == id).unwrap();
        node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dependency| {
                dependency["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|kind| kind["kind"].is_null())
            })
            .map(|dependency| dependency["pkg"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut checked = 0;
    for pure in PURE_CRATES {
        let Some((&id, _)) = names.iter().find(|(_, name)| *name == pure) else {
            continue;
        };
        checked += 1;
        let mut seen = BTreeSet::new();
        let mut stack = vec![id.to_owned()];
        while let Some(current) = stack.pop() {
            for dependency in normal_dependencies(&current) {
                if seen.insert(dependency.clone()) {
                    stack.push(dependency);
                }
            }
        }
        let offenders: Vec<&str> = seen
            .iter()
            .map(|id| names[id.as_str()])
            .filter(|name| IO_CRATES.contains(name))
            .collect();
        assert!(
            offenders.is_empty(),
            "{pure} must stay pure but depends on {offenders:?}"
        );
    }
    assert!(checked >= 1, "at least brokeforge-core was checked");
}

#[test]
fn every_rust_module_opens_with_a_doc_comment() {
    let missing: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without a `//!` doc comment: {missing:#?}");
}

#[test]
fn no_test_is_ignored() {
    let marker = ["#[", "ignore"].concat();
    let offenders: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).unwrap().contains(&marker))
        .map(|path| path.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "ignored tests prove nothing: {offenders:?}");
}

/// Shell commands are built only by `brokeforge_core::Cmd`, which quotes user values.
/// Outside core (and the test kit and benchmarks, which drive local tools), a
/// `format!` whose text starts with a shell command or chains commands is a defect.
#[test]
fn shell_commands_are_not_built_with_format() {
    const COMMAND_WORDS: &[&str] = &[
        "apt-get",
        "apt",
        "systemctl",
        "sudo",
        "chmod",
        "chown",
        "mkdir",
        "rm",
        "nginx",
        "bash",
        "sh",
        "ufw",
        "useradd",
        "usermod",
        "ln",
        "cd",
        "echo",
        "cat",
        "printf",
        "mv",
        "cp",
        "git",
        "php",
        "composer",
        "curl",
        "tee",
        "timeout",
    ];
    const CHAINS: &[&str] = &[" && ", " || ", "$("];
    let allowed_roots = ["crates/core/", "crates/testkit/", "crates/bench/"];
    let root = workspace_root();
    let mut offenders = Vec::new();
    for path in all_rust_files() {
        let relative = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        if allowed_roots.iter().any(|allowed| relative.starts_with(allowed)) || relative.contains("/tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let Some(start) = line.find("format!(\"") else { continue };
            let literal = &line[start + "format!(\"".len()..];
            let literal = literal.split('"').next().unwrap_or_default();
            let first_word = literal.split_whitespace().next().unwrap_or_default();
            let starts_with_command = COMMAND_WORDS.contains(&first_word) && literal.contains(' ');
            if starts_with_command || CHAINS.iter().any(|chain| literal.contains(chain)) {
                offenders.push(format!("{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "shell commands built with format! (use brokeforge_core::Cmd): {offenders:#?}"
    );
}

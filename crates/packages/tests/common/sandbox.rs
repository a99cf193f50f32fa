//! Temporary directories and real shells: the tests that run planned commands (through
//! `sh` or `bash`, as the step runner does) do it in a directory of their own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use brokeforge_core::Cmd;

/// A directory in the temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory (mode 0755, so other users, such as nginx's, can
    /// traverse it).
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let number = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("brokeforge-sites-{}-{number}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as text.
    pub fn text(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// `relative` below this directory, as text.
    pub fn join(&self, relative: &str) -> String {
        self.0.join(relative).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs shell text as the step runner runs a command: `bash -c TEXT` with stdin closed.
pub fn run_text(text: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(text)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash runs")
}

/// Runs `cmd` as the step runner would.
pub fn run(cmd: &Cmd) -> Output {
    run_text(&cmd.render_for_execution())
}

/// Runs `cmd` and checks that it succeeded.
pub fn run_ok(cmd: &Cmd) -> Output {
    let output = run(cmd);
    assert!(output.status.success(), "{cmd}\n{}", describe(&output));
    output
}

/// Quotes `text` as one shell word.
pub fn quote(text: &str) -> String {
    brokeforge_core::ShellArg::new(text).unwrap().quoted()
}

/// Runs `shellcheck` (Debian package `shellcheck`) on a script for `shell`.
pub fn shellcheck(script: &str, shell: &str) {
    use std::io::Write;
    let mut child = Command::new("shellcheck")
        .args(["--shell", shell, "--severity", "warning", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shellcheck is installed (Debian package shellcheck)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "shellcheck:\n{}\n{script}", describe(&output));
}

/// The text of a script written as one single-quoted shell word.
pub fn unquoted(script: &str) -> &str {
    script
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap()
}

/// A stand-in for a server, for running plans for real: `/home/brokeforge` is
/// `<tmp>/home`, commands run through `bash` one step at a time as the step runner
/// runs them (stopping at the first failure), uploads are written as bytes with their
/// mode, `sudo -n /usr/bin/systemctl reload` does nothing and every service counts as
/// running (`systemctl is-active` is `true`).
pub struct FakeServer {
    pub dir: TempDir,
    pub home: String,
}

/// How a plan run ended.
pub struct PlanRun {
    /// The commands that ran, as run.
    pub commands: Vec<String>,
    /// The failed command and its output, if one failed.
    pub failure: Option<(String, Output)>,
}

impl PlanRun {
    /// The failed command with its output, or nothing.
    pub fn failure_text(&self) -> String {
        match &self.failure {
            Some((command, output)) => format!("{command}\n{}", describe(output)),
            None => String::new(),
        }
    }
}

impl FakeServer {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let home = dir.join("home");
        std::fs::create_dir_all(format!("{home}/.ssh")).unwrap();
        FakeServer { dir, home }
    }

    /// Server paths and commands as they run here.
    pub fn localize(&self, text: &str) -> String {
        text.replace("/home/brokeforge", &self.home)
            .replace("sudo -n /usr/bin/systemctl reload", "true")
            .replace("systemctl is-active --quiet", "true")
    }

    /// Runs shell text in the server's directory, stdin closed.
    pub fn bash(&self, text: &str) -> Output {
        Command::new("bash")
            .arg("-c")
            .arg(text)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a probe and returns its output as the application passes it on, with the
    /// server's paths.
    pub fn probe(&self, cmd: &Cmd) -> brokeforge_packages::ProbeOutput {
        let output = self.bash(&self.localize(&cmd.render_for_execution()));
        let back = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&self.home, "/home/brokeforge");
        brokeforge_packages::ProbeOutput::new(
            output.status.code().unwrap() as u32,
            back(&output.stdout),
            back(&output.stderr),
        )
    }

    /// Runs the probes of `O` and parses their outputs, as the application does.
    pub fn facts<O: brokeforge_packages::Operation>(&self, input: &O::Input) -> O::Facts {
        let outputs: brokeforge_packages::ProbeOutputs = O::fact_probes(input)
            .iter()
            .map(|probe| (probe.key(), self.probe(probe.cmd())))
            .collect();
        O::parse_facts(input, &outputs).unwrap()
    }

    /// Runs `plan` step by step, stopping at the first failure.
    pub fn run(&self, plan: &brokeforge_core::Plan) -> PlanRun {
        use brokeforge_core::Step;
        let mut commands = Vec::new();
        for step in plan.steps() {
            match step {
                Step::Run { cmd, .. } => {
                    let text = self.localize(&cmd.render_for_execution());
                    let output = self.bash(&text);
                    commands.push(text.clone());
                    if !output.status.success() {
                        return PlanRun {
                            commands,
                            failure: Some((text, output)),
                        };
                    }
                }
                Step::Upload {
                    path, contents, mode, ..
                } => {
                    let path = self.localize(path.as_str());
                    std::fs::write(&path, contents.expose_bytes()).unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
                }
                Step::Milestone { .. } | Step::Persist(_) => {}
            }
        }
        PlanRun {
            commands,
            failure: None,
        }
    }

    /// Plans and runs `O` against the server's current state.
    pub fn operate<O: brokeforge_packages::Operation>(&self, input: &O::Input) -> PlanRun
    where
        O::Error: std::fmt::Debug,
    {
        let facts = self.facts::<O>(input);
        let plan = O::plan(input, &facts).unwrap();
        self.run(&plan)
    }
}

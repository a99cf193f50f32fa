//! `Cmd`: the only way BrokeForge builds a shell command.
//!
//! A command is made of three kinds of words. Literals are program text written by
//! BrokeForge developers and must be `&'static str`, so user data cannot become one.
//! Arguments are user values, always quoted for POSIX `sh` (which `bash` also reads
//! correctly). Secret arguments are quoted like arguments but print as `***`.
//!
//! `Display` gives the masked preview that logs, events and the UI show.
//! [`Cmd::render_for_execution`] gives the real shell text and is the only place where
//! secret values leave a command.
//!
//! A program receives a secret argument in its argv, which other users of the server can
//! read in `ps`. Prefer [`Cmd::secret_env`], which puts the value in the program's
//! environment (readable only by its owner), or upload the secret as a file.

use std::fmt;

use shell_quote::Sh;
use thiserror::Error;

use crate::secret::{MASK, Secret};

/// Why a value cannot become part of a command.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CmdError {
    /// A NUL byte ends a C string, so no program could receive the value intact.
    #[error("a shell argument cannot contain a NUL byte (found at byte {position})")]
    NulByte { position: usize },
}

/// A user value checked to be passable as one shell argument: it contains no NUL byte.
///
/// Validated value types (such as `Domain` or `RemotePath`) and numbers convert into a
/// `ShellArg` without a check; free text goes through [`ShellArg::new`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShellArg(String);

impl ShellArg {
    /// Checks that `value` can travel as one argument.
    pub fn new(value: impl Into<String>) -> Result<Self, CmdError> {
        let value = value.into();
        reject_nul(&value)?;
        Ok(ShellArg(value))
    }

    /// Wraps text that the caller's own validation already proved NUL-free.
    pub(crate) fn from_nul_free(value: String) -> Self {
        debug_assert!(!value.contains('\0'), "validated values never contain NUL");
        ShellArg(value)
    }

    /// The unquoted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value quoted as one word for POSIX `sh` (and `bash`), exactly as [`Cmd`]
    /// writes arguments. For text that is not a command, such as a value a template
    /// places in a shell script.
    pub fn quoted(&self) -> String {
        quoted(&self.0)
    }
}

impl TryFrom<&str> for ShellArg {
    type Error = CmdError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        ShellArg::new(value)
    }
}

impl TryFrom<String> for ShellArg {
    type Error = CmdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ShellArg::new(value)
    }
}

impl From<&ShellArg> for ShellArg {
    fn from(value: &ShellArg) -> ShellArg {
        value.clone()
    }
}

/// Implements `From<number>` for `ShellArg`: decimal digits never hold a NUL byte.
macro_rules! shell_arg_from_numbers {
    ($($number:ty),*) => {
        $(
            impl From<$number> for ShellArg {
                fn from(number: $number) -> ShellArg {
                    ShellArg(number.to_string())
                }
            }
        )*
    };
}

shell_arg_from_numbers!(u8, u16, u32, u64, usize, i32, i64);

fn reject_nul(value: &str) -> Result<(), CmdError> {
    match value.find('\0') {
        Some(position) => Err(CmdError::NulByte { position }),
        None => Ok(()),
    }
}

/// One word of a simple command.
#[derive(Clone)]
enum Word {
    Literal(&'static str),
    Quoted(ShellArg),
    Secret(Secret<String>),
}

/// A program with its environment assignments and words, such as `KEY=value apt-get -y`.
#[derive(Clone)]
struct SimpleCmd {
    env: Vec<(&'static str, Word)>,
    words: Vec<Word>,
}

/// The shape of a command.
#[derive(Clone)]
enum Node {
    Simple(SimpleCmd),
    /// Commands joined by `&&`: each runs only if the previous one succeeded.
    And(Vec<Cmd>),
    /// Commands joined by `|`: each one's stdout feeds the next one's stdin.
    Pipe(Vec<Cmd>),
}

/// A shell command built from literals, quoted arguments and secrets.
///
/// Builder methods ([`Cmd::lit`], [`Cmd::arg`], ...) always extend the last simple
/// command, so `Cmd::new("a").pipe(Cmd::new("b")).arg(x)` passes `x` to `b`.
#[derive(Clone)]
pub struct Cmd {
    node: Node,
}

/// Whether secrets are masked or written out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rendering {
    Preview,
    Execution,
}

impl Cmd {
    /// Starts a command with a program name or path written by a developer.
    pub fn new(program: &'static str) -> Self {
        Cmd {
            node: Node::Simple(SimpleCmd {
                env: Vec::new(),
                words: vec![Word::Literal(program)],
            }),
        }
    }

    /// Appends developer-written shell text as is, such as `-y`, `--` or `2>/dev/null`.
    pub fn lit(mut self, text: &'static str) -> Self {
        self.last_simple_mut().words.push(Word::Literal(text));
        self
    }

    /// Appends a value as exactly one quoted argument. Put `.lit("--")` before values
    /// that could start with `-` when the program would read them as options.
    pub fn arg(mut self, value: impl Into<ShellArg>) -> Self {
        self.last_simple_mut().words.push(Word::Quoted(value.into()));
        self
    }

    /// Appends free text as one quoted argument, refusing a NUL byte.
    pub fn try_arg(self, value: impl AsRef<str>) -> Result<Self, CmdError> {
        let value = ShellArg::new(value.as_ref())?;
        Ok(self.arg(value))
    }

    /// Appends a secret as one quoted argument that prints as `***`.
    pub fn secret_arg(mut self, secret: &Secret<String>) -> Result<Self, CmdError> {
        reject_nul(secret.expose())?;
        self.last_simple_mut().words.push(Word::Secret(secret.clone()));
        Ok(self)
    }

    /// Sets an environment variable for the program, as `KEY=value program`.
    ///
    /// # Panics
    ///
    /// Panics if `key` is not a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`); keys are
    /// written by developers, so this is a programming error.
    pub fn env(mut self, key: &'static str, value: impl Into<ShellArg>) -> Self {
        assert_variable_name(key);
        self.last_simple_mut().env.push((key, Word::Quoted(value.into())));
        self
    }

    /// Sets a secret environment variable for the program; it prints as `KEY=***`.
    ///
    /// # Panics
    ///
    /// Panics if `key` is not a shell variable name, as [`Cmd::env`] does.
    pub fn secret_env(mut self, key: &'static str, secret: &Secret<String>) -> Result<Self, CmdError> {
        assert_variable_name(key);
        reject_nul(secret.expose())?;
        self.last_simple_mut().env.push((key, Word::Secret(secret.clone())));
        Ok(self)
    }

    /// Runs `next` only if this command succeeds: `self && next`.
    pub fn and(self, next: Cmd) -> Cmd {
        let mut commands = self.into_and_members();
        commands.extend(next.into_and_members());
        Cmd {
            node: Node::And(commands),
        }
    }

    /// Feeds this command's stdout into `next`: `self | next`.
    pub fn pipe(self, next: Cmd) -> Cmd {
        let mut commands = self.into_pipe_members();
        commands.extend(next.into_pipe_members());
        Cmd {
            node: Node::Pipe(commands),
        }
    }

    /// The real shell text, secrets included. Only the executor should call this, and
    /// it must never log the result.
    pub fn render_for_execution(&self) -> String {
        self.render(Rendering::Execution)
    }

    /// Every secret value in this command, so captured output can be scrubbed of them.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = Vec::new();
        self.collect_secrets(&mut secrets);
        secrets
    }

    fn collect_secrets<'a>(&'a self, secrets: &mut Vec<&'a str>) {
        match &self.node {
            Node::Simple(simple) => {
                let env_words = simple.env.iter().map(|(_, word)| word);
                for word in env_words.chain(&simple.words) {
                    if let Word::Secret(secret) = word {
                        secrets.push(secret.expose());
                    }
                }
            }
            Node::And(commands) | Node::Pipe(commands) => {
                for command in commands {
                    command.collect_secrets(secrets);
                }
            }
        }
    }

    fn last_simple_mut(&mut self) -> &mut SimpleCmd {
        match &mut self.node {
            Node::Simple(simple) => simple,
            Node::And(commands) | Node::Pipe(commands) => commands
                .last_mut()
                .expect("compound commands are built from at least two commands")
                .last_simple_mut(),
        }
    }

    fn into_and_members(self) -> Vec<Cmd> {
        match self.node {
            Node::And(commands) => commands,
            node => vec![Cmd { node }],
        }
    }

    fn into_pipe_members(self) -> Vec<Cmd> {
        match self.node {
            Node::Pipe(commands) => commands,
            node => vec![Cmd { node }],
        }
    }

    fn render(&self, rendering: Rendering) -> String {
        let mut out = Vec::new();
        self.render_into(rendering, &mut out);
        String::from_utf8(out).expect("quoting UTF-8 text only inserts ASCII between characters")
    }

    fn render_into(&self, rendering: Rendering, out: &mut Vec<u8>) {
        match &self.node {
            Node::Simple(simple) => {
                let mut first = true;
                for (key, word) in &simple.env {
                    separate(&mut first, out);
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'=');
                    word.render_into(rendering, out);
                }
                for word in &simple.words {
                    separate(&mut first, out);
                    word.render_into(rendering, out);
                }
            }
            Node::And(commands) => {
                for (position, command) in commands.iter().enumerate() {
                    if position > 0 {
                        out.extend_from_slice(b" && ");
                    }
                    command.render_into(rendering, out);
                }
            }
            Node::Pipe(commands) => {
                for (position, command) in commands.iter().enumerate() {
                    if position > 0 {
                        out.extend_from_slice(b" | ");
                    }
                    // `&&` binds looser than `|`, so an `&&` list inside a pipeline is
                    // grouped to keep the meaning it was built with.
                    if matches!(command.node, Node::And(_)) {
                        out.extend_from_slice(b"{ ");
                        command.render_into(rendering, out);
                        out.extend_from_slice(b"; }");
                    } else {
                        command.render_into(rendering, out);
                    }
                }
            }
        }
    }
}

impl Word {
    fn render_into(&self, rendering: Rendering, out: &mut Vec<u8>) {
        match self {
            Word::Literal(text) => out.extend_from_slice(text.as_bytes()),
            Word::Quoted(value) => Sh::quote_into_vec(value.as_str(), out),
            Word::Secret(_) if rendering == Rendering::Preview => out.extend_from_slice(MASK.as_bytes()),
            Word::Secret(secret) => Sh::quote_into_vec(secret.expose().as_str(), out),
        }
    }
}

/// Quotes `text` for POSIX `sh`, for showing values unambiguously outside a command.
pub(crate) fn quoted(text: &str) -> String {
    String::from_utf8(Sh::quote_vec(text)).expect("quoting UTF-8 text only inserts ASCII between characters")
}

/// Writes a space before every word but the first.
fn separate(first: &mut bool, out: &mut Vec<u8>) {
    if !*first {
        out.push(b' ');
    }
    *first = false;
}

fn assert_variable_name(key: &str) {
    let mut characters = key.chars();
    let valid = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_');
    assert!(valid, "environment variable name {key:?} is not a shell variable name");
}

/// The masked preview: secrets print as `***`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Rendering::Preview))
    }
}

/// Debug shows the masked preview too, so `{:?}` cannot leak a secret.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cmd").field(&self.to_string()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Secret<String> {
        Secret::from("s3cr3t pass'word")
    }

    #[test]
    fn literals_print_as_written_and_arguments_are_quoted() {
        let cmd = Cmd::new("apt-get")
            .lit("install")
            .lit("-y")
            .lit("--")
            .try_arg("nginx")
            .unwrap()
            .try_arg("it's; rm -rf /")
            .unwrap()
            .try_arg("")
            .unwrap();
        assert_eq!(cmd.to_string(), r"apt-get install -y -- nginx it\'s'; rm -rf /' ''");
        assert_eq!(cmd.render_for_execution(), cmd.to_string());
    }

    #[test]
    fn shell_args_quote_as_commands_write_them() {
        let arg = ShellArg::new("it's $(id) ok").unwrap();
        assert_eq!(arg.quoted(), r"it\'s' $(id) ok'");
        assert_eq!(arg.quoted(), Cmd::new("echo").arg(&arg).to_string()["echo ".len()..]);
        assert_eq!(ShellArg::new("plain-word_1.0").unwrap().quoted(), "plain-word_1.0");
        assert_eq!(ShellArg::new("").unwrap().quoted(), "''");
    }

    #[test]
    fn numbers_and_validated_values_are_arguments_without_a_check() {
        let path: crate::RemotePath = "/srv/my site".parse().unwrap();
        let cmd = Cmd::new("chmod").lit("0644").arg(&path).arg(42u16);
        assert_eq!(cmd.to_string(), "chmod 0644 /srv/my' site' 42");
    }

    #[test]
    fn nul_bytes_are_refused_everywhere() {
        let nul = CmdError::NulByte { position: 1 };
        assert_eq!(ShellArg::new("a\0b"), Err(nul.clone()));
        assert_eq!(ShellArg::try_from("a\0b".to_owned()), Err(nul.clone()));
        assert_eq!(Cmd::new("echo").try_arg("a\0b").unwrap_err(), nul);
        let secret = Secret::from("a\0b");
        assert_eq!(Cmd::new("echo").secret_arg(&secret).unwrap_err(), nul);
        assert_eq!(Cmd::new("echo").secret_env("PASSWORD", &secret).unwrap_err(), nul);
        assert_eq!(
            nul.to_string(),
            "a shell argument cannot contain a NUL byte (found at byte 1)"
        );
    }

    #[test]
    fn secrets_are_masked_in_display_and_debug_but_not_in_execution() {
        let password = password();
        let cmd = Cmd::new("mysql")
            .lit("-u")
            .lit("root")
            .secret_env("MYSQL_PWD", &password)
            .unwrap()
            .lit("-e")
            .secret_arg(&password)
            .unwrap();
        assert_eq!(cmd.to_string(), "MYSQL_PWD=*** mysql -u root -e ***");
        assert_eq!(format!("{cmd:?}"), "Cmd(\"MYSQL_PWD=*** mysql -u root -e ***\")");
        assert_eq!(
            cmd.render_for_execution(),
            r"MYSQL_PWD=s3cr3t' pass'\'word mysql -u root -e s3cr3t' pass'\'word"
        );
        assert_eq!(cmd.secrets(), vec!["s3cr3t pass'word", "s3cr3t pass'word"]);
    }

    #[test]
    fn secrets_are_found_inside_compound_commands() {
        let token = Secret::from("tok");
        let cmd = Cmd::new("true")
            .and(Cmd::new("printf").lit("%s").secret_arg(&token).unwrap())
            .pipe(Cmd::new("cat"));
        assert_eq!(cmd.secrets(), vec!["tok"]);
        assert!(!cmd.to_string().contains("tok"));
        assert!(cmd.render_for_execution().contains("tok"));
    }

    #[test]
    fn environment_assignments_come_before_the_program() {
        let cmd = Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", ShellArg::new("noninteractive").unwrap())
            .lit("update");
        assert_eq!(cmd.to_string(), "DEBIAN_FRONTEND=noninteractive apt-get update");
    }

    #[test]
    #[should_panic(expected = "is not a shell variable name")]
    fn environment_names_must_be_variable_names() {
        let _ = Cmd::new("env").env("BAD NAME", 1u8);
    }

    #[test]
    fn and_lists_and_pipelines_keep_their_meaning() {
        let update = Cmd::new("apt-get").lit("update");
        let install = Cmd::new("apt-get").lit("install").lit("-y").lit("nginx");
        let and_list = update.clone().and(install.clone());
        assert_eq!(
            and_list.clone().and(Cmd::new("nginx").lit("-t")).to_string(),
            "apt-get update && apt-get install -y nginx && nginx -t"
        );
        assert_eq!(
            and_list.clone().pipe(Cmd::new("tail").lit("-n").lit("5")).to_string(),
            "{ apt-get update && apt-get install -y nginx; } | tail -n 5"
        );
        assert_eq!(
            Cmd::new("cat")
                .pipe(Cmd::new("sort"))
                .pipe(Cmd::new("uniq"))
                .and(update)
                .to_string(),
            "cat | sort | uniq && apt-get update"
        );
        assert_eq!(
            Cmd::new("dpkg-query")
                .lit("-W")
                .pipe(Cmd::new("grep"))
                .lit("-F")
                .arg(7u8)
                .to_string(),
            "dpkg-query -W | grep -F 7"
        );
    }
}

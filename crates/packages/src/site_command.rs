//! Site commands: a user runs one command, such as `php artisan migrate --force`, in
//! a site's current release directory. A single-command executor, shaped like every
//! other operation: its action is `Install` (as the seed's `SiteCommandInstaller`),
//! its milestones are "running" and "complete", and it reads no facts.
//!
//! # The boundary
//!
//! The command text is code the user means to run, so no quoting or deny-list can
//! make it "safe", and none is attempted (the PHP version's deny-list blocked honest
//! commands and let others through). What BrokeForge guarantees instead:
//!
//! - The text reaches the server's `bash` byte for byte as the one argument of
//!   `bash -l -c`, quoted by [`Cmd`]: no heredoc to break out of, no second
//!   interpretation on the way, so quotes, `$()`, backticks, `;` and newlines mean
//!   exactly what they mean when the user types them in a shell on the server.
//! - It runs as `brokeforge` (the site scope), never as root: the user's power is the
//!   power that account has, which is the same as with their own SSH login to it.
//! - It runs in the site's directory (`cd -- DIR`, the path quoted as data), with
//!   stdin closed so a command waiting for input ends at once, and with a timeout after
//!   which the executor kills it.
//! - `-l` gives the command a login shell's environment (`/etc/profile`, then
//!   `~/.profile`), so `PATH` holds what the user sees when they log in.
//!
//! Who may run a command on which site is decided before this, by the web layer's
//! ownership check. The application stores the output and the exit code in the
//! command history from the step's result; there is no package record to persist.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use brokeforge_core::{Cmd, Plan, RemotePath, ShellArg};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::facts::{FactError, FactProbe, ProbeOutputs};
use crate::framework::{Action, Operation, Package, Scope};
use crate::names::PackageName;

/// Commands run in a site's directory, a site package.
pub struct SiteCommand;

impl Package for SiteCommand {
    const NAME: PackageName = PackageName::SiteCommand;
    const SCOPE: Scope = Scope::Site;
}

/// Why a command text is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SiteCommandTextError {
    #[error("enter a command to run")]
    Blank,
    #[error("a command can be at most {max} characters long")]
    TooLong { max: usize },
    #[error("a command cannot contain a NUL byte")]
    NulByte,
}

/// The text of a command, passed to `bash` as is: not blank, at most 2000
/// characters, without NUL bytes (which no program argument can hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteCommandText(String);

impl SiteCommandText {
    /// The longest command, in characters.
    pub const MAX_LENGTH: usize = 2000;

    /// The command as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn shell_arg(&self) -> ShellArg {
        ShellArg::new(self.0.as_str()).expect("NUL bytes are refused")
    }
}

impl FromStr for SiteCommandText {
    type Err = SiteCommandTextError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err(SiteCommandTextError::Blank);
        }
        if text.chars().count() > Self::MAX_LENGTH {
            return Err(SiteCommandTextError::TooLong { max: Self::MAX_LENGTH });
        }
        if text.contains('\0') {
            return Err(SiteCommandTextError::NulByte);
        }
        Ok(SiteCommandText(text.to_owned()))
    }
}

impl fmt::Display for SiteCommandText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SiteCommandText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SiteCommandText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Why a command timeout is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a command timeout must be from 1 to {max} seconds", max = CommandTimeout::MAX_SECONDS)]
pub struct CommandTimeoutError;

/// How long a site command may run: 1 second to 1 hour, 2 minutes by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct CommandTimeout(Duration);

impl CommandTimeout {
    /// The longest timeout, in seconds.
    pub const MAX_SECONDS: u64 = 60 * 60;

    /// A timeout of `seconds`.
    pub fn from_secs(seconds: u64) -> Result<Self, CommandTimeoutError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(CommandTimeout(Duration::from_secs(seconds)))
        } else {
            Err(CommandTimeoutError)
        }
    }

    /// The timeout as a duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl Default for CommandTimeout {
    fn default() -> Self {
        CommandTimeout(Duration::from_secs(120))
    }
}

impl TryFrom<u64> for CommandTimeout {
    type Error = CommandTimeoutError;

    fn try_from(seconds: u64) -> Result<Self, Self::Error> {
        CommandTimeout::from_secs(seconds)
    }
}

impl From<CommandTimeout> for u64 {
    fn from(timeout: CommandTimeout) -> u64 {
        timeout.0.as_secs()
    }
}

/// What running a site command needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCommandInput {
    /// The site's current release directory, such as `/home/brokeforge/example.com`.
    pub site_directory: RemotePath,
    /// The command to run there.
    pub command: SiteCommandText,
    /// How long it may run, in seconds.
    #[serde(default)]
    pub timeout: CommandTimeout,
}

milestones! {
    /// Milestones of running a site command.
    pub enum SiteCommandRunMilestone {
        RunCommand => ("run_command", "Running the command"),
        Complete => ("complete", "Complete"),
    }
}

/// Runs one command in a site's directory as `brokeforge`.
pub struct SiteCommandRun;

impl Operation for SiteCommandRun {
    type Package = SiteCommand;
    const ACTION: Action = Action::Install;
    type Milestone = SiteCommandRunMilestone;
    type Input = SiteCommandInput;
    type Facts = ();
    type Error = Infallible;

    fn fact_probes(_input: &SiteCommandInput) -> Vec<FactProbe> {
        Vec::new()
    }

    fn parse_facts(_input: &SiteCommandInput, _outputs: &ProbeOutputs) -> Result<(), FactError> {
        Ok(())
    }

    fn plan(input: &SiteCommandInput, _facts: &()) -> Result<Plan, Infallible> {
        let mut plan = Self::plan_writer();
        plan.milestone(SiteCommandRunMilestone::RunCommand).run_with_timeout(
            Cmd::new("cd").lit("--").arg(&input.site_directory).and(
                Cmd::new("bash")
                    .lit("-l")
                    .lit("-c")
                    .arg(input.command.shell_arg())
                    .lit("</dev/null"),
            ),
            input.timeout.duration(),
        );
        plan.milestone(SiteCommandRunMilestone::Complete);
        Ok(plan.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_texts_are_checked_only_for_what_no_shell_can_carry() {
        assert_eq!("".parse::<SiteCommandText>(), Err(SiteCommandTextError::Blank));
        assert_eq!(" \n\t".parse::<SiteCommandText>(), Err(SiteCommandTextError::Blank));
        assert_eq!("a\0b".parse::<SiteCommandText>(), Err(SiteCommandTextError::NulByte));
        assert_eq!(
            "x".repeat(2001).parse::<SiteCommandText>(),
            Err(SiteCommandTextError::TooLong { max: 2000 })
        );
        let hostile = "echo 'a' \"$(id)\" `id`; rm -rf ~ &&\nEOF\n--help";
        assert_eq!(hostile.parse::<SiteCommandText>().unwrap().as_str(), hostile);
    }

    #[test]
    fn timeouts_are_bounded() {
        assert_eq!(CommandTimeout::default().duration(), Duration::from_secs(120));
        assert!(CommandTimeout::from_secs(0).is_err());
        assert!(CommandTimeout::from_secs(3601).is_err());
        let input: SiteCommandInput = serde_json::from_str(
            r#"{"site_directory":"/home/brokeforge/example.com","command":"php artisan migrate --force"}"#,
        )
        .unwrap();
        assert_eq!(input.timeout, CommandTimeout::default());
        assert!(
            serde_json::from_str::<SiteCommandInput>(
                r#"{"site_directory":"/home/brokeforge/example.com","command":"ls","timeout":0}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<SiteCommandInput>(r#"{"site_directory":"/home/../etc","command":"ls"}"#).is_err()
        );
    }
}

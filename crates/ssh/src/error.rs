//! Errors of the SSH adapter. Each kind of failure has its own variant and a one-line
//! message written for the person reading the event in the UI, never a generic
//! "command failed". Messages name the command, not its position: users see steps
//! as the operation's milestones ("Step 2 of 4"), which the application layer adds.
//! The `step_index` fields are 0-based positions in `Plan::steps()`.
//!
//! Every text that came from a server (stderr tails) is scrubbed of the plan's
//! secrets before it is stored in an error, and commands appear in their masked form.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// What went wrong, as a stable name to store with events and to branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A private key or a host key could not be parsed or used.
    InvalidKey,
    /// The server could not be reached: DNS, connection refused, or a timeout.
    Unreachable,
    /// The server refused the key for the user.
    AuthRefused,
    /// The server presented a host key other than the pinned one.
    HostKeyMismatch,
    /// A step ran longer than its timeout and was killed.
    CommandTimeout,
    /// The connection broke while a step was running.
    ConnectionLost,
    /// A command exited with a non-zero code.
    CommandFailed,
    /// A file could not be written on the server.
    UploadFailed,
    /// The observer could not record progress or a record (for example the database
    /// was unavailable), so the plan stopped.
    ObserverFailed,
}

impl ErrorKind {
    /// The stable name, such as `host_key_mismatch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::AuthRefused => "auth_refused",
            ErrorKind::HostKeyMismatch => "host_key_mismatch",
            ErrorKind::CommandTimeout => "command_timeout",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::CommandFailed => "command_failed",
            ErrorKind::UploadFailed => "upload_failed",
            ErrorKind::ObserverFailed => "observer_failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of the SSH adapter. `Display` gives the one-line human message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SshError {
    #[error("invalid SSH key: {reason}")]
    InvalidKey { reason: String },

    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },

    #[error("{address} refused the SSH key {key_fingerprint} for user {user}")]
    AuthRefused {
        address: String,
        user: String,
        key_fingerprint: String,
    },

    #[error(
        "host key mismatch for {address}: expected {}, the server presented {presented}; refusing to connect",
        expected.join(" or ")
    )]
    HostKeyMismatch {
        address: String,
        /// Fingerprints of the pinned keys.
        expected: Vec<String>,
        /// Fingerprint of the key the server presented.
        presented: String,
    },

    #[error("the command timed out after {}: {}", DisplayDuration(*limit), one_line(command))]
    CommandTimeout {
        step_index: usize,
        command: String,
        limit: Duration,
        stderr_tail: String,
    },

    #[error("{}", connection_lost_message(address, *step_index, command.as_deref(), reason))]
    ConnectionLost {
        address: String,
        step_index: Option<usize>,
        command: Option<String>,
        reason: String,
    },

    #[error(
        "the command failed with exit code {exit_code}: {}: {}",
        one_line(command),
        last_line_or(stderr_tail, "(no error output)")
    )]
    CommandFailed {
        step_index: usize,
        command: String,
        exit_code: i32,
        stderr_tail: String,
    },

    #[error("the upload of {path} failed: {}", last_line_or(reason, "unknown reason"))]
    UploadFailed {
        step_index: usize,
        path: String,
        reason: String,
    },

    #[error("could not record progress: {}", one_line(reason))]
    ObserverFailed { step_index: usize, reason: String },
}

impl SshError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SshError::InvalidKey { .. } => ErrorKind::InvalidKey,
            SshError::Unreachable { .. } => ErrorKind::Unreachable,
            SshError::AuthRefused { .. } => ErrorKind::AuthRefused,
            SshError::HostKeyMismatch { .. } => ErrorKind::HostKeyMismatch,
            SshError::CommandTimeout { .. } => ErrorKind::CommandTimeout,
            SshError::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            SshError::CommandFailed { .. } => ErrorKind::CommandFailed,
            SshError::UploadFailed { .. } => ErrorKind::UploadFailed,
            SshError::ObserverFailed { .. } => ErrorKind::ObserverFailed,
        }
    }

    /// The 0-based index of the plan step that failed, when a step failed.
    pub fn step_index(&self) -> Option<usize> {
        match self {
            SshError::CommandTimeout { step_index, .. }
            | SshError::CommandFailed { step_index, .. }
            | SshError::UploadFailed { step_index, .. }
            | SshError::ObserverFailed { step_index, .. } => Some(*step_index),
            SshError::ConnectionLost { step_index, .. } => *step_index,
            _ => None,
        }
    }

    /// The masked text of the command that failed, when a command failed.
    pub fn command(&self) -> Option<&str> {
        match self {
            SshError::CommandTimeout { command, .. } | SshError::CommandFailed { command, .. } => Some(command),
            SshError::ConnectionLost { command, .. } => command.as_deref(),
            _ => None,
        }
    }

    /// The exit code of the command that failed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            SshError::CommandFailed { exit_code, .. } => Some(*exit_code),
            _ => None,
        }
    }

    /// The scrubbed end of the failed step's error output.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            SshError::CommandTimeout { stderr_tail, .. } | SshError::CommandFailed { stderr_tail, .. } => {
                Some(stderr_tail)
            }
            SshError::UploadFailed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether running the same plan again later may succeed without anyone changing
    /// anything: the server was unreachable or the connection broke.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unreachable | ErrorKind::ConnectionLost)
    }
}

fn connection_lost_message(address: &str, step_index: Option<usize>, command: Option<&str>, reason: &str) -> String {
    match (step_index, command) {
        (Some(_), Some(command)) => format!("connection to {address} lost during {}: {reason}", one_line(command)),
        _ => format!("connection to {address} lost: {reason}"),
    }
}

/// The longest command text a message shows; the full text stays in the field.
const MAX_COMMAND_CHARS: usize = 160;
/// The longest error-output line a message shows.
const MAX_LINE_CHARS: usize = 240;

/// Shows `text` on one line: control characters are escaped and long text is cut.
fn one_line(text: &str) -> String {
    let mut line = String::new();
    for (count, character) in text.chars().enumerate() {
        if count == MAX_COMMAND_CHARS {
            line.push('…');
            break;
        }
        match character {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => line.push_str(&c.escape_unicode().to_string()),
            c => line.push(c),
        }
    }
    line
}

/// The last non-empty line of `text`, trimmed and cut, or `fallback`.
fn last_line_or(text: &str, fallback: &str) -> String {
    match text.lines().rev().map(str::trim).find(|line| !line.is_empty()) {
        Some(line) => {
            let mut shown: String = line.chars().take(MAX_LINE_CHARS).collect();
            if line.chars().count() > MAX_LINE_CHARS {
                shown.push('…');
            }
            one_line(&shown)
        }
        None => fallback.to_owned(),
    }
}

/// Prints a duration the way people read it: `1s`, `1.5s`, `250ms`, `10m`.
pub(crate) struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = self.0;
        let seconds = duration.as_secs();
        if duration < Duration::from_secs(1) {
            write!(f, "{}ms", duration.as_millis())
        } else if duration.subsec_millis() != 0 {
            write!(f, "{:.1}s", duration.as_secs_f64())
        } else if seconds.is_multiple_of(3600) {
            write!(f, "{}h", seconds / 3600)
        } else if seconds.is_multiple_of(60) {
            write!(f, "{}m", seconds / 60)
        } else {
            write!(f, "{seconds}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_line_and_names_what_matters() {
        let errors = [
            (
                SshError::Unreachable {
                    address: "203.0.113.7:22".into(),
                    reason: "connection refused".into(),
                },
                "cannot reach 203.0.113.7:22: connection refused",
            ),
            (
                SshError::AuthRefused {
                    address: "203.0.113.7:22".into(),
                    user: "root".into(),
                    key_fingerprint: "SHA256:abc".into(),
                },
                "203.0.113.7:22 refused the SSH key SHA256:abc for user root",
            ),
            (
                SshError::HostKeyMismatch {
                    address: "h:22".into(),
                    expected: vec!["SHA256:a".into(), "SHA256:b".into()],
                    presented: "SHA256:c".into(),
                },
                "host key mismatch for h:22: expected SHA256:a or SHA256:b, the server presented SHA256:c; refusing to connect",
            ),
            (
                SshError::CommandTimeout {
                    step_index: 2,
                    command: "sleep 30".into(),
                    limit: Duration::from_secs(1),
                    stderr_tail: String::new(),
                },
                "the command timed out after 1s: sleep 30",
            ),
            (
                SshError::CommandFailed {
                    step_index: 0,
                    command: "printf 'a\nb'".into(),
                    exit_code: 3,
                    stderr_tail: "first\nE: Unable to locate package nginx-full\n\n".into(),
                },
                "the command failed with exit code 3: printf 'a\\nb': E: Unable to locate package nginx-full",
            ),
            (
                SshError::CommandFailed {
                    step_index: 0,
                    command: "false".into(),
                    exit_code: 1,
                    stderr_tail: String::new(),
                },
                "the command failed with exit code 1: false: (no error output)",
            ),
            (
                SshError::ConnectionLost {
                    address: "h:22".into(),
                    step_index: Some(4),
                    command: Some("apt-get update".into()),
                    reason: "the server closed the connection".into(),
                },
                "connection to h:22 lost during apt-get update: the server closed the connection",
            ),
            (
                SshError::UploadFailed {
                    step_index: 1,
                    path: "/etc/x".into(),
                    reason: "mv: cannot move\n".into(),
                },
                "the upload of /etc/x failed: mv: cannot move",
            ),
        ];
        for (error, expected) in errors {
            let message = error.to_string();
            assert_eq!(message, expected);
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    #[test]
    fn durations_print_in_their_largest_unit() {
        let shown: Vec<String> = [250, 1000, 1500, 60_000, 600_000, 7_200_000]
            .into_iter()
            .map(|millis| DisplayDuration(Duration::from_millis(millis)).to_string())
            .collect();
        assert_eq!(shown, ["250ms", "1s", "1.5s", "1m", "10m", "2h"]);
    }
}

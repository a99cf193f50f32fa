//! The remote step runner: a fixed bash script that runs a plan's commands and
//! uploads on the server through one SSH channel, and the framing around it.
//!
//! The channel executes `exec bash --norc --noprofile -s`; its stdin carries the
//! script below, then a line with a random marker token, then one NUL-separated
//! frame per step:
//!
//! ```text
//! run    NUL index NUL limit_us NUL grace_us NUL command NUL
//! upload NUL index NUL path NUL mode NUL owner NUL size NUL <size bytes>
//! ```
//!
//! Commands and file contents therefore travel as data on stdin: nothing secret is
//! ever in a process's argv, and no value is pasted into shell text. Each command
//! runs in a forked subshell that is its own process group. A watchdog process,
//! started once per run, receives `start <index> <pgid> <limit> <grace>` and `end`
//! lines from the runner and, when a step's limit passes, sends SIGTERM to its
//! group, then SIGKILL after the grace period: the semantics of `timeout
//! --kill-after`, without a `timeout` and a `bash` process per step. Measured here:
//! `timeout -k 5 N bash -c …` costs 10–20 ms per step on a loaded 2-core machine, the
//! forked subshell 1–2 ms. The watchdog outlives a runner that dies, so a limit
//! holds even when the connection to the control plane is gone. A step whose exit
//! code is not 0 after its limit passed counts as timed out.
//!
//! After each step the runner writes a marker line to stderr and then one to stdout:
//!
//! ```text
//! \n<token> <index>
//! \n<token> <index> <exit|timeout> <code> <microseconds>
//! ```
//!
//! The token is 128 random bits drawn for each run and the command's output never
//! sees it, so output cannot forge a marker. The newline before the token belongs to
//! the marker, so output that does not end with a newline is kept exactly. The
//! runner stops after the first step that fails.

use std::time::Duration;

use brokeforge_core::{FileContents, RemotePath, UnixUserName};

/// The command the channel executes. It is the same for every run and holds no data.
pub(crate) const RUNNER_COMMAND: &str = "exec bash --norc --noprofile -s";

/// The runner, read by `bash -s`. The last line calls `bf_run` only once bash has
/// read the whole script, so that `bf_run` reads the frames after it from stdin.
pub(crate) const RUNNER_SCRIPT: &str = r#"# BrokeForge step runner: see crates/ssh/src/runner.rs.
bf_watch() {
  local kind index pid limit grace deadline left wait_for status
  while IFS=' ' read -r kind index pid limit grace; do
    [ "$kind" = start ] || continue
    deadline=$(( ${EPOCHREALTIME/[.,]/} + limit ))
    while :; do
      left=$(( deadline - ${EPOCHREALTIME/[.,]/} ))
      (( left > 0 )) || break
      printf -v wait_for '%d.%06d' $(( left / 1000000 )) $(( left % 1000000 ))
      IFS=' ' read -r -t "$wait_for" kind index
      status=$?
      if (( status == 0 )); then
        [ "$kind" = end ] && continue 2
      elif (( status > 128 )); then
        break
      else
        sleep "$wait_for"
        break
      fi
    done
    kill -TERM -- "-$pid" 2>/dev/null
    printf -v wait_for '%d.%06d' $(( grace / 1000000 )) $(( grace % 1000000 ))
    IFS=' ' read -r -t "$wait_for" kind index
    status=$?
    (( status == 0 || status > 128 )) || sleep "$wait_for"
    kill -KILL -- "-$pid" 2>/dev/null
  done
}
bf_upload() {
  local bf_temp="${bf_path%/*}/.bf-upload-$SRANDOM$SRANDOM"
  if ! ( umask 077 && set -C && exec head -c "$bf_size" >"$bf_temp" ); then
    rm -f -- "$bf_temp"
    return 1
  fi
  if [ "$(stat -c %s -- "$bf_temp")" != "$bf_size" ]; then
    printf 'upload: received fewer than %s bytes\n' "$bf_size" >&2
    rm -f -- "$bf_temp"
    return 1
  fi
  if ! { chmod -- "$bf_mode" "$bf_temp" &&
    { [ -z "$bf_owner" ] || chown -- "$bf_owner:" "$bf_temp"; } &&
    mv -fT -- "$bf_temp" "$bf_path"; }; then
    rm -f -- "$bf_temp"
    return 1
  fi
}
bf_run() {
  local bf_token bf_kind bf_index bf_limit bf_grace bf_command bf_path bf_mode bf_owner bf_size
  local bf_watch_fd bf_pid bf_outcome bf_code bf_started bf_elapsed
  set -m
  IFS= read -r bf_token || return 90
  exec {bf_watch_fd}> >(bf_watch >/dev/null 2>&1) || return 91
  while IFS= read -r -d '' bf_kind; do
    case $bf_kind in
      run)
        IFS= read -r -d '' bf_index && IFS= read -r -d '' bf_limit &&
          IFS= read -r -d '' bf_grace && IFS= read -r -d '' bf_command || return 92
        bf_started=${EPOCHREALTIME/[.,]/}
        ( unset bf_token bf_watch_fd; eval "$bf_command" ) </dev/null &
        bf_pid=$!
        printf 'start %s %s %s %s\n' "$bf_index" "$bf_pid" "$bf_limit" "$bf_grace" >&"$bf_watch_fd"
        wait "$bf_pid" 2>/dev/null
        bf_code=$?
        printf 'end %s\n' "$bf_index" >&"$bf_watch_fd"
        bf_elapsed=$(( ${EPOCHREALTIME/[.,]/} - bf_started ))
        bf_outcome=exit
        (( bf_code == 0 || bf_elapsed < bf_limit )) || bf_outcome=timeout
        ;;
      upload)
        IFS= read -r -d '' bf_index && IFS= read -r -d '' bf_path && IFS= read -r -d '' bf_mode &&
          IFS= read -r -d '' bf_owner && IFS= read -r -d '' bf_size || return 92
        bf_started=${EPOCHREALTIME/[.,]/}
        bf_upload
        bf_code=$?
        bf_elapsed=$(( ${EPOCHREALTIME/[.,]/} - bf_started ))
        bf_outcome=exit
        ;;
      *) return 93 ;;
    esac
    printf '\n%s %s\n' "$bf_token" "$bf_index" >&2 &&
      printf '\n%s %s %s %s %s\n' "$bf_token" "$bf_index" "$bf_outcome" "$bf_code" "$bf_elapsed" || return 94
    [ "$bf_code" -eq 0 ] || return 0
  done
  return 0
}
bf_run; exit $?
"#;

/// A fresh marker token: 128 random bits as 32 hex digits.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator works");
    hex::encode(bytes)
}

/// The start of the runner's input: the script and the token line.
pub(crate) fn preamble(token: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RUNNER_SCRIPT.len() + token.len() + 1);
    bytes.extend_from_slice(RUNNER_SCRIPT.as_bytes());
    bytes.extend_from_slice(token.as_bytes());
    bytes.push(b'\n');
    bytes
}

/// Appends a frame that runs `command` (the rendered shell text, NUL-free).
pub(crate) fn push_run_frame(out: &mut Vec<u8>, index: usize, limit: Duration, grace: Duration, command: &str) {
    debug_assert!(!command.contains('\0'), "Cmd refuses NUL bytes");
    push_field(out, b"run");
    push_field(out, index.to_string().as_bytes());
    push_field(out, microseconds(limit).to_string().as_bytes());
    push_field(out, microseconds(grace).to_string().as_bytes());
    push_field(out, command.as_bytes());
}

/// Appends the header of an upload frame; the `contents` follow it.
pub(crate) fn push_upload_header(
    out: &mut Vec<u8>,
    index: usize,
    path: &RemotePath,
    mode: u32,
    owner: Option<&UnixUserName>,
    contents: &FileContents,
) {
    push_field(out, b"upload");
    push_field(out, index.to_string().as_bytes());
    push_field(out, path.as_str().as_bytes());
    push_field(out, format!("{mode:04o}").as_bytes());
    push_field(out, owner.map_or("", UnixUserName::as_str).as_bytes());
    push_field(out, contents.expose_bytes().len().to_string().as_bytes());
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field);
    out.push(0);
}

/// A limit in whole microseconds, at least 1 so that a zero limit still times out.
fn microseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX / 4).max(1)
}

/// How a step ended, as the stdout marker tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepEnd {
    pub(crate) index: usize,
    pub(crate) timed_out: bool,
    pub(crate) exit_code: i32,
    pub(crate) duration: Duration,
}

/// One piece of a demultiplexed stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Output of the current step.
    Output(Vec<u8>),
    /// The fields of a marker line (after the token).
    Marker(String),
}

/// Splits one stream into step output and marker lines.
#[derive(Debug)]
pub(crate) struct MarkerSplitter {
    /// `\n` followed by the token and a space.
    needle: Vec<u8>,
    pending: Vec<u8>,
}

impl MarkerSplitter {
    pub(crate) fn new(token: &str) -> MarkerSplitter {
        let mut needle = Vec::with_capacity(token.len() + 2);
        needle.push(b'\n');
        needle.extend_from_slice(token.as_bytes());
        needle.push(b' ');
        MarkerSplitter {
            needle,
            pending: Vec::new(),
        }
    }

    /// Feeds `chunk` and returns the pieces it completes, in order. Bytes that could
    /// be the start of a marker are held until the next chunk.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<Piece> {
        self.pending.extend_from_slice(chunk);
        let mut pieces = Vec::new();
        let mut start = 0;
        loop {
            let text = &self.pending[start..];
            match find_marker_start(text, &self.needle) {
                MarkerSearch::Found(position) => {
                    let fields_start = position + self.needle.len();
                    let Some(line_length) = text[fields_start..].iter().position(|byte| *byte == b'\n') else {
                        // The marker line is not complete yet: emit what precedes it.
                        if position > 0 {
                            pieces.push(Piece::Output(text[..position].to_vec()));
                        }
                        start += position;
                        break;
                    };
                    if position > 0 {
                        pieces.push(Piece::Output(text[..position].to_vec()));
                    }
                    let fields = &text[fields_start..fields_start + line_length];
                    pieces.push(Piece::Marker(String::from_utf8_lossy(fields).into_owned()));
                    start += fields_start + line_length + 1;
                }
                MarkerSearch::PartialAt(position) => {
                    if position > 0 {
                        pieces.push(Piece::Output(text[..position].to_vec()));
                    }
                    start += position;
                    break;
                }
                MarkerSearch::None => {
                    if !text.is_empty() {
                        pieces.push(Piece::Output(text.to_vec()));
                    }
                    start = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..start);
        pieces
    }

    /// Ends the stream: whatever was held back is output.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

enum MarkerSearch {
    /// A whole needle starts here.
    Found(usize),
    /// The text ends with the beginning of a needle, starting here.
    PartialAt(usize),
    None,
}

fn find_marker_start(text: &[u8], needle: &[u8]) -> MarkerSearch {
    let mut from = 0;
    while let Some(offset) = text[from..].iter().position(|byte| *byte == b'\n') {
        let position = from + offset;
        let rest = &text[position..];
        if rest.len() >= needle.len() {
            if rest.starts_with(needle) {
                return MarkerSearch::Found(position);
            }
        } else if needle.starts_with(rest) {
            return MarkerSearch::PartialAt(position);
        }
        from = position + 1;
    }
    MarkerSearch::None
}

/// Parses the fields of a stdout marker: `<index> <exit|timeout> <code> <microseconds>`.
pub(crate) fn parse_step_end(fields: &str) -> Option<StepEnd> {
    let mut parts = fields.split(' ');
    let index = parts.next()?.parse().ok()?;
    let timed_out = match parts.next()? {
        "exit" => false,
        "timeout" => true,
        _ => return None,
    };
    let exit_code = parts.next()?.parse().ok()?;
    let micros: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(StepEnd {
        index,
        timed_out,
        exit_code,
        duration: Duration::from_micros(micros),
    })
}

/// Parses the fields of a stderr marker: `<index>`.
pub(crate) fn parse_stderr_end(fields: &str) -> Option<usize> {
    fields.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(token: &str, chunks: &[&[u8]]) -> Vec<Piece> {
        let mut splitter = MarkerSplitter::new(token);
        let mut pieces: Vec<Piece> = Vec::new();
        for chunk in chunks {
            pieces.extend(splitter.push(chunk));
        }
        let rest = splitter.finish();
        if !rest.is_empty() {
            pieces.push(Piece::Output(rest));
        }
        // Adjacent output pieces are joined so that chunking does not matter.
        let mut joined: Vec<Piece> = Vec::new();
        for piece in pieces {
            match (joined.last_mut(), piece) {
                (Some(Piece::Output(previous)), Piece::Output(more)) => previous.extend(more),
                (_, piece) => joined.push(piece),
            }
        }
        joined
    }

    #[test]
    fn markers_split_output_exactly_wherever_chunks_end() {
        let stream: &[u8] = b"line 1\nno newline at end\nT 0 exit 0 5\n\nT 1 exit 3 7\nTT 2 x\n\nT 2 exit 0 1\n";
        let expected = vec![
            Piece::Output(b"line 1\nno newline at end".to_vec()),
            Piece::Marker("0 exit 0 5".into()),
            Piece::Marker("1 exit 3 7".into()),
            Piece::Output(b"TT 2 x\n".to_vec()),
            Piece::Marker("2 exit 0 1".into()),
        ];
        for cut in 0..=stream.len() {
            for second in cut..=stream.len() {
                let pieces = split_all("T", &[&stream[..cut], &stream[cut..second], &stream[second..]]);
                assert_eq!(pieces, expected, "cut at {cut} and {second}");
            }
        }
    }

    #[test]
    fn output_that_merely_resembles_a_marker_stays_output() {
        let token = "0123456789abcdef0123456789abcdef";
        let stream = format!("\n{} 1 exit 0 1\nok\n{token}x\n\n{token} 0 exit 0 9\n", &token[..31]);
        let pieces = split_all(token, &[stream.as_bytes()]);
        assert_eq!(
            pieces,
            vec![
                Piece::Output(format!("\n{} 1 exit 0 1\nok\n{token}x\n", &token[..31]).into_bytes()),
                Piece::Marker("0 exit 0 9".into()),
            ]
        );
    }

    #[test]
    fn step_ends_parse_and_reject_garbage() {
        assert_eq!(
            parse_step_end("4 timeout 137 1000123"),
            Some(StepEnd {
                index: 4,
                timed_out: true,
                exit_code: 137,
                duration: Duration::from_micros(1_000_123)
            })
        );
        assert_eq!(parse_step_end("4 exit 0 12").map(|end| end.timed_out), Some(false));
        for garbage in ["", "4", "4 exit", "4 done 0 1", "x exit 0 1", "4 exit 0 1 extra"] {
            assert_eq!(parse_step_end(garbage), None, "{garbage:?}");
        }
        assert_eq!(parse_stderr_end("12"), Some(12));
        assert_eq!(parse_stderr_end("12 x"), None);
    }

    #[test]
    fn frames_are_nul_separated_fields() {
        let mut frames = Vec::new();
        push_run_frame(
            &mut frames,
            3,
            Duration::from_secs(2),
            Duration::from_millis(500),
            "echo 'a b'",
        );
        assert_eq!(frames, b"run\x003\x002000000\x00500000\x00echo 'a b'\x00");
        let mut frames = Vec::new();
        let path: RemotePath = "/etc/my file".parse().unwrap();
        let owner: UnixUserName = "www-data".parse().unwrap();
        push_upload_header(
            &mut frames,
            7,
            &path,
            0o640,
            Some(&owner),
            &FileContents::from(b"abc".to_vec()),
        );
        assert_eq!(frames, b"upload\x007\x00/etc/my file\x000640\x00www-data\x003\x00");
        assert_eq!(new_token().len(), 32);
        assert_ne!(new_token(), new_token());
    }

    /// The script must parse; `bash -n` checks it without running anything.
    #[test]
    fn the_runner_script_is_valid_bash() {
        let mut child = std::process::Command::new("bash")
            .args(["-n", "-s"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bash is installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(RUNNER_SCRIPT.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

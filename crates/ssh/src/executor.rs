//! The executor: carries out a [`Plan`] on one target and reports every step to a
//! [`PlanObserver`].
//!
//! Milestones and records are handed to the observer in plan order; commands and
//! uploads run on the server through one channel and the step runner of
//! [`crate::runner`], which receives all of them at once and runs them one after the
//! other, so a plan costs one channel and no round trip per step. Markers in the
//! output streams give each step its own exit code, duration, output and timeout.
//!
//! Callbacks come strictly in plan order: `on_step_started`, then `on_output` for that
//! step, then `on_step_finished`, then the milestones and records up to the next
//! command. Output is scrubbed of the plan's secrets before any callback, tail or
//! error sees it. The first failing step stops the plan with a typed [`SshError`].

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokeforge_core::{Cmd, Plan, Record, RemoteUser, Step};
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::time::Instant as TokioInstant;

use crate::error::{DisplayDuration, SshError};
use crate::pool::{Connection, PooledChannel, SshPool, Target};
use crate::runner::{self, MarkerSplitter, Piece, StepEnd};
use crate::scrub::{SecretSet, StreamScrubber, Tail};

/// How long an upload may take before the executor gives up on the server.
const UPLOAD_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Extra time the executor allows beyond a step's limit and kill grace before it
/// concludes that the server stopped answering.
const SERVER_SILENCE_ALLOWANCE: Duration = Duration::from_secs(15);
/// How long to wait for the channel to close once every step reported, in case a
/// step left a background process holding the output open.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The most output [`SshPool::run_command`] keeps per stream.
const COMMAND_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// An output stream of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A milestone the plan reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MilestoneReached {
    /// A stable identifier, such as `prepare_system`.
    pub key: &'static str,
    /// The text users see, such as `Preparing system`.
    pub label: &'static str,
    /// The milestone's number, counted from 1.
    pub index: u32,
    /// How many milestones the operation has.
    pub total: u32,
}

/// How a command or upload ended. Tails are scrubbed of the plan's secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The 0-based position of the step in `Plan::steps()`.
    pub step_index: usize,
    /// The exit code; 124 when the step timed out.
    pub exit_code: i32,
    /// Whether the step was killed for exceeding its timeout.
    pub timed_out: bool,
    /// How long the step ran on the server.
    pub duration: Duration,
    /// The end of the standard output (at most `PoolConfig::output_tail_bytes`).
    pub stdout_tail: String,
    /// The end of the standard error.
    pub stderr_tail: String,
}

/// Why an observer could not record something; the plan stops with
/// [`SshError::ObserverFailed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObserverError(pub String);

impl From<String> for ObserverError {
    fn from(message: String) -> Self {
        ObserverError(message)
    }
}

impl From<&str> for ObserverError {
    fn from(message: &str) -> Self {
        ObserverError(message.to_owned())
    }
}

/// Receives the progress of a plan, in plan order. The application layer writes
/// progress events and upserts records here; the web layer can stream `on_output`.
pub trait PlanObserver: Send + Sync {
    /// The plan reached a milestone.
    fn on_milestone(
        &self,
        step_index: usize,
        milestone: MilestoneReached,
    ) -> impl Future<Output = Result<(), ObserverError>> + Send;

    /// A command or upload started. `step` prints with secrets masked.
    fn on_step_started(&self, step_index: usize, step: &Step) -> impl Future<Output = ()> + Send {
        let _ = (step_index, step);
        async {}
    }

    /// A chunk of a step's output, scrubbed of the plan's secrets.
    fn on_output(&self, step_index: usize, stream: Stream, chunk: &[u8]) -> impl Future<Output = ()> + Send {
        let _ = (step_index, stream, chunk);
        async {}
    }

    /// A command or upload ended, successfully or not.
    fn on_step_finished(&self, report: &StepReport) -> impl Future<Output = Result<(), ObserverError>> + Send {
        let _ = report;
        async { Ok(()) }
    }

    /// Every step before this record succeeded: upsert it.
    fn on_persist(&self, step_index: usize, record: &Record) -> impl Future<Output = Result<(), ObserverError>> + Send;
}

/// What a finished plan did.
#[derive(Clone, Debug)]
pub struct PlanReport {
    /// One report per command and upload, in plan order.
    pub steps: Vec<StepReport>,
    /// Wall time from the call to the end, connection included.
    pub elapsed: Duration,
}

/// The complete output of one command run with [`SshPool::run_command`], scrubbed
/// of the command's secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Whether a non-zero exit code ends the run with an error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FailureMode {
    /// Plans: a failing step is an error.
    Error,
    /// Single commands: the exit code is the caller's to judge.
    Report,
}

impl SshPool {
    /// Runs `plan` on `target`, reporting every step to `observer`. Commands and
    /// uploads run as `target.user`; the caller picks the target whose user matches
    /// the plan's `RemoteUser`.
    pub async fn run_plan<O: PlanObserver>(
        &self,
        target: &Target,
        plan: &Plan,
        observer: &O,
    ) -> Result<PlanReport, SshError> {
        let started = Instant::now();
        let steps = execute(
            self,
            target,
            plan.steps(),
            &plan.secrets(),
            observer,
            FailureMode::Error,
        )
        .await?;
        Ok(PlanReport {
            steps,
            elapsed: started.elapsed(),
        })
    }

    /// Runs one command and returns its whole output and exit code, whatever the code
    /// (for fact probes such as `dpkg-query`). Timeouts and connection problems are
    /// errors.
    pub async fn run_command(&self, target: &Target, cmd: &Cmd, timeout: Duration) -> Result<CommandOutput, SshError> {
        let steps = [Step::Run {
            cmd: cmd.clone(),
            timeout,
            as_user: RemoteUser::Root,
        }];
        let capture = CaptureObserver::default();
        let reports = execute(self, target, &steps, &cmd.secrets(), &capture, FailureMode::Report).await?;
        let report = reports.into_iter().next().expect("one command gives one report");
        let (stdout, stderr) = capture.into_output();
        Ok(CommandOutput {
            exit_code: report.exit_code,
            stdout,
            stderr,
            duration: report.duration,
        })
    }
}

/// Collects a command's output for [`SshPool::run_command`].
#[derive(Default)]
struct CaptureObserver {
    output: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl CaptureObserver {
    fn into_output(self) -> (Vec<u8>, Vec<u8>) {
        self.output.into_inner().expect("capture lock")
    }
}

impl PlanObserver for CaptureObserver {
    async fn on_milestone(&self, _step_index: usize, _milestone: MilestoneReached) -> Result<(), ObserverError> {
        Ok(())
    }

    async fn on_output(&self, _step_index: usize, stream: Stream, chunk: &[u8]) {
        let mut output = self.output.lock().expect("capture lock");
        let buffer = match stream {
            Stream::Stdout => &mut output.0,
            Stream::Stderr => &mut output.1,
        };
        let room = COMMAND_OUTPUT_LIMIT.saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    async fn on_persist(&self, _step_index: usize, _record: &Record) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// Runs `steps` and returns the reports of its commands and uploads.
async fn execute<O: PlanObserver>(
    pool: &SshPool,
    target: &Target,
    steps: &[Step],
    secrets: &[&str],
    observer: &O,
    failure_mode: FailureMode,
) -> Result<Vec<StepReport>, SshError> {
    let remote: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, step)| matches!(step, Step::Run { .. } | Step::Upload { .. }))
        .map(|(index, _)| index)
        .collect();
    if remote.is_empty() {
        for (index, step) in steps.iter().enumerate() {
            report_local_step(observer, index, step).await?;
        }
        return Ok(Vec::new());
    }
    let pooled = pool.open_channel(target).await?;
    let secrets = Arc::new(SecretSet::new(secrets.iter().copied()));
    let token = runner::new_token();
    let tail_bytes = pool.config().output_tail_bytes;
    let progress = remote.iter().map(|_| StepProgress::new(&secrets, tail_bytes)).collect();
    let streams = [StreamCursor::new(&token), StreamCursor::new(&token)];
    let mut run = RemoteRun {
        pool,
        target,
        steps,
        remote,
        observer,
        failure_mode,
        token,
        progress,
        streams,
        active: 0,
        active_since: TokioInstant::now(),
        reports: Vec::new(),
        exit: None,
    };
    let result = run.drive(pooled).await;
    result.map(|()| run.reports)
}

/// Calls the observer for a milestone or a record.
async fn report_local_step<O: PlanObserver>(observer: &O, index: usize, step: &Step) -> Result<(), SshError> {
    let result = match step {
        Step::Milestone {
            key,
            label,
            index: milestone_index,
            total,
        } => {
            observer
                .on_milestone(
                    index,
                    MilestoneReached {
                        key,
                        label,
                        index: *milestone_index,
                        total: *total,
                    },
                )
                .await
        }
        Step::Persist(record) => observer.on_persist(index, record).await,
        Step::Run { .. } | Step::Upload { .. } => Ok(()),
    };
    result.map_err(|error| SshError::ObserverFailed {
        step_index: index,
        reason: error.0,
    })
}

/// Where one output stream is: which remote step its bytes belong to now.
struct StreamCursor {
    splitter: MarkerSplitter,
    /// Position in `RemoteRun::remote`.
    step: usize,
}

impl StreamCursor {
    fn new(token: &str) -> StreamCursor {
        StreamCursor {
            splitter: MarkerSplitter::new(token),
            step: 0,
        }
    }
}

/// The state of one remote step.
struct StepProgress {
    end: Option<StepEnd>,
    stderr_ended: bool,
    /// Raw output that arrived before the step became active.
    early_output: Vec<(Stream, Vec<u8>)>,
    scrubbers: [StreamScrubber; 2],
    tails: [Tail; 2],
}

impl StepProgress {
    fn new(secrets: &Arc<SecretSet>, tail_bytes: usize) -> StepProgress {
        StepProgress {
            end: None,
            stderr_ended: false,
            early_output: Vec::new(),
            scrubbers: [
                StreamScrubber::new(Arc::clone(secrets)),
                StreamScrubber::new(Arc::clone(secrets)),
            ],
            tails: [Tail::new(tail_bytes), Tail::new(tail_bytes)],
        }
    }

    fn is_complete(&self) -> bool {
        self.end.is_some() && self.stderr_ended
    }
}

fn stream_slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// One run of the step runner on one channel.
struct RemoteRun<'a, O> {
    pool: &'a SshPool,
    target: &'a Target,
    steps: &'a [Step],
    /// Plan indices of the commands and uploads, in order.
    remote: Vec<usize>,
    observer: &'a O,
    failure_mode: FailureMode,
    token: String,
    progress: Vec<StepProgress>,
    streams: [StreamCursor; 2],
    /// Position in `remote` of the step whose callbacks are running.
    active: usize,
    active_since: TokioInstant,
    reports: Vec<StepReport>,
    /// The runner's exit status or signal, once the server sent it.
    exit: Option<String>,
}

impl<O: PlanObserver> RemoteRun<'_, O> {
    async fn drive(&mut self, pooled: PooledChannel) -> Result<(), SshError> {
        let (channel, connection, slot) = pooled.into_parts();
        let (mut reader, writer) = channel.split();
        let result = self.drive_channel(&mut reader, &writer, &connection).await;
        // Closing our side lets the server free the session once the runner exits.
        let _ = writer.close().await;
        drop(slot);
        if result.is_err() && connection.is_closed() {
            self.pool.discard_connection(self.target, &connection).await;
        }
        result
    }

    async fn drive_channel(
        &mut self,
        reader: &mut ChannelReadHalf,
        writer: &ChannelWriteHalf<Msg>,
        connection: &Connection,
    ) -> Result<(), SshError> {
        writer
            .exec(true, runner::RUNNER_COMMAND)
            .await
            .map_err(|error| self.lost(format!("could not start the step runner ({error})")))?;
        let started_by = TokioInstant::now() + self.pool.config().connect_timeout;
        loop {
            match tokio::time::timeout_at(started_by, reader.wait()).await {
                Err(_) => return Err(self.lost("the server did not start the step runner".into())),
                Ok(None | Some(ChannelMsg::Close)) => return Err(self.channel_ended(connection)),
                Ok(Some(ChannelMsg::Success)) => break,
                Ok(Some(ChannelMsg::Failure)) => {
                    return Err(self.lost("the server refused to execute the step runner".into()));
                }
                Ok(Some(_)) => {}
            }
        }

        for index in 0..self.remote[0] {
            report_local_step(self.observer, index, &self.steps[index]).await?;
        }
        self.start_active().await;

        let input = zeroize::Zeroizing::new(self.runner_input());
        let write_input = async {
            writer.data(&input[..]).await?;
            writer.eof().await
        };
        tokio::pin!(write_input);
        let mut writing = true;
        let mut all_reported_at: Option<TokioInstant> = None;
        loop {
            let deadline = match all_reported_at {
                Some(reported_at) => reported_at + CLOSE_GRACE,
                None => self.active_since + self.active_limit(),
            };
            tokio::select! {
                written = &mut write_input, if writing => {
                    writing = false;
                    // A runner that stopped early stops reading its input; what it
                    // reported decides the outcome, so a write error is not one.
                    if let Err(error) = written {
                        tracing::debug!(%error, "the step runner stopped reading its input");
                    }
                }
                message = reader.wait() => match message {
                    None | Some(ChannelMsg::Close) => {
                        self.flush_streams().await;
                        return if self.active >= self.remote.len() {
                            Ok(())
                        } else {
                            Err(self.channel_ended(connection))
                        };
                    }
                    Some(message) => {
                        self.handle_message(message).await?;
                        if self.active >= self.remote.len() && all_reported_at.is_none() {
                            all_reported_at = Some(TokioInstant::now());
                        }
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    if all_reported_at.is_some() {
                        // A background process of a step still holds the output open;
                        // every step reported, so there is nothing more to read.
                        return Ok(());
                    }
                    let message = format!(
                        "the server sent no result for {} after the step started",
                        DisplayDuration(self.active_limit())
                    );
                    return Err(self.lost(message));
                }
            }
        }
    }

    /// How long the active step may go without a result before the executor
    /// concludes that the server stopped answering.
    fn active_limit(&self) -> Duration {
        let grace = self.pool.config().kill_grace;
        match self.remote.get(self.active).map(|&index| &self.steps[index]) {
            Some(Step::Run { timeout, .. }) => *timeout + grace + SERVER_SILENCE_ALLOWANCE,
            _ => UPLOAD_LIMIT + SERVER_SILENCE_ALLOWANCE,
        }
    }

    async fn handle_message(&mut self, message: ChannelMsg) -> Result<(), SshError> {
        match message {
            ChannelMsg::Data { data } => self.on_stream(Stream::Stdout, &data).await,
            ChannelMsg::ExtendedData { data, ext: 1 } => self.on_stream(Stream::Stderr, &data).await,
            ChannelMsg::ExitStatus { exit_status } => {
                self.exit = Some(format!("exit status {exit_status}"));
                Ok(())
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.exit = Some(format!("signal {signal_name:?}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_stream(&mut self, stream: Stream, data: &[u8]) -> Result<(), SshError> {
        let slot = stream_slot(stream);
        let pieces = self.streams[slot].splitter.push(data);
        for piece in pieces {
            match piece {
                Piece::Output(bytes) => self.deliver(stream, self.streams[slot].step, bytes).await,
                Piece::Marker(fields) => {
                    let position = self.streams[slot].step;
                    let expected = self.remote.get(position).copied();
                    let valid = match stream {
                        Stream::Stdout => runner::parse_step_end(&fields)
                            .filter(|end| Some(end.index) == expected)
                            .map(|end| self.progress[position].end = Some(end))
                            .is_some(),
                        Stream::Stderr => runner::parse_stderr_end(&fields)
                            .filter(|index| Some(*index) == expected)
                            .map(|_| self.progress[position].stderr_ended = true)
                            .is_some(),
                    };
                    if !valid {
                        return Err(self.lost(format!("the step runner sent an unexpected marker {fields:?}")));
                    }
                    self.streams[slot].step += 1;
                    self.advance().await?;
                }
            }
        }
        Ok(())
    }

    /// Hands output of remote step `position` to the observer, or keeps it until that
    /// step becomes active.
    async fn deliver(&mut self, stream: Stream, position: usize, bytes: Vec<u8>) {
        if position == self.active && position < self.remote.len() {
            self.emit(stream, &bytes).await;
        } else if position > self.active && position < self.remote.len() {
            self.progress[position].early_output.push((stream, bytes));
        } else {
            tracing::debug!(bytes = bytes.len(), "output after the last step was ignored");
        }
    }

    /// Scrubs output of the active step, keeps its tail and passes it on.
    async fn emit(&mut self, stream: Stream, bytes: &[u8]) {
        let slot = stream_slot(stream);
        let progress = &mut self.progress[self.active];
        let scrubbed = progress.scrubbers[slot].push(bytes);
        if !scrubbed.is_empty() {
            progress.tails[slot].push(&scrubbed);
            let index = self.remote[self.active];
            self.observer.on_output(index, stream, &scrubbed).await;
        }
    }

    /// Finishes every step whose both markers arrived, in order.
    async fn advance(&mut self) -> Result<(), SshError> {
        while self.active < self.remote.len() && self.progress[self.active].is_complete() {
            self.finish_active().await?;
        }
        Ok(())
    }

    async fn finish_active(&mut self) -> Result<(), SshError> {
        let index = self.remote[self.active];
        for stream in [Stream::Stdout, Stream::Stderr] {
            let slot = stream_slot(stream);
            let progress = &mut self.progress[self.active];
            let rest = progress.scrubbers[slot].finish();
            if !rest.is_empty() {
                progress.tails[slot].push(&rest);
                self.observer.on_output(index, stream, &rest).await;
            }
        }
        let progress = &self.progress[self.active];
        let end = progress.end.expect("a complete step has an end marker");
        let report = StepReport {
            step_index: index,
            exit_code: if end.timed_out { 124 } else { end.exit_code },
            timed_out: end.timed_out,
            duration: end.duration,
            stdout_tail: progress.tails[0].to_text(),
            stderr_tail: progress.tails[1].to_text(),
        };
        self.observer
            .on_step_finished(&report)
            .await
            .map_err(|error| SshError::ObserverFailed {
                step_index: index,
                reason: error.0,
            })?;
        let step = &self.steps[index];
        if report.timed_out {
            let limit = match step {
                Step::Run { timeout, .. } => *timeout,
                _ => UPLOAD_LIMIT,
            };
            return Err(SshError::CommandTimeout {
                step_index: index,
                command: describe_step(step),
                limit,
                stderr_tail: report.stderr_tail,
            });
        }
        if report.exit_code != 0 {
            match step {
                Step::Upload { path, .. } => {
                    let reason = if report.stderr_tail.trim().is_empty() {
                        format!("exit code {}", report.exit_code)
                    } else {
                        report.stderr_tail
                    };
                    return Err(SshError::UploadFailed {
                        step_index: index,
                        path: path.to_string(),
                        reason,
                    });
                }
                _ if self.failure_mode == FailureMode::Error => {
                    return Err(SshError::CommandFailed {
                        step_index: index,
                        command: describe_step(step),
                        exit_code: report.exit_code,
                        stderr_tail: report.stderr_tail,
                    });
                }
                _ => {}
            }
        }
        let failed = report.exit_code != 0;
        self.reports.push(report);
        self.active += 1;
        if failed {
            // Only single commands get here; the runner stopped after this step.
            self.active = self.remote.len();
            return Ok(());
        }
        let next_index = self.remote.get(self.active).copied().unwrap_or(self.steps.len());
        for local_index in index + 1..next_index {
            report_local_step(self.observer, local_index, &self.steps[local_index]).await?;
        }
        if self.active < self.remote.len() {
            self.start_active().await;
        }
        Ok(())
    }

    /// Makes the next remote step active and passes on output it already sent.
    async fn start_active(&mut self) {
        self.active_since = TokioInstant::now();
        let index = self.remote[self.active];
        self.observer.on_step_started(index, &self.steps[index]).await;
        let early_output = std::mem::take(&mut self.progress[self.active].early_output);
        for (stream, bytes) in early_output {
            self.emit(stream, &bytes).await;
        }
    }

    /// Passes on bytes the splitters held back, once the channel ended.
    async fn flush_streams(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let slot = stream_slot(stream);
            let rest = self.streams[slot].splitter.finish();
            if !rest.is_empty() {
                let position = self.streams[slot].step;
                self.deliver(stream, position, rest).await;
            }
        }
        if self.active < self.remote.len() {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let slot = stream_slot(stream);
                let index = self.remote[self.active];
                let progress = &mut self.progress[self.active];
                let rest = progress.scrubbers[slot].finish();
                if !rest.is_empty() {
                    progress.tails[slot].push(&rest);
                    self.observer.on_output(index, stream, &rest).await;
                }
            }
        }
    }

    /// The error for a channel that ended before every step reported.
    fn channel_ended(&self, connection: &Connection) -> SshError {
        let reason = if connection.is_closed() {
            "the connection closed".to_owned()
        } else {
            let stderr = self
                .progress
                .get(self.active)
                .map(|progress| progress.tails[1].to_text())
                .unwrap_or_default();
            let last_line = stderr.lines().rev().find(|line| !line.trim().is_empty());
            let mut reason = match &self.exit {
                Some(exit) => format!("the step runner ended ({exit}) before the step finished"),
                None => "the channel closed before the step finished".to_owned(),
            };
            if let Some(line) = last_line {
                reason.push_str(": ");
                reason.push_str(line.trim());
            }
            reason
        };
        self.lost(reason)
    }

    /// The runner's whole stdin: the script, the token and one frame per step.
    fn runner_input(&self) -> Vec<u8> {
        let grace = self.pool.config().kill_grace;
        let mut input = runner::preamble(&self.token);
        for &index in &self.remote {
            match &self.steps[index] {
                Step::Run { cmd, timeout, .. } => {
                    let command = zeroize::Zeroizing::new(cmd.render_for_execution());
                    runner::push_run_frame(&mut input, index, *timeout, grace, &command);
                }
                Step::Upload {
                    path,
                    contents,
                    mode,
                    owner,
                    ..
                } => {
                    runner::push_upload_header(&mut input, index, path, *mode, owner.as_ref(), contents);
                    input.extend_from_slice(contents.expose_bytes());
                }
                Step::Milestone { .. } | Step::Persist(_) => {}
            }
        }
        input
    }

    fn lost(&self, reason: String) -> SshError {
        let (step_index, command) = match self.remote.get(self.active) {
            Some(&index) => (Some(index), Some(describe_step(&self.steps[index]))),
            None => (None, None),
        };
        SshError::ConnectionLost {
            address: self.target.address(),
            step_index,
            command,
            reason,
        }
    }
}

/// The masked text of a command, or `upload <path>` for an upload.
fn describe_step(step: &Step) -> String {
    match step {
        Step::Run { cmd, .. } => cmd.to_string(),
        Step::Upload { path, .. } => format!("upload {path}"),
        other => other.to_string(),
    }
}

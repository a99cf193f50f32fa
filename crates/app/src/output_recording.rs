//! Recording a running job's live output into its row, for site commands and
//! deployments. The recording follows the job's [`crate::operations::LiveOutput`]
//! channel (chunks the executor already scrubbed of the plan's secrets), keeps the
//! last [`OUTPUT_TAIL_BYTES`], and writes that tail through a caller-given writer
//! every half second while it changes, so pages and the CLI see the output grow from
//! any process. [`OutputRecording::finish`] closes the job's channel, stops the
//! recording and returns the final tail.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::operations::{LiveChunk, LiveOutput, OperationEnvironment};

/// How much output a row keeps: the last 64 KiB.
pub const OUTPUT_TAIL_BYTES: usize = 64 * 1024;

/// How often a running job's output tail is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Which chunks a recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The commands' output only (a site command's own output).
    OutputOnly,
    /// Each step's masked command line too, before its output (a deployment's log).
    StepsAndOutput,
}

/// Writes the tail to the job's row; a failure is logged and the next flush tries
/// again.
pub type TailWriter = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The output of a running job, as it arrives: the last [`OUTPUT_TAIL_BYTES`].
#[derive(Default)]
struct OutputTail {
    text: String,
    changed: bool,
}

impl OutputTail {
    fn push(&mut self, chunk: &str) {
        self.text.push_str(chunk);
        if self.text.len() > OUTPUT_TAIL_BYTES {
            self.text = crate::deployments::tail(&self.text, OUTPUT_TAIL_BYTES);
        }
        self.changed = true;
    }
}

/// A recording in progress (see the module documentation).
pub struct OutputRecording {
    live_output: LiveOutput,
    job_id: i64,
    tail: Arc<Mutex<OutputTail>>,
    collector: JoinHandle<()>,
    flusher: JoinHandle<()>,
    done: watch::Sender<bool>,
}

impl OutputRecording {
    /// Starts following job `job_id`'s output; start it before the job's plan runs.
    pub fn start(environment: &OperationEnvironment, job_id: i64, recorded: Recorded, write: TailWriter) -> Self {
        let tail = Arc::new(Mutex::new(OutputTail::default()));
        let mut receiver = environment.live_output.subscribe(job_id);
        let collector = {
            let tail = Arc::clone(&tail);
            tokio::spawn(async move {
                loop {
                    match receiver.recv().await {
                        Ok(chunk) => {
                            if let Some(text) = kept_text(&chunk, recorded) {
                                tail.lock().expect("output tail lock").push(&text);
                            }
                        }
                        Err(RecvError::Lagged(skipped)) => tail
                            .lock()
                            .expect("output tail lock")
                            .push(&format!("\n[{skipped} chunks of output were skipped]\n")),
                        Err(RecvError::Closed) => return,
                    }
                }
            })
        };
        let (done, done_receiver) = watch::channel(false);
        let flusher = tokio::spawn(flush(Arc::clone(&tail), done_receiver, write));
        OutputRecording {
            live_output: environment.live_output.clone(),
            job_id,
            tail,
            collector,
            flusher,
            done,
        }
    }

    /// Adds a line of the job's own (such as the commit a branch resolved to) to the
    /// recorded output.
    pub fn note(&self, line: &str) {
        self.tail.lock().expect("output tail lock").push(&format!("{line}\n"));
    }

    /// Stops the recording once the job's plans ended: closes the job's channel,
    /// takes in what is left in it, writes the last tail and returns it.
    pub async fn finish(self) -> String {
        self.live_output.finish(self.job_id);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.collector).await;
        let _ = self.done.send(true);
        let _ = self.flusher.await;
        self.tail.lock().expect("output tail lock").text.clone()
    }
}

fn kept_text(chunk: &LiveChunk, recorded: Recorded) -> Option<String> {
    if chunk.stream == LiveChunk::STEP {
        return (recorded == Recorded::StepsAndOutput).then(|| chunk.text.clone());
    }
    Some(chunk.text.clone())
}

async fn flush(tail: Arc<Mutex<OutputTail>>, mut done: watch::Receiver<bool>, write: TailWriter) {
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(FLUSH_INTERVAL) => false,
            _ = done.changed() => true,
        };
        let text = {
            let mut tail = tail.lock().expect("output tail lock");
            if tail.changed {
                tail.changed = false;
                Some(tail.text.clone())
            } else {
                None
            }
        };
        if let Some(text) = text
            && let Err(error) = write(text).await
        {
            tracing::warn!(%error, "writing a job's output failed");
        }
        if stop || *done.borrow() {
            return;
        }
    }
}

//! Workers: a pool of slots that claim jobs, run their handlers under a timeout,
//! renew their leases with heartbeats, and report the outcome. On shutdown the pool
//! stops claiming, lets running jobs finish within a grace period, and gives the
//! rest back to the queue.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::job::{ClaimedJob, JobId, JobState};
use crate::store::Queue;

/// Why a job's attempt failed. The message is shown to users: it must already be
/// free of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth another attempt (after the backoff) while attempts remain.
    Retryable(String),
    /// Retrying cannot help (bad input, a refused operation): fail now.
    Permanent(String),
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> JobError {
        JobError::Retryable(message.into())
    }

    pub fn permanent(message: impl Into<String>) -> JobError {
        JobError::Permanent(message.into())
    }

    fn message(&self) -> &str {
        match self {
            JobError::Retryable(message) | JobError::Permanent(message) => message,
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// What a handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    pub attempt: u32,
    pub max_attempts: u32,
}

impl JobContext {
    /// True when a failure of this attempt is final.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type Handler = Arc<dyn Fn(JobContext, serde_json::Value) -> HandlerFuture + Send + Sync>;

/// The handlers this process can run, by job kind.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `handler` for jobs of `kind`; the payload is decoded into `P`.
    pub fn register<P, F, Fut>(&mut self, kind: &str, handler: F) -> &mut Registry
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let kind_name = kind.to_owned();
        self.handlers.insert(
            kind.to_owned(),
            Arc::new(move |context: JobContext, payload: serde_json::Value| {
                let handler = Arc::clone(&handler);
                let kind_name = kind_name.clone();
                Box::pin(async move {
                    let payload: P = serde_json::from_value(payload).map_err(|error| {
                        JobError::permanent(format!("the payload of this {kind_name} job is invalid: {error}"))
                    })?;
                    handler(context, payload).await
                }) as HandlerFuture
            }),
        );
        self
    }

    /// The kinds with a handler.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }
}

/// How a worker pool behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in leases; unique per process.
    pub name: String,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How often running jobs renew their lease (and notice cancellation).
    pub heartbeat_interval: Duration,
    /// How often an idle slot looks for work that another process enqueued.
    pub poll_interval: Duration,
    /// How often expired leases are recovered.
    pub recovery_interval: Duration,
    /// How long running jobs may take to finish after shutdown is requested.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// Defaults for a process with `concurrency` slots.
    pub fn new(concurrency: usize) -> WorkerConfig {
        WorkerConfig {
            name: default_worker_name(),
            concurrency: concurrency.max(1),
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            recovery_interval: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A unique name for this process's worker: host, process id and a random suffix.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos:08x}", std::process::id())
}

/// Runs jobs from a queue until told to stop.
pub struct WorkerPool {
    queue: Queue,
    registry: Arc<Registry>,
    config: WorkerConfig,
}

/// How one attempt ended.
enum Outcome {
    Finished(Result<(), JobError>),
    Panicked(String),
    TimedOut,
    Cancelled,
    LostLease,
    ShutDown,
}

impl WorkerPool {
    pub fn new(queue: Queue, registry: Registry, config: WorkerConfig) -> WorkerPool {
        WorkerPool {
            queue,
            registry: Arc::new(registry),
            config,
        }
    }

    /// Runs until `shutdown` becomes true, then drains as described in the module docs.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let config = Arc::new(self.config);
        let (hard_stop_sender, hard_stop) = watch::channel(false);
        let mut slots = JoinSet::new();
        for slot in 0..config.concurrency {
            slots.spawn(run_slot(
                slot,
                self.queue.clone(),
                Arc::clone(&self.registry),
                Arc::clone(&config),
                shutdown.clone(),
                hard_stop.clone(),
            ));
        }
        slots.spawn(run_recovery(self.queue.clone(), Arc::clone(&config), shutdown.clone()));
        tracing::info!(worker = %config.name, concurrency = config.concurrency, kinds = ?self.registry.kinds(), "worker pool started");

        let mut shutdown_signal = shutdown.clone();
        stopped(&mut shutdown_signal).await;
        tracing::info!(
            grace_seconds = config.shutdown_grace.as_secs(),
            "worker pool stopping: no new jobs are claimed"
        );
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while slots.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over: giving unfinished jobs back to the queue");
            let _ = hard_stop_sender.send(true);
            while slots.join_next().await.is_some() {}
        }
        tracing::info!(worker = %config.name, "worker pool stopped");
    }
}

async fn run_recovery(queue: Queue, config: Arc<WorkerConfig>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(error) = queue.recover_expired_leases().await {
            tracing::error!(%error, "recovering expired leases failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(config.recovery_interval) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

async fn run_slot(
    slot: usize,
    queue: Queue,
    registry: Arc<Registry>,
    config: Arc<WorkerConfig>,
    mut shutdown: watch::Receiver<bool>,
    hard_stop: watch::Receiver<bool>,
) {
    // Stagger idle polling so the slots of one process do not poll in lockstep.
    let poll_interval = config.poll_interval + config.poll_interval * (slot as u32 % 8) / 8;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match queue.claim(&config.name, config.lease).await {
            Ok(Some(job)) => {
                // More work may be waiting: let another idle slot look too.
                queue.wake().notify_one();
                let span = tracing::info_span!("job", id = job.id.0, kind = %job.kind, attempt = job.attempt);
                run_job(&queue, &registry, &config, job, hard_stop.clone())
                    .instrument(span)
                    .await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = queue.wake().notified() => {}
                    _ = tokio::time::sleep(poll_interval) => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
            Err(error) => {
                tracing::error!(%error, "claiming a job failed; retrying shortly");
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval * 2) => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
        }
    }
}

async fn run_job(
    queue: &Queue,
    registry: &Registry,
    config: &WorkerConfig,
    job: ClaimedJob,
    mut hard_stop: watch::Receiver<bool>,
) {
    let Some(handler) = registry.handlers.get(&job.kind).cloned() else {
        let message = format!("no handler for job kind `{}` in this BrokeForge build", job.kind);
        tracing::error!("{message}");
        report(
            queue,
            config,
            &job,
            Outcome::Finished(Err(JobError::Permanent(message))),
        )
        .await;
        return;
    };
    let context = JobContext {
        id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
    };
    let mut task = tokio::spawn(handler(context, job.payload.clone()));
    let deadline = tokio::time::sleep(job.timeout);
    tokio::pin!(deadline);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + config.heartbeat_interval,
        config.heartbeat_interval,
    );
    let outcome = loop {
        tokio::select! {
            joined = &mut task => {
                break match joined {
                    Ok(result) => Outcome::Finished(result),
                    Err(error) if error.is_panic() => Outcome::Panicked(panic_message(error.into_panic())),
                    Err(_) => Outcome::Cancelled,
                };
            }
            _ = &mut deadline => break Outcome::TimedOut,
            _ = stopped(&mut hard_stop) => break Outcome::ShutDown,
            _ = heartbeat.tick() => {
                match queue.heartbeat(job.id, &config.name, config.lease).await {
                    Ok(Some(true)) => break Outcome::Cancelled,
                    Ok(Some(false)) => {}
                    Ok(None) => break Outcome::LostLease,
                    Err(error) => tracing::warn!(%error, "heartbeat failed; the lease may expire"),
                }
            }
        }
    };
    if !task.is_finished() {
        task.abort();
    }
    report(queue, config, &job, outcome).await;
}

async fn report(queue: &Queue, config: &WorkerConfig, job: &ClaimedJob, outcome: Outcome) {
    let worker = config.name.as_str();
    let result = match outcome {
        Outcome::Finished(Ok(())) => queue
            .complete(job.id, worker)
            .await
            .map(|held| held.then_some(JobState::Succeeded)),
        Outcome::Finished(Err(JobError::Retryable(message))) => queue.fail(job, worker, &message, true).await,
        Outcome::Finished(Err(JobError::Permanent(message))) => queue.fail(job, worker, &message, false).await,
        Outcome::Panicked(message) => {
            queue
                .fail(job, worker, &format!("the job handler crashed: {message}"), true)
                .await
        }
        Outcome::TimedOut => {
            let message = format!(
                "timed out after {} (attempt {} of {})",
                human_duration(job.timeout),
                job.attempt,
                job.max_attempts
            );
            queue.fail(job, worker, &message, true).await
        }
        Outcome::Cancelled => queue
            .mark_cancelled(job.id, worker)
            .await
            .map(|held| held.then_some(JobState::Cancelled)),
        Outcome::ShutDown => queue
            .release(job.id, worker)
            .await
            .map(|held| held.then_some(JobState::Queued)),
        Outcome::LostLease => Ok(None),
    };
    match result {
        Ok(Some(state)) => tracing::debug!(state = state.as_str(), "job attempt finished"),
        Ok(None) => tracing::warn!("this worker lost the job's lease; another worker owns it now"),
        Err(error) => {
            tracing::error!(%error, "recording the job's outcome failed; its lease will expire and it will run again")
        }
    }
}

/// Resolves once the flag becomes true (or its sender is gone).
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic".to_owned()
    }
}

/// Formats a duration for people: `750 ms`, `5 s`, `2 min 5 s`.
pub fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis < 60_000 && !millis.is_multiple_of(1000) {
        format!("{:.1} s", duration.as_secs_f64())
    } else if millis < 60_000 {
        format!("{} s", duration.as_secs())
    } else {
        let seconds = duration.as_secs();
        match seconds % 60 {
            0 => format!("{} min", seconds / 60),
            rest => format!("{} min {rest} s", seconds / 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(750)), "750 ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
    }
}

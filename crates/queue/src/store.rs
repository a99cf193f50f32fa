//! The queue's operations on the `jobs` table. Every state change is a single
//! conditional `UPDATE`, so a worker that lost its lease cannot overwrite the work
//! of the worker that took the job over.

use std::sync::Arc;
use std::time::Duration;

use brokeforge_db::{Backend, Db, Topic, with_pool};
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::job::{ClaimedJob, JobId, JobRecord, JobState, NewJob};

/// Errors from the queue's storage.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("job {0} has a payload that is not valid JSON: {1}")]
    Payload(JobId, serde_json::Error),
    #[error("job {0} has an unknown state {1:?}")]
    UnknownState(JobId, String),
}

/// What happened to a cancellation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started: it is cancelled.
    Cancelled,
    /// The job is running: its worker stops it at its next heartbeat.
    Requested,
    /// The job had already finished in this state.
    AlreadyFinished(JobState),
    NotFound,
}

/// A handle to the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    db: Db,
    wake: Arc<Notify>,
    backoff: Backoff,
}

/// The columns of a [`RecordRow`], as a literal for `concat!`.
macro_rules! record_columns {
    () => {
        "id, kind, payload, subject, exclusivity_key, state, priority, attempts, max_attempts, timeout_ms, \
         run_at, lease_owner, lease_expires_at, cancel_requested, last_error, created_at, started_at, finished_at"
    };
}

/// The rows a claim may pick: queued, due, and not blocked by a running job with
/// the same key; highest priority first, then oldest.
macro_rules! claimable {
    () => {
        "j.state = 'queued' AND j.run_at <= $3 AND (j.exclusivity_key IS NULL OR NOT EXISTS \
         (SELECT 1 FROM jobs r WHERE r.exclusivity_key = j.exclusivity_key AND r.state = 'running')) \
         ORDER BY j.priority DESC, j.run_at, j.id LIMIT 1"
    };
}

const SQLITE_CLAIM: &str = concat!(
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2, ",
    "started_at = COALESCE(started_at, $3), updated_at = $3 WHERE id = (SELECT j.id FROM jobs j WHERE ",
    claimable!(),
    ") RETURNING id, kind, payload, attempts, max_attempts, timeout_ms, exclusivity_key"
);

const POSTGRES_CLAIM: &str = concat!(
    "UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_owner = $1, lease_expires_at = $2, ",
    "started_at = COALESCE(jobs.started_at, $3), updated_at = $3 FROM (SELECT j.id FROM jobs j WHERE ",
    claimable!(),
    " FOR UPDATE SKIP LOCKED) next WHERE jobs.id = next.id RETURNING jobs.id, jobs.kind, jobs.payload, ",
    "jobs.attempts, jobs.max_attempts, jobs.timeout_ms, jobs.exclusivity_key"
);

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: i64,
    kind: String,
    payload: String,
    subject: Option<String>,
    exclusivity_key: Option<String>,
    state: String,
    priority: i32,
    attempts: i32,
    max_attempts: i32,
    timeout_ms: i64,
    run_at: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    cancel_requested: bool,
    last_error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl RecordRow {
    fn into_record(self) -> Result<JobRecord, QueueError> {
        let id = JobId(self.id);
        Ok(JobRecord {
            id,
            payload: serde_json::from_str(&self.payload).map_err(|error| QueueError::Payload(id, error))?,
            state: JobState::parse(&self.state).ok_or_else(|| QueueError::UnknownState(id, self.state.clone()))?,
            kind: self.kind,
            subject: self.subject,
            exclusivity_key: self.exclusivity_key,
            priority: self.priority,
            attempts: self.attempts.max(0) as u32,
            max_attempts: self.max_attempts.max(0) as u32,
            timeout_ms: self.timeout_ms,
            run_at_ms: self.run_at,
            lease_owner: self.lease_owner,
            lease_expires_at_ms: self.lease_expires_at,
            cancel_requested: self.cancel_requested,
            last_error: self.last_error,
            created_at_ms: self.created_at,
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: i64,
    kind: String,
    payload: String,
    attempts: i32,
    max_attempts: i32,
    timeout_ms: i64,
    exclusivity_key: Option<String>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub subject: Option<String>,
    pub kind: Option<String>,
    /// Only jobs with an id below this one (for paging newest first).
    pub before: Option<JobId>,
    pub limit: u32,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Queue {
    /// A queue on `db` (which must be migrated) with the default backoff.
    pub fn new(db: Db) -> Queue {
        Queue {
            db,
            wake: Arc::new(Notify::new()),
            backoff: Backoff::default(),
        }
    }

    /// Replaces the retry backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Queue {
        self.backoff = backoff;
        self
    }

    /// The database the queue lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Tells this process's caches that jobs changed (see `brokeforge_db::changes`).
    fn changed(&self) {
        self.db.changes().bump(Topic::Jobs);
    }

    pub(crate) fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// Adds a job; an idle worker in this process is woken at once.
    pub async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError> {
        let ids = self.enqueue_many(std::slice::from_ref(&job)).await?;
        Ok(ids[0])
    }

    /// Adds jobs in one transaction: all of them or none.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<JobId>, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let mut ids = Vec::with_capacity(jobs.len());
        with_pool!(self.db, |pool| {
            let mut transaction = pool.begin().await?;
            for job in jobs {
                let id = sqlx::query_scalar::<_, i64>(
                    "INSERT INTO jobs (kind, payload, subject, exclusivity_key, state, priority, attempts, \
                     max_attempts, timeout_ms, run_at, cancel_requested, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'queued', $5, 0, $6, $7, $8, FALSE, $9, $9) RETURNING id",
                )
                .bind(&job.kind)
                .bind(job.payload.to_string())
                .bind(&job.subject)
                .bind(&job.exclusivity_key)
                .bind(job.priority)
                .bind(job.max_attempts.max(1) as i32)
                .bind(millis(job.timeout))
                .bind(now + millis(job.delay))
                .bind(now)
                .fetch_one(&mut *transaction)
                .await?;
                ids.push(JobId(id));
            }
            transaction.commit().await?;
        });
        self.changed();
        if ids.len() == 1 {
            self.wake.notify_one();
        } else {
            self.wake.notify_waiters();
        }
        Ok(ids)
    }

    /// Claims the next due job for `worker`, leasing it for `lease`. Returns `None`
    /// when nothing is claimable right now.
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<ClaimedJob>, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let sql = match self.db.backend() {
            Backend::Sqlite => SQLITE_CLAIM,
            Backend::Postgres => POSTGRES_CLAIM,
        };
        let claimed: Result<Option<ClaimRow>, sqlx::Error> = with_pool!(relaxed self.db, |pool| {
            sqlx::query_as::<_, ClaimRow>(sql)
                .bind(worker)
                .bind(now + millis(lease))
                .bind(now)
                .fetch_optional(pool)
                .await
        });
        let row = match claimed {
            Ok(row) => row,
            // Another worker started a job with the same key at the same instant; the
            // unique index refused ours. Nothing is claimable for this key right now.
            Err(error) if brokeforge_db::error::is_unique_violation(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let Some(row) = row else { return Ok(None) };
        self.changed();
        let id = JobId(row.id);
        Ok(Some(ClaimedJob {
            id,
            payload: serde_json::from_str(&row.payload).map_err(|error| QueueError::Payload(id, error))?,
            kind: row.kind,
            attempt: row.attempts.max(1) as u32,
            max_attempts: row.max_attempts.max(1) as u32,
            timeout: Duration::from_millis(row.timeout_ms.max(0) as u64),
            exclusivity_key: row.exclusivity_key,
        }))
    }

    /// Extends `worker`'s lease on a running job. Returns `Some(cancel_requested)`
    /// while the worker still holds the lease, `None` once it has lost it.
    pub async fn heartbeat(&self, id: JobId, worker: &str, lease: Duration) -> Result<Option<bool>, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        Ok(with_pool!(relaxed self.db, |pool| {
            sqlx::query_scalar::<_, bool>(
                "UPDATE jobs SET lease_expires_at = $3, updated_at = $4 \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING cancel_requested",
            )
            .bind(id.0)
            .bind(worker)
            .bind(now + millis(lease))
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Marks a job `worker` ran as succeeded. False when the worker had lost the lease.
    pub async fn complete(&self, id: JobId, worker: &str) -> Result<bool, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let changed = with_pool!(relaxed self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'succeeded', finished_at = $3, updated_at = $3, last_error = NULL, \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id.0)
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.changed();
        self.wake.notify_one();
        Ok(changed == 1)
    }

    /// Records a failed attempt. The job is queued again after the backoff while
    /// attempts remain and `retryable` is true; otherwise it is failed for good.
    /// Returns the job's new state, or `None` when the worker had lost the lease.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &str,
        retryable: bool,
    ) -> Result<Option<JobState>, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let retry_at = now + millis(self.backoff.delay_after(job.attempt, job.id.0 as u64));
        let final_failure = !retryable || job.attempt >= job.max_attempts;
        let new_state = if final_failure {
            JobState::Failed
        } else {
            JobState::Queued
        };
        let changed = with_pool!(relaxed self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = $3, run_at = $4, last_error = $5, finished_at = $6, updated_at = $7, \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(job.id.0)
            .bind(worker)
            .bind(new_state.as_str())
            .bind(if final_failure { now } else { retry_at })
            .bind(error)
            .bind(final_failure.then_some(now))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.changed();
        self.wake.notify_one();
        Ok((changed == 1).then_some(new_state))
    }

    /// Marks a running job whose cancellation `worker` honoured as cancelled.
    pub async fn mark_cancelled(&self, id: JobId, worker: &str) -> Result<bool, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let changed = with_pool!(relaxed self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'cancelled', finished_at = $3, updated_at = $3, \
                 last_error = 'cancelled while running', lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id.0)
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.changed();
        self.wake.notify_one();
        Ok(changed == 1)
    }

    /// Gives a running job back to the queue without counting the attempt (used when
    /// a worker shuts down before the job finished).
    pub async fn release(&self, id: JobId, worker: &str) -> Result<bool, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let changed = with_pool!(relaxed self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 run_at = $3, updated_at = $3, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id.0)
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.changed();
        Ok(changed == 1)
    }

    /// Takes back jobs whose worker stopped renewing its lease: they are queued again
    /// (or failed, when that was their last attempt). Returns how many were recovered.
    pub async fn recover_expired_leases(&self) -> Result<u64, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let recovered = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET \
                 state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
                 finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN $1 ELSE NULL END, \
                 last_error = 'the worker running attempt ' || attempts || ' stopped renewing its lease (it crashed or lost the database)', \
                 run_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE state = 'running' AND lease_expires_at < $1",
            )
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if recovered > 0 {
            self.changed();
            tracing::warn!(recovered, "recovered jobs whose worker stopped renewing its lease");
            self.wake.notify_waiters();
        }
        Ok(recovered)
    }

    /// Cancels a job: at once when it has not started, at its worker's next heartbeat
    /// when it is running.
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let cancelled = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2, \
                 last_error = 'cancelled before it started' WHERE id = $1 AND state = 'queued'",
            )
            .bind(id.0)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if cancelled == 1 {
            self.changed();
            return Ok(CancelOutcome::Cancelled);
        }
        let requested = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE jobs SET cancel_requested = TRUE, updated_at = $2 WHERE id = $1 AND state = 'running'")
                .bind(id.0)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if requested == 1 {
            self.changed();
            return Ok(CancelOutcome::Requested);
        }
        Ok(match self.get(id).await? {
            Some(job) => CancelOutcome::AlreadyFinished(job.state),
            None => CancelOutcome::NotFound,
        })
    }

    /// Queues a failed or cancelled job again with a fresh set of attempts. Returns
    /// false when the job is not in a final, unsuccessful state.
    pub async fn retry(&self, id: JobId) -> Result<bool, QueueError> {
        let now = brokeforge_db::clock::now_millis();
        let changed = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, updated_at = $2, \
                 cancel_requested = FALSE, finished_at = NULL WHERE id = $1 AND state IN ('failed', 'cancelled')",
            )
            .bind(id.0)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.changed();
        self.wake.notify_one();
        Ok(changed == 1)
    }

    /// One job, as stored.
    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, QueueError> {
        let sql = concat!("SELECT ", record_columns!(), " FROM jobs WHERE id = $1");
        let row = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, RecordRow>(sql)
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.map(RecordRow::into_record).transpose()
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, QueueError> {
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM jobs WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR subject = $2) ",
            "AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let limit = i64::from(if filter.limit == 0 { 50 } else { filter.limit.min(1000) });
        let rows = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, RecordRow>(sql)
                .bind(filter.state.map(JobState::as_str))
                .bind(filter.subject.as_deref())
                .bind(filter.kind.as_deref())
                .bind(filter.before.map(|id| id.0))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(RecordRow::into_record).collect()
    }

    /// How many jobs are in each state.
    pub async fn counts(&self) -> Result<Vec<(JobState, i64)>, QueueError> {
        let rows: Vec<(String, i64)> = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(state, count)| JobState::parse(&state).map(|state| (state, count)))
            .collect())
    }
}

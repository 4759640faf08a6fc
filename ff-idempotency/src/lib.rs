//! # ff-idempotency: exactly-once operations over any store
//!
//! [`IdempotencyManager`] runs the operation lifecycle over any
//! [`IdempotencyStorage`]: among concurrent callers (threads, processes,
//! servers sharing the store) one claims an operation, the others learn it
//! is in progress or replay its result; failures are retried after a
//! backoff up to a limit; a claim whose owner died lapses with its lease.
//! It reports its decisions and outcomes through `ff-metrics`; wrap the
//! store in [`ff_metrics::Instrumented`] to measure its calls too.
//!
//! The lifecycle (docs/idempotency.md gives the defaults):
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
//! use ff_traits::{IdempotencyKey, MemoryStore};
//! use serde_json::json;
//!
//! let manager = IdempotencyManager::new(MemoryStore::new(), ManagerConfig::default());
//! let key = IdempotencyKey::new(
//!     "createWorktree",
//!     json!({"issueId": "123", "path": "/project"}),
//!     json!({"basePath": ".worktrees"}),
//! );
//!
//! // Check whether it should run.
//! let decision = manager.should_execute(&key).await?;
//! assert!(decision.execute, "{}", decision.reason);
//!
//! // Claim it: among concurrent callers exactly one wins.
//! let Start::Claimed(claim) = manager.start_operation(&key, Some(json!({"path": "/tmp/wt"}))).await? else {
//!     unreachable!("nobody else ran it");
//! };
//! // ... perform the work, then record the outcome.
//! manager.complete_operation(&claim, json!({"worktreeId": "wt-123"})).await?;
//!
//! // From now on the result is replayed instead of running again.
//! let again = manager.should_execute(&key).await?;
//! assert!(!again.execute);
//! assert_eq!(again.reason.to_string(), "Operation already completed successfully");
//! assert_eq!(again.record.unwrap().result, Some(json!({"worktreeId": "wt-123"})));
//! # Ok::<(), ff_idempotency::Error>(()) }).unwrap();
//! ```

#![forbid(unsafe_code)]

mod decision;
mod error;
mod execute;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use decision::{Decision, Reason, backoff_after, decide};
pub use error::{Error, ErrorKind, Result};
pub use execute::{Attempt, ExecuteError, Execution, OperationFailure, RollbackError};

use ff_traits::identity as process;
use ff_traits::{
    ClaimOwner, Clock, FencingToken, IdempotencyKey, IdempotencyRecord, IdempotencyStorage,
    RecordKey, RecordStatus, RecordedError, ScanFilter, SystemClock, Timestamp,
};

/// How many times a conditional write is retried after losing a race
/// before the caller is told the key is busy.
const MAX_RACE_ROUNDS: usize = 16;

/// Whether the claimant of `record`'s live-looking claim is known to have
/// died: it ran on this host, in this pid space, and its process (pid and
/// start time) is gone, and so is the process group of its work, if it
/// named one ([`ManagerConfig::process_group`]). Its claim is then taken over at once, by
/// compare-and-swap on the revision judged, instead of after its lease: a
/// crashed `ff once` or worktree operation does not hold its key for the
/// rest of the lease. A claimant elsewhere, or one this process cannot
/// judge, keeps its lease.
fn claimant_died(record: &IdempotencyRecord) -> bool {
    let Some(owner) = &record.owner else {
        return false;
    };
    let died = ff_process::claimant_liveness(owner) == ff_process::Liveness::Dead;
    if died {
        tracing::info!(
            pid = owner.pid,
            fencing_token = owner.fencing_token.0,
            "the claimant died before its lease ended: taking its claim over"
        );
    }
    died
}

/// Options of an [`IdempotencyManager`]. The defaults are docs/idempotency.md's
/// ("Idempotency rules"): 24 h, 3 attempts, 1 s backoff, 30 s lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// How long a finished record counts (default 24 h). Older records are
    /// treated as expired on every read and removed by cleanup.
    pub max_age: Duration,
    /// Attempts allowed before giving up (default 3).
    pub max_attempts: u32,
    /// Base of the exponential retry backoff (default 1 s): after `n`
    /// failures the next attempt waits `retry_backoff × 2^(n−1)` from the
    /// failure time.
    pub retry_backoff: Duration,
    /// How long a claim lives without renewal (default 30 s). Past it, the
    /// claimant is taken for dead and its claim may be taken over.
    pub lease: Duration,
    /// The process group the caller runs each operation's work in, if it
    /// runs it in one of its own (see
    /// [`ClaimOwner::process_group`](ff_traits::ClaimOwner::process_group)):
    /// recorded in its claims, so that a claimant that died is not taken
    /// for dead while that work still runs (default: none).
    pub process_group: Option<u32>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 60 * 60),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            process_group: None,
        }
    }
}

impl ManagerConfig {
    /// Sets [`process_group`](Self::process_group).
    #[must_use]
    pub fn with_process_group(mut self, group: Option<u32>) -> Self {
        self.process_group = group;
        self
    }

    /// Sets [`max_age`](Self::max_age).
    #[must_use]
    pub fn with_max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets [`retry_backoff`](Self::retry_backoff).
    #[must_use]
    pub fn with_retry_backoff(mut self, d: Duration) -> Self {
        self.retry_backoff = d;
        self
    }

    /// Sets [`lease`](Self::lease).
    #[must_use]
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }
}

/// A won claim on a key: the right, and the duty, to run the operation and
/// record its outcome.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claim {
    /// The record key.
    pub key: RecordKey,
    /// The operation's name.
    pub operation: String,
    /// Unique id of this claim, stored as the record's owner.
    pub claim_id: String,
    /// Greater than the token of every earlier claim of this record (a
    /// record removed by cleanup and created again starts over at 1; no
    /// claim of the removed record can write any more).
    pub fencing_token: FencingToken,
    /// Why this claim runs (first run, retry, takeover, …).
    pub reason: Reason,
    /// Rollback data of abandoned earlier attempts that nobody rolled back.
    /// The claimant should undo them (idempotently) before or while running;
    /// they are cleared when this claim completes or fails.
    pub abandoned_rollbacks: Vec<Value>,
    /// The record as this claim last wrote it, so its next write needs no
    /// read first (shared by the claim's clones).
    written: Written,
}

/// The record as a claim last wrote it. Not part of a claim's identity:
/// claims compare equal whatever their snapshots hold.
#[derive(Clone, Default)]
struct Written(Arc<std::sync::Mutex<Option<IdempotencyRecord>>>);

impl Written {
    fn new(record: &IdempotencyRecord) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(record.clone()))))
    }

    /// The snapshot, while it is still a pending record (a finished one is
    /// never written again by its claim).
    fn pending(&self) -> Option<IdempotencyRecord> {
        ff_traits::lock_unpoisoned(&self.0)
            .clone()
            .filter(|r| r.status == RecordStatus::Pending)
    }

    fn set(&self, record: &IdempotencyRecord) {
        *ff_traits::lock_unpoisoned(&self.0) = Some(record.clone());
    }
}

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Written")
    }
}

impl PartialEq for Written {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Claim {
    /// The answer when writes to this claim's record kept losing races.
    fn contended(&self) -> Error {
        Error::InProgress {
            operation: self.operation.clone(),
            key: self.key.short().to_owned(),
            lease_remaining: None,
        }
    }
}

/// The answer of [`IdempotencyManager::start_operation`].
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The caller won the claim and must now run the operation.
    Claimed(Claim),
    /// Somebody already completed it; here is the record with its result.
    AlreadyCompleted(Box<IdempotencyRecord>),
}

/// Aggregates over the records (the original API's `getStats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdempotencyStats {
    /// Readable records.
    pub total: u64,
    /// Completed records as a percentage of finished ones (0 when none).
    pub success_rate: f64,
    /// Mean duration of the latest attempt, over finished records.
    pub avg_duration_ms: f64,
    /// Records per operation.
    pub by_operation: BTreeMap<String, u64>,
    /// Records per status (`pending`, `completed`, `failed`, `rolled_back`).
    pub by_status: BTreeMap<String, u64>,
    /// Entries that could not be read.
    pub corrupt: u64,
}

/// Runs operations at most once successfully per [`IdempotencyKey`], over
/// any [`IdempotencyStorage`], in any number of processes sharing it.
///
/// Every decision re-reads the store; nothing is cached in memory, so other
/// processes' updates are always seen.
#[derive(Debug, Clone)]
pub struct IdempotencyManager<S> {
    store: S,
    config: ManagerConfig,
    clock: Arc<dyn Clock>,
}

impl<S: IdempotencyStorage> IdempotencyManager<S> {
    /// A manager over `store`.
    pub fn new(store: S, config: ManagerConfig) -> Self {
        Self {
            store,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock (tests move time with a
    /// [`ManualClock`](ff_traits::ManualClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The options.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether `key`'s operation should run now, and why. Advisory only: to
    /// run it, win [`start_operation`](Self::start_operation).
    ///
    /// # Errors
    /// [`ff_traits::Error::InvalidInput`] for a key that cannot be canonicalized;
    /// [`ff_traits::Error::Corrupt`] when the record cannot be read (never taken as
    /// "no record"); [`ff_traits::Error::Backend`].
    pub async fn should_execute(&self, key: &IdempotencyKey) -> Result<Decision> {
        let record_key = key.record_key()?;
        let record = self.store.load(&record_key).await?;
        let reason = match &record {
            None => Reason::NoPreviousExecution,
            Some(r) => decide(&self.config, r, self.now()),
        };
        ff_metrics::decision(reason.as_str());
        tracing::debug!(
            operation = %key.operation,
            key = record_key.short(),
            decision = reason.as_str(),
            "should_execute"
        );
        Ok(Decision {
            execute: reason.execute(),
            reason,
            record,
        })
    }

    fn new_owner(&self, fencing_token: FencingToken, now: Timestamp) -> ClaimOwner {
        ClaimOwner::new(
            process::unique_id(),
            fencing_token,
            now.saturating_add(self.config.lease),
            process::pid(),
            process::hostname().to_owned(),
        )
        .with_process(
            process::own_start_time(),
            process::pid_space().map(str::to_owned),
        )
        .with_process_group(self.config.process_group)
    }

    /// The error that tells a caller why it may not run now.
    fn refusal(&self, reason: Reason, record: &IdempotencyRecord, now: Timestamp) -> Error {
        let key = record.key.short().to_owned();
        let operation = record.operation.clone();
        let last_error = record
            .error
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        match reason {
            Reason::MaxAttemptsExceeded => Error::MaxAttemptsExceeded {
                operation,
                key,
                attempts: record.attempts,
                max_attempts: self.config.max_attempts,
                last_error,
            },
            Reason::BackoffNotElapsed { remaining } => Error::BackoffNotElapsed {
                operation,
                key,
                remaining,
            },
            Reason::FailedPermanently => Error::FailedPermanently {
                operation,
                key,
                last_error,
            },
            _ => Error::InProgress {
                operation,
                key,
                lease_remaining: decision::lease_remaining(record, now),
            },
        }
    }

    /// Claims `key`'s operation for the caller.
    ///
    /// Atomic: among any number of concurrent callers, in any number of
    /// processes sharing the store, exactly one gets [`Start::Claimed`]. It
    /// re-reads the store and never overwrites a completed record within
    /// `max_age` (that gives [`Start::AlreadyCompleted`]). A pending record
    /// whose lease lapsed is taken over (its rollback data moves to
    /// [`Claim::abandoned_rollbacks`]).
    ///
    /// # Errors
    /// * [`Error::InProgress`] while another claim is live (also after
    ///   losing many races in a row);
    /// * [`Error::MaxAttemptsExceeded`], [`Error::BackoffNotElapsed`],
    ///   [`Error::FailedPermanently`] from the failure rules;
    /// * as [`should_execute`](Self::should_execute).
    pub async fn start_operation(
        &self,
        key: &IdempotencyKey,
        rollback_data: Option<Value>,
    ) -> Result<Start> {
        self.start(key, rollback_data, false).await
    }

    /// As [`start_operation`](Self::start_operation), for a caller that
    /// holds a lock which every claimant of `key` holds for as long as it
    /// runs the operation (say, a per-key [`LockProvider`](ff_traits::LockProvider)
    /// lock). Such a caller knows that a pending record it finds belongs to
    /// a claimant that died, whatever its lease says, so it takes the record
    /// over at once instead of answering [`Error::InProgress`] until the
    /// lease lapses: recovery after a crash need not wait.
    ///
    /// Safe only under that promise. A claimant that lost its lock while
    /// still running (a paused process, say) cannot overwrite the new
    /// claim's outcome: finishing checks the claim id first.
    ///
    /// # Errors
    /// As [`start_operation`](Self::start_operation), but never
    /// [`Error::InProgress`] because of a live-looking lease.
    pub async fn start_operation_exclusive(
        &self,
        key: &IdempotencyKey,
        rollback_data: Option<Value>,
    ) -> Result<Start> {
        self.start(key, rollback_data, true).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(operation = %key.operation, key))]
    async fn start(
        &self,
        key: &IdempotencyKey,
        rollback_data: Option<Value>,
        exclusive: bool,
    ) -> Result<Start> {
        let started = Instant::now();
        let record_key = key.record_key()?;
        tracing::Span::current().record("key", record_key.short());
        // Most keys are new: try to create first (one store call), and read
        // only when something is there.
        let now = self.now();
        let fresh = IdempotencyRecord::new_pending(
            key,
            record_key.clone(),
            self.new_owner(FencingToken(1), now),
            rollback_data.clone(),
            now,
        );
        match self.store.create(fresh).await {
            Ok(stored) => return Ok(self.claimed(stored, Reason::NoPreviousExecution, started)),
            Err(ff_traits::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let mut last_lease_remaining = None;
        for _ in 0..MAX_RACE_ROUNDS {
            let now = self.now();
            let Some(existing) = self.store.load(&record_key).await? else {
                let owner = self.new_owner(FencingToken(1), now);
                let record = IdempotencyRecord::new_pending(
                    key,
                    record_key.clone(),
                    owner,
                    rollback_data.clone(),
                    now,
                );
                match self.store.create(record).await {
                    Ok(stored) => {
                        return Ok(self.claimed(stored, Reason::NoPreviousExecution, started));
                    }
                    Err(ff_traits::Error::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut reason = decide(&self.config, &existing, now);
            if reason == Reason::InProgress && (exclusive || claimant_died(&existing)) {
                reason = Reason::StuckPendingReset;
            }
            if reason == Reason::AlreadyCompleted || !reason.execute() {
                ff_metrics::decision(reason.as_str());
            }
            if reason == Reason::AlreadyCompleted {
                tracing::debug!(decision = reason.as_str(), "replaying completed result");
                return Ok(Start::AlreadyCompleted(Box::new(existing)));
            }
            if !reason.execute() {
                tracing::debug!(decision = reason.as_str(), "claim refused");
                return Err(self.refusal(reason, &existing, now));
            }
            let read_revision = existing.revision;
            let lease_remaining = decision::lease_remaining(&existing, now);
            let next = self.restarted(existing, reason, rollback_data.clone(), now);
            match self.store.compare_and_swap(read_revision, next).await {
                Ok(stored) => return Ok(self.claimed(stored, reason, started)),
                Err(
                    ff_traits::Error::PreconditionFailed { .. } | ff_traits::Error::NotFound { .. },
                ) => {
                    last_lease_remaining = lease_remaining;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!("gave up claiming after losing {MAX_RACE_ROUNDS} races in a row");
        Err(Error::InProgress {
            operation: key.operation.clone(),
            key: record_key.short().to_owned(),
            lease_remaining: last_lease_remaining,
        })
    }

    /// The record of a new attempt replacing `existing`.
    fn restarted(
        &self,
        existing: IdempotencyRecord,
        reason: Reason,
        rollback_data: Option<Value>,
        now: Timestamp,
    ) -> IdempotencyRecord {
        let token = existing
            .owner
            .as_ref()
            .map_or(FencingToken(1), |o| FencingToken(o.fencing_token.0 + 1));
        let mut next = existing;
        if reason == Reason::StuckPendingReset
            && let Some(abandoned) = next.rollback_data.take()
        {
            next.abandoned_rollbacks.push(abandoned);
        }
        if reason == Reason::PreviousRecordExpired {
            next.attempts = 1;
            next.started_at = now;
            next.error = None;
        } else {
            next.attempts = next.attempts.saturating_add(1);
        }
        next.status = RecordStatus::Pending;
        next.last_attempt_at = now;
        next.ended_at = None;
        next.result = None;
        next.rollback_data = rollback_data;
        next.owner = Some(self.new_owner(token, now));
        next
    }

    fn claimed(&self, stored: IdempotencyRecord, reason: Reason, started: Instant) -> Start {
        let owner = stored
            .owner
            .clone()
            .unwrap_or_else(|| self.new_owner(FencingToken(0), self.now()));
        ff_metrics::decision(reason.as_str());
        ff_metrics::operation_event(ff_metrics::IDEMPOTENCY_CLAIMS, &stored.operation);
        if reason == Reason::StuckPendingReset {
            ff_metrics::operation_event(ff_metrics::IDEMPOTENCY_TAKEOVERS, &stored.operation);
        }
        tracing::info!(
            decision = reason.as_str(),
            attempt = stored.attempts,
            fencing_token = owner.fencing_token.0,
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "claimed"
        );
        Start::Claimed(Claim {
            key: stored.key.clone(),
            operation: stored.operation.clone(),
            claim_id: owner.claim_id,
            fencing_token: owner.fencing_token,
            reason,
            written: Written::new(&stored),
            abandoned_rollbacks: stored.abandoned_rollbacks,
        })
    }

    /// Counts an operation's end and its duration since its attempt began.
    fn report_end(stored: &IdempotencyRecord, counter: &'static str, outcome: &'static str) {
        ff_metrics::operation_event(counter, &stored.operation);
        if let Some(end) = stored.ended_at {
            let ms = end
                .as_millis()
                .saturating_sub(stored.last_attempt_at.as_millis());
            #[allow(clippy::cast_precision_loss)] // durations far below 2^52 ms
            ff_metrics::operation_ended(&stored.operation, outcome, ms as f64 / 1000.0);
        }
    }

    /// Loads the record of `claim` and checks the claim still owns it.
    async fn owned_record(&self, claim: &Claim) -> Result<IdempotencyRecord> {
        let lost = |reason: String| -> Error {
            ff_traits::Error::LockLost {
                name: format!("claim on {} ({})", claim.key.short(), claim.operation),
                reason,
            }
            .into()
        };
        let Some(record) = self.store.load(&claim.key).await? else {
            return Err(lost("its record was removed".to_owned()));
        };
        match &record.owner {
            Some(o) if o.claim_id == claim.claim_id && record.status == RecordStatus::Pending => {
                Ok(record)
            }
            Some(o) if o.claim_id == claim.claim_id => Err(lost(format!(
                "the record was already finished ({})",
                record.status
            ))),
            Some(o) => Err(lost(format!(
                "it was taken over by pid {} on {} (fencing token {})",
                o.pid, o.hostname, o.fencing_token
            ))),
            None => Err(lost("the record has no owner".to_owned())),
        }
    }

    /// Applies `change` to the claim's record, conditionally, retrying when
    /// a concurrent writer of the same claim (a renewal) raced it.
    async fn update_owned(
        &self,
        claim: &Claim,
        change: impl Fn(&mut IdempotencyRecord, Timestamp),
    ) -> Result<IdempotencyRecord> {
        // First from the record as this claim last wrote it, with no read:
        // the store swaps only while the revision is that one and the owner
        // is this claim (a revision alone could be another claimant's
        // record created again after a removal: it starts over at 1).
        if let Some(mut next) = claim.written.pending() {
            let expected = next.revision;
            change(&mut next, self.now());
            match self
                .store
                .compare_and_swap_owned(expected, &claim.claim_id, next)
                .await
            {
                Ok(stored) => {
                    claim.written.set(&stored);
                    return Ok(stored);
                }
                Err(
                    ff_traits::Error::PreconditionFailed { .. } | ff_traits::Error::NotFound { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Someone else wrote since (a takeover, a removal, a clone of this
        // claim): read, check ownership, and swap from what was read.
        for _ in 0..MAX_RACE_ROUNDS {
            let mut next = self.owned_record(claim).await?;
            let read_revision = next.revision;
            change(&mut next, self.now());
            match self.store.compare_and_swap(read_revision, next).await {
                Ok(stored) => {
                    claim.written.set(&stored);
                    return Ok(stored);
                }
                Err(
                    ff_traits::Error::PreconditionFailed { .. } | ff_traits::Error::NotFound { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(claim.contended())
    }

    /// Extends the claim's lease by [`ManagerConfig::lease`] from now.
    ///
    /// # Errors
    /// [`ff_traits::Error::LockLost`] when the claim was taken over or its record
    /// removed: the caller must stop.
    pub async fn renew(&self, claim: &Claim) -> Result<()> {
        let lease = self.config.lease;
        self.update_owned(claim, |r, now| {
            if let Some(o) = r.owner.as_mut() {
                o.lease_deadline = now.saturating_add(lease);
            }
        })
        .await?;
        Ok(())
    }

    /// Records success. Only the claim's owner may do it.
    ///
    /// # Errors
    /// [`ff_traits::Error::LockLost`] when the claim was taken over (another attempt
    /// now owns the key) or already finished.
    #[tracing::instrument(level = "debug", skip_all, fields(operation = %claim.operation, key = claim.key.short()))]
    pub async fn complete_operation(
        &self,
        claim: &Claim,
        result: Value,
    ) -> Result<IdempotencyRecord> {
        let stored = self
            .update_owned(claim, |r, now| {
                r.status = RecordStatus::Completed;
                r.ended_at = Some(now);
                r.result = Some(result.clone());
                r.error = None;
                r.abandoned_rollbacks.clear();
            })
            .await?;
        Self::report_end(&stored, ff_metrics::IDEMPOTENCY_COMPLETIONS, "completed");
        tracing::info!(
            outcome = "completed",
            attempt = stored.attempts,
            duration_ms = stored.duration().map_or(0, |d| d.as_millis()),
            "operation finished"
        );
        Ok(stored)
    }

    /// Records failure. Only the claim's owner may do it. A retryable error
    /// allows further attempts after the backoff; a permanent one does not.
    ///
    /// # Errors
    /// As [`complete_operation`](Self::complete_operation).
    #[tracing::instrument(level = "debug", skip_all, fields(operation = %claim.operation, key = claim.key.short()))]
    pub async fn fail_operation(
        &self,
        claim: &Claim,
        error: RecordedError,
    ) -> Result<IdempotencyRecord> {
        let stored = self
            .update_owned(claim, |r, now| {
                r.status = RecordStatus::Failed;
                r.ended_at = Some(now);
                r.error = Some(error.clone());
                r.abandoned_rollbacks.clear();
            })
            .await?;
        Self::report_end(&stored, ff_metrics::IDEMPOTENCY_FAILURES, "failed");
        tracing::warn!(
            outcome = "failed",
            attempt = stored.attempts,
            error = %error,
            "operation finished"
        );
        Ok(stored)
    }

    /// Withdraws a claim whose operation changed nothing (it failed
    /// before any side effect, or its effects were rolled back): the record
    /// is removed, so the next attempt starts fresh, at once, without
    /// counting an attempt or waiting for a backoff. Only the claim's owner
    /// may do it.
    ///
    /// # Errors
    /// [`ff_traits::Error::LockLost`] when the claim was taken over or finished.
    #[tracing::instrument(level = "debug", skip_all, fields(operation = %claim.operation, key = claim.key.short()))]
    pub async fn abandon_operation(&self, claim: &Claim) -> Result<()> {
        for _ in 0..MAX_RACE_ROUNDS {
            let revision = self.owned_record(claim).await?.revision;
            match self.store.remove(&claim.key, revision).await {
                Ok(()) => {
                    tracing::info!(outcome = "abandoned", "claim withdrawn; no record kept");
                    return Ok(());
                }
                Err(
                    ff_traits::Error::PreconditionFailed { .. } | ff_traits::Error::NotFound { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(claim.contended())
    }

    /// Aggregates over all records.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the store cannot be read.
    pub async fn stats(&self) -> Result<IdempotencyStats> {
        let s = self.store.stats().await?;
        let finished = s.finished();
        let completed = s.count(RecordStatus::Completed);
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let (success_rate, avg_duration_ms) = if finished == 0 {
            (0.0, 0.0)
        } else {
            (
                completed as f64 * 100.0 / finished as f64,
                s.finished_duration_ms as f64 / finished as f64,
            )
        };
        Ok(IdempotencyStats {
            total: s.total,
            success_rate,
            avg_duration_ms,
            by_operation: s.by_operation,
            by_status: s
                .by_status
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect(),
            corrupt: s.corrupt,
        })
    }

    /// Removes finished records last active more than `max_age` ago (zero
    /// removes every finished record). Pending records are never removed.
    /// Returns how many were removed.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the store fails.
    pub async fn cleanup(&self, max_age: Duration) -> Result<u64> {
        let cutoff = if max_age.is_zero() {
            Timestamp::from_millis(u64::MAX)
        } else {
            self.now().saturating_sub(max_age)
        };
        let removed = self.store.remove_finished_before(cutoff).await?;
        tracing::info!(
            removed,
            max_age_ms = max_age.as_millis(),
            "idempotency cleanup"
        );
        Ok(removed)
    }

    /// The records of one operation.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the store cannot be read.
    pub async fn records(&self, operation: &str) -> Result<Vec<IdempotencyRecord>> {
        Ok(self
            .store
            .scan(&ScanFilter::default().operation(operation))
            .await?
            .records)
    }
}

//! # ff-metrics: what ForgeFlow's locks and records report
//!
//! Every ForgeFlow library reports through the [`metrics`] facade: nothing
//! is recorded, and almost nothing is spent, until the embedding program
//! installs a recorder (a Prometheus exporter, say). The table of names is
//! the repository's `METRICS.md`; the constants below are its lock and
//! record rows.
//!
//! Lock and store metrics come from one layer, [`Instrumented`], that wraps
//! any [`LockProvider`](ff_traits::LockProvider) or
//! [`IdempotencyStorage`](ff_traits::IdempotencyStorage), plugins included,
//! the way a tower layer wraps a service: waits, grants, hold times,
//! timeouts, losses, force releases and store calls are seen from outside
//! the backend. A backend reports only what only it can know:
//! [`lock_contended`] when a wait finds the lock taken, and
//! [`lock_taken_over`] when it frees a dead holder's grant.
//!
//! Labels stay bounded: a lock is labelled by its backend, its mode and its
//! *class*, which is the [`LockOptions::operation`](ff_traits::LockOptions)
//! its taker chose in code (`createWorktree`, `lock`), never by its name,
//! since names carry issue ids and are unbounded.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use ff_metrics::Instrumented;
//! use ff_traits::{LockName, LockOptions, LockProvider, MemoryLockProvider};
//!
//! // Measured from here on, whichever backend sits inside.
//! let locks = Instrumented::new(MemoryLockProvider::new());
//! let guard = locks.acquire(&LockName::new("deploy")?, &LockOptions::default()).await?;
//! guard.release().await?;
//! # Ok::<(), ff_traits::Error>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]

mod cache;
mod layer;

use std::time::Instant;

use ff_traits::{ForceOutcome, LockOptions};

pub use layer::Instrumented;

/// Seconds from asking for a lock to getting it; its `_count` is the
/// number of grants made. (One metric for both: every metric call costs
/// a lookup on the hot path, and the overhead budget is 5%.)
pub const LOCK_WAIT_SECONDS: &str = "ff_lock_wait_seconds";
/// Seconds spent waiting by waits that ended without the lock.
pub const LOCK_TIMEOUT_WAIT_SECONDS: &str = "ff_lock_timeout_wait_seconds";
/// Seconds a grant was held, recorded when it ends.
pub const LOCK_HOLD_SECONDS: &str = "ff_lock_hold_seconds";
/// Waits that ended without the lock.
pub const LOCK_TIMEOUTS: &str = "ff_lock_timeouts_total";
/// Attempts that found the lock taken.
pub const LOCK_CONTENTIONS: &str = "ff_lock_contentions_total";
/// Grants that ended without their holder releasing them.
pub const LOCK_LOSSES: &str = "ff_lock_losses_total";
/// Force releases, by outcome.
pub const LOCK_FORCE_RELEASES: &str = "ff_lock_force_releases_total";
/// Grants taken over from a holder that was gone.
pub const LOCK_TAKEOVERS: &str = "ff_lock_takeovers_total";
/// Decisions of `should_execute`, by reason.
pub const IDEMPOTENCY_DECISIONS: &str = "ff_idempotency_decisions_total";
/// Claims won (an operation began), by operation.
pub const IDEMPOTENCY_CLAIMS: &str = "ff_idempotency_claims_total";
/// Claims taken over from an abandoned (lapsed) claim, by operation.
pub const IDEMPOTENCY_TAKEOVERS: &str = "ff_idempotency_takeovers_total";
/// Operations completed, by operation.
pub const IDEMPOTENCY_COMPLETIONS: &str = "ff_idempotency_completions_total";
/// Operations failed, by operation.
pub const IDEMPOTENCY_FAILURES: &str = "ff_idempotency_failures_total";
/// Operations rolled back, by operation.
pub const IDEMPOTENCY_ROLLBACKS: &str = "ff_idempotency_rollbacks_total";
/// Seconds from claim to completion or failure, by operation and outcome.
pub const OPERATION_DURATION_SECONDS: &str = "ff_operation_duration_seconds";
/// Seconds per store call, by backend and call.
pub const STORE_CALL_SECONDS: &str = "ff_store_call_seconds";
/// Store calls that failed, by backend and call.
pub const STORE_CALL_FAILURES: &str = "ff_store_call_failures_total";

/// Gives the installed recorder the help text of every name above (an
/// exporter shows it as `# HELP`): call it once, after installing the
/// recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        LOCK_WAIT_SECONDS,
        Unit::Seconds,
        "From asking for a lock to getting it; its count is the number of grants."
    );
    describe_histogram!(
        LOCK_TIMEOUT_WAIT_SECONDS,
        Unit::Seconds,
        "How long waits that ended without the lock lasted."
    );
    describe_histogram!(
        LOCK_HOLD_SECONDS,
        Unit::Seconds,
        "How long a grant was held, recorded when it ends."
    );
    describe_counter!(LOCK_TIMEOUTS, "Waits that ended without the lock.");
    describe_counter!(LOCK_CONTENTIONS, "Acquisitions that found the lock taken.");
    describe_counter!(
        LOCK_LOSSES,
        "Grants that ended without their holder releasing them."
    );
    describe_counter!(LOCK_FORCE_RELEASES, "Force releases, by outcome.");
    describe_counter!(
        LOCK_TAKEOVERS,
        "Grants taken over from a holder that had died."
    );
    describe_counter!(
        IDEMPOTENCY_DECISIONS,
        "Decisions whether an operation runs, by reason."
    );
    describe_counter!(IDEMPOTENCY_CLAIMS, "Claims won: an attempt began.");
    describe_counter!(
        IDEMPOTENCY_TAKEOVERS,
        "Claims taken over from an abandoned claim."
    );
    describe_counter!(IDEMPOTENCY_COMPLETIONS, "Operations completed.");
    describe_counter!(IDEMPOTENCY_FAILURES, "Operations failed.");
    describe_counter!(IDEMPOTENCY_ROLLBACKS, "Operations rolled back.");
    describe_histogram!(
        OPERATION_DURATION_SECONDS,
        Unit::Seconds,
        "From an attempt's claim to its completion or failure."
    );
    describe_histogram!(
        STORE_CALL_SECONDS,
        Unit::Seconds,
        "Each call to a measured store."
    );
    describe_counter!(STORE_CALL_FAILURES, "Store calls that failed.");
}

/// The bounded label a lock is counted under: its taker's operation.
fn class(options: &LockOptions) -> &str {
    if options.operation.is_empty() {
        "unspecified"
    } else {
        &options.operation
    }
}

fn mode(options: &LockOptions) -> &'static str {
    match options.mode {
        ff_traits::LockMode::Exclusive => "exclusive",
        ff_traits::LockMode::Shared => "shared",
        ff_traits::LockMode::IntentShared => "intent_shared",
        ff_traits::LockMode::IntentExclusive => "intent_exclusive",
        ff_traits::LockMode::SharedIntentExclusive => "shared_intent_exclusive",
    }
}

/// Reports an attempt that found the lock taken: a backend calls it once
/// per waiting acquire, when it first finds the lock busy (a busy
/// `try_acquire` is counted by [`Instrumented`]).
pub fn lock_contended(backend: &str, options: &LockOptions) {
    // Also a log line: a wait begins here, which a person (and a test
    // waiting for a contender to be in place) can see with `-vv`.
    tracing::debug!(backend, mode = mode(options), operation = %options.operation, "the lock is held: waiting");
    metrics::counter!(LOCK_CONTENTIONS, "backend" => backend.to_owned(), "mode" => mode(options), "class" => class(options).to_owned())
        .increment(1);
}

/// Reports a grant taken over from a holder that was gone: a backend calls
/// it when it frees a dead holder's grant to make its own.
pub fn lock_taken_over(backend: &str) {
    metrics::counter!(LOCK_TAKEOVERS, "backend" => backend.to_owned()).increment(1);
}

/// Reports a wait that ended without the lock.
fn lock_timed_out(backend: &str, options: &LockOptions, started: Instant) {
    let class = class(options).to_owned();
    let mode = mode(options);
    metrics::histogram!(LOCK_TIMEOUT_WAIT_SECONDS, "backend" => backend.to_owned(), "mode" => mode, "class" => class.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(LOCK_TIMEOUTS, "backend" => backend.to_owned(), "mode" => mode, "class" => class)
        .increment(1);
}

/// Reports a force release and what it did.
fn lock_force_released(backend: &str, outcome: &ForceOutcome) {
    let outcome = match outcome {
        ForceOutcome::NotHeld => "not_held",
        ForceOutcome::Cleared { .. } => "cleared",
        ForceOutcome::Revoked { .. } => "revoked",
        ForceOutcome::Refused { .. } => "refused",
        _ => "other",
    };
    metrics::counter!(LOCK_FORCE_RELEASES, "backend" => backend.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Reports a grant that ended lost (its holder had not released it).
fn lock_lost() {
    metrics::counter!(LOCK_LOSSES).increment(1);
}

/// Reports one event of an operation's lifecycle (`name` is one of the
/// `IDEMPOTENCY_*` counters), labelled by the operation: for the
/// idempotency manager, which alone knows the lifecycle.
pub fn operation_event(name: &'static str, operation: &str) {
    metrics::counter!(name, "operation" => operation.to_owned()).increment(1);
}

/// Reports how long an operation ran from claim to `outcome`
/// (`completed`, `failed`).
pub fn operation_ended(operation: &str, outcome: &'static str, seconds: f64) {
    metrics::histogram!(OPERATION_DURATION_SECONDS, "operation" => operation.to_owned(), "outcome" => outcome)
        .record(seconds);
}

/// Reports one decision of `should_execute`, by its reason.
pub fn decision(reason: &'static str) {
    metrics::counter!(IDEMPOTENCY_DECISIONS, "reason" => reason).increment(1);
}

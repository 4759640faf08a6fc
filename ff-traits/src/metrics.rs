//! Metrics through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Every ForgeFlow library reports here: nothing is recorded, and almost
//! nothing is spent, until the embedding program installs a recorder (a
//! Prometheus exporter, say). Backends, including plugins, call the helpers
//! below so that every lock and store reports the same names with the same
//! labels; the table of names is in the repository's `METRICS.md`.
//!
//! Labels stay bounded: a lock is labelled by its backend, its mode and its
//! *class*, which is the [`LockOptions::operation`] its taker chose in code
//! (`createWorktree`, `lock`), never by its name, since names carry issue
//! ids and are unbounded.
//!
//! ```
//! use std::time::Instant;
//! use ff_traits::{LockOptions, metrics};
//!
//! // A backend's acquire, in outline: time the wait, report the outcome.
//! let options = LockOptions::default().with_operation("deploy");
//! let started = Instant::now();
//! metrics::lock_contended("mine", &options);
//! metrics::lock_timed_out("mine", &options, started);
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::{ForceOutcome, LockGuard, LockOptions};

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

/// The bounded label a lock is counted under: its taker's operation.
fn class(options: &LockOptions) -> &str {
    if options.operation.is_empty() {
        "unspecified"
    } else {
        &options.operation
    }
}

/// The wait and hold histograms of one label set: their keys, and the
/// handles the global recorder gave for them.
struct LockMetrics {
    class: String,
    backend: &'static str,
    mode: &'static str,
    wait: metrics::Key,
    hold: metrics::Key,
    /// The recorder the handles came from, and the handles.
    handles: Option<(usize, metrics::Histogram, metrics::Histogram)>,
}

thread_local! {
    /// An uncontended acquire has a 5% overhead budget: a key costs an
    /// allocation and a hash to build, a registry lookup to resolve; a
    /// kept handle costs neither. A short list searched in order beats a
    /// hash map here: a thread sees a handful of label sets, and comparing
    /// a short class costs less than hashing it.
    static LOCK_METRICS: std::cell::RefCell<Vec<LockMetrics>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Label sets kept per thread before the list starts over.
const MAX_CACHED_LABEL_SETS: usize = 64;

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The address of the recorder in effect on this thread.
fn current_recorder() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>().addr())
}

/// The global recorder's address as last seen, and when it was looked
/// at (ms since `EPOCH`, 0 for never).
static GLOBAL_RECORDER: AtomicUsize = AtomicUsize::new(0);
static GLOBAL_SEEN_AT: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether `recorder` is the process's global recorder. Handles are kept
/// only for that one: it lives as long as the process, while a local
/// recorder may be dropped and another made at the same address. The
/// global one is found from a thread that has no local recorder, looked
/// for again at most once a second (one may be installed later).
fn is_global(recorder: usize) -> bool {
    if GLOBAL_RECORDER.load(Ordering::Relaxed) == recorder {
        return true;
    }
    let now = u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let seen = GLOBAL_SEEN_AT.load(Ordering::Relaxed);
    if seen != 0 && now.saturating_sub(seen) < 1000 {
        return false;
    }
    GLOBAL_SEEN_AT.store(now, Ordering::Relaxed);
    let global = std::thread::scope(|s| s.spawn(current_recorder).join()).unwrap_or(0);
    GLOBAL_RECORDER.store(global, Ordering::Relaxed);
    global == recorder
}

/// The wait and hold histograms for a grant's labels, from the recorder
/// in effect now.
fn lock_histograms(
    backend: &'static str,
    mode: &'static str,
    class: &str,
) -> (metrics::Histogram, metrics::Histogram) {
    let recorder = current_recorder();
    LOCK_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let index = if let Some(i) = cache
            .iter()
            .position(|m| m.backend == backend && m.mode == mode && m.class == class)
        {
            i
        } else {
            if cache.len() >= MAX_CACHED_LABEL_SETS {
                cache.clear();
            }
            let key = |name: &'static str| {
                metrics::Key::from_parts(
                    name,
                    vec![
                        metrics::Label::new("backend", backend),
                        metrics::Label::new("mode", mode),
                        metrics::Label::new("class", class.to_owned()),
                    ],
                )
            };
            cache.push(LockMetrics {
                class: class.to_owned(),
                backend,
                mode,
                wait: key(LOCK_WAIT_SECONDS),
                hold: key(LOCK_HOLD_SECONDS),
                handles: None,
            });
            cache.len() - 1
        };
        let m = &mut cache[index];
        if let Some((from, wait, hold)) = &m.handles
            && *from == recorder
        {
            return (wait.clone(), hold.clone());
        }
        let (wait, hold) = metrics::with_recorder(|r| {
            (
                r.register_histogram(&m.wait, &METADATA),
                r.register_histogram(&m.hold, &METADATA),
            )
        });
        if is_global(recorder) {
            m.handles = Some((recorder, wait.clone(), hold.clone()));
        }
        (wait, hold)
    })
}

fn mode(options: &LockOptions) -> &'static str {
    match options.mode {
        crate::LockMode::Exclusive => "exclusive",
        crate::LockMode::Shared => "shared",
        crate::LockMode::IntentShared => "intent_shared",
        crate::LockMode::IntentExclusive => "intent_exclusive",
        crate::LockMode::SharedIntentExclusive => "shared_intent_exclusive",
    }
}

/// Reports a grant made after waiting since `started`, and starts timing
/// its hold (recorded when the guard is released or dropped).
pub fn lock_acquired(
    backend: &'static str,
    options: &LockOptions,
    started: Instant,
    guard: LockGuard,
) -> LockGuard {
    // One clock read ends the wait and starts the hold.
    let granted = Instant::now();
    let (wait, hold) = lock_histograms(backend, mode(options), class(options));
    wait.record(granted.saturating_duration_since(started).as_secs_f64());
    guard.time_hold(hold, granted)
}

/// Reports a wait that ended without the lock.
pub fn lock_timed_out(backend: &'static str, options: &LockOptions, started: Instant) {
    let class = class(options).to_owned();
    let mode = mode(options);
    metrics::histogram!(LOCK_TIMEOUT_WAIT_SECONDS, "backend" => backend, "mode" => mode, "class" => class.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(LOCK_TIMEOUTS, "backend" => backend, "mode" => mode, "class" => class)
        .increment(1);
}

/// Reports an attempt that found the lock taken (once per acquire).
pub fn lock_contended(backend: &'static str, options: &LockOptions) {
    metrics::counter!(LOCK_CONTENTIONS, "backend" => backend, "mode" => mode(options), "class" => class(options).to_owned())
        .increment(1);
}

/// Reports a grant taken over from a holder that was gone.
pub fn lock_taken_over(backend: &'static str) {
    metrics::counter!(LOCK_TAKEOVERS, "backend" => backend).increment(1);
}

/// Reports a force release and what it did.
pub fn lock_force_released(backend: &'static str, outcome: &ForceOutcome) {
    let outcome = match outcome {
        ForceOutcome::NotHeld => "not_held",
        ForceOutcome::Cleared { .. } => "cleared",
        ForceOutcome::Revoked { .. } => "revoked",
        ForceOutcome::Refused { .. } => "refused",
    };
    metrics::counter!(LOCK_FORCE_RELEASES, "backend" => backend, "outcome" => outcome).increment(1);
}

pub(crate) fn lock_lost() {
    metrics::counter!(LOCK_LOSSES).increment(1);
}

/// Times one store call and reports it under `backend` and `call`.
///
/// # Errors
/// Whatever the call returns.
pub async fn store_call<T>(
    backend: &str,
    call: &'static str,
    future: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    let started = Instant::now();
    let result = future.await;
    let backend = backend.to_owned();
    metrics::histogram!(STORE_CALL_SECONDS, "backend" => backend.clone(), "call" => call)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(STORE_CALL_FAILURES, "backend" => backend, "call" => call).increment(1);
    }
    result
}

pub(crate) fn operation_event(name: &'static str, operation: &str) {
    metrics::counter!(name, "operation" => operation.to_owned()).increment(1);
}

pub(crate) fn operation_ended(operation: &str, outcome: &'static str, seconds: f64) {
    metrics::histogram!(OPERATION_DURATION_SECONDS, "operation" => operation.to_owned(), "outcome" => outcome)
        .record(seconds);
}

pub(crate) fn decision(reason: &'static str) {
    metrics::counter!(IDEMPOTENCY_DECISIONS, "reason" => reason).increment(1);
}

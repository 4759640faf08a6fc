//! [`Instrumented`]: the one place lock and store metrics are recorded.

use std::fmt;
use std::time::Instant;

use async_trait::async_trait;
use ff_traits::{
    ChangeFeed, Error, ForceRelease, HeldLock, IdempotencyRecord, IdempotencyStorage, LockGuard,
    LockName, LockOptions, LockProvider, LockStatus, LossWatch, RecordKey, Result, Revision, Scan,
    ScanFilter, StoreStats, Timestamp,
};

use crate::{STORE_CALL_FAILURES, STORE_CALL_SECONDS};

/// A lock provider or a store, measured: wraps any
/// [`LockProvider`] or [`IdempotencyStorage`] and records the metrics of
/// `METRICS.md` for every call, under the inner backend's
/// [`backend_name`](LockProvider::backend_name).
///
/// Wrap once, where the backend is built for use (the `ff` command and
/// `ff-worktree`'s `open_*` constructors do): a backend wrapped twice is
/// counted twice. Everything else is forwarded unchanged, so a wrapped
/// backend keeps its contract (the conformance suite runs on it).
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ff_metrics::Instrumented;
/// use ff_traits::{IdempotencyStorage, MemoryStore};
///
/// let store = Instrumented::new(MemoryStore::new());
/// assert_eq!(store.backend_name(), "memory");
/// assert!(store.stats().await?.total == 0);
/// # Ok::<(), ff_traits::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Instrumented<T> {
    inner: T,
    /// The store's `backend` label, made once: a store call then clones an
    /// `Arc`, allocating nothing.
    store_label: std::sync::OnceLock<metrics::SharedString>,
}

impl<T> Instrumented<T> {
    /// Measures `inner` from now on.
    #[must_use]
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            store_label: std::sync::OnceLock::new(),
        }
    }

    /// The backend inside.
    #[must_use]
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The backend inside, no longer measured.
    #[must_use]
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: LockProvider> Instrumented<T> {
    /// Reports a grant made after waiting since `started`, and times its
    /// hold until it ends.
    fn granted(&self, options: &LockOptions, started: Instant, guard: LockGuard) -> LockGuard {
        // One clock read ends the wait and starts the hold.
        let granted = Instant::now();
        let (wait, hold) = crate::cache::lock_histograms(
            self.inner.backend_name(),
            crate::mode(options),
            crate::class(options),
        );
        wait.record(granted.saturating_duration_since(started).as_secs_f64());
        let loss = guard.loss_watch();
        guard.wrap_held(|held| {
            Box::new(TimedHold {
                held,
                loss,
                hold,
                since: granted,
                reported: false,
            })
        })
    }
}

#[async_trait]
impl<T: LockProvider> LockProvider for Instrumented<T> {
    fn backend_name(&self) -> &str {
        self.inner.backend_name()
    }

    fn endpoint(&self) -> Option<String> {
        self.inner.endpoint()
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let started = Instant::now();
        match self.inner.acquire(name, options).await {
            Ok(guard) => Ok(self.granted(options, started, guard)),
            Err(e) => {
                if matches!(e, Error::LockTimeout { .. }) {
                    crate::lock_timed_out(self.inner.backend_name(), options, started);
                }
                Err(e)
            }
        }
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        let started = Instant::now();
        Ok(match self.inner.try_acquire(name, options).await? {
            Some(guard) => Some(self.granted(options, started, guard)),
            None => {
                crate::lock_contended(self.inner.backend_name(), options);
                None
            }
        })
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.inner.locks().await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let released = self.inner.force_release(name).await?;
        crate::lock_force_released(self.inner.backend_name(), &released.outcome);
        Ok(released)
    }

    async fn force_release_all(&self) -> Result<Vec<ForceRelease>> {
        let released = self.inner.force_release_all().await?;
        for r in &released {
            crate::lock_force_released(self.inner.backend_name(), &r.outcome);
        }
        Ok(released)
    }
    // Not timed: the feed lives as long as the watcher.
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.watch().await
    }
}

/// A grant's backend side, with its hold timed: the hold (and a loss, if
/// the grant ended lost) is reported once, when the grant ends.
struct TimedHold {
    held: Box<dyn HeldLock>,
    loss: LossWatch,
    hold: metrics::Histogram,
    since: Instant,
    reported: bool,
}

impl TimedHold {
    fn report(&mut self) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        self.hold.record(self.since.elapsed().as_secs_f64());
        if self.loss.lost_reason().is_some() {
            crate::lock_lost();
        }
    }
}

impl fmt::Debug for TimedHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedHold")
            .field("held", &self.held)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HeldLock for TimedHold {
    async fn release(&mut self) -> Result<()> {
        self.report();
        self.held.release().await
    }

    fn release_on_drop(&mut self) {
        self.report();
        self.held.release_on_drop();
    }
}

/// Times one store call and reports it under `backend` and `call`.
async fn store_call<R>(
    backend: metrics::SharedString,
    call: &'static str,
    future: impl Future<Output = Result<R>>,
) -> Result<R> {
    let started = Instant::now();
    let result = future.await;
    metrics::histogram!(STORE_CALL_SECONDS, "backend" => backend.clone(), "call" => call)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(STORE_CALL_FAILURES, "backend" => backend, "call" => call).increment(1);
    }
    result
}

impl<T: IdempotencyStorage> Instrumented<T> {
    fn store_label(&self) -> metrics::SharedString {
        self.store_label
            .get_or_init(|| {
                metrics::SharedString::from_shared(std::sync::Arc::<str>::from(
                    self.inner.backend_name(),
                ))
            })
            .clone()
    }
}

#[async_trait]
impl<T: IdempotencyStorage> IdempotencyStorage for Instrumented<T> {
    fn backend_name(&self) -> &str {
        self.inner.backend_name()
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        store_call(self.store_label(), "load", self.inner.load(key)).await
    }

    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        store_call(self.store_label(), "create", self.inner.create(record)).await
    }

    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let call = self.inner.compare_and_swap(expected, record);
        store_call(self.store_label(), "compare_and_swap", call).await
    }

    async fn compare_and_swap_owned(
        &self,
        expected: Revision,
        claim_id: &str,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let call = self
            .inner
            .compare_and_swap_owned(expected, claim_id, record);
        store_call(self.store_label(), "compare_and_swap_owned", call).await
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        store_call(
            self.store_label(),
            "remove",
            self.inner.remove(key, expected),
        )
        .await
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        store_call(self.store_label(), "scan", self.inner.scan(filter)).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        store_call(self.store_label(), "stats", self.inner.stats()).await
    }

    async fn remove_many(&self, items: &[(RecordKey, Revision)]) -> Result<u64> {
        let call = self.inner.remove_many(items);
        store_call(self.store_label(), "remove_many", call).await
    }

    async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
        let call = self.inner.remove_finished_before(cutoff);
        store_call(self.store_label(), "remove_finished_before", call).await
    }

    // Not timed: the feed lives as long as the watcher.
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.watch().await
    }
}

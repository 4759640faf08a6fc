//! A ForgeFlow plugin, written as a plugin author would: a lock provider
//! and an idempotency store of its own, each checked by the conformance
//! suite every built-in backend passes (`tests/it/conformance.rs`, through
//! the suite's macros), then usable by the worktree manager like any
//! built-in backend (`examples/custom_backend.rs`).
//!
//! * [`TableLocks`]: exclusive locks in a table shared by the tasks of one
//!   process, with its own [`HeldLock`]: fencing tokens, wake-ups by
//!   notification (no polling), revocation by force with loss notice. It
//!   has no shared mode, and says so to the suite (`exclusive_only`).
//! * [`CountingStore`]: a store decorator that counts calls and forwards
//!   them, as one would wrap a client library.
//!
//! Replace the table with your own storage (a database row, a service's
//! lease) and keep the suite green.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use ff_traits::{
    ChangeFeed, Error, FencingToken, ForceOutcome, ForceRelease, HeldLock, IdempotencyRecord,
    IdempotencyStorage, LockGuard, LockInfo, LockMode, LockName, LockOptions, LockProvider,
    LockStatus, LossNotifier, RecordKey, Result, Revision, Scan, ScanFilter, Timestamp,
    lock_unpoisoned, loss_channel,
};
use tokio::sync::Notify;

/// One grant in the table: who holds it, and how to tell them it is lost.
#[derive(Debug)]
struct Grant {
    info: LockInfo,
    loss: LossNotifier,
}

#[derive(Debug, Default)]
struct Table {
    grants: Mutex<BTreeMap<String, Grant>>,
    /// The last fencing token handed out per name: tokens only go up.
    tokens: Mutex<BTreeMap<String, u64>>,
    released: Notify,
}

/// Exclusive locks shared by the tasks of one process.
#[derive(Debug, Clone, Default)]
pub struct TableLocks {
    table: Arc<Table>,
}

impl TableLocks {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn try_grant(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<LockGuard, Box<LockInfo>> {
        let mut grants = lock_unpoisoned(&self.table.grants);
        if let Some(current) = grants.get(name.as_str()) {
            return Err(Box::new(current.info.clone()));
        }
        let token = {
            let mut tokens = lock_unpoisoned(&self.table.tokens);
            let t = tokens.entry(name.as_str().to_owned()).or_insert(0);
            *t += 1;
            *t
        };
        let info = LockInfo::for_current_process(
            name.as_str(),
            FencingToken(token),
            options,
            Timestamp::now(),
        );
        let (loss, watch) = loss_channel();
        grants.insert(
            name.as_str().to_owned(),
            Grant {
                info: info.clone(),
                loss,
            },
        );
        let held = TableHeld {
            table: Arc::clone(&self.table),
            name: name.as_str().to_owned(),
            id: info.id.clone(),
        };
        Ok(LockGuard::new(info, watch, Box::new(held)))
    }
}

fn exclusive_only(options: &LockOptions) -> Result<()> {
    options.validate()?;
    if options.mode != LockMode::Exclusive {
        return Err(Error::Unsupported {
            backend: "table".into(),
            what: format!("{} locks (only exclusive ones)", options.mode),
        });
    }
    Ok(())
}

#[async_trait]
impl LockProvider for TableLocks {
    fn backend_name(&self) -> &str {
        "table"
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        exclusive_only(options)?;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + options.wait_budget();
        let mut told = false;
        loop {
            // Register for the wake-up before looking, so a release between
            // the look and the wait is not missed.
            let released = self.table.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let holder = match self.try_grant(name, options) {
                Ok(guard) => return Ok(guard),
                Err(holder) => holder,
            };
            if !told {
                told = true;
                options.waiting();
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(Error::lock_timeout(
                    name.to_string(),
                    started.elapsed(),
                    Some(*holder),
                ));
            }
        }
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        exclusive_only(options)?;
        Ok(self.try_grant(name, options).ok())
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        Ok(lock_unpoisoned(&self.table.grants)
            .iter()
            .map(|(name, g)| LockStatus::new(name.clone(), true, vec![g.info.clone()]))
            .collect())
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        // In one process every holder is alive: forcing revokes, and the
        // holder learns of it through its guard.
        let revoked = lock_unpoisoned(&self.table.grants).remove(name.as_str());
        self.table.released.notify_waiters();
        let outcome = match revoked {
            None => ForceOutcome::NotHeld,
            Some(grant) => {
                grant.loss.notify_lost("revoked by force_release");
                ForceOutcome::Revoked {
                    previous: vec![grant.info],
                }
            }
        };
        Ok(ForceRelease::new(name.as_str(), outcome))
    }
}

/// The table's side of a held lock.
#[derive(Debug)]
struct TableHeld {
    table: Arc<Table>,
    name: String,
    id: String,
}

impl TableHeld {
    fn end(&self) {
        let mut grants = lock_unpoisoned(&self.table.grants);
        // Only this grant: after a revocation the name may be someone
        // else's already.
        if grants.get(&self.name).is_some_and(|g| g.info.id == self.id) {
            grants.remove(&self.name);
        }
        drop(grants);
        self.table.released.notify_waiters();
    }
}

#[async_trait]
impl HeldLock for TableHeld {
    async fn release(&mut self) -> Result<()> {
        self.end();
        Ok(())
    }

    fn release_on_drop(&mut self) {
        self.end();
    }
}

/// A store decorator that counts the calls it forwards to `S`.
#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    calls: AtomicU64,
}

impl<S> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
        }
    }

    /// Calls forwarded so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<S: IdempotencyStorage> IdempotencyStorage for CountingStore<S> {
    fn backend_name(&self) -> &str {
        "counting"
    }
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        self.count();
        self.inner.load(key).await
    }
    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        self.count();
        self.inner.create(record).await
    }
    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.count();
        self.inner.compare_and_swap(expected, record).await
    }
    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        self.count();
        self.inner.remove(key, expected).await
    }
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        self.count();
        self.inner.scan(filter).await
    }
    // A wrapper forwards what it does not change: without this, `ff serve`
    // would poll a store that can notify.
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.watch().await
    }
}

//! The conformance suite must fail for backends that break the contracts:
//! a check that cannot fail protects nobody. Each test here runs a check
//! against a deliberately broken backend and expects it to panic.

use std::sync::Arc;

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

use ff_traits::{
    Error, ForceRelease, IdempotencyRecord, IdempotencyStorage, LockGuard, LockOptions,
    LockProvider, LockStatus, MemoryLockProvider, RecordKey, Result, Revision, Scan, ScanFilter,
    conformance,
};

/// A naive store: create checks, then writes (two racers can both
/// "create"); swaps ignore the expected revision (last writer wins).
#[derive(Debug, Default)]
struct RacyStore(Mutex<HashMap<RecordKey, IdempotencyRecord>>);

impl RacyStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RecordKey, IdempotencyRecord>> {
        self.0.lock().expect("mutex")
    }
}

#[async_trait]
impl IdempotencyStorage for RacyStore {
    fn backend_name(&self) -> &str {
        "racy"
    }
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        Ok(self.map().get(key).cloned())
    }
    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let exists = self.map().contains_key(&record.key);
        // The window between check and act, wide enough that racers
        // released together all fall into it.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if exists {
            return Err(Error::AlreadyExists {
                what: "record".into(),
            });
        }
        record.revision = Revision::FIRST;
        self.map().insert(record.key.clone(), record.clone());
        Ok(record)
    }
    async fn compare_and_swap(
        &self,
        _expected: Revision,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let current = self.map().get(&record.key).map(|r| r.revision);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let current = current.ok_or_else(|| Error::NotFound {
            what: "record".into(),
        })?;
        record.revision = current.next();
        self.map().insert(record.key.clone(), record.clone());
        Ok(record)
    }
    async fn remove(&self, key: &RecordKey, _expected: Revision) -> Result<()> {
        self.map().remove(key);
        Ok(())
    }
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let records = self
            .map()
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        Ok(Scan::new(records, Vec::new()))
    }
}

/// Grants every lock at once, under a private name: no exclusion at all.
#[derive(Debug, Default)]
struct NoExclusionLocks(MemoryLockProvider);

#[async_trait]
impl LockProvider for NoExclusionLocks {
    fn backend_name(&self) -> &str {
        "no-exclusion"
    }
    async fn acquire(&self, name: &str, options: &LockOptions) -> Result<LockGuard> {
        ff_traits::validate_lock_name(name)?;
        let private = format!("{name}-{}", ff_traits::unique_id());
        self.0.acquire(&private, options).await
    }
    async fn try_acquire(&self, name: &str, options: &LockOptions) -> Result<Option<LockGuard>> {
        self.acquire(name, options).await.map(Some)
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &str) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }
}

fn racy() -> Arc<dyn IdempotencyStorage> {
    Arc::new(RacyStore::default())
}

fn open_locks() -> Arc<dyn LockProvider> {
    Arc::new(NoExclusionLocks::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "exactly one winner")]
async fn racy_create_is_caught() {
    conformance::store::create_if_absent_race_has_one_winner(racy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "exactly one winner")]
async fn unconditional_swap_is_caught() {
    conformance::store::compare_and_swap_race_has_one_winner(racy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "exactly one concurrent claimant may win")]
async fn racy_store_lets_two_claimants_win() {
    conformance::manager::claim_race_has_one_winner(racy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "two exclusive holders")]
async fn missing_exclusion_is_caught() {
    conformance::lock::mutual_exclusion(open_locks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "try_acquire granted a held lock")]
async fn try_acquire_without_exclusion_is_caught() {
    conformance::lock::try_acquire_does_not_wait(open_locks()).await;
}

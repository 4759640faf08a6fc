//! The conformance suite must fail for backends that break the contracts:
//! a check that cannot fail protects nobody. Each test here runs a check
//! against a deliberately broken backend and expects it to panic.

#![allow(clippy::print_stdout)] // the detection figures are the report

use std::sync::Arc;

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

use ff_conformance as conformance;
use ff_traits::{
    ChangeFeed, ChangeSignal, Error, ForceRelease, IdempotencyRecord, IdempotencyStorage,
    LockGuard, LockName, LockOptions, LockProvider, LockStatus, MemoryLockProvider, MemoryStore,
    RecordKey, Result, Revision, Scan, ScanFilter,
};

/// How wide a racy store's window between check and act is.
#[derive(Debug, Default, Clone, Copy)]
enum Window {
    /// 20 ms: racers released together all fall into it.
    #[default]
    Wide,
    /// One `yield_now`: the usual async bug (an await between the check
    /// and the write).
    Narrow,
    /// No await at all: check and write in two critical sections, so only
    /// racers on other threads, inside those nanoseconds, fall into it.
    Thin,
}

/// A naive store: create checks, then writes (two racers can both
/// "create"); swaps ignore the expected revision (last writer wins).
#[derive(Debug, Default)]
struct RacyStore {
    records: Mutex<HashMap<RecordKey, IdempotencyRecord>>,
    window: Window,
}

impl RacyStore {
    fn with(window: Window) -> Self {
        Self {
            records: Mutex::default(),
            window,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RecordKey, IdempotencyRecord>> {
        self.records.lock().expect("mutex")
    }

    async fn gap(&self) {
        match self.window {
            Window::Wide => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Window::Narrow => tokio::task::yield_now().await,
            Window::Thin => {}
        }
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
        self.gap().await;
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
        self.gap().await;
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
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let name = name.as_str();
        let private = format!("{name}-{}", ff_traits::identity::unique_id());
        self.0.acquire(&LockName::new(private)?, options).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.acquire(name, options).await.map(Some)
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }
}

/// Ignores a semaphore's permits: shared holders unlimited, as a backend
/// that took `permits` for an ordinary shared lock would.
#[derive(Debug, Default)]
struct UncappedSemaphores(MemoryLockProvider);

impl UncappedSemaphores {
    fn uncapped(options: &LockOptions) -> LockOptions {
        let mut o = options.clone();
        o.permits = None;
        o
    }
}

#[async_trait]
impl LockProvider for UncappedSemaphores {
    fn backend_name(&self) -> &str {
        "uncapped"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        self.0.acquire(name, &Self::uncapped(options)).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.0.try_acquire(name, &Self::uncapped(options)).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }
}

/// Takes every intention mode for a plain shared lock, as a backend that
/// knew only readers and writers might: IX then coexists with S.
#[derive(Debug, Default)]
struct ReadersAndWritersOnly(MemoryLockProvider);

impl ReadersAndWritersOnly {
    fn flattened(options: &LockOptions) -> LockOptions {
        match options.mode {
            ff_traits::LockMode::Exclusive => options.clone(),
            _ => options.clone().with_mode(ff_traits::LockMode::Shared),
        }
    }
}

#[async_trait]
impl LockProvider for ReadersAndWritersOnly {
    fn backend_name(&self) -> &str {
        "readers-and-writers"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        self.0.acquire(name, &Self::flattened(options)).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.0.try_acquire(name, &Self::flattened(options)).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }
}

/// Says it waits never (`Silent`) or on every acquire (`Always`): a
/// backend that forgot `LockOptions::waiting`, or called it before looking.
#[derive(Debug, Default)]
struct WaitNotices(MemoryLockProvider, bool);

impl WaitNotices {
    fn always() -> Self {
        Self(MemoryLockProvider::default(), true)
    }
    fn unheard(options: &LockOptions) -> LockOptions {
        let mut o = options.clone();
        o.wait_notice = None;
        o
    }
}

#[async_trait]
impl LockProvider for WaitNotices {
    fn backend_name(&self) -> &str {
        "wait-notices"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        if self.1 {
            options.waiting();
        }
        self.0.acquire(name, &Self::unheard(options)).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.0.try_acquire(name, &Self::unheard(options)).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }
}

/// Files records by the first 12 characters of their key, as a store that
/// used `RecordKey::short` for its file names would.
#[derive(Debug, Default)]
struct PrefixKeyedStore(Mutex<HashMap<String, IdempotencyRecord>>);

#[async_trait]
impl IdempotencyStorage for PrefixKeyedStore {
    fn backend_name(&self) -> &str {
        "prefix-keyed"
    }
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        Ok(ff_traits::lock_unpoisoned(&self.0)
            .get(key.short())
            .cloned())
    }
    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let mut map = ff_traits::lock_unpoisoned(&self.0);
        if map.contains_key(record.key.short()) {
            return Err(Error::AlreadyExists {
                what: "record".into(),
            });
        }
        record.revision = Revision::FIRST;
        map.insert(record.key.short().to_owned(), record.clone());
        Ok(record)
    }
    async fn compare_and_swap(
        &self,
        expected: Revision,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let mut map = ff_traits::lock_unpoisoned(&self.0);
        let current = map.get(record.key.short()).map(|r| r.revision);
        if current != Some(expected) {
            return Err(Error::PreconditionFailed {
                what: "record".into(),
                expected,
                actual: current,
            });
        }
        record.revision = expected.next();
        map.insert(record.key.short().to_owned(), record.clone());
        Ok(record)
    }
    async fn remove(&self, key: &RecordKey, _expected: Revision) -> Result<()> {
        ff_traits::lock_unpoisoned(&self.0).remove(key.short());
        Ok(())
    }
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let records = ff_traits::lock_unpoisoned(&self.0)
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        Ok(Scan::new(records, Vec::new()))
    }
}

/// Maps lock names to "safe" names lossily (`/` and `\` become `_`), so
/// `a/b`, `a\b` and `a_b` share one lock.
#[derive(Debug, Default)]
struct LossyNameLocks(MemoryLockProvider);

impl LossyNameLocks {
    fn mapped(name: &LockName) -> Result<LockName> {
        LockName::new(name.as_str().replace(['/', '\\'], "_"))
    }
}

#[async_trait]
impl LockProvider for LossyNameLocks {
    fn backend_name(&self) -> &str {
        "lossy-names"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        self.0.acquire(&Self::mapped(name)?, options).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.0.try_acquire(&Self::mapped(name)?, options).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.0.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(&Self::mapped(name)?).await
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

/// A store whose change feed announces creates and removes but forgets
/// swaps, as a backend that hooked only some of its write paths would.
#[derive(Debug, Default)]
struct ForgetfulFeedStore {
    inner: MemoryStore,
    signal: ChangeSignal,
}

#[async_trait]
impl IdempotencyStorage for ForgetfulFeedStore {
    fn backend_name(&self) -> &str {
        "forgetful-feed"
    }
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        self.inner.load(key).await
    }
    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let created = self.inner.create(record).await;
        self.signal.notify();
        created
    }
    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.inner.compare_and_swap(expected, record).await
    }
    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let removed = self.inner.remove(key, expected).await;
        self.signal.notify();
        removed
    }
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        self.inner.scan(filter).await
    }
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(Some(self.signal.feed_of(false)))
    }
}

/// Locks whose change feed wakes at every read too, as a file backend
/// watching opens would: an idle watcher would read forever.
#[derive(Debug, Default)]
struct ChattyFeedLocks {
    inner: MemoryLockProvider,
    signal: ChangeSignal,
}

#[async_trait]
impl LockProvider for ChattyFeedLocks {
    fn backend_name(&self) -> &str {
        "chatty-feed"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let guard = self.inner.acquire(name, options).await;
        self.signal.notify();
        guard
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.inner.try_acquire(name, options).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.signal.notify();
        self.inner.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.inner.force_release(name).await
    }
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(Some(self.signal.feed_of(false)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a swap went unannounced")]
async fn a_feed_that_forgets_a_write_path_is_caught() {
    conformance::store::change_feed_announces_writes_not_reads(Arc::new(
        ForgetfulFeedStore::default(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "reading the locks woke the feed")]
async fn a_feed_woken_by_reads_is_caught() {
    conformance::lock::change_feed_announces_grants_not_reads(Arc::new(ChattyFeedLocks::default()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "another key's record")]
async fn a_store_that_files_records_by_key_prefix_is_caught() {
    conformance::store::keys_are_exact(Arc::new(PrefixKeyedStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "shares a lock with another name")]
async fn lossy_lock_names_are_caught() {
    conformance::lock::hostile_names_stay_distinct(Arc::new(LossyNameLocks::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a fourth permit of 3 was granted")]
async fn a_semaphore_without_its_cap_is_caught() {
    conformance::lock::semaphore_caps_holders(Arc::new(UncappedSemaphores::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "the matrix says")]
async fn intention_modes_taken_for_shared_are_caught() {
    conformance::lock::intention_modes_follow_the_matrix(
        Arc::new(ReadersAndWritersOnly::default()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "S on the parent granted while a child is held exclusively")]
async fn a_hierarchy_on_readers_and_writers_only_is_caught() {
    conformance::lock::hierarchy_follows_the_tree(Arc::new(ReadersAndWritersOnly::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "an acquire that waited must be told once")]
async fn a_wait_never_told_is_caught() {
    conformance::lock::wait_notice_only_when_waiting(Arc::new(WaitNotices::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "told of a wait when granted at once")]
async fn a_wait_told_without_waiting_is_caught() {
    conformance::lock::wait_notice_only_when_waiting(Arc::new(WaitNotices::always())).await;
}

/// Runs `check` against a fresh racy store with `window` `runs` times;
/// returns how many runs caught the race (panicked).
async fn caught<F, Fut>(window: Window, runs: usize, check: F) -> usize
where
    F: Fn(Arc<dyn IdempotencyStorage>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut caught = 0;
    for _ in 0..runs {
        let run = tokio::spawn(check(Arc::new(RacyStore::with(window))));
        if run.await.is_err_and(|e| e.is_panic()) {
            caught += 1;
        }
    }
    caught
}

/// The race checks repeat their race (`race_rounds`, a fresh key each
/// round) until a store with an await between its check and its write
/// (what any store doing I/O between them has) is caught in at least 99 of
/// 100 runs. A window with no await at all (nanoseconds between two
/// critical sections) is measured and printed, not asserted: black-box
/// racing cannot promise to see it, as the suite's docs say.
/// `FF_CONFORMANCE_RACE_ROUNDS=1` shows what a single round catches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_checks_catch_an_await_wide_window_in_99_of_100_runs() {
    let rounds = conformance::race_rounds();
    for window in [Window::Narrow, Window::Thin] {
        let create = caught(
            window,
            100,
            conformance::store::create_if_absent_race_has_one_winner,
        )
        .await;
        let swap = caught(
            window,
            100,
            conformance::store::compare_and_swap_race_has_one_winner,
        )
        .await;
        let claim = caught(window, 100, conformance::manager::claim_race_has_one_winner).await;
        println!(
            "race detection, {window:?} window, {rounds} round(s), of 100 runs: create {create}, \
             swap {swap}, claim {claim}"
        );
        if rounds == conformance::RACE_ROUNDS && matches!(window, Window::Narrow) {
            for (check, n) in [("create", create), ("swap", swap), ("claim", claim)] {
                assert!(
                    n >= 99,
                    "the {check} race ({window:?} window) was caught in only {n} of 100 runs"
                );
            }
        }
    }
}

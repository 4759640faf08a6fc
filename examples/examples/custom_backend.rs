//! A plugin: a lock provider and a store of your own, checked by the same
//! conformance suite every ForgeFlow backend passes, then used by the
//! worktree manager like any built-in backend.
//!
//! The plugin here is a decorator that counts calls and forwards them to
//! the in-memory reference backends (as one would wrap a client library);
//! replace the forwarding with your own storage. A real crate runs the
//! suite from its tests with `ff_traits::store_conformance_tests!` and
//! `ff_traits::lock_conformance_tests!` (feature `conformance`).
//!
//! Run: `cargo run -p ff-examples --example custom_backend`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use ff_traits::conformance::{lock, manager, store};
use ff_traits::{
    ForceRelease, IdempotencyRecord, IdempotencyStorage, LockGuard, LockName, LockOptions,
    LockProvider, LockStatus, MemoryLockProvider, MemoryStore, RecordKey, Result, Revision, Scan,
    ScanFilter,
};

/// Counts the calls it forwards.
#[derive(Debug, Default)]
struct Counting<T> {
    inner: T,
    calls: AtomicU64,
}

impl<T> Counting<T> {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl IdempotencyStorage for Counting<MemoryStore> {
    fn backend_name(&self) -> &str {
        "counting-memory"
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
}

#[async_trait]
impl LockProvider for Counting<MemoryLockProvider> {
    fn backend_name(&self) -> &str {
        "counting-memory"
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        self.count();
        self.inner.acquire(name, options).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.count();
        self.inner.try_acquire(name, options).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.count();
        self.inner.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.count();
        self.inner.force_release(name).await
    }
}

fn new_store() -> Arc<dyn IdempotencyStorage> {
    Arc::new(Counting::<MemoryStore>::default())
}

fn new_locks() -> Arc<dyn LockProvider> {
    Arc::new(Counting::<MemoryLockProvider>::default())
}

/// Runs each named check on a fresh backend and prints it.
macro_rules! check {
    ($make:expr; $($module:ident :: $name:ident),+ $(,)?) => {
        $(
            $module::$name($make).await;
            println!("  ok  {}::{}", stringify!($module), stringify!($name));
        )+
    };
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    println!("conformance of the plugin store:");
    check!(new_store();
        store::load_absent_is_none, store::create_then_load_round_trips,
        store::create_if_absent_race_has_one_winner, store::compare_and_swap_is_conditional,
        store::compare_and_swap_race_has_one_winner, store::remove_is_conditional,
        store::scan_filters, store::stats_and_cleanup, store::invalid_keys_rejected,
        manager::claim_race_has_one_winner, manager::lifecycle_rules,
        manager::stuck_claim_is_taken_over, manager::exclusive_start_takes_over_at_once,
        manager::only_the_claimant_finishes,
    );
    println!("conformance of the plugin lock provider:");
    check!(new_locks();
        lock::mutual_exclusion, lock::timeout_names_holder, lock::try_acquire_does_not_wait,
        lock::shared_and_exclusive, lock::fencing_tokens_increase, lock::release_wakes_waiter,
        lock::drop_frees_lock, lock::listing_shows_holder, lock::force_release_is_reported,
        lock::hostile_names_stay_distinct, lock::cancelled_wait_leaves_no_grant,
    );

    // The plugin drives a real worktree manager on a temporary repository.
    let temp = tempfile::tempdir()?;
    let repo = temp.path();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@localhost",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "first",
        ],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .status()?;
        assert!(ok.success(), "git {args:?} failed");
    }
    let store = Arc::new(Counting::<MemoryStore>::default());
    let locks = Arc::new(Counting::<MemoryLockProvider>::default());
    let manager = ff_worktree::WorktreeManager::open(
        ff_worktree::WorktreeConfig::new(repo),
        Arc::clone(&locks),
        Arc::clone(&store),
    )
    .await?;
    let wt = manager.create_worktree("PLUGIN-1").await?.worktree;
    manager
        .cleanup_worktree(&wt.id, ff_worktree::Cleanup::Safe)
        .await?;
    println!(
        "worktree {} created and removed through the plugin: {} store calls, {} lock calls",
        wt.id,
        store.calls.load(Ordering::Relaxed),
        locks.calls.load(Ordering::Relaxed)
    );
    Ok(())
}

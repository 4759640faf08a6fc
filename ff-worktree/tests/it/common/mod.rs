//! What the manager's integration tests share: a manager on the embedded
//! backends, its state kept beside the test repository.

#![allow(dead_code)] // each test file uses part of it

use std::path::Path;

use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_testkit::git::TestRepo;
use ff_traits::{IdempotencyStorage, LockProvider, RecordStatus, ScanFilter};
use ff_worktree::{WorktreeConfig, WorktreeManager};

pub(crate) type Manager = WorktreeManager<FileLockProvider, SqliteStore>;

/// A manager on `repo` with file locks and SQLite in `<repo>/../state`.
pub(crate) async fn manager(repo: &TestRepo, config: WorktreeConfig) -> Manager {
    open(&repo.scratch("state"), config).await
}

/// A manager whose state lives in `state`.
pub(crate) async fn open(state: &Path, config: WorktreeConfig) -> Manager {
    let locks = FileLockProvider::new(state.join("locks"));
    let store = SqliteStore::open(state.join("ff.sqlite3")).expect("store");
    WorktreeManager::open(config, locks, store)
        .await
        .expect("open manager")
}

/// The worktrees git lists under the manager's base path.
pub(crate) fn ours<L, S>(repo: &TestRepo, m: &WorktreeManager<L, S>) -> Vec<std::path::PathBuf>
where
    L: LockProvider,
    S: IdempotencyStorage,
{
    repo.worktree_paths()
        .into_iter()
        .filter(|p| p.starts_with(m.base_path()) && !is_pool(p))
        .collect()
}

/// Whether `path` is a warm pool worktree's (`<base>/.ff-pool-…`).
pub(crate) fn is_pool(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(ff_worktree::POOL_PREFIX))
}

/// Asserts the warm pool and git agree: every pool worktree git lists
/// under the base path has a ready record, every record's worktree is
/// there, and no pool directory is left that git does not list.
pub(crate) async fn assert_pool_consistent<L, S>(repo: &TestRepo, m: &WorktreeManager<L, S>)
where
    L: LockProvider,
    S: IdempotencyStorage,
{
    let entries = m.pool_status().await.expect("pool status");
    assert!(
        entries.iter().all(|e| e.ready),
        "a pool worktree is half-made: {entries:?}"
    );
    let mut recorded: Vec<_> = entries.iter().map(|e| e.path.clone()).collect();
    recorded.sort();
    let mut registered: Vec<_> = repo
        .worktree_paths()
        .into_iter()
        .filter(|p| p.starts_with(m.base_path()) && is_pool(p))
        .collect();
    registered.sort();
    assert_eq!(recorded, registered, "pool records and git disagree");
    let mut dirs: Vec<_> = std::fs::read_dir(m.base_path())
        .expect("base path")
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_pool(p))
        .collect();
    dirs.sort();
    assert_eq!(dirs, registered, "pool directories and git disagree");
    for e in &entries {
        let head = ff_testkit::git::git_in(&e.path, &["rev-parse", "HEAD"]);
        assert_eq!(head, e.base_commit, "pool worktree {} moved", e.id);
    }
}

/// What the base path holds besides its guard (`.git`, which keeps git
/// from finding the main checkout from anything under it).
pub(crate) fn base_entries(base: &Path) -> Vec<std::path::PathBuf> {
    let guard = base.join(".git");
    assert!(
        guard.is_file(),
        "the base path {} has no guard",
        base.display()
    );
    std::fs::read_dir(base)
        .expect("base path")
        .flatten()
        .map(|e| e.path())
        .filter(|p| *p != guard)
        .collect()
}

/// A completed record of `key` with `result`, as a finished operation
/// leaves it (for tests that plant records: a leak, a forgery).
pub(crate) fn completed_record(
    key: &ff_traits::IdempotencyKey,
    result: serde_json::Value,
) -> ff_traits::IdempotencyRecord {
    let now = ff_traits::Timestamp::now();
    let owner = ff_traits::ClaimOwner::new(
        "test".into(),
        ff_traits::FencingToken(0),
        now,
        std::process::id(),
        "host".into(),
    );
    let mut record = ff_traits::IdempotencyRecord::new_pending(
        key,
        key.record_key().expect("key"),
        owner,
        None,
        now,
    );
    record.status = RecordStatus::Completed;
    record.owner = None;
    record.ended_at = Some(now);
    record.result = Some(result);
    record
}

/// How many records are pending.
pub(crate) async fn pending<L: LockProvider, S: IdempotencyStorage>(
    m: &WorktreeManager<L, S>,
) -> usize {
    m.idempotency()
        .store()
        .scan(&ScanFilter::default().status(RecordStatus::Pending))
        .await
        .expect("scan")
        .records
        .len()
}

/// Asserts records, git and the base path agree and nothing is half-done:
/// one listed worktree per record, each registered and present; no other
/// directory under the base path (dot names aside); no `ff/*` or `ff-*`
/// branch without a worktree; nothing pending;
/// no lock held by a live holder; `git fsck` clean.
pub(crate) async fn assert_consistent<L, S>(repo: &TestRepo, m: &WorktreeManager<L, S>)
where
    L: LockProvider,
    S: IdempotencyStorage,
{
    let listed = m.list_worktrees().await.expect("list");
    let registered = ours(repo, m);
    let mut recorded: Vec<_> = listed.iter().map(|w| w.path.clone()).collect();
    recorded.sort();
    let mut git_paths = registered.clone();
    git_paths.sort();
    assert_eq!(recorded, git_paths, "records and git disagree");
    let mut dirs: Vec<_> = std::fs::read_dir(m.base_path())
        .expect("base path")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    assert_eq!(dirs, git_paths, "directories and git disagree");
    let mut branches: Vec<_> = listed.iter().map(|w| w.branch.clone()).collect();
    branches.sort();
    assert_eq!(
        repo.ff_branches(),
        branches,
        "branches and records disagree"
    );
    let mut issues: Vec<_> = listed.iter().map(|w| w.issue.clone()).collect();
    issues.dedup();
    assert_eq!(issues.len(), listed.len(), "an issue has two worktrees");
    assert_eq!(pending(m).await, 0, "a record is pending");
    // Every worktree holds its own slot (one rebuilt by recover may have
    // none), and no slot is held for a worktree that is gone.
    let slots = m.slots().await.expect("slots");
    for w in &listed {
        match w.slot {
            Some(s) => assert_eq!(
                slots.get(&s),
                Some(&w.id),
                "slot {s} of {} is not held by it: {slots:?}",
                w.id
            ),
            None => assert!(w.recovered, "{} has no slot", w.id),
        }
    }
    let ids: Vec<&String> = listed.iter().map(|w| &w.id).collect();
    for (s, id) in &slots {
        assert!(
            ids.contains(&id),
            "slot {s} leaked: held for {id}, which is gone"
        );
    }
    let held: Vec<_> = m
        .lock_status()
        .await
        .expect("locks")
        .into_iter()
        // A SIGKILLed holder's Redis lock stays until its TTL, free to any
        // waiter on this host; a live holder's is a leak.
        .filter(|l| {
            l.held
                && l.holders
                    .iter()
                    .any(|h| ff_process::holder_liveness(h) != ff_process::Liveness::Dead)
        })
        .collect();
    assert!(held.is_empty(), "locks still held: {held:?}");
    assert_pool_consistent(repo, m).await;
    repo.assert_fsck_clean();
}

/// `recover`, after a dry run that must foresee it: the same repairs
/// (kind and subject, in order), so `recover --dry-run` shows what
/// `recover` then does. Every recovery scenario of the suite goes through
/// here (the chaos suite excepted: its agents act between the two runs).
///
/// # Errors
/// As [`WorktreeManager::recover`].
pub(crate) async fn recover_as_foreseen<L, S>(
    m: &WorktreeManager<L, S>,
) -> ff_worktree::Result<ff_worktree::Recovery>
where
    L: LockProvider,
    S: IdempotencyStorage,
{
    let foreseen = m.recover(ff_worktree::Recover::DryRun).await?;
    let done = m.recover(ff_worktree::Recover::Repair).await?;
    let steps = |r: &ff_worktree::Recovery| -> Vec<(ff_worktree::RepairKind, String)> {
        r.repairs
            .iter()
            .map(|x| (x.kind, x.subject.clone()))
            .collect()
    };
    assert_eq!(
        steps(&foreseen),
        steps(&done),
        "recover did not do what its dry run showed:\ndry run: {foreseen:#?}\nrecover: {done:#?}"
    );
    Ok(done)
}

//! Git and the disk say what exists; the store says what is in flight.
//! When the store loses its records (Redis restarted without persistence
//! or flushed, PostgreSQL's tables truncated, the SQLite file deleted or restored from an old backup, the
//! JSON records removed), `recover` must keep every live worktree, with
//! its commits and its uncommitted files, and rebuild its record from git;
//! a worktree a create never finished is still rolled back.

use ff_lock_file::FileLockProvider;
use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_json::JsonStore;
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_store_sqlite::SqliteStore;
use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_testkit::redis::RedisServer;
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::{Cleanup, Error, Recover, RepairKind, WorktreeConfig, WorktreeManager};

/// Three live worktrees, each with a commit and an uncommitted file, and a
/// half-made one (registered, never checked out) of ForgeFlow's shape.
async fn live_work<L: LockProvider, S: IdempotencyStorage>(
    repo: &TestRepo,
    m: &WorktreeManager<L, S>,
) -> Vec<ff_worktree::Worktree> {
    let mut made = Vec::new();
    for issue in ["r1", "r2", "r3"] {
        let wt = m.create_worktree(issue).await.expect("create").worktree;
        commit_file(&wt.path, "work.txt", &format!("{issue}\n"), "agent work");
        std::fs::write(wt.path.join("draft.txt"), "unsaved\n").expect("draft");
        made.push(wt);
    }
    let half = m.base_path().join("wt-r4-mx0000-00ff");
    repo.add_worktree("ff-r4-mx0000-00ff", &half, false);
    made
}

/// After the loss: recover keeps the three, rebuilds their records, rolls
/// the half-made one back; list shows them; cleanup behaves as before.
async fn after_the_loss<L: LockProvider, S: IdempotencyStorage>(
    repo: &TestRepo,
    m: &WorktreeManager<L, S>,
    made: &[ff_worktree::Worktree],
) {
    assert!(
        m.list_worktrees().await.expect("list").is_empty(),
        "the store did not lose its records"
    );
    // A dry run says what it would do, and does nothing.
    let looked = m.recover(Recover::DryRun).await.expect("dry run");
    assert_eq!(
        looked
            .repairs
            .iter()
            .filter(|r| r.kind == RepairKind::RebuiltRecord)
            .count(),
        3,
        "{looked:#?}"
    );
    assert!(
        m.list_worktrees().await.expect("list").is_empty(),
        "the dry run wrote records"
    );
    let report = crate::common::recover_as_foreseen(m)
        .await
        .expect("recover");
    let rebuilt = report
        .repairs
        .iter()
        .filter(|r| r.kind == RepairKind::RebuiltRecord)
        .count();
    assert_eq!(rebuilt, 3, "{report:#?}");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::RemovedUnrecordedWorktree
                && r.subject == "wt-r4-mx0000-00ff"),
        "the half-made worktree was not rolled back: {report:#?}"
    );
    for wt in made {
        assert_eq!(
            std::fs::read_to_string(wt.path.join("draft.txt")).expect("the uncommitted file"),
            "unsaved\n"
        );
        assert!(wt.path.join("work.txt").exists());
    }
    let again = crate::common::recover_as_foreseen(m)
        .await
        .expect("recover again");
    assert!(again.repairs.is_empty(), "{again:#?}");
    let listed = m.list_worktrees().await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|w| w.recovered), "{listed:#?}");
    // Each holds a slot again, its own.
    let mut slots: Vec<_> = listed.iter().map(|w| w.slot.expect("a slot")).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), 3, "{listed:#?}");
    for wt in made {
        let again = m.create_worktree(&wt.issue).await.expect("create again");
        assert!(again.reused && again.worktree.path == wt.path);
    }
    // Cleanup as before the loss: refuses to lose work, keeps it when forced.
    let refused = m
        .cleanup_worktree("r1", Cleanup::Safe)
        .await
        .expect_err("unmerged work");
    assert!(
        matches!(refused, Error::WouldLoseWork { .. }),
        "{refused:?}"
    );
    let forced = m
        .cleanup_worktree("r1", Cleanup::Force)
        .await
        .expect("forced");
    assert!(forced.archived_at.is_some());
    repo.assert_fsck_clean();
}

fn config(repo: &TestRepo) -> WorktreeConfig {
    WorktreeConfig::new(repo.path())
}

/// A manager on file locks and SQLite records in `state`.
async fn on_sqlite(
    repo: &TestRepo,
    state: &std::path::Path,
) -> WorktreeManager<FileLockProvider, SqliteStore> {
    WorktreeManager::open(
        config(repo),
        FileLockProvider::new(state.join("locks")),
        SqliteStore::open(state.join("records.sqlite3")).expect("sqlite"),
    )
    .await
    .expect("open")
}

/// The SQLite records in `state` deleted, as a person might.
fn delete_sqlite(state: &std::path::Path) {
    for f in [
        "records.sqlite3",
        "records.sqlite3-wal",
        "records.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(state.join(f));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_removed() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = on_sqlite(&repo, &state).await;
    let made = live_work(&repo, &m).await;
    drop(m);
    delete_sqlite(&state);
    after_the_loss(&repo, &on_sqlite(&repo, &state).await, &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_deleted() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = WorktreeManager::open(
        config(&repo),
        FileLockProvider::new(state.join("locks")),
        JsonStore::open(state.join("records")).expect("json"),
    )
    .await
    .expect("open");
    let made = live_work(&repo, &m).await;
    for entry in std::fs::read_dir(state.join("records"))
        .expect("records")
        .flatten()
    {
        if entry.path().extension().is_some_and(|x| x == "json") {
            std::fs::remove_file(entry.path()).expect("rm record");
        }
    }
    after_the_loss(&repo, &m, &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let repo = TestRepo::new();
    let url = server.url();
    let m = WorktreeManager::open(
        config(&repo),
        RedisLockProvider::connect(RedisLockConfig::new(&url))
            .await
            .expect("locks"),
        RedisStore::connect(RedisStoreConfig::new(&url))
            .await
            .expect("store"),
    )
    .await
    .expect("open");
    let made = live_work(&repo, &m).await;
    flushall(server.port());
    after_the_loss(&repo, &m, &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tables_truncated() {
    let Some(server) = ff_testkit::postgres::PgServer::start() else {
        return;
    };
    let repo = TestRepo::new();
    let url = format!("{}?schema=lost", server.url());
    let m = WorktreeManager::open(
        config(&repo),
        ff_lock_postgres::PostgresLockProvider::connect(ff_lock_postgres::PostgresLockConfig::new(
            &url,
        ))
        .await
        .expect("locks"),
        ff_store_postgres::PostgresStore::open(&url)
            .await
            .expect("store"),
    )
    .await
    .expect("open");
    let made = live_work(&repo, &m).await;
    let _ = server.psql("TRUNCATE lost.records, lost.lock_holders, lost.lock_fences");
    after_the_loss(&repo, &m, &made).await;
}

/// `FLUSHALL`, spoken in the Redis protocol.
fn flushall(port: u16) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n").expect("send");
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"+OK\r\n");
}

/// Two worktrees of ForgeFlow's shape for one issue (another namespace's
/// create, a copy), then the store lost: recover keeps one (its record
/// rebuilt) and archives and removes the other, and its dry run says so
/// first, one for one (`recover_as_foreseen`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worktrees_of_one_issue_after_the_loss() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = on_sqlite(&repo, &state).await;
    let first = m.create_worktree("twice").await.expect("create").worktree;
    commit_file(&first.path, "one.txt", "1\n", "first's work");
    let second = m.base_path().join("wt-twice-mx0001-00aa");
    repo.add_worktree("ff-twice-mx0001-00aa", &second, true);
    commit_file(&second, "two.txt", "2\n", "second's work");
    drop(m);
    delete_sqlite(&state);
    let m = on_sqlite(&repo, &state).await;
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let kinds: Vec<RepairKind> = report.repairs.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&RepairKind::RebuiltRecord), "{report:#?}");
    assert!(
        kinds.contains(&RepairKind::RemovedUnrecordedWorktree),
        "{report:#?}"
    );
    assert_eq!(m.list_worktrees().await.expect("list").len(), 1);
    // Nothing lost: both branches' commits are reachable.
    for file in ["one.txt", "two.txt"] {
        let found = git_in(repo.path(), &["log", "--all", "--format=%s", "--", file]);
        assert!(!found.trim().is_empty(), "{file}'s commit was lost");
    }
    repo.assert_fsck_clean();
}

//! Corrupt state under a working manager: damaged records (truncated and
//! garbage JSON files, a garbage SQLite row, a damaged SQLite header),
//! garbage lock files, read-only store and lock directories, and a full
//! disk. Each gives a clear error and no panic, every other record and
//! worktree stays intact, and `recover` reports what it found and leaves
//! what it cannot judge.

#![allow(clippy::print_stderr)] // loud skips

use std::path::{Path, PathBuf};
use std::process::Command;

use ff_lock_file::FileLockProvider;
use ff_store_json::JsonStore;
use ff_store_sqlite::SqliteStore;
use ff_testkit::Immutable;
use ff_testkit::git::{TestRepo, commit_file};
use ff_traits::{ErrorKind, IdempotencyStorage, LockProvider};
use ff_worktree::{RepairKind, WorktreeConfig, WorktreeManager};

/// A repository and a manager on file locks and the JSON store.
async fn json_manager() -> (
    TestRepo,
    PathBuf,
    WorktreeManager<FileLockProvider, JsonStore>,
) {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let locks = FileLockProvider::new(state.join("locks"));
    let store = JsonStore::open(state.join("records")).expect("json store");
    let m = WorktreeManager::open(WorktreeConfig::new(repo.path()), locks, store)
        .await
        .expect("open");
    (repo, state, m)
}

/// The store file (JSON) holding `issue`'s create record: the one whose
/// text names the issue.
fn json_record_of(state: &Path, issue: &str) -> PathBuf {
    std::fs::read_dir(state.join("records"))
        .expect("records")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| {
                    v["operation"] == "createWorktree" && v["parameters"]["issue"] == issue
                })
        })
        .expect("the issue's record file")
}

/// With `damage` applied to issue "a"'s record, of three worktrees: the
/// other two stay listed and usable, "a" fails clearly, and `recover`
/// reports the record and leaves "a"'s worktree and branch alone.
async fn damaged_record_is_reported_and_nothing_else_suffers<L, S>(
    repo: &TestRepo,
    m: &WorktreeManager<L, S>,
    damage: impl AsyncFnOnce(),
) where
    L: LockProvider,
    S: IdempotencyStorage,
{
    let a = m.create_worktree("a").await.expect("create a").worktree;
    m.create_worktree("b").await.expect("create b");
    m.create_worktree("c").await.expect("create c");
    std::fs::write(a.path.join("precious.txt"), "uncommitted work\n").expect("work");
    damage().await;

    let listed: Vec<String> = m
        .list_worktrees()
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.issue)
        .collect();
    assert_eq!(listed, ["b", "c"], "intact records must stay listed");
    let err = m
        .create_worktree("a")
        .await
        .expect_err("create over damage");
    assert_eq!(err.kind(), ErrorKind::Corrupt.into(), "{err}");
    assert!(!err.to_string().is_empty());
    assert!(m.get("b").await.expect("get b").is_some());
    m.cleanup_worktree("c", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup c");

    let report = crate::common::recover_as_foreseen(m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::CorruptRecord),
        "recover did not report the damaged record: {report:?}"
    );
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::LeftAlone && r.subject == a.id),
        "recover did not say it left a's worktree alone: {report:?}"
    );
    assert!(
        !report.repairs.iter().any(|r| matches!(
            r.kind,
            RepairKind::RemovedUnrecordedWorktree | RepairKind::RemovedOrphanBranch
        )),
        "recover removed what a damaged record may name: {report:?}"
    );
    assert_eq!(
        std::fs::read_to_string(a.path.join("precious.txt")).expect("work survives"),
        "uncommitted work\n"
    );
    assert!(repo.ff_branches().contains(&a.branch));
    repo.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_record() {
    let (repo, state, m) = json_manager().await;
    damaged_record_is_reported_and_nothing_else_suffers(&repo, &m, async || {
        let file = json_record_of(&state, "a");
        let text = std::fs::read(&file).expect("read");
        std::fs::write(&file, &text[..text.len() / 2]).expect("truncate");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_json_record() {
    let (repo, state, m) = json_manager().await;
    damaged_record_is_reported_and_nothing_else_suffers(&repo, &m, async || {
        let file = json_record_of(&state, "a");
        std::fs::write(&file, b"\x00\xff garbage {{{").expect("garbage");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sqlite_row() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = crate::common::open(&state, WorktreeConfig::new(repo.path())).await;
    damaged_record_is_reported_and_nothing_else_suffers(&repo, &m, async || {
        let db = rusqlite::Connection::open(state.join("ff.sqlite3")).expect("open db");
        let changed = db
            .execute(
                "UPDATE records SET body = 'garbage{' \
                 WHERE operation = 'createWorktree' AND body LIKE '%\"issue\":\"a\"%'",
                [],
            )
            .expect("damage");
        assert_eq!(changed, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_sqlite_header_is_a_clear_error_and_the_worktrees_survive() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let wt = {
        let m = crate::common::open(&state, WorktreeConfig::new(repo.path())).await;
        m.create_worktree("h").await.expect("create").worktree
    };
    let db = state.join("ff.sqlite3");
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[..16].copy_from_slice(b"garbage-header!!");
    std::fs::write(&db, bytes).expect("damage");
    let err = SqliteStore::open(&db).expect_err("opened a damaged database");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains(&db.display().to_string()), "{err}");
    // Through the binary's path too: the same error, and git untouched.
    assert!(wt.path.join("README").exists());
    repo.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_lock_files_do_not_block_anything() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = crate::common::open(&state, WorktreeConfig::new(repo.path())).await;
    m.create_worktree("g").await.expect("create");
    m.cleanup_worktree("g", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup");
    let mut damaged = 0;
    for entry in std::fs::read_dir(state.join("locks"))
        .expect("locks")
        .flatten()
    {
        std::fs::write(entry.path(), b"\x00\x01 not a lock record \xff").expect("garbage");
        damaged += 1;
    }
    assert!(damaged >= 2, "expected the registry and issue lock files");
    m.create_worktree("g")
        .await
        .expect("create over garbage locks");
    let status = m.lock_status().await.expect("lock status with garbage");
    assert!(status.iter().all(|l| !l.held), "{status:?}");
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(report.repairs.is_empty(), "{report:?}");
    m.cleanup_worktree("g", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_store_and_lock_directories_fail_clearly_and_leave_nothing() {
    let (repo, state, m) = json_manager().await;
    let kept = m.create_worktree("kept").await.expect("create").worktree;
    // Each round a new issue: an existing lock file stays usable in a
    // read-only directory (only new entries are refused), as it should.
    for (what, dir, issue) in [("store", "records", "new1"), ("locks", "locks", "new2")] {
        let Some(frozen) = Immutable::set(&state.join(dir)) else {
            ff_testkit::skip(
                "FF_REQUIRE_ROOT",
                &format!("read-only {what} directory (chattr +i needs root here)"),
            );
            return;
        };
        let err = m
            .create_worktree(issue)
            .await
            .expect_err("created with a read-only directory");
        assert_eq!(err.kind(), ErrorKind::Backend.into(), "{what}: {err}");
        assert!(
            err.to_string().contains("writable") || err.to_string().contains("permitted"),
            "{what}: {err}"
        );
        assert!(m.get("kept").await.expect("get").is_some(), "{what}");
        drop(frozen);
        // Nothing half-made: after the directory thaws, recover finds
        // nothing to roll back beyond a withdrawn claim, and create works.
        let report = crate::common::recover_as_foreseen(&m)
            .await
            .expect("recover");
        assert!(
            report
                .repairs
                .iter()
                .all(|r| r.kind == RepairKind::RolledBackCreate),
            "{what}: {report:?}"
        );
        m.create_worktree(issue).await.expect("create after thaw");
        m.cleanup_worktree(issue, ff_worktree::Cleanup::Safe)
            .await
            .expect("cleanup");
        crate::common::assert_consistent(&repo, &m).await;
    }
    assert!(kept.path.join("README").exists());
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = ff_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "ff-full-disk");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the filesystem of `dir` with `name` until a write fails.
fn fill(dir: &Path, name: &str) -> PathBuf {
    use std::io::Write;
    let filler = dir.join(name);
    let mut f = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_clearly_and_loses_nothing() {
    let Some(fs) = Tmpfs::mount("8m") else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "full disk (mounting a tmpfs needs root here)",
        );
        return;
    };
    let repo = TestRepo::new_in(&fs.0);
    // A checkout bigger than what will be left.
    commit_file(repo.path(), "big.bin", &"x".repeat(600_000), "a big file");
    let state = repo.scratch("state");
    let m = crate::common::open(&state, WorktreeConfig::new(repo.path())).await;
    let kept = m.create_worktree("kept").await.expect("create").worktree;
    m.create_worktree("victim").await.expect("create");
    // Leave a little room: enough for records and small git files, not
    // for a checkout.
    let filler = fill(&fs.0, "filler");
    let len = std::fs::metadata(&filler).expect("filler").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .and_then(|f| f.set_len(len.saturating_sub(200_000)))
        .expect("free a little");
    let mut failures = 0;
    for issue in ["full1", "full2", "full3"] {
        if let Err(e) = m.create_worktree(issue).await {
            failures += 1;
            assert!(
                matches!(
                    e.kind(),
                    ff_worktree::ErrorKind::Git
                        | ff_worktree::ErrorKind::Contract(ErrorKind::Backend | ErrorKind::Corrupt)
                ),
                "{e}"
            );
            assert!(!e.to_string().is_empty());
        }
    }
    assert!(
        failures > 0,
        "the disk never filled: this test tests nothing"
    );
    // No space at all: a cleanup and a recover may fail, never panic.
    let last = fill(&fs.0, "filler2");
    let _ = m
        .cleanup_worktree("victim", ff_worktree::Cleanup::Safe)
        .await;
    let _ = crate::common::recover_as_foreseen(&m).await;
    // Space back: recover repairs whatever the failures left, and
    // everything agrees again; the kept worktree is whole.
    std::fs::remove_file(&filler).expect("free the disk");
    std::fs::remove_file(&last).expect("free the disk");
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover with space");
    let again = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover again");
    assert!(again.repairs.is_empty(), "{report:?} then {again:?}");
    assert!(
        m.list_worktrees()
            .await
            .expect("list")
            .iter()
            .any(|w| w.issue == "kept")
    );
    assert_eq!(
        std::fs::metadata(kept.path.join("big.bin"))
            .expect("big.bin")
            .len(),
        600_000
    );
    m.create_worktree("after").await.expect("create with space");
    crate::common::assert_consistent(&repo, &m).await;
    drop(m);
    drop(repo);
}

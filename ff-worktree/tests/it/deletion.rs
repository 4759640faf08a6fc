//! A removal moves the worktree's directory out of the way by one rename
//! and drops git's registration; its files are deleted then, or later
//! (`deferred_deletion`), and `recover` finishes a deletion left undone.

use std::path::Path;

use ff_testkit::git::{TestRepo, commit_file};
use ff_worktree::{Cleanup, Recover, RepairKind, WorktreeConfig};

fn config(repo: &TestRepo) -> WorktreeConfig {
    WorktreeConfig::new(repo.path())
}

/// Names under the base path, dot names included.
fn entries(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_cleanup_deletes_the_files_before_it_returns_by_default() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, config(&repo)).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "work\n", "work");
    m.cleanup_worktree("1", Cleanup::Force)
        .await
        .expect("cleanup");
    assert!(!wt.path.exists());
    assert!(m.awaiting_deletion().is_empty());
    assert_eq!(entries(m.base_path()), [".git"], "only the base's guard");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test]
async fn a_deferred_deletion_is_finished_by_recover_and_its_dry_run_says_so() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, config(&repo).with_deferred_deletion(true)).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "work\n", "work");
    std::fs::write(wt.path.join("draft.txt"), "draft\n").expect("draft");
    let cleaned = m
        .cleanup_worktree("1", Cleanup::Force)
        .await
        .expect("cleanup");
    assert!(cleaned.archived_at.is_some(), "the work is kept first");
    // The path is free at once, and git no longer lists it.
    assert!(!wt.path.exists());
    assert!(crate::common::ours(&repo, &m).is_empty());
    let waiting = m.awaiting_deletion();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].join("draft.txt").exists());
    // Git run there fails: it is no worktree any more.
    let git = ff_testkit::git::git_output(&waiting[0], &["status"]);
    assert!(!git.status.success());
    // The next worktree is made at once, beside it.
    let again = m.create_worktree("1").await.expect("create again").worktree;
    assert_eq!(again.path, wt.path);
    m.cleanup_worktree("1", Cleanup::Force)
        .await
        .expect("cleanup again");
    assert_eq!(m.awaiting_deletion().len(), 2);

    let dry = m.recover(Recover::DryRun).await.expect("dry run");
    let would: Vec<_> = dry
        .repairs
        .iter()
        .filter(|r| r.kind == RepairKind::FinishedDeletion)
        .collect();
    assert_eq!(would.len(), 2, "{dry:?}");
    assert_eq!(m.awaiting_deletion().len(), 2, "a dry run deletes nothing");
    let done = m.recover(Recover::Repair).await.expect("recover");
    assert_eq!(
        done.repairs
            .iter()
            .filter(|r| r.kind == RepairKind::FinishedDeletion)
            .count(),
        2,
        "{done:?}"
    );
    assert!(m.awaiting_deletion().is_empty());
    assert_eq!(entries(m.base_path()), [".git"]);
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test]
async fn only_removed_worktrees_directories_are_deleted() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, config(&repo)).await;
    let base = m.base_path().to_path_buf();
    let wt = m.create_worktree("1").await.expect("create").worktree;
    for refused in [
        wt.path.clone(),
        base.join(".ff-kept"),
        base.join(".ff-deleting-"),
        repo.path().join(".ff-deleting-1-0"),
    ] {
        let err = ff_worktree::delete_removed_directory(&base, &refused)
            .expect_err("not a removed worktree's directory");
        assert!(
            matches!(
                err.kind(),
                ff_worktree::ErrorKind::Contract(ff_traits::ErrorKind::InvalidInput)
            ),
            "{err}"
        );
    }
    assert!(wt.path.join(".git").exists(), "nothing was deleted");
}

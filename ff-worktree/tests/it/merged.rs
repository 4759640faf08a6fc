//! Merged means merged, however it was merged: work squash- or
//! rebase-merged into the base is cleaned up without force (and its
//! commits archived all the same), and the cleanup says why it judged the
//! work merged; a branch with one merged and one unmerged change is still
//! refused.

use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_worktree::{Cleanup, Error, WorktreeConfig};

/// A worktree for `issue` with two commits of its own.
async fn two_commits(m: &crate::common::Manager, issue: &str) -> ff_worktree::Worktree {
    let wt = m.create_worktree(issue).await.expect("create").worktree;
    commit_file(&wt.path, &format!("{issue}-a.txt"), "a\n", "first");
    commit_file(&wt.path, &format!("{issue}-b.txt"), "b\n", "second");
    wt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squash_merged_work_is_cleaned_up_without_force_and_kept() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = two_commits(&m, "squashed").await;
    let tip = git_in(&wt.path, &["rev-parse", "HEAD"]);
    let _ = git_in(repo.path(), &["merge", "--squash", &wt.branch]);
    let _ = git_in(repo.path(), &["commit", "-q", "-m", "squash of the issue"]);
    let done = m
        .cleanup_worktree(&wt.id, Cleanup::Safe)
        .await
        .expect("squash-merged work is merged");
    let why = done.merged_because.expect("says why");
    assert!(why.contains("squash"), "{why}");
    let kept = done.archived_at.expect("archived all the same");
    assert_eq!(git_in(repo.path(), &["rev-parse", &kept]), tip);
    assert!(!wt.path.exists());
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebase_merged_work_is_cleaned_up_without_force() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = two_commits(&m, "rebased").await;
    // The base moved on meanwhile, then took the commits one by one.
    commit_file(repo.path(), "other.txt", "other\n", "someone else's work");
    let _ = git_in(
        repo.path(),
        &["cherry-pick", &format!("main..{}", wt.branch)],
    );
    let done = m
        .cleanup_worktree(&wt.id, Cleanup::Safe)
        .await
        .expect("rebase-merged work is merged");
    let why = done.merged_because.expect("says why");
    assert!(why.contains("equivalent change"), "{why}");
    assert!(done.archived_at.is_some(), "archived all the same");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_merged_and_one_unmerged_change_is_still_refused() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = two_commits(&m, "half").await;
    // Only the first commit's change reaches the base.
    let first = git_in(&wt.path, &["rev-parse", "HEAD~1"]);
    let _ = git_in(repo.path(), &["cherry-pick", &first]);
    let err = m
        .cleanup_worktree(&wt.id, Cleanup::Safe)
        .await
        .expect_err("the second change is in no base");
    assert!(matches!(err, Error::WouldLoseWork { .. }), "{err:?}");
    assert!(wt.path.exists(), "nothing removed");
    // Nor is a branch whose squash left a change out.
    let other = two_commits(&m, "partial").await;
    let _ = git_in(
        repo.path(),
        &[
            "checkout",
            "-q",
            &format!("{}~1", other.branch),
            "--",
            "partial-a.txt",
        ],
    );
    let _ = git_in(repo.path(), &["commit", "-q", "-m", "half a squash"]);
    let err = m
        .cleanup_worktree(&other.id, Cleanup::Safe)
        .await
        .expect_err("partial-b.txt is in no base");
    assert!(matches!(err, Error::WouldLoseWork { .. }), "{err:?}");
    crate::common::assert_consistent(&repo, &m).await;
}

/// `prune --dry-run` says exactly what `prune` then removes: merged work
/// (by history, by squash), never unmerged or dirty work, never a worktree
/// whose issue someone holds, never an unused one without `--older-than`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_what_its_dry_run_lists_and_nothing_else() {
    use ff_worktree::{PruneAction, PruneOptions};
    use std::collections::BTreeMap;
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let merged = two_commits(&m, "merged").await;
    let _ = git_in(
        repo.path(),
        &["merge", "-q", "--no-ff", "-m", "merge", &merged.branch],
    );
    let squashed = two_commits(&m, "squashed").await;
    let _ = git_in(repo.path(), &["merge", "--squash", &squashed.branch]);
    let _ = git_in(repo.path(), &["commit", "-q", "-m", "squash"]);
    let unmerged = two_commits(&m, "unmerged").await;
    let dirty = two_commits(&m, "dirty").await;
    let _ = git_in(
        repo.path(),
        &["merge", "-q", "--no-ff", "-m", "merge", &dirty.branch],
    );
    std::fs::write(dirty.path.join("scratch.txt"), "uncommitted\n").expect("write");
    let held = two_commits(&m, "held").await;
    let _ = git_in(
        repo.path(),
        &["merge", "-q", "--no-ff", "-m", "merge", &held.branch],
    );
    let unused = m.create_worktree("unused").await.expect("create").worktree;
    let guard = m.lock_issue("held").await.expect("hold an issue");

    let by_issue = |all: Vec<ff_worktree::Pruned>| -> BTreeMap<String, (PruneAction, String)> {
        all.into_iter()
            .map(|p| (p.worktree.issue, (p.action, p.reason)))
            .collect()
    };
    let planned = by_issue(
        m.prune(PruneOptions::default().with_dry_run(true))
            .await
            .expect("dry run"),
    );
    let would: Vec<&str> = planned
        .iter()
        .filter(|(_, (a, _))| *a == PruneAction::WouldRemove)
        .map(|(i, _)| i.as_str())
        .collect();
    assert_eq!(would, ["merged", "squashed"], "{planned:#?}");
    assert!(planned["unmerged"].1.contains("commit(s)"), "{planned:#?}");
    assert!(planned["dirty"].1.contains("uncommitted"), "{planned:#?}");
    assert!(planned["held"].1.contains("lock is held"), "{planned:#?}");
    assert!(
        planned["unused"].1.contains("no commits of its own"),
        "{planned:#?}"
    );
    assert!(
        merged.path.exists() && squashed.path.exists(),
        "a dry run removes nothing"
    );

    let done = by_issue(m.prune(PruneOptions::default()).await.expect("prune"));
    let removed: Vec<&str> = done
        .iter()
        .filter(|(_, (a, _))| *a == PruneAction::Removed)
        .map(|(i, _)| i.as_str())
        .collect();
    assert_eq!(removed, would, "{done:#?}");
    assert!(!merged.path.exists() && !squashed.path.exists());
    for kept in [&unmerged, &dirty, &held, &unused] {
        assert!(kept.path.exists(), "{} was removed", kept.issue);
    }
    guard.release().await.expect("release");

    // --older-than 0: the unused worktree too (nothing to lose), still not
    // the unmerged or the dirty one.
    let done = by_issue(
        m.prune(PruneOptions::default().with_older_than(std::time::Duration::ZERO))
            .await
            .expect("prune by age"),
    );
    assert_eq!(done["unused"].0, PruneAction::Removed, "{done:#?}");
    assert_eq!(done["unmerged"].0, PruneAction::Kept, "{done:#?}");
    assert_eq!(done["dirty"].0, PruneAction::Kept, "{done:#?}");
    assert!(!unused.path.exists() && unmerged.path.exists() && dirty.path.exists());
    std::fs::remove_file(dirty.path.join("scratch.txt")).expect("rm");
    crate::common::assert_consistent(&repo, &m).await;
}

//! Lifecycle hooks through the library: `post_create` once per worktree
//! with the worktree's environment; a failing one rolled back or kept
//! marked; `pre_cleanup` and `pre_sync` refusing.

#![cfg(unix)] // hooks run with sh; symlinks and modes are Unix ones

use ff_testkit::git::{TestRepo, commit_file};
use ff_worktree::hooks::{Hooks, OnHookFailure};
use ff_worktree::{Cleanup, ErrorKind, SyncOptions, WorktreeConfig};

fn hooks(post_create: &[&str]) -> Hooks {
    let mut h = Hooks::default();
    h.post_create = post_create.iter().map(|s| (*s).to_owned()).collect();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_create_runs_once_with_the_worktrees_environment() {
    let repo = TestRepo::new();
    let log = repo.scratch("hooklog").join("log");
    let hook = format!(
        "echo \"$FF_HOOK $FF_ISSUE $FF_HOOK_ATTEMPT $FF_SLOT $FF_PORT $FF_WORKTREE_ID\" >> '{}'; test \"$PWD\" = \"$FF_WORKTREE_PATH\"",
        log.display()
    );
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(repo.path())
            .with_hooks(hooks(&[&hook]))
            .with_ports(5000, 1),
    )
    .await;
    let wt = m.create_worktree("7").await.expect("create").worktree;
    let again = m.create_worktree("7").await.expect("again");
    assert!(again.reused);
    let lines = std::fs::read_to_string(&log).expect("log");
    assert_eq!(lines, format!("post_create 7 1 0 5000 {}\n", wt.id), "once");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_post_create_rolls_back_or_keeps() {
    let repo = TestRepo::new();
    let failing = "echo installing; echo 'npm ERR! missing' >&2; exit 3";
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_hooks(hooks(&[failing])),
    )
    .await;
    let err = m.create_worktree("r").await.expect_err("the hook fails");
    assert_eq!(err.kind(), ErrorKind::HookFailed, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("post_create") && text.contains("npm ERR! missing"),
        "{text}"
    );
    assert!(m.get("r").await.expect("get").is_none(), "rolled back");
    assert!(crate::common::ours(&repo, &m).is_empty());
    assert!(repo.ff_branches().is_empty());
    crate::common::assert_consistent(&repo, &m).await;

    let mut keep = hooks(&[failing]);
    keep.on_failure = OnHookFailure::Keep;
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path()).with_hooks(keep)).await;
    let err = m.create_worktree("k").await.expect_err("the hook fails");
    assert_eq!(err.kind(), ErrorKind::HookFailed, "{err}");
    let kept = m.get("k").await.expect("get").expect("kept");
    assert!(kept.hook_failed, "{kept:?}");
    assert!(kept.path.join(".git").exists());
    // Not run again: the next create answers with the marked worktree.
    let again = m.create_worktree("k").await.expect("reused");
    assert!(again.reused && again.worktree.hook_failed);
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_cleanup_and_pre_sync_refuse_unless_forced() {
    let repo = TestRepo::new();
    let mut h = Hooks::default();
    h.pre_cleanup = vec!["echo still serving >&2; exit 1".into()];
    h.pre_sync = vec!["exit 2".into()];
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path()).with_hooks(h)).await;
    m.create_worktree("c").await.expect("create");
    let err = m
        .cleanup_worktree("c", Cleanup::Safe)
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::HookFailed, "{err}");
    assert!(err.to_string().contains("still serving"), "{err}");
    assert!(m.get("c").await.expect("get").is_some(), "kept");
    commit_file(repo.path(), "base.txt", "moved\n", "base moved");
    let err = m
        .sync_worktree("c", SyncOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::HookFailed, "{err}");
    let cleaned = m
        .cleanup_worktree("c", Cleanup::Force)
        .await
        .expect("forced");
    assert!(cleaned.removed.is_some());
    crate::common::assert_consistent(&repo, &m).await;
}

/// A prune keeps a worktree whose `pre_cleanup` refuses, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_honours_pre_cleanup() {
    let repo = TestRepo::new();
    let mut h = Hooks::default();
    h.pre_cleanup = vec!["echo busy >&2; exit 1".into()];
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path()).with_hooks(h)).await;
    m.create_worktree("p").await.expect("create");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let pruned = m
        .prune(
            ff_worktree::PruneOptions::default()
                .with_older_than(std::time::Duration::from_millis(1)),
        )
        .await
        .expect("prune");
    assert_eq!(pruned.len(), 1);
    assert_eq!(
        pruned[0].action,
        ff_worktree::PruneAction::Kept,
        "{pruned:?}"
    );
    assert!(
        pruned[0].reason.contains("pre_cleanup") && pruned[0].reason.contains("busy"),
        "{pruned:?}"
    );
    assert!(m.get("p").await.expect("get").is_some());
    crate::common::assert_consistent(&repo, &m).await;
}

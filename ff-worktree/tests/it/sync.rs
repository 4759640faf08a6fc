//! sync_worktree on real repositories: remotes, conflicts, dirty trees.

use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_worktree::Error;
use ff_worktree::{SyncOptions, SyncStrategy, WorktreeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fetches_a_remote_that_advanced_and_rebases_onto_it() {
    let repo = TestRepo::new();
    let other = repo.with_remote();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("7").await.expect("create").worktree;
    commit_file(&wt.path, "mine.txt", "mine\n", "my work");
    commit_file(&other, "theirs.txt", "theirs\n", "their work");
    let _ = git_in(&other, &["push", "-q", "origin", "main"]);
    let pushed = git_in(&other, &["rev-parse", "HEAD"]);

    let synced = m
        .sync_worktree("7", SyncOptions::default())
        .await
        .expect("sync");
    assert_eq!(synced.fetched_from.as_deref(), Some("origin"));
    assert_eq!(synced.onto, "refs/remotes/origin/main");
    assert_eq!(synced.onto_commit, pushed);
    assert!(synced.changed());
    assert!(wt.path.join("theirs.txt").exists() && wt.path.join("mine.txt").exists());
    // Rebased: their commit is the parent of ours, no merge commit.
    assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD~1"]), pushed);
    // The main worktree and its branch were not touched.
    assert!(!repo.path().join("theirs.txt").exists());

    // Again: nothing to do, the branch stays.
    let again = m
        .sync_worktree(&wt.id, SyncOptions::default())
        .await
        .expect("sync again");
    assert!(!again.changed());
    assert_eq!(again.head_after, synced.head_after);
    crate::common::assert_consistent(&repo, &m).await;
}

/// An upstream configured but never fetched (its remote-tracking ref is
/// not there: `[gone]`) is no upstream yet: the sync goes onto the local
/// base and fetches nothing, as `main@{upstream}` answers then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_never_fetched_leaves_the_local_base() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("9").await.expect("create").worktree;
    let _ = git_in(
        repo.path(),
        &["remote", "add", "origin", "/nonexistent/remote.git"],
    );
    let _ = git_in(repo.path(), &["config", "branch.main.remote", "origin"]);
    let _ = git_in(
        repo.path(),
        &["config", "branch.main.merge", "refs/heads/main"],
    );
    commit_file(repo.path(), "base.txt", "base\n", "base moved");
    let synced = m
        .sync_worktree("9", SyncOptions::default())
        .await
        .expect("sync onto the local base, fetching nothing");
    assert_eq!(synced.fetched_from, None);
    assert_eq!(synced.onto, "main");
    assert!(wt.path.join("base.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_merges_when_asked() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("8").await.expect("create").worktree;
    commit_file(&wt.path, "mine.txt", "mine\n", "my work");
    commit_file(repo.path(), "base.txt", "base\n", "base moved");
    let synced = m
        .sync_worktree(
            "8",
            SyncOptions::default().with_strategy(SyncStrategy::Merge),
        )
        .await
        .expect("sync");
    assert_eq!(synced.fetched_from, None);
    assert_eq!(synced.onto, "main");
    let parents = git_in(&wt.path, &["rev-list", "--parents", "-n", "1", "HEAD"]);
    assert_eq!(parents.split(' ').count(), 3, "a merge commit: {parents}");
    assert!(wt.path.join("base.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_aborts_cleanly_and_names_the_files() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("9").await.expect("create").worktree;
    commit_file(&wt.path, "README", "mine\n", "mine");
    std::fs::write(wt.path.join("untracked.txt"), "kept\n").expect("write");
    commit_file(repo.path(), "README", "theirs\n", "theirs");
    let before = git_in(&wt.path, &["rev-parse", "HEAD"]);

    for strategy in [SyncStrategy::Rebase, SyncStrategy::Merge] {
        let err = m
            .sync_worktree("9", SyncOptions::default().with_strategy(strategy))
            .await
            .expect_err("conflict");
        match &err {
            Error::Conflict { paths, what, .. } => {
                assert_eq!(paths, &vec!["README".to_owned()]);
                assert!(what.contains(strategy.as_str()), "{what}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(err.to_string().contains("README"), "{err}");
        // Exactly as before: same head, same branch, clean, nothing in
        // progress, untracked file still there.
        assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD"]), before);
        assert_eq!(
            git_in(&wt.path, &["symbolic-ref", "--short", "HEAD"]),
            wt.branch
        );
        assert_eq!(
            git_in(&wt.path, &["status", "--porcelain", "--untracked-files=no"]),
            ""
        );
        assert_eq!(
            std::fs::read_to_string(wt.path.join("README")).expect("read"),
            "mine\n"
        );
        assert!(wt.path.join("untracked.txt").exists());
    }
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_worktree_is_refused_unless_autostash() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("10").await.expect("create").worktree;
    std::fs::write(wt.path.join("README"), "edited, not committed\n").expect("write");
    commit_file(repo.path(), "base.txt", "base\n", "base moved");
    let before = git_in(&wt.path, &["rev-parse", "HEAD"]);

    let err = m
        .sync_worktree("10", SyncOptions::default())
        .await
        .expect_err("dirty");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("README") && message.contains("autostash"),
        "{message}"
    );
    assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD"]), before);

    let synced = m
        .sync_worktree("10", SyncOptions::default().with_autostash(true))
        .await
        .expect("autostash sync");
    assert!(synced.changed());
    assert!(wt.path.join("base.txt").exists());
    assert_eq!(
        std::fs::read_to_string(wt.path.join("README")).expect("read"),
        "edited, not committed\n"
    );
    let stashes = repo.git(&["stash", "list"]);
    assert_eq!(stashes, "", "autostash left a stash behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_worktrees_and_a_users_own_rebase_are_refused() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let err = m
        .sync_worktree("nope", SyncOptions::default())
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, Error::Contract(ff_traits::Error::NotFound { .. })),
        "{err:?}"
    );

    let wt = m.create_worktree("11").await.expect("create").worktree;
    commit_file(&wt.path, "README", "mine\n", "mine");
    commit_file(repo.path(), "README", "theirs\n", "theirs");
    // The user starts a rebase by hand and stops on its conflict.
    let out = ff_testkit::git::git_output(&wt.path, &["rebase", "main"]);
    assert!(!out.status.success());
    let err = m
        .sync_worktree("11", SyncOptions::default())
        .await
        .expect_err("user's rebase");
    assert!(err.to_string().contains("did not start it"), "{err}");
    // Still theirs to finish.
    assert!(
        ff_testkit::git::git_output(&wt.path, &["rebase", "--abort"])
            .status
            .success()
    );
}

/// A worktree made from a remote-tracking base (`origin/main`, as agents
/// often branch) is synced onto that ref after fetching it from its remote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_tracking_base_is_fetched_before_the_sync() {
    for base in ["origin/main", "refs/remotes/origin/main"] {
        let repo = TestRepo::new();
        let other = repo.with_remote();
        let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path()).with_base_ref(base))
            .await;
        let wt = m.create_worktree("9").await.expect("create").worktree;
        assert_eq!(wt.base, base);
        commit_file(&wt.path, "mine.txt", "mine\n", "my work");
        commit_file(&other, "theirs.txt", "theirs\n", "their work");
        let _ = git_in(&other, &["push", "-q", "origin", "main"]);
        let pushed = git_in(&other, &["rev-parse", "HEAD"]);

        let synced = m
            .sync_worktree("9", SyncOptions::default())
            .await
            .expect("sync");
        assert_eq!(
            synced.fetched_from.as_deref(),
            Some("origin"),
            "base {base}"
        );
        assert_eq!(synced.onto, "refs/remotes/origin/main");
        assert_eq!(synced.onto_commit, pushed, "base {base}: not fetched");
        assert!(synced.changed());
        assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD~1"]), pushed);
        assert!(wt.path.join("theirs.txt").exists());
    }
}

//! The evict-oldest limit policy, and the operator's view: lock status,
//! record statistics, record cleanup, force release.

use std::time::Duration;

use ff_testkit::git::{TestRepo, commit_file};
use ff_worktree::{LimitPolicy, SyncOptions, WorktreeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_oldest_removes_only_worktrees_with_nothing_to_lose() {
    let repo = TestRepo::new();
    let config = WorktreeConfig::new(repo.path())
        .with_max_worktrees(2)
        .with_limit_policy(LimitPolicy::EvictOldest);
    let m = crate::common::manager(&repo, config).await;
    let a = m.create_worktree("a").await.expect("a").worktree;
    commit_file(&a.path, "work.txt", "unmerged\n", "unmerged work");
    let b = m.create_worktree("b").await.expect("b").worktree;

    // a is oldest but has unmerged work: b goes.
    let c = m.create_worktree("c").await.expect("c");
    assert_eq!(c.evicted.len(), 1);
    assert_eq!(c.evicted[0].id, b.id);
    assert!(!b.path.exists() && a.path.exists());

    // c is dirty, a unmerged: nothing may go, so d is refused, leaving no
    // record and no directory.
    std::fs::write(c.worktree.path.join("scratch.txt"), "uncommitted\n").expect("write");
    let err = m.create_worktree("d").await.expect_err("nothing evictable");
    assert!(err.to_string().contains("none could be evicted"), "{err}");
    assert!(m.get("d").await.expect("get").is_none());
    assert_eq!(crate::common::ours(&repo, &m).len(), 2);
    assert!(a.path.join("work.txt").exists() && c.worktree.path.join("scratch.txt").exists());
    std::fs::remove_file(c.worktree.path.join("scratch.txt")).expect("rm");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_stats_and_record_cleanup() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("42").await.expect("create").worktree;
    commit_file(repo.path(), "base.txt", "base\n", "base moved");
    m.sync_worktree("42", SyncOptions::default())
        .await
        .expect("sync");

    let locks = m.lock_status().await.expect("locks");
    let names: Vec<&str> = locks.iter().map(|l| l.name.as_str()).collect();
    let repository = m.repository_lock_name().as_str();
    assert!(
        names.contains(&format!("{repository}/issue-42").as_str()),
        "the issue lock lies beneath the repository's node: {names:?}"
    );
    assert!(
        names.contains(&repository),
        "the node its intention locks were taken on: {names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("-registry")), "{names:?}");
    assert!(locks.iter().all(|l| !l.held));

    let stats = m.idempotency_stats().await.expect("stats");
    assert_eq!(stats.total, 3);
    assert_eq!(stats.by_operation.get("createWorktree"), Some(&1));
    assert_eq!(stats.by_operation.get("worktreeSlot"), Some(&1));
    assert_eq!(stats.by_operation.get("syncWorktree"), Some(&1));
    assert!((stats.success_rate - 100.0).abs() < f64::EPSILON);

    // A long max age keeps everything; zero removes the sync record but
    // never the records that say the worktree exists and which slot it
    // holds (assert_consistent below checks the slot).
    assert_eq!(
        m.cleanup_idempotency_records(Duration::from_secs(3_600))
            .await
            .expect("gc"),
        0
    );
    assert_eq!(
        m.cleanup_idempotency_records(Duration::ZERO)
            .await
            .expect("gc"),
        1
    );
    assert_eq!(m.get("42").await.expect("get").map(|w| w.id), Some(wt.id));

    let released = m.force_release_all_locks().await.expect("force");
    assert_eq!(released.len(), locks.len());
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_an_issue_keeps_its_operations_out() {
    let repo = TestRepo::new();
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_lock_timeout(Duration::from_millis(300)),
    )
    .await;
    m.create_worktree("held").await.expect("create");
    let guard = m.lock_issue("held").await.expect("lock");
    let err = m
        .cleanup_worktree("held", ff_worktree::Cleanup::Force)
        .await
        .expect_err("cleanup must wait for the holder");
    assert!(
        matches!(
            err,
            ff_worktree::Error::Contract(ff_traits::Error::LockTimeout { .. })
        ),
        "{err:?}"
    );
    assert!(m.lock_issue("../x").await.is_err());
    guard.release().await.expect("release");
    m.cleanup_worktree("held", ff_worktree::Cleanup::Force)
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_never_wait_for_each_other_beneath_the_repository() {
    let repo = TestRepo::new();
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_lock_timeout(Duration::from_millis(500)),
    )
    .await;
    // Holding one issue (an intention lock on the repository's node and
    // the issue's leaf), another issue's whole create runs.
    let a = m.lock_issue("a").await.expect("lock a");
    m.create_worktree("b").await.expect("b beside a held issue");
    m.cleanup_worktree("b", ff_worktree::Cleanup::Force)
        .await
        .expect("cleanup b beside a held issue");
    a.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_lock_waits_for_issue_work_and_keeps_new_work_out() {
    use ff_traits::{Error, LockMode};
    let repo = TestRepo::new();
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_lock_timeout(Duration::from_millis(300)),
    )
    .await;
    m.create_worktree("a").await.expect("create");

    // Issue work in flight: the repository cannot be taken exclusively.
    let issue = m.lock_issue("a").await.expect("lock a");
    let err = m
        .lock_repository(LockMode::Exclusive)
        .await
        .expect_err("the repository lock must wait for issue work");
    assert!(
        matches!(err, ff_worktree::Error::Contract(Error::LockTimeout { .. })),
        "{err:?}"
    );
    // Nor shared: a shared lock on the node keeps intentions to write
    // beneath it out (S against IX), so it waits too.
    let err = m
        .lock_repository(LockMode::Shared)
        .await
        .expect_err("S excludes the IX of an issue in flight");
    assert!(
        matches!(err, ff_worktree::Error::Contract(Error::LockTimeout { .. })),
        "{err:?}"
    );
    issue.release().await.expect("release");

    // Held exclusively: no issue work starts, and nothing changes on disk.
    let repository = m
        .lock_repository(LockMode::Exclusive)
        .await
        .expect("repository lock");
    let before = crate::common::ours(&repo, &m).len();
    let err = m
        .create_worktree("b")
        .await
        .expect_err("creates wait for the repository lock");
    assert!(
        matches!(err, ff_worktree::Error::Contract(Error::LockTimeout { .. })),
        "{err:?}"
    );
    assert!(m.lock_issue("a").await.is_err());
    assert_eq!(crate::common::ours(&repo, &m).len(), before);
    assert!(m.get("b").await.expect("get").is_none());
    repository.release().await.expect("release");

    m.create_worktree("b")
        .await
        .expect("b after the repository lock");
    crate::common::assert_consistent(&repo, &m).await;
}

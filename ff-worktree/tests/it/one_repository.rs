//! One repository wherever you stand: a manager opened from the main
//! worktree, a subdirectory, one of ForgeFlow's worktrees or a worktree
//! made by hand sees the same base path, state, records and locks; a call
//! naming another base path still finds an issue's worktree; a deleted
//! worktree directory comes back from its branch; a cleanup never deletes
//! a worktree nested inside another.

use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_worktree::{Cleanup, Error, WorktreeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_place_in_the_repository_is_the_same_repository() {
    let repo = TestRepo::new();
    let root = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open at the root");
    let first = root.create_worktree("1").await.expect("create 1").worktree;
    std::fs::create_dir_all(first.path.join("src/deep")).expect("subdir");
    let by_hand = repo.scratch("by-hand").join("wt");
    repo.add_worktree("human", &by_hand, true);

    for place in [
        repo.path().to_path_buf(),
        first.path.clone(),
        first.path.join("src/deep"),
        by_hand.clone(),
    ] {
        let m = ff_worktree::open_embedded(WorktreeConfig::new(&place))
            .await
            .expect("open");
        assert_eq!(m.base_path(), root.base_path(), "from {}", place.display());
        let again = m.create_worktree("1").await.expect("create 1 again");
        assert!(
            again.reused,
            "from {}: a second worktree for issue 1",
            place.display()
        );
        assert_eq!(again.worktree.id, first.id);
        let ids: Vec<String> = m
            .list_worktrees()
            .await
            .expect("list")
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert!(ids.contains(&first.id), "from {}: {ids:?}", place.display());
    }
    // An issue created from inside a worktree branches from the
    // repository's HEAD and lives beside the others, not inside.
    let inner = ff_worktree::open_embedded(WorktreeConfig::new(&first.path))
        .await
        .expect("open inside");
    let second = inner.create_worktree("2").await.expect("create 2").worktree;
    assert_eq!(second.path.parent(), Some(root.base_path()));
    assert_eq!(second.base, "main");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_base_path_still_finds_the_issues_worktree() {
    let repo = TestRepo::new();
    let m = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open");
    let wt = m.create_worktree("5").await.expect("create").worktree;
    let elsewhere = repo.scratch("elsewhere");
    let other =
        ff_worktree::open_embedded(WorktreeConfig::new(repo.path()).with_base_path(&elsewhere))
            .await
            .expect("open with another base path");
    let again = other.create_worktree("5").await.expect("create 5 again");
    assert!(again.reused);
    assert_eq!(
        again.worktree.path, wt.path,
        "it says where the worktree is"
    );
    assert_eq!(
        crate::common::base_entries(&elsewhere).len(),
        0,
        "no second worktree"
    );
    // And it is cleaned up where it is, leaving nothing behind there.
    other
        .cleanup_worktree("5", ff_worktree::Cleanup::Force)
        .await
        .expect("cleanup under the earlier base path");
    assert!(!wt.path.exists());
    let earlier = wt.path.parent().expect("earlier base");
    let left: Vec<_> = std::fs::read_dir(earlier)
        .expect("earlier base")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".git")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_worktree_directory_is_restored_from_its_branch() {
    let repo = TestRepo::new();
    let m = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open");
    let wt = m.create_worktree("7").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "precious\n", "agent work");
    let head = git_in(&wt.path, &["rev-parse", "HEAD"]);
    std::fs::remove_dir_all(&wt.path).expect("rm -rf the worktree");

    let again = m.create_worktree("7").await.expect("create again");
    assert!(again.reused);
    assert_eq!(again.worktree.path, wt.path);
    assert_eq!(
        std::fs::read_to_string(wt.path.join("work.txt")).expect("restored file"),
        "precious\n"
    );
    assert_eq!(
        git_in(&wt.path, &["rev-parse", "HEAD"]),
        head,
        "commits intact"
    );
    assert_eq!(
        git_in(&wt.path, &["rev-parse", "--abbrev-ref", "HEAD"]),
        wt.branch
    );
    repo.assert_fsck_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_refuses_to_delete_a_nested_worktree() {
    let repo = TestRepo::new();
    let m = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open");
    let wt = m.create_worktree("8").await.expect("create").worktree;
    let nested = wt.path.join("nested");
    repo.add_worktree("inner", &nested, true);
    std::fs::write(nested.join("mine.txt"), "keep\n").expect("write");
    for mode in [Cleanup::Safe, Cleanup::Force] {
        let err = m
            .cleanup_worktree("8", mode)
            .await
            .expect_err("a worktree with another inside must not be removed");
        assert!(matches!(err, Error::Refused { .. }), "{err:?}");
        assert!(err.to_string().contains("live inside it"), "{err}");
    }
    assert!(nested.join("mine.txt").exists());
}

/// A recorded worktree git no longer lists though its directory is there
/// (what a `git worktree add` killed while restoring it leaves): recover
/// moves the directory aside, deleting nothing, and makes the worktree
/// again from its branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worktree_git_lost_is_made_again_and_its_directory_kept() {
    let repo = TestRepo::new();
    let m = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open");
    let wt = m.create_worktree("11").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "committed\n", "agent work");
    std::fs::write(wt.path.join("draft.txt"), "unsaved\n").expect("draft");
    let admin = repo.path().join(".git/worktrees").join(&wt.id);
    std::fs::remove_dir_all(&admin).expect("make git forget it");

    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let restored = report
        .repairs
        .iter()
        .find(|r| r.kind == ff_worktree::RepairKind::RestoredWorktree)
        .unwrap_or_else(|| panic!("{report:#?}"));
    let aside = restored
        .detail
        .rsplit(' ')
        .next()
        .expect("where it was kept");
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(aside).join("draft.txt"))
            .expect("the old directory and its uncommitted file"),
        "unsaved\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.path.join("work.txt")).expect("made again"),
        "committed\n"
    );
    assert!(
        crate::common::recover_as_foreseen(&m)
            .await
            .expect("again")
            .repairs
            .is_empty()
    );
    let again = m.create_worktree("11").await.expect("create again");
    assert!(again.reused && again.worktree.path == wt.path);
}

/// An empty directory where a recorded worktree was, unknown to git (a
/// `git worktree add` killed right after making it): it holds nothing, so
/// recover removes it and forgets the worktree, keeping its branch's work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_unlisted_directory_is_forgotten_and_its_work_kept() {
    let repo = TestRepo::new();
    let m = ff_worktree::open_embedded(WorktreeConfig::new(repo.path()))
        .await
        .expect("open");
    let wt = m.create_worktree("12").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "committed\n", "agent work");
    let head = git_in(&wt.path, &["rev-parse", "HEAD"]);
    std::fs::remove_dir_all(repo.path().join(".git/worktrees").join(&wt.id)).expect("admin");
    std::fs::remove_dir_all(&wt.path).expect("contents");
    std::fs::create_dir(&wt.path).expect("empty directory");

    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == ff_worktree::RepairKind::ForgotVanished),
        "{report:#?}"
    );
    assert!(!wt.path.exists());
    assert_eq!(
        git_in(
            repo.path(),
            &["rev-parse", &format!("refs/ff/archive/{}", wt.id)]
        ),
        head,
        "the branch's work is kept"
    );
    assert!(m.list_worktrees().await.expect("list").is_empty());
}

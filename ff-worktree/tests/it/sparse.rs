//! Sparse worktrees: only the top-level files and the directories named
//! are written; sync and cleanup keep it so and never mistake the files
//! left out for deleted ones; bad directories are refused before anything
//! is made.

use std::path::Path;

use ff_testkit::git::{TestRepo, git_in};
use ff_worktree::{Checkout, Cleanup, ErrorKind, Sparse, SparseDir, SyncOptions, WorktreeConfig};

/// Commits `files` (path, content) to the repository at `dir`, making
/// their directories.
fn commit_files(dir: &Path, files: &[(&str, &str)], message: &str) {
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&file, content).expect("write");
        let _ = git_in(dir, &["add", "--", path]);
    }
    let _ = git_in(dir, &["commit", "-q", "-m", message]);
}

fn tree(repo: &TestRepo) {
    commit_files(
        repo.path(),
        &[
            ("src/app/main.rs", "fn main() {}\n"),
            ("src/lib.rs", "\n"),
            ("docs/guide.md", "guide\n"),
            ("vendor/big/blob.bin", "blob\n"),
            ("top.txt", "top\n"),
        ],
        "a tree with directories",
    );
}

fn sparse(dirs: &[&str]) -> Checkout {
    Checkout::sparse(dirs.iter().map(|d| SparseDir::parse(d).expect("valid")))
}

fn config(repo: &TestRepo, checkout: Checkout) -> WorktreeConfig {
    WorktreeConfig::new(repo.path()).with_checkout(checkout)
}

#[tokio::test]
async fn only_the_directories_named_are_checked_out_and_sync_and_cleanup_keep_it_so() {
    let repo = TestRepo::new();
    tree(&repo);
    let m = crate::common::manager(&repo, config(&repo, sparse(&["src/app"]))).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    assert!(wt.path.join("src/app/main.rs").is_file());
    assert!(wt.path.join("top.txt").is_file(), "top-level files always");
    // Cone mode: the files directly in a named directory's parents too.
    assert!(wt.path.join("src/lib.rs").is_file());
    assert!(!wt.path.join("docs").exists());
    assert!(!wt.path.join("vendor").exists());
    let shown = |s: &Option<Sparse>| s.as_ref().map(|s| (s.cone, s.paths.clone()));
    let expected = Some((true, vec!["src/app".to_owned()]));
    assert_eq!(shown(&wt.sparse), expected);
    let listed = m.list_worktrees().await.expect("list");
    assert_eq!(shown(&listed[0].sparse), expected, "list reads it too");
    let state = m.working_state(&wt).await.expect("state").expect("here");
    assert_eq!(state.changed, 0, "the files left out are not changes");

    // The agent works inside its directory; the base moves, inside and
    // outside it.
    commit_files(
        &wt.path,
        &[("src/app/feature.rs", "feature\n")],
        "agent work",
    );
    commit_files(
        repo.path(),
        &[
            ("docs/guide.md", "guide v2\n"),
            ("src/app/util.rs", "util\n"),
        ],
        "the base moves on",
    );
    m.sync_worktree("1", SyncOptions::default())
        .await
        .expect("sync");
    assert!(wt.path.join("src/app/util.rs").is_file());
    assert!(wt.path.join("src/app/feature.rs").is_file());
    assert!(!wt.path.join("docs").exists(), "sync checked out docs");
    let state = m.working_state(&wt).await.expect("state").expect("here");
    assert_eq!(state.changed, 0);
    assert_eq!(state.ahead, Some(1));

    // Unforced: refused for the commit, not for the files left out.
    let refused = m
        .cleanup_worktree("1", Cleanup::Safe)
        .await
        .expect_err("unmerged work");
    assert_eq!(refused.kind(), ErrorKind::WouldLoseWork);
    let said = refused.to_string();
    assert!(!said.contains("docs") && !said.contains("vendor"), "{said}");

    // Forced: the snapshot keeps the draft and the tree it came from,
    // with nothing outside the cone recorded as deleted.
    std::fs::write(wt.path.join("src/app/draft.rs"), "draft\n").expect("draft");
    let cleaned = m
        .cleanup_worktree("1", Cleanup::Force)
        .await
        .expect("forced cleanup");
    let archive = cleaned.archived_at.expect("archived");
    let files = git_in(
        repo.path(),
        &["ls-tree", "-r", "--name-only", archive.as_str()],
    );
    for kept in [
        "src/app/draft.rs",
        "src/app/feature.rs",
        "docs/guide.md",
        "vendor/big/blob.bin",
        "src/lib.rs",
    ] {
        assert!(files.lines().any(|f| f == kept), "{kept} not in {files}");
    }
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test]
async fn an_untouched_sparse_worktree_cleans_up_unforced() {
    let repo = TestRepo::new();
    tree(&repo);
    let m = crate::common::manager(&repo, config(&repo, sparse(&["docs", "src"]))).await;
    let wt = m.create_worktree("2").await.expect("create").worktree;
    assert_eq!(
        wt.sparse.as_ref().map(|s| s.paths.clone()),
        Some(vec!["docs".to_owned(), "src".to_owned()])
    );
    m.cleanup_worktree("2", Cleanup::Safe)
        .await
        .expect("nothing to lose");
    assert!(!wt.path.exists());
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test]
async fn no_directories_checks_out_the_top_level_files_alone_and_git_widens_it() {
    let repo = TestRepo::new();
    tree(&repo);
    let m = crate::common::manager(&repo, config(&repo, Checkout::sparse([]))).await;
    let wt = m.create_worktree("3").await.expect("create").worktree;
    let mut names: Vec<String> = std::fs::read_dir(&wt.path)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| n == ".git" || !wt.path.join(n).is_dir()),
        "{names:?}"
    );
    assert!(names.contains(&"top.txt".to_owned()), "{names:?}");
    assert_eq!(wt.sparse.as_ref().map(|s| s.paths.len()), Some(0));
    // The agent widens it; get shows what is checked out now.
    let _ = git_in(&wt.path, &["sparse-checkout", "add", "vendor/big"]);
    assert!(wt.path.join("vendor/big/blob.bin").is_file());
    let now = m.get("3").await.expect("get").expect("there");
    assert_eq!(
        now.sparse.map(|s| s.paths),
        Some(vec!["vendor/big".to_owned()])
    );
    let _ = git_in(&wt.path, &["sparse-checkout", "disable"]);
    let now = m.get("3").await.expect("get").expect("there");
    assert_eq!(now.sparse, None, "a full checkout again");
}

#[tokio::test]
async fn a_directory_the_base_lacks_is_refused_and_nothing_is_made() {
    let repo = TestRepo::new();
    tree(&repo);
    for bad in [&["src", "nowhere"][..], &["top.txt"][..]] {
        let m = crate::common::manager(&repo, config(&repo, sparse(bad))).await;
        let e = m.create_worktree("4").await.expect_err("refused");
        assert_eq!(
            e.kind(),
            ErrorKind::Contract(ff_traits::ErrorKind::InvalidInput),
            "{e}"
        );
        let last = bad.last().expect("one");
        assert!(e.to_string().contains(last), "{e}");
        assert!(
            crate::common::ours(&repo, &m).is_empty(),
            "something was made"
        );
        assert!(m.list_worktrees().await.expect("list").is_empty());
        assert!(m.slots().await.expect("slots").is_empty());
    }
    crate::common::assert_consistent(
        &repo,
        &crate::common::manager(&repo, config(&repo, Checkout::Full)).await,
    )
    .await;
}

#[tokio::test]
async fn parallel_sparse_creates_on_a_fresh_repository_all_succeed() {
    // The first sparse worktree turns on git's per-worktree configuration
    // in the shared config file: four at once must not race for it.
    let repo = TestRepo::new();
    tree(&repo);
    let m = crate::common::manager(&repo, config(&repo, sparse(&["src"]))).await;
    let made =
        futures_util::future::join_all(["a", "b", "c", "d"].map(|issue| m.create_worktree(issue)))
            .await;
    for created in made {
        let wt = created.expect("create").worktree;
        assert!(wt.path.join("src/lib.rs").is_file());
        assert!(!wt.path.join("docs").exists());
    }
    let extension = git_in(repo.path(), &["config", "extensions.worktreeConfig"]);
    assert_eq!(extension, "true");
    // The main worktree is left as it was: full.
    assert!(repo.path().join("docs/guide.md").is_file());
    let status = git_in(repo.path(), &["status", "--porcelain"]);
    assert!(
        status
            .lines()
            .all(|l| l.contains(".ff-worktrees") || l.is_empty()),
        "{status}"
    );
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test]
async fn a_sparse_main_worktrees_set_is_copied_by_default_and_full_means_full() {
    let repo = TestRepo::new();
    tree(&repo);
    let _ = git_in(repo.path(), &["sparse-checkout", "set", "--cone", "docs"]);
    let m = crate::common::manager(&repo, config(&repo, Checkout::GitDefault)).await;
    let copied = m.create_worktree("5").await.expect("create").worktree;
    assert_eq!(
        copied.sparse.as_ref().map(|s| s.paths.clone()),
        Some(vec!["docs".to_owned()]),
        "git copies the main worktree's set"
    );
    assert!(!copied.path.join("src").exists());
    let m = crate::common::manager(&repo, config(&repo, Checkout::Full)).await;
    let full = m.create_worktree("6").await.expect("create").worktree;
    assert_eq!(full.sparse, None);
    assert!(full.path.join("src/app/main.rs").is_file());
    assert!(full.path.join("docs/guide.md").is_file());
    let state = m.working_state(&full).await.expect("state").expect("here");
    assert_eq!(state.changed, 0);
}

#[tokio::test]
async fn a_refused_sparse_create_evicts_nothing() {
    let repo = TestRepo::new();
    tree(&repo);
    let full = crate::common::manager(
        &repo,
        config(&repo, Checkout::GitDefault)
            .with_max_worktrees(1)
            .with_limit_policy(ff_worktree::LimitPolicy::EvictOldest),
    )
    .await;
    let oldest = full.create_worktree("7").await.expect("create").worktree;
    let bad = crate::common::manager(
        &repo,
        config(&repo, sparse(&["nowhere"]))
            .with_max_worktrees(1)
            .with_limit_policy(ff_worktree::LimitPolicy::EvictOldest),
    )
    .await;
    let e = bad.create_worktree("8").await.expect_err("refused");
    assert_eq!(
        e.kind(),
        ErrorKind::Contract(ff_traits::ErrorKind::InvalidInput),
        "{e}"
    );
    assert!(oldest.path.exists(), "bad input evicted a worktree");
    assert!(full.get("7").await.expect("get").is_some());
}

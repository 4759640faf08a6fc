//! The git layer against real repositories in temporary directories.

use std::path::Path;
use std::time::Duration;

use ff_worktree::git::{Git, GitError};

async fn git_in(dir: &Path, args: &[&str]) {
    Git::new(dir).run(args).await.expect("git");
}

async fn repo_with_commit() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git_in(dir.path(), &["init", "-q", "-b", "trunk"]).await;
    git_in(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    )
    .await;
    dir
}

#[tokio::test]
async fn version_is_checked() {
    let v = Git::new(".").check_version().await.expect("git installed");
    assert!(!v.is_empty());
    let missing = Git::new(".")
        .with_program("/nonexistent/git")
        .check_version()
        .await;
    assert!(
        matches!(missing, Err(GitError::NotInstalled { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn repository_facts() {
    let repo = repo_with_commit().await;
    let info = Git::new(repo.path()).repository().await.expect("repo");
    assert_eq!(info.head_branch.as_deref(), Some("trunk"));
    assert!(info.has_commits);
    assert!(info.common_dir.is_absolute() && info.common_dir.ends_with(".git"));
    assert_eq!(
        std::fs::canonicalize(&info.toplevel).expect("canon"),
        std::fs::canonicalize(repo.path()).expect("canon")
    );
    assert!(
        Git::new(repo.path())
            .resolve_commit("trunk")
            .await
            .expect("resolve")
            .is_some()
    );
    assert!(
        Git::new(repo.path())
            .resolve_commit("no-such-branch")
            .await
            .expect("resolve")
            .is_none()
    );
    // A hostile revision is an argument, never an option.
    assert!(
        Git::new(repo.path())
            .resolve_commit("--output=/tmp/x")
            .await
            .expect("resolve")
            .is_none()
    );
}

#[tokio::test]
async fn not_a_repository_bare_and_empty_are_told_apart() {
    let plain = tempfile::tempdir().expect("tempdir");
    let err = Git::new(plain.path())
        .repository()
        .await
        .expect_err("not a repo");
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert!(
        err.to_string().contains("not inside a git repository"),
        "{err}"
    );

    let bare = tempfile::tempdir().expect("tempdir");
    git_in(bare.path(), &["init", "-q", "--bare"]).await;
    let err = Git::new(bare.path()).repository().await.expect_err("bare");
    assert!(matches!(err, GitError::Bare { .. }), "{err}");

    let empty = tempfile::tempdir().expect("tempdir");
    git_in(empty.path(), &["init", "-q", "-b", "main"]).await;
    let info = Git::new(empty.path())
        .repository()
        .await
        .expect("empty repo");
    assert!(!info.has_commits);
    assert_eq!(info.head_branch.as_deref(), Some("main"));
}

#[tokio::test]
async fn worktrees_with_awkward_paths_are_listed_exactly() {
    let repo = repo_with_commit().await;
    let odd = repo.path().join("wt with space\nand newline");
    let git = Git::new(repo.path());
    let out = git
        .output(
            [
                std::ffi::OsStr::new("worktree"),
                "add".as_ref(),
                "-q".as_ref(),
                "-b".as_ref(),
                "ff-2".as_ref(),
                "--".as_ref(),
                odd.as_os_str(),
            ],
            false,
        )
        .await
        .expect("run");
    assert!(out.success(), "{}", out.stderr);
    let list = git.worktrees().await.expect("list");
    assert_eq!(list.len(), 2, "{list:?}");
    let linked = &list[1];
    assert_eq!(
        std::fs::canonicalize(&linked.path).expect("canon"),
        std::fs::canonicalize(&odd).expect("canon")
    );
    assert_eq!(linked.branch.as_deref(), Some("refs/heads/ff-2"));
}

#[tokio::test]
async fn a_failed_call_carries_gits_message() {
    let repo = repo_with_commit().await;
    let err = Git::new(repo.path())
        .run(["checkout", "--", "does-not-exist"])
        .await
        .expect_err("bad checkout");
    match &err {
        GitError::Failed { code, stderr, .. } => {
            assert_eq!(*code, Some(1));
            assert!(stderr.contains("did not match"), "{stderr}");
        }
        other => panic!("expected Failed, got {other}"),
    }
}

#[tokio::test]
async fn a_hung_call_is_stopped_at_its_timeout() {
    let started = std::time::Instant::now();
    let err = Git::new(".")
        .with_program("sleep")
        .with_timeout(Duration::from_millis(200))
        .run(["30"])
        .await
        .expect_err("sleep outlived its timeout");
    assert!(matches!(err, GitError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

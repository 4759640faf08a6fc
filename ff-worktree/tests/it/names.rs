//! Readable, stable names: issue ids with `/`, names something else has
//! taken, branches that would nest, and branch templates (see
//! `ff_worktree::names`).

use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_worktree::{BranchTemplate, Cleanup, Error, WorktreeConfig};

use crate::common::{assert_consistent, manager};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_with_a_slash_has_one_directory_one_branch_and_one_lock() {
    let repo = TestRepo::new();
    let m = manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m
        .create_worktree("feature/login")
        .await
        .expect("create")
        .worktree;
    assert_eq!(wt.id, "feature+login");
    assert_eq!(wt.path, m.base_path().join("feature+login"));
    assert_eq!(wt.branch, "ff/feature/login");
    assert_eq!(wt.issue, "feature/login");
    // Found by its issue and by its id; the same worktree again on create.
    assert_eq!(
        m.get("feature/login").await.expect("get").as_ref(),
        Some(&wt)
    );
    assert_eq!(
        m.get("feature+login").await.expect("get").as_ref(),
        Some(&wt)
    );
    assert!(
        m.create_worktree("feature/login")
            .await
            .expect("again")
            .reused
    );
    // Its lock is one segment beneath the repository's node.
    let lock = m
        .lock_names()
        .issue(&ff_worktree::IssueId::parse("feature/login").expect("id"))
        .expect("lock name");
    assert!(lock.as_str().ends_with("/issue-feature+login"), "{lock}");
    assert_eq!(
        ff_worktree::lock_names::purpose(lock.as_str()).issue(),
        Some("feature/login")
    );
    assert_consistent(&repo, &m).await;
    m.cleanup_worktree("feature/login", Cleanup::Safe)
        .await
        .expect("cleanup");
    assert!(repo.ff_branches().is_empty());
    assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_whose_branches_would_nest_are_refused_naming_the_other() {
    let repo = TestRepo::new();
    let m = manager(&repo, WorktreeConfig::new(repo.path())).await;
    m.create_worktree("feature").await.expect("create feature");
    let before = repo.registrations();
    let err = m
        .create_worktree("feature/login")
        .await
        .expect_err("nested beneath ff/feature");
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("ff/feature/login") && said.contains("issue feature's"),
        "{said}"
    );
    assert_eq!(repo.registrations(), before, "a refused create changed git");
    m.cleanup_worktree("feature", Cleanup::Safe)
        .await
        .expect("cleanup");

    // The other way round: a branch beneath the issue's.
    m.create_worktree("a/b").await.expect("create a/b");
    let err = m.create_worktree("a").await.expect_err("ff/a/b exists");
    assert!(err.to_string().contains("ff/a/b"), "{err}");
    assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_someone_else_has_are_never_taken_over() {
    let repo = TestRepo::new();
    let m = manager(&repo, WorktreeConfig::new(repo.path())).await;
    // A directory someone made where issue 7's worktree would go.
    let theirs = m.base_path().join("7");
    std::fs::create_dir_all(&theirs).expect("mkdir");
    std::fs::write(theirs.join("notes.txt"), "mine\n").expect("write");
    // A branch with work on it where issue 8's branch would be.
    let _ = git_in(repo.path(), &["branch", "ff/8"]);
    let _ = git_in(repo.path(), &["switch", "-q", "ff/8"]);
    commit_file(repo.path(), "eight.txt", "8\n", "someone's work on ff/8");
    let _ = git_in(repo.path(), &["switch", "-q", "main"]);
    let eight = git_in(repo.path(), &["rev-parse", "ff/8"]);

    let seven = m.create_worktree("7").await.expect("create 7").worktree;
    assert_eq!(
        (seven.id.as_str(), seven.branch.as_str()),
        ("7@2", "ff/7@2")
    );
    let wt8 = m.create_worktree("8").await.expect("create 8").worktree;
    assert_eq!((wt8.id.as_str(), wt8.branch.as_str()), ("8@2", "ff/8@2"));
    assert_eq!(
        std::fs::read_to_string(theirs.join("notes.txt")).expect("theirs"),
        "mine\n"
    );
    assert_eq!(git_in(repo.path(), &["rev-parse", "ff/8"]), eight);
    // Found, created again and cleaned up by issue, like any other.
    assert_eq!(
        m.get("7").await.expect("get").map(|w| w.id),
        Some("7@2".into())
    );
    assert!(m.create_worktree("8").await.expect("again").reused);
    for issue in ["7", "8"] {
        m.cleanup_worktree(issue, Cleanup::Safe)
            .await
            .expect("cleanup");
    }
    assert!(theirs.join("notes.txt").exists());
    assert_eq!(git_in(repo.path(), &["rev-parse", "ff/8"]), eight);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_template_names_branches_and_a_change_keeps_old_worktrees_managed() {
    let repo = TestRepo::new();
    let agent = BranchTemplate::parse("agent/{issue}").expect("template");
    let m = manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_branch_template(agent),
    )
    .await;
    let old = m.create_worktree("5").await.expect("create").worktree;
    assert_eq!(old.branch, "agent/5");
    commit_file(&old.path, "five.txt", "5\n", "work of issue 5");
    drop(m);

    // The template changes; the worktree made before keeps its branch.
    let wip = BranchTemplate::parse("wip-{issue}").expect("template");
    let m = manager(
        &repo,
        WorktreeConfig::new(repo.path()).with_branch_template(wip),
    )
    .await;
    assert_eq!(m.get("5").await.expect("get").as_ref(), Some(&old));
    assert!(m.create_worktree("5").await.expect("again").reused);
    assert_eq!(
        m.create_worktree("6").await.expect("6").worktree.branch,
        "wip-6"
    );
    let report = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    assert!(report.repairs.is_empty(), "{report:?}");
    // Unmerged: refused unforced, archived when forced, branch gone.
    assert!(m.cleanup_worktree("5", Cleanup::Safe).await.is_err());
    m.cleanup_worktree("5", Cleanup::Force)
        .await
        .expect("forced cleanup");
    assert!(git_in(repo.path(), &["branch", "--list", "agent/5"]).is_empty());
    assert_eq!(repo.archives().len(), 1);
}

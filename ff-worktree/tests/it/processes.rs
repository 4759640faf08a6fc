//! Several processes on one repository: each its own manager, sharing the
//! file locks and the SQLite store.

#![allow(clippy::print_stdout)] // child processes report to their parent on stdout

use std::io::{BufRead, BufReader};
use std::path::Path;

use ff_testkit::git::TestRepo;
use ff_worktree::WorktreeConfig;

/// Child process: `role` = [verb, repository, state, issues...]. For each
/// issue, runs the verb (`create` or `cleanup`) and prints `ok <issue>` or
/// `error <issue> <message>`.
#[test]
fn child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let rt = ff_testkit::runtime();
    rt.block_on(async {
        let config = WorktreeConfig::new(&role[1]).with_max_worktrees(32);
        let m = crate::common::open(Path::new(&role[2]), config).await;
        for issue in &role[3..] {
            let out = match role[0].as_str() {
                "create" => m.create_worktree(issue).await.map(|_| ()),
                _ => m
                    .cleanup_worktree(issue, ff_worktree::Cleanup::Safe)
                    .await
                    .map(|_| ()),
            };
            match out {
                Ok(()) => println!("ok {issue}"),
                Err(e) => println!("error {issue} {e}"),
            }
        }
    });
}

/// Runs one child per issue list, all at once; returns every line they
/// printed.
fn run_children(repo: &TestRepo, state: &Path, verb: &str, groups: &[Vec<String>]) -> Vec<String> {
    let repo_path = repo.path().to_string_lossy().into_owned();
    let state = state.to_string_lossy().into_owned();
    let children: Vec<_> = groups
        .iter()
        .map(|issues| {
            let mut role = vec![verb, repo_path.as_str(), state.as_str()];
            role.extend(issues.iter().map(String::as_str));
            ff_testkit::spawn_self(&ff_testkit::test_entry!("child"), &role)
        })
        .collect();
    let mut lines = Vec::new();
    for mut child in children {
        let out = child.stdout.take().expect("stdout");
        lines.extend(
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("ok ") || l.starts_with("error ")),
        );
        assert!(child.wait().expect("wait").success());
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_creates_from_four_processes_all_succeed() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    // Open once first so the base path and state exist before the race.
    let m = crate::common::open(
        &state,
        WorktreeConfig::new(repo.path()).with_max_worktrees(16),
    )
    .await;
    drop(m);
    let groups: Vec<Vec<String>> = (0..4)
        .map(|p| (0..4).map(|i| format!("P{p}-{i}")).collect())
        .collect();
    let lines = run_children(&repo, &state, "create", &groups);
    let failures: Vec<_> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(lines.len(), 16);
    let m = crate::common::open(
        &state,
        WorktreeConfig::new(repo.path()).with_max_worktrees(16),
    )
    .await;
    assert_eq!(m.list_worktrees().await.expect("list").len(), 16);
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_cleanups_of_one_worktree_all_succeed() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let m = crate::common::open(&state, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("C").await.expect("create").worktree;
    let groups = vec![
        vec!["C".to_owned()],
        vec![wt.id.clone()],
        vec!["C".to_owned()],
    ];
    let lines = run_children(&repo, &state, "cleanup", &groups);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{lines:?}");
    assert!(!wt.path.exists());
    assert!(repo.ff_branches().is_empty());
    crate::common::assert_consistent(&repo, &m).await;
}

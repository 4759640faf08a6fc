//! No commit is lost to a cleanup, forced or not, however it interleaves
//! with agents committing in their worktrees while holding none of
//! ForgeFlow's locks, as agents do.
//!
//! Four agent processes commit in a loop, each in its issue's worktree
//! whenever it exists (no lock held), and log every commit git reported as
//! made. Two cleaner processes clean those worktrees up, half the time
//! forced, and create them again. Afterwards every logged commit must be
//! reachable from a ref (a branch, or `refs/ff/archive/*`), and `git fsck`
//! must be clean.
//!
//! `FF_NO_LOSS_SECS` sets the run length (default 20 s, which makes well
//! over 500 commits here):
//! `FF_NO_LOSS_SECS=300 cargo test -p ff-worktree --test it -- no_loss:: --nocapture`.

#![cfg(unix)]
#![allow(clippy::print_stdout)] // the figures are the report

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ff_testkit::git::{TestRepo, git_in};
use ff_worktree::{Cleanup, WorktreeConfig};

const ISSUES: [&str; 4] = ["a1", "a2", "a3", "a4"];
const DEFAULT_SECS: u64 = 20;

fn config(repo: &str) -> WorktreeConfig {
    WorktreeConfig::new(repo)
        .with_max_worktrees(ISSUES.len())
        .with_lock_timeout(Duration::from_secs(30))
}

fn secs() -> u64 {
    std::env::var("FF_NO_LOSS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS)
}

/// An agent: `role` = [agent, repo, state, stop file, log, issue]. Commits
/// in the issue's worktree whenever it is there, holding no lock, and logs
/// the full id of every commit git reports as made.
#[test]
fn no_loss_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let [kind, repo, state, stop, rest @ ..] = role.as_slice() else {
        panic!("role: KIND REPO STATE STOP …");
    };
    let stop = Path::new(stop);
    ff_testkit::runtime().block_on(async {
        let m = crate::common::open(Path::new(state), config(repo)).await;
        let mut n = 0u64;
        while !stop.exists() {
            n += 1;
            match kind.as_str() {
                "agent" => {
                    let (log, issue) = (&rest[0], &rest[1]);
                    let Ok(Some(wt)) = m.get(issue).await else {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    };
                    let tag = format!("{issue}-{}-{n}", std::process::id());
                    if let Some(sha) =
                        ff_testkit::git::agent_commit(&wt.path, &format!("{tag}.txt"), &tag)
                    {
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(log)
                            .expect("log");
                        f.write_all(format!("{sha}\n").as_bytes())
                            .expect("log write");
                    }
                }
                "cleaner" => {
                    let issue = ISSUES[usize::try_from(n).unwrap_or(0) % ISSUES.len()];
                    let mode = if n.is_multiple_of(2) {
                        Cleanup::Force
                    } else {
                        Cleanup::Safe
                    };
                    let _ = m.cleanup_worktree(issue, mode).await;
                    let _ = m.create_worktree(issue).await;
                }
                other => panic!("unknown role {other}"),
            }
        }
    });
}

#[test]
fn commits_made_during_cleanups_are_never_lost() {
    if ff_testkit::child_role().is_some() {
        return;
    }
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let stop = repo.scratch("stop").join("now");
    let logs: Vec<PathBuf> = ISSUES
        .iter()
        .map(|i| repo.scratch("logs").join(format!("{i}.log")))
        .collect();
    let dir = repo.path().to_string_lossy().into_owned();
    let (state_s, stop_s) = (
        state.to_string_lossy().into_owned(),
        stop.to_string_lossy().into_owned(),
    );
    let mut children = Vec::new();
    for (issue, log) in ISSUES.iter().zip(&logs) {
        let log = log.to_string_lossy().into_owned();
        children.push(ff_testkit::spawn_self(
            &ff_testkit::test_entry!("no_loss_child"),
            &["agent", &dir, &state_s, &stop_s, &log, issue],
        ));
    }
    for _ in 0..2 {
        children.push(ff_testkit::spawn_self(
            &ff_testkit::test_entry!("no_loss_child"),
            &["cleaner", &dir, &state_s, &stop_s],
        ));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs()));
    std::fs::write(&stop, "stop").expect("stop file");
    for c in children {
        let out = c.wait_with_output().expect("child");
        assert!(out.status.success(), "a child failed");
    }
    let elapsed = started.elapsed();

    let made: Vec<String> = logs
        .iter()
        .flat_map(|l| {
            std::fs::read_to_string(l)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let reachable: HashSet<String> = git_in(repo.path(), &["rev-list", "--all"])
        .lines()
        .map(str::to_owned)
        .collect();
    let lost: Vec<&String> = made.iter().filter(|c| !reachable.contains(*c)).collect();
    let archives = repo.archives().len();
    println!(
        "no-loss race: {} commits in {:.0} s by 4 agents holding no lock, 2 cleaners (half \
         forced); {} lost; {archives} archive refs",
        made.len(),
        elapsed.as_secs_f64(),
        lost.len()
    );
    assert!(
        made.len() >= 100,
        "the agents made only {} commits: the race did not run",
        made.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {} commits lost: {lost:?}",
        lost.len(),
        made.len()
    );
    repo.assert_fsck_clean();
}

/// Commits an agent made on a detached HEAD are on no branch, and the
/// worktree's removal would drop them: an unforced cleanup refuses,
/// naming them, and a forced one keeps them under `refs/ff/archive/<id>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_on_a_detached_head_are_never_lost() {
    let repo = TestRepo::new();
    let dir = repo.path().to_string_lossy().into_owned();
    let m = crate::common::open(&repo.scratch("state"), config(&dir)).await;
    let wt = m.create_worktree("d1").await.expect("create").worktree;
    let _ = git_in(&wt.path, &["checkout", "-q", "--detach"]);
    ff_testkit::git::commit_file(&wt.path, "detached.txt", "work\n", "on no branch");
    let agent = git_in(&wt.path, &["rev-parse", "HEAD"]);

    let err = m
        .cleanup_worktree("d1", Cleanup::Safe)
        .await
        .expect_err("unforced cleanup refuses");
    assert!(
        matches!(err, ff_worktree::Error::WouldLoseWork { commits: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("detached"), "{err}");
    assert!(
        wt.path.join(".git").exists(),
        "the refused cleanup removed it"
    );

    let cleaned = m
        .cleanup_worktree("d1", Cleanup::Force)
        .await
        .expect("forced cleanup");
    let archive = cleaned.archived_at.expect("archived");
    assert_eq!(archive, format!("refs/ff/archive/{}", wt.id));
    let kept = git_in(repo.path(), &["rev-list", &archive]);
    assert!(
        kept.lines().any(|c| c == agent),
        "the detached commit was lost"
    );
    crate::common::assert_consistent(&repo, &m).await;
}

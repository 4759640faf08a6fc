//! Chaos: worker processes create, commit in, sync and clean up worktrees
//! of a few issues in one repository at random, while the harness SIGKILLs
//! random workers mid-operation and starts new ones. Afterwards `recover`
//! runs and every invariant is checked: one worktree per issue at most;
//! records, `git worktree list` and the base path agree; no branch of ours
//! without a worktree; no commit a worker made is lost (each is reachable
//! from a branch or an archive ref); `git fsck` clean; no lock held; no
//! record pending.
//!
//! `FF_CHAOS_SECS` sets the run length per backend pair (default 20; CI
//! runs the default). Run longer:
//! `FF_CHAOS_SECS=600 cargo test -p ff-worktree --all-features --test chaos -- --nocapture`.

#![cfg(unix)] // SIGKILL
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use ff_testkit::git::{TestRepo, git_in, git_output};
use ff_worktree::{SyncOptions, WorktreeConfig};

const ISSUES: [&str; 5] = ["c1", "c2", "c3", "c4", "c5"];

fn config(repo: &str) -> WorktreeConfig {
    WorktreeConfig::new(repo)
        .with_max_worktrees(ISSUES.len())
        .with_lock_timeout(Duration::from_secs(20))
}

/// A tiny xorshift, seeded per worker: randomness without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

/// Worker: `role` = [repo, state, commit log, seed]. Loops forever doing
/// random operations; appends every commit it makes to the log (after the
/// commit, fsynced) so the harness can check none is lost.
#[test]
fn chaos_worker() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let (repo, state, log) = (role[0].clone(), role[1].clone(), role[2].clone());
    let mut rng = Rng(role[3].parse::<u64>().expect("seed") | 1);
    ff_testkit::runtime().block_on(async {
        let m = common::open(Path::new(&state), config(&repo)).await;
        loop {
            let issue = ISSUES[rng.next(ISSUES.len())];
            match rng.next(4) {
                0 | 1 => {
                    if let Ok(c) = m.create_worktree(issue).await {
                        // Work as an agent would: holding the issue, so no
                        // forced cleanup can interleave with the commit.
                        let Ok(guard) = m.lock_issue(issue).await else {
                            continue;
                        };
                        let wt = c.worktree;
                        let file = wt.path.join(format!("f{}.txt", rng.next(1_000_000)));
                        if wt.path.join(".git").exists()
                            && std::fs::write(&file, "work\n").is_ok()
                            && git_output(&wt.path, &["add", "-A"]).status.success()
                            && git_output(&wt.path, &["commit", "-q", "-m", "chaos"])
                                .status
                                .success()
                        {
                            let head = git_output(&wt.path, &["rev-parse", "HEAD"]);
                            let sha = String::from_utf8_lossy(&head.stdout).trim().to_owned();
                            let mut f = std::fs::OpenOptions::new()
                                .append(true)
                                .create(true)
                                .open(&log)
                                .expect("log");
                            // One write: an append this small lands whole
                            // (`writeln!` may split it, and a kill between
                            // the two halves would glue lines together).
                            let _ = f.write_all(format!("{sha}\n").as_bytes());
                            let _ = f.sync_all();
                        }
                        let _ = guard.release().await;
                    }
                }
                2 => {
                    let _ = m
                        .sync_worktree(issue, SyncOptions::default().with_autostash(true))
                        .await;
                }
                _ => {
                    let _ = m.cleanup_worktree(issue, true).await;
                }
            }
        }
    });
}

fn spawn_worker(repo: &TestRepo, state: &Path, log: &Path, seed: u64) -> Child {
    ff_testkit::spawn_self_in_group(
        "chaos_worker",
        &[
            &repo.path().to_string_lossy(),
            &state.to_string_lossy(),
            &log.to_string_lossy(),
            &seed.to_string(),
        ],
    )
}

fn kill(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_file_lock_and_sqlite() {
    let secs: u64 = std::env::var("FF_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let log = repo.scratch("log").join("commits");
    // Open once so the base path and state exist before the workers race.
    drop(common::open(&state, config(&repo.path().to_string_lossy())).await);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut workers: Vec<Child> = (0..4)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            spawn_worker(&repo, &state, &log, seed)
        })
        .collect();
    let mut kills = 0;
    let started = Instant::now();
    let mut pick = Rng(seed);
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(150 + pick.next(350) as u64));
        let i = pick.next(workers.len());
        kill(&mut workers[i]);
        kills += 1;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        workers[i] = spawn_worker(&repo, &state, &log, seed);
    }
    for w in &mut workers {
        kill(w);
    }

    let m = common::open(&state, config(&repo.path().to_string_lossy())).await;
    let report = m.recover(false).await.expect("recover");
    println!(
        "chaos: {kills} kills in {secs} s; recover made {} repairs",
        report.repairs.len()
    );
    let again = m.recover(false).await.expect("recover again");
    assert!(
        again.repairs.is_empty(),
        "a second recover still found {again:?}"
    );
    common::assert_consistent(&repo, &m).await;
    // No commit a worker made is lost.
    let commits = std::fs::read_to_string(&log).unwrap_or_default();
    let mut lost = Vec::new();
    for sha in commits
        .lines()
        .filter(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        let refs = git_in(
            repo.path(),
            &["for-each-ref", "--contains", sha, "--format=%(refname)"],
        );
        if refs.is_empty() {
            lost.push(sha.to_owned());
        }
    }
    println!(
        "chaos: {} commits made, {} lost",
        commits.lines().count(),
        lost.len()
    );
    assert!(lost.is_empty(), "commits lost: {lost:?}");
    assert!(kills > 0);
}

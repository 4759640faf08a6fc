//! 32 create + cleanup cycles from 8 concurrent processes, against the same
//! work done by bare git, in the same run, interleaved round by round:
//!
//! * **ff, 8 processes**: each runs 4 cycles of `create_worktree` +
//!   `cleanup_worktree` on its own issues (file lock + SQLite store), all
//!   at once. Wall time from the first spawn to the last exit; failures.
//! * **bare git, serial**: the 32 cycles of `git worktree add --no-track
//!   -b` + `git worktree remove` + `git branch -D`, one after another in
//!   one process. Wall time.
//! * **bare git, 8 processes**: the same 32 bare cycles split over 8
//!   concurrent processes, as naive parallel agents would run them: wall
//!   time and how many git commands failed (git's own lock files refuse
//!   concurrent writers of `.git/worktrees`, `packed-refs`, `config`).
//!
//! Run: `cargo bench -p ff-worktree --bench worktree_procs`. Without
//! `--bench` (under `cargo test`) it runs one round as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_testkit::bench::median;
use ff_testkit::git::{TestRepo, git_output};
use ff_worktree::{WorktreeConfig, WorktreeManager};

const ROLE: &str = "FF_BENCH_ROLE";
const PROCS: usize = 8;
const CYCLES: usize = 4;

/// One bare cycle; returns how many of its git commands failed.
fn bare_cycle(repo: &Path, base: &Path, name: &str) -> usize {
    let path = base.join(name);
    let path = path.to_string_lossy();
    let branch = format!("bare-{name}");
    [
        vec![
            "worktree",
            "add",
            "--quiet",
            "--no-track",
            "-b",
            &branch,
            "--",
            &path,
            "main",
        ],
        vec!["worktree", "remove", "--", &path],
        vec!["branch", "-D", "--", &branch],
    ]
    .iter()
    .filter(|args| !git_output(repo, args).status.success())
    .count()
}

/// Child: `kind repo state tag`; prints the number of failures.
fn child(role: &str) {
    let parts: Vec<&str> = role.split('\u{1f}').collect();
    let (kind, repo, state, tag) = (parts[0], Path::new(parts[1]), Path::new(parts[2]), parts[3]);
    let failures = if kind == "ff" {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let m = WorktreeManager::open(
                WorktreeConfig::new(repo).with_max_worktrees(64),
                FileLockProvider::new(state.join("locks")),
                SqliteStore::open(state.join("ff.sqlite3")).expect("store"),
            )
            .await
            .expect("open");
            let mut failed = 0;
            for i in 0..CYCLES {
                let issue = format!("{tag}-{i}");
                let ok = match m.create_worktree(&issue).await {
                    Ok(_) => m
                        .cleanup_worktree(&issue, ff_worktree::Cleanup::Safe)
                        .await
                        .is_ok(),
                    Err(e) => {
                        eprintln!("create {issue}: {e}");
                        false
                    }
                };
                failed += usize::from(!ok);
            }
            failed
        })
    } else {
        let base = state.join("bare");
        (0..CYCLES)
            .map(|i| bare_cycle(repo, &base, &format!("{tag}-{i}")))
            .sum()
    };
    println!("{failures}");
}

/// Runs `PROCS` children of `kind` at once: wall time and total failures.
fn concurrent(kind: &str, repo: &Path, state: &Path, round: usize) -> (Duration, usize) {
    let exe = std::env::current_exe().expect("bench binary");
    let started = Instant::now();
    let children: Vec<_> = (0..PROCS)
        .map(|p| {
            let role = [
                kind,
                &repo.to_string_lossy(),
                &state.to_string_lossy(),
                &format!("r{round}p{p}"),
            ]
            .join("\u{1f}");
            Command::new(&exe)
                .env(ROLE, role)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut failures = 0;
    for c in children {
        let out = c.wait_with_output().expect("wait");
        failures += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(CYCLES * 3);
    }
    (started.elapsed(), failures)
}

/// A repository of 200 small files (as the `worktree` bench).
fn setup(repo: &TestRepo) {
    for i in 0..200 {
        let sub = repo.path().join(format!("src/m{}", i % 10));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(
            sub.join(format!("f{i}.rs")),
            format!("// file {i}\n").repeat(20),
        )
        .expect("write");
    }
    let _ = repo.git(&["add", "-A"]);
    let _ = repo.git(&["commit", "-q", "-m", "files"]);
}

/// Removes what a failed bare cycle left, so rounds start alike.
fn tidy(repo: &TestRepo, base: &Path) {
    let _ = std::fs::remove_dir_all(base);
    let _ = git_output(repo.path(), &["worktree", "prune"]);
    for b in repo
        .git(&[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/bare-*",
        ])
        .lines()
    {
        let _ = git_output(repo.path(), &["branch", "-D", "--", b]);
    }
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 7 } else { 1 };
    let repo = TestRepo::new();
    setup(&repo);
    let state: PathBuf = repo.scratch("state");
    let bare_base = state.join("bare");
    let (mut ff, mut serial, mut parallel) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ff_failures, mut parallel_failures) = (0, 0);
    for round in 0..rounds {
        let (t, f) = concurrent("ff", repo.path(), &state, round);
        ff.push(t);
        ff_failures += f;

        let started = Instant::now();
        let serial_failures: usize = (0..PROCS * CYCLES)
            .map(|i| bare_cycle(repo.path(), &bare_base, &format!("s{round}-{i}")))
            .sum();
        serial.push(started.elapsed());
        assert_eq!(serial_failures, 0, "bare git failed serially");

        let (t, f) = concurrent("bare", repo.path(), &state, round);
        parallel.push(t);
        parallel_failures += f;
        tidy(&repo, &bare_base);
    }
    let (ff, serial, parallel) = (median(&mut ff), median(&mut serial), median(&mut parallel));
    let cycles = PROCS * CYCLES * rounds;
    println!("worktree_procs: {rounds} round(s) of 32 create + cleanup cycles, medians");
    println!(
        "  ff, 8 processes:        {:>8.1} ms  failures {ff_failures}/{cycles} cycles",
        ff.as_secs_f64() * 1e3
    );
    println!(
        "  bare git, serial:       {:>8.1} ms  (ff / serial = {:.2}x)",
        serial.as_secs_f64() * 1e3,
        ff.as_secs_f64() / serial.as_secs_f64()
    );
    println!(
        "  bare git, 8 processes:  {:>8.1} ms  failed git commands {parallel_failures}/{}",
        parallel.as_secs_f64() * 1e3,
        cycles * 3
    );
}

//! A crash at every step of `ff once`: for each `once.` point in
//! `ff_worktree::crash::POINTS`, `ff once` is aborted there
//! (`FF_CRASH_AT`, as abrupt as SIGKILL); then the same `ff once`, run
//! again at once, must succeed, and every invariant must hold: the key's
//! record is completed (a third run replays it without running the
//! command), no live holder keeps a lock, and the command ran once, or twice
//! only for a crash after it ran and before its outcome was recorded (the
//! one window no process can close: the record cannot be written in the
//! same instant the command ends; the second run's `FF_FENCING_TOKEN` is
//! greater, so a command that fences its writes tells the runs apart).
//!
//! Runs on file locks + SQLite and, with a `redis-server`, on Redis locks
//! and records: every `once.` point follows a store write or the command.
//! `ff-worktree`'s sweep runs the manager's points. Needs the
//! `crash-points` feature (`--all-features`).

#![cfg(all(unix, feature = "crash-points"))]
#![allow(clippy::print_stdout)] // the figures are the report

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ff_testkit::git::TestRepo;

use crate::common::{code, isolated, stdout_json};

/// Environment variable marking every process a crashed `ff` started.
const MARK: &str = "FF_TEST_CRASH_MARK";

/// The `once.` points.
fn once_points() -> Vec<&'static str> {
    ff_worktree::crash::POINTS
        .iter()
        .copied()
        .filter(|p| p.starts_with("once."))
        .collect()
}

/// `ff BACKEND ARGS` in the repository, with `env`.
fn ff_with(repo: &TestRepo, backend: &[String], env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut all: Vec<&str> = backend.iter().map(String::as_str).collect();
    all.extend(args);
    let mut c = Command::new(env!("CARGO_BIN_EXE_ff"));
    c.args(&all).env_remove("RUST_LOG");
    isolated(&mut c, repo.path(), &repo.scratch("config"), env)
        .output()
        .expect("run ff")
}

/// How many times the command ran.
fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter).map_or(0, |s| s.lines().count())
}

/// One point: crash there, run again, check.
fn sweep_one(point: &str, backend: &[String]) -> Result<(), String> {
    let repo = TestRepo::new();
    let counter = repo.scratch("once").join("runs");
    let script = format!("echo \"$FF_FENCING_TOKEN\" >> '{}'", counter.display());
    // A key of the point's own: the Redis sweep shares one server.
    let mark = ff_traits::identity::unique_id();
    let key = format!("crash-{mark}");
    let once = ["once", "--key", &key, "--", "sh", "-c", script.as_str()];
    let crashed = ff_with(
        &repo,
        backend,
        &[("FF_CRASH_AT", point), (MARK, &mark)],
        &once,
    );
    if std::os::unix::process::ExitStatusExt::signal(&crashed.status)
        != Some(rustix::process::Signal::ABORT.as_raw())
    {
        return Err(format!(
            "{point}: never reached (exit {:?}): {}",
            crashed.status.code(),
            String::from_utf8_lossy(&crashed.stderr)
        ));
    }
    // What the crashed ff started (its watchdog, the command) is stopped
    // by the watchdog within milliseconds; judge once it is gone.
    if !ff_testkit::wait_unmarked(MARK, &mark, Duration::from_secs(10)) {
        return Err(format!(
            "{point}: the crashed ff's processes outlived it by 10 s"
        ));
    }
    let again = ff_with(&repo, backend, &[], &once);
    if code(&again) != 0 {
        return Err(format!(
            "{point}: the run again exited {}: {}",
            code(&again),
            String::from_utf8_lossy(&again.stderr)
        ));
    }
    let ran = runs(&counter);
    let expected = if point == "once.ran" { 2 } else { 1 };
    if ran != expected {
        return Err(format!(
            "{point}: the command ran {ran} times, not {expected}"
        ));
    }
    // The record is completed: a third run replays it.
    let third = ff_with(&repo, backend, &[], &once);
    if code(&third) != 0 || runs(&counter) != expected {
        return Err(format!(
            "{point}: a third run did not replay (exit {}, {} runs): {}",
            code(&third),
            runs(&counter),
            String::from_utf8_lossy(&third.stderr)
        ));
    }
    // No lock left held by a live holder. (A crashed holder's Redis lock
    // stays until its TTL, free to any taker on this host; a replay takes
    // no lock, so nothing takes it over here.)
    let locks = stdout_json(&ff_with(&repo, backend, &[], &["locks", "--json"]));
    let live = |h: &serde_json::Value| {
        let number = |k: &str| h[k].as_u64().and_then(|n| u32::try_from(n).ok());
        number("pid").is_some_and(|p| ff_process::liveness(p, None) != ff_process::Liveness::Dead)
            || number("process_group")
                .is_some_and(|g| ff_process::group_liveness(g) != ff_process::Liveness::Dead)
    };
    let held: Vec<&serde_json::Value> = locks
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|e| {
                    e["held"] == true
                        && e["holders"]
                            .as_array()
                            .is_some_and(|hs| hs.iter().any(live))
                })
                .collect()
        })
        .unwrap_or_default();
    if !held.is_empty() {
        return Err(format!("{point}: locks left held: {held:?}"));
    }
    Ok(())
}

fn sweep(name: &str, backend: &[String]) {
    let started = Instant::now();
    let points = once_points();
    assert!(!points.is_empty(), "no once. crash points");
    let failures: Vec<String> = points
        .iter()
        .filter_map(|p| sweep_one(p, backend).err())
        .collect();
    println!(
        "crash sweep ff once {name}: {} points, {} violations, {:.1} s",
        points.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_once_crash_point_on_file_locks_and_sqlite() {
    sweep("file+sqlite", &[]);
}

#[test]
fn every_once_crash_point_on_redis() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    sweep(
        "redis+redis",
        &["--lock".into(), url.clone(), "--store".into(), url],
    );
}

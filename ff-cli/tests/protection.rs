//! `ff lock` and `ff once` never let their command outlive its
//! protection: killed (`kill -9`) or terminated (`kill -TERM`), `ff` takes
//! the command down with it, so a second holder never runs beside it; a
//! lock lost while the command runs stops the command (exit 79).

#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{code, ff};
use ff_testkit::git::TestRepo;

fn spawn_ff(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(args)
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ff")
}

/// The command writes its pid to `pidfile` and sleeps; returns that pid
/// once written.
fn command_pid(pidfile: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` still runs (a zombie nobody reaped yet does not count:
/// an orphan's zombie waits for whoever adopts it).
fn alive(pid: i32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        return stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
    }
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, sig).expect("signal ff");
}

/// `kill -9` and `kill -TERM` of `ff lock` and `ff once` while their
/// command runs: the command goes with it; then the lock is free (and no
/// second holder ever ran beside the first command).
#[test]
fn the_command_never_outlives_ff() {
    let repo = TestRepo::new();
    let dir = repo.path();
    for (what, sig) in [
        ("lock, kill -9", rustix::process::Signal::KILL),
        ("lock, kill -TERM", rustix::process::Signal::TERM),
        ("once, kill -9", rustix::process::Signal::KILL),
        ("once, kill -TERM", rustix::process::Signal::TERM),
    ] {
        let pidfile = repo.scratch("pids").join(what.replace([',', ' '], "-"));
        let script = format!("echo $$ > '{}'; exec sleep 30", pidfile.display());
        let key = what.replace([',', ' '], "-");
        let args: Vec<&str> = if what.starts_with("lock") {
            vec!["lock", "held", "--", "sh", "-c", &script]
        } else {
            vec!["once", "--key", &key, "--", "sh", "-c", &script]
        };
        let mut ff_process = spawn_ff(dir, &args);
        let pid = command_pid(&pidfile);
        signal(&ff_process, sig);
        let status = ff_process.wait().expect("wait for ff");
        assert!(
            gone_within(pid, Duration::from_secs(5)),
            "{what}: the command outlived ff"
        );
        if sig == rustix::process::Signal::TERM {
            // Forwarded: the command died of it, and ff reports that.
            assert_eq!(status.code(), Some(128 + 15), "{what}: {status:?}");
        }
        if what.starts_with("lock") {
            let next = ff(dir, &["lock", "held", "--timeout", "5s", "--", "true"]);
            assert_eq!(code(&next), 0, "{what}: the lock was not free");
        }
    }
}

/// A Redis lock force-released while its command runs: the command is
/// stopped (SIGTERM) and `ff` exits 79 naming the lock.
#[test]
fn a_lost_lock_stops_the_command() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let repo = TestRepo::new();
    let dir = repo.path();
    let url = redis.url();
    let pidfile = repo.scratch("pids").join("lost");
    let script = format!("echo $$ > '{}'; exec sleep 60", pidfile.display());
    let holder = spawn_ff(
        dir,
        &[
            "--lock",
            &url,
            "lock",
            "deploy",
            "--kill-after",
            "2s",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let pid = command_pid(&pidfile);
    let forced = ff(dir, &["--lock", &url, "unlock", "deploy", "--force"]);
    assert_eq!(
        code(&forced),
        0,
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let started = Instant::now();
    let out = holder.wait_with_output().expect("wait for ff");
    assert_eq!(
        out.status.code(),
        Some(79),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lock 'deploy' was lost"), "{stderr}");
    assert!(
        gone_within(pid, Duration::from_secs(1)),
        "the command ran on"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped only after {:?}",
        started.elapsed()
    );
}

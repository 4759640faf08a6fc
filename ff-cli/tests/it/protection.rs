//! `ff lock` and `ff once` never let their command outlive its
//! protection: killed (`kill -9`) or terminated (`kill -TERM`), `ff` takes
//! the command down with it, so a second holder never runs beside it; a
//! lock lost while the command runs stops the command (exit 79).

#![cfg(unix)]

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::{code, ff};
use ff_testkit::git::TestRepo;

fn spawn_ff(dir: &Path, args: &[&str]) -> Child {
    crate::common::spawn_ff_with(dir, &[], args)
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

/// Whether the first command ran when the second holder's command started,
/// as that command saw it: a shell line that writes `clear` or `beside`.
fn report_first_command(first: i32, result: &Path) -> String {
    format!(
        "s=$(cut -d' ' -f3 /proc/{first}/stat 2>/dev/null); \
         case \"$s\" in ''|Z|X) echo clear ;; *) echo beside ;; esac > '{}'",
        result.display()
    )
}

/// `kill -9` and `kill -TERM` of `ff lock` and `ff once` while their
/// command runs, on the file and Redis backends: the command goes with
/// `ff`; a second `ff lock` already waiting gets the lock only once the
/// first command is gone (on Redis by same-host takeover, well inside the
/// 30 s TTL), and its command finds the first one gone.
#[test]
fn the_command_never_outlives_ff() {
    let redis = ff_testkit::redis::RedisServer::start();
    let mut backends = vec![("file", None)];
    if let Some(r) = &redis {
        backends.push(("redis", Some(r.url())));
    }
    let repo = TestRepo::new();
    let dir = repo.path();
    for (backend, url) in &backends {
        for (what, sig) in [
            ("lock, kill -9", rustix::process::Signal::KILL),
            ("lock, kill -TERM", rustix::process::Signal::TERM),
            ("once, kill -9", rustix::process::Signal::KILL),
            ("once, kill -TERM", rustix::process::Signal::TERM),
        ] {
            let what = format!("{backend}: {what}");
            let tag = what.replace([',', ' ', ':'], "-");
            let pidfile = repo.scratch("pids").join(&tag);
            let script = format!("echo $$ > '{}'; exec sleep 30", pidfile.display());
            let mut args: Vec<&str> = Vec::new();
            if let Some(url) = url {
                args.extend(["--lock", url, "--store", url]);
            }
            let mut first_args = args.clone();
            if what.contains("lock") {
                first_args.extend(["lock", &tag, "--", "sh", "-c", &script]);
            } else {
                first_args.extend(["once", "--key", &tag, "--", "sh", "-c", &script]);
            }
            let mut ff_process = spawn_ff(dir, &first_args);
            let pid = command_pid(&pidfile);
            let result = repo.scratch("results").join(&tag);
            let report = report_first_command(pid, &result);
            let waiter = what.contains("lock").then(|| {
                let waiter_args = ["lock", &tag, "--timeout", "10s", "--", "sh", "-c", &report];
                let backend: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
                // Once it waits: then it contends with the first command.
                crate::common::spawn_ff_waiting(dir, &backend, &waiter_args)
            });
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
            if let Some((mut w, said)) = waiter {
                let status = w.wait().expect("wait for the waiter");
                let said = said.join().unwrap_or_default();
                assert_eq!(status.code(), Some(0), "{what}: the waiter: {said}");
                let seen = std::fs::read_to_string(&result).expect("the waiter's report");
                assert_eq!(
                    seen.trim(),
                    "clear",
                    "{what}: a second holder ran beside the first command"
                );
            }
        }
    }
}

/// `ff lock` names its command's process group in the lock, so waiters
/// on its host judge it alive while the command runs.
#[cfg(target_os = "linux")]
#[test]
fn the_lock_names_the_commands_process_group() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let pidfile = repo.scratch("pids").join("group");
    let script = format!("echo $$ > '{}'; exec sleep 30", pidfile.display());
    let mut holder = spawn_ff(dir, &["lock", "grouped", "--", "sh", "-c", &script]);
    let pid = command_pid(&pidfile);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let group: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|g| g.parse().ok())
        .expect("process group");
    let out = ff(dir, &["--json", "locks"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let holders = listed.to_string();
    signal(&holder, rustix::process::Signal::TERM);
    let _ = holder.wait();
    assert!(
        holders.contains(&format!("\"process_group\":{group}")),
        "group {group} not in {holders}"
    );
}

/// `ff --lock URL lock NAME EXTRA… -- sh -c <write pid; sleep 60>` in
/// `repo`; returns `ff` and the command's pid once it runs.
fn redis_holder(repo: &TestRepo, url: &str, name: &str, extra: &[&str]) -> (Child, i32) {
    let pidfile = repo.scratch("pids").join(name);
    let script = format!("echo $$ > '{}'; exec sleep 60", pidfile.display());
    let mut args = vec!["--lock", url, "lock", name];
    args.extend(extra);
    args.extend(["--", "sh", "-c", &script]);
    let holder = spawn_ff(repo.path(), &args);
    (holder, command_pid(&pidfile))
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
    let (holder, pid) = redis_holder(&repo, &url, "deploy", &["--kill-after", "2s"]);
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

/// `ff lock` on Redis SIGSTOPped until its lease lapses: when it runs
/// again it learns the lock is gone, stops the command, exits 79.
#[test]
fn a_paused_holder_whose_lease_lapsed_stops_the_command() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let repo = TestRepo::new();
    let dir = repo.path();
    let url = redis.url();
    let (holder, pid) = redis_holder(
        &repo,
        &url,
        "paused",
        &["--lease", "1s", "--kill-after", "2s"],
    );
    signal(&holder, rustix::process::Signal::STOP);
    // The lease lapses while ff sleeps: another client may take the lock.
    std::thread::sleep(Duration::from_millis(1_500));
    let other = ff(
        dir,
        &[
            "--lock",
            &url,
            "lock",
            "paused",
            "--timeout",
            "5s",
            "--",
            "true",
        ],
    );
    assert_eq!(code(&other), 0, "the lapsed lease was not free");
    signal(&holder, rustix::process::Signal::CONT);
    let out = holder.wait_with_output().expect("wait for ff");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(79), "{stderr}");
    assert!(stderr.contains("lock 'paused' was lost"), "{stderr}");
    assert!(
        gone_within(pid, Duration::from_secs(3)),
        "the command ran on"
    );
}

/// `kill -9` of `ff lock` holding a node of a hierarchy while its command
/// runs: a conflicting waiter already waiting (elsewhere on the path, at
/// any level) gets the lock only once that command is gone, and does get
/// it, on the file lock and on Redis.
#[cfg(target_os = "linux")]
fn a_killed_holder_frees_the_waiter_only_when_its_command_is_gone(holder: &str, waiter: &str) {
    let redis = ff_testkit::redis::RedisServer::start();
    for backend in crate::common::lock_backends(redis.as_ref()) {
        let repo = TestRepo::new();
        let dir = repo.path();
        let pidfile = repo.scratch("pids").join("holder");
        let script = format!("echo $$ > '{}'; exec sleep 30", pidfile.display());
        let held = crate::common::spawn_ff_with(
            dir,
            &backend,
            &["lock", holder, "--", "sh", "-c", &script],
        );
        let pid = command_pid(&pidfile);
        let result = repo.scratch("results").join("waiter");
        let report = report_first_command(pid, &result);
        // Once it waits: then it contends with the holder's command.
        let (mut waiting, said) = crate::common::spawn_ff_waiting(
            dir,
            &backend,
            &[
                "lock",
                waiter,
                "--timeout",
                "20s",
                "--",
                "sh",
                "-c",
                &report,
            ],
        );
        signal(&held, rustix::process::Signal::KILL);
        let mut held = held;
        let _ = held.wait();
        let status = waiting.wait().expect("wait for the waiter");
        let said = said.join().unwrap_or_default();
        assert_eq!(
            status.code(),
            Some(0),
            "{backend:?} {holder} then {waiter}: {said}"
        );
        let seen = std::fs::read_to_string(&result).expect("the waiter's report");
        assert_eq!(
            seen.trim(),
            "clear",
            "{backend:?}: {waiter} ran beside the command of {holder}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_leaf_holder_frees_its_parent_only_when_its_command_is_gone() {
    a_killed_holder_frees_the_waiter_only_when_its_command_is_gone("tree/leaf", "tree");
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_holder_at_any_level_frees_the_path_for_the_others() {
    // The root's holder, then a leaf two levels down waits on it; the
    // leaf's holder, then the root waits on its intention locks; a middle
    // node's holder, then a leaf beneath it.
    for (holder, waiter) in [
        ("tree", "tree/mid/leaf"),
        ("tree/mid/leaf", "tree"),
        ("tree/mid", "tree/mid/leaf"),
    ] {
        a_killed_holder_frees_the_waiter_only_when_its_command_is_gone(holder, waiter);
    }
}

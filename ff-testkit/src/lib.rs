//! Test support shared by ForgeFlow's backend crates (not published).
//!
//! Cross-process tests run *the test binary itself* again as a child: the
//! parent calls [`spawn_self`] naming a test function that acts as the
//! child's entry point; that test reads its role with [`child_role`] (and
//! returns at once when it is not a child). The last argument of every
//! role here is the store's location, which the child uses to open it.
//!
//! Store checks across processes:
//! * [`claim_race`]: N processes race to claim one key; exactly one wins.
//! * [`crash_during_writes`]: a child rewrites one record in a loop and is
//!   SIGKILLed at random moments; the record must always read back whole.

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // children report to their parent on stdout

pub mod bench;
pub mod chromium;
pub mod cluster;
pub mod git;
pub mod http;
pub mod net;
pub mod netns;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod sentinel;
pub mod snapshot;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ff_idempotency::{Error, IdempotencyManager, ManagerConfig, Start};
use ff_traits::{IdempotencyKey, IdempotencyStorage};
use serde_json::json;

const ROLE_ENV: &str = "FF_TESTKIT_ROLE";
const SEP: char = '\u{1f}';

/// The name the test harness gives test function `name` of the calling
/// module (`module::name`), for [`spawn_self`] and the child-process
/// helpers: a crate's integration tests are one binary whose modules are
/// its test files, so a bare function name is not enough.
#[macro_export]
macro_rules! test_entry {
    ($name:literal) => {
        $crate::test_path(module_path!(), $name)
    };
}

/// `module`'s test function `name` as the harness lists it: the module
/// path (from [`module_path!`]) without the test crate's own name.
#[must_use]
pub fn test_path(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    }
}

/// Skips the rest of a test that needs something this machine lacks
/// (`what`), saying so loudly; fails instead when the environment variable
/// `require` (an `FF_REQUIRE_*` switch) is `1`, as CI sets it, so no skip
/// passes unseen where the thing is meant to be there.
///
/// # Panics
/// When `require` is set to `1`.
pub fn skip(require: &str, what: &str) {
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{what}, and {require}=1 says it must be here"
    );
    eprintln!("\n*** SKIPPED: {what} ***\n");
}

/// A fresh directory under `base` (use `env!("CARGO_TARGET_TMPDIR")`).
///
/// # Panics
/// When the directory cannot be created.
#[must_use]
pub fn fresh_dir(base: &str, tag: &str) -> PathBuf {
    let dir = Path::new(base)
        .join(tag)
        .join(ff_traits::identity::unique_id());
    std::fs::create_dir_all(&dir).expect("create test directory");
    dir
}

/// Starts this test binary again, running only the test `entry`, with
/// `role` as its role. Its stdout is piped to the parent.
///
/// # Panics
/// When the child cannot be started.
#[must_use]
pub fn spawn_self(entry: &str, role: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", entry, "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role.join(&SEP.to_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child process")
}

/// As [`spawn_self`], with `env` set in the child (say, the crash point
/// it must abort at).
///
/// # Panics
/// When the child cannot be started.
pub fn spawn_self_with_env(entry: &str, role: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", entry, "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role.join(&SEP.to_string()))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child process")
}

/// As [`spawn_self`], in a process group of its own, so that a test can
/// SIGKILL the child together with everything it started (`kill -9
/// -<pid>`): a crash that takes down its git subprocesses too.
///
/// # Panics
/// When the child cannot be started.
#[cfg(unix)]
#[must_use]
pub fn spawn_self_in_group(entry: &str, role: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", entry, "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role.join(&SEP.to_string()))
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child process")
}

/// The role this process was started with by [`spawn_self`], if any.
#[must_use]
pub fn child_role() -> Option<Vec<String>> {
    std::env::var(ROLE_ENV)
        .ok()
        .map(|s| s.split(SEP).map(str::to_owned).collect())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn sleep_until_ns(at: u128) {
    while now_ns() < at {
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// A two-worker multi-threaded runtime with time and I/O.
///
/// # Panics
/// When the runtime cannot be built.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The key every racer claims.
fn race_key(tag: &str) -> IdempotencyKey {
    IdempotencyKey::new(
        "createWorktree",
        json!({"issueId": tag}),
        json!({"basePath": ".ff-worktrees"}),
    )
}

/// Reads the child's stdout until a line equal to `expected`.
///
/// # Panics
/// When the child's output ends first.
pub fn wait_for_line(child: &mut Child, expected: &str) {
    let stdout = child.stdout.take().expect("child stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("child ended before printing {expected:?}"))
            .expect("read child output");
        if line.trim() == expected {
            return;
        }
    }
}

/// Child side of [`claim_race`]: waits for the shared start instant, tries
/// to claim, prints `won`, `busy`, `completed` or `error: …`.
///
/// # Panics
/// When the role's arguments are malformed.
pub fn claim_race_child<S: IdempotencyStorage + 'static>(store: S, role: &[String]) {
    let [_, tag, start_ns, _location] = role else {
        panic!("claim role takes: claim TAG START_NS LOCATION");
    };
    let start: u128 = start_ns.parse().expect("start instant");
    runtime().block_on(async {
        let manager = IdempotencyManager::new(store, ManagerConfig::default());
        let key = race_key(tag);
        sleep_until_ns(start);
        let answer = match manager.start_operation(&key, None).await {
            Ok(Start::Claimed(_)) => "won".to_owned(),
            Ok(Start::AlreadyCompleted(_)) => "completed".to_owned(),
            Err(Error::InProgress { .. }) => "busy".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        println!("{answer}");
        // Alive until every child has answered (the parent closes our
        // stdin): a winner that exited would be a dead claimant, whose
        // claim a later child may rightly take over.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    });
}

/// Parent side: starts `procs` children of test `entry` that race to claim
/// one key, each opening the store at `location` (the child test passes its
/// role to [`claim_race_child`]). Returns the children's answers.
///
/// # Panics
/// When a child fails.
#[must_use]
pub fn claim_race(entry: &str, procs: usize, location: &str) -> Vec<String> {
    let tag = ff_traits::identity::unique_id();
    // Far enough ahead that every child is up and waiting.
    let start = (now_ns() + 1_500_000_000).to_string();
    let mut children: Vec<Child> = (0..procs)
        .map(|_| {
            Command::new(std::env::current_exe().expect("test binary"))
                .args(["--exact", entry, "--nocapture", "--test-threads=1", "-q"])
                .env(
                    ROLE_ENV,
                    ["claim", &tag, &start, location].join(&SEP.to_string()),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn child process")
        })
        .collect();
    // Each child's answer (the test harness prints its own lines first),
    // read while every child still runs.
    let answers: Vec<String> = children
        .iter_mut()
        .map(|c| {
            let stdout = BufReader::new(c.stdout.take().expect("piped stdout"));
            stdout
                .lines()
                .map_while(Result::ok)
                .map(|l| l.trim().to_owned())
                .find(|l| {
                    ["won", "busy", "completed"].contains(&l.as_str()) || l.starts_with("error: ")
                })
                .unwrap_or_default()
        })
        .collect();
    for mut c in children {
        drop(c.stdin.take());
        assert!(c.wait().expect("child").success(), "claim child failed");
    }
    answers
}

/// Child side of [`crash_during_writes`]: creates the record, then
/// rewrites it forever (growing and shrinking its result), printing
/// `ready` once the first write is done.
///
/// # Panics
/// When the store fails.
pub fn write_loop_child<S: IdempotencyStorage + 'static>(store: S, role: &[String]) {
    let [_, tag, _location] = role else {
        panic!("write-loop role takes: write-loop TAG LOCATION");
    };
    runtime().block_on(async {
        let key = race_key(tag).record_key().expect("key");
        let manager = IdempotencyManager::new(&store, ManagerConfig::default());
        // The first round creates the record; later rounds find it (claimed
        // by a killed writer) and go on rewriting it.
        if store.load(&key).await.expect("load").is_none() {
            manager
                .start_operation(&race_key(tag), None)
                .await
                .expect("first claim");
        }
        println!("ready");
        std::io::stdout().flush().expect("flush");
        loop {
            let current = store.load(&key).await.expect("load").expect("record");
            let mut next = current.clone();
            // Continue the count where the previous (killed) writer stopped.
            let n = current
                .result
                .as_ref()
                .and_then(|v| v.get("n"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                + 1;
            // Sizes vary so a torn write would show as truncated JSON.
            let payload = "x".repeat(usize::try_from(n % 4_000).unwrap_or(0));
            next.result = Some(json!({"n": n, "payload": payload}));
            store
                .compare_and_swap(current.revision, next)
                .await
                .expect("swap");
        }
    });
}

/// Parent side: `rounds` times, starts a [`write_loop_child`] of test
/// `entry` on the store at `location`, lets it write for a random few milliseconds and SIGKILLs it;
/// after each kill the record must load whole. `load` opens the store and
/// loads the record of the tag it is given, returning `Err` text when it
/// is unreadable.
///
/// # Panics
/// When a record is torn or missing after a kill.
pub fn crash_during_writes<F>(entry: &str, rounds: u32, location: &str, mut load: F)
where
    F: FnMut(&str) -> Result<Option<u64>, String>,
{
    let tag = ff_traits::identity::unique_id();
    let mut last = 0;
    for round in 0..rounds {
        let mut child = spawn_self(entry, &["write-loop", &tag, location]);
        wait_for_line(&mut child, "ready");
        // Vary the kill point across rounds.
        std::thread::sleep(Duration::from_millis(5 + u64::from(round * 7 % 40)));
        child.kill().expect("kill");
        let _ = child.wait();
        match load(&tag) {
            Ok(Some(n)) => {
                assert!(n >= last, "the record went back from write {last} to {n}");
                last = n;
            }
            Ok(None) => panic!("round {round}: the record vanished after a crash"),
            Err(e) => panic!("round {round}: the record is torn after a crash: {e}"),
        }
    }
    assert!(last > 0, "the writer never completed a write");
}

/// Reads the write counter a [`write_loop_child`] stored for `tag`.
///
/// # Errors
/// The store's error, as text, when the record cannot be read.
pub async fn written_count<S: IdempotencyStorage>(
    store: &S,
    tag: &str,
) -> Result<Option<u64>, String> {
    let key = race_key(tag).record_key().map_err(|e| e.to_string())?;
    match store.load(&key).await {
        Ok(Some(r)) => Ok(Some(
            r.result
                .as_ref()
                .and_then(|v| v.get("n"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Times `iters` durable claim + complete cycles (`start_operation` then
/// `complete_operation`, each on a fresh key) for a benchmark's
/// `iter_custom`; only the two calls are timed.
///
/// # Panics
/// When a cycle fails.
pub async fn time_claim_complete<S: IdempotencyStorage>(
    manager: &IdempotencyManager<S>,
    iters: u64,
) -> Duration {
    let run = ff_traits::identity::unique_id();
    let mut total = Duration::ZERO;
    for n in 0..iters {
        let key = IdempotencyKey::new("bench", json!({"run": run, "n": n}), json!({}));
        let started = std::time::Instant::now();
        let Start::Claimed(claim) = manager.start_operation(&key, None).await.expect("start")
        else {
            panic!("a fresh key was already completed");
        };
        manager
            .complete_operation(&claim, json!({"ok": true}))
            .await
            .expect("complete");
        total += started.elapsed();
    }
    total
}

/// The entry point of a store's child processes: when this process is a
/// child, opens the store at the role's location with `open`, plays the
/// role ([`claim_race_child`] or [`write_loop_child`]) and exits; otherwise
/// returns at once.
///
/// # Panics
/// On an unknown role.
pub fn run_store_child<S, F>(open: F)
where
    S: IdempotencyStorage + 'static,
    F: Fn(&str) -> S,
{
    let Some(role) = child_role() else {
        return;
    };
    let location = role.last().expect("a role names the store location");
    if role[0] == "open-race" {
        sleep_until_ns(role[1].parse().expect("start instant"));
        // Open and close again and again: every close of the last
        // connection may checkpoint and remove files the next open needs.
        for _ in 0..30 {
            drop(open(location));
        }
    }
    let store = open(location);
    match role[0].as_str() {
        "claim" => claim_race_child(store, &role),
        "write-loop" => write_loop_child(store, &role),
        "open-race" => println!("opened"),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// [`claim_race`] with 8 processes, asserting exactly one winner and
/// that every other racer was told the key is in progress.
///
/// # Panics
/// When the race does not have exactly one winner.
pub fn assert_one_winner_of_eight(entry: &str, location: &str) {
    let answers = claim_race(entry, 8, location);
    let won = answers.iter().filter(|a| *a == "won").count();
    assert_eq!(won, 1, "answers: {answers:?}");
    assert!(
        answers.iter().all(|a| a == "won" || a == "busy"),
        "answers: {answers:?}"
    );
}

/// Starts `procs` children of test `entry` that all open the store at
/// `location` at the same instant (a fresh store: they race to create it),
/// then close and reopen it 30 times, and asserts every open succeeded.
///
/// # Panics
/// When a child fails to open the store.
pub fn assert_concurrent_opens_succeed(entry: &str, procs: usize, location: &str) {
    let start = (now_ns() + 1_500_000_000).to_string();
    let children: Vec<Child> = (0..procs)
        .map(|_| spawn_self(entry, &["open-race", &start, location]))
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("child");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("opened"),
            "a concurrent open failed: {said}"
        );
    }
}

/// Makes `path` read-only in a way that binds root too (`chattr +i`, the
/// immutable attribute), for testing read-only stores when tests run as
/// root. Undone when dropped. `None` where `chattr` is missing or the
/// filesystem does not support it.
#[derive(Debug)]
pub struct Immutable(PathBuf);

impl Immutable {
    /// Sets the immutable attribute on `path`.
    #[must_use]
    pub fn set(path: &Path) -> Option<Self> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Waits until no process carries `NAME=value` in its environment (read
/// from `/proc`), for at most `within`; whether none does. A test marks
/// the processes it starts (an `ff` and whatever that one starts: a
/// watchdog, a command) with a variable of its own, and after killing the
/// first waits for the rest to be gone before judging what they left.
/// Where `/proc` is not mounted, waits nothing and says `true`.
#[must_use]
pub fn wait_unmarked(name: &str, value: &str, within: Duration) -> bool {
    let needle = format!("{name}={value}");
    let deadline = Instant::now() + within;
    loop {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return true;
        };
        let marked = procs.filter_map(Result::ok).any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
                && std::fs::read(entry.path().join("environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        });
        if !marked {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

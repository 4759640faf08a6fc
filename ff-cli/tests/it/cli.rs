//! The `ff` binary as users run it: every command, its `--json` shape,
//! its exit codes. Real repositories, real processes. Hostile input is in
//! `hostile.rs`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    assert_valid, code, error_json, error_kind, ff, lock_backends, spawn_ff_with, stdout_json,
};
use ff_testkit::git::{TestRepo, commit_file};
use serde_json::Value;

#[test]
fn create_list_get_sync_cleanup_with_json_shapes() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let created = stdout_json(&ff(dir, &["create", "123", "--json"]));
    assert_valid("create", &created);
    assert_eq!(created["reused"], false);
    assert_eq!(created["status"], "active");
    assert!(
        Path::new(created["path"].as_str().expect("path"))
            .join("README")
            .exists()
    );

    let again = stdout_json(&ff(dir, &["create", "123", "--json"]));
    assert_eq!(again["reused"], true);
    assert_eq!(again["id"], created["id"]);

    let list = stdout_json(&ff(dir, &["list", "--json"]));
    assert_valid("list", &list);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 1);
    let got = stdout_json(&ff(
        dir,
        &["get", created["id"].as_str().expect("id"), "--json"],
    ));
    assert_valid("get", &got);
    assert_eq!(got["issue"], "123");

    commit_file(dir, "base.txt", "moved\n", "base moved");
    let synced = stdout_json(&ff(dir, &["sync", "123", "--json"]));
    assert_valid("sync", &synced);
    assert_eq!(synced["changed"], true);
    assert_eq!(synced["strategy"], "rebase");

    let human = ff(dir, &["list"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.trim_start().starts_with("ISSUE") && text.contains("123"),
        "{text}"
    );

    let cleaned = stdout_json(&ff(dir, &["cleanup", "123", "--json"]));
    assert_valid("cleanup", &cleaned);
    assert_eq!(cleaned["removed"], true);
    let cleaned = stdout_json(&ff(dir, &["cleanup", "123", "--json"]));
    assert_eq!(cleaned["removed"], false, "cleaning again is a no-op");
    assert_eq!(
        stdout_json(&ff(dir, &["list", "--json"])),
        Value::Array(vec![])
    );
}

#[test]
fn stats_gc_recover_and_locks_shapes() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let _ = stdout_json(&ff(dir, &["create", "7", "--json"]));
    let stats = stdout_json(&ff(dir, &["stats", "--json"]));
    assert_valid("stats", &stats);
    assert_eq!(
        stats["total"], 2,
        "the create's record and its slot's: {stats}"
    );
    let recovered = stdout_json(&ff(dir, &["recover", "--dry-run", "--json"]));
    assert_valid("recover", &recovered);
    assert_eq!(recovered["dry_run"], true);
    assert_eq!(recovered["repairs"], Value::Array(vec![]));
    let gc = stdout_json(&ff(dir, &["gc", "--max-age", "0", "--json"]));
    assert_valid("gc", &gc);
    assert_eq!(gc["removed"], 0, "a live worktree's record is kept");

    // A lock held by a running `ff lock`, seen by `ff locks`.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["lock", "build", "--", "sleep", "3"])
        .current_dir(dir)
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let locks = stdout_json(&ff(dir, &["locks", "--json"]));
        if let Some(l) = locks
            .as_array()
            .expect("array")
            .iter()
            // The holder writes its record just after the kernel grants
            // the lock: for an instant it is held by someone unnamed.
            .find(|l| l["name"] == "build" && l["held"] == true && l["holder"].is_object())
        {
            break l.clone();
        }
        assert!(Instant::now() < deadline, "the lock never showed as held");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_valid("locks", &Value::Array(vec![held.clone()]));
    assert_eq!(held["holder"]["pid"], holder.id());
    // Someone else waiting briefly times out: 75.
    let busy = ff(
        dir,
        &[
            "lock",
            "build",
            "--timeout",
            "200ms",
            "--json",
            "--",
            "true",
        ],
    );
    assert_eq!(code(&busy), 75);
    assert_eq!(error_kind(&busy), "lock_timeout");
    // Unlocking a live holder needs --force.
    let refused = ff(dir, &["unlock", "build"]);
    assert_eq!(code(&refused), 75);
    assert!(holder.wait().expect("wait").success());
}

/// Row 1 of the README's promises: `ff unlock NAME --force` frees a kernel
/// file lock held by a live `ff lock`, as the unforced refusal says it
/// will: the holder is stopped (SIGTERM, passed to its command), the lock
/// is free at once, and the answer names the holder. A name nothing has
/// gets a "did you mean" on stderr (exit 0: unlocking is idempotent).
#[cfg(unix)]
#[test]
fn unlock_force_frees_a_kernel_lock_by_stopping_its_live_holder() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let mut holder = crate::common::hold_lock(dir, "deploy", 30);
    let plain = ff(dir, &["unlock", "deploy"]);
    let said = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(code(&plain), 75, "{said}");
    assert!(said.contains(&format!("pid {}", holder.id())), "{said}");
    assert!(said.contains("pass --force"), "{said}");
    let typo = ff(dir, &["unlock", "deploi"]);
    let said = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(code(&typo), 0, "{said}");
    assert!(said.contains("did you mean 'deploy'"), "{said}");
    let forced = ff(dir, &["unlock", "deploy", "--force", "--json"]);
    assert_eq!(
        code(&forced),
        0,
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let answer = stdout_json(&forced);
    assert_valid("unlock", &answer);
    assert_eq!(answer[0]["outcome"], "stopped", "{answer}");
    assert_eq!(answer[0]["signal"], "SIGTERM", "{answer}");
    assert_eq!(answer[0]["previous"][0]["pid"], holder.id());
    let status = holder.wait().expect("wait");
    assert_eq!(status.code(), Some(143), "the command died of SIGTERM");
    let next = ff(dir, &["lock", "deploy", "--timeout", "1s", "--", "true"]);
    assert_eq!(code(&next), 0, "the lock is free at once");
    // `ff locks` shows held locks; --all the free ones too.
    let held = stdout_json(&ff(dir, &["locks", "--json"]));
    assert_eq!(held, Value::Array(Vec::new()), "{held}");
    let text = String::from_utf8_lossy(&ff(dir, &["locks"]).stdout).into_owned();
    assert!(text.contains("no lock is held"), "{text}");
    assert!(text.contains("ff locks --all"), "{text}");
    let all = stdout_json(&ff(dir, &["locks", "--all", "--json"]));
    assert_valid("locks", &all);
    assert!(
        all.as_array().is_some_and(|a| a
            .iter()
            .any(|l| l["name"] == "deploy" && l["held"] == false)),
        "{all}"
    );
    // `ff gc` removes the files free locks leave (none while held).
    let gc = stdout_json(&ff(dir, &["gc", "--max-age", "0", "--json"]));
    assert_valid("gc", &gc);
    assert!(
        gc["lock_files_removed"].as_u64().is_some_and(|n| n >= 1),
        "{gc}"
    );
    let all = stdout_json(&ff(dir, &["locks", "--all", "--json"]));
    assert_eq!(all, Value::Array(Vec::new()), "{all}");
}

#[test]
fn limit_is_73_would_lose_work_is_77_and_a_conflict_is_1_each_with_its_kind() {
    let repo = TestRepo::new();
    let dir = repo.path();
    std::fs::write(dir.join("ff.toml"), "max_worktrees = 1\n").expect("ff.toml");
    let _ = stdout_json(&ff(dir, &["create", "a", "--json"]));
    let full = ff(dir, &["create", "b", "--json"]);
    assert_eq!(code(&full), 73, "{}", String::from_utf8_lossy(&full.stderr));
    assert_eq!(error_kind(&full), "limit_reached");
    assert_eq!(error_json(&full)["limit"], 1);

    let wt = stdout_json(&ff(dir, &["get", "a", "--json"]));
    let path = Path::new(wt["path"].as_str().expect("path")).to_owned();
    commit_file(&path, "README", "mine\n", "mine");
    std::fs::write(path.join("notes.txt"), "draft\n").expect("notes");
    let refused = ff(dir, &["cleanup", "a", "--json"]);
    assert_eq!(
        code(&refused),
        77,
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(error_kind(&refused), "would_lose_work");
    let facts = error_json(&refused);
    assert_eq!(facts["commits"], 1, "{facts}");
    assert_eq!(facts["files"], serde_json::json!(["notes.txt"]), "{facts}");
    assert!(
        path.join("notes.txt").exists(),
        "the refusal touched the work"
    );
    std::fs::remove_file(path.join("notes.txt")).expect("rm notes");
    commit_file(dir, "README", "theirs\n", "theirs");
    let conflict = ff(dir, &["sync", "a", "--json"]);
    assert_eq!(code(&conflict), 1);
    assert_eq!(error_kind(&conflict), "conflict");
    assert_eq!(
        error_json(&conflict)["paths"],
        serde_json::json!(["README"])
    );

    std::fs::write(dir.join("ff.toml"), "max_worktree = 1\n").expect("ff.toml");
    let typo = ff(dir, &["list"]);
    assert_eq!(code(&typo), 65);
    assert!(String::from_utf8_lossy(&typo.stderr).contains("max_worktree"));
}

#[test]
fn once_runs_a_command_at_most_once_and_gives_up_after_max_attempts() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let counter = repo.scratch("once").join("runs");
    let script = format!("echo x >> '{}'", counter.display());
    let first = ff(dir, &["once", "--", "sh", "-c", &script]);
    assert_eq!(code(&first), 0);
    let second = ff(dir, &["once", "--json", "--", "sh", "-c", &script]);
    assert_eq!(stdout_json(&second)["status"], "already_completed");
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("runs")
            .lines()
            .count(),
        1
    );

    let failing = [
        "once",
        "--key",
        "flaky",
        "--max-attempts",
        "2",
        "--backoff",
        "1ms",
        "--",
        "sh",
        "-c",
        "exit 4",
    ];
    assert_eq!(code(&ff(dir, &failing)), 4, "the command's own status");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(code(&ff(dir, &failing)), 4);
    let exhausted = ff(dir, &failing);
    assert_eq!(
        code(&exhausted),
        75,
        "{}",
        String::from_utf8_lossy(&exhausted.stderr)
    );
}

/// The issue's "must show": 8 concurrent shell loops, each incrementing one
/// counter file through `ff lock`, lose no increment.
#[test]
fn ff_lock_keeps_eight_concurrent_shell_loops_exact() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let counter = repo.scratch("lock").join("counter");
    std::fs::write(&counter, "0\n").expect("counter");
    let ff_bin = env!("CARGO_BIN_EXE_ff");
    let per_loop = 15;
    let script = format!(
        "for i in $(seq {per_loop}); do \"{ff_bin}\" lock counter -- sh -c 'n=$(cat \"{c}\"); sleep 0.001; echo $((n+1)) > \"{c}\"' || exit 1; done",
        c = counter.display()
    );
    let loops: Vec<_> = (0..8)
        .map(|_| {
            Command::new("sh")
                .args(["-c", &script])
                .current_dir(dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("loop")
        })
        .collect();
    for mut l in loops {
        assert!(l.wait().expect("wait").success());
    }
    let total: u32 = std::fs::read_to_string(&counter)
        .expect("read")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(total, 8 * per_loop);
}

#[test]
fn completions_and_help() {
    let repo = TestRepo::new();
    let bash = ff(repo.path(), &["completions", "bash"]);
    assert_eq!(code(&bash), 0);
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete"));
    let help = ff(repo.path(), &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("EXIT CODES") && text.contains("75"), "{text}");
}

#[test]
fn redis_backends_from_the_command_line() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    shared_backends_from_the_command_line(&url, move || drop(redis));
}

/// The same on PostgreSQL: `--lock postgres://… --store postgres://…`.
#[test]
fn postgres_backends_from_the_command_line() {
    let Some(pg) = ff_testkit::postgres::PgServer::start() else {
        return;
    };
    let url = format!("{}?schema=cli", pg.url());
    shared_backends_from_the_command_line(&url, move || drop(pg));
}

/// Create, list, stats, lock and cleanup with locks and records at `url`;
/// then `stop` takes the server away, and the next command says so (69).
fn shared_backends_from_the_command_line(url: &str, stop: impl FnOnce()) {
    let repo = TestRepo::new();
    let dir = repo.path();
    let with = |args: &[&str]| {
        let mut all = vec!["--lock", url, "--store", url];
        all.extend(args);
        ff(dir, &all)
    };
    let created = stdout_json(&with(&["create", "9", "--json"]));
    assert_eq!(created["reused"], false);
    let listed = stdout_json(&with(&["list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    // The records live on the server: the default SQLite store knows nothing.
    assert_eq!(
        stdout_json(&ff(dir, &["list", "--json"])),
        Value::Array(vec![])
    );
    let stats = stdout_json(&with(&["stats", "--json"]));
    assert_eq!(stats["by_operation"]["createWorktree"], 1);
    assert_eq!(code(&with(&["lock", "deploy", "--", "true"])), 0);
    assert_eq!(
        stdout_json(&with(&["cleanup", "9", "--json"]))["removed"],
        true
    );
    // A server that went away: 69.
    stop();
    let gone = with(&["list", "--json"]);
    assert_eq!(code(&gone), 69, "{}", String::from_utf8_lossy(&gone.stderr));
}

/// Agents run `ff` from inside their worktrees: every command there acts
/// on the main repository, with the same state.
#[test]
fn inside_a_worktree_or_a_subdirectory_ff_sees_the_main_repository() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let first = stdout_json(&ff(dir, &["create", "1", "--json"]));
    let inside = Path::new(first["path"].as_str().expect("path")).to_owned();
    let deep = inside.join("src/deep");
    std::fs::create_dir_all(&deep).expect("subdir");
    for place in [&inside, &deep] {
        let again = stdout_json(&ff(place, &["create", "1", "--json"]));
        assert_eq!(again["reused"], true, "from {}", place.display());
        assert_eq!(again["id"], first["id"]);
    }
    let second = stdout_json(&ff(&deep, &["create", "2", "--json"]));
    let second_path = Path::new(second["path"].as_str().expect("path")).to_owned();
    assert_eq!(
        second_path.parent(),
        inside.parent(),
        "not nested in worktree 1"
    );
    assert_eq!(second["base"], "main");
    let listed = stdout_json(&ff(&deep, &["list", "--json"]));
    assert_valid("list", &listed);
    assert_eq!(listed.as_array().expect("array").len(), 2);
    let got = stdout_json(&ff(&inside, &["get", "2", "--json"]));
    assert_eq!(got["id"], second["id"]);
    let cleaned = stdout_json(&ff(&inside, &["cleanup", "2", "--json"]));
    assert_eq!(cleaned["removed"], true);
    assert!(!second_path.exists());
    assert_eq!(
        stdout_json(&ff(dir, &["list", "--json"]))
            .as_array()
            .expect("array")
            .len(),
        1
    );
}

/// The SQLite file removed under live worktrees: `ff recover` rebuilds
/// their records from git and `ff list` says so.
#[test]
fn records_lost_are_rebuilt_by_recover() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let made = stdout_json(&ff(dir, &["create", "3", "--json"]));
    let path = Path::new(made["path"].as_str().expect("path")).to_owned();
    commit_file(&path, "work.txt", "mine\n", "agent work");
    std::fs::write(path.join("draft.txt"), "unsaved\n").expect("draft");
    for f in [
        "records.sqlite3",
        "records.sqlite3-wal",
        "records.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(dir.join(".git/ff").join(f));
    }
    let report = stdout_json(&ff(dir, &["recover", "--json"]));
    assert_valid("recover", &report);
    assert_eq!(report["repairs"][0]["kind"], "rebuilt_record", "{report}");
    assert!(path.join("draft.txt").exists() && path.join("work.txt").exists());
    let listed = stdout_json(&ff(dir, &["list", "--json"]));
    assert_valid("list", &listed);
    assert_eq!(listed[0]["id"], made["id"]);
    assert_eq!(listed[0]["recovered"], true);
    let text = String::from_utf8_lossy(&ff(dir, &["list"]).stdout).into_owned();
    assert!(text.contains("record rebuilt"), "{text}");
}

/// Row 3 of the README's promises: `ff recover --dry-run` shows what `ff
/// recover` then does. Two worktrees of one issue (a second one made by
/// hand in ForgeFlow's shape), the records store deleted: the dry run and
/// the run list the same repairs, one kept, one archived and removed.
#[test]
fn recover_dry_run_shows_what_recover_does() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let made = stdout_json(&ff(dir, &["create", "2", "--json"]));
    let base = Path::new(made["path"].as_str().expect("path"))
        .parent()
        .expect("base")
        .to_owned();
    let second = base.join("wt-2-mx0001-00aa");
    repo.add_worktree("ff-2-mx0001-00aa", &second, true);
    commit_file(&second, "two.txt", "2\n", "second's work");
    for f in [
        "records.sqlite3",
        "records.sqlite3-wal",
        "records.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(dir.join(".git/ff").join(f));
    }
    let steps = |report: &Value| -> Vec<(String, String)> {
        report["repairs"]
            .as_array()
            .expect("repairs")
            .iter()
            .map(|r| (r["kind"].to_string(), r["subject"].to_string()))
            .collect()
    };
    let dry = stdout_json(&ff(dir, &["recover", "--dry-run", "--json"]));
    let done = stdout_json(&ff(dir, &["recover", "--json"]));
    assert_eq!(steps(&dry), steps(&done), "dry run: {dry}\nrecover: {done}");
    let kinds: Vec<String> = steps(&done).into_iter().map(|(k, _)| k).collect();
    assert!(kinds.contains(&"\"rebuilt_record\"".to_owned()), "{done}");
    assert!(
        kinds.contains(&"\"removed_unrecorded_worktree\"".to_owned()),
        "{done}"
    );
    let listed = stdout_json(&ff(dir, &["list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

/// Row 4 of the README's promises: one worktree per issue whatever the
/// namespace. After `namespace = "renamed"`, `ff list` warns of the
/// worktree it cannot see, `ff create` of its issue is refused (77)
/// naming it, and `ff recover` reports it left alone; the store lost,
/// create points to `ff recover`, which brings it back.
#[test]
fn one_worktree_per_issue_whatever_the_namespace() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let made = stdout_json(&ff(dir, &["create", "2", "--json"]));
    let id = made["id"].as_str().expect("id").to_owned();
    std::fs::write(dir.join("ff.toml"), "namespace = \"renamed\"\n").expect("ff.toml");
    let listed = ff(dir, &["list"]);
    let warned = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(code(&listed), 0);
    assert!(warned.contains(&id), "{warned}");
    assert!(warned.contains("default namespace"), "{warned}");
    let again = ff(dir, &["create", "2", "--json"]);
    assert_eq!(
        code(&again),
        77,
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        error_json(&again)["message"]
            .as_str()
            .is_some_and(|m| m.contains(&id))
    );
    assert_eq!(repo.worktree_paths().len(), 2, "no second worktree");
    let recovered = stdout_json(&ff(dir, &["recover", "--json"]));
    assert_eq!(recovered["repairs"][0]["kind"], "left_alone", "{recovered}");
    assert_eq!(recovered["repairs"][0]["subject"], id.as_str());
    // The default namespace again, its store lost: create says to recover.
    std::fs::remove_file(dir.join("ff.toml")).expect("rm ff.toml");
    for f in [
        "records.sqlite3",
        "records.sqlite3-wal",
        "records.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(dir.join(".git/ff").join(f));
    }
    let lost = ff(dir, &["create", "2"]);
    let said = String::from_utf8_lossy(&lost.stderr);
    assert_eq!(code(&lost), 77, "{said}");
    assert!(said.contains("ff recover"), "{said}");
    let _ = stdout_json(&ff(dir, &["recover", "--json"]));
    let back = stdout_json(&ff(dir, &["create", "2", "--json"]));
    assert_eq!(back["id"], id.as_str());
    assert_eq!(back["reused"], true);
}

/// A worktree directory deleted by hand: `ff create` of its issue brings it
/// back from its branch, commits intact, at the same path.
#[test]
fn create_restores_a_deleted_worktree_directory() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let made = stdout_json(&ff(dir, &["create", "4", "--json"]));
    let path = Path::new(made["path"].as_str().expect("path")).to_owned();
    commit_file(&path, "work.txt", "mine\n", "agent work");
    std::fs::remove_dir_all(&path).expect("rm -rf");
    let again = ff(dir, &["create", "4", "--json"]);
    assert_eq!(code(&again), 0);
    let again = stdout_json(&again);
    assert_valid("create", &again);
    assert_eq!(again["reused"], true);
    assert_eq!(again["path"], made["path"]);
    assert_eq!(again["status"], "active");
    assert_eq!(
        std::fs::read_to_string(path.join("work.txt")).expect("restored"),
        "mine\n"
    );
}

/// `--timeout` is the whole wait: 40 s behind a 35 s holder succeeds (waits
/// were once cut to 30 s whatever the timeout said).
#[test]
fn ff_lock_waits_its_whole_timeout_past_thirty_seconds() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["lock", "long", "--", "sleep", "35"])
        .current_dir(dir)
        .spawn()
        .expect("spawn the holder");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout_json(&ff(dir, &["locks", "--json"]))
        .as_array()
        .expect("array")
        .iter()
        .any(|l| l["name"] == "long" && l["held"] == true)
    {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let waiter = ff(dir, &["lock", "long", "--timeout", "40s", "--", "true"]);
    let waited = started.elapsed();
    assert_eq!(
        code(&waiter),
        0,
        "{}",
        String::from_utf8_lossy(&waiter.stderr)
    );
    assert!(
        waited > Duration::from_secs(30),
        "got the lock after {waited:?}"
    );
    assert!(holder.wait().expect("holder").success());
}

/// `ff once` keeps its promise: a reused key with another command is
/// refused; a completed run's output is replayed; `--ttl` lets a key
/// expire; `--forget` removes a key (not while it runs).
#[test]
fn once_fingerprints_replays_expires_and_forgets() {
    let repo = TestRepo::new();
    let dir = repo.path();

    // Fingerprint: the same key, another command.
    let first = ff(dir, &["once", "--key", "K", "--", "echo", "first"]);
    assert_eq!(code(&first), 0);
    assert_eq!(String::from_utf8_lossy(&first.stdout), "first\n");
    let other = ff(
        dir,
        &["once", "--key", "K", "--json", "--", "echo", "second"],
    );
    assert_eq!(code(&other), 65);
    let message = error_json(&other)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("echo first") && message.contains("echo second"),
        "{message}"
    );
    let allowed = ff(
        dir,
        &[
            "once",
            "--key",
            "K",
            "--allow-different-command",
            "--",
            "echo",
            "second",
        ],
    );
    assert_eq!(code(&allowed), 0);
    assert_eq!(
        String::from_utf8_lossy(&allowed.stdout),
        "first\n",
        "the one real run's output, replayed"
    );

    // Replay: stdout to stdout, stderr to stderr, and in JSON.
    let script = "echo out; echo err >&2";
    let ran = ff(dir, &["once", "--key", "R", "--", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "out\n");
    let again = ff(dir, &["once", "--key", "R", "--", "sh", "-c", script]);
    assert_eq!(code(&again), 0);
    assert_eq!(String::from_utf8_lossy(&again.stdout), "out\n");
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("err\n"));
    let json = stdout_json(&ff(
        dir,
        &["once", "--key", "R", "--json", "--", "sh", "-c", script],
    ));
    assert_valid("once", &json);
    assert_eq!(json["ran"], false);
    assert_eq!(json["stdout"], "out\n");
    assert_eq!(json["stderr"], "err\n");

    // --ttl: after it, the command runs again.
    let counter = repo.scratch("once-ttl").join("runs");
    let count = format!("echo x >> '{}'", counter.display());
    for _ in 0..2 {
        assert_eq!(
            code(&ff(
                dir,
                &[
                    "once", "--key", "T", "--ttl", "1s", "--", "sh", "-c", &count
                ]
            )),
            0
        );
    }
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(
        code(&ff(
            dir,
            &[
                "once", "--key", "T", "--ttl", "1s", "--", "sh", "-c", &count
            ]
        )),
        0
    );
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("runs")
            .lines()
            .count(),
        2,
        "once within the TTL, again after it"
    );

    // --forget: the key's record goes; the command runs again.
    let forgot = stdout_json(&ff(dir, &["once", "--forget", "--key", "T", "--json"]));
    assert_valid("once", &forgot);
    assert_eq!(forgot["forgotten"], true);
    assert_eq!(
        code(&ff(dir, &["once", "--key", "T", "--", "sh", "-c", &count])),
        0
    );
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("runs")
            .lines()
            .count(),
        3
    );

    // A key the user did not choose is told (stderr; `key` in JSON), and
    // --forget --key takes it as told.
    let counted = format!("echo d >> '{}'", counter.display());
    let ran = ff(dir, &["once", "--", "sh", "-c", &counted]);
    let said = String::from_utf8_lossy(&ran.stderr).into_owned();
    let told = said
        .split_whitespace()
        .find(|w| w.starts_with("command:"))
        .unwrap_or_else(|| panic!("no key told: {said}"))
        .to_owned();
    let json = stdout_json(&ff(dir, &["once", "--json", "--", "sh", "-c", &counted]));
    assert_valid("once", &json);
    assert_eq!(json["ran"], false);
    assert_eq!(json["key"], told.as_str());
    let forgot = stdout_json(&ff(dir, &["once", "--forget", "--key", &told, "--json"]));
    assert_eq!(forgot["forgotten"], true, "the told key reaches the record");
    assert_eq!(code(&ff(dir, &["once", "--", "sh", "-c", &counted])), 0);
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("runs")
            .lines()
            .filter(|l| *l == "d")
            .count(),
        2,
        "run, replayed, forgotten, run again"
    );

    // Not while it runs: the command says when it has begun (so the key
    // is claimed), and runs on until the refusal has been asked for.
    let began = dir.join("once-began");
    let mut running = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args([
            "once",
            "--key",
            "L",
            "--",
            "sh",
            "-c",
            "touch \"$0\"; sleep 3",
        ])
        .arg(&began)
        .current_dir(dir)
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !began.exists() {
        assert!(Instant::now() < deadline, "the command never began");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = ff(dir, &["once", "--forget", "--key", "L", "--json"]);
    assert_eq!(
        code(&refused),
        75,
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(running.wait().expect("wait").success());

    // After the maximum attempts, the message says how to allow another.
    for _ in 0..2 {
        let _ = ff(
            dir,
            &["once", "--key", "F", "--max-attempts", "1", "--", "false"],
        );
    }
    let spent = ff(
        dir,
        &["once", "--key", "F", "--max-attempts", "1", "--", "false"],
    );
    assert_eq!(code(&spent), 75);
    assert!(
        String::from_utf8_lossy(&spent.stderr).contains("ff once --forget --key \"F\""),
        "{}",
        String::from_utf8_lossy(&spent.stderr)
    );
}

/// The git version is not checked on every run (a process each time), but
/// a git too old for ForgeFlow still shows as such: its first failing call
/// checks the version and names it.
#[cfg(unix)]
#[test]
fn a_git_too_old_is_named_when_it_fails() {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::new();
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("utf8");
    // An old git: says 2.20, lacks `worktree list -z`; otherwise real git.
    let fake = repo.scratch("old-git").join("git");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n--version) echo 'git version 2.20.1' ;;\n\
             worktree) echo 'error: unknown switch `z'\"'\" >&2; exit 129 ;;\n\
             *) exec '{}' \"$@\" ;;\nesac\n",
            real.trim()
        ),
    )
    .expect("write fake git");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["--json", "create", "old"])
        .current_dir(repo.path())
        .env("FF_GIT", &fake)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .output()
        .expect("run ff");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(code(&out), 0, "{stderr}");
    assert!(
        stderr.contains("git 2.20.1 is too old"),
        "the version is not named: {stderr}"
    );
}

/// Discovery is read again on every run, so what changed between two runs
/// is seen: HEAD switched to another branch, the repository moved, another
/// repository cloned where it was (with the state kept outside).
#[test]
fn a_switched_head_a_moved_repository_and_a_reclone_are_noticed() {
    let repo = TestRepo::new();
    let dir = repo.path();
    assert_eq!(code(&ff(dir, &["create", "one"])), 0);
    // HEAD switched: the next worktree starts from the new branch's tip.
    let _ = repo.git(&["checkout", "-q", "-b", "trunk"]);
    ff_testkit::git::commit_file(dir, "trunk.txt", "t\n", "on trunk");
    let tip = repo.git(&["rev-parse", "HEAD"]);
    let created = stdout_json(&ff(dir, &["--json", "create", "two"]));
    assert_eq!(created["base"], "trunk", "{created}");
    let branch = created["branch"].as_str().expect("branch");
    assert_eq!(
        repo.git(&["rev-parse", branch]).trim(),
        tip.trim(),
        "{created}"
    );

    // Moved: found at its new place, worktrees made there.
    let moved = repo.scratch("moved").join("repo");
    std::fs::rename(dir, &moved).expect("move the repository");
    let created = stdout_json(&ff(&moved, &["--json", "create", "three"]));
    let path = created["path"].as_str().expect("path");
    assert!(
        std::path::Path::new(path).starts_with(moved.canonicalize().expect("canonical")),
        "{path} is not under the moved repository"
    );

    // Another repository cloned at the same place, state kept outside: it
    // is another repository (another root commit), with none of the first
    // one's worktrees.
    let state = repo.scratch("state");
    let state_arg = state.to_str().expect("utf8");
    let first = repo.scratch("first").join("r");
    std::fs::create_dir_all(&first).expect("mkdir");
    let _ = ff_testkit::git::git_in(&first, &["init", "-q", "-b", "main"]);
    ff_testkit::git::configure(&first);
    ff_testkit::git::commit_file(&first, "a", "a\n", "first history");
    assert_eq!(
        code(&ff(&first, &["--state-dir", state_arg, "create", "x"])),
        0
    );
    std::fs::remove_dir_all(&first).expect("remove the clone");
    std::fs::create_dir_all(&first).expect("mkdir");
    let _ = ff_testkit::git::git_in(&first, &["init", "-q", "-b", "main"]);
    ff_testkit::git::configure(&first);
    ff_testkit::git::commit_file(&first, "b", "b\n", "another history");
    let listed = stdout_json(&ff(&first, &["--json", "--state-dir", state_arg, "list"]));
    assert_eq!(
        listed,
        serde_json::json!([]),
        "the old repository's worktrees leaked"
    );
}

/// `ff lock --permits 3`: ten processes at once, never more than three
/// inside, and three reached, on the file lock and on Redis.
#[test]
fn permits_cap_concurrent_holders_across_processes() {
    let redis = ff_testkit::redis::RedisServer::start();
    let backends = lock_backends(redis.as_ref());
    for backend in backends {
        let repo = TestRepo::new();
        let inside = repo.scratch("inside");
        let log = repo.scratch("log").join("counts");
        // Enter (a file of our own), count who is inside, stay a while.
        let script = format!(
            "touch \"{d}/$$\"; ls '{d}' | wc -l >> '{log}'; sleep 0.3; rm \"{d}/$$\"",
            d = inside.display(),
            log = log.display()
        );
        let children: Vec<_> = (0..10)
            .map(|_| {
                let mut args: Vec<&str> = backend.iter().map(String::as_str).collect();
                args.extend([
                    "lock",
                    "sem",
                    "--permits",
                    "3",
                    "--timeout",
                    "60s",
                    "--",
                    "sh",
                    "-c",
                    &script,
                ]);
                Command::new(env!("CARGO_BIN_EXE_ff"))
                    .args(&args)
                    .current_dir(repo.path())
                    .env_remove("FF_LOCK")
                    .env_remove("FF_STORE")
                    .env_remove("FF_STATE_DIR")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn ff")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{backend:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let counts: Vec<u32> = std::fs::read_to_string(&log)
            .expect("log")
            .lines()
            .map(|l| l.trim().parse().expect("a count"))
            .collect();
        assert_eq!(counts.len(), 10, "{backend:?}");
        let most = counts.iter().copied().max().unwrap_or(0);
        assert!(
            most <= 3,
            "{backend:?}: {most} holders of 3 permits at once"
        );
        assert_eq!(
            most, 3,
            "{backend:?}: three permits never all in use: {counts:?}"
        );
    }
}

/// Bad semaphore options are usage errors (exit 2), refused before
/// anything is written: permits 0 or above 10,000, and --shared with
/// --permits.
#[test]
fn bad_permits_are_refused_with_nothing_written() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let state = repo.scratch("state").join("never");
    let state_arg = state.to_str().expect("utf8");
    for (args, says) in [
        (vec!["--permits", "0"], "1..=10000"),
        (vec!["--permits", "10001"], "1..=10000"),
        (vec!["--permits", "2", "--shared"], "cannot be used with"),
    ] {
        let mut all = vec!["--state-dir", state_arg, "lock", "sem"];
        all.extend(&args);
        all.extend(["--", "true"]);
        let out = ff(dir, &all);
        assert_eq!(code(&out), 2, "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!state.exists(), "{args:?}: the state directory was made");
    }
}

/// Hierarchical names through the binary, across processes, on the file
/// lock and on Redis: eight processes on sibling leaves hold at once; a
/// parent taken exclusively waits for all of them, and while it holds, a
/// new leaf waits (here: times out, 75).
#[test]
fn sibling_leaves_run_together_and_their_parent_waits_for_them() {
    let redis = ff_testkit::redis::RedisServer::start();
    let backends = lock_backends(redis.as_ref());
    for backend in backends {
        let repo = TestRepo::new();
        let inside = repo.scratch("inside");
        let done = repo.scratch("log").join("leaves-done");
        let saw = repo.scratch("log").join("parent-saw");
        let spawn = |args: &[&str]| spawn_ff_with(repo.path(), &backend, args);
        // Each leaf waits (up to 10 s) until all eight are inside at once.
        let leaf = format!(
            "touch \"{d}/$$\"; i=0; while [ $(ls '{d}' | wc -l) -lt 8 ] && [ $i -lt 200 ]; \
             do sleep 0.05; i=$((i+1)); done; [ $(ls '{d}' | wc -l) -ge 8 ] || exit 3; \
             sleep 0.3; echo x >> '{done}'; rm \"{d}/$$\"",
            d = inside.display(),
            done = done.display()
        );
        let leaves: Vec<_> = (0..8)
            .map(|i| {
                let name = format!("tree/leaf-{i}");
                spawn(&["lock", &name, "--timeout", "30s", "--", "sh", "-c", &leaf])
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_dir(&inside).map_or(0, Iterator::count) < 8 {
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the leaves never all got in"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let parent_cmd = format!(
            "wc -l < '{}' > '{}'; sleep 1",
            done.display(),
            saw.display()
        );
        let parent = spawn(&[
            "lock",
            "tree",
            "--timeout",
            "30s",
            "--",
            "sh",
            "-c",
            &parent_cmd,
        ]);
        for l in leaves {
            let out = l.wait_with_output().expect("leaf");
            assert!(
                out.status.success(),
                "{backend:?}: a leaf: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The parent runs now (for a second): a new leaf must wait.
        while !saw.exists() {
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the parent never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut late_args: Vec<&str> = backend.iter().map(String::as_str).collect();
        late_args.extend(["lock", "tree/late", "--timeout", "300ms", "--", "true"]);
        let late = ff(repo.path(), &late_args);
        assert_eq!(
            code(&late),
            75,
            "{backend:?}: a leaf got in under an exclusive parent"
        );
        let out = parent.wait_with_output().expect("parent");
        assert!(
            out.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = std::fs::read_to_string(&saw).expect("parent's count");
        assert_eq!(
            seen.trim(),
            "8",
            "{backend:?}: the parent ran before every leaf was done"
        );
    }
}

/// Bad hierarchical names are refused (65) with nothing written.
#[test]
fn bad_hierarchical_names_are_refused() {
    let repo = TestRepo::new();
    let state = repo.scratch("state").join("never");
    let state_arg = state.to_str().expect("utf8");
    let deep = vec!["n"; 17].join("/");
    for name in ["a//b", "/a", "a/", "a/../b", deep.as_str()] {
        let out = ff(
            repo.path(),
            &["--state-dir", state_arg, "lock", name, "--", "true"],
        );
        assert_eq!(
            code(&out),
            65,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!state.exists(), "{name}: the state directory was made");
    }
}

/// `ff locks --tree` shows a hierarchy as one; `--json` gives each entry
/// its parent; `ff unlock` of a node, forced or not, says what beneath it
/// is still held.
#[cfg(unix)]
#[test]
fn locks_tree_and_unlock_of_a_node() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let mut holder = crate::common::hold_lock(dir, "proj/issue-7", 5);
    let tree = ff(dir, &["locks", "--tree"]);
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(text.contains("proj  IX held by pid"), "{text}");
    assert!(text.contains("\n  issue-7  X held by pid"), "{text}");
    let listed = stdout_json(&ff(dir, &["--json", "locks"]));
    assert_valid("locks", &listed);
    let leaf = listed
        .as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == "proj/issue-7"))
        .expect("the leaf is listed");
    assert_eq!(leaf["parent"], "proj");
    // Unforced: refused (75), naming what keeps the node held.
    let plain = ff(dir, &["unlock", "proj"]);
    let said = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(code(&plain), 75, "{said}");
    assert!(said.contains("held beneath it: proj/issue-7"), "{said}");
    let unlock = ff(dir, &["unlock", "proj", "--force"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&unlock.stdout),
        String::from_utf8_lossy(&unlock.stderr)
    );
    assert!(said.contains("proj/issue-7"), "{said}");
    let _ = holder.kill();
    let _ = holder.wait();
}

/// `ff cleanup` of squash-merged work: no force needed, the reason in
/// the answer, the commits archived all the same.
#[test]
fn cleanup_of_squash_merged_work_says_why_it_is_merged() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let created = stdout_json(&ff(dir, &["create", "squash", "--json"]));
    let path = std::path::PathBuf::from(created["path"].as_str().expect("path"));
    let branch = created["branch"].as_str().expect("branch").to_owned();
    commit_file(&path, "one.txt", "1\n", "one");
    commit_file(&path, "two.txt", "2\n", "two");
    let _ = ff_testkit::git::git_in(dir, &["merge", "--squash", &branch]);
    let _ = ff_testkit::git::git_in(dir, &["commit", "-q", "-m", "squashed"]);
    let done = stdout_json(&ff(dir, &["cleanup", "squash", "--json"]));
    assert_valid("cleanup", &done);
    assert_eq!(done["removed"], true, "{done}");
    assert!(
        done["merged_because"]
            .as_str()
            .is_some_and(|w| w.contains("squash")),
        "{done}"
    );
    assert!(done["archived_at"].is_string(), "{done}");
}

/// `ff prune --dry-run` lists exactly what `ff prune` then removes, both
/// answers valid against the schema.
#[test]
fn prune_dry_run_lists_what_prune_removes() {
    let repo = TestRepo::new();
    let dir = repo.path();
    for issue in ["done", "open"] {
        let created = stdout_json(&ff(dir, &["create", issue, "--json"]));
        let path = std::path::PathBuf::from(created["path"].as_str().expect("path"));
        commit_file(&path, &format!("{issue}.txt"), "work\n", "work");
        if issue == "done" {
            let branch = created["branch"].as_str().expect("branch");
            let _ = ff_testkit::git::git_in(dir, &["merge", "--squash", branch]);
            let _ = ff_testkit::git::git_in(dir, &["commit", "-q", "-m", "squashed"]);
        }
    }
    let plan = stdout_json(&ff(dir, &["prune", "--dry-run", "--json"]));
    assert_valid("prune", &plan);
    let pick = |v: &Value, action: &str| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .filter(|p| p["action"] == action)
            .map(|p| p["issue"].as_str().expect("issue").to_owned())
            .collect()
    };
    assert_eq!(pick(&plan, "would_remove"), ["done"], "{plan}");
    assert_eq!(pick(&plan, "kept"), ["open"], "{plan}");
    let done = stdout_json(&ff(dir, &["prune", "--json"]));
    assert_valid("prune", &done);
    assert_eq!(
        pick(&done, "removed"),
        pick(&plan, "would_remove"),
        "{done}"
    );
    let listed = stdout_json(&ff(dir, &["list", "--json"]));
    assert_eq!(listed.as_array().expect("array").len(), 1, "{listed}");
}

/// `ff create --print-path` and `ff path` print the path alone; `ff
/// shell-init bash` gives a `ffcd` that creates the worktree and changes
/// into it, in a real bash.
#[test]
fn print_path_path_and_shell_init() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let out = ff(dir, &["create", "5", "--print-path"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let path = printed.strip_suffix('\n').expect("one line");
    assert!(
        !path.contains('\n') && Path::new(path).is_dir(),
        "{printed:?}"
    );
    let again = ff(dir, &["path", "5"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), printed);
    let json = stdout_json(&ff(dir, &["path", "5", "--json"]));
    assert_valid("path", &json);
    assert_eq!(json["path"], path);
    let missing = ff(dir, &["path", "nope"]);
    assert_eq!(code(&missing), 65);
    assert!(missing.stdout.is_empty());
    assert_eq!(
        code(&ff(dir, &["create", "5", "--print-path", "--json"])),
        2,
        "--print-path and --json conflict"
    );

    // ffcd in a real bash: creates issue 6's worktree and cds into it.
    let bin = Path::new(env!("CARGO_BIN_EXE_ff"))
        .parent()
        .expect("bin dir");
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A typo makes nothing: only -c creates. `ff switch -` goes back.
    let script = "eval \"$(ff shell-init bash)\" && ! ffcd 6 2>/dev/null && ffcd -c 6 && pwd \
                  && ff switch - && pwd && ff switch 6 && pwd";
    let shell = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", path_var)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .output()
        .expect("bash");
    assert_eq!(
        code(&shell),
        0,
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let said = String::from_utf8_lossy(&shell.stdout).into_owned();
    let cwds: Vec<&str> = said.lines().collect();
    let six = String::from_utf8_lossy(&ff(dir, &["path", "6"]).stdout)
        .trim()
        .to_owned();
    let main = std::fs::canonicalize(dir).expect("canonical");
    assert_eq!(
        cwds,
        [six.as_str(), &main.to_string_lossy(), six.as_str()],
        "ffcd -c into issue 6's worktree, ff switch - back, ff switch 6 again"
    );
    let json = stdout_json(&ff(dir, &["switch", "6", "--json"]));
    assert_valid("switch", &json);
    assert_eq!(json["created"], false);
    let back = stdout_json(&ff(dir, &["switch", "-", "--json"]));
    assert_valid("switch", &back);
    assert_eq!(back["id"], Value::Null);
}

/// Inside a worktree, `ff get`, `ff path`, `ff sync` and `ff cleanup`
/// with no target act on it; a target may be a path, id, branch or issue;
/// one naming two worktrees is refused naming both; a typo is told the
/// closest name (and `ff cleanup` of it still exits 0: gone is done).
#[test]
fn targets_are_inferred_and_resolved() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let a = stdout_json(&ff(dir, &["create", "alpha", "--json"]));
    let b = stdout_json(&ff(dir, &["create", "beta", "--json"]));
    let a_path = Path::new(a["path"].as_str().expect("path")).to_owned();
    let inside = a_path.join("sub");
    std::fs::create_dir_all(&inside).expect("subdir");
    let here = |args: &[&str]| ff(&inside, args);
    let got = here(&["get", "--json"]);
    assert_eq!(code(&got), 0, "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(stdout_json(&got)["id"], a["id"]);
    let synced = here(&["sync", "--json"]);
    assert_eq!(
        code(&synced),
        0,
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    // By path, id, branch and issue, from the main tree.
    for name in [
        a_path.to_string_lossy().into_owned(),
        a["id"].as_str().expect("id").to_owned(),
        a["branch"].as_str().expect("branch").to_owned(),
        "alpha".to_owned(),
    ] {
        let found = stdout_json(&ff(dir, &["path", &name, "--json"]));
        assert_eq!(found["id"], a["id"], "{name}");
    }
    // Outside every worktree, no target is a usage error.
    let none = ff(dir, &["get"]);
    assert_eq!(code(&none), 2, "{}", String::from_utf8_lossy(&none.stderr));
    // A typo: 65 for get, with the closest name; cleanup says so, exits 0.
    let typo = ff(dir, &["get", "alpah"]);
    let said = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(code(&typo), 65, "{said}");
    assert!(said.contains("did you mean \"alpha\""), "{said}");
    let typo = ff(dir, &["cleanup", "bet"]);
    let said = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(code(&typo), 0, "{said}");
    assert!(said.contains("did you mean \"beta\""), "{said}");
    assert_eq!(repo.worktree_paths().len(), 3, "nothing was removed");
    // Inside it, cleanup with no target removes it.
    let cleaned = here(&["cleanup", "--json"]);
    assert_eq!(
        code(&cleaned),
        0,
        "{}",
        String::from_utf8_lossy(&cleaned.stderr)
    );
    assert!(!a_path.exists());
    assert_eq!(
        stdout_json(&ff(dir, &["path", "beta", "--json"]))["id"],
        b["id"]
    );
}

/// `ff exec` runs its command in the issue's worktree (made if needed)
/// with the worktree's environment, passes its exit code on, and with
/// `--no-create` refuses (65) an issue without one, creating nothing.
#[test]
fn exec_runs_in_the_worktree() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let out = ff(
        dir,
        &[
            "exec",
            "7",
            "--",
            "sh",
            "-c",
            "pwd; echo \"$FF_ISSUE $FF_BRANCH\"; test \"$PWD\" = \"$FF_WORKTREE_PATH\"",
        ],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let path = String::from_utf8_lossy(&ff(dir, &["path", "7"]).stdout)
        .trim()
        .to_owned();
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some(path.as_str()), "{printed}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("7 ")),
        "{printed}"
    );
    assert_eq!(
        code(&ff(dir, &["exec", "7", "--", "sh", "-c", "exit 3"])),
        3
    );
    let json = ff(dir, &["exec", "7", "--json", "--", "true"]);
    let json = stdout_json(&json);
    assert_valid("exec", &json);
    assert_eq!(json["exit_code"], 0);

    let refused = ff(dir, &["exec", "8", "--no-create", "--", "true"]);
    assert_eq!(
        code(&refused),
        65,
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ff create 8"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(code(&ff(dir, &["path", "8"])), 65, "nothing was created");
    assert_eq!(code(&ff(dir, &["exec", "../x", "--", "true"])), 65);
}

/// A cleanup called while `ff exec` runs a command in the worktree waits
/// for the command, then removes the worktree: the command saw its
/// directory the whole time. On the file lock and on Redis.
#[test]
fn cleanup_waits_for_a_running_exec() {
    let redis = ff_testkit::redis::RedisServer::start();
    for backend in lock_backends(redis.as_ref()) {
        let repo = TestRepo::new();
        let dir = repo.path();
        let notes = tempfile::tempdir().expect("tempdir");
        let started = notes.path().join("started");
        let log = notes.path().join("log");
        let script = format!(
            "touch '{started}'; i=0; while [ $i -lt 15 ]; do \
               test -d \"$FF_WORKTREE_PATH\" || echo gone >> '{log}'; \
               sleep 0.1; i=$((i+1)); done; echo done >> '{log}'",
            started = started.display(),
            log = log.display()
        );
        let mut exec = spawn_ff_with(dir, &backend, &["exec", "9", "--", "sh", "-c", &script]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !started.exists() {
            assert!(Instant::now() < deadline, "the command never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut args: Vec<&str> = backend.iter().map(String::as_str).collect();
        args.extend(["cleanup", "9"]);
        let cleaned = ff(dir, &args);
        assert_eq!(
            code(&cleaned),
            0,
            "{}",
            String::from_utf8_lossy(&cleaned.stderr)
        );
        // It said what it waited for, naming the holder.
        let said = String::from_utf8_lossy(&cleaned.stderr);
        assert!(
            said.contains("waiting for issue 9's lock")
                && (said.contains(&format!("pid {}", exec.id()))
                    || said.contains("another process holds")),
            "{backend:?}: {said}"
        );
        // The cleanup returned only after the command had finished.
        let seen = std::fs::read_to_string(&log).expect("the command's log");
        assert_eq!(
            seen, "done\n",
            "{backend:?}: the directory went away under the command"
        );
        assert!(exec.wait().expect("ff exec").success(), "{backend:?}");
        assert_eq!(code(&ff(dir, &["path", "9"])), 65, "{backend:?}: removed");
    }
}

/// 16 concurrent `ff create`s of distinct issues get 16 distinct slots and
/// ports (`port_base + slot × port_stride` from ff.toml), in `--json`, in
/// `ff get` and in the text; cleanup frees a slot for the next create.
#[test]
fn concurrent_creates_get_distinct_slots_and_ports() {
    let repo = TestRepo::new();
    let dir = repo.path().to_path_buf();
    std::fs::write(
        dir.join("ff.toml"),
        "max_worktrees = 20\nport_base = 4000\nport_stride = 10\n",
    )
    .expect("ff.toml");
    let creates: Vec<_> = (0..16)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || ff(&dir, &["create", &format!("s{i}"), "--json"]))
        })
        .collect();
    let mut slots = std::collections::BTreeMap::new();
    for c in creates {
        let out = c.join().expect("thread");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let json = stdout_json(&out);
        assert_valid("create", &json);
        let slot = json["slot"].as_u64().expect("slot");
        assert_eq!(json["port"].as_u64(), Some(4000 + slot * 10), "{json}");
        assert!(
            slots.insert(slot, json["issue"].clone()).is_none(),
            "slot {slot} twice"
        );
    }
    assert_eq!(
        slots.keys().copied().collect::<Vec<_>>(),
        (0..16).collect::<Vec<_>>()
    );
    let (slot, issue) = slots.first_key_value().expect("one");
    let issue = issue.as_str().expect("issue").to_owned();
    let got = stdout_json(&ff(&dir, &["get", &issue, "--json"]));
    assert_valid("get", &got);
    assert_eq!(got["slot"].as_u64(), Some(*slot));
    assert_eq!(code(&ff(&dir, &["cleanup", &issue])), 0);
    let text = ff(&dir, &["create", "again"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("port    {}", 4000 + slot * 10)),
        "{text}"
    );
    // ff exec passes the slot and port on.
    let port = ff(
        &dir,
        &[
            "exec",
            "again",
            "--",
            "sh",
            "-c",
            "echo \"$FF_SLOT $FF_PORT\"",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&port.stdout).trim(),
        format!("{slot} {}", 4000 + slot * 10)
    );
}

/// Slot and port settings that cannot work are refused before anything
/// is made (exit 65, naming the setting).
#[test]
fn bad_slot_and_port_settings_are_refused() {
    let repo = TestRepo::new();
    let dir = repo.path();
    for (toml, names) in [
        (
            "port_base = 65000\nport_stride = 100\nmax_worktrees = 20\n",
            "port_base",
        ),
        ("port_base = 70000\n", "port_base"),
        ("port_base = 4000\nport_stride = 0\n", "port_stride"),
        ("port_stride = 2\n", "port_stride"),
        ("slots = 0\n", "slots"),
        ("slots = \"many\"\n", "slots"),
    ] {
        std::fs::write(dir.join("ff.toml"), toml).expect("ff.toml");
        let out = ff(dir, &["create", "1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 65, "{toml}: {stderr}");
        assert!(stderr.contains(names), "{toml}: {stderr}");
        assert!(repo.worktree_paths().len() == 1, "{toml}: nothing created");
    }
}

/// Through the binary: `.worktreeinclude` copies an ignored `.env` into the
/// new worktree; a `..` pattern exits 65 naming the line, creating nothing.
#[test]
fn worktreeinclude_through_the_binary() {
    let repo = TestRepo::new();
    let dir = repo.path();
    commit_file(dir, ".gitignore", ".env\n", "ignore .env");
    std::fs::write(dir.join(".env"), "TOKEN=abc\n").expect(".env");
    std::fs::write(dir.join(".worktreeinclude"), ".env\n").expect("include");
    let out = ff(dir, &["create", "inc", "--print-path"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        std::fs::read_to_string(Path::new(&path).join(".env")).expect("copied"),
        "TOKEN=abc\n"
    );
    std::fs::write(dir.join(".worktreeinclude"), ".env\n../outside\n").expect("include");
    let out = ff(dir, &["create", "bad", "--json"]);
    assert_eq!(code(&out), 65);
    let message = error_json(&out)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("line 2") && message.contains(".worktreeinclude"),
        "{message}"
    );
    assert_eq!(code(&ff(dir, &["path", "bad"])), 65, "nothing was created");
}

/// `ff ARGS` in `dir` as on a fresh machine: no global or system git
/// configuration, no identity to guess from the host name, none in the
/// environment.
fn ff_without_identity(dir: &Path, extra: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ff"));
    c.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "user.useConfigOnly")
        .env("GIT_CONFIG_VALUE_0", "true");
    for var in [
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "EMAIL",
        "FF_LOCK",
        "FF_STORE",
        "FF_STATE_DIR",
    ] {
        c.env_remove(var);
    }
    c.envs(extra.iter().copied()).output().expect("run ff")
}

/// A sync that would commit in the user's name, on a machine where git
/// knows no identity, says so with its own kind and exit code and changes
/// nothing; with an identity it syncs; ff's own archive commits need none.
#[test]
fn sync_without_a_git_identity_changes_nothing_and_says_what_to_set() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let created = stdout_json(&ff(dir, &["create", "1", "--json"]));
    let wt = std::path::PathBuf::from(created["path"].as_str().expect("path"));
    // The agent's commit in its worktree, and one on main since.
    commit_file(&wt, "work.txt", "mine\n", "agent work");
    commit_file(dir, "base.txt", "moved\n", "base moved");
    let _ = repo.git(&["config", "--unset", "user.name"]);
    let _ = repo.git(&["config", "--unset", "user.email"]);
    let head = |p: &Path| ff_testkit::git::git_in(p, &["rev-parse", "HEAD"]);
    let before = head(&wt);

    let out = ff_without_identity(dir, &[], &["sync", "1", "--json"]);
    assert_eq!(code(&out), 78, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(error_kind(&out), "git_identity");
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("git config user.name") && message.contains("GIT_COMMITTER_EMAIL"),
        "{message}"
    );
    assert_eq!(head(&wt), before, "the branch moved");
    let gitdir = std::path::PathBuf::from(ff_testkit::git::git_in(
        &wt,
        &["rev-parse", "--absolute-git-dir"],
    ));
    assert!(!gitdir.join("rebase-merge").exists() && !gitdir.join("rebase-apply").exists());
    assert!(
        ff_testkit::git::git_in(&wt, &["status", "--porcelain"]).is_empty(),
        "the worktree changed"
    );
    let text = ff_without_identity(dir, &[], &["sync", "1"]);
    assert_eq!(code(&text), 78);

    // With an identity in the environment, the same sync goes through.
    let out = ff_without_identity(
        dir,
        &[
            ("GIT_COMMITTER_NAME", "Agent"),
            ("GIT_COMMITTER_EMAIL", "agent@example.com"),
        ],
        &["sync", "1", "--json"],
    );
    let synced = stdout_json(&out);
    assert_eq!(synced["changed"], true);

    // ff's own archive commit keeps ForgeFlow's identity: a forced
    // cleanup of uncommitted work works on the bare machine.
    std::fs::write(wt.join("dirty.txt"), "unsaved\n").expect("write");
    let out = ff_without_identity(dir, &[], &["cleanup", "1", "--force", "--json"]);
    let cleaned = stdout_json(&out);
    assert!(cleaned["archived_at"].as_str().is_some(), "{cleaned}");
}

/// `ff man --out DIR` writes a page for ff and one for every command, each
/// a roff page naming its command; `ff man` prints ff's own. The bash
/// completion script knows every command.
#[test]
fn every_command_has_a_manual_page_and_completions() {
    let repo = TestRepo::new();
    let dir = repo.scratch("man");
    let out = ff(repo.path(), &["man", "--out", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let help = ff(repo.path(), &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|w| !w.starts_with("Options"))
        .filter(|w| *w != "help")
        .collect();
    assert!(commands.len() >= 24, "{commands:?}");
    let bash = ff(repo.path(), &["completions", "bash"]);
    let bash = String::from_utf8_lossy(&bash.stdout);
    for command in &commands {
        let page = dir.join(format!("ff-{command}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("no page {page:?}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page:?} is not roff"
        );
        // roff escapes every '-'.
        let roff = command.replace('-', "\\-");
        assert!(
            text.contains(&format!("ff\\-{roff}")),
            "{page:?} does not name {command}"
        );
        assert!(
            bash.contains(&format!("ff,{command})")),
            "bash completion lacks {command}"
        );
    }
    let printed = ff(repo.path(), &["man"]);
    assert!(String::from_utf8_lossy(&printed.stdout).contains(".TH ff 1"));
}

/// Every option value out of range is a usage error (exit 2), as a flag
/// that does not parse is, with the option named.
#[test]
fn option_values_out_of_range_are_usage_errors() {
    let repo = TestRepo::new();
    let dir = repo.path();
    for (args, names) in [
        (
            vec!["lock", "x", "--shared", "--permits", "2", "--", "true"],
            "--permits",
        ),
        (vec!["lock", "x", "--lease", "0", "--", "true"], "--lease"),
        (
            vec!["once", "--max-attempts", "0", "--", "true"],
            "--max-attempts",
        ),
        (vec!["once", "--ttl", "0", "--", "true"], "--ttl"),
        (vec!["top", "--interval", "0"], "--interval"),
        (vec!["top", "--interval", "50ms"], "--interval"),
        (
            vec!["serve", "--header-timeout", "10ms"],
            "--header-timeout",
        ),
        (vec!["prune", "--older-than", "2"], "--older-than"),
    ] {
        let out = ff(dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} must name {names}: {stderr}"
        );
    }
}

/// `ff top` shows how long a lock has been held to the millisecond below
/// a second, not `0ms` for a lock held 600 ms.
#[cfg(unix)]
#[test]
fn top_shows_lock_ages_below_a_second() {
    use crate::common::{hold_lock, stop};
    let repo = TestRepo::new();
    let dir = repo.path();
    let holder = hold_lock(dir, "aged", 30);
    std::thread::sleep(Duration::from_millis(600));
    let out = ff(dir, &["top", "-n", "1"]);
    stop(holder);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("aged"))
        .unwrap_or_else(|| panic!("no row for the lock: {text}"));
    assert!(!row.contains(" 0ms"), "held 600 ms, shown as 0ms: {row}");
    assert!(!text.contains("oldest 0ms"), "{text}");
}

/// With ports configured, the slot and port a worktree holds show in
/// `create`, `get` and `list`, not only in `--json`.
#[test]
fn slot_and_port_show_in_create_get_and_list() {
    let repo = TestRepo::new();
    let dir = repo.path();
    std::fs::write(dir.join("ff.toml"), "port_base = 4000\n").expect("ff.toml");
    let created = ff(dir, &["create", "a"]);
    let json = stdout_json(&ff(dir, &["get", "a", "--json"]));
    let (slot, port) = (json["slot"].to_string(), json["port"].to_string());
    assert!(json["port"].as_u64().is_some_and(|p| p >= 4000), "{json}");
    let created = String::from_utf8_lossy(&created.stdout).into_owned();
    let got = String::from_utf8_lossy(&ff(dir, &["get", "a"]).stdout).into_owned();
    for (what, text) in [("create", &created), ("get", &got)] {
        assert!(text.contains(&format!("slot    {slot}")), "{what}: {text}");
        assert!(text.contains(&format!("port    {port}")), "{what}: {text}");
    }
    let listed = String::from_utf8_lossy(&ff(dir, &["list"]).stdout).into_owned();
    assert!(
        listed.contains("SLOT") && listed.contains("PORT"),
        "{listed}"
    );
    let row = listed
        .lines()
        .find(|l| l.contains(" a "))
        .unwrap_or_default();
    assert!(row.contains(&port), "{listed}");
}

/// `ff list` is a table people read: within `COLUMNS` (80 here), with the
/// worktree you are in marked, each one's state (clean, files changed,
/// commits ahead of its base), its lock held, and filters; `--format
/// plain` keeps the records' own columns.
#[test]
fn list_fits_the_terminal_and_shows_state() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let long = "a-rather-long-issue-name-that-goes-on-for-quite-a-while";
    let made = stdout_json(&ff(dir, &["create", long, "--json"]));
    let busy = stdout_json(&ff(dir, &["create", "busy", "--json"]));
    let busy_path = Path::new(busy["path"].as_str().expect("path")).to_owned();
    std::fs::write(busy_path.join("draft.txt"), "draft\n").expect("draft");
    commit_file(&busy_path, "done.txt", "done\n", "work");
    let listed = |cwd: &Path, args: &[&str]| {
        let out = crate::common::ff_command(cwd, args)
            .env("COLUMNS", "80")
            .output()
            .expect("ff list");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = listed(&busy_path, &["list"]);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let busy_line = text
        .lines()
        .find(|l| l.contains("busy"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        busy_line.starts_with('*'),
        "the worktree you are in: {text}"
    );
    assert!(busy_line.contains("1 changed"), "{text}");
    assert!(busy_line.contains("+1/-0"), "{text}");
    let other = text
        .lines()
        .find(|l| l.contains("a-rather"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(other.contains("clean") && !other.starts_with('*'), "{text}");
    // Filters.
    let dirty = listed(dir, &["list", "--dirty"]);
    assert!(
        dirty.contains("busy") && !dirty.contains("a-rather"),
        "{dirty}"
    );
    // Plain: the records' columns, whole, ids and branches included.
    let plain = listed(dir, &["list", "--format", "plain"]);
    assert!(plain.contains(made["id"].as_str().expect("id")), "{plain}");
    assert!(
        plain.contains(made["branch"].as_str().expect("branch")),
        "{plain}"
    );
}

/// `q` quits `ff top` on a terminal (a pseudo-terminal from script(1);
/// its stdin is kept open, so nothing but the key can end it).
#[cfg(target_os = "linux")]
#[test]
fn q_quits_top() {
    use std::io::Write;
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let repo = TestRepo::new();
    let top = format!("'{}' top --interval 200ms", env!("CARGO_BIN_EXE_ff"));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &top, "/dev/null"])
        .current_dir(repo.path())
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // Once it has drawn a frame, press q.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("ff top") {
        let n = std::io::Read::read(&mut stdout, &mut buf).expect("read");
        assert!(n > 0, "top ended before drawing");
        seen.extend_from_slice(&buf[..n]);
    }
    stdin.write_all(b"q").expect("press q");
    stdin.flush().expect("flush");
    let drain = std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("q did not quit ff top");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    drop(stdin);
    let _ = drain.join();
}

/// `-v` logs to a pipe in plain text: no colour codes unless stderr is a
/// terminal.
#[test]
fn verbose_logs_to_a_pipe_have_no_colour() {
    let repo = TestRepo::new();
    let out = ff(repo.path(), &["-vv", "create", "logs"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("INFO") || logs.contains("DEBUG"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in a pipe: {logs:?}");
}

/// Every command's `--help` puts the global options under their own
/// heading and ends with examples.
#[test]
fn every_help_has_examples_and_a_global_options_heading() {
    let repo = TestRepo::new();
    let top = String::from_utf8_lossy(&ff(repo.path(), &["--help"]).stdout).into_owned();
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 20, "{top}");
    for c in commands {
        let help = ff(repo.path(), &[c, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(code(&help), 0, "{c}");
        assert!(
            text.contains("\nGlobal options:\n"),
            "ff {c} --help: {text}"
        );
        assert!(
            text.contains("\nEXAMPLES:\n    ff "),
            "ff {c} --help: {text}"
        );
        let own = text.split("Global options:").next().unwrap_or_default();
        assert!(
            !own.contains("--state-dir"),
            "ff {c}: a global option among its own"
        );
    }
}

/// The worst messages say what happened, what is untouched and what to do:
/// `ff exec 60 ls` points to `--`; the worktree limit names its setting
/// and `ff prune --dry-run`; a sync conflict says it was aborted and how
/// to resolve by hand.
#[test]
fn the_worst_messages_say_what_to_do() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let dashes = ff(dir, &["exec", "60", "ls"]);
    assert_eq!(code(&dashes), 2);
    let said = String::from_utf8_lossy(&dashes.stderr);
    assert!(
        said.contains("goes after `--`") && said.contains("-- ls"),
        "{said}"
    );

    std::fs::write(dir.join("ff.toml"), "max_worktrees = 1\n").expect("ff.toml");
    let a = stdout_json(&ff(dir, &["create", "a", "--json"]));
    let full = ff(dir, &["create", "b"]);
    let said = String::from_utf8_lossy(&full.stderr);
    assert_eq!(code(&full), 73, "{said}");
    for part in [
        "max_worktrees = 1",
        "Nothing was created",
        "ff prune --dry-run",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }

    let path = Path::new(a["path"].as_str().expect("path")).to_owned();
    commit_file(&path, "same.txt", "mine\n", "mine");
    commit_file(dir, "same.txt", "theirs\n", "theirs");
    let conflict = ff(dir, &["sync", "a"]);
    let said = String::from_utf8_lossy(&conflict.stderr);
    assert_eq!(code(&conflict), 1, "{said}");
    for part in [
        "same.txt",
        "aborted",
        "exactly as they were",
        "git rebase --continue",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }
}

/// Readable names through the binary: an issue id with `/`, a branch
/// template from ff.toml (no approval needed: no template can name an
/// existing branch), and a template that could name another branch refused
/// (65) with nothing made.
#[test]
fn issue_ids_with_a_slash_and_a_branch_template() {
    let repo = TestRepo::new();
    let dir = repo.path();
    std::fs::write(dir.join("ff.toml"), "branch_template = \"agent/{issue}\"\n").expect("ff.toml");
    let made = ff(dir, &["create", "feature/login", "--json"]);
    assert_eq!(code(&made), 0, "{}", String::from_utf8_lossy(&made.stderr));
    let made = stdout_json(&made);
    crate::common::assert_valid("create", &made);
    assert_eq!(made["id"], "feature+login");
    assert_eq!(made["branch"], "agent/feature/login");
    assert!(
        made["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".ff-worktrees/feature+login")),
        "{made}"
    );
    // Every kind of target names it.
    for target in ["feature/login", "feature+login", "agent/feature/login"] {
        let got = ff(dir, &["path", target]);
        assert_eq!(code(&got), 0, "{target}");
        assert_eq!(
            String::from_utf8_lossy(&got.stdout).trim(),
            made["path"].as_str().expect("path"),
            "{target}"
        );
    }
    let nested = ff(dir, &["create", "feature", "--json"]);
    assert_eq!(
        code(&nested),
        77,
        "{}",
        String::from_utf8_lossy(&nested.stderr)
    );
    assert!(
        crate::common::error_json(&nested)["message"]
            .as_str()
            .is_some_and(|m| m.contains("agent/feature/login"))
    );

    std::fs::write(dir.join("ff.toml"), "branch_template = \"{issue}\"\n").expect("ff.toml");
    let before = ff_testkit::git::git_in(dir, &["for-each-ref"]);
    let refused = ff(dir, &["create", "2", "--json"]);
    assert_eq!(code(&refused), 65);
    assert!(
        crate::common::error_json(&refused)["message"]
            .as_str()
            .is_some_and(|m| m.contains("branch_template"))
    );
    assert_eq!(ff_testkit::git::git_in(dir, &["for-each-ref"]), before);
}

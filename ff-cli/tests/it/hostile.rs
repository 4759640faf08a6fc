//! Hostile input through the `ff` binary: every case gets its documented
//! exit code, a message on stderr (a JSON error with `--json`), no panic,
//! and changes nothing on disk, inside the base path or out of it.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the figures for the report

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{error_kind, ff, stdout_json};
use ff_testkit::Immutable;
use ff_testkit::git::{TestRepo, git_in};
use ff_testkit::snapshot::Snapshot;
use serde_json::Value;

/// One hostile invocation: where, with what, and the exit code expected.
struct Case {
    what: &'static str,
    args: Vec<OsString>,
    cwd: PathBuf,
    env: Vec<(&'static str, OsString)>,
    config: Option<Vec<u8>>,
    code: i32,
}

fn case(what: &'static str, cwd: &Path, args: &[&str], code: i32) -> Case {
    Case {
        what,
        args: args.iter().map(OsString::from).collect(),
        cwd: cwd.to_path_buf(),
        env: Vec::new(),
        config: None,
        code,
    }
}

fn run(c: &Case, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ff"));
    if json {
        cmd.arg("--json");
    }
    cmd.args(&c.args).current_dir(&c.cwd);
    for k in [
        "FF_LOCK",
        "FF_STORE",
        "FF_REPO",
        "FF_BASE_PATH",
        "FF_STATE_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ff")
}

#[test]
#[allow(clippy::too_many_lines)] // one table of cases reads best whole
fn hostile_input_is_refused_with_its_exit_code_and_changes_nothing() {
    let repo = TestRepo::new();
    let dir = repo.path().to_path_buf();
    let root = dir.parent().expect("root").to_path_buf();
    // Set up what the cases point at, then warm the state up, so any later
    // change on disk is one a hostile case made.
    let not_git = repo.scratch("plain");
    let bare = repo.scratch("bare");
    let _ = git_in(&bare, &["init", "-q", "--bare"]);
    let empty = repo.scratch("empty");
    let _ = git_in(&empty, &["init", "-q"]);
    let a_file = repo.scratch("files").join("a-file");
    std::fs::write(&a_file, "not a directory").expect("file");
    #[cfg(unix)]
    let linked = {
        let link = repo.scratch("links").join("link");
        std::os::unix::fs::symlink(repo.scratch("elsewhere"), &link).expect("symlink");
        link.to_string_lossy().into_owned()
    };
    let locked = repo.scratch("immutable");
    stdout_json(&ff(&dir, &["list", "--json"]));
    stdout_json(&ff(&dir, &["--store", "json", "list", "--json"]));
    let immutable = Immutable::set(&locked);
    let file = a_file.to_string_lossy().into_owned();
    let in_locked = locked.join("wt").to_string_lossy().into_owned();
    let long = "a".repeat(10_000);
    let huge = "a".repeat(120_000); // near the kernel's limit for one argument
    let pwned = root.join("pwned");
    let inject = format!("$(touch {})", pwned.display());

    let mut cases = vec![
        // Issue ids.
        case("empty issue id", &dir, &["create", ""], 65),
        case("parent directory", &dir, &["create", "../etc"], 65),
        case("nested parent", &dir, &["create", "a/../../b"], 65),
        case("doubled slash", &dir, &["create", "a//b"], 65),
        case("trailing slash", &dir, &["create", "a/"], 65),
        case("dot part", &dir, &["create", "a/.git"], 65),
        case("plus (a directory's escape)", &dir, &["create", "a+b"], 65),
        case(
            "earlier release's id shape",
            &dir,
            &["create", "wt-1-mx5qglpu-c7e5"],
            65,
        ),
        case("absolute path", &dir, &["create", "/etc/passwd"], 65),
        case("backslash", &dir, &["create", "a\\b"], 65),
        case("newline", &dir, &["create", "a\nb"], 65),
        case("tab", &dir, &["create", "a\tb"], 65),
        case("carriage return", &dir, &["create", "a\rb"], 65),
        case("leading dash (a flag)", &dir, &["create", "-rf"], 2),
        case("leading dash after --", &dir, &["create", "--", "-rf"], 65),
        case(".lock ending", &dir, &["create", "x.lock"], 65),
        case(".LOCK ending", &dir, &["create", "x.LOCK"], 65),
        case("trailing dot", &dir, &["create", "a."], 65),
        case("dot", &dir, &["create", "."], 65),
        case("dot dot", &dir, &["create", ".."], 65),
        case("leading space", &dir, &["create", " 1"], 65),
        case("10,000 characters", &dir, &["create", &long], 65),
        case("120,000 characters", &dir, &["create", &huge], 65),
        case("fullwidth look-alike", &dir, &["create", "ａｂｃ"], 65),
        case("Cyrillic look-alike", &dir, &["create", "аbc"], 65),
        case("zero-width space", &dir, &["create", "abc\u{200b}"], 65),
        case(
            "right-to-left override",
            &dir,
            &["create", "abc\u{202e}"],
            65,
        ),
        case("shell injection", &dir, &["create", &inject], 65),
        case("git revision syntax", &dir, &["create", "@{-1}"], 65),
        case("git ancestry syntax", &dir, &["create", "a~1"], 65),
        case("get ../", &dir, &["get", "../x"], 65),
        case("cleanup ../", &dir, &["cleanup", "--force", "../x"], 65),
        case("sync /", &dir, &["sync", "/etc"], 65),
        // Base refs.
        case(
            "base ref as a git option",
            &dir,
            &["create", "1", "--base=--output=/tmp/x"],
            65,
        ),
        case(
            "base ref with a shell command",
            &dir,
            &["create", "1", "--base", "HEAD;ls"],
            65,
        ),
        case(
            "base ref that names nothing",
            &dir,
            &["create", "1", "--base", "nope"],
            65,
        ),
        // Base paths and state directories.
        case(
            "base path is a file",
            &dir,
            &["--base-path", &file, "create", "1"],
            65,
        ),
        case(
            "base path is /dev/null",
            &dir,
            &["--base-path", "/dev/null", "list"],
            65,
        ),
        case(
            "state dir is a file",
            &dir,
            &["--state-dir", &file, "list"],
            65,
        ),
        // Lock and store URLs.
        case(
            "unknown lock scheme",
            &dir,
            &["--lock", "zookeeper://x", "list"],
            65,
        ),
        case(
            "Redis URL without host",
            &dir,
            &["--lock", "redis://", "list"],
            65,
        ),
        case(
            "port out of range",
            &dir,
            &["--lock", "redis://h:99999", "list"],
            65,
        ),
        case(
            "port not a number",
            &dir,
            &["--store", "redis://h:abc/x", "list"],
            65,
        ),
        case(
            "db not a number",
            &dir,
            &["--lock", "redis://127.0.0.1:1/db", "list"],
            65,
        ),
        case(
            "unclosed IPv6 host",
            &dir,
            &["--store", "redis://[::1", "list"],
            65,
        ),
        case(
            "store given as lock",
            &dir,
            &["--lock", "sqlite", "list"],
            65,
        ),
        case(
            "lock given as store",
            &dir,
            &["--store", "file", "list"],
            65,
        ),
        case(
            "closed port (lock)",
            &dir,
            &["--lock", "redis://127.0.0.1:1", "list"],
            69,
        ),
        case(
            "closed port (store)",
            &dir,
            &["--store", "redis://127.0.0.1:1/0", "list"],
            69,
        ),
        case(
            "TLS to a closed port",
            &dir,
            &["--store", "rediss://127.0.0.1:1", "list"],
            69,
        ),
        case(
            "TLS with a CA file that is missing",
            &dir,
            &["--store", "rediss://127.0.0.1:1?ca=/no/such/ca.pem", "list"],
            65,
        ),
        case(
            "a Sentinel URL without a master name",
            &dir,
            &["--lock", "redis+sentinel://127.0.0.1:1", "locks"],
            65,
        ),
        case(
            "Sentinels that do not answer",
            &dir,
            &[
                "--lock",
                "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster",
                "locks",
            ],
            69,
        ),
        case(
            "a cluster URL with a database",
            &dir,
            &["--lock", "redis+cluster://127.0.0.1:1/0", "locks"],
            65,
        ),
        case(
            "a cluster nobody answers for",
            &dir,
            &["--lock", "redis+cluster://127.0.0.1:1", "locks"],
            69,
        ),
        case(
            "a CA for a plain connection",
            &dir,
            &["--lock", "redis://127.0.0.1:1?ca=/no/such/ca.pem", "list"],
            65,
        ),
        // Repositories.
        case("not a git repository", &not_git, &["create", "1"], 65),
        case("bare repository", &bare, &["create", "1"], 65),
        case("repository without commits", &empty, &["create", "1"], 65),
        case(
            "-C a missing directory",
            &dir,
            &["-C", "/no/such/dir", "list"],
            65,
        ),
        case("-C a file", &dir, &["-C", &file, "list"], 65),
        // Other arguments.
        case("unknown command", &dir, &["frobnicate"], 2),
        case("unknown flag", &dir, &["create", "1", "--no-such-flag"], 2),
        case("missing issue", &dir, &["create"], 2),
        case("bad duration", &dir, &["gc", "--max-age", "forever"], 2),
        case("negative duration", &dir, &["gc", "--max-age", "-5s"], 2),
        case("empty lock name", &dir, &["lock", "", "--", "true"], 65),
        case(
            "lock name with a tab",
            &dir,
            &["lock", "a\tb", "--", "true"],
            65,
        ),
        case(
            "zero attempts",
            &dir,
            &["once", "--max-attempts", "0", "--", "true"],
            2,
        ),
    ];
    // Ones the shell cannot pass as arguments: an environment variable and
    // ff.toml (NUL through TOML's \u0000, and 10 MB of garbage).
    let mut env_case = case("FF_LOCK garbage", &dir, &["list"], 65);
    env_case.env.push(("FF_LOCK", "etcd://x".into()));
    cases.push(env_case);
    let mut nul = case("NUL in base path (ff.toml)", &dir, &["list"], 65);
    nul.config = Some(b"base_path = \"a\\u0000b\"\n".to_vec());
    cases.push(nul);
    let mut nul_state = case("NUL in state dir (ff.toml)", &dir, &["list"], 65);
    nul_state.config = Some(b"state_dir = \"a\\u0000b\"\n".to_vec());
    cases.push(nul_state);
    let mut unknown = case("unknown ff.toml key", &dir, &["list"], 65);
    unknown.config = Some(b"lock_timeout_secs = 5\nfrobnicate = true\n".to_vec());
    cases.push(unknown);
    let mut garbage = case("10 MB garbage ff.toml", &dir, &["list"], 65);
    garbage.config = Some(
        (0..10 * 1024 * 1024_u32)
            .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap_or(0))
            .collect(),
    );
    cases.push(garbage);
    // Places that exist but cannot be written (the immutable attribute
    // binds root too).
    if immutable.is_some() {
        cases.push(case(
            "unwritable base path",
            &dir,
            &["--base-path", &in_locked, "create", "1"],
            69,
        ));
        cases.push(case(
            "unwritable state dir",
            &dir,
            &["--state-dir", &in_locked, "list"],
            69,
        ));
        cases.push(case(
            "unwritable lock dir",
            &dir,
            &["--state-dir", &in_locked, "lock", "x", "--", "true"],
            69,
        ));
    } else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "unwritable base path and state dir (chattr +i needs root here)",
        );
    }
    #[cfg(unix)]
    cases.push(case(
        "base path is a symlink",
        &dir,
        &["--base-path", &linked, "create", "1"],
        65,
    ));

    let before = Snapshot::of(&root);
    for c in &cases {
        let config = dir.join("ff.toml");
        if let Some(text) = &c.config {
            std::fs::write(&config, text).expect("ff.toml");
        }
        for json in [false, true] {
            let o = run(c, json);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(c.code),
                "{} (json: {json}): {stderr}",
                c.what
            );
            assert!(!stderr.contains("panicked"), "{}: {stderr}", c.what);
            assert!(!stderr.trim().is_empty(), "{}: nothing on stderr", c.what);
            assert!(o.stdout.is_empty(), "{}: wrote to stdout", c.what);
            if json && c.code != 2 {
                let _ = error_kind(&o);
            }
        }
        if c.config.is_some() {
            std::fs::remove_file(&config).expect("rm ff.toml");
        }
    }
    drop(immutable);
    let changed = Snapshot::of(&root).changed_since(&before);
    assert!(changed.is_empty(), "hostile input changed {changed:?}");
    assert!(!pwned.exists());
    assert!(repo.ff_branches().is_empty());
    assert_eq!(
        stdout_json(&ff(&dir, &["list", "--json"])),
        Value::Array(vec![])
    );
    println!(
        "hostile CLI inputs: {} cases, all refused cleanly",
        cases.len()
    );
}

#[test]
fn corrupt_state_through_the_binary() {
    let repo = TestRepo::new();
    let dir = repo.path().to_path_buf();
    let state = dir.join(".git/ff");
    // JSON store: one damaged record among good ones.
    for issue in ["1", "2", "3"] {
        stdout_json(&ff(&dir, &["--store", "json", "create", issue, "--json"]));
    }
    let records = state.join("records");
    let victim = std::fs::read_dir(&records)
        .expect("records")
        .flatten()
        .map(|e| e.path())
        // The create record of issue 2 (its slot's record names the issue
        // too).
        .find(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| {
                t.contains("\"operation\": \"createWorktree\"") && t.contains("\"issue\": \"2\"")
            })
        })
        .expect("record of issue 2");
    std::fs::write(&victim, "{\"key\": \"trunc").expect("damage");
    let listed = stdout_json(&ff(&dir, &["--store", "json", "list", "--json"]));
    let issues: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|w| w["issue"].as_str())
        .collect();
    assert_eq!(issues, ["1", "3"], "the intact records must still list");
    let again = ff(&dir, &["--store", "json", "--json", "create", "2"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(error_kind(&again), "corrupt");
    let report = stdout_json(&ff(&dir, &["--store", "json", "recover", "--json"]));
    let kinds: Vec<&str> = report["repairs"]
        .as_array()
        .expect("repairs")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"corrupt_record"), "{report}");
    assert!(kinds.contains(&"left_alone"), "{report}");
    assert_eq!(repo.ff_branches().len(), 3, "recover removed a branch");

    // SQLite with a damaged header: corrupt state (1), said clearly.
    stdout_json(&ff(&dir, &["list", "--json"]));
    let db = state.join("records.sqlite3");
    let mut bytes = std::fs::read(&db).expect("db");
    bytes[..16].copy_from_slice(b"garbage-header!!");
    std::fs::write(&db, bytes).expect("damage");
    for args in [
        &["--json", "list"][..],
        &["--json", "recover"],
        &["--json", "create", "9"],
    ] {
        let o = ff(&dir, args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(error_kind(&o), "corrupt", "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("records.sqlite3"));
    }
}

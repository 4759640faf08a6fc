//! A cloned repository is untrusted input, through the real binary: each
//! attack a repository (or a record, or a lock holder) could mount, on a
//! fresh clone of a repository crafted for it.

#![cfg(unix)] // symlinks, FIFOs, modes and umasks are Unix ones

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{code, command_in as command, error_json, ff_in, stdout_json};
use ff_testkit::git::{TestRepo, git_in};
use serde_json::Value;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Commits everything in `dir`, ignored files included (an attacker ships
/// what they like).
fn commit_all(dir: &Path, message: &str) {
    let _ = git_in(dir, &["add", "-f", "-A"]);
    let _ = git_in(dir, &["commit", "-q", "-m", message]);
}

/// A fresh clone of `from` at `to`, as an agent makes one.
fn clone(from: &Path, to: &Path) -> PathBuf {
    let _ = git_in(
        to.parent().expect("parent"),
        &[
            "clone",
            "-q",
            &from.display().to_string(),
            &to.display().to_string(),
        ],
    );
    for (k, v) in [("user.name", "Agent"), ("user.email", "agent@example.com")] {
        let _ = git_in(to, &["config", k, v]);
    }
    to.to_path_buf()
}

/// A new repository at `dir` with one commit, and an identity of its own
/// (tests run as on a machine with none).
fn init_repository(dir: &Path) {
    let _ = git_in(dir, &["init", "-q", "-b", "main"]);
    for (k, v) in [("user.name", "Test"), ("user.email", "test@example.com")] {
        let _ = git_in(dir, &["config", k, v]);
    }
    ff_testkit::git::commit_file(dir, "README", "r\n", "first");
}

/// Runs `c` to its end, or kills it after `secs` seconds and fails: a test
/// that can hang must not.
fn within(mut c: Command, secs: u64) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {secs} s: {c:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The record files of the JSON store in `records`, with their JSON.
fn json_records(records: &Path) -> Vec<(PathBuf, Value)> {
    std::fs::read_dir(records)
        .expect("records")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            (p, v)
        })
        .collect()
}

/// The first record of `operation` in `records`, changed by `edit`.
fn forge(records: &Path, operation: &str, edit: impl FnOnce(&mut Value)) {
    let (path, mut record) = json_records(records)
        .into_iter()
        .find(|(_, v)| v["operation"] == operation)
        .unwrap_or_else(|| panic!("no {operation} record"));
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec_pretty(&record).expect("json")).expect("write");
}

/// `ff ARGS` as the attacker runs it while crafting a repository: its
/// records go to `.ffstate` (JSON), a directory it will ship.
fn ff_shipping_state(dir: &Path, config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--state-dir", ".ffstate", "--store", "json"];
    all.extend_from_slice(args);
    ff_in(dir, config, &[], &all)
}

/// A repository whose ff.toml keeps its records in a directory it ships,
/// holding a create record for issue 1 that names `target` as the
/// worktree's path and `main` as its branch.
fn repository_with_forged_create(attacker: &TestRepo, target: &Path) {
    let dir = attacker.path();
    let config = attacker.scratch("attacker-config");
    // ff itself makes a record of the right key (the repository's root
    // commit and the issue), then the attacker rewrites what it names.
    let made = ff_shipping_state(dir, &config, &["create", "1", "--json"]);
    let made = stdout_json(&made);
    let _ = git_in(
        dir,
        &[
            "worktree",
            "remove",
            "--force",
            made["path"].as_str().expect("path"),
        ],
    );
    let _ = git_in(
        dir,
        &["branch", "-D", made["branch"].as_str().expect("branch")],
    );
    forge(&dir.join(".ffstate/records"), "createWorktree", |r| {
        r["result"]["path"] = Value::String(target.display().to_string());
        r["result"]["branch"] = "main".into();
        r["result"]["location"] = "".into();
    });
    std::fs::remove_dir_all(dir.join(".ffstate/locks")).expect("rm locks");
    std::fs::write(
        dir.join("ff.toml"),
        "state_dir = \".ffstate\"\nstore = \"json\"\n",
    )
    .expect("ff.toml");
    commit_all(dir, "records");
}

#[test]
fn a_shipped_state_dir_with_a_forged_record_checks_out_nothing_outside() {
    let attacker = TestRepo::new();
    let target = attacker.scratch("victim-home").join("bin");
    repository_with_forged_create(&attacker, &target);
    let clone = clone(attacker.path(), &attacker.scratch("agent").join("repo"));
    let config = attacker.scratch("user-config");

    // Unapproved: refused, listing the settings, nothing made anywhere.
    let out = ff_in(&clone, &config, &[], &["create", "1", "--json"]);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    let e = error_json(&out);
    assert_eq!(e["kind"], "not_approved");
    let message = e["message"].as_str().expect("message");
    assert!(
        message.contains("state_dir")
            && message.contains("store")
            && message.contains("ff trust allow"),
        "{message}"
    );
    assert!(!target.exists(), "checked out at the forged path");
    assert!(!clone.join(".ff-worktrees").exists());

    // Approved (the user accepts the state directory): the forged record is
    // still never acted on. A new worktree is made where ff makes them.
    let allowed = ff_in(&clone, &config, &[], &["trust", "allow", "--json"]);
    let allowed = stdout_json(&allowed);
    crate::common::assert_valid("trust", &allowed);
    assert_eq!(allowed["approved"], true);
    let out = ff_in(&clone, &config, &[], &["create", "1", "--json"]);
    let created = stdout_json(&out);
    assert_eq!(
        created["reused"], false,
        "the forged record was taken as ours"
    );
    let path = PathBuf::from(created["path"].as_str().expect("path"));
    assert!(path.starts_with(clone.join(".ff-worktrees")), "{path:?}");
    assert!(created["branch"].as_str().is_some_and(|b| b == "ff/1"));
    assert!(!target.exists(), "checked out at the forged path");
    // main is not checked out anywhere but the main working tree.
    let listed = git_in(&clone, &["worktree", "list", "--porcelain"]);
    assert_eq!(
        listed.matches("branch refs/heads/main").count(),
        1,
        "{listed}"
    );
    // The next ordinary commands see one worktree, and clean it up.
    let list = stdout_json(&ff_in(&clone, &config, &[], &["list", "--json"]));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let out = ff_in(&clone, &config, &[], &["cleanup", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_shipped_once_record_without_a_fingerprint_replays_nothing() {
    let attacker = TestRepo::new();
    let dir = attacker.path();
    let config = attacker.scratch("attacker-config");
    let ran = ff_shipping_state(dir, &config, &["once", "--key", "migrate-42", "--", "true"]);
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    forge(&dir.join(".ffstate/records"), "once", |r| {
        let result = r["result"].as_object_mut().expect("result");
        result.remove("command");
        result.remove("cwd");
        result.insert(
            "stdout".into(),
            "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2Kmigrated\n".into(),
        );
    });
    std::fs::remove_dir_all(dir.join(".ffstate/locks")).ok();
    std::fs::write(
        dir.join("ff.toml"),
        "state_dir = \".ffstate\"\nstore = \"json\"\n",
    )
    .expect("ff.toml");
    commit_all(dir, "records");
    let clone = clone(dir, &attacker.scratch("agent").join("repo"));
    let user = attacker.scratch("user-config");
    let marker = attacker.scratch("marker").join("ran");
    let migrate = format!("echo ran > '{}'", marker.display());
    let once = ["once", "--key", "migrate-42", "--", "sh", "-c", &migrate];

    let out = ff_in(&clone, &user, &[], &once);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let out = ff_in(&clone, &user, &[("FF_TRUST", "allow")], &once);
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "replayed: {:?}", out.stdout);
    assert!(
        stderr(&out).contains("does not say which command ran"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists());
}

#[test]
fn a_hook_command_hiding_from_its_approver_is_shown_escaped() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    // Displays as `post_create: npm ci` on a terminal: the carriage return
    // and ESC[2K erase what came before.
    std::fs::write(
        dir.join("ff.toml"),
        "[hooks]\npost_create = [\"touch pwned #\\r\\u001b[2Knpm ci\", \"echo a\\nb\\u202e\"]\n",
    )
    .expect("ff.toml");
    let raw = |bytes: &[u8]| {
        bytes.iter().any(|&b| b == b'\r' || b == 0x1b)
            || String::from_utf8_lossy(bytes).contains('\u{202e}')
    };

    let shown = ff_in(dir, &config, &[], &["hooks"]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    assert!(
        !raw(&shown.stdout),
        "{:?}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("touch pwned #\\r\\e[2Knpm ci"), "{text}");
    assert!(text.contains("echo a\\nb\\u{202e}"), "{text}");

    for args in [&["create", "1"][..], &["trust"]] {
        let out = ff_in(dir, &config, &[], args);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(!raw(&all), "{args:?}: {:?}", String::from_utf8_lossy(&all));
        assert!(
            String::from_utf8_lossy(&all).contains("touch pwned #\\r\\e[2Knpm ci"),
            "{args:?}: {}",
            String::from_utf8_lossy(&all)
        );
    }
    assert!(!dir.join("pwned").exists());
}

#[test]
fn no_repository_path_forges_an_approval_line() {
    let root = TestRepo::new();
    let config = root.scratch("user-config");
    // The victim: hooks its user never approved.
    let victim = root.scratch("victim");
    init_repository(&victim);
    std::fs::write(
        victim.join("ff.toml"),
        "[hooks]\npost_create = [\"touch pwned\"]\n",
    )
    .expect("ff.toml");
    let shown = stdout_json(&ff_in(&victim, &config, &[], &["hooks", "--json"]));
    let digest = shown["digest"].as_str().expect("digest").to_owned();
    let victim_common = victim.join(".git");
    // The attacker: a repository whose path carries, after a newline, an
    // approval line for the victim, in the earlier form and in this one,
    // and a tab.
    let evil = root.scratch("x").join(format!(
        "a\n{digest} {}\ntrust-v1 hooks {digest} {}\tb",
        victim.display(),
        victim_common.display()
    ));
    std::fs::create_dir_all(&evil).expect("evil dir");
    init_repository(&evil);
    std::fs::write(evil.join("ff.toml"), "[hooks]\npost_create = [\"true\"]\n").expect("ff.toml");
    let out = ff_in(&evil, &config, &[], &["hooks", "allow"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let approvals = std::fs::read_to_string(config.join("approved-hooks")).expect("approvals");
    assert_eq!(approvals.lines().count(), 1, "{approvals:?}");
    // The attacker's repository is approved; the victim's is not.
    let out = ff_in(&evil, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ff_in(&victim, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(!victim.join(".ff-worktrees").exists());
}

#[test]
fn an_approved_hook_never_runs_a_branchs_changed_script() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    let log = repo.scratch("log").join("ran");
    std::fs::write(
        dir.join("setup.sh"),
        format!("echo main >> '{}'\n", log.display()),
    )
    .expect("setup.sh");
    std::fs::write(
        dir.join("ff.toml"),
        "[hooks]\npost_create = [\"sh setup.sh\"]\n",
    )
    .expect("ff.toml");
    commit_all(dir, "setup");
    // A pull request's branch changes what setup.sh does.
    let _ = git_in(dir, &["checkout", "-q", "-b", "pr"]);
    std::fs::write(
        dir.join("setup.sh"),
        format!("echo pr >> '{}'\n", log.display()),
    )
    .expect("setup.sh");
    commit_all(dir, "pr");
    let _ = git_in(dir, &["checkout", "-q", "main"]);

    let allowed = stdout_json(&ff_in(dir, &config, &[], &["hooks", "allow", "--json"]));
    assert_eq!(allowed["approved"], true);
    let out = ff_in(dir, &config, &[], &["create", "4"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), "main\n");

    let out = ff_in(
        dir,
        &config,
        &[],
        &["create", "5", "--base", "pr", "--json"],
    );
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    let e = error_json(&out);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("setup.sh")),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default(),
        "main\n",
        "the branch's script ran"
    );
    // --no-hooks still makes it, running nothing.
    let out = ff_in(
        dir,
        &config,
        &[],
        &["create", "5", "--base", "pr", "--no-hooks"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), "main\n");
}

#[test]
fn look_alike_lock_names_and_issue_ids_are_refused() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    for name in [
        "ｄｅｐｌｏｙ",
        "de\u{200b}ploy",
        "\u{202e}yolped",
        "deploy\u{2066}",
        "ﬁx",
    ] {
        let out = ff_in(dir, &config, &[], &["lock", name, "--json", "--", "true"]);
        assert_eq!(code(&out), 65, "{name:?}: {}", stderr(&out));
        assert_eq!(error_json(&out)["kind"], "invalid_input", "{name:?}");
    }
    for issue in ["1\u{200b}", "\u{202e}1", "１"] {
        let out = ff_in(dir, &config, &[], &["create", issue]);
        assert_eq!(code(&out), 65, "{issue:?}: {}", stderr(&out));
    }
    // What is refused never reached a terminal raw in the error either.
    let out = ff_in(dir, &config, &[], &["lock", "\u{202e}yolped", "--", "true"]);
    assert!(!stderr(&out).contains('\u{202e}'), "{}", stderr(&out));
    let out = ff_in(
        dir,
        &config,
        &[],
        &["lock", "café/déploiement", "--", "true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn ff_locks_shows_a_holders_escape_sequences_escaped() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    let mut holder = command(
        dir,
        &config,
        &[],
        &[
            "lock",
            "deploy",
            "--",
            "sh",
            "-c",
            "echo taken; sleep 30",
            "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2K\rinnocent",
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "taken");
    let out = ff_in(dir, &config, &[], &["locks"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deploy"), "{text}");
    assert!(
        !out.stdout
            .iter()
            .any(|&b| b == 0x1b || b == 0x07 || b == b'\r'),
        "{text:?}"
    );
}

/// `ff ARGS` under `umask`.
fn ff_umask(umask: &str, dir: &Path, config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut all = vec!["-c", "umask \"$0\"; shift; exec \"$@\"", umask, "umask"];
    let bin = env!("CARGO_BIN_EXE_ff");
    all.push(bin);
    all.extend(args);
    let mut c = Command::new("sh");
    c.args(&all);
    crate::common::isolated(&mut c, dir, config, env)
        .output()
        .expect("run")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory under `root`.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() && !out[i].is_symlink() {
            let mut more: Vec<PathBuf> = std::fs::read_dir(&out[i])
                .expect("read_dir")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            out.append(&mut more);
        }
        i += 1;
    }
    out
}

#[test]
fn state_is_private_under_any_umask() {
    for umask in ["000", "022"] {
        let repo = TestRepo::new();
        let dir = repo.path();
        let config = repo.scratch("user-config");
        std::fs::write(
            dir.join("ff.toml"),
            "[hooks]\npost_create = [\"echo hooked\"]\n",
        )
        .expect("ff.toml");
        let secret = ["once", "--key", "k", "--", "echo", "s3cret"];
        let out = ff_umask(umask, dir, &config, &[], &secret);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = ff_umask(umask, dir, &config, &[], &["hooks", "allow"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = ff_umask(umask, dir, &config, &[], &["create", "1", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        // The JSON store too, in a directory of the user's choosing.
        let json_state = repo.scratch("json-state").join("state");
        let out = ff_umask(
            umask,
            dir,
            &config,
            &[],
            &[
                "--state-dir",
                &json_state.display().to_string(),
                "--store",
                "json",
                "once",
                "--key",
                "k",
                "--",
                "echo",
                "s3cret",
            ],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));

        let state = dir.join(".git/ff");
        assert!(state.join("records.sqlite3").is_file());
        assert!(state.join("hook-logs").is_dir(), "no hook log");
        let mut checked = 0;
        // The approvals ff writes into the user's directory (the test made
        // that directory).
        let approvals = config.join("approved-hooks");
        assert_eq!(mode(&approvals), 0o600, "umask {umask}: approvals");
        for root in [state, json_state] {
            for p in walk(&root) {
                let m = mode(&p);
                let want = if p.is_dir() { 0o700 } else { 0o600 };
                // Directories must admit no one else; files no reader.
                let leaks = if p.is_dir() { m & 0o077 } else { m & 0o066 };
                assert_eq!(
                    leaks,
                    0,
                    "umask {umask}: {} is {m:o}, want {want:o}",
                    p.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 8, "{checked}");
    }
}

#[test]
fn a_symlink_where_state_lives_is_refused_never_followed() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    let precious = repo.scratch("home").join(".bashrc");
    std::fs::write(&precious, "export PATH=/usr/bin\n").expect("write");
    let state = dir.join(".git/ff");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::os::unix::fs::symlink(&precious, state.join("records.sqlite3")).expect("symlink");
    let out = ff_in(
        dir,
        &config,
        &[],
        &["once", "--key", "k", "--json", "--", "true"],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&precious).expect("read"),
        "export PATH=/usr/bin\n"
    );
    std::fs::remove_file(state.join("records.sqlite3")).expect("rm");

    // The hook-log directory, and the state directory itself.
    let elsewhere = repo.scratch("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, state.join("hook-logs")).expect("symlink");
    std::fs::write(
        dir.join("ff.toml"),
        "[hooks]\npost_create = [\"echo hi\"]\n",
    )
    .expect("ff.toml");
    let out = ff_in(
        dir,
        &config,
        &[("FF_HOOKS", "allow")],
        &["create", "1", "--json"],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);
    std::fs::remove_file(state.join("hook-logs")).expect("rm");
    let linked_state = repo.scratch("linked-state");
    let link = repo.scratch("links").join("state");
    std::os::unix::fs::symlink(&linked_state, &link).expect("symlink");
    let out = ff_in(
        dir,
        &config,
        &[],
        &["--state-dir", &link.display().to_string(), "list"],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&linked_state).expect("dir").count(), 0);
}

#[test]
fn an_unapproved_webhook_holds_back_only_ff_serve_and_the_users_config_is_trusted() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let config = repo.scratch("user-config");
    std::fs::write(
        dir.join("ff.toml"),
        "[alerts]\nwebhook = \"http://127.0.0.1:9/steal\"\nlock_held_longer_than = \"1m\"\n",
    )
    .expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["lock", "x", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A server that starts would serve until stopped: bounded.
    let out = within(
        command(
            dir,
            &config,
            &[],
            &["serve", "--listen", "127.0.0.1:0", "--json"],
        ),
        30,
    );
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert_eq!(error_json(&out)["kind"], "not_approved");

    // The same keys in the user's own config.toml need no approval.
    let state = repo.scratch("my-state");
    std::fs::write(
        config.join("config.toml"),
        format!("state_dir = \"{}\"\nstore = \"json\"\n", state.display()),
    )
    .expect("config.toml");
    std::fs::remove_file(dir.join("ff.toml")).expect("rm");
    let out = ff_in(dir, &config, &[], &["once", "--key", "k", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        state.join("records").is_dir(),
        "the user's state_dir was not used"
    );
    // A repository's value for the same key waits for approval, and then
    // wins over the user's.
    std::fs::write(dir.join("ff.toml"), "state_dir = \".ffstate\"\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["list"]);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    let out = ff_in(dir, &config, &[], &["trust", "allow"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ff_in(dir, &config, &[], &["once", "--key", "k2", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(dir.join(".ffstate/records").is_dir());
    // Changing the value needs approval again.
    std::fs::write(dir.join("ff.toml"), "state_dir = \".other\"\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["list"]);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
}

/// A repository whose `.worktreeinclude` names `*.env`, with an ignored
/// `app.env` in its main working tree.
fn repository_including_env() -> (TestRepo, PathBuf) {
    let repo = TestRepo::new();
    let dir = repo.path();
    std::fs::write(dir.join(".gitignore"), "*.env\n").expect("gitignore");
    std::fs::write(dir.join(".worktreeinclude"), "*.env\nconfig/*.local\n").expect("include");
    commit_all(dir, "include");
    std::fs::write(dir.join("app.env"), "TOKEN=public\n").expect("env");
    let config = repo.scratch("user-config");
    (repo, config)
}

/// Every file under `dir` whose content holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.is_file() && !p.is_symlink())
        .filter(|p| std::fs::read(p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)))
        .collect()
}

#[test]
fn a_file_swapped_for_a_link_between_scan_and_copy_is_not_copied() {
    let (repo, config) = repository_including_env();
    let dir = repo.path();
    let key = repo.scratch("home").join("id_ed25519");
    std::fs::write(&key, "PRIVATE KEY\n").expect("key");
    // git runs post-checkout between ff's scan and its copy: the swap
    // lands exactly in the window, every time.
    repo.install_hook(
        "post-checkout",
        &format!(
            "rm -f '{app}'\nln -s '{key}' '{app}'\n",
            app = dir.join("app.env").display(),
            key = key.display()
        ),
    );
    let out = ff_in(dir, &config, &[], &["create", "1", "--json"]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("app.env"), "{}", stderr(&out));
    assert!(
        files_holding(&dir.join(".ff-worktrees"), "PRIVATE KEY").is_empty(),
        "the key was copied"
    );
    // Never stuck: with the link in place the next create refuses it at
    // the scan (it points outside), and once it is gone, creates.
    repo.remove_hook("post-checkout");
    let out = ff_in(dir, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    std::fs::remove_file(dir.join("app.env")).expect("rm");
    let out = ff_in(dir, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_directory_the_branch_tracks_as_a_link_is_never_written_through() {
    let (repo, config) = repository_including_env();
    let dir = repo.path();
    std::fs::create_dir_all(dir.join("config")).expect("mkdir");
    std::fs::write(dir.join("config/db.local"), "password=hunter2\n").expect("secret");
    std::fs::write(dir.join(".gitignore"), "*.env\n*.local\n").expect("gitignore");
    let _ = git_in(dir, &["add", ".gitignore"]);
    let _ = git_in(dir, &["commit", "-q", "-m", "ignore local config"]);
    // The pull request's branch tracks `config` as a link out of the tree.
    let outside = repo.scratch("outside");
    let _ = git_in(dir, &["checkout", "-q", "-b", "pr"]);
    std::fs::rename(dir.join("config"), repo.scratch("moved").join("config")).expect("mv");
    std::os::unix::fs::symlink(&outside, dir.join("config")).expect("symlink");
    commit_all(dir, "config is a link");
    std::fs::remove_file(dir.join("config")).expect("rm link");
    let _ = git_in(dir, &["checkout", "-q", "main"]);
    std::fs::rename(repo.scratch("moved").join("config"), dir.join("config")).expect("mv back");
    assert!(dir.join("config/db.local").is_file());

    let out = ff_in(
        dir,
        &config,
        &[],
        &["create", "2", "--base", "pr", "--json"],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "written outside the worktree"
    );
    // Nothing is left half made: the next ordinary create of main works.
    let out = ff_in(dir, &config, &[], &["create", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_fifo_is_never_read_and_never_hangs_a_create() {
    let (repo, config) = repository_including_env();
    let dir = repo.path();
    let made = Command::new("mkfifo")
        .arg(dir.join("pipe.env"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // And one swapped in for a file between scan and copy.
    repo.install_hook(
        "post-checkout",
        &format!(
            "rm -f '{app}'\nmkfifo '{app}'\n",
            app = dir.join("app.env").display()
        ),
    );
    let run = |issue: &str| {
        within(command(dir, &config, &[], &["create", issue]), 60)
            .status
            .code()
    };
    assert_ne!(
        run("3"),
        Some(0),
        "the swapped-in FIFO was taken as the file"
    );
    repo.remove_hook("post-checkout");
    std::fs::remove_file(dir.join("app.env")).expect("rm");
    assert_eq!(run("3"), Some(0));
    let path = stdout_json(&ff_in(dir, &config, &[], &["path", "3", "--json"]));
    let wt = PathBuf::from(path["path"].as_str().expect("path"));
    assert!(!wt.join("pipe.env").exists(), "a FIFO was copied");
    // The issue lock is free: another create of the issue answers at once.
    assert_eq!(run("3"), Some(0));
}

#[test]
fn a_byte_cap_refuses_a_huge_include_before_anything_is_made() {
    let (repo, config) = repository_including_env();
    let dir = repo.path();
    // 4 GiB, sparse: nothing on disk, everything to copy.
    let big = std::fs::File::create(dir.join("disk.env")).expect("create");
    big.set_len(4 << 30).expect("set_len");
    drop(big);
    let out = ff_in(dir, &config, &[], &["create", "4", "--json"]);
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("include_max_bytes"),
        "{}",
        stderr(&out)
    );
    // Nothing made: at most the base path and its guard (`.git`).
    let base = dir.join(".ff-worktrees");
    assert!(
        !base.exists()
            || walk(&base)
                .iter()
                .all(|p| *p == base || *p == base.join(".git"))
    );
    // The cap is the repository's to set (it only bounds copying inside it).
    std::fs::remove_file(dir.join("disk.env")).expect("rm");
    std::fs::write(dir.join("ff.toml"), "include_max_bytes = 4\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["create", "4"]);
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    std::fs::write(dir.join("ff.toml"), "include_max_bytes = 1000\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["create", "4"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// What the release before the trust model made keeps working: its hook
/// approval, its worktree records, its `ff once` records; its state
/// directory is made private on first use. From a fixture that release's
/// binary made (`tests/fixtures/README.md`).
#[test]
fn what_the_previous_release_made_keeps_working() {
    let root = Path::new("/tmp/ff-fixture-release-0.1");
    let _ = std::fs::remove_dir_all(root);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1.tar.gz");
    let unpacked = Command::new("tar")
        .args(["xzf", &fixture.display().to_string(), "-C", "/tmp"])
        .status()
        .expect("tar");
    assert!(unpacked.success());
    let repo = root.join("repo");
    let config = root.join("config");

    // The approval recorded in the old form still approves the hooks.
    let hooks = stdout_json(&ff_in(&repo, &config, &[], &["hooks", "--json"]));
    assert_eq!(hooks["approved"], true, "{hooks}");
    // Its worktree is ours, reused as it was.
    let got = stdout_json(&ff_in(&repo, &config, &[], &["create", "1", "--json"]));
    assert_eq!(got["reused"], true, "{got}");
    assert_eq!(got["status"], "active");
    // Its once record replays.
    let out = ff_in(
        &repo,
        &config,
        &[],
        &["once", "--key", "k", "--", "echo", "replayed-output"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "replayed-output\n");
    // Its state directory and database are private now.
    assert_eq!(mode(&repo.join(".git/ff")), 0o700);
    assert_eq!(mode(&repo.join(".git/ff/records.sqlite3")), 0o600);
    // New work runs the approved hook, and the old worktree cleans up.
    let out = ff_in(&repo, &config, &[], &["create", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = std::fs::read_to_string(repo.join(".ff-worktrees/created.log")).expect("hook log");
    assert_eq!(log, "created\ncreated\n");
    let out = ff_in(&repo, &config, &[], &["cleanup", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A new approval is written in the new form, beside the old line.
    let out = ff_in(&repo, &config, &[], &["trust", "allow"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let approvals = std::fs::read_to_string(config.join("approved-hooks")).expect("approvals");
    assert!(
        approvals.lines().any(|l| l.starts_with("trust-v1 hooks ")),
        "{approvals}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// A state directory outside `.git` that ff did not make on this machine
/// is refused, however it was named (here by a flag, which is trusted):
/// a clone can ship one, with an `ff once` record whose fingerprint (the
/// command and the clone's path, both guessable in CI) matches.
#[test]
fn a_store_ff_did_not_make_here_is_refused_until_adopted() {
    let attacker = TestRepo::new();
    let dir = attacker.path();
    let agent_dir = attacker.scratch("agent").join("repo");
    let marker = attacker.scratch("marker").join("migrated");
    let migrate = format!("echo migrating > '{}'", marker.display());
    // The attacker runs the very command the agent will run, from the
    // path the agent's clone will have, then forges the output.
    std::fs::create_dir_all(&agent_dir).expect("mkdir");
    let attacker_config = attacker.scratch("attacker-config");
    let _ = git_in(
        dir,
        &["worktree", "add", "-q", &agent_dir.display().to_string()],
    );
    let made = ff_in(
        &agent_dir,
        &attacker_config,
        &[],
        &[
            "--state-dir",
            ".ffstate",
            "--store",
            "json",
            "once",
            "--key",
            "migrate",
            "--",
            "sh",
            "-c",
            &migrate,
        ],
    );
    assert_eq!(code(&made), 0, "{}", stderr(&made));
    std::fs::remove_file(&marker).expect("rm marker");
    forge(&agent_dir.join(".ffstate/records"), "once", |r| {
        r["result"]["stdout"] = "all migrations applied\n".into();
    });
    let shipped = attacker.scratch("shipped");
    std::fs::rename(agent_dir.join(".ffstate"), shipped.join(".ffstate")).expect("mv");
    let _ = git_in(
        dir,
        &[
            "worktree",
            "remove",
            "--force",
            &agent_dir.display().to_string(),
        ],
    );
    std::fs::rename(shipped.join(".ffstate"), dir.join(".ffstate")).expect("mv");
    commit_all(dir, "records");
    let clone = clone(dir, &agent_dir);

    let user = attacker.scratch("user-config");
    let once = [
        "--state-dir",
        ".ffstate",
        "--store",
        "json",
        "once",
        "--key",
        "migrate",
        "--",
        "sh",
        "-c",
        &migrate,
    ];
    let out = ff_in(&clone, &user, &[], &once);
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not make on this machine"),
        "{}",
        stderr(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "replayed: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!marker.exists());

    // A store ff makes is its own from then on, for every process at once
    // (eight racing to make it, four times over).
    for round in 0..4 {
        let fresh = attacker.scratch(&format!("fresh-state-{round}"));
        let fresh_arg = fresh.display().to_string();
        let children: Vec<_> = (0..8)
            .map(|i| {
                let key = format!("k{i}");
                command(
                    &clone,
                    &user,
                    &[],
                    &[
                        "--state-dir",
                        &fresh_arg,
                        "once",
                        "--key",
                        &key,
                        "--",
                        "true",
                    ],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        }
        let again = ff_in(&clone, &user, &[], &["--state-dir", &fresh_arg, "list"]);
        assert_eq!(code(&again), 0, "{}", stderr(&again));
    }

    // Adopted after review, the shipped store is the user's.
    let out = ff_in(
        &clone,
        &user,
        &[],
        &["--state-dir", ".ffstate", "trust", "allow"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ff_in(
        &clone,
        &user,
        &[],
        &["--state-dir", ".ffstate", "--store", "json", "list"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

//! Hooks through the real binary: approval before any repository hook
//! runs, `post_create` exactly once under concurrency and across a
//! SIGKILL, failure policies, `--no-hooks`.

#![cfg(unix)] // hooks run with sh; symlinks and modes are Unix ones

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{assert_valid, code, command_in as command, error_json, ff_in, stdout_json};
use ff_testkit::git::TestRepo;

fn setup(hooks: &str) -> (TestRepo, PathBuf, PathBuf) {
    let repo = TestRepo::new();
    let log = repo.scratch("hooklog").join("log");
    let config = repo.scratch("userconfig");
    std::fs::write(
        repo.path().join("ff.toml"),
        hooks.replace("LOG", &log.display().to_string()),
    )
    .expect("ff.toml");
    (repo, log, config)
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn unapproved_hooks_never_run_until_allowed_and_again_after_a_change() {
    let (repo, log, config) = setup("[hooks]\npost_create = [\"echo ran >> 'LOG'\"]\n");
    let dir = repo.path();
    let out = ff_in(dir, &config, &[], &["create", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 77, "{stderr}");
    assert!(
        stderr.contains("echo ran") && stderr.contains("ff hooks allow"),
        "{stderr}"
    );
    assert_eq!(read(&log), "", "an unapproved hook ran");
    assert_eq!(
        code(&ff_in(dir, &config, &[], &["path", "1"])),
        65,
        "nothing created"
    );
    let json = ff_in(dir, &config, &[], &["create", "1", "--json"]);
    assert_eq!(error_json(&json)["kind"], "hooks_not_approved");

    // --no-hooks goes on without them.
    assert_eq!(
        code(&ff_in(dir, &config, &[], &["create", "0", "--no-hooks"])),
        0
    );
    assert_eq!(read(&log), "");

    let shown = stdout_json(&ff_in(dir, &config, &[], &["hooks", "--json"]));
    assert_valid("hooks", &shown);
    assert_eq!(shown["approved"], false);
    let allowed = stdout_json(&ff_in(dir, &config, &[], &["hooks", "allow", "--json"]));
    assert_valid("hooks", &allowed);
    assert_eq!(allowed["approved"], true);
    assert!(
        config.join("approved-hooks").exists(),
        "recorded in the user's directory"
    );
    let out = ff_in(dir, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&log), "ran\n");

    // The hook text changes: not approved any more.
    std::fs::write(
        dir.join("ff.toml"),
        format!(
            "[hooks]\npost_create = [\"echo changed >> '{}'\"]\n",
            log.display()
        ),
    )
    .expect("ff.toml");
    assert_eq!(code(&ff_in(dir, &config, &[], &["create", "2"])), 77);
    assert_eq!(read(&log), "ran\n");
    // FF_HOOKS=allow approves one run, explicitly.
    let out = ff_in(dir, &config, &[("FF_HOOKS", "allow")], &["create", "2"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&log), "ran\nchanged\n");
    assert_eq!(
        code(&ff_in(
            dir,
            &config,
            &[("FF_HOOKS", "yes")],
            &["create", "3"]
        )),
        65
    );
}

#[test]
fn eight_concurrent_creates_run_post_create_once() {
    let (repo, log, config) = setup(
        "[hooks]\npost_create = [\"echo \\\"$FF_WORKTREE_ID $FF_HOOK_ATTEMPT\\\" >> 'LOG'\"]\n",
    );
    let dir = repo.path().to_path_buf();
    let children: Vec<_> = (0..8)
        .map(|_| {
            command(
                &dir,
                &config,
                &[("FF_HOOKS", "allow")],
                &["create", "42", "--json"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        ids.push(stdout_json(&out)["id"].as_str().expect("id").to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one worktree: {ids:?}");
    assert_eq!(
        read(&log),
        format!("{} 1\n", ids[0]),
        "post_create ran once"
    );
}

#[test]
fn a_create_killed_mid_hook_is_finished_by_the_next_one() {
    let (repo, log, config) = setup(
        "[hooks]\npost_create = [\"echo \\\"$FF_HOOK_ATTEMPT\\\" >> 'LOG'; if [ \\\"$FF_HOOK_ATTEMPT\\\" = 1 ]; then sleep 5; fi\"]\n",
    );
    let dir = repo.path();
    let mut child = command(dir, &config, &[("FF_HOOKS", "allow")], &["create", "9"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(&log).is_empty() {
        assert!(Instant::now() < deadline, "the hook never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL ff");
    let _ = child.wait();
    let out = ff_in(
        dir,
        &config,
        &[("FF_HOOKS", "allow")],
        &["create", "9", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["reused"], true);
    assert_eq!(read(&log), "1\n2\n", "run again, as attempt 2");
    let out = ff_in(dir, &config, &[("FF_HOOKS", "allow")], &["create", "9"]);
    assert_eq!(code(&out), 0);
    assert_eq!(read(&log), "1\n2\n", "and never again");
}

#[test]
fn a_failing_post_create_rolls_back_or_keeps() {
    let (repo, _log, config) =
        setup("[hooks]\npost_create = [\"echo setting up; echo 'no such tool' >&2; exit 4\"]\n");
    let dir = repo.path();
    let allow = [("FF_HOOKS", "allow")];
    let out = ff_in(dir, &config, &allow, &["create", "5", "--json"]);
    assert_eq!(code(&out), 73);
    let e = error_json(&out);
    assert_eq!(e["kind"], "hook_failed");
    assert_eq!(e["hook"], "post_create");
    assert!(
        e["output"]
            .as_str()
            .is_some_and(|o| o.contains("no such tool")),
        "{e}"
    );
    assert_eq!(
        code(&ff_in(dir, &config, &allow, &["path", "5"])),
        65,
        "rolled back"
    );
    assert_eq!(repo.worktree_paths().len(), 1);
    assert!(repo.ff_branches().is_empty());

    std::fs::write(
        dir.join("ff.toml"),
        "[hooks]\npost_create = [\"exit 4\"]\non_failure = \"keep\"\n",
    )
    .expect("ff.toml");
    assert_eq!(code(&ff_in(dir, &config, &allow, &["create", "6"])), 73);
    let got = stdout_json(&ff_in(dir, &config, &allow, &["get", "6", "--json"]));
    assert_valid("get", &got);
    assert_eq!(got["hook_failed"], true);
    // People see it too, in get and list.
    for args in [&["get", "6"][..], &["list"]] {
        let shown = ff_in(dir, &config, &allow, args);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("hook_failed"), "{args:?}: {text}");
    }
    // Asked for again, it is no success (its setup never finished), and
    // the answer says how out: retry the hook, or clean up.
    let again = ff_in(dir, &config, &allow, &["create", "6", "--json"]);
    assert_eq!(
        code(&again),
        73,
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let e = error_json(&again);
    assert_eq!(e["kind"], "hook_failed");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("--retry-hooks")),
        "{e}"
    );
    assert_eq!(
        code(&ff_in(
            dir,
            &config,
            &allow,
            &["create", "6", "--retry-hooks"]
        )),
        73,
        "the hook fails again"
    );
    std::fs::write(
        dir.join("ff.toml"),
        "[hooks]\npost_create = [\"true\"]\non_failure = \"keep\"\n",
    )
    .expect("ff.toml");
    let retried = ff_in(
        dir,
        &config,
        &allow,
        &["create", "6", "--retry-hooks", "--json"],
    );
    assert_eq!(
        code(&retried),
        0,
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let retried = stdout_json(&retried);
    assert_eq!(retried["reused"], true);
    assert_eq!(retried.get("hook_failed"), None, "shown only when true");
    assert_eq!(retried["path"], got["path"], "the same worktree");
    let got = stdout_json(&ff_in(dir, &config, &allow, &["get", "6", "--json"]));
    assert_eq!(got.get("hook_failed"), None);
    assert_eq!(code(&ff_in(dir, &config, &allow, &["create", "6"])), 0);

    // Bad hook settings: exit 65, nothing created.
    for bad in [
        "[hooks]\npost_create = [3]\n",
        "[hooks]\npost_creat = [\"true\"]\n",
        "[hooks]\npost_create = [\"true\"]\ntimeout = \"soon\"\n",
        "[hooks]\npost_create = [\"true\"]\non_failure = \"ignore\"\n",
    ] {
        std::fs::write(dir.join("ff.toml"), bad).expect("ff.toml");
        let out = ff_in(dir, &config, &allow, &["create", "7"]);
        assert_eq!(
            code(&out),
            65,
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(dir.join("ff.toml")).expect("rm");
    assert_eq!(code(&ff_in(dir, &config, &allow, &["path", "7"])), 65);
}

/// ff's own files never make a worktree dirty: a `symlink` link (with the
/// usual `node_modules/` ignore, which a link does not match) and the
/// `.worktreeinclude` copies leave `git status` clean, so an untouched
/// worktree is cleaned up without force. And the lost-work check comes
/// before `pre_cleanup`: a refused cleanup runs no hook.
#[test]
fn ff_files_leave_a_worktree_clean_and_a_refusal_runs_no_hook() {
    let (repo, log, config) =
        setup("symlink = [\"node_modules\"]\n[hooks]\npre_cleanup = [\"echo pre >> 'LOG'\"]\n");
    let dir = repo.path();
    std::fs::write(dir.join(".gitignore"), "node_modules/\n.env\n").expect("gitignore");
    let _ = ff_testkit::git::git_in(dir, &["add", ".gitignore"]);
    let _ = ff_testkit::git::git_in(dir, &["commit", "-q", "-m", "ignore"]);
    std::fs::create_dir_all(dir.join("node_modules/pkg")).expect("node_modules");
    std::fs::write(dir.join("node_modules/pkg/index.js"), "x\n").expect("pkg");
    std::fs::write(dir.join(".env"), "SECRET=1\n").expect(".env");
    std::fs::create_dir_all(dir.join("config")).expect("config");
    std::fs::write(dir.join("config/local.toml"), "local = true\n").expect("local");
    std::fs::write(dir.join(".worktreeinclude"), ".env\nconfig/local.toml\n").expect("include");
    let allow = [("FF_HOOKS", "allow"), ("FF_TRUST", "allow")];
    let made = ff_in(dir, &config, &allow, &["create", "12", "--json"]);
    assert_eq!(code(&made), 0, "{}", String::from_utf8_lossy(&made.stderr));
    let path = PathBuf::from(stdout_json(&made)["path"].as_str().expect("path"));
    assert!(path.join("node_modules").is_symlink());
    assert!(path.join("config/local.toml").is_file());
    let status = ff_testkit::git::git_in(&path, &["status", "--porcelain"]);
    assert_eq!(status.trim(), "", "ff's own files show in git status");

    // Work the agent left: refused (77) before pre_cleanup runs.
    std::fs::write(path.join("notes.txt"), "mine\n").expect("notes");
    let refused = ff_in(dir, &config, &allow, &["cleanup", "12"]);
    assert_eq!(
        code(&refused),
        77,
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        read(&log),
        "",
        "pre_cleanup ran for a cleanup that was refused"
    );
    std::fs::remove_file(path.join("notes.txt")).expect("rm notes");
    let cleaned = ff_in(dir, &config, &allow, &["cleanup", "12"]);
    assert_eq!(
        code(&cleaned),
        0,
        "{}",
        String::from_utf8_lossy(&cleaned.stderr)
    );
    assert_eq!(read(&log), "pre\n");
    assert!(!path.exists());
    // The main tree's files are untouched.
    assert!(dir.join("node_modules/pkg/index.js").is_file());
    assert!(dir.join("config/local.toml").is_file());
}

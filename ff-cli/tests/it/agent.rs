//! `ff agent`: Claude Code's worktree hooks driven with the payloads Claude
//! Code sends (fixtures in tests/fixtures/claude), and `ff agent install
//! claude` on a settings file that has hooks of its own.

use std::path::{Path, PathBuf};
use std::process::Output;

use ff_testkit::git::TestRepo;
use serde_json::Value;

use crate::common::code;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/claude")
            .join(name),
    )
    .expect("fixture")
}

/// Runs `ff ARGS` in `dir` with `input` on stdin, as Claude Code runs a
/// hook (from the project directory).
fn hook(dir: &Path, config: &Path, args: &[&str], input: &str) -> Output {
    crate::common::ff_with_input(dir, config, &[], args, input)
}

struct Project {
    repo: TestRepo,
    config: PathBuf,
}

impl Project {
    fn new() -> Self {
        let repo = TestRepo::new();
        let config = repo.scratch("config");
        Self { repo, config }
    }

    fn payload(&self, name: &str, worktree: Option<&Path>) -> String {
        let head = self.repo.git(&["rev-parse", "HEAD"]);
        fixture(name)
            .replace("$CWD", &self.repo.path().display().to_string())
            .replace("$BASE_COMMIT", head.trim())
            .replace(
                "$WORKTREE_PATH",
                &worktree
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
    }

    /// The create hook from `fixture`, run from a subdirectory elsewhere
    /// (the payload's `cwd` names the project); its one stdout line.
    fn create(&self, fixture: &str) -> PathBuf {
        let elsewhere = self.repo.scratch("elsewhere");
        let out = hook(
            &elsewhere,
            &self.config,
            &["agent", "claude", "worktree-create"],
            &self.payload(fixture, None),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            code(&out),
            0,
            "{fixture}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{fixture}: stdout holds one line: {stdout:?}"
        );
        assert!(stdout.ends_with('\n'), "{stdout:?}");
        let path = PathBuf::from(lines[0]);
        assert!(path.is_absolute() && path.is_dir(), "{fixture}: {path:?}");
        path
    }

    fn remove(&self, path: &Path, args: &[&str]) -> Output {
        let mut all = vec!["agent", "claude", "worktree-remove"];
        all.extend_from_slice(args);
        hook(
            self.repo.path(),
            &self.config,
            &all,
            &self.payload("worktree-remove.json", Some(path)),
        )
    }
}

#[test]
fn every_payload_shape_gives_one_absolute_path_and_the_same_one_again() {
    let p = Project::new();
    for (fixture, issue) in [
        ("worktree-create.name.json", "auth-refactor"),
        (
            "worktree-create.worktree_name.base_commit.json",
            "agent-a1b2c3",
        ),
        ("worktree-create.base_ref.json", "feature-login-page"),
        ("worktree-create.extra-fields.json", "PROJ-42"),
    ] {
        let first = p.create(fixture);
        assert!(
            first
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == issue.replace('/', "+")),
            "{fixture}: {first:?} is not issue {issue}'s"
        );
        assert_eq!(p.create(fixture), first, "{fixture}: a second create moved");
    }
    assert_eq!(
        p.repo.worktree_paths().len(),
        5,
        "four worktrees and the main one"
    );
}

#[test]
fn a_payload_without_a_name_is_refused_on_stderr_with_nothing_on_stdout() {
    let p = Project::new();
    let out = hook(
        p.repo.path(),
        &p.config,
        &["agent", "claude", "worktree-create"],
        r#"{"hook_event_name":"WorktreeCreate"}"#,
    );
    assert_eq!(code(&out), 65);
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no name"));
    let out = hook(
        p.repo.path(),
        &p.config,
        &["agent", "claude", "worktree-create"],
        "not json",
    );
    assert_eq!(code(&out), 65);
    assert_eq!(p.repo.worktree_paths().len(), 1, "nothing was made");
}

#[test]
fn removal_refuses_unmerged_work_unless_forced_by_the_hooks_command() {
    let p = Project::new();
    let path = p.create("worktree-create.name.json");
    ff_testkit::git::commit_file(&path, "agent.txt", "the agent's work", "agent's commit");
    let out = p.remove(&path, &[]);
    assert_eq!(code(&out), 77, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not merged"), "{said}");
    assert!(path.join("agent.txt").is_file(), "the work was lost");

    let out = p.remove(&path, &["--force"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!path.exists());
    assert_eq!(
        p.repo.archives().len(),
        1,
        "the commit is kept under an archive ref"
    );

    // Clean, it goes; a path ff does not know is nothing to do.
    let clean = p.create("worktree-create.extra-fields.json");
    assert_eq!(code(&p.remove(&clean, &[])), 0);
    assert!(!clean.exists());
    assert_eq!(code(&p.remove(&clean, &[])), 0);
}

#[test]
fn install_keeps_other_settings_byte_for_byte_and_runs_twice_without_change() {
    let p = Project::new();
    let dir = p.repo.path().join(".claude");
    std::fs::create_dir_all(&dir).expect(".claude");
    let file = dir.join("settings.json");
    let before = fixture("settings.with-other-hooks.json");
    std::fs::write(&file, &before).expect("settings");

    let dry = crate::common::ff_in(
        p.repo.path(),
        &p.config,
        &[],
        &["agent", "install", "claude", "--dry-run"],
    );
    assert_eq!(code(&dry), 0, "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        before,
        "a dry run wrote"
    );

    let run = crate::common::ff_in(
        p.repo.path(),
        &p.config,
        &[],
        &["--json", "agent", "install", "claude"],
    );
    assert_eq!(code(&run), 0, "{}", String::from_utf8_lossy(&run.stderr));
    let view: Value = serde_json::from_slice(&run.stdout).expect("json");
    crate::common::assert_generated("agent_install", &view);
    assert_eq!(
        view["added"],
        serde_json::json!([
            "WorktreeCreate",
            "WorktreeRemove",
            "UserPromptSubmit",
            "Notification",
            "Stop"
        ])
    );
    // The status hooks name nothing: they act in the worktree the session
    // runs in, and do nothing elsewhere.
    let after = std::fs::read_to_string(&file).expect("read");
    for untouched in [
        r#"{"allow": ["Bash(cargo test:*)", "Bash(git status)"],   "deny": ["Read(./.env)"]}"#,
        r#"{"matcher": "Bash", "hooks": [{"type": "command", "command": "./scripts/check-command.sh"}]}"#,
        r#"{"hooks": [{"type": "command", "command": "./scripts/announce.sh"}]}"#,
        r#"{"RUST_LOG": "info"}"#,
    ] {
        assert!(after.contains(untouched), "{untouched} changed:\n{after}");
    }
    let settings: Value = serde_json::from_str(&after).expect("still JSON");
    assert_eq!(
        settings["hooks"]["WorktreeRemove"][0]["hooks"][0]["command"],
        "ff agent claude worktree-remove"
    );
    assert_eq!(
        settings["hooks"]["WorktreeCreate"].as_array().map(Vec::len),
        Some(2)
    );

    let again = crate::common::ff_in(
        p.repo.path(),
        &p.config,
        &[],
        &["--json", "agent", "install", "claude"],
    );
    assert_eq!(code(&again), 0);
    let view: Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(view["changed"], false);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        after,
        "a second run changed it"
    );
}

#[cfg(unix)]
#[test]
fn install_refuses_a_settings_directory_that_is_a_link() {
    let p = Project::new();
    let elsewhere = p.repo.scratch("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, p.repo.path().join(".claude")).expect("link");
    let out = crate::common::ff_in(
        p.repo.path(),
        &p.config,
        &[],
        &["agent", "install", "claude"],
    );
    assert_eq!(code(&out), 77, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read_dir(&elsewhere).expect("dir").next().is_none(),
        "wrote through the link"
    );
}

/// `ff status set` through the binary: by issue, or in the worktree one is
/// in; `ff list --json` and `ff status --json` show it in their documented
/// shapes; a note of two lines is refused and changes nothing.
#[test]
fn status_set_and_shown_by_list_and_status() {
    let p = Project::new();
    let path = p.create("worktree-create.name.json");
    let ff = |dir: &Path, args: &[&str]| crate::common::ff_in(dir, &p.config, &[], args);
    let set = ff(
        p.repo.path(),
        &[
            "status",
            "set",
            "blocked",
            "--note",
            "the tests need a database",
            "auth-refactor",
        ],
    );
    assert_eq!(code(&set), 0, "{}", String::from_utf8_lossy(&set.stderr));
    let list = crate::common::stdout_json(&ff(p.repo.path(), &["list", "--json"]));
    crate::common::assert_valid("list", &list);
    assert_eq!(list[0]["agent_status"]["state"], "blocked");
    assert_eq!(list[0]["agent_status"]["note"], "the tests need a database");

    // Inside the worktree, the issue is the worktree's.
    let inside = path.join("src");
    std::fs::create_dir_all(&inside).expect("a subdirectory");
    assert_eq!(code(&ff(&inside, &["status", "set", "working"])), 0);
    let shown = crate::common::stdout_json(&ff(&inside, &["status", "--json"]));
    crate::common::assert_generated("status", &shown);
    assert_eq!(shown["agent_status"]["state"], "working");
    assert!(shown["agent_status"].get("note").is_none(), "{shown}");

    let bad = ff(
        p.repo.path(),
        &["status", "set", "done", "--note", "a\nb", "auth-refactor"],
    );
    assert_eq!(code(&bad), 65);
    // No target outside every worktree: a missing argument, a usage error.
    let outside = ff(p.repo.path(), &["status", "set", "done"]);
    assert_eq!(
        code(&outside),
        2,
        "{}",
        String::from_utf8_lossy(&outside.stderr)
    );
    let unchanged =
        crate::common::stdout_json(&ff(p.repo.path(), &["status", "auth-refactor", "--json"]));
    assert_eq!(unchanged["agent_status"]["state"], "working");
    let human = ff(p.repo.path(), &["list"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("AGENT"));
}

fn doctor(dir: &Path, config: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let out = crate::common::ff_in(dir, config, env, &["doctor", "--json"]);
    let view: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    crate::common::assert_generated("doctor", &view);
    (code(&out), view)
}

fn outcome<'v>(view: &'v Value, check: &str) -> &'v str {
    view["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["outcome"].as_str())
        .unwrap_or_else(|| panic!("no check {check} in {view}"))
}

/// `ff doctor` on a healthy repository says so; on one a hand left a
/// worktree's directory deleted, it says to recover and changes nothing.
#[test]
fn doctor_says_what_is_fine_and_what_to_do() {
    let p = Project::new();
    let path = p.create("worktree-create.name.json");
    let (rc, view) = doctor(p.repo.path(), &p.config, &[]);
    assert_eq!(rc, 0, "{view}");
    for check in [
        "git",
        "repository",
        "settings",
        "hooks",
        "state_dir",
        "locks",
        "store",
        "worktrees",
        "clock",
    ] {
        assert_eq!(outcome(&view, check), "ok", "{check}: {view}");
    }
    std::fs::remove_dir_all(&path).expect("a hand deletes the worktree");
    let (rc, view) = doctor(p.repo.path(), &p.config, &[]);
    assert_eq!(rc, 0, "warnings are not failures: {view}");
    assert_eq!(outcome(&view, "worktrees"), "warn", "{view}");
    let records = ff_testkit::git::git_in(p.repo.path(), &["worktree", "list", "--porcelain"]);
    assert!(
        records.contains(".ff-worktrees/auth-refactor\n"),
        "doctor repaired what it should only name"
    );
}

/// With an unapproved ff.toml naming a Redis server (or a PostgreSQL
/// one), `ff doctor` says the settings wait for approval and contacts
/// nothing they name.
#[test]
fn doctor_contacts_nothing_an_unapproved_ff_toml_names() {
    for scheme in ["redis", "postgres"] {
        let p = Project::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let url = if scheme == "redis" {
            format!("redis://127.0.0.1:{port}")
        } else {
            format!("postgres://ff:pw@127.0.0.1:{port}/db")
        };
        std::fs::write(
            p.repo.path().join("ff.toml"),
            format!("lock = \"{url}\"\nstore = \"{url}\"\n"),
        )
        .expect("ff.toml");
        let (rc, view) = doctor(p.repo.path(), &p.config, &[]);
        assert_eq!(rc, 0, "{view}");
        assert_eq!(outcome(&view, "settings"), "warn");
        for check in ["locks", "store", "clock"] {
            assert_eq!(outcome(&view, check), "skipped", "{scheme} {check}: {view}");
        }
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "doctor connected to a server an unapproved ff.toml names ({scheme})"
        );
    }
}

/// Against a real Redis, the clock check compares this host's clock with
/// the server's.
#[test]
fn doctor_compares_the_clock_with_redis() {
    let Some(server) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let p = Project::new();
    let url = server.url();
    let (rc, view) = doctor(
        p.repo.path(),
        &p.config,
        &[("FF_LOCK", url.as_str()), ("FF_STORE", url.as_str())],
    );
    assert_eq!(rc, 0, "{view}");
    assert_eq!(outcome(&view, "clock"), "ok", "{view}");
    assert_eq!(outcome(&view, "locks"), "ok", "{view}");
}

/// The Claude Code settings in docs/agents.md are what `ff agent install claude`
/// writes into a project that has none.
#[test]
fn install_writes_the_readmes_settings() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agents.md"))
            .expect("docs/agents.md");
    let block = readme
        .split("<!-- claude-hooks")
        .nth(1)
        .and_then(|after| after.split("```json\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("docs/agents.md marks its Claude Code settings");
    let documented: Value = serde_json::from_str(block).expect("the documented settings are JSON");
    let p = Project::new();
    let out = crate::common::ff_in(
        p.repo.path(),
        &p.config,
        &[],
        &["agent", "install", "claude"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(p.repo.path().join(".claude/settings.json")).expect("written"),
    )
    .expect("JSON");
    assert_eq!(written, documented);
}

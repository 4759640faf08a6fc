//! No process left behind (Linux, where `/proc` tells what runs in a
//! directory): a server a `post_create` hook started is stopped by the
//! cleanup and its port is free; a process ff did not start makes a
//! cleanup refuse (77) unless `on_running = "stop"`; prune stops nothing;
//! whoever runs `ff cleanup` from inside the worktree is not in the way.
#![cfg(target_os = "linux")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use ff_testkit::git::TestRepo;

use crate::common::{code, error_json, eventually, ff_in, stdout_json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn setup(toml: &str) -> (TestRepo, PathBuf) {
    let repo = TestRepo::new();
    std::fs::write(repo.path().join("ff.toml"), toml).expect("ff.toml");
    let config = repo.scratch("userconfig");
    (repo, config)
}

fn path_of(dir: &Path, config: &Path, issue: &str) -> PathBuf {
    let made = ff_in(
        dir,
        config,
        &[("FF_HOOKS", "allow")],
        &["create", issue, "--json"],
    );
    assert_eq!(code(&made), 0, "{}", String::from_utf8_lossy(&made.stderr));
    PathBuf::from(stdout_json(&made)["path"].as_str().expect("path"))
}

/// A process the test starts (not ff) with its working directory in `dir`.
fn sleeper(dir: &Path) -> Child {
    Command::new("sleep")
        .arg("300")
        .current_dir(dir)
        .spawn()
        .expect("sleep")
}

#[test]
fn a_server_post_create_started_is_stopped_by_cleanup_and_its_port_freed() {
    let port = free_port();
    let (repo, config) = setup(&format!(
        "port_base = {port}\ncleanup_grace = \"2s\"\n[hooks]\npost_create = [\"python3 -m \
         http.server $FF_PORT --bind 127.0.0.1 > /dev/null 2>&1 &\"]\n"
    ));
    let dir = repo.path();
    let _ = path_of(dir, &config, "1");
    assert!(
        eventually(Duration::from_secs(10), || listening(port)),
        "the hook's server never listened on {port}"
    );
    let out = ff_in(dir, &config, &[("FF_HOOKS", "allow")], &["cleanup", "1"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    // Stopped before the cleanup returned: the port is free at once.
    assert!(!listening(port), "the server outlived its worktree");
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
}

#[test]
fn a_process_ff_did_not_start_refuses_the_cleanup_unless_on_running_is_stop() {
    let (repo, config) = setup("");
    let dir = repo.path();
    let path = path_of(dir, &config, "2");
    let mut agent = sleeper(&path);
    let out = ff_in(dir, &config, &[], &["cleanup", "2", "--force", "--json"]);
    assert_eq!(code(&out), 77, "{}", String::from_utf8_lossy(&out.stderr));
    let message = error_json(&out)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(&format!("pid {}", agent.id())) && message.contains("sleep 300"),
        "{message}"
    );
    assert!(
        path.join(".git").exists(),
        "a refused cleanup touched the worktree"
    );
    assert!(
        agent.try_wait().expect("wait").is_none(),
        "the agent was signalled"
    );

    // prune stops nothing: the worktree stays, and the answer says why.
    let pruned = ff_in(
        dir,
        &config,
        &[],
        &["prune", "--older-than", "0s", "--json"],
    );
    assert_eq!(
        code(&pruned),
        0,
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    let pruned = stdout_json(&pruned).to_string();
    assert!(pruned.contains("prune stops nothing"), "{pruned}");
    assert!(path.exists());
    assert!(
        agent.try_wait().expect("wait").is_none(),
        "prune signalled the agent"
    );

    // Opted in: stopped (SIGTERM), then the worktree goes.
    std::fs::write(dir.join("ff.toml"), "on_running = \"stop\"\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["cleanup", "2"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let status = agent.wait().expect("wait");
    assert!(!status.success(), "{status:?}");
    assert!(!path.exists());
}

#[test]
fn cleanup_run_from_inside_the_worktree_is_not_refused_for_its_own_shell() {
    let (repo, config) = setup("");
    let dir = repo.path();
    let path = path_of(dir, &config, "3");
    // The shell that runs ff works in the worktree, as an agent's would.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("cd '{}' && exec \"$0\" cleanup", path.display()))
        .arg(env!("CARGO_BIN_EXE_ff"))
        .env("FF_CONFIG_DIR", &config)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_REPO")
        .output()
        .expect("sh");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!path.exists());
}

#[test]
fn what_ff_exec_left_running_in_the_worktree_is_stopped_by_cleanup() {
    let (repo, config) = setup("");
    let dir = repo.path();
    let pid_file = repo.scratch("pid").join("pid");
    let out = ff_in(
        dir,
        &config,
        &[],
        &[
            "exec",
            "4",
            "--",
            "sh",
            "-c",
            &format!(
                "sleep 300 > /dev/null 2>&1 & echo $! > '{}'",
                pid_file.display()
            ),
        ],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let alive = || Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(), "the background sleep did not outlive ff exec");
    let out = ff_in(dir, &config, &[], &["cleanup", "4"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        eventually(Duration::from_secs(5), || !alive()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "what ff exec left running outlived the cleanup"
    );
}

#[test]
fn a_cleanup_refused_for_work_it_would_lose_stops_nothing() {
    let port = free_port();
    let (repo, config) = setup(&format!(
        "port_base = {port}\n[hooks]\npost_create = [\"python3 -m http.server $FF_PORT --bind \
         127.0.0.1 > /dev/null 2>&1 &\"]\n"
    ));
    let dir = repo.path();
    let path = path_of(dir, &config, "5");
    assert!(eventually(Duration::from_secs(10), || listening(port)));
    std::fs::write(path.join("draft.txt"), "unsaved\n").expect("draft");
    let out = ff_in(dir, &config, &[("FF_HOOKS", "allow")], &["cleanup", "5"]);
    assert_eq!(code(&out), 77, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(listening(port), "a refused cleanup stopped the server");
    let out = ff_in(
        dir,
        &config,
        &[("FF_HOOKS", "allow")],
        &["cleanup", "5", "--force"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!listening(port), "the server outlived its worktree");
}

#[test]
fn gits_own_housekeeping_in_the_worktree_neither_refuses_a_cleanup_nor_is_signalled() {
    use std::os::unix::process::CommandExt as _;
    let (repo, config) = setup("");
    let dir = repo.path();
    let path = path_of(dir, &config, "6");
    // Two packs and `gc.autoPackLimit = 1`: the maintenance git starts
    // after a commit (started here by hand) finds a gc due and runs the
    // `pre-auto-gc` hook, which here stays, as a long repack would. (The test's own commits start
    // none: one still running would hold git's maintenance lock, and the
    // one below would skip its work.)
    let _ = repo.git(&["config", "maintenance.auto", "false"]);
    let _ = repo.git(&["repack", "-q"]);
    ff_testkit::git::commit_file(dir, "more.txt", "more\n", "more");
    let _ = repo.git(&["repack", "-q"]);
    let hook_pid = repo.scratch("hook").join("pid");
    repo.install_hook(
        "pre-auto-gc",
        &format!("echo $$ > '{}'; exec sleep 300", hook_pid.display()),
    );
    let hook_started = || std::fs::read_to_string(&hook_pid).is_ok_and(|p| p.ends_with('\n'));
    let mut maintenance = None;
    for _ in 0..5 {
        let mut started = Command::new("git")
            .args(["maintenance", "run", "--auto", "--quiet", "--no-detach"])
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "gc.autoPackLimit")
            .env("GIT_CONFIG_VALUE_0", "1")
            .current_dir(&path)
            .process_group(0)
            .spawn()
            .expect("git maintenance");
        if eventually(Duration::from_secs(20), || {
            hook_started() || started.try_wait().is_ok_and(|s| s.is_some())
        }) && hook_started()
        {
            maintenance = Some(started);
            break;
        }
        // It ended without running the hook (another git held the
        // maintenance lock): again.
        let _ = started.wait();
    }
    let mut maintenance = maintenance.expect("git maintenance never ran its pre-auto-gc hook");
    let group = maintenance.id();
    let hook: u32 = std::fs::read_to_string(&hook_pid)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };

    let out = ff_in(dir, &config, &[], &["cleanup", "6"]);
    let (cleaned, said) = (
        code(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let (git_ran, hook_ran) = (alive(group), alive(hook));
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status();
    let _ = maintenance.wait();
    assert_eq!(cleaned, 0, "{said}");
    assert!(!path.exists());
    assert!(git_ran && hook_ran, "cleanup signalled git's housekeeping");
}

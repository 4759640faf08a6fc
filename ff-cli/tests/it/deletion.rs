//! `ff cleanup` returns once the worktree is moved out of the way and git's
//! registration dropped; its files are deleted by a process of its own,
//! which holds none of the command's output, so `$(ff cleanup …)` returns
//! at once; a deletion killed midway is finished by `ff recover`.
//! (`FF_HOLD_DELETION`, a test hook of the `crash-points` feature, holds
//! the deleter while a file exists.)
#![cfg(all(target_os = "linux", feature = "crash-points"))]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ff_testkit::git::TestRepo;

use crate::common::{code, eventually, ff_in, stdout_json};

/// The directories under `base` awaiting deletion.
fn awaiting(base: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".ff-deleting-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// A repository with issue 1's worktree holding a few hundred files; the
/// repository, the user configuration directory and the worktree.
fn worktree_with_files() -> (TestRepo, PathBuf, PathBuf) {
    let repo = TestRepo::new();
    let config = repo.scratch("userconfig");
    let made = ff_in(repo.path(), &config, &[], &["create", "1", "--json"]);
    assert_eq!(code(&made), 0, "{}", String::from_utf8_lossy(&made.stderr));
    let path = PathBuf::from(stdout_json(&made)["path"].as_str().expect("path"));
    for i in 0..300 {
        std::fs::write(path.join(format!("f{i}.txt")), "x\n").expect("file");
    }
    (repo, config, path)
}

/// Pids of the `ff delete-removed` processes working on `base`.
fn deleters(base: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"delete-removed".as_slice())
            && args.contains(&base.as_os_str().as_encoded_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// `ff cleanup 1 --force --json` with its deleter held until the returned
/// file is removed; the command's output and that file.
fn cleanup_held(repo: &TestRepo, config: &Path) -> (std::process::Output, PathBuf) {
    let hold = repo.scratch("hold").join("held");
    std::fs::write(&hold, "").expect("hold");
    let hold_s = hold.to_string_lossy().into_owned();
    // Output captured through pipes, as `$(ff cleanup …)` has it: this
    // returns only once every process holding them has closed them.
    let out = ff_in(
        repo.path(),
        config,
        &[("FF_HOLD_DELETION", hold_s.as_str())],
        &["cleanup", "1", "--force", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    (out, hold)
}

#[test]
fn cleanup_returns_before_the_files_are_deleted_and_they_are_deleted_after() {
    let (repo, config, path) = worktree_with_files();
    let base = path.parent().expect("base").to_path_buf();
    let (out, hold) = cleanup_held(&repo, &config);
    assert_eq!(stdout_json(&out)["removed"], true);
    // Returned with the deletion still held: the path is free, git lists
    // no worktree there, the files wait beside it.
    assert!(!path.exists());
    let waiting = awaiting(&base);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(
        waiting[0].join("f299.txt").exists(),
        "deleted before the command returned"
    );
    assert!(!repo.worktree_paths().contains(&path));
    assert_eq!(deleters(&base).len(), 1, "the deleter runs on");

    std::fs::remove_file(&hold).expect("release");
    assert!(
        eventually(Duration::from_secs(30), || awaiting(&base).is_empty()),
        "the deletion never finished"
    );
    let log =
        std::fs::read_to_string(repo.path().join(".git/ff/deletions.log")).unwrap_or_default();
    assert!(log.contains("deleted"), "{log}");
}

#[test]
fn a_deletion_killed_midway_is_finished_by_recover() {
    let (repo, config, path) = worktree_with_files();
    let base = path.parent().expect("base").to_path_buf();
    let _held = cleanup_held(&repo, &config);
    let pids = deleters(&base);
    assert_eq!(pids.len(), 1);
    for pid in pids {
        let pid = rustix::process::Pid::from_raw(pid).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
    }
    assert!(eventually(Duration::from_secs(10), || deleters(&base).is_empty()));
    assert_eq!(awaiting(&base).len(), 1, "the killed deleter deleted it");

    let recovered = ff_in(repo.path(), &config, &[], &["recover", "--json"]);
    assert_eq!(
        code(&recovered),
        0,
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    let repairs = stdout_json(&recovered)["repairs"].clone();
    let finished = repairs
        .as_array()
        .expect("repairs")
        .iter()
        .filter(|r| r["kind"] == "finished_deletion")
        .count();
    assert_eq!(finished, 1, "{repairs}");
    assert!(awaiting(&base).is_empty());
}

#[test]
fn claude_codes_remove_hook_returns_before_the_files_are_deleted() {
    let (repo, config, path) = worktree_with_files();
    let base = path.parent().expect("base").to_path_buf();
    let hold = repo.scratch("hold").join("held");
    std::fs::write(&hold, "").expect("hold");
    let hold_s = hold.to_string_lossy().into_owned();
    let payload = serde_json::json!({
        "hook_event_name": "WorktreeRemove",
        "cwd": repo.path(),
        "worktree_path": path,
    })
    .to_string();
    // Pipes, as the agent reads them: this returns only once every
    // process holding them has closed them.
    let out = crate::common::ff_with_input(
        repo.path(),
        &config,
        &[("FF_HOLD_DELETION", hold_s.as_str())],
        &["agent", "claude", "worktree-remove", "--force"],
        &payload,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!path.exists());
    let waiting = awaiting(&base);
    assert_eq!(
        waiting.len(),
        1,
        "deleted before the hook returned: {waiting:?}"
    );
    assert_eq!(deleters(&base).len(), 1, "the deleter runs on");
    std::fs::remove_file(&hold).expect("release");
    assert!(
        eventually(Duration::from_secs(30), || awaiting(&base).is_empty()),
        "the deletion never finished"
    );
}

#[test]
fn the_deletion_log_is_rotated_past_a_mebibyte() {
    let (repo, config, path) = worktree_with_files();
    let base = path.parent().expect("base").to_path_buf();
    let log = repo.path().join(".git/ff/deletions.log");
    std::fs::write(&log, "x".repeat((1 << 20) + 1)).expect("a full log");
    let out = ff_in(repo.path(), &config, &[], &["cleanup", "1", "--force"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        eventually(Duration::from_secs(30), || awaiting(&base).is_empty()),
        "the deletion never finished"
    );
    let older = std::fs::metadata(repo.path().join(".git/ff/deletions.log.1")).expect("rotated");
    assert_eq!(older.len(), (1 << 20) + 1);
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("deleted"))),
        "the new log says nothing"
    );
    assert!(std::fs::metadata(&log).expect("log").len() < 1 << 20);
}

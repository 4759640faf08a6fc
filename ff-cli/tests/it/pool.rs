//! `ff pool` and the warm pool through the binary: `[pool] size` in
//! `ff.toml`, the approved `pool_prepare` hook, creates that take a pool
//! worktree, and the refill that runs after them without holding up the
//! command's output.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ff_testkit::git::TestRepo;

use crate::common::{assert_valid, code, eventually, ff_in, stdout_json};

/// A repository whose `ff.toml` keeps a pool of `size`, prepared by a hook
/// that waits while `hold` exists, then writes `prepared.txt` (which git
/// ignores) with the pool worktree's id.
fn pooled(size: usize) -> (TestRepo, PathBuf, PathBuf) {
    let repo = TestRepo::new();
    ff_testkit::git::exclude(repo.path(), "prepared.txt");
    let hold = repo.scratch("hold").join("held");
    std::fs::write(
        repo.path().join("ff.toml"),
        format!(
            "[pool]\nsize = {size}\n\n[hooks]\npool_prepare = [\"while [ -e '{}' ]; do sleep 0.05; \
             done; echo \\\"$FF_WORKTREE_ID\\\" > prepared.txt\"]\n",
            hold.display()
        ),
    )
    .expect("ff.toml");
    ff_testkit::git::exclude(repo.path(), "ff.toml");
    let config = repo.scratch("userconfig");
    (repo, config, hold)
}

const ALLOW: [(&str, &str); 1] = [("FF_HOOKS", "allow")];

fn pool_status(repo: &Path, config: &Path) -> serde_json::Value {
    let out = ff_in(repo, config, &ALLOW, &["pool", "status", "--json"]);
    let v = stdout_json(&out);
    assert_valid("pool", &v);
    v
}

#[test]
fn fill_status_drain_and_a_create_that_takes_one() {
    let (repo, config, _hold) = pooled(2);
    let filled = ff_in(repo.path(), &config, &ALLOW, &["pool", "fill", "--json"]);
    let filled = stdout_json(&filled);
    assert_valid("pool", &filled);
    assert_eq!(filled["entries"].as_array().expect("made").len(), 2);
    assert_eq!(filled["size"], 2);
    let status = pool_status(repo.path(), &config);
    assert!(
        status["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["state"] == "ready")
    );

    let made = ff_in(repo.path(), &config, &ALLOW, &["create", "7", "--json"]);
    let made = stdout_json(&made);
    assert_valid("create", &made);
    let entry = made["from_pool"].as_str().expect("from the pool");
    let path = PathBuf::from(made["path"].as_str().expect("path"));
    assert_eq!(
        std::fs::read_to_string(path.join("prepared.txt"))
            .expect("prepared")
            .trim(),
        entry
    );
    // The refill runs after the create, in the background; drain takes
    // ready entries only, so wait until the refill has finished preparing
    // (under load, status showed the second entry still being made, and
    // drain then took one).
    assert!(
        eventually(Duration::from_secs(30), || {
            let s = pool_status(repo.path(), &config);
            s["entries"]
                .as_array()
                .is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["state"] == "ready"))
        }),
        "the pool was not refilled"
    );
    let drained = ff_in(repo.path(), &config, &ALLOW, &["pool", "drain", "--json"]);
    let drained = stdout_json(&drained);
    assert_valid("pool", &drained);
    assert_eq!(drained["entries"].as_array().expect("removed").len(), 2);
    assert!(
        pool_status(repo.path(), &config)["entries"]
            .as_array()
            .expect("entries")
            .is_empty()
    );
}

#[test]
fn an_unapproved_pool_prepare_runs_nothing() {
    let (repo, config, _hold) = pooled(1);
    let out = ff_in(repo.path(), &config, &[], &["pool", "fill"]);
    assert_eq!(code(&out), 77, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pool_prepare"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = std::fs::read_dir(repo.path().join(".ff-worktrees"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".ff-pool-"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(pool, 0, "a pool worktree was made");
}

/// Fills a pool of one, holds the refill's preparation, and runs `run`
/// (which takes the pool worktree); checks that it returned while the
/// refill it started was still held, then lets the refill finish. Returns
/// the repository and what `run` returned.
fn returns_while_the_refill_is_held(
    run: impl FnOnce(&Path, &Path) -> Output,
) -> (TestRepo, Output) {
    let (repo, config, hold) = pooled(1);
    let filled = ff_in(repo.path(), &config, &ALLOW, &["pool", "fill"]);
    assert_eq!(
        code(&filled),
        0,
        "{}",
        String::from_utf8_lossy(&filled.stderr)
    );
    // From now on, the refill's preparation waits; a command that waited
    // for it would never return, so a watchdog lets it go after a minute,
    // and says so.
    std::fs::write(&hold, "").expect("hold");
    let watchdog = {
        let hold = hold.clone();
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while hold.exists() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::fs::remove_file(&hold).is_ok()
        })
    };
    // Output through pipes, as `$(ff create 8 --print-path)` or an agent
    // reads it: this returns only once every process holding them has
    // closed them.
    let out = run(repo.path(), &config);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        eventually(Duration::from_secs(30), || {
            pool_status(repo.path(), &config)["entries"][0]["state"] == "filling"
        }),
        "no refill is making a pool worktree"
    );
    std::fs::remove_file(&hold).expect("release");
    assert!(
        !watchdog.join().expect("watchdog"),
        "the command returned only once the refill's preparation was let go"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            pool_status(repo.path(), &config)["entries"][0]["state"] == "ready"
        }),
        "the refill never finished"
    );
    let log = std::fs::read_to_string(repo.path().join(".git/ff/pool.log")).unwrap_or_default();
    assert!(!log.is_empty(), "the refill logged nothing");
    (repo, out)
}

#[test]
fn a_create_returns_before_the_background_refill_ends() {
    let (_repo, out) = returns_while_the_refill_is_held(|repo, config| {
        ff_in(repo, config, &ALLOW, &["create", "8", "--print-path"])
    });
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.join("prepared.txt").is_file(), "not from the pool");
}

#[test]
fn claude_codes_create_hook_returns_before_the_background_refill_ends() {
    let (_repo, out) = returns_while_the_refill_is_held(|repo, config| {
        let payload = serde_json::json!({
            "hook_event_name": "WorktreeCreate",
            "cwd": repo,
            "name": "auth-refactor",
        })
        .to_string();
        crate::common::ff_with_input(
            repo,
            config,
            &ALLOW,
            &["agent", "claude", "worktree-create"],
            &payload,
        )
    });
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.join("prepared.txt").is_file(), "not from the pool");
}

/// A create killed just after it took a pool worktree's record leaves that
/// worktree's directory with no record: the next create makes a worktree
/// as usual, and the refill it starts settles the orphan and fills the
/// pool again, with no command run by hand.
#[cfg(feature = "crash-points")]
#[test]
fn a_claim_killed_midway_is_settled_by_the_next_creates_refill() {
    let (repo, config, _hold) = pooled(1);
    let filled = ff_in(repo.path(), &config, &ALLOW, &["pool", "fill"]);
    assert_eq!(
        code(&filled),
        0,
        "{}",
        String::from_utf8_lossy(&filled.stderr)
    );
    let killed = ff_in(
        repo.path(),
        &config,
        &[("FF_HOOKS", "allow"), ("FF_CRASH_AT", "pool_claim.taken")],
        &["create", "1"],
    );
    assert_ne!(code(&killed), 0, "the create was not killed");
    let pool_dirs = || {
        std::fs::read_dir(repo.path().join(".ff-worktrees"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(".ff-pool-"))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let orphan = pool_dirs();
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    assert!(
        pool_status(repo.path(), &config)["entries"]
            .as_array()
            .expect("entries")
            .is_empty(),
        "the record was taken"
    );
    let made = ff_in(repo.path(), &config, &ALLOW, &["create", "2", "--json"]);
    assert!(stdout_json(&made).get("from_pool").is_none());
    assert!(
        eventually(Duration::from_secs(30), || {
            let status = pool_status(repo.path(), &config);
            let dirs = pool_dirs();
            status["entries"].as_array().is_some_and(|e| {
                e.len() == 1 && e[0]["state"] == "ready" && dirs == [e[0]["id"].clone()]
            })
        }),
        "the orphan was not settled, or the pool not refilled: {:?}",
        pool_dirs()
    );
}

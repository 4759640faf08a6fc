//! A crash at every step: for each point in `ff_worktree::crash::POINTS`,
//! a child process runs the operation that reaches it and aborts there
//! (`FF_CRASH_AT`, as abrupt as SIGKILL); then the same operation, run
//! again, must succeed; the issue's create must then work; and every
//! chaos invariant must hold: records, `git worktree list` and the base
//! path agree, nothing pending, no slot leaked, no lock held, `git fsck`
//! clean, and every commit made before the crash still reachable. A point
//! the child never reached fails the sweep, so a point added without a
//! scenario that reaches it fails too.
//!
//! Runs on file locks + SQLite (every point) and, with a `redis-server`,
//! on Redis locks and records (the points after a store write or a lock
//! step). Needs the `crash-points` feature (`--all-features`).

#![cfg(all(unix, feature = "crash-points"))]
#![allow(clippy::print_stdout)] // the figures are the report

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::hooks::Hooks;
use ff_worktree::{Cleanup, PruneOptions, Recover, SyncOptions, WorktreeConfig, WorktreeManager};

const ISSUE: &str = "1";

fn config(repo: &str, scenario: &str) -> WorktreeConfig {
    let mut hooks = Hooks::default();
    hooks.post_create = vec!["true".into()];
    let config = WorktreeConfig::new(repo)
        .with_hooks(hooks)
        .with_lock_timeout(Duration::from_secs(20));
    if scenario.starts_with("pool_") {
        // Two pool worktrees, each prepared by a hook that writes a file
        // git ignores (see `prepare`).
        let mut hooks = Hooks::default();
        hooks.post_create = vec!["true".into()];
        hooks.pool_prepare = vec!["echo \"$FF_WORKTREE_ID\" > prepared.txt".into()];
        return config.with_hooks(hooks).with_pool_size(2);
    }
    if scenario == "sparse_create" {
        // The top-level files alone: every test repository has those.
        return config.with_checkout(ff_worktree::Checkout::sparse([]));
    }
    config
}

/// The scenario a point belongs to: the part of its name before the `.`.
fn scenario(point: &str) -> &str {
    point.split_once('.').map_or(point, |(s, _)| s)
}

/// The operation of `scenario`.
async fn operate<L: LockProvider, S: IdempotencyStorage>(
    m: &WorktreeManager<L, S>,
    scenario: &str,
) -> Result<(), String> {
    let done = match scenario {
        "create" | "restore" | "sparse_create" => m.create_worktree(ISSUE).await.map(drop),
        "pool_fill" => m.fill_pool().await.map(drop),
        // What `ff create` does: the create, then (in the background) a
        // fill, which settles what a claim that died left.
        "pool_claim" => match m.create_worktree(ISSUE).await {
            Ok(_) => m.fill_pool().await.map(drop),
            Err(e) => Err(e),
        },
        "cleanup" => m.cleanup_worktree(ISSUE, Cleanup::Safe).await.map(drop),
        "cleanup_force" => m.cleanup_worktree(ISSUE, Cleanup::Force).await.map(drop),
        "sync" => m
            .sync_worktree(ISSUE, SyncOptions::default())
            .await
            .map(drop),
        "recover" => m.recover(Recover::Repair).await.map(drop),
        "prune" => m
            .prune(PruneOptions::default().with_merged(true))
            .await
            .map(drop),
        other => panic!("no scenario {other:?}: name the point after one"),
    };
    done.map_err(|e| e.to_string())
}

/// Where a run keeps its state: a directory for file locks + SQLite; a
/// Redis URL and a key prefix of the run's own for Redis.
#[derive(Clone)]
struct Backend {
    state: String,
    redis: Option<(String, String)>,
}

impl Backend {
    fn role(&self) -> Vec<String> {
        let mut role = vec![self.state.clone()];
        if let Some((url, prefix)) = &self.redis {
            role.extend([url.clone(), prefix.clone()]);
        }
        role
    }

    /// File locks and SQLite, in a state directory of `repo`'s own.
    fn files_of(repo: &TestRepo) -> Self {
        Self {
            state: repo.scratch("state").to_string_lossy().into_owned(),
            redis: None,
        }
    }

    fn from_role(role: &[String]) -> Self {
        Self {
            state: role[0].clone(),
            redis: (role.len() > 2).then(|| (role[1].clone(), role[2].clone())),
        }
    }
}

/// Runs `f` on the manager `backend` names.
macro_rules! with_manager {
    ($backend:expr, $repo:expr, $scenario:expr, |$m:ident| $body:expr) => {{
        let backend: &Backend = $backend;
        match &backend.redis {
            None => {
                let $m =
                    crate::common::open(Path::new(&backend.state), config($repo, $scenario)).await;
                $body
            }
            Some((url, prefix)) => {
                let locks = RedisLockProvider::connect(
                    RedisLockConfig::new(url).with_prefix(format!("{prefix}lock:")),
                )
                .await
                .expect("redis locks");
                let store = RedisStore::connect(
                    RedisStoreConfig::new(url).with_prefix(format!("{prefix}rec:")),
                )
                .await
                .expect("redis store");
                let $m = WorktreeManager::open(config($repo, $scenario), locks, store)
                    .await
                    .expect("open");
                $body
            }
        }
    }};
}

/// The child: `role` = [scenario, repo, backend…]; runs the scenario's
/// operation once (aborting at `FF_CRASH_AT`).
#[test]
fn crash_point_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let (scenario, repo) = (role[0].clone(), role[1].clone());
    let backend = Backend::from_role(&role[2..]);
    ff_testkit::runtime().block_on(async {
        with_manager!(&backend, &repo, &scenario, |m| {
            let _ = operate(&m, &scenario).await;
        });
    });
}

/// Runs the scenario's operation in a child aborting at `point`; whether
/// it aborted (reached the point).
fn crash_at(point: &str, repo: &TestRepo, backend: &Backend) -> bool {
    let repo_s = repo.path().to_string_lossy().into_owned();
    let mut role = vec![scenario(point).to_owned(), repo_s];
    role.extend(backend.role());
    let role: Vec<&str> = role.iter().map(String::as_str).collect();
    let child = ff_testkit::spawn_self_with_env(
        &ff_testkit::test_entry!("crash_point_child"),
        &role,
        &[("FF_CRASH_AT", point)],
    );
    let out = child.wait_with_output().expect("child");
    std::os::unix::process::ExitStatusExt::signal(&out.status)
        == Some(rustix::process::Signal::ABORT.as_raw())
}

/// What the scenario needs before its operation runs; the commits made,
/// which must all stay reachable.
async fn prepare<L: LockProvider, S: IdempotencyStorage>(
    scenario: &str,
    repo: &TestRepo,
    backend: &Backend,
    m: &WorktreeManager<L, S>,
) -> Vec<String> {
    let mut commits = Vec::new();
    if scenario.starts_with("pool_") {
        ff_testkit::git::exclude(repo.path(), "prepared.txt");
        if scenario == "pool_claim" {
            m.fill_pool().await.expect("fill the pool");
        }
        return commits;
    }
    if matches!(scenario, "create" | "recover" | "sparse_create") {
        if scenario == "recover" {
            // A create killed once git registered its worktree.
            assert!(
                crash_at("create.registered", repo, backend),
                "the create did not crash"
            );
        }
        return commits;
    }
    let wt = m.create_worktree(ISSUE).await.expect("create").worktree;
    match scenario {
        "cleanup" => {}
        "prune" => {
            // Work merged into the base: prune's to remove.
            commit_file(&wt.path, "work.txt", "work\n", "agent work");
            commits.push(git_in(&wt.path, &["rev-parse", "HEAD"]));
            let _ = git_in(repo.path(), &["merge", "-q", "--ff-only", &wt.branch]);
        }
        "cleanup_force" => {
            commit_file(&wt.path, "work.txt", "work\n", "agent work");
            commits.push(git_in(&wt.path, &["rev-parse", "HEAD"]));
            std::fs::write(wt.path.join("draft.txt"), "draft\n").expect("draft");
        }
        "sync" => {
            commit_file(&wt.path, "work.txt", "work\n", "agent work");
            commits.push(git_in(&wt.path, &["rev-parse", "HEAD"]));
            commit_file(repo.path(), "base.txt", "base\n", "base moves on");
        }
        "restore" => {
            // A removal an agent's write cut short.
            commit_file(&wt.path, "work.txt", "work\n", "agent work");
            commits.push(git_in(&wt.path, &["rev-parse", "HEAD"]));
            std::fs::remove_dir_all(repo.path().join(".git/worktrees").join(&wt.id))
                .expect("admin");
            std::fs::write(wt.path.join("late.txt"), "late\n").expect("late");
        }
        other => panic!("no scenario {other:?}"),
    }
    commits
}

/// One point: prepare, crash there, run again, create, check.
async fn sweep_one(point: &str, backend: &Backend, repo: &TestRepo) -> Result<(), String> {
    let path = repo.path().to_string_lossy().into_owned();
    let scenario = scenario(point);
    with_manager!(backend, &path, scenario, |m| {
        let commits = prepare(scenario, repo, backend, &m).await;
        if !crash_at(point, repo, backend) {
            return Err(format!("{point}: never reached"));
        }
        operate(&m, scenario)
            .await
            .map_err(|e| format!("{point}: the {scenario} run again failed: {e}"))?;
        let created = m
            .create_worktree(ISSUE)
            .await
            .map_err(|e| format!("{point}: the create afterwards failed: {e}"))?;
        let top = git_in(&created.worktree.path, &["rev-parse", "--show-toplevel"]);
        if Path::new(&top) != created.worktree.path {
            return Err(format!(
                "{point}: the worktree afterwards is not one ({top})"
            ));
        }
        // Every chaos invariant; a failure panics naming it, after this
        // line names the point.
        println!("crash point {point}: checking the invariants");
        crate::common::assert_consistent(repo, &m).await;
        // A sync rebases: a commit is kept when it, or one with the same
        // change (patch id), is reachable from a ref.
        let reachable: HashSet<String> = git_in(repo.path(), &["rev-list", "--all"])
            .lines()
            .flat_map(|c| [c.to_owned(), patch_id(repo.path(), c)])
            .collect();
        if let Some(lost) = commits
            .iter()
            .find(|c| !reachable.contains(*c) && !reachable.contains(&patch_id(repo.path(), c)))
        {
            return Err(format!("{point}: commit {lost} lost"));
        }
        Ok(())
    })
}

/// `git patch-id --stable` of `commit`'s change ("" for a commit that
/// changes nothing).
fn patch_id(repo: &Path, commit: &str) -> String {
    use std::io::Write as _;
    let diff = ff_testkit::git::git_output(repo, &["show", "--format=", commit]).stdout;
    let mut child = std::process::Command::new("git")
        .args(["patch-id", "--stable"])
        .current_dir(repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git patch-id");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&diff)
        .expect("diff");
    let out = child.wait_with_output().expect("patch-id");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map_or_else(String::new, |id| format!("patch:{id}"))
}

/// Every point in `points` on `backend`; the failures.
async fn sweep(points: &[&str], backend: impl Fn() -> Backend) -> Vec<String> {
    let mut failures = Vec::new();
    for point in points {
        let repo = TestRepo::new();
        let mut b = backend();
        if b.state.is_empty() {
            b.state = repo.scratch("state").to_string_lossy().into_owned();
        }
        if let Err(why) = sweep_one(point, &b, &repo).await {
            failures.push(why);
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_on_file_locks_and_sqlite() {
    let started = Instant::now();
    let points = manager_points();
    let failures = sweep(&points, || Backend {
        state: String::new(),
        redis: None,
    })
    .await;
    println!(
        "crash sweep file+sqlite: {} points, {} violations, {:.0} s",
        points.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every point but those of the scenarios `ff-cli`'s sweep runs through
/// the binary ([`ff_worktree::crash::CLI_SCENARIOS`]); a point of any
/// scenario this sweep does not know fails in [`operate`].
/// `FF_CRASH_ONLY=PREFIX` narrows them to the points whose name starts
/// so (for working on one scenario; CI sets nothing and runs them all).
fn manager_points() -> Vec<&'static str> {
    let only = std::env::var("FF_CRASH_ONLY").unwrap_or_default();
    ff_worktree::crash::POINTS
        .iter()
        .copied()
        .filter(|p| !ff_worktree::crash::CLI_SCENARIOS.contains(&scenario(p)))
        .filter(|p| p.starts_with(&only))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_lock_crash_points_on_redis() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let started = Instant::now();
    // The points right after a store write or a lock step.
    let points: Vec<&str> = manager_points()
        .into_iter()
        .filter(|p| {
            p.ends_with(".claimed")
                || p.ends_with(".completed")
                || p.ends_with(".issue_locked")
                || p.ends_with(".record_removed")
                || p.ends_with(".slot_taken")
                || p.ends_with(".slot_freed")
                || p.ends_with(".hook_claimed")
                || p.ends_with(".rolled_back")
        })
        .collect();
    let url = redis.url();
    let failures = sweep(&points, || Backend {
        state: String::new(),
        redis: Some((
            url.clone(),
            format!("crash:{}:", ff_traits::identity::unique_id()),
        )),
    })
    .await;
    println!(
        "crash sweep redis+redis: {} points, {} violations, {:.0} s",
        points.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// What a sync killed mid-rebase leaves, and an agent at work there since
/// (holding none of our locks): a pending sync record, a rebase stopped
/// after its first step (HEAD detached at the base's tip), a commit the
/// agent made on that detached HEAD and an edit it has not committed.
/// Returns the worktree and the agent's commit.
async fn crashed_sync_with_agent_work<L: LockProvider, S: IdempotencyStorage>(
    repo: &TestRepo,
    backend: &Backend,
    m: &WorktreeManager<L, S>,
) -> (ff_worktree::Worktree, String) {
    let wt = m.create_worktree(ISSUE).await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "work\n", "agent work");
    commit_file(repo.path(), "base.txt", "base\n", "base moves on");
    assert!(
        crash_at("sync.claimed", repo, backend),
        "the sync did not crash"
    );
    // The rebase the killed sync had under way, stopped where a kill
    // leaves it (`break` before the first pick).
    let out = std::process::Command::new("git")
        .current_dir(&wt.path)
        .env("GIT_SEQUENCE_EDITOR", "sed -i 1ibreak")
        .args(["rebase", "-q", "-i", &wt.base])
        .output()
        .expect("git rebase");
    assert!(out.status.success(), "{out:?}");
    let admin = git_in(&wt.path, &["rev-parse", "--absolute-git-dir"]);
    assert!(Path::new(&admin).join("rebase-merge").exists());
    commit_file(
        &wt.path,
        "agent.txt",
        "agent\n",
        "made while the sync lay dead",
    );
    let agent = git_in(&wt.path, &["rev-parse", "HEAD"]);
    std::fs::write(wt.path.join("agent.txt"), "edited\n").expect("edit");
    (wt, agent)
}

/// The agent's commit is reachable from a ref, and its uncommitted edit
/// is in `refs/ff/archive/<id>` or still in the worktree.
fn assert_agent_work_kept(repo: &TestRepo, wt: &ff_worktree::Worktree, agent: &str) {
    let reachable = git_in(repo.path(), &["rev-list", "--all"]);
    assert!(
        reachable.lines().any(|c| c == agent),
        "the commit made meanwhile was lost"
    );
    let archived = ff_testkit::git::git_output(
        repo.path(),
        &["show", &format!("refs/ff/archive/{}:agent.txt", wt.id)],
    );
    let on_disk = std::fs::read_to_string(wt.path.join("agent.txt")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&archived.stdout) == "edited\n" || on_disk == "edited\n",
        "the edit made meanwhile was lost"
    );
}

/// A sync killed mid-rebase is settled by the next sync, recover or
/// cleanup by aborting it; what an agent committed or changed there in
/// the meantime is kept under `refs/ff/archive/<id>` first (the abort
/// moves HEAD back to the branch and resets the files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_done_while_a_sync_lay_dead_mid_rebase_is_kept() {
    for settle in ["sync", "recover", "cleanup", "cleanup --force"] {
        let repo = TestRepo::new();
        let backend = Backend::files_of(&repo);
        let path = repo.path().to_string_lossy().into_owned();
        with_manager!(&backend, &path, "sync", |m| {
            let (wt, agent) = crashed_sync_with_agent_work(&repo, &backend, &m).await;
            match settle {
                "sync" => {
                    m.sync_worktree(ISSUE, SyncOptions::default())
                        .await
                        .expect("sync settles and syncs");
                }
                "recover" => {
                    let report = m.recover(Recover::Repair).await.expect("recover");
                    let repair = report
                        .repairs
                        .iter()
                        .find(|r| r.kind == ff_worktree::RepairKind::AbortedSync)
                        .expect("an aborted sync");
                    assert!(
                        repair.detail.contains("refs/ff/archive/"),
                        "{repair:?} does not say where the work is kept"
                    );
                }
                "cleanup" => {
                    // The branch has unmerged work: refused, but settled.
                    let err = m
                        .cleanup_worktree(ISSUE, Cleanup::Safe)
                        .await
                        .expect_err("unmerged work is refused");
                    assert!(
                        matches!(err, ff_worktree::Error::WouldLoseWork { .. }),
                        "{err}"
                    );
                }
                _ => {
                    let cleaned = m
                        .cleanup_worktree(ISSUE, Cleanup::Force)
                        .await
                        .expect("forced cleanup");
                    assert!(cleaned.archived_at.is_some());
                }
            }
            assert_agent_work_kept(&repo, &wt, &agent);
            let admin = Path::new(&wt.path).join(".git");
            if admin.exists() {
                let dir = git_in(&wt.path, &["rev-parse", "--absolute-git-dir"]);
                assert!(
                    !Path::new(&dir).join("rebase-merge").exists(),
                    "{settle}: the rebase was not settled"
                );
            }
            crate::common::assert_consistent(&repo, &m).await;
        });
    }
}

/// The same dead sync, with an agent's empty repository in a folder beside
/// its edit: `git add` refuses that folder, so no whole snapshot can be
/// made. The next sync or recover still settles the rebase, keeping the
/// agent's commit and edit (the tracked changes are snapshot alone), and
/// the folder stays where it was (the abort leaves untracked files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sync_is_settled_beside_files_git_cannot_snapshot() {
    for settle in ["sync", "recover"] {
        let repo = TestRepo::new();
        let backend = Backend::files_of(&repo);
        let path = repo.path().to_string_lossy().into_owned();
        with_manager!(&backend, &path, "sync", |m| {
            let (wt, agent) = crashed_sync_with_agent_work(&repo, &backend, &m).await;
            let _ = git_in(&wt.path, &["init", "-q", "nested"]);
            if settle == "sync" {
                // Refused afterwards for the untracked folder, or done:
                // either way the dead rebase is settled first.
                let _ = m.sync_worktree(ISSUE, SyncOptions::default()).await;
            } else {
                m.recover(Recover::Repair).await.expect("recover");
            }
            assert_agent_work_kept(&repo, &wt, &agent);
            let dir = git_in(&wt.path, &["rev-parse", "--absolute-git-dir"]);
            assert!(
                !Path::new(&dir).join("rebase-merge").exists(),
                "{settle}: the rebase was not settled"
            );
            assert!(
                wt.path.join("nested/.git").exists(),
                "{settle}: the folder is gone"
            );
        });
    }
}

/// The worktree of a create killed once it checked it out: the only one
/// git has registered besides the main one.
fn dead_create(repo: &TestRepo, backend: &Backend) -> std::path::PathBuf {
    assert!(
        crash_at("create.checked_out", repo, backend),
        "the create did not crash"
    );
    let listed = git_in(repo.path(), &["worktree", "list", "--porcelain"]);
    let mut paths = listed
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .skip(1);
    let path = paths.next().expect("a worktree besides the main one");
    assert!(paths.next().is_none(), "{listed}");
    std::path::PathBuf::from(path)
}

/// A create dies once its worktree is checked out; an agent at the
/// issue's path (a worktree of the issue from before had the same path
/// and branch) commits there and leaves a file. The next create undoes the
/// dead attempt, and that work survives: the commit on the branch and the
/// file, under `refs/ff/archive/<id>` (and a commit alone, with no file
/// beside it, as well). A dead attempt nobody touched is undone leaving no
/// archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_found_in_a_dead_creates_worktree_is_kept_when_it_is_undone() {
    // (committed, left a file)
    for (touched, draft) in [(true, true), (true, false), (false, false)] {
        let repo = TestRepo::new();
        let backend = Backend::files_of(&repo);
        let path = repo.path().to_string_lossy().into_owned();
        with_manager!(&backend, &path, "create", |m| {
            let dead = dead_create(&repo, &backend);
            let mut agent = None;
            if touched {
                commit_file(
                    &dead,
                    "agent.txt",
                    "agent\n",
                    "made in a dead create's worktree",
                );
                agent = Some(git_in(&dead, &["rev-parse", "HEAD"]));
            }
            if draft {
                std::fs::write(dead.join("draft.txt"), "draft\n").expect("draft");
            }
            m.create_worktree(ISSUE).await.expect("create");
            // The dead attempt's id: its directory's name.
            let id = dead.file_name().expect("name").to_string_lossy();
            let archive = format!("refs/ff/archive/{id}");
            let archived = ff_testkit::git::git_output(
                repo.path(),
                &["rev-parse", "--verify", "-q", &archive],
            );
            if let Some(agent) = agent {
                assert!(
                    archived.status.success(),
                    "no archive: the work is gone; refs: {}",
                    git_in(repo.path(), &["for-each-ref"])
                );
                let reachable = git_in(repo.path(), &["rev-list", "--all"]);
                assert!(
                    reachable.lines().any(|c| c == agent),
                    "the agent's commit {agent} is lost"
                );
                if draft {
                    let kept = git_in(repo.path(), &["show", &format!("{archive}:draft.txt")]);
                    assert_eq!(kept, "draft", "the agent's file is lost");
                }
            } else {
                assert!(
                    !archived.status.success(),
                    "an archive was made of an attempt nobody touched"
                );
            }
            crate::common::assert_consistent(&repo, &m).await;
        });
    }
}

/// What git cannot snapshot (here an empty repository inside, which
/// `git add` refuses) does not stop the next create: the dead attempt's
/// directory is set aside whole, with the agent's file, and the create
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_creates_worktree_git_cannot_snapshot_is_set_aside() {
    let repo = TestRepo::new();
    let backend = Backend::files_of(&repo);
    let path = repo.path().to_string_lossy().into_owned();
    with_manager!(&backend, &path, "create", |m| {
        let dead = dead_create(&repo, &backend);
        let _ = git_in(&dead, &["init", "-q", "nested"]);
        std::fs::write(dead.join("draft.txt"), "draft\n").expect("draft");
        let created = m.create_worktree(ISSUE).await.expect("create");
        let kept_dir = created
            .worktree
            .path
            .parent()
            .expect("base")
            .join(".ff-kept");
        let kept: Vec<_> = std::fs::read_dir(&kept_dir)
            .expect("a directory was set aside")
            .flatten()
            .filter(|e| e.path().join("draft.txt").exists())
            .collect();
        assert_eq!(kept.len(), 1, "the agent's file was not kept");
        crate::common::assert_consistent(&repo, &m).await;
    });
}

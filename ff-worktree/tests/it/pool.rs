//! The warm pool: worktrees made and prepared ahead of time, handed out to
//! creates exactly once, across processes and across clones sharing Redis.

#![allow(clippy::print_stdout)] // the children report on stdout

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::hooks::Hooks;
use ff_worktree::{Cleanup, WorktreeConfig, WorktreeManager};

use crate::common::{assert_consistent, manager, open};
use crate::multi_server::now_ms;

/// What the pool's preparation writes: the pool worktree's own id, so a
/// test can tell which one an issue got.
const MARKER: &str = "prepared.txt";

fn config(repo: &Path, size: usize) -> WorktreeConfig {
    let mut hooks = Hooks::default();
    hooks.pool_prepare = vec![format!("echo \"$FF_WORKTREE_ID\" > {MARKER}")];
    WorktreeConfig::new(repo)
        .with_hooks(hooks)
        .with_pool_size(size)
        .with_lock_timeout(Duration::from_secs(30))
}

/// A repository whose worktrees ignore the marker.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    ff_testkit::git::exclude(repo.path(), MARKER);
    repo
}

fn marker(wt: &Path) -> String {
    std::fs::read_to_string(wt.join(MARKER))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_takes_a_prepared_pool_worktree_under_the_issues_names() {
    let repo = repo();
    let m = manager(&repo, config(repo.path(), 2)).await;
    let fill = m.fill_pool().await.expect("fill");
    assert_eq!(fill.made.len(), 2, "{fill:?}");
    let pool = m.pool_status().await.expect("status");
    assert_eq!(pool.len(), 2);
    assert!(pool.iter().all(|e| e.ready && marker(&e.path) == e.id));
    assert_consistent(&repo, &m).await;

    let created = m.create_worktree("PROJ-1").await.expect("create");
    let wt = &created.worktree;
    let entry = created.from_pool.clone().expect("taken from the pool");
    assert_eq!(marker(&wt.path), entry, "the prepared files came with it");
    assert_eq!(
        wt.path,
        m.base_path().join(&wt.id),
        "at the path ff's naming gives the issue"
    );
    assert_eq!(
        git_in(&wt.path, &["symbolic-ref", "--short", "HEAD"]),
        wt.branch,
        "on the issue's branch"
    );
    assert_eq!(git_in(&wt.path, &["status", "--porcelain"]), "", "clean");
    assert_eq!(m.pool_status().await.expect("status").len(), 1);
    assert_consistent(&repo, &m).await;

    // A worktree from the pool is like any other: an unforced cleanup
    // finds nothing to lose, and the pool is refilled.
    m.cleanup_worktree("PROJ-1", Cleanup::Safe)
        .await
        .expect("cleanup");
    let fill = m.fill_pool().await.expect("refill");
    assert_eq!(fill.made.len(), 1);
    assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_moved_is_reflected_in_the_claimed_worktree() {
    let repo = repo();
    let m = manager(&repo, config(repo.path(), 1)).await;
    m.fill_pool().await.expect("fill");
    let made_at = m.pool_status().await.expect("status")[0]
        .base_commit
        .clone();
    commit_file(repo.path(), "later.txt", "later\n", "the base moves on");
    let tip = git_in(repo.path(), &["rev-parse", "HEAD"]);
    assert_ne!(made_at, tip);
    let created = m.create_worktree("2").await.expect("create");
    let wt = &created.worktree;
    assert!(created.from_pool.is_some());
    assert_eq!(git_in(&wt.path, &["rev-parse", "HEAD"]), tip);
    assert_eq!(wt.base_commit, tip);
    assert!(wt.path.join("later.txt").is_file(), "the base's new file");
    assert_eq!(marker(&wt.path), created.from_pool.expect("pool"));
    assert_eq!(git_in(&wt.path, &["status", "--porcelain"]), "", "clean");
    assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_counts_apart_from_max_worktrees_and_drains() {
    let repo = repo();
    let m = manager(&repo, config(repo.path(), 3).with_max_worktrees(1)).await;
    m.fill_pool().await.expect("fill");
    assert_eq!(m.pool_status().await.expect("status").len(), 3);
    m.create_worktree("1")
        .await
        .expect("a create within the limit");
    let refused = m
        .create_worktree("2")
        .await
        .expect_err("past max_worktrees");
    assert!(
        matches!(refused, ff_worktree::Error::LimitReached { .. }),
        "{refused}"
    );
    assert_eq!(
        m.pool_status().await.expect("status").len(),
        2,
        "the refused create took nothing from the pool"
    );
    let drained = m.drain_pool().await.expect("drain");
    assert_eq!(drained.removed.len(), 2);
    assert!(m.pool_status().await.expect("status").is_empty());
    m.finish_deletions().expect("deletions");
    assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pool_prepare_leaves_nothing() {
    let repo = repo();
    let mut hooks = Hooks::default();
    hooks.pool_prepare = vec!["echo half > half.txt; exit 3".into()];
    let m = manager(
        &repo,
        WorktreeConfig::new(repo.path())
            .with_hooks(hooks)
            .with_pool_size(1),
    )
    .await;
    let failed = m.fill_pool().await.expect_err("the hook fails");
    assert!(
        matches!(failed, ff_worktree::Error::HookFailed { .. }),
        "{failed}"
    );
    assert!(m.pool_status().await.expect("status").is_empty());
    m.finish_deletions().expect("deletions");
    assert_consistent(&repo, &m).await;
    // With no pool worktree, a create makes one as before.
    let created = m.create_worktree("3").await.expect("create");
    assert!(created.from_pool.is_none());
}

/// Runs `f` with the manager `backend` names: a state directory (file
/// locks + SQLite), or a Redis URL and key prefix.
async fn redis_manager(
    clone: &Path,
    url: &str,
    prefix: &str,
    size: usize,
) -> WorktreeManager<RedisLockProvider, RedisStore> {
    let locks =
        RedisLockProvider::connect(RedisLockConfig::new(url).with_prefix(format!("{prefix}lock:")))
            .await
            .expect("locks");
    let store =
        RedisStore::connect(RedisStoreConfig::new(url).with_prefix(format!("{prefix}rec:")))
            .await
            .expect("store");
    WorktreeManager::open(config(clone, size), locks, store)
        .await
        .expect("open")
}

async fn create_all<L: LockProvider, S: IdempotencyStorage>(
    m: &WorktreeManager<L, S>,
    start: u128,
    issues: &str,
) {
    while now_ms() < start {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let creates = issues.split(',').map(|issue| m.create_worktree(issue));
    for created in futures_util::future::join_all(creates).await {
        let c = created.expect("create");
        println!(
            "claimed {} {} {}",
            c.worktree.issue,
            c.from_pool.as_deref().unwrap_or("-"),
            marker(&c.worktree.path)
        );
    }
}

/// Child: `role` = [clone, state dir | url, prefix, start ms, issues];
/// creates the issues (comma-separated) at the start instant and prints
/// `claimed ISSUE POOL-ENTRY MARKER` for each.
#[test]
fn pool_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    ff_testkit::runtime().block_on(async {
        let clone = Path::new(&role[0]);
        let start: u128 = role[3].parse().expect("start");
        if role[1].starts_with("redis") {
            let m = redis_manager(clone, &role[1], &role[2], 4).await;
            create_all(&m, start, &role[4]).await;
        } else {
            let m = open(Path::new(&role[1]), config(clone, 8)).await;
            create_all(&m, start, &role[4]).await;
        }
    });
}

/// `claimed` lines of the children: issue -> (pool entry, marker).
fn claims(children: Vec<std::process::Child>) -> BTreeMap<String, (String, String)> {
    let mut claims = BTreeMap::new();
    for mut c in children {
        let out = c.stdout.take().expect("stdout");
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("claimed ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                claims.insert(
                    parts[0].to_owned(),
                    (
                        parts[1].to_owned(),
                        parts.get(2).copied().unwrap_or("").to_owned(),
                    ),
                );
            }
        }
        assert!(c.wait().expect("wait").success(), "a child failed");
    }
    claims
}

/// Eight processes create eight issues at one instant with eight pool
/// worktrees ready: each gets one, and no two the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_claim_at_once_and_none_shares_one() {
    let repo = repo();
    let state = repo.scratch("state");
    let m = open(&state, config(repo.path(), 8)).await;
    m.fill_pool().await.expect("fill");
    let pool: BTreeSet<String> = m
        .pool_status()
        .await
        .expect("status")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(pool.len(), 8);
    let start = (now_ms() + 1_500).to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            ff_testkit::spawn_self(
                &ff_testkit::test_entry!("pool_child"),
                &[
                    &repo.path().to_string_lossy(),
                    &state.to_string_lossy(),
                    "-",
                    &start,
                    &format!("P-{i}"),
                ],
            )
        })
        .collect();
    let claims = claims(children);
    assert_eq!(claims.len(), 8, "{claims:?}");
    let got: BTreeSet<String> = claims.values().map(|(e, _)| e.clone()).collect();
    assert_eq!(
        got, pool,
        "each pool worktree went to one issue: {claims:?}"
    );
    for (entry, marker) in claims.values() {
        assert_eq!(entry, marker, "the files prepared in it came with it");
    }
    assert!(m.pool_status().await.expect("status").is_empty());
    assert_consistent(&repo, &m).await;
}

/// Two clones share one Redis for locks and records; each has a pool of
/// four and creates four issues at the same instant: every issue gets a
/// pool worktree of its own clone, never the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clones_sharing_redis_never_claim_each_others_pool_worktrees() {
    let Some(redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let (repo, other, prefix) = crate::multi_server::two_servers();
    ff_testkit::git::exclude(repo.path(), MARKER);
    ff_testkit::git::exclude(&other, MARKER);
    let mut pools: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for clone in [repo.path(), other.as_path()] {
        let m = redis_manager(clone, &url, &prefix, 4).await;
        m.fill_pool().await.expect("fill");
        let ids = m
            .pool_status()
            .await
            .expect("status")
            .into_iter()
            .map(|e| e.id)
            .collect::<BTreeSet<_>>();
        assert_eq!(ids.len(), 4, "each clone sees its own pool alone");
        pools.insert(clone.to_string_lossy().into_owned(), ids);
    }
    let start = (now_ms() + 1_500).to_string();
    let children: Vec<_> = [
        (repo.path(), "a0,a1,a2,a3"),
        (other.as_path(), "b0,b1,b2,b3"),
    ]
    .iter()
    .map(|(clone, issues)| {
        ff_testkit::spawn_self(
            &ff_testkit::test_entry!("pool_child"),
            &[&clone.to_string_lossy(), &url, &prefix, &start, issues],
        )
    })
    .collect();
    let claims = claims(children);
    assert_eq!(claims.len(), 8, "{claims:?}");
    let own = |issue: &str| {
        let clone = if issue.starts_with('a') {
            repo.path().to_string_lossy().into_owned()
        } else {
            other.to_string_lossy().into_owned()
        };
        pools[&clone].clone()
    };
    for (issue, (entry, marker)) in &claims {
        assert!(
            own(issue).contains(entry),
            "{issue} got {entry}, not a pool worktree of its own clone: {claims:?}"
        );
        assert_eq!(entry, marker);
    }
    let distinct: BTreeSet<&String> = claims.values().map(|(e, _)| e).collect();
    assert_eq!(distinct.len(), 8);
}

/// Child: `role` = [repo, state dir, what]; `fill` fills a pool of two,
/// `create` creates issue 9 (taking a pool worktree); aborting where
/// `FF_CRASH_AT` says.
#[test]
fn pool_crash_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    ff_testkit::runtime().block_on(async {
        let m = open(Path::new(&role[1]), config(Path::new(&role[0]), 2)).await;
        match role[2].as_str() {
            "fill" => drop(m.fill_pool().await),
            _ => drop(m.create_worktree("9").await),
        }
    });
}

/// Runs `what` in a child aborting at `point`.
#[cfg(all(unix, feature = "crash-points"))]
fn crash(repo: &TestRepo, state: &Path, what: &str, point: &str) {
    let out = ff_testkit::spawn_self_with_env(
        &ff_testkit::test_entry!("pool_crash_child"),
        &[
            &repo.path().to_string_lossy(),
            &state.to_string_lossy(),
            what,
        ],
        &[("FF_CRASH_AT", point)],
    )
    .wait_with_output()
    .expect("child");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(rustix::process::Signal::ABORT.as_raw()),
        "{point} not reached"
    );
}

/// `recover` settles what a fill killed mid-checkout and a create killed
/// just after it took a pool worktree's record left (the pool worktree
/// half-made; one no record names), as its dry run foresaw.
#[cfg(all(unix, feature = "crash-points"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_settles_what_dead_fills_and_claims_left() {
    let repo = repo();
    let state = repo.scratch("state");
    let m = open(&state, config(repo.path(), 2)).await;
    crash(&repo, &state, "fill", "pool_fill.checked_out");
    let left = m.pool_status().await.expect("status");
    assert!(
        left.iter().any(|e| !e.ready),
        "a half-made pool worktree: {left:?}"
    );
    let done = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let settled = |r: &ff_worktree::Recovery| {
        r.repairs
            .iter()
            .filter(|x| x.kind == ff_worktree::RepairKind::SettledPoolWorktree)
            .count()
    };
    assert_eq!(settled(&done), 1, "{done:#?}");
    m.finish_deletions().expect("deletions");
    assert_consistent(&repo, &m).await;

    m.fill_pool().await.expect("fill");
    crash(&repo, &state, "create", "pool_claim.taken");
    let done = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert_eq!(
        settled(&done),
        1,
        "the pool worktree no record names: {done:#?}"
    );
    m.finish_deletions().expect("deletions");
    assert_consistent(&repo, &m).await;
    assert_eq!(m.pool_status().await.expect("status").len(), 1);
    let created = m.create_worktree("9").await.expect("create");
    assert!(created.from_pool.is_some());
    assert_consistent(&repo, &m).await;
}

/// Pool records are read from a store anyone with access may write: one
/// naming a directory that is not `<base>/.ff-pool-…` (a path elsewhere, a
/// name climbing out) is never handed out nor removed; the next fill
/// withdraws it and touches nothing it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_pool_record_names_nothing_anything_is_done_to() {
    use ff_traits::{IdempotencyKey, IdempotencyStorage};
    let repo = repo();
    let m = manager(&repo, config(repo.path(), 1)).await;
    m.fill_pool().await.expect("fill");
    let real = m.pool_status().await.expect("status").remove(0);
    let victim = repo.scratch("victim");
    std::fs::create_dir_all(victim.join(".git")).expect("victim");
    std::fs::write(victim.join("precious.txt"), "keep\n").expect("victim file");
    let forge = |id: &str, path: &Path| {
        let key = IdempotencyKey::new(
            "poolWorktree",
            serde_json::json!({"entry": id}),
            serde_json::json!({"repo": m.repo_key(), "location": real.location}),
        );
        crate::common::completed_record(
            &key,
            serde_json::json!({
                "id": id, "path": path, "base": real.base, "base_commit": real.base_commit,
                "location": real.location, "since": 0, "ready": true,
            }),
        )
    };
    for (id, path) in [
        (".ff-pool-evil".to_owned(), victim.clone()),
        (
            "../../victim".to_owned(),
            m.base_path().join("../../victim"),
        ),
    ] {
        m.idempotency()
            .store()
            .create(forge(&id, &path))
            .await
            .expect("forge");
    }
    // Oldest first: the forged records (since 0) come before the real one,
    // and are passed over.
    let first = m.create_worktree("F-1").await.expect("create");
    assert_eq!(first.from_pool.as_deref(), Some(real.id.as_str()));
    let second = m.create_worktree("F-2").await.expect("create");
    assert!(second.from_pool.is_none(), "a forged record was handed out");
    let fill = m.fill_pool().await.expect("fill");
    assert_eq!(fill.settled.repairs.len(), 2, "{fill:?}");
    assert!(
        victim.join("precious.txt").is_file(),
        "the victim was touched"
    );
    assert!(victim.join(".git").is_dir());
    assert_consistent(&repo, &m).await;
}

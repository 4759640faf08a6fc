//! Two "servers": two processes, each with its own WorktreeManager on its
//! own clone, sharing one Redis (or one PostgreSQL) for locks and records,
//! race to create the same issue. Exactly one executes; the other gets the
//! completed result (the worktree, which lives in the first server's
//! clone) or a clear in-progress answer. Over a plain connection, over TLS
//! and through Sentinel; on PostgreSQL directly.

#![allow(clippy::print_stdout)] // the children report on stdout

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_postgres::PostgresStore;
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::git::{TestRepo, git_in};
use ff_testkit::postgres::PgServer;
use ff_testkit::redis::RedisServer;
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::{WorktreeConfig, WorktreeManager, WorktreeStatus};

pub(crate) fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

type Shared = WorktreeManager<Arc<dyn LockProvider>, Arc<dyn IdempotencyStorage>>;

/// A manager on the clone, with locks and records at `url` (Redis or
/// PostgreSQL), isolated by `prefix` (a key prefix, or a schema).
async fn manager(clone: &Path, url: &str, prefix: &str) -> Shared {
    let (locks, store): (Arc<dyn LockProvider>, Arc<dyn IdempotencyStorage>) =
        if url.starts_with("postgres://") {
            let schema: String = prefix
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let url = format!("{url}?schema={schema}");
            (
                Arc::new(
                    PostgresLockProvider::connect(PostgresLockConfig::new(&url))
                        .await
                        .expect("locks"),
                ),
                Arc::new(PostgresStore::open(&url).await.expect("store")),
            )
        } else {
            (
                Arc::new(
                    RedisLockProvider::connect(
                        RedisLockConfig::new(url).with_prefix(format!("{prefix}lock:")),
                    )
                    .await
                    .expect("locks"),
                ),
                Arc::new(
                    RedisStore::connect(
                        RedisStoreConfig::new(url).with_prefix(format!("{prefix}rec:")),
                    )
                    .await
                    .expect("store"),
                ),
            )
        };
    WorktreeManager::open(WorktreeConfig::new(clone), locks, store)
        .await
        .expect("open")
}

/// Child: `role` = [clone, url, prefix, start ms, what]; with `what` =
/// `one:ISSUE`, creates ISSUE at the start instant and prints `created`,
/// `reused <status>` or `error <kind>`; with issues, comma-separated,
/// creates those at once and prints `slot <n> <id>` for each.
#[test]
fn server_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    ff_testkit::runtime().block_on(async {
        let m = manager(Path::new(&role[0]), &role[1], &role[2]).await;
        let start: u128 = role[3].parse().expect("start");
        while now_ms() < start {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let what = role.get(4).expect("what to create");
        // `one:ISSUE`: one issue, raced; else distinct issues at once.
        if let Some(issue) = what.strip_prefix("one:") {
            match m.create_worktree(issue).await {
                Ok(c) if !c.reused => println!("created"),
                Ok(c) => println!("reused {:?}", c.worktree.status),
                Err(e) => println!("error {}", e.kind()),
            }
            return;
        }
        let creates = what.split(',').map(|issue| m.create_worktree(issue));
        for created in futures_util::future::join_all(creates).await {
            let w = created.expect("create").worktree;
            println!("slot {} {}", w.slot.expect("a slot"), w.id);
        }
    });
}

#[test]
fn two_servers_race_to_create_one_issue_and_one_executes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    race(&redis);
}

/// The same race over mutual TLS (`rediss://`, the test's own CA and a
/// client certificate), as managed Redis services require.
#[test]
fn two_servers_race_over_tls_and_one_executes() {
    let Some(redis) = RedisServer::start_tls(ff_testkit::redis::TlsSetup {
        require_client_certificate: true,
        ..Default::default()
    }) else {
        return;
    };
    race(&redis);
}

/// The same race through Redis Sentinel (a master, a replica, three
/// Sentinels).
#[test]
fn two_servers_race_through_sentinel_and_one_executes() {
    let Some(set) = ff_testkit::sentinel::SentinelSet::start() else {
        return;
    };
    race_at(&set.url());
}

/// The same race with locks and records on PostgreSQL.
#[test]
fn two_servers_race_on_postgres_and_one_executes() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    race_at(&pg.url());
}

fn race(redis: &RedisServer) {
    race_at(&redis.url());
}

/// A repository, a second clone of it (the other server's), and a key
/// prefix of their own in the shared Redis.
pub(crate) fn two_servers() -> (TestRepo, std::path::PathBuf, String) {
    let repo = TestRepo::new();
    let other = repo.scratch("server-b").join("clone");
    let _ = git_in(
        other.parent().expect("parent"),
        &["clone", "-q", &repo.path().to_string_lossy(), "clone"],
    );
    (
        repo,
        other,
        format!("test_{}_", ff_traits::identity::unique_id()),
    )
}

fn race_at(url: &str) {
    let (repo, other, prefix) = two_servers();
    for round in 0..3 {
        let issue_prefix = format!("{prefix}{round}_");
        let start = (now_ms() + 1_500).to_string();
        // An issue per round: each round's store (its own prefix) is
        // another store, and a worktree a store does not know is never
        // duplicated, so the same issue would be refused.
        let issue = format!("4{round}");
        let what = format!("one:{issue}");
        let children: Vec<_> = [repo.path(), other.as_path()]
            .iter()
            .map(|clone| {
                ff_testkit::spawn_self(
                    &ff_testkit::test_entry!("server_child"),
                    &[&clone.to_string_lossy(), url, &issue_prefix, &start, &what],
                )
            })
            .collect();
        let answers: Vec<String> = children
            .into_iter()
            .map(|mut c| {
                let out = c.stdout.take().expect("stdout");
                // Read to the end: the child keeps writing after its answer.
                let lines: Vec<String> =
                    BufReader::new(out).lines().map_while(Result::ok).collect();
                let line = lines
                    .into_iter()
                    .find(|l| {
                        l.starts_with("created")
                            || l.starts_with("reused")
                            || l.starts_with("error")
                    })
                    .expect("an answer");
                assert!(c.wait().expect("wait").success());
                line
            })
            .collect();
        let created = answers.iter().filter(|a| *a == "created").count();
        assert_eq!(created, 1, "round {round}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|a| a == "created" || a == "reused Elsewhere" || a == "error in_progress"),
            "round {round}: {answers:?}"
        );
        // One worktree in all: in the winner's clone, none in the other.
        let rt = ff_testkit::runtime();
        let (a, b) = rt.block_on(async {
            let a = manager(repo.path(), url, &issue_prefix).await;
            let b = manager(&other, url, &issue_prefix).await;
            let wa = a.get(&issue).await.expect("get").expect("recorded");
            let wb = b.get(&issue).await.expect("get").expect("recorded");
            assert_eq!(wa.id, wb.id, "both servers see the same worktree");
            (wa.status, wb.status)
        });
        let statuses = [a, b];
        assert!(statuses.contains(&WorktreeStatus::Active), "{statuses:?}");
        assert!(
            statuses.contains(&WorktreeStatus::Elsewhere),
            "{statuses:?}"
        );
        let in_a = repo.worktree_paths().len() - 1;
        let in_b = git_in(&other, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
            - 1;
        assert_eq!(
            in_a + in_b,
            round + 1,
            "round {round}: one more worktree in all"
        );
    }
}

/// Two servers (two clones, two processes) sharing one Redis create four
/// issues each at the same instant: eight worktrees, eight distinct slots,
/// and both servers see the same eight. Cleanup frees a slot, and the
/// next create takes it.
#[test]
fn two_servers_get_distinct_slots() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    distinct_slots(&redis.url());
}

/// The same on PostgreSQL.
#[test]
fn two_servers_get_distinct_slots_on_postgres() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    distinct_slots(&pg.url());
}

fn distinct_slots(url: &str) {
    let url = url.to_owned();
    let (repo, other, prefix) = two_servers();
    let start = (now_ms() + 1_500).to_string();
    let children: Vec<_> = [
        (repo.path(), "a0,a1,a2,a3"),
        (other.as_path(), "b0,b1,b2,b3"),
    ]
    .iter()
    .map(|(clone, issues)| {
        ff_testkit::spawn_self(
            &ff_testkit::test_entry!("server_child"),
            &[&clone.to_string_lossy(), &url, &prefix, &start, issues],
        )
    })
    .collect();
    let mut slots = std::collections::BTreeMap::new();
    for mut c in children {
        let out = c.stdout.take().expect("stdout");
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("slot ") {
                let (slot, id) = rest.split_once(' ').expect("slot and id");
                let slot: u32 = slot.parse().expect("a number");
                assert!(
                    slots.insert(slot, id.to_owned()).is_none(),
                    "slot {slot} handed out twice"
                );
            }
        }
        assert!(c.wait().expect("wait").success());
    }
    assert_eq!(
        slots.keys().copied().collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    ff_testkit::runtime().block_on(async {
        let a = manager(repo.path(), &url, &prefix).await;
        let b = manager(&other, &url, &prefix).await;
        assert_eq!(a.slots().await.expect("slots"), slots);
        assert_eq!(b.slots().await.expect("slots"), slots);
        let freed = a.get("a2").await.expect("get").expect("a2").slot;
        a.cleanup_worktree("a2", ff_worktree::Cleanup::Safe)
            .await
            .expect("cleanup");
        let next = b.create_worktree("b9").await.expect("create").worktree;
        assert_eq!(next.slot, freed, "the freed slot is the smallest free one");
    });
}

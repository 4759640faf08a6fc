//! Chaos: worker processes create, commit in, sync and clean up worktrees
//! of a few issues in one repository at random, while the harness SIGKILLs
//! random workers mid-operation and starts new ones. Afterwards `recover`
//! runs and every invariant is checked: one worktree per issue at most;
//! records, `git worktree list` and the base path agree; no branch of ours
//! without a worktree; no commit a worker made is lost (each is reachable
//! from a branch or an archive ref); `git fsck` clean; no lock held; no
//! record pending.
//!
//! A third of the workers make sparse worktrees. Every worker keeps a warm
//! pool of two: after each create it fills the pool (as `ff create`'s
//! background refill does), so fills and claims are killed midway too, and
//! the invariants cover the pool (records, git and the base path agree;
//! nothing half-made).
//!
//! It runs once per backend pair: file lock + SQLite, file lock + JSON,
//! Redis lock + Redis store (on a `redis-server` the test starts itself),
//! PostgreSQL lock + PostgreSQL store and file lock + PostgreSQL store (on
//! a cluster the test starts itself).
//! `FF_CHAOS_SECS` sets the run length per pair (default 60; CI runs the
//! default). Run longer:
//! `FF_CHAOS_SECS=600 cargo test -p ff-worktree --all-features --test it -- chaos:: --nocapture --test-threads 1`.

#![cfg(unix)] // SIGKILL
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use ff_lock_file::FileLockProvider;
use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_json::JsonStore;
use ff_store_postgres::PostgresStore;
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::git::{TestRepo, git_in, git_output};
use ff_testkit::postgres::PgServer;
use ff_testkit::redis::RedisServer;
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::{SyncOptions, WorktreeConfig, WorktreeManager};

const ISSUES: [&str; 5] = ["c1", "c2", "c3", "c4", "c5"];
/// Worker processes alive at once.
const WORKERS: usize = 4;
/// Seconds of chaos per backend pair unless `FF_CHAOS_SECS` says otherwise.
const DEFAULT_SECS: u64 = 60;

/// Whether this worker makes sparse worktrees (a third of them do, so
/// sparse and full creates, syncs and cleanups interleave and are killed
/// alike).
static SPARSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn config(repo: &str) -> WorktreeConfig {
    let config = WorktreeConfig::new(repo)
        .with_max_worktrees(ISSUES.len())
        .with_pool_size(2)
        .with_lock_timeout(Duration::from_secs(20));
    if SPARSE.load(std::sync::atomic::Ordering::Relaxed) {
        return config.with_checkout(ff_worktree::Checkout::sparse([]));
    }
    config
}

/// A tiny xorshift, seeded per worker: randomness without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

/// The backend pairs the chaos runs on.
#[derive(Clone, Copy, Debug)]
enum Pair {
    FileSqlite,
    FileJson,
    Redis,
    Postgres,
    FilePostgres,
}

impl Pair {
    fn name(self) -> &'static str {
        match self {
            Self::FileSqlite => "file+sqlite",
            Self::FileJson => "file+json",
            Self::Redis => "redis+redis",
            Self::Postgres => "postgres+postgres",
            Self::FilePostgres => "file+postgres",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "file+sqlite" => Self::FileSqlite,
            "file+json" => Self::FileJson,
            "postgres+postgres" => Self::Postgres,
            "file+postgres" => Self::FilePostgres,
            _ => Self::Redis,
        }
    }
}

/// Where a run keeps its state: a directory for the file backends, and for
/// a server the server's URL and a key prefix (a schema, on PostgreSQL) of
/// the run's own.
#[derive(Clone)]
struct Backend {
    pair: Pair,
    state: PathBuf,
    redis_url: String,
    prefix: String,
}

impl Backend {
    fn role(&self) -> [String; 4] {
        [
            self.pair.name().to_owned(),
            self.state.to_string_lossy().into_owned(),
            self.redis_url.clone(),
            self.prefix.clone(),
        ]
    }

    fn from_role(role: &[String]) -> Self {
        Self {
            pair: Pair::parse(&role[0]),
            state: PathBuf::from(&role[1]),
            redis_url: role[2].clone(),
            prefix: role[3].clone(),
        }
    }

    async fn redis(&self, repo: &str) -> WorktreeManager<RedisLockProvider, RedisStore> {
        let locks = RedisLockProvider::connect(
            // The default TTL (30 s): a SIGKILLed holder's lock is taken
            // over by the next waiter on this host, not waited out.
            RedisLockConfig::new(&self.redis_url).with_prefix(format!("{}lock:", self.prefix)),
        )
        .await
        .expect("redis locks");
        let store = RedisStore::connect(
            RedisStoreConfig::new(&self.redis_url).with_prefix(format!("{}rec:", self.prefix)),
        )
        .await
        .expect("redis store");
        WorktreeManager::open(config(repo), locks, store)
            .await
            .expect("open")
    }

    /// The PostgreSQL URL of the run's own schema.
    fn postgres_url(&self) -> String {
        format!("{}?schema={}", self.redis_url, self.prefix)
    }

    async fn postgres(&self, repo: &str) -> WorktreeManager<PostgresLockProvider, PostgresStore> {
        let url = self.postgres_url();
        let locks = PostgresLockProvider::connect(PostgresLockConfig::new(&url))
            .await
            .expect("postgres locks");
        let store = PostgresStore::open(&url).await.expect("postgres store");
        WorktreeManager::open(config(repo), locks, store)
            .await
            .expect("open")
    }

    async fn file_postgres(&self, repo: &str) -> WorktreeManager<FileLockProvider, PostgresStore> {
        let locks = FileLockProvider::new(self.state.join("locks"));
        let store = PostgresStore::open(&self.postgres_url())
            .await
            .expect("postgres store");
        WorktreeManager::open(config(repo), locks, store)
            .await
            .expect("open")
    }

    async fn file_json(&self, repo: &str) -> WorktreeManager<FileLockProvider, JsonStore> {
        let locks = FileLockProvider::new(self.state.join("locks"));
        let store = JsonStore::open(self.state.join("records")).expect("json store");
        WorktreeManager::open(config(repo), locks, store)
            .await
            .expect("open")
    }
}

/// Worker: `role` = [repo, commit log, seed, backend role…]. Loops forever
/// doing random operations; appends every commit it makes to the log
/// (after the commit, fsynced) so the harness can check none is lost.
#[test]
fn chaos_worker() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let (repo, log) = (role[0].clone(), PathBuf::from(&role[1]));
    let seed = role[2].parse::<u64>().expect("seed");
    SPARSE.store(seed % 3 == 0, std::sync::atomic::Ordering::Relaxed);
    let rng = Rng(seed | 1);
    let backend = Backend::from_role(&role[3..]);
    ff_testkit::runtime().block_on(async {
        match backend.pair {
            Pair::FileSqlite => {
                work(
                    crate::common::open(&backend.state, config(&repo)).await,
                    &log,
                    rng,
                )
                .await
            }
            Pair::FileJson => work(backend.file_json(&repo).await, &log, rng).await,
            Pair::Redis => work(backend.redis(&repo).await, &log, rng).await,
            Pair::Postgres => work(backend.postgres(&repo).await, &log, rng).await,
            Pair::FilePostgres => work(backend.file_postgres(&repo).await, &log, rng).await,
        }
    });
}

async fn work<L: LockProvider, S: IdempotencyStorage>(
    m: WorktreeManager<L, S>,
    log: &Path,
    mut rng: Rng,
) {
    // Workers live in process groups of their own (so a kill takes their
    // git too), so they would outlive a harness that died: stop when it has.
    let harness = rustix::process::getppid();
    while rustix::process::getppid() == harness {
        let issue = ISSUES[rng.next(ISSUES.len())];
        match rng.next(4) {
            0 | 1 => {
                if let Ok(c) = m.create_worktree(issue).await {
                    if c.from_pool.is_some() {
                        note(log, "pool");
                    }
                    // Work as an agent would: holding the issue, so no
                    // forced cleanup can interleave with the commit.
                    let Ok(guard) = m.lock_issue(issue).await else {
                        continue;
                    };
                    let wt = c.worktree;
                    let file = wt.path.join(format!("f{}.txt", rng.next(1_000_000)));
                    if wt.path.join(".git").exists()
                        && std::fs::write(&file, "work\n").is_ok()
                        && git_output(&wt.path, &["add", "-A"]).status.success()
                        && git_output(&wt.path, &["commit", "-q", "-m", "chaos"])
                            .status
                            .success()
                    {
                        let head = git_output(&wt.path, &["rev-parse", "HEAD"]);
                        let sha = String::from_utf8_lossy(&head.stdout).trim().to_owned();
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(log)
                            .expect("log");
                        // One write: an append this small lands whole
                        // (`writeln!` may split it, and a kill between
                        // the two halves would glue lines together).
                        let _ = f.write_all(format!("{sha}\n").as_bytes());
                        let _ = f.sync_all();
                    }
                    let _ = guard.release().await;
                    // The refill `ff create` starts in the background.
                    let _ = m.fill_pool().await;
                }
            }
            2 => {
                let _ = m
                    .sync_worktree(issue, SyncOptions::default().with_autostash(true))
                    .await;
            }
            _ => {
                let _ = m.cleanup_worktree(issue, ff_worktree::Cleanup::Force).await;
            }
        }
    }
}

/// Appends `line` to the log in one write (see the commit's).
fn note(log: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

fn spawn_worker(repo: &TestRepo, log: &Path, seed: u64, backend: &Backend) -> Child {
    let repo = repo.path().to_string_lossy();
    let log = log.to_string_lossy();
    let seed = seed.to_string();
    let backend = backend.role();
    let mut role: Vec<&str> = vec![&repo, &log, &seed];
    role.extend(backend.iter().map(String::as_str));
    ff_testkit::spawn_self_in_group(&ff_testkit::test_entry!("chaos_worker"), &role)
}

fn kill(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
}

fn chaos_secs() -> u64 {
    std::env::var("FF_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS)
}

/// Runs the workers for `FF_CHAOS_SECS`, killing one at random every
/// 150–500 ms; returns how many kills there were.
fn unleash(repo: &TestRepo, log: &Path, backend: &Backend) -> usize {
    let secs = chaos_secs();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next_seed = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        seed
    };
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|_| spawn_worker(repo, log, next_seed(), backend))
        .collect();
    let mut kills = 0;
    let started = Instant::now();
    let mut pick = Rng(next_seed());
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(150 + pick.next(350) as u64));
        let i = pick.next(workers.len());
        kill(&mut workers[i]);
        kills += 1;
        workers[i] = spawn_worker(repo, log, next_seed(), backend);
    }
    for w in &mut workers {
        kill(w);
    }
    kills
}

/// After the kills: `recover`, then every invariant, and every commit a
/// worker logged still reachable from a ref.
async fn check<L: LockProvider, S: IdempotencyStorage>(
    pair: Pair,
    kills: usize,
    repo: &TestRepo,
    log: &Path,
    m: &WorktreeManager<L, S>,
) {
    let report = m
        .recover(ff_worktree::Recover::Repair)
        .await
        .expect("recover");
    let again = m
        .recover(ff_worktree::Recover::Repair)
        .await
        .expect("recover again");
    assert!(
        again.repairs.is_empty(),
        "{}: a second recover still found {again:?}",
        pair.name()
    );
    // Shown when a check below fails (the harness keeps it otherwise).
    println!("{}: recover repaired {:#?}", pair.name(), report.repairs);
    crate::common::assert_consistent(repo, m).await;
    let commits = std::fs::read_to_string(log).unwrap_or_default();
    let reachable = reachable_from_refs(repo);
    let lost: Vec<&str> = commits
        .lines()
        .filter(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter(|sha| !reachable.contains(*sha))
        .collect();
    let made = commits
        .lines()
        .filter(|l| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .count();
    let from_pool = commits.lines().filter(|l| *l == "pool").count();
    // The first sparse create turns on per-worktree configuration.
    let sparse_ran = git_output(repo.path(), &["config", "extensions.worktreeConfig"]);
    let sparse_ran = String::from_utf8_lossy(&sparse_ran.stdout).trim() == "true";
    println!(
        "chaos {}: {kills} kills in {} s survived; recover made {} repairs; \
         {} commits made ({:.0} a minute), {} lost; 0 invariant violations; sparse \
         worktrees made: {}; creates from the warm pool: {from_pool}",
        pair.name(),
        chaos_secs(),
        report.repairs.len(),
        made,
        made as f64 * 60.0 / chaos_secs() as f64,
        lost.len(),
        if sparse_ran { "yes" } else { "no" }
    );
    assert!(
        from_pool > 0,
        "{}: no create took a pool worktree",
        pair.name()
    );
    assert!(lost.is_empty(), "{}: commits lost: {lost:?}", pair.name());
    assert!(kills > 0);
}

/// Every commit reachable from a ref (branches, archive refs, any other),
/// in one walk: `for-each-ref --contains` per commit takes minutes on a
/// long run's thousands of commits.
fn reachable_from_refs(repo: &TestRepo) -> std::collections::HashSet<String> {
    let tips = git_in(repo.path(), &["for-each-ref", "--format=%(objectname)"]);
    let mut child = std::process::Command::new("git")
        .args(["rev-list", "--stdin"])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git rev-list");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{tips}\n").as_bytes())
        .expect("write tips");
    let out = child.wait_with_output().expect("rev-list");
    assert!(out.status.success(), "git rev-list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sets up a repository and state for `pair`, runs the chaos, then checks.
async fn run(pair: Pair, redis_url: String) {
    let repo = TestRepo::new();
    let log = repo.scratch("log").join("commits");
    let backend = Backend {
        pair,
        state: repo.scratch("state"),
        redis_url,
        prefix: format!("chaos_{}", ff_traits::identity::unique_id().to_lowercase()),
    };
    let path = repo.path().to_string_lossy().into_owned();
    // Open once so the base path and state exist before the workers race.
    match pair {
        Pair::FileSqlite => drop(crate::common::open(&backend.state, config(&path)).await),
        Pair::FileJson => drop(backend.file_json(&path).await),
        Pair::Redis => drop(backend.redis(&path).await),
        Pair::Postgres => drop(backend.postgres(&path).await),
        Pair::FilePostgres => drop(backend.file_postgres(&path).await),
    }
    let kills = {
        let (repo_ref, log_ref, backend_ref) = (&repo, &log, &backend);
        tokio::task::block_in_place(|| unleash(repo_ref, log_ref, backend_ref))
    };
    match pair {
        Pair::FileSqlite => {
            let m = crate::common::open(&backend.state, config(&path)).await;
            check(pair, kills, &repo, &log, &m).await;
        }
        Pair::FileJson => check(pair, kills, &repo, &log, &backend.file_json(&path).await).await,
        Pair::Redis => check(pair, kills, &repo, &log, &backend.redis(&path).await).await,
        Pair::Postgres => check(pair, kills, &repo, &log, &backend.postgres(&path).await).await,
        Pair::FilePostgres => {
            check(
                pair,
                kills,
                &repo,
                &log,
                &backend.file_postgres(&path).await,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_file_lock_and_sqlite() {
    run(Pair::FileSqlite, String::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_file_lock_and_json() {
    run(Pair::FileJson, String::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_lock_and_redis_store() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    run(Pair::Redis, redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_postgres_lock_and_postgres_store() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    run(Pair::Postgres, pg.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_file_lock_and_postgres_store() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    run(Pair::FilePostgres, pg.url()).await;
}

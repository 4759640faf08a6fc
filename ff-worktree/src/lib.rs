//! # ff-worktree
//!
//! Per-issue git worktrees for many processes, and many servers, at once:
//! without corrupting git state, losing work, or doing an operation twice.
//!
//! [`WorktreeManager`] is generic over a [`LockProvider`](ff_traits::LockProvider)
//! and an [`IdempotencyStorage`](ff_traits::IdempotencyStorage); concrete
//! backends and `Arc<dyn …>` work alike. The backends are re-exported under
//! [`backends`], each behind a cargo feature:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `file-lock` (default) | `backends::file_lock` | cross-process file locks |
//! | `sqlite-store` (default) | `backends::sqlite` | SQLite records |
//! | `json-store` | `backends::json` | one JSON file per record |
//! | `redis` | `backends::redis` | Redis locks and records (multi-server) |
//! | `postgres` | `backends::postgres` | PostgreSQL locks and records (multi-server) |
//!
//! Each backend pair has a constructor and a type alias for its manager:
//!
//! | constructor | manager type | backends | feature(s) |
//! |---|---|---|---|
//! | [`open_embedded`] | `EmbeddedManager` | file locks + SQLite | `file-lock`, `sqlite-store` (default) |
//! | `open_json` | `JsonManager` | file locks + one JSON file per record | `file-lock`, `json-store` |
//! | `open_redis` | `RedisManager` | Redis locks + Redis records | `redis` |
//! | `open_postgres` | `PostgresManager` | PostgreSQL locks + PostgreSQL records | `postgres` |
//! | [`WorktreeManager::open`] | any | any `LockProvider` + `IdempotencyStorage` | |
//!
//! The local ones keep their state where the `ff` command does (see
//! [`StateDir`]), so a program and `ff` in one repository share records.
//!
//! The library runs on tokio and needs a runtime with IO and time enabled
//! (`#[tokio::main]`, or a `Builder` with `enable_all()`): git runs as
//! child processes under timeouts. Opening a manager elsewhere is a clear
//! [`InvalidInput`](ff_traits::Error::InvalidInput) error, not a panic.
//!
//! With the defaults, [`open_embedded`] needs nothing but a repository:
//!
//! ```no_run
//! # async fn demo() -> ff_worktree::Result<()> {
//! use ff_worktree::{Cleanup, SyncOptions, WorktreeConfig};
//!
//! let manager = ff_worktree::open_embedded(WorktreeConfig::new(".")).await?;
//! let created = manager.create_worktree("PROJ-123").await?;
//! println!("{} on branch {}", created.worktree.path.display(), created.worktree.branch);
//! manager.sync_worktree("PROJ-123", SyncOptions::default()).await?;
//! manager.cleanup_worktree("PROJ-123", Cleanup::Safe).await?;
//! # Ok(()) }
//! ```
//!
//! What each operation guarantees:
//!
//! * `create_worktree`: idempotent (an issue's existing worktree is
//!   returned) and atomic (a failed create leaves no directory,
//!   registration, branch or record, and a retry works at once);
//! * `sync_worktree`: fetch, then rebase or merge; a conflict leaves the
//!   worktree exactly as before and names the files;
//! * `cleanup_worktree`: refuses to lose uncommitted or unmerged work unless
//!   forced, and then keeps it under `refs/ff/archive/<id>`;
//! * `recover`: after crashes, puts records, git and the disk back in
//!   agreement, touching only what ForgeFlow made.
//!
//! What a new worktree gets besides its checkout:
//!
//! * a **slot**, the smallest number free among the repository's worktrees
//!   in every process and server sharing the store, and with
//!   [`WorktreeConfig::port_base`] a port (`Worktree::slot`,
//!   `Worktree::port`);
//! * the local files a `.worktreeinclude` names, and links for
//!   [`WorktreeConfig::symlinks`] ([`include`](mod@include));
//! * its `post_create` hook, run exactly once, and `pre_sync`, `post_sync`
//!   and `pre_cleanup` at those points ([`hooks`]).
//!
//! ## Coming from the original TypeScript API
//!
//! ForgeFlow began as a TypeScript design; its names map to these (errors
//! are values of [`Error`], matched by [`Error::kind`]):
//!
//! | original | here |
//! |---|---|
//! | `new WorktreeManager({basePath, maxWorktrees, cleanupOnError})` | [`WorktreeManager::open`] with [`WorktreeConfig`] (`with_base_path`, `with_max_worktrees`, `with_cleanup_on_error`), or [`open_embedded`] |
//! | `createWorktree(issueId)` | [`WorktreeManager::create_worktree`] (returns the [`Worktree`], not only its id) |
//! | `syncWorktree(id)` | [`WorktreeManager::sync_worktree`] |
//! | `cleanupWorktree(id)` | [`WorktreeManager::cleanup_worktree`]`(id, `[`Cleanup::Safe`]`)`; `Cleanup::Force` keeps the work under `refs/ff/archive/<id>` |
//! | `getLockStatus()` | [`WorktreeManager::lock_status`] |
//! | `getIdempotencyStats()` | [`WorktreeManager::idempotency_stats`] |
//! | `cleanupIdempotencyRecords(maxAge)`, `(0)` for all | [`WorktreeManager::cleanup_idempotency_records`]`(max_age)`, `Duration::ZERO` for every finished record (never an existing worktree's) |
//! | `forceReleaseAllLocks()` | [`WorktreeManager::force_release_all_locks`] |
//! | (startup sweep) | [`WorktreeManager::recover`]`(`[`Recover::Repair`]`)`, or `Recover::DryRun` to look first |
//! | `IdempotencyManager.shouldExecute / startOperation` | [`ff_idempotency::IdempotencyManager::start_operation`] (decides and claims in one conditional write; `should_execute` only looks) |
//! | `completeOperation / failOperation / rollbackOperation` | `complete_operation` / `fail_operation` / `rollback_operation`, or all of it in `execute` |
//! | `IdempotencyManager.getStats()`, `cleanup(maxAge)` | [`ff_idempotency::IdempotencyManager::stats`], `cleanup` |
//! | `new FileLock(path, operation, metadata).acquire({timeout, …})` | [`ff_traits::LockProvider::acquire`]`(&`[`ff_traits::LockName`]`, &LockOptions)` on a backend, giving an RAII [`ff_traits::LockGuard`] |
//! | `lock.getLockInfo()` | [`ff_traits::LockGuard::info`], or `LockProvider::locks` for anyone's |
//! | `LockTimeoutError` | [`ff_traits::Error::LockTimeout`] (kind `lock_timeout`), naming the holder |
//! | `IdempotencyError` | `InProgress`, `MaxAttemptsExceeded`, `BackoffNotElapsed`, `FailedPermanently` of [`ff_idempotency::Error`] ([`Error::Idempotency`] here); `Corrupt` of [`ff_traits::Error`] |
//!
//! Every operation on an issue holds that issue's lock and re-reads its
//! record inside it; `worktree add/remove` and `branch -D` run under one
//! lock per repository, held only around them. All git calls go through
//! [`git`]. `DESIGN.md` beside this crate has the reasoning.

#![forbid(unsafe_code)]

pub mod crash;
pub mod display;
mod error;
pub mod git;
pub mod hooks;
pub mod include;
mod issue;
pub mod lock_names;
mod manager;
pub mod metrics;
pub mod names;
mod paths;
pub mod private;
pub mod processes;
mod runtime;
mod sparse;

pub use error::{Error, ErrorKind, Result};
pub use ff_hierarchy;
pub use ff_idempotency;
pub use ff_metrics;
pub use ff_traits;
pub use issue::{IssueId, MAX_ISSUE_ID_LEN};
pub use manager::{
    AgentState, AgentStatus, Cleaned, Cleanup, Created, LimitPolicy, MAX_AGENT_NOTE_LEN,
    POOL_PREFIX, PoolDrain, PoolEntry, PoolFill, PruneAction, PruneOptions, Pruned, Recover,
    Recovery, Repair, RepairKind, SyncOptions, SyncStrategy, Synced, UnknownWorktree, WaitReport,
    Waiting, WorkingState, Worktree, WorktreeConfig, WorktreeManager, WorktreeStatus,
    awaiting_deletion, cleanup_records_without_repository, delete_removed_directory,
};
pub use names::{BranchTemplate, DEFAULT_BRANCH_TEMPLATE};
pub use processes::OnRunning;
pub use sparse::{Checkout, Sparse, SparseDir};

/// The backends compiled in, one module per cargo feature.
pub mod backends {
    #[cfg(feature = "file-lock")]
    pub use ff_lock_file as file_lock;
    /// Redis locks and records, shared by every server of a deployment.
    #[cfg(feature = "redis")]
    pub mod redis {
        pub use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
        pub use ff_redis::{Connection, Deployment, RedisUrl};
        pub use ff_store_redis::{RedisStore, RedisStoreConfig};
    }
    /// PostgreSQL locks and records, shared by every server of a deployment.
    #[cfg(feature = "postgres")]
    pub mod postgres {
        pub use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
        pub use ff_postgres::{Database, PostgresUrl, Settings};
        pub use ff_store_postgres::PostgresStore;
    }
    #[cfg(feature = "json-store")]
    pub use ff_store_json as json;
    #[cfg(feature = "sqlite-store")]
    pub use ff_store_sqlite as sqlite;
}

/// The manager on the embedded default backends: file locks and SQLite,
/// measured ([`ff_metrics::Instrumented`]).
#[cfg(all(feature = "file-lock", feature = "sqlite-store"))]
pub type EmbeddedManager = WorktreeManager<
    Instrumented<ff_lock_file::FileLockProvider>,
    Instrumented<ff_store_sqlite::SqliteStore>,
>;

/// The manager on file locks and one JSON file per record, measured.
#[cfg(all(feature = "file-lock", feature = "json-store"))]
pub type JsonManager = WorktreeManager<
    Instrumented<ff_lock_file::FileLockProvider>,
    Instrumented<ff_store_json::JsonStore>,
>;

/// The manager on PostgreSQL locks and records (several servers),
/// measured.
#[cfg(feature = "postgres")]
pub type PostgresManager = WorktreeManager<
    Instrumented<ff_lock_postgres::PostgresLockProvider>,
    Instrumented<ff_store_postgres::PostgresStore>,
>;

/// The manager on Redis locks and Redis records (several servers),
/// measured.
#[cfg(feature = "redis")]
pub type RedisManager = WorktreeManager<
    Instrumented<ff_lock_redis::RedisLockProvider>,
    Instrumented<ff_store_redis::RedisStore>,
>;

#[cfg(any(
    all(
        feature = "file-lock",
        any(feature = "sqlite-store", feature = "json-store")
    ),
    feature = "redis"
))]
use ff_metrics::Instrumented;

/// The manager for `at` on `locks` and `store`, each measured once (the
/// `open_*` constructors' one way in).
#[cfg(any(
    all(
        feature = "file-lock",
        any(feature = "sqlite-store", feature = "json-store")
    ),
    feature = "redis"
))]
async fn open_measured<L: ff_traits::LockProvider, S: ff_traits::IdempotencyStorage>(
    config: WorktreeConfig,
    at: Location,
    locks: L,
    store: S,
) -> Result<WorktreeManager<Instrumented<L>, Instrumented<S>>> {
    WorktreeManager::open_at(
        config,
        at,
        Instrumented::new(locks),
        Instrumented::new(store),
    )
    .await
}

/// The name of the default state directory inside git's common directory.
pub const STATE_DIR: &str = "ff";

/// Where the local backends keep their state, laid out the same for the
/// library and the `ff` command, so either sees the other's records. By
/// default it lives with the repository, in git's common directory, so
/// every call finds the same locks and records wherever it starts (the
/// main worktree, a subdirectory, a linked worktree) and whatever base
/// path it names:
///
/// ```text
/// <repository>/.git/ff/         the state directory (ff: --state-dir)
///   locks/                      file locks (one file per lock)
///   records.sqlite3             the SQLite store (and its -wal, -shm)
///   records/                    the JSON store (one file per record)
/// ```
///
/// ```
/// use std::path::Path;
/// let state = ff_worktree::StateDir::of_repository(Path::new("/repo/.git"));
/// assert_eq!(state.locks(), Path::new("/repo/.git/ff/locks"));
/// assert_eq!(state.sqlite(), Path::new("/repo/.git/ff/records.sqlite3"));
/// assert_eq!(state.json_records(), Path::new("/repo/.git/ff/records"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(std::path::PathBuf);

impl StateDir {
    /// A state directory at `root`.
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        Self(root.into())
    }

    /// The default state directory of the repository whose git common
    /// directory is `common_dir`: `<common_dir>/ff`.
    #[must_use]
    pub fn of_repository(common_dir: &std::path::Path) -> Self {
        Self(common_dir.join(STATE_DIR))
    }

    /// The directory itself.
    #[must_use]
    pub fn root(&self) -> &std::path::Path {
        &self.0
    }

    /// The file locks' directory: `locks/`.
    #[must_use]
    pub fn locks(&self) -> std::path::PathBuf {
        self.0.join("locks")
    }

    /// The SQLite store's database: `records.sqlite3`.
    #[must_use]
    pub fn sqlite(&self) -> std::path::PathBuf {
        self.0.join("records.sqlite3")
    }

    /// The JSON store's directory: `records/`.
    #[must_use]
    pub fn json_records(&self) -> std::path::PathBuf {
        self.0.join("records")
    }

    /// Hook output of `--json` runs: `hook-logs/`.
    #[must_use]
    pub fn hook_logs(&self) -> std::path::PathBuf {
        self.0.join("hook-logs")
    }

    /// Makes the directory ready to hold state: a private directory (0700,
    /// made so when an earlier release left it open), not a link, and no
    /// link at any name state lives under, so nothing is read or written
    /// through a link someone planted.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) naming a link or
    /// a file in the way; [`Backend`](ff_traits::Error::Backend) when the
    /// directory cannot be made.
    pub fn prepare(&self) -> Result<()> {
        let refused = |e: std::io::Error| -> Error {
            if e.kind() == std::io::ErrorKind::InvalidInput {
                Error::invalid_input("state dir", e.to_string())
            } else {
                Error::io(
                    "state dir",
                    &format!("cannot prepare {}", display::escape_path(&self.0)),
                    &e,
                )
            }
        };
        private::ensure_private_dir(&self.0).map_err(refused)?;
        let sqlite = self.sqlite();
        let entries = [
            self.locks(),
            self.json_records(),
            self.hook_logs(),
            self.0.join("repository-key"),
            sqlite.with_extension("sqlite3-wal"),
            sqlite.with_extension("sqlite3-shm"),
            sqlite.with_extension("sqlite3-journal"),
            sqlite,
        ];
        for entry in &entries {
            private::refuse_link(entry).map_err(refused)?;
        }
        Ok(())
    }
}

/// Where a configuration's repository, worktrees and state are: the same
/// wherever in the repository the configuration's directory is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Location {
    /// Where worktrees go (canonical; created).
    pub base_path: std::path::PathBuf,
    /// Where the local backends keep their state.
    pub state: StateDir,
    /// The repository as discovered, and git in it: what
    /// [`WorktreeManager::open_at`] starts from.
    git: git::Git,
    info: git::RepoInfo,
}

impl Location {
    /// The top of the repository's main worktree.
    #[must_use]
    pub fn repository(&self) -> &std::path::Path {
        &self.info.toplevel
    }

    /// Git's common directory (`<repository>/.git` usually).
    #[must_use]
    pub fn common_dir(&self) -> &std::path::Path {
        &self.info.common_dir
    }

    /// What the manager keeps of it.
    pub(crate) fn into_parts(self) -> (git::Git, git::RepoInfo, std::path::PathBuf) {
        (self.git, self.info, self.base_path)
    }
}

/// Resolves `config`: the repository through git's common directory, the
/// base path (default `<repository>/.ff-worktrees`, checked and created),
/// the state directory ([`WorktreeConfig::state_dir`], else
/// [`StateDir::of_repository`]).
///
/// # Errors
/// As [`WorktreeManager::open`].
pub async fn locate(config: &WorktreeConfig) -> Result<Location> {
    located(config, None).await
}

/// As [`locate`], with the repository the caller already discovered from
/// `config.repo` ([`git::Git::repository`]), which is not looked for
/// again: a program resolves its repository once per run.
///
/// # Errors
/// As [`WorktreeManager::open`].
pub async fn locate_discovered(
    config: &WorktreeConfig,
    discovered: git::RepoInfo,
) -> Result<Location> {
    located(config, Some(discovered)).await
}

async fn located(config: &WorktreeConfig, discovered: Option<git::RepoInfo>) -> Result<Location> {
    let (git, info, base_path) = manager::resolve(config, discovered).await?;
    let state = config
        .state_dir
        .clone()
        .map_or_else(|| StateDir::of_repository(&info.common_dir), StateDir::new);
    Ok(Location {
        base_path,
        state,
        git,
        info,
    })
}

/// Opens a manager on the embedded default: file locks and a SQLite store
/// in the [`StateDir`] (by default `<repository>/.git/ff`). No server needed;
/// the `ff` command run in the same repository sees the same records.
///
/// ```no_run
/// # async fn demo() -> ff_worktree::Result<()> {
/// let manager = ff_worktree::open_embedded(ff_worktree::WorktreeConfig::new(".")).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`WorktreeManager::open`], and a contract
/// [`Backend`](ff_traits::Error::Backend) error when the store cannot be
/// opened ([`Corrupt`](ff_traits::Error::Corrupt) when it is damaged).
#[cfg(all(feature = "file-lock", feature = "sqlite-store"))]
pub async fn open_embedded(config: WorktreeConfig) -> Result<EmbeddedManager> {
    open_local(config, |state| {
        ff_store_sqlite::SqliteStore::open(state.sqlite())
    })
    .await
}

/// A manager on file locks and the store `open` makes in the state
/// directory, both measured.
#[cfg(all(
    feature = "file-lock",
    any(feature = "sqlite-store", feature = "json-store")
))]
async fn open_local<S: ff_traits::IdempotencyStorage>(
    config: WorktreeConfig,
    open: impl FnOnce(&StateDir) -> ff_traits::Result<S>,
) -> Result<WorktreeManager<Instrumented<ff_lock_file::FileLockProvider>, Instrumented<S>>> {
    let at = locate(&config).await?;
    at.state.prepare()?;
    let locks = ff_lock_file::FileLockProvider::new(at.state.locks());
    let store = open(&at.state)?;
    open_measured(config, at, locks, store).await
}

/// Opens a manager on file locks and the JSON store (one readable file per
/// record) in the [`StateDir`]; what `ff --store json` uses.
///
/// ```no_run
/// # async fn demo() -> ff_worktree::Result<()> {
/// // Cargo.toml: ff-worktree = { version = "0.1", features = ["json-store"] }
/// let manager = ff_worktree::open_json(ff_worktree::WorktreeConfig::new(".")).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`open_embedded`].
#[cfg(all(feature = "file-lock", feature = "json-store"))]
pub async fn open_json(config: WorktreeConfig) -> Result<JsonManager> {
    open_local(config, |state| {
        ff_store_json::JsonStore::open(state.json_records())
    })
    .await
}

/// Opens a manager on Redis locks and Redis records at `url`
/// (`redis://[USER:PASSWORD@]HOST:PORT[/DB]`), for several servers that
/// share one Redis; what `ff --lock URL --store URL` uses.
///
/// # Errors
/// As [`WorktreeManager::open`], and a contract
/// [`Backend`](ff_traits::Error::Backend) error when Redis cannot be
/// reached.
#[cfg(feature = "redis")]
pub async fn open_redis(config: WorktreeConfig, url: &str) -> Result<RedisManager> {
    let at = locate(&config).await?;
    let locks =
        ff_lock_redis::RedisLockProvider::connect(ff_lock_redis::RedisLockConfig::new(url)).await?;
    let store =
        ff_store_redis::RedisStore::connect(ff_store_redis::RedisStoreConfig::new(url)).await?;
    open_measured(config, at, locks, store).await
}

/// Opens a manager on PostgreSQL locks and records at `url`
/// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]`, see
/// [`backends::postgres::PostgresUrl`]), for several servers that share
/// one database; what `ff --lock URL --store URL` uses.
///
/// # Errors
/// As [`WorktreeManager::open`], and a contract
/// [`Backend`](ff_traits::Error::Backend) error when the database cannot
/// be reached or its schema cannot be created.
#[cfg(feature = "postgres")]
pub async fn open_postgres(config: WorktreeConfig, url: &str) -> Result<PostgresManager> {
    let at = locate(&config).await?;
    let locks = ff_lock_postgres::PostgresLockProvider::connect(
        ff_lock_postgres::PostgresLockConfig::new(url),
    )
    .await?;
    let store = ff_store_postgres::PostgresStore::open(url).await?;
    open_measured(config, at, locks, store).await
}

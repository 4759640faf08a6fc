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
//!
//! With the defaults, [`open_embedded`] needs nothing but a repository:
//!
//! ```no_run
//! # async fn demo() -> Result<()> {
//! use ff_worktree::{SyncOptions, WorktreeConfig};
//!
//! let manager = ff_worktree::open_embedded(WorktreeConfig::new(".")).await?;
//! let created = manager.create_worktree("PROJ-123").await?;
//! println!("{} on branch {}", created.worktree.path.display(), created.worktree.branch);
//! manager.sync_worktree("PROJ-123", SyncOptions::default()).await?;
//! manager.cleanup_worktree("PROJ-123", false).await?;
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
//! Every operation on an issue holds that issue's lock and re-reads its
//! record inside it; `worktree add/remove` and `branch -D` run under one
//! lock per repository, held only around them. All git calls go through
//! [`git`]. `DESIGN.md` beside this crate has the reasoning.

#![forbid(unsafe_code)]

mod error;
pub mod git;
mod issue;
mod manager;
mod paths;

pub use error::{Error, ErrorKind, Result};
pub use ff_traits;
pub use issue::{IssueId, MAX_ISSUE_ID_LEN};
pub use manager::{
    Cleanup, Created, LimitPolicy, Recovery, Repair, RepairKind, SyncOptions, SyncStrategy, Synced,
    Worktree, WorktreeConfig, WorktreeManager, WorktreeStatus,
};

/// The backends compiled in, one module per cargo feature.
pub mod backends {
    #[cfg(feature = "file-lock")]
    pub use ff_lock_file as file_lock;
    /// Redis locks and records, shared by every server of a deployment.
    #[cfg(feature = "redis")]
    pub mod redis {
        pub use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
        pub use ff_store_redis::{RedisStore, RedisStoreConfig};
    }
    #[cfg(feature = "json-store")]
    pub use ff_store_json as json;
    #[cfg(feature = "sqlite-store")]
    pub use ff_store_sqlite as sqlite;
}

/// The manager with the embedded default backends.
#[cfg(all(feature = "file-lock", feature = "sqlite-store"))]
pub type EmbeddedManager =
    WorktreeManager<ff_lock_file::FileLockProvider, ff_store_sqlite::SqliteStore>;

/// Where the embedded backends keep their state: `<base path>/.ff`.
pub const STATE_DIR: &str = ".ff";

/// The base path `config` names (its default resolved against the
/// repository), checked and created: where worktrees and, by default,
/// ForgeFlow's own state (`<base>/.ff`) go.
///
/// # Errors
/// As [`WorktreeManager::open`].
pub async fn base_path_of(config: &WorktreeConfig) -> Result<std::path::PathBuf> {
    Ok(manager::resolve(config).await?.2)
}

/// Opens a manager on the embedded default: file locks in
/// `<base path>/.ff/locks` and a SQLite store at
/// `<base path>/.ff/records.sqlite3`. No server needed.
///
/// # Errors
/// As [`WorktreeManager::open`], and [`ff_traits::Error::Backend`] when the
/// store cannot be opened.
#[cfg(all(feature = "file-lock", feature = "sqlite-store"))]
pub async fn open_embedded(config: WorktreeConfig) -> Result<EmbeddedManager> {
    let base = base_path_of(&config).await?;
    let state = base.join(STATE_DIR);
    let locks = ff_lock_file::FileLockProvider::new(state.join("locks"));
    let store = ff_store_sqlite::SqliteStore::open(state.join("records.sqlite3"))?;
    WorktreeManager::open(config.with_base_path(base), locks, store).await
}

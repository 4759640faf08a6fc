//! # ff-worktree
//!
//! Per-issue git worktrees for many processes at once, without corrupting
//! git state or doing an operation twice.
//!
//! **In progress** (issue #5). What works, on real git:
//!
//! * [`WorktreeManager`]: `create_worktree` (idempotent, atomic: a failed
//!   create leaves no directory, registration, branch or record, and a retry
//!   works at once), `get`, `list_worktrees`, `cleanup_worktree` (refuses to
//!   lose uncommitted or unmerged work unless forced, and then keeps it under
//!   `refs/ff/archive/<id>`), with a per-issue lock and a per-repository
//!   registry lock held only around `worktree add/remove` and `branch -D`.
//! * [`git`]: the layer every git call goes through (argument vectors,
//!   timeouts, `-z` porcelain parsing, repository facts, version check).
//! * [`IssueId`]: the validation every issue id passes before any side
//!   effect.
//!
//! Not yet: `sync_worktree`, `recover()`, the evict-oldest limit policy,
//! lock status and record statistics on the manager, and backend re-exports
//! behind features. `DESIGN.md` beside this crate records the plan.
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_lock_file::FileLockProvider;
//! use ff_store_sqlite::SqliteStore;
//! use ff_worktree::{WorktreeConfig, WorktreeManager};
//!
//! let manager = WorktreeManager::open(
//!     WorktreeConfig::new("."),
//!     FileLockProvider::new(".ff-worktrees/.ff/locks"),
//!     SqliteStore::open(".ff-worktrees/.ff/ff.sqlite3")?,
//! )
//! .await?;
//! let created = manager.create_worktree("PROJ-123").await?;
//! println!("{} on branch {}", created.worktree.path.display(), created.worktree.branch);
//! manager.cleanup_worktree("PROJ-123", false).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod git;
mod issue;
mod manager;

pub use issue::{IssueId, MAX_ISSUE_ID_LEN};
pub use manager::{Cleanup, Created, Worktree, WorktreeConfig, WorktreeManager};

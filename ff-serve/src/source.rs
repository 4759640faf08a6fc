//! Where the server finds a repository's worktrees.

use async_trait::async_trait;
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::{Worktree, WorktreeManager};

/// A repository's worktrees, as the server shows them.
#[async_trait]
pub trait WorktreeSource: Send + Sync {
    /// The repository they belong to (a path, for operators).
    fn repository(&self) -> String;

    /// How many worktrees the repository may have.
    fn limit(&self) -> usize;

    /// Every worktree, oldest first.
    ///
    /// # Errors
    /// A message saying what could not be read.
    async fn worktrees(&self) -> Result<Vec<Worktree>, String>;

    /// Removes finished records last active more than `max_age` ago,
    /// keeping those the repository's worktrees still need; returns how
    /// many went.
    ///
    /// # Errors
    /// A message saying what failed.
    async fn gc(&self, max_age: std::time::Duration) -> Result<u64, String>;
}

/// A [`WorktreeManager`]'s worktrees, under a repository name.
#[derive(Debug)]
pub struct ManagedRepository<L, S> {
    manager: WorktreeManager<L, S>,
    repository: String,
}

impl<L, S> ManagedRepository<L, S> {
    /// `manager`'s worktrees, shown as `repository`'s.
    pub fn new(manager: WorktreeManager<L, S>, repository: impl Into<String>) -> Self {
        Self {
            manager,
            repository: repository.into(),
        }
    }
}

#[async_trait]
impl<L: LockProvider, S: IdempotencyStorage> WorktreeSource for ManagedRepository<L, S> {
    fn repository(&self) -> String {
        self.repository.clone()
    }

    fn limit(&self) -> usize {
        self.manager.config().max_worktrees
    }

    async fn worktrees(&self) -> Result<Vec<Worktree>, String> {
        self.manager
            .list_worktrees()
            .await
            .map_err(|e| e.to_string())
    }

    async fn gc(&self, max_age: std::time::Duration) -> Result<u64, String> {
        self.manager
            .cleanup_idempotency_records(max_age)
            .await
            .map_err(|e| e.to_string())
    }
}

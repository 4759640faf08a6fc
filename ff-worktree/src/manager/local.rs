//! Local state under local locks.
//!
//! What guards one clone's git state (its registry of worktrees, its
//! fetches, the git commands run in one issue's worktree) is a kernel file
//! lock in that clone's `<common dir>/ff/locks`, whatever backend the
//! manager was given: only processes on this host touch this clone, and a
//! kernel lock is freed the instant its holder dies. The configured
//! provider (Redis, say) arbitrates only what spans servers: who works on
//! an issue, once-claims, slots. A Redis failover that lets two processes
//! believe they hold one issue's lock then still cannot let them run git
//! in one worktree, or change one registry, at once; and the registry and
//! fetch locks cost no round trips.

use ff_traits::{HeldLock, LockGuard, LockName, LockProvider};

use crate::Result;

/// A grant of the configured provider together with the local lock taken
/// under it: released local first (the reverse of taking).
#[derive(Debug)]
struct WithLocal {
    local: Option<LockGuard>,
    inner: Box<dyn HeldLock>,
}

#[async_trait::async_trait]
impl HeldLock for WithLocal {
    async fn release(&mut self) -> ff_traits::Result<()> {
        let local = match self.local.take() {
            Some(g) => g.release().await,
            None => Ok(()),
        };
        let inner = self.inner.release().await;
        inner.and(local)
    }

    fn release_on_drop(&mut self) {
        drop(self.local.take());
        self.inner.release_on_drop();
    }
}

/// `outer` (a grant of the configured provider), holding `local` too until
/// it is released or dropped.
pub(super) fn joined(outer: LockGuard, local: LockGuard) -> LockGuard {
    outer.wrap_held(|inner| {
        Box::new(WithLocal {
            local: Some(local),
            inner,
        })
    })
}

impl<L: LockProvider, S: ff_traits::IdempotencyStorage> super::WorktreeManager<L, S> {
    /// Takes the local lock `name` (flat, a kernel file lock), waiting up
    /// to the configured lock timeout.
    pub(super) async fn lock_local(&self, name: &LockName, operation: &str) -> Result<LockGuard> {
        let options = self.lock_options(operation, None);
        Ok(self.local.acquire(name, &options).await?)
    }

    /// Adds the issue's local lock to `outer`, a grant of the issue's lock
    /// by the configured provider; `mode` is the mode `outer` was taken in.
    /// Normally free at once (the outer lock keeps others out); waited for
    /// only when the provider let two holders in (a failover).
    pub(super) async fn with_local_issue(
        &self,
        outer: LockGuard,
        issue: &crate::issue::IssueId,
        options: &ff_traits::LockOptions,
    ) -> Result<LockGuard> {
        let name = self.lock_names.worktree(issue)?;
        match self.local.acquire(&name, options).await {
            Ok(local) => Ok(joined(outer, local)),
            Err(e) => {
                let _ = outer.release().await;
                Err(e.into())
            }
        }
    }

    /// As [`with_local_issue`](Self::with_local_issue), without waiting:
    /// `None` (and `outer` released) when the local lock is busy.
    pub(super) async fn try_with_local_issue(
        &self,
        outer: LockGuard,
        issue: &crate::issue::IssueId,
        options: &ff_traits::LockOptions,
    ) -> Result<Option<LockGuard>> {
        let name = self.lock_names.worktree(issue)?;
        match self.local.try_acquire(&name, options).await {
            Ok(Some(local)) => Ok(Some(joined(outer, local))),
            Ok(None) => {
                outer.release().await?;
                Ok(None)
            }
            Err(e) => {
                let _ = outer.release().await;
                Err(e.into())
            }
        }
    }
}

//! Retention: removing, one issue lock at a time, every worktree whose work
//! is merged or that is older than a limit with nothing to lose.

use std::time::Duration;

use ff_traits::{IdempotencyStorage, LockProvider, Timestamp};

use crate::Result;
use crate::issue::IssueId;

use super::{Worktree, WorktreeManager, WorktreeStatus};

/// What [`WorktreeManager::prune`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Worktrees whose commits are all in the base (by history, or by
    /// content: squash- and rebase-merged). The default when
    /// `older_than` is not given either.
    pub merged: bool,
    /// Worktrees created longer ago than this with nothing to lose (no
    /// uncommitted changes, no commit the base lacks), used or not.
    pub older_than: Option<Duration>,
    /// Only say what would be removed.
    pub dry_run: bool,
}

impl PruneOptions {
    /// Sets [`merged`](Self::merged).
    #[must_use]
    pub fn with_merged(mut self, merged: bool) -> Self {
        self.merged = merged;
        self
    }

    /// Sets [`older_than`](Self::older_than).
    #[must_use]
    pub fn with_older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Sets [`dry_run`](Self::dry_run).
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What prune did with one worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PruneAction {
    /// Removed (its commits kept under `refs/ff/archive/` when they were
    /// judged merged by content).
    Removed,
    /// Would be removed (a dry run).
    WouldRemove,
    /// Left alone; the reason says why.
    Kept,
}

/// One worktree prune looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pruned {
    /// The worktree.
    pub worktree: Worktree,
    /// What was done.
    pub action: PruneAction,
    /// Why.
    pub reason: String,
    /// Where its commits were kept, if they were.
    pub archived_at: Option<String>,
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Removes every worktree of this clone whose work is merged (or, with
    /// `older_than`, that is older than that with nothing to lose), one
    /// issue at a time under its lock, judging each again inside it. A
    /// worktree whose issue lock is held, with uncommitted changes, or
    /// with commits its base lacks is kept, and the answer says why. Never
    /// forces: what a cleanup would refuse, prune keeps.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when the store, the locks or
    /// git fail.
    pub async fn prune(&self, options: PruneOptions) -> Result<Vec<Pruned>> {
        let merged = options.merged || options.older_than.is_none();
        let now = Timestamp::now();
        let mut out = Vec::new();
        for wt in self.list_worktrees().await? {
            if !self.is_local(&wt) || wt.status != WorktreeStatus::Active {
                continue;
            }
            let Ok(issue) = IssueId::parse(&wt.issue) else {
                continue;
            };
            let Some(guard) = self.try_lock_issue(&issue, "pruneWorktree").await? else {
                out.push(kept(
                    wt,
                    "its issue's lock is held: someone is working on it",
                ));
                continue;
            };
            let entry = self
                .holding(guard, async || {
                    self.prune_one(&issue, wt.clone(), merged, options, now)
                        .await
                })
                .await?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Judges (and, unless a dry run, removes) one worktree, holding its
    /// issue's lock.
    async fn prune_one(
        &self,
        issue: &IssueId,
        wt: Worktree,
        merged: bool,
        options: PruneOptions,
        now: Timestamp,
    ) -> Result<Pruned> {
        // Read again under the lock: it may have gone or changed.
        match self.get(&wt.id).await? {
            Some(current) if current.id == wt.id => {}
            _ => return Ok(kept(wt, "it changed or went away meanwhile")),
        }
        if !self.dirty_files(&wt).await?.is_empty() {
            return Ok(kept(wt, "it has uncommitted changes"));
        }
        let (base, unmerged) = self.unmerged_commits(&wt).await?;
        let tip = self
            .resolve_branch(&format!("refs/heads/{}", wt.branch))
            .await?;
        let age = now.saturating_duration_since(wt.created_at);
        let reason = if merged && unmerged == 0 && tip.as_deref() != Some(&wt.base_commit) {
            Some(format!("its commits are in {base}"))
        } else if merged && unmerged > 0 {
            match &tip {
                Some(tip) => self.merged_by_content(&base, tip).await?,
                None => None,
            }
        } else {
            None
        };
        let reason = reason.or_else(|| {
            options
                .older_than
                .filter(|limit| age > *limit && unmerged == 0)
                .map(|limit| {
                    format!(
                        "created {} ago (more than {}) with nothing to lose",
                        humantime::format_duration(Duration::from_secs(age.as_secs())),
                        humantime::format_duration(limit)
                    )
                })
        });
        let Some(reason) = reason else {
            let why = if unmerged > 0 {
                format!("{unmerged} commit(s) {base} lacks")
            } else if tip.as_deref() == Some(&wt.base_commit) {
                "no commits of its own yet (prune --older-than removes unused ones)".to_owned()
            } else {
                "newer than the age limit".to_owned()
            };
            return Ok(kept(wt, &why));
        };
        // A prune stops nothing: a worktree something runs in stays.
        let running = self.running_in(&wt);
        if !running.is_empty() {
            let mut what = running.others_shown();
            if !running.ours.is_empty() {
                if !what.is_empty() {
                    what.push_str("; ");
                }
                what.push_str(&format!(
                    "process group(s) {:?} its hooks or ff exec started",
                    running.ours
                ));
            }
            return Ok(kept(
                wt,
                &format!("processes run in it ({what}); prune stops nothing"),
            ));
        }
        if options.dry_run {
            return Ok(Pruned {
                worktree: wt,
                action: PruneAction::WouldRemove,
                reason,
                archived_at: None,
            });
        }
        // Its pre_cleanup hook guards a prune as it guards a cleanup.
        if let Err(e) = self.pre_cleanup(&wt, false).await {
            return Ok(kept(wt, &format!("its pre_cleanup hook refused: {e}")));
        }
        crate::crash::point("prune.judged");
        let done = self.cleanup_locked(issue, &wt.id, false).await?;
        let reason = done.merged_because.unwrap_or(reason);
        Ok(Pruned {
            worktree: wt,
            action: if done.removed.is_some() {
                PruneAction::Removed
            } else {
                PruneAction::Kept
            },
            reason,
            archived_at: done.archived_at,
        })
    }
}

fn kept(worktree: Worktree, why: &str) -> Pruned {
    Pruned {
        worktree,
        action: PruneAction::Kept,
        reason: why.to_owned(),
        archived_at: None,
    }
}

//! Undoing a create attempt that failed or died: what it made goes, and
//! whatever was committed or written there meanwhile is kept.
//!
//! An attempt's names are not its alone: an issue's worktree gets the same
//! path and branch each time it is made again. An agent still working at
//! that path from an earlier worktree of the issue (or handed the path by
//! the create that died) commits and writes there holding none of our
//! locks. So an undo never drops a branch or a directory blind: files that
//! differ from HEAD are kept in a snapshot commit, and the branch's tip,
//! when it has commits no other ref has, under `refs/ff/archive/<id>`,
//! before the branch is deleted by compare-and-delete.

use ff_traits::{IdempotencyStorage, LockProvider};

use super::WorktreeManager;
use crate::git::repair;
use crate::names::Plan;
use crate::{Error, Result};

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Removes whatever one create attempt made, keeping any work found
    /// in it (see the module doc). Idempotent.
    pub(super) async fn undo(&self, plan: &Plan) -> Result<()> {
        if !plan.location.is_empty() && plan.location != self.location {
            // Another clone's attempt: only that clone can remove what it
            // made (its `recover` finds it as an unrecorded worktree).
            tracing::warn!(id = %plan.id, location = %plan.location, "an abandoned attempt of another clone; left to it");
            return Ok(());
        }
        // Rollback data names what to remove: only ever ForgeFlow's own
        // names for the attempt, never a path or branch a record chose.
        if let Err(why) = super::check_names(
            &self.names,
            &plan.id,
            &plan.path,
            &plan.branch,
            None,
            &|p| self.registered_in_git(p),
            &|p| repair::checked_out_branch(&self.info.common_dir, p),
        ) {
            tracing::warn!(id = %plan.id, why, "rollback data that is not ForgeFlow's; nothing it names is touched");
            return Ok(());
        }
        self.with_registry("undo worktree add", async || {
            let kept = match self.keep_files_of(plan).await {
                Ok(kept) => kept,
                // What git cannot snapshot (a file it cannot read, say) is
                // kept whole: the directory is set aside, never deleted,
                // and the undo goes on, so the issue is not stuck on it.
                Err(e) => {
                    let aside = super::aside::set_aside(&self.base, &plan.path, &plan.id)?;
                    tracing::warn!(id = %plan.id, error = %e, aside = ?aside, "could not snapshot a failed create's worktree; its directory is set aside");
                    None
                }
            };
            self.remove_registered(&plan.path, &plan.id).await?;
            self.retire_attempt_branch(plan, kept).await
        })
        .await?;
        self.free_slots_of(&plan.id).await
    }

    /// Keeps what the attempt's worktree holds that its HEAD lacks: files
    /// written or changed there (a checkout cut short only lacks files, and
    /// that is not kept), and commits on a detached HEAD that no ref has.
    /// Returns the archive, if anything was kept.
    async fn keep_files_of(&self, plan: &Plan) -> Result<Option<String>> {
        if !plan.path.join(".git").exists() || !self.registered_in_git(&plan.path) {
            return Ok(None);
        }
        let tree = self.git.in_dir(&plan.path);
        let head = tree
            .output(["rev-parse", "--verify", "-q", "HEAD^{commit}"], true)
            .await?;
        if !head.success() {
            return Ok(None); // no HEAD yet: nothing can have been committed
        }
        let head = head.text();
        // Asked of the worktree's own index first (its stat data makes
        // that quick): a snapshot through a fresh index hashes every file
        // there, seconds in a large checkout, and most failed creates
        // leave nothing changed. Any doubt (no index yet, a git that
        // fails) takes the snapshot.
        let status = tree
            .output(
                [
                    "--no-optional-locks",
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                ],
                true,
            )
            .await?;
        let unchanged = status.success() && status.stdout.is_empty();
        if !unchanged
            && let Some(snapshot) = self
                .snapshot_at(
                    &plan.path,
                    &plan.id,
                    "found when a failed create was undone",
                    super::cleanup::Snapshot::Present,
                )
                .await?
        {
            // Its parent is HEAD: the snapshot keeps HEAD's commits too.
            return Ok(Some(self.keep(&plan.id, &snapshot).await?));
        }
        if self.only_here(&head, &plan.branch).await? {
            return Ok(Some(self.keep(&plan.id, &head).await?));
        }
        Ok(None)
    }

    /// Deletes the attempt's branch by compare-and-delete, first keeping
    /// its tip under `refs/ff/archive/<id>` when it has commits no other
    /// ref has (or when work was kept already, so the archive holds it
    /// all). Call after the worktree is gone, under the registry lock.
    async fn retire_attempt_branch(&self, plan: &Plan, mut archived: Option<String>) -> Result<()> {
        let refname = format!("refs/heads/{}", plan.branch);
        // Each pass deletes the branch or sees it move (someone committing
        // to it through another worktree); one that keeps moving is live
        // work: stop and say so.
        for _ in 0..20 {
            let Some(tip) = self.git.resolve_commit(&refname).await? else {
                return Ok(());
            };
            if archived.is_some() || self.only_here(&tip, &plan.branch).await? {
                archived = Some(self.keep(&plan.id, &tip).await?);
                tracing::warn!(id = %plan.id, branch = %plan.branch, archive = ?archived, "commits found on a failed create's branch were kept");
            }
            if repair::delete_ref_at(&self.git, &self.info.common_dir, &refname, &tip).await? {
                return Ok(());
            }
        }
        Err(Error::refused(
            format!("deleting branch {}", plan.branch),
            "it kept moving while ForgeFlow undid a failed create; whoever commits to it is \
             still at work: try again once they stop",
        ))
    }

    /// Whether `commit` has history that no branch but `branch`, no tag,
    /// remote-tracking ref or ForgeFlow ref has: deleting `branch` (or
    /// dropping a HEAD at `commit`) would lose it.
    async fn only_here(&self, commit: &str, branch: &str) -> Result<bool> {
        // `--exclude` applies to the `--branches` right after it, and
        // matches names below `refs/heads/`; ref names hold no glob
        // characters, so this excludes exactly `branch`.
        let exclude = format!("--exclude={branch}");
        let out = self
            .git
            .read([
                "rev-list",
                "--max-count=1",
                commit,
                "--not",
                exclude.as_str(),
                "--branches",
                "--tags",
                "--remotes",
                "--glob=refs/ff/*",
            ])
            .await?;
        Ok(!out.text().is_empty())
    }
}

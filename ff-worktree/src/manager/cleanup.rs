//! `cleanup_worktree`: removal that never loses work unless forced, and
//! then keeps it under `refs/ff/archive/<id>`.

use ff_traits::{IdempotencyRecord, IdempotencyStorage, LockProvider, RecordStatus};

use crate::{Error, Result};

use super::{Cleaned, Cleanup, Worktree, WorktreeManager, parse_worktree};
use crate::git::repair;
use crate::issue::IssueId;

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Removes a worktree and its branch.
    ///
    /// Refuses when that would destroy uncommitted changes or commits not
    /// merged into the base, unless [`Cleanup::Force`]; forced, it first keeps the work
    /// under `refs/ff/archive/<id>` and says so. Cleaning what is already
    /// gone succeeds.
    ///
    /// # Errors
    /// [`Error::WouldLoseWork`] when work would be lost and `mode` is [`Cleanup::Safe`];
    /// [`LockTimeout`](ff_traits::Error::LockTimeout); [`Backend`](ff_traits::Error::Backend) with git's message.
    pub async fn cleanup_worktree(&self, id_or_issue: &str, mode: Cleanup) -> Result<Cleaned> {
        let result = crate::metrics::timed("cleanup", async {
            let Some(found) = self.get(id_or_issue).await? else {
                return Ok(Cleaned {
                    removed: None,
                    archived_at: None,
                    merged_because: None,
                    set_aside: None,
                });
            };
            let issue = IssueId::parse(&found.issue)?;
            self.with_issue(&issue, "cleanupWorktree", async || {
                let force = mode == Cleanup::Force;
                // Someone else working in it (an agent, a shell): not
                // signalled unless configured, force or not.
                let running = self.running_in(&found);
                self.refuse_running(&found, &running)?;
                // Refused for work it would lose before any hook runs or
                // anything is stopped: a pre_cleanup (stop a server, drop
                // a database) is for a worktree that goes, and a refusal
                // changes nothing. Judged again after the hook.
                if !force && (!self.config.hooks.pre_cleanup.is_empty() || !running.is_empty()) {
                    self.refuse_loss(&found).await?;
                }
                self.pre_cleanup(&found, force).await?;
                self.stop_running(&found).await;
                self.cleanup_locked(&issue, &found.id, force).await
            })
            .await
        })
        .await;
        crate::metrics::worktree_count(self.count_ours(), self.config.max_worktrees);
        result
    }

    /// What runs in `wt` (nothing for another clone's).
    pub(super) fn running_in(&self, wt: &Worktree) -> crate::processes::Running {
        if !self.is_local(wt) || !wt.path.is_dir() {
            return crate::processes::Running::default();
        }
        crate::processes::running(&self.groups(), &wt.id, &wt.path)
    }

    /// [`Error::Refused`] naming the processes working in `wt` that ff did
    /// not start, unless [`OnRunning::Stop`](crate::OnRunning::Stop).
    fn refuse_running(&self, wt: &Worktree, running: &crate::processes::Running) -> Result<()> {
        if self.config.on_running == crate::OnRunning::Stop || running.others.is_empty() {
            return Ok(());
        }
        Err(Error::Refused {
            what: format!("cleanup of {}", wt.id),
            reason: format!(
                "processes ff did not start work in it: {}; the worktree is untouched. Stop them \
                 (or have them leave the directory), or set on_running = \"stop\" to have \
                 cleanup stop them (SIGTERM, then SIGKILL after cleanup_grace)",
                running.others_shown()
            ),
        })
    }

    /// Stops what runs in `wt` before it goes: the process groups ff
    /// started there, and, with [`OnRunning::Stop`](crate::OnRunning::Stop),
    /// every other process working in it.
    async fn stop_running(&self, wt: &Worktree) {
        let mut running = self.running_in(wt);
        if self.config.on_running != crate::OnRunning::Stop {
            running.others.clear();
        }
        crate::processes::stop(&running, self.config.cleanup_grace).await;
    }

    /// [`Error::WouldLoseWork`] if removing `wt` now, unforced, would lose
    /// uncommitted files or commits its base lacks (squash and rebase
    /// merges count as merged, as in the cleanup itself).
    async fn refuse_loss(&self, wt: &super::Worktree) -> Result<()> {
        if !self.is_local(wt) || !wt.path.join(".git").exists() {
            return Ok(());
        }
        let dirty = self.dirty_files(wt).await?;
        let branch = format!("refs/heads/{}", wt.branch);
        let (base, unmerged) = match self.resolve_branch(&branch).await? {
            Some(tip) => {
                let (base, n) = self
                    .count_unmerged(wt, &tip)
                    .await?
                    .unwrap_or_else(|| (wt.base.clone(), 1));
                let merged = n > 0 && self.merged_by_content(&base, &tip).await?.is_some();
                (base, if merged { 0 } else { n })
            }
            None => (wt.base.clone(), 0),
        };
        if dirty.is_empty() && unmerged == 0 {
            return Ok(());
        }
        Err(would_lose_work(wt, &dirty, (base, unmerged)))
    }

    /// Runs `pre_cleanup` in a worktree that is here; a failure refuses
    /// the cleanup unless forced.
    pub(super) async fn pre_cleanup(&self, wt: &super::Worktree, force: bool) -> Result<()> {
        if !self.is_local(wt) || !wt.path.join(".git").exists() {
            return Ok(());
        }
        match self.run_hook(crate::hooks::Hook::PreCleanup, wt).await {
            Err(e) if force => {
                tracing::warn!(id = %wt.id, error = %e, "pre_cleanup failed; cleaning up anyway (forced)");
                Ok(())
            }
            other => other,
        }
    }

    /// The cleanup itself; call under the issue lock.
    pub(super) async fn cleanup_locked(
        &self,
        issue: &IssueId,
        id: &str,
        force: bool,
    ) -> Result<Cleaned> {
        crate::crash::point("cleanup.issue_locked");
        let key = self.create_key(issue).record_key()?;
        let nothing = Cleaned {
            removed: None,
            archived_at: None,
            merged_because: None,
            set_aside: None,
        };
        let Some(record) = self.records.store().load(&key).await? else {
            return Ok(nothing);
        };
        let wt = parse_worktree(record.result.as_ref())?;
        if record.status != RecordStatus::Completed || wt.id != id {
            return Ok(nothing);
        }
        // Not ForgeFlow's names: nothing it names is touched; the record
        // is withdrawn so the issue is free again.
        if let Err(why) = self.check_ours(&wt) {
            tracing::warn!(issue = %issue, why, "a foreign create record is withdrawn; nothing it names is touched");
            self.remove_record(&record).await?;
            return Ok(nothing);
        }
        self.ensure_local(&wt, "clean up")?;
        // Not a worktree any more (removed by hand, or a removal that an
        // agent's write or a kill cut short): whatever its directory
        // still holds is set aside, and the rest is tidied up.
        if !wt.path.join(".git").exists() || !self.registered_in_git(&wt.path) {
            let (archived_at, set_aside) = self.forget_vanished(&wt, &record).await?;
            tracing::info!(issue = %issue, id = %wt.id, "vanished worktree forgotten");
            return Ok(Cleaned {
                removed: Some(wt),
                archived_at,
                merged_because: None,
                set_aside,
            });
        }
        self.refuse_nested(&wt).await?;
        // A sync that died midway left its rebase or merge: settle it first
        // (keeping what was committed or changed there meanwhile), so what
        // is judged below is the branch, not a half-made rebase.
        // (Looked for in-process first: a store scan on every cleanup
        // would cost what is almost never there.)
        // (The worktree's git directory is read once, for this, the HEAD
        // and git's lock below.)
        let git_dir = crate::git::discover::worktree_git_dir(&wt.path);
        let settled = if git_dir
            .as_deref()
            .is_none_or(|dir| crate::git::discover::unfinished_in(dir).is_some())
        {
            self.abort_crashed_syncs(&wt)
                .await?
                .into_iter()
                .flatten()
                .next()
        } else {
            None
        };
        // Commits on a detached HEAD (an agent's, or a rebase it started)
        // are on no branch: the removal would drop them.
        let detached = self.detached_work(&wt, git_dir.as_deref()).await?;
        if let Some((_, n)) = &detached
            && !force
        {
            let dirty = self.dirty_files(&wt).await?;
            return Err(would_lose_work(
                &wt,
                &dirty,
                (format!("any branch (HEAD of {} is detached)", wt.id), *n),
            ));
        }
        // Agents commit in their worktrees holding none of our locks, so
        // nothing read before the removal stays true: the count below only
        // decides whether to refuse. After the removal nothing can commit
        // through the worktree any more, and the branch is judged again
        // and deleted only by compare-and-delete on the tip judged.
        // The tip judged here; if the branch still points at it after the
        // removal, the judgement stands and costs no second look.
        let branch = format!("refs/heads/{}", wt.branch);
        let judged = match self.resolve_branch(&branch).await? {
            Some(tip) => {
                let (base, n) = self
                    .count_unmerged(&wt, &tip)
                    .await?
                    .unwrap_or_else(|| (wt.base.clone(), 1));
                Some((tip, base, n))
            }
            None => None,
        };
        let unmerged = judged
            .as_ref()
            .map_or_else(|| (wt.base.clone(), 0), |(_, base, n)| (base.clone(), *n));
        let mut archived_at = settled;
        let mut merged_because = None;
        // Files git could not snapshot: the directory is kept whole.
        let mut keep_whole = false;
        if force {
            // Uncommitted files die with the directory: snapshot them
            // first. Commits made after the snapshot are kept below.
            if !self.dirty_files(&wt).await?.is_empty() {
                match self.snapshot(&wt, "at cleanup").await {
                    Ok(snapshot) => {
                        archived_at = Some(self.keep(&wt.id, &snapshot).await?);
                        crate::crash::point("cleanup_force.snapshot_kept");
                    }
                    // What git cannot add (an agent's empty repository in
                    // a folder, say) would fail every forced cleanup of
                    // the worktree: its directory is set aside instead.
                    Err(e) => {
                        tracing::warn!(id = %wt.id, error = %e, "git cannot snapshot the uncommitted files; the directory is set aside whole");
                        keep_whole = true;
                    }
                }
            }
            // The snapshot's parent is HEAD; with a clean tree the
            // detached commits are kept on their own.
            if let Some((head, _)) = &detached {
                archived_at = Some(self.keep(&wt.id, head).await?);
            }
        } else if unmerged.1 > 0 {
            // Squash- and rebase-merged work: the base's history lacks the
            // commits, its content has their changes. Judged merged, the
            // commits are still archived below (they count as unmerged
            // there), in case the judgement was wrong.
            let why = match &judged {
                Some((tip, base, _)) => self.merged_by_content(base, tip).await?,
                None => None,
            };
            match why {
                Some(why) => {
                    tracing::info!(id = %wt.id, reason = %why, "work judged merged by content");
                    merged_because = Some(why);
                }
                None => {
                    let dirty = self.dirty_files(&wt).await?;
                    return Err(would_lose_work(&wt, &dirty, unmerged));
                }
            }
        }
        let (archived_at, set_aside) = self
            .with_registry("worktree remove", async || {
                // What git's own `worktree remove` checks first: without
                // force, no changed or untracked file; forced or not, no
                // lock a person put on it. (The removal below then drops
                // only the registration: the directory is moved away.)
                if !force {
                    let dirty = self.dirty_files(&wt).await?;
                    if !dirty.is_empty() {
                        return Err(would_lose_work(&wt, &dirty, (wt.base.clone(), 0)));
                    }
                }
                if let Some(reason) = git_dir
                    .as_deref()
                    .and_then(crate::git::discover::lock_reason_in)
                {
                    return Err(Error::refused(
                        format!("cleanup of {}", wt.id),
                        format!(
                            "git marks {} locked ({reason}); `git worktree unlock {}` first",
                            wt.path.display(),
                            wt.path.display()
                        ),
                    ));
                }
                let kept_whole = if keep_whole {
                    super::aside::set_aside(&self.base, &wt.path, &wt.id)?
                } else {
                    None
                };
                self.remove_registered(&wt.path, &wt.id).await?;
                // Anything at its path now (a directory an agent made
                // again) is kept, out of the way.
                let set_aside = super::aside::set_aside(&self.base, &wt.path, &wt.id)?;
                let set_aside = kept_whole.or(set_aside);
                crate::crash::point(if force {
                    "cleanup_force.removed"
                } else {
                    "cleanup.removed"
                });
                let judged = judged.as_ref().map(|(tip, _, n)| (tip.clone(), *n));
                let archived = self.retire_branch(&wt, archived_at.clone(), judged).await?;
                crate::crash::point("cleanup.branch_retired");
                Ok((archived, set_aside))
            })
            .await?;
        // The create record goes last: until then a crash leaves a record
        // the next cleanup (or create) finishes from.
        self.free_slot(&wt).await?;
        crate::crash::point("cleanup.slot_freed");
        self.forget_hook_runs(&wt).await?;
        self.groups().forget(&wt.id);
        self.remove_record(&record).await?;
        crate::crash::point("cleanup.record_removed");
        tracing::info!(issue = %issue, id = %wt.id, archived = ?archived_at, "worktree removed");
        Ok(Cleaned {
            removed: Some(wt),
            archived_at,
            merged_because,
            set_aside,
        })
    }

    /// Removes a record read earlier, unless someone changed it since.
    pub(super) async fn remove_record(&self, record: &IdempotencyRecord) -> Result<()> {
        match self
            .records
            .store()
            .remove(&record.key, record.revision)
            .await
        {
            Ok(())
            | Err(
                ff_traits::Error::NotFound { .. } | ff_traits::Error::PreconditionFailed { .. },
            ) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Tidies up after a worktree that is no longer one (its directory
    /// removed outside ForgeFlow, or a removal cut short): moves whatever
    /// its directory still holds aside ([`aside::set_aside`]), drops git's
    /// registration of it, keeps its branch's unmerged commits under
    /// `refs/ff/archive/<id>`, deletes the branch and removes the record.
    /// Returns where commits and files were kept. Call under the issue lock.
    ///
    /// [`aside::set_aside`]: super::aside::set_aside
    pub(super) async fn forget_vanished(
        &self,
        wt: &Worktree,
        record: &IdempotencyRecord,
    ) -> Result<(Option<String>, Option<std::path::PathBuf>)> {
        let (archived, set_aside) = self
            .with_registry("forget vanished worktree", async || {
                // Before the registration goes: git removing a registered
                // directory would delete the files in it.
                let set_aside = super::aside::set_aside(&self.base, &wt.path, &wt.id)?;
                self.remove_registered(&wt.path, &wt.id).await?;
                Ok((self.retire_branch(wt, None, None).await?, set_aside))
            })
            .await?;
        self.free_slot(wt).await?;
        self.forget_hook_runs(wt).await?;
        self.remove_record(record).await?;
        Ok((archived, set_aside))
    }

    /// Deletes the worktree's branch without losing a commit: reads its
    /// tip, keeps the tip under `refs/ff/archive/<id>` when the base lacks
    /// it (or when work was already archived, so the archive holds it all),
    /// then deletes the branch only if it still points at that tip
    /// (`git update-ref -d <ref> <tip>`), reading again when someone moved
    /// it meanwhile. Returns where work was kept, if anywhere. Call after
    /// the worktree is gone, under the registry lock.
    ///
    /// `judged` is a tip read earlier with its count of unmerged commits:
    /// tried first, so a branch that did not move costs no second look.
    pub(super) async fn retire_branch(
        &self,
        wt: &Worktree,
        mut archived: Option<String>,
        mut judged: Option<(String, u64)>,
    ) -> Result<Option<String>> {
        let refname = format!("refs/heads/{}", wt.branch);
        // Each pass either deletes the branch or sees it move; a branch
        // that keeps moving is someone's live work: stop and say so.
        for _ in 0..20 {
            let (tip, unmerged) = match judged.take() {
                Some((tip, n)) => (tip, n),
                None => {
                    let Some(tip) = self.git.resolve_commit(&refname).await? else {
                        return Ok(archived);
                    };
                    let n = self.unmerged_at(wt, &tip).await?;
                    (tip, n)
                }
            };
            if archived.is_some() || unmerged > 0 {
                archived = Some(self.keep(&wt.id, &tip).await?);
            }
            if repair::delete_ref_at(&self.git, &self.info.common_dir, &refname, &tip).await? {
                return Ok(archived);
            }
            tracing::info!(branch = %wt.branch, "the branch moved while it was being deleted; judging it again");
        }
        Err(Error::refused(
            format!("deleting branch {}", wt.branch),
            "it kept moving while ForgeFlow tried to delete it; whoever commits to it is still \
             at work: try again once they stop",
        ))
    }

    /// Commits reachable from `tip` that the worktree's base lacks (the base
    /// ref, or the recorded base commit when the ref is gone).
    async fn unmerged_at(&self, wt: &Worktree, tip: &str) -> Result<u64> {
        // No base to compare with: keep it.
        Ok(self.count_unmerged(wt, tip).await?.map_or(1, |(_, n)| n))
    }

    /// `(base, commits of rev its base lacks)`, counted against the base
    /// ref, or the recorded base commit when the ref is gone; `None` when
    /// neither can be compared.
    async fn count_unmerged(&self, wt: &Worktree, rev: &str) -> Result<Option<(String, u64)>> {
        // A branch at its base's tip has nothing the base lacks: no git
        // needed to say so. (Not "at the commit it started from": a base
        // reset behind that commit would leave the branch its only ref.)
        let base_tip = crate::git::discover::read_branch(
            &self.info.common_dir,
            &format!("refs/heads/{}", wt.base),
        )
        .flatten();
        if base_tip.as_deref() == Some(rev) {
            return Ok(Some((wt.base.clone(), 0)));
        }
        for base in [&wt.base, &wt.base_commit] {
            let range = format!("{base}..{rev}");
            let out = self
                .git
                .output(
                    ["rev-list", "--count", "--end-of-options", range.as_str()],
                    true,
                )
                .await?;
            if out.success() {
                return Ok(Some((base.clone(), out.text().parse().unwrap_or(0))));
            }
        }
        Ok(None)
    }

    /// Why `tip`'s commits, though `base`'s history lacks them, are merged
    /// all the same, if they are: each has an equivalent change in the
    /// base (`git cherry`: rebased or cherry-picked), or merging `tip` into
    /// the base would change nothing (its changes arrived in one squashed
    /// commit). `None` when some change of `tip` is not in the base.
    pub(super) async fn merged_by_content(&self, base: &str, tip: &str) -> Result<Option<String>> {
        let cherry = self.git.output(["cherry", base, tip], true).await?;
        if cherry.success() {
            let text = cherry.text();
            let total = text.lines().count();
            if total > 0 && !text.lines().any(|l| l.starts_with('+')) {
                return Ok(Some(format!(
                    "each of its {total} commit(s) has an equivalent change in {base} \
                     (rebased or cherry-picked; git cherry)"
                )));
            }
        }
        // A branch that changes nothing (empty commits, or changes it
        // undid itself) is not "merged": there is no change to find in
        // the base, and its commits are all it has.
        let fork = self.git.output(["merge-base", base, tip], true).await?;
        if !fork.success() {
            return Ok(None);
        }
        let trees = self
            .git
            .output(
                [
                    "rev-parse",
                    &format!("{}^{{tree}}", fork.text()),
                    &format!("{tip}^{{tree}}"),
                ],
                true,
            )
            .await?;
        if !trees.success() {
            return Ok(None);
        }
        let trees = trees.text();
        let mut trees = trees.lines();
        if trees.next() == trees.next() {
            return Ok(None);
        }
        let merged = self
            .git
            .output(
                ["merge-tree", "--write-tree", "--no-messages", base, tip],
                true,
            )
            .await?;
        if !merged.success() {
            return Ok(None); // conflicts: the base lacks some change of it
        }
        let base_tree = self
            .git
            .output(["rev-parse", "--verify", &format!("{base}^{{tree}}")], true)
            .await?;
        let merged_tree = merged.text();
        let merged_tree = merged_tree.lines().next().unwrap_or_default();
        if base_tree.success() && base_tree.text() == merged_tree {
            return Ok(Some(format!(
                "its changes are all in {base} already: merging it would change nothing \
                 (squash-merged)"
            )));
        }
        Ok(None)
    }

    /// Refuses to remove a worktree with another worktree inside it (one
    /// made by running ForgeFlow, or git, from within it): removing the
    /// outer directory would delete the inner one's files.
    async fn refuse_nested(&self, wt: &Worktree) -> Result<()> {
        // Read from git's registry in-process: a listing costs a git
        // process on every cleanup, and this is only ever a refusal.
        let nested: Vec<String> = repair::registered_paths(&self.info.common_dir)
            .into_iter()
            .filter(|p| *p != wt.path && p.starts_with(&wt.path))
            .map(|p| p.display().to_string())
            .collect();
        if nested.is_empty() {
            return Ok(());
        }
        Err(Error::refused(
            format!("cleanup of {}", wt.id),
            format!(
                "other worktrees live inside it ({}); clean those up (or move them) first",
                nested.join(", ")
            ),
        ))
    }

    /// Whether removing the worktree loses nothing: no uncommitted changes
    /// and no commits its base lacks.
    pub(super) async fn has_nothing_to_lose(&self, wt: &Worktree) -> Result<bool> {
        Ok(wt.path.join(".git").exists()
            && self.unmerged_commits(wt).await?.1 == 0
            && self.dirty_files(wt).await?.is_empty())
    }

    /// Commits on the worktree's branch that its base does not contain, and
    /// the base they were counted against (the base ref, or the recorded
    /// base commit when the ref is gone).
    pub(super) async fn unmerged_commits(&self, wt: &Worktree) -> Result<(String, u64)> {
        let branch = format!("refs/heads/{}", wt.branch);
        Ok(self
            .count_unmerged(wt, &branch)
            .await?
            .unwrap_or_else(|| (wt.base.clone(), 0)))
    }

    /// The worktree's HEAD and how many of its commits no branch, tag,
    /// remote-tracking branch or ForgeFlow ref holds, when its HEAD is
    /// detached and there are any. None when HEAD is on a branch (read
    /// in-process: no git process in the usual case).
    /// `git_dir` is the worktree's git directory, when read.
    async fn detached_work(
        &self,
        wt: &Worktree,
        git_dir: Option<&std::path::Path>,
    ) -> Result<Option<(String, u64)>> {
        use crate::git::discover::{Head, head_in};
        let tree = self.git.in_dir(&wt.path);
        let head = match git_dir.and_then(head_in) {
            Some(Head::Branch(_)) => return Ok(None),
            Some(Head::Detached(id)) => id,
            None => {
                if tree
                    .output(["symbolic-ref", "-q", "HEAD"], true)
                    .await?
                    .success()
                {
                    return Ok(None);
                }
                let out = tree
                    .output(["rev-parse", "--verify", "-q", "HEAD"], true)
                    .await?;
                if !out.success() {
                    return Ok(None);
                }
                out.text()
            }
        };
        let count = tree
            .read([
                "rev-list",
                "--count",
                head.as_str(),
                "--not",
                "--branches",
                "--tags",
                "--remotes",
                "--glob=refs/ff/*",
            ])
            .await?
            .text();
        let n = count.parse::<u64>().unwrap_or(1);
        Ok((n > 0).then_some((head, n)))
    }

    /// Paths with uncommitted changes (untracked files included).
    pub(super) async fn dirty_files(&self, wt: &Worktree) -> Result<Vec<String>> {
        self.status_paths(wt, "--untracked-files=all").await
    }

    /// What `ff list` shows of a worktree's working state: files changed
    /// (untracked included) and commits ahead of and behind its base. Two
    /// git processes (status, rev-list), none for a worktree elsewhere or
    /// gone. Read without any lock: an agent may be at work there.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when git fails.
    pub async fn working_state(&self, wt: &Worktree) -> Result<Option<super::WorkingState>> {
        if !self.is_local(wt) || !wt.path.join(".git").exists() {
            return Ok(None);
        }
        let changed = self
            .status_paths(wt, "--untracked-files=normal")
            .await?
            .len();
        let range = format!("{}...HEAD", wt.base);
        let counted = self
            .git
            .in_dir(&wt.path)
            .output(
                [
                    "rev-list",
                    "--left-right",
                    "--count",
                    "--end-of-options",
                    range.as_str(),
                ],
                true,
            )
            .await?;
        let (behind, ahead) = if counted.success() {
            let text = counted.text();
            let mut n = text.split_whitespace().map(|v| v.parse::<u64>().ok());
            (n.next().flatten(), n.next().flatten())
        } else {
            (None, None)
        };
        Ok(Some(super::WorkingState {
            changed,
            ahead,
            behind,
        }))
    }

    /// `git status -z` paths with the given untracked-files mode.
    pub(super) async fn status_paths(&self, wt: &Worktree, untracked: &str) -> Result<Vec<String>> {
        let status = self
            .git
            .in_dir(&wt.path)
            .read(["status", "--porcelain=v1", "-z", untracked])
            .await?;
        Ok(status
            .stdout
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
            .collect())
    }

    /// A commit of the worktree's whole working tree (untracked files
    /// included) on top of its HEAD, made through a private index so
    /// nothing else is touched. Never `git stash`: `refs/stash` is shared
    /// by every worktree.
    pub(super) async fn snapshot(&self, wt: &Worktree, when: &str) -> Result<String> {
        let made = self
            .snapshot_at(&wt.path, &wt.id, when, Snapshot::Whole)
            .await?;
        made.ok_or_else(|| {
            Error::refused(
                format!("archiving the work of {}", wt.id),
                "no snapshot was made",
            )
        })
    }

    /// [`snapshot`](Self::snapshot) of the worktree at `path`, named for
    /// `id`, of what `what` takes. Unless [`Snapshot::Whole`], a tree no
    /// different from HEAD's gives no snapshot (`None`).
    pub(super) async fn snapshot_at(
        &self,
        path: &std::path::Path,
        id: &str,
        when: &str,
        what: Snapshot,
    ) -> Result<Option<String>> {
        let index =
            std::env::temp_dir().join(format!("ff-index-{}", ff_traits::identity::unique_id()));
        let private = self.git.in_dir(path).with_env("GIT_INDEX_FILE", &index);
        let made = async {
            private.run(["read-tree", "HEAD"]).await?;
            match what {
                Snapshot::Whole => private.run(["add", "--all"]).await?,
                Snapshot::Present => private.run(["add", "--ignore-removal", "--", "."]).await?,
                Snapshot::Tracked => private.run(["add", "--update"]).await?,
            };
            let tree = private.run(["write-tree"]).await?.text();
            if what != Snapshot::Whole
                && private.run(["rev-parse", "HEAD^{tree}"]).await?.text() == tree
            {
                return Ok(None);
            }
            let message = format!("ForgeFlow archive of {id}: uncommitted work {when}");
            commit_tree(&private, &tree, &["HEAD"], &message)
                .await
                .map(Some)
        }
        .await;
        let _ = std::fs::remove_file(&index);
        made
    }

    /// Keeps `commit` reachable from `refs/ff/archive/<id>`: creates the
    /// ref, or, when it holds something else, points it at a commit whose
    /// parents are both (so nothing it kept before is dropped). Every
    /// change is a compare-and-swap on the value read. Returns the ref.
    pub(super) async fn keep(&self, id: &str, commit: &str) -> Result<String> {
        let name = format!("refs/ff/archive/{id}");
        self.clear_stale_ref_lock(&name).await;
        for _ in 0..20 {
            let current = self.git.resolve_commit(&name).await?;
            let new = match &current {
                None => commit.to_owned(),
                Some(kept) if kept == commit => return Ok(name),
                Some(kept) => {
                    let contains = self
                        .git
                        .output(["merge-base", "--is-ancestor", commit, kept.as_str()], true)
                        .await?;
                    if contains.success() {
                        return Ok(name);
                    }
                    let message = format!(
                        "ForgeFlow archive of {id}: also keeps {commit}, which arrived during \
                         cleanup"
                    );
                    let tree = format!("{kept}^{{tree}}");
                    commit_tree(&self.git, &tree, &[kept.as_str(), commit], &message).await?
                }
            };
            // The old value: the one read, or "must not exist" (empty).
            let old = current.clone().unwrap_or_default();
            let out = self
                .git
                .output(
                    ["update-ref", name.as_str(), new.as_str(), old.as_str()],
                    false,
                )
                .await?;
            if out.success() {
                tracing::warn!(id = %id, archive = %name, commit = %commit, "work kept before removal");
                return Ok(name);
            }
        }
        Err(Error::refused(
            format!("archiving the work of {id}"),
            format!("{name} kept changing while ForgeFlow updated it; try again"),
        ))
    }
}

/// What a snapshot of a worktree's files takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Snapshot {
    /// Every file as it is, untracked ones included, and files missing
    /// from the directory as removed.
    Whole,
    /// Files present that differ from HEAD or that git does not track;
    /// missing files do not count (a checkout cut short lacks files it
    /// never wrote).
    Present,
    /// Changes to tracked files alone: what is left when git cannot add
    /// the untracked ones (an empty repository in a folder), which stay
    /// where they are.
    Tracked,
}

/// `git commit-tree` with ForgeFlow's own identity (archives are
/// ForgeFlow's commits, and a repository without `user.name` must still
/// get them); returns the new commit.
async fn commit_tree(
    git: &crate::git::Git,
    tree: &str,
    parents: &[&str],
    message: &str,
) -> Result<String> {
    let mut args = vec![
        "-c",
        "user.name=ForgeFlow",
        "-c",
        "user.email=forgeflow@localhost",
        "commit-tree",
        tree,
    ];
    for p in parents {
        args.extend(["-p", p]);
    }
    args.extend(["-m", message]);
    Ok(git.run(&args).await?.text())
}

/// The refusal of a cleanup that would destroy work.
fn would_lose_work(wt: &Worktree, dirty: &[String], unmerged: (String, u64)) -> Error {
    Error::WouldLoseWork {
        worktree: wt.id.clone(),
        files: dirty.to_vec(),
        commits: unmerged.1,
        base: unmerged.0,
    }
}

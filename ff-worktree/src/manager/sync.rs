//! `sync_worktree`: fetch, then rebase or merge onto the base; a conflict
//! leaves the worktree exactly as it was.

use std::path::PathBuf;

use ff_idempotency::Start;
use ff_traits::{IdempotencyKey, IdempotencyStorage, LockProvider, RecordStatus};

use crate::{Error, Result};
use serde_json::{Value, json};

use super::{SYNC_OPERATION, SyncOptions, SyncStrategy, Synced, Worktree, WorktreeManager};
use crate::git::{Git, GitError};
use crate::issue::IssueId;

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Brings a worktree's branch up to date with its base: fetches when
    /// there is a remote (the configured one, else the base branch's
    /// upstream), then rebases the branch onto the base (or merges it in).
    ///
    /// A conflict aborts cleanly: the worktree is exactly as before and the
    /// error lists the conflicting files. A worktree with uncommitted
    /// changes to tracked files is refused unless `options.autostash`.
    /// An unfinished rebase or merge left by a sync that crashed is aborted
    /// first; one the user started is left alone (and refused).
    ///
    /// # Errors
    /// [`NotFound`](ff_traits::Error::NotFound) when there is no such worktree;
    /// [`Error::Conflict`] naming the files; [`Error::Refused`] for a dirty
    /// worktree, a missing directory or a rebase someone else started;
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) for a base that names nothing;
    /// [`LockTimeout`](ff_traits::Error::LockTimeout); [`Backend`](ff_traits::Error::Backend) with git's message.
    pub async fn sync_worktree(&self, id_or_issue: &str, options: SyncOptions) -> Result<Synced> {
        crate::metrics::timed("sync", async {
            let found = self.find(id_or_issue).await?;
            let issue = IssueId::parse(&found.issue)?;
            self.with_issue(&issue, SYNC_OPERATION, async || {
                if found.path.join(".git").exists() && self.is_local(&found) {
                    self.run_hook(crate::hooks::Hook::PreSync, &found).await?;
                }
                let synced = self.sync_locked(&issue, &found.id, options).await?;
                self.run_hook(crate::hooks::Hook::PostSync, &found).await?;
                Ok(synced)
            })
            .await
        })
        .await
    }

    async fn sync_locked(&self, issue: &IssueId, id: &str, options: SyncOptions) -> Result<Synced> {
        let wt = match self.get(issue.as_str()).await? {
            Some(wt) if wt.id == id => wt,
            _ => {
                return Err(Error::not_found(format!(
                    "worktree {id} (it was cleaned up meanwhile)"
                )));
            }
        };
        self.ensure_local(&wt, "sync")?;
        if !wt.path.join(".git").exists() {
            return Err(Error::refused(
                format!("sync of {}", wt.id),
                format!(
                    "the directory of {} ({}) is gone; clean it up or run recover",
                    wt.id,
                    wt.path.display()
                ),
            ));
        }
        let tree = self.git.in_dir(&wt.path);
        self.abort_crashed_syncs(&wt).await?;
        if let Some(what) = unfinished(&tree).await? {
            return Err(Error::refused(
                format!("sync of {}", wt.id),
                format!(
                    "a {what} is in progress in {} and ForgeFlow did not start it; finish or \
                     abort it first",
                    wt.path.display()
                ),
            ));
        }
        let strategy = options.strategy.unwrap_or(self.config.sync_strategy);
        let (remote, onto) = self.sync_source(&wt).await?;
        if let Some(remote) = &remote {
            let guard = self.lock_local(self.lock_names.fetch(), "fetch").await?;
            self.holding(guard, async || {
                self.git
                    .run(["fetch", "--quiet", "--no-write-fetch-head", "--", remote])
                    .await?;
                Ok(())
            })
            .await?;
        }
        let onto_commit = self.git.resolve_commit(&onto).await?.ok_or_else(|| {
            Error::invalid_input("base ref", format!("{onto:?} does not name a commit"))
        })?;
        let head_before = head(&tree, &self.info.common_dir).await?;
        let key = IdempotencyKey::new(
            SYNC_OPERATION,
            json!({"id": wt.id, "head": head_before, "onto": onto_commit, "strategy": strategy}),
            json!({"repo": self.repo_key, "issue": issue.as_str()}),
        );
        let rollback = json!({"id": wt.id, "path": wt.path, "head": head_before});
        // A stale completed record is removed and the claim retried; twice
        // is enough unless something else keeps rewriting it.
        for _ in 0..3 {
            match self
                .records
                .start_operation_exclusive(&key, Some(rollback.clone()))
                .await?
            {
                Start::AlreadyCompleted(record) => {
                    // Replay only what is still true: the same sync from the
                    // same head left the branch where it is now.
                    if let Ok(done) = serde_json::from_value::<Synced>(
                        record.result.clone().unwrap_or(Value::Null),
                    ) && done.head_after == head_before
                    {
                        return Ok(done);
                    }
                    self.remove_record(&record).await?;
                }
                Start::Claimed(claim) => {
                    crate::crash::point("sync.claimed");
                    let mut done = Synced {
                        id: wt.id.clone(),
                        branch: wt.branch.clone(),
                        fetched_from: remote.clone(),
                        onto: onto.clone(),
                        onto_commit: onto_commit.clone(),
                        strategy,
                        head_before: head_before.clone(),
                        head_after: head_before.clone(),
                    };
                    return match self.integrate(&wt, &tree, &done, options.autostash).await {
                        Ok(after) => {
                            crate::crash::point("sync.integrated");
                            done.head_after = after;
                            let value = serde_json::to_value(&done)
                                .map_err(|e| Error::invalid_input("sync", e.to_string()))?;
                            self.records.complete_operation(&claim, value).await?;
                            crate::crash::point("sync.completed");
                            tracing::info!(id = %wt.id, before = %done.head_before, after = %done.head_after, "worktree synced");
                            Ok(done)
                        }
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            Err(e)
                        }
                    };
                }
            }
        }
        Err(ff_idempotency::Error::InProgress {
            operation: SYNC_OPERATION.into(),
            key: key.record_key()?.short().to_owned(),
            lease_remaining: None,
        }
        .into())
    }

    /// Where sync takes the base from: `(remote to fetch, ref to sync onto)`.
    async fn sync_source(&self, wt: &Worktree) -> Result<(Option<String>, String)> {
        let branch = wt.base.strip_prefix("refs/heads/").unwrap_or(&wt.base);
        if let Some(remote) = &self.config.remote {
            if remote.is_empty() || remote.starts_with('-') || remote.contains(char::is_whitespace)
            {
                return Err(Error::invalid_input(
                    "remote",
                    format!("{remote:?} is not a remote name"),
                ));
            }
            return Ok((
                Some(remote.clone()),
                format!("refs/remotes/{remote}/{branch}"),
            ));
        }
        if branch.starts_with('-') {
            return Ok((None, wt.base.clone()));
        }
        // The usual base, a local branch, in one git process: git resolves
        // a name to a branch before a remote-tracking one, so a base that
        // is a branch is not remote-tracking.
        let reference = format!("refs/heads/{branch}");
        if matches!(
            crate::git::discover::read_branch(&self.info.common_dir, &reference),
            Some(Some(_))
        ) {
            return self.branch_upstream(&reference, wt).await;
        }
        // A remote-tracking base (`origin/main`, `refs/remotes/origin/main`)
        // has no upstream of its own: fetch it from its remote.
        if let Some((remote, full)) = self.remote_tracking(&wt.base).await? {
            return Ok((Some(remote), full));
        }
        // (rev-parse echoes `--end-of-options` rather than honouring it;
        // the leading-dash check above stands in for it.)
        let upstream = self
            .git
            .output(
                [
                    "rev-parse",
                    "--symbolic-full-name",
                    &format!("{branch}@{{upstream}}"),
                ],
                true,
            )
            .await?;
        let configured = self
            .git
            .output(
                ["config", "--get", &format!("branch.{branch}.remote")],
                true,
            )
            .await?;
        match (upstream.success(), configured.text()) {
            (true, remote) if !remote.is_empty() && remote != "." => {
                Ok((Some(remote), upstream.text()))
            }
            (true, _) => Ok((None, upstream.text())),
            _ => Ok((None, wt.base.clone())),
        }
    }

    /// [`sync_source`](Self::sync_source) for a base that is the local
    /// branch `reference`: its upstream and the remote it comes from, read
    /// as `<branch>@{upstream}` and `branch.<branch>.remote` answer them,
    /// in one git process. An upstream whose ref is not there (`[gone]`,
    /// never fetched) counts as none, as `@{upstream}` fails then.
    async fn branch_upstream(
        &self,
        reference: &str,
        wt: &Worktree,
    ) -> Result<(Option<String>, String)> {
        let out = self
            .git
            .read([
                "for-each-ref",
                "--format=%(refname)%00%(upstream)%00%(upstream:remotename)%00%(upstream:track)",
                reference,
            ])
            .await?
            .text();
        // The pattern also matches branches beneath it (`main/x`).
        let fields = out.lines().find_map(|line| {
            let mut f = line.split('\0');
            (f.next() == Some(reference)).then(|| {
                let mut next = || f.next().unwrap_or_default().to_owned();
                (next(), next(), next())
            })
        });
        match fields {
            Some((upstream, _, track)) if upstream.is_empty() || track == "[gone]" => {
                Ok((None, wt.base.clone()))
            }
            Some((upstream, remote, _)) if !remote.is_empty() && remote != "." => {
                Ok((Some(remote), upstream))
            }
            Some((upstream, _, _)) => Ok((None, upstream)),
            None => Ok((None, wt.base.clone())),
        }
    }

    /// `(remote, refs/remotes/<remote>/<branch>)` when `base` names a
    /// remote-tracking branch of a configured remote.
    async fn remote_tracking(&self, base: &str) -> Result<Option<(String, String)>> {
        let full = self
            .git
            .output(["rev-parse", "--symbolic-full-name", base], true)
            .await?;
        let full = full.text();
        let Some(rest) = full.strip_prefix("refs/remotes/") else {
            return Ok(None);
        };
        // Remote names may hold `/`: the longest configured one that
        // prefixes the ref is the one.
        let remotes = self.git.read(["remote"]).await?.text();
        Ok(remotes
            .lines()
            .filter(|r| rest.starts_with(&format!("{r}/")))
            .max_by_key(|r| r.len())
            .map(|r| (r.to_owned(), full.clone())))
    }

    /// Rebases or merges; on failure restores the worktree and says why.
    /// Returns the new head.
    async fn integrate(
        &self,
        wt: &Worktree,
        tree: &Git,
        plan: &Synced,
        autostash: bool,
    ) -> Result<String> {
        let dirty = self.status_paths(wt, "--untracked-files=no").await?;
        if !dirty.is_empty() && !autostash {
            let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
            return Err(Error::refused(
                format!("sync of {}", wt.id),
                format!(
                    "{} has uncommitted changes ({}); commit them, or sync with autostash",
                    wt.id,
                    shown.join(", ")
                ),
            ));
        }
        // Commits only the base has, and commits only the branch has, in
        // one git process: none of the first, up to date; none of the
        // second, a fast-forward.
        let (behind, ahead) = behind_ahead(tree, &plan.onto_commit).await?;
        if behind == 0 {
            return Ok(plan.head_before.clone());
        }
        // A fast-forward makes no commit; replaying the branch's commits,
        // a merge commit or an autostash does, in the user's name: without
        // an identity git would stop halfway, so ask first.
        let fast_forward = ahead == 0;
        if !fast_forward || !dirty.is_empty() {
            let ident = tree.output(["var", "GIT_COMMITTER_IDENT"], true).await?;
            if !ident.success() {
                let detail = ident
                    .stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no name or email configured")
                    .trim()
                    .to_owned();
                return Err(Error::NoIdentity {
                    what: format!(
                        "the {} of {} onto {}",
                        plan.strategy.as_str(),
                        wt.branch,
                        plan.onto
                    ),
                    detail,
                });
            }
        }
        let stash = if autostash {
            "--autostash"
        } else {
            "--no-autostash"
        };
        let args: Vec<&str> = match plan.strategy {
            SyncStrategy::Rebase => vec!["rebase", "--quiet", stash, &plan.onto_commit],
            SyncStrategy::Merge => vec!["merge", "--quiet", "--no-edit", stash, &plan.onto_commit],
        };
        let out = tree.output(&args, false).await?;
        if out.success() {
            return head(tree, &self.info.common_dir).await;
        }
        let conflicts: Vec<String> = tree
            .read(["diff", "--name-only", "--diff-filter=U", "-z"])
            .await?
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        abort_unfinished(tree).await?;
        let restored = head(tree, &self.info.common_dir).await?;
        if restored != plan.head_before {
            tracing::error!(id = %wt.id, expected = %plan.head_before, found = %restored, "abort did not restore the head");
        }
        if conflicts.is_empty() {
            return Err(GitError::Failed {
                args: args.join(" "),
                code: out.code,
                stderr: out.stderr,
            }
            .into());
        }
        Err(Error::Conflict {
            what: format!(
                "{} of {} onto {}",
                plan.strategy.as_str(),
                wt.branch,
                plan.onto
            ),
            paths: conflicts,
            resolve: match plan.strategy {
                SyncStrategy::Merge => format!(
                    "`git merge {}`, fix the files, `git add` them, `git commit`",
                    plan.onto
                ),
                _ => format!(
                    "`git rebase {}`, fix the files, `git add` them, `git rebase --continue` \
                     (until done)",
                    plan.onto
                ),
            },
        })
    }

    /// Aborts the rebase or merge of any sync of this worktree that died
    /// midway (a pending record; under the issue lock its owner is dead),
    /// and withdraws its record. Returns one entry per sync aborted: the
    /// archive ref when the abort would have dropped work the sync did not
    /// make, kept there first (see [`Self::keep_before_abort`]).
    pub(super) async fn abort_crashed_syncs(&self, wt: &Worktree) -> Result<Vec<Option<String>>> {
        let mut aborted = Vec::new();
        for record in self.records.records(SYNC_OPERATION).await? {
            if record.status != RecordStatus::Pending
                || !self.ours(&record.context)
                || record.parameters.get("id").and_then(Value::as_str) != Some(&wt.id)
            {
                continue;
            }
            let key = IdempotencyKey::new(
                SYNC_OPERATION,
                (*record.parameters).clone(),
                (*record.context).clone(),
            );
            if let Start::Claimed(claim) =
                self.records.start_operation_exclusive(&key, None).await?
            {
                let mut kept = None;
                if wt.path.join(".git").exists() {
                    let tree = self.git.in_dir(&wt.path);
                    if let Some(what) = unfinished(&tree).await? {
                        kept = self.keep_before_abort(wt, &tree, what).await?;
                        tree.run([what, "--abort"]).await?;
                    }
                }
                self.records.abandon_operation(&claim).await?;
                tracing::warn!(id = %wt.id, kept = ?kept, "aborted a sync that died midway");
                aborted.push(kept);
            }
        }
        Ok(aborted)
    }

    /// Before a crashed sync's rebase or merge is aborted: keeps under
    /// `refs/ff/archive/<id>` what the abort would drop that the sync did
    /// not make. Agents commit and edit whenever they like, holding none
    /// of our locks, so a worktree may have lain mid-rebase for a while:
    /// a commit made then sits on the detached HEAD (the abort moves HEAD
    /// back to the branch), and the abort resets the files.
    ///
    /// HEAD last moved by the rebase itself (its reflog entry says so) and
    /// a clean tree mean nothing foreign is there, and nothing is kept;
    /// otherwise HEAD, with a snapshot of the files when any changed
    /// (untracked ones included), is kept. A merge moves no HEAD but
    /// leaves its files changed, so its state is always kept: the merge's
    /// own changes cannot be told from an agent's edits.
    async fn keep_before_abort(
        &self,
        wt: &Worktree,
        tree: &Git,
        what: &str,
    ) -> Result<Option<String>> {
        let moved = what == "rebase" && !head_last_moved_by_rebase(tree).await?;
        let changed = !self.dirty_files(wt).await?.is_empty();
        if !moved && !changed {
            return Ok(None);
        }
        let when = "found in a sync that died midway";
        let commit = if changed {
            match self.snapshot(wt, when).await {
                Ok(commit) => commit,
                // Untracked files git cannot add (an empty repository in a
                // folder) would keep the rebase, and the issue, stuck: the
                // abort leaves untracked files where they are, so the
                // changes to tracked files alone are kept.
                Err(e) => {
                    tracing::warn!(id = %wt.id, error = %e, "git cannot snapshot the untracked files; they stay in the worktree, tracked changes are kept");
                    match self
                        .snapshot_at(&wt.path, &wt.id, when, super::cleanup::Snapshot::Tracked)
                        .await?
                    {
                        Some(commit) => commit,
                        None => head(tree, &self.info.common_dir).await?,
                    }
                }
            }
        } else {
            head(tree, &self.info.common_dir).await?
        };
        Ok(Some(self.keep(&wt.id, &commit).await?))
    }
}

/// Whether HEAD's last reflog entry is a rebase's own step ("rebase
/// (pick): …"). No reflog (`core.logAllRefUpdates` off) answers no, so
/// the caller keeps HEAD rather than guess.
async fn head_last_moved_by_rebase(tree: &Git) -> Result<bool> {
    let out = tree
        .output(["reflog", "-1", "--format=%gs", "HEAD", "--"], true)
        .await?;
    Ok(out.success() && out.text().starts_with("rebase"))
}

/// How many commits `onto` has that HEAD has not, and HEAD has that
/// `onto` has not.
async fn behind_ahead(tree: &Git, onto: &str) -> Result<(u64, u64)> {
    let out = tree
        .read([
            "rev-list",
            "--left-right",
            "--count",
            "--end-of-options",
            &format!("{onto}...HEAD"),
        ])
        .await?
        .text();
    let mut counts = out.split_whitespace().map(str::parse::<u64>);
    match (counts.next(), counts.next()) {
        (Some(Ok(behind)), Some(Ok(ahead))) => Ok((behind, ahead)),
        _ => Err(GitError::Failed {
            args: format!("rev-list --left-right --count {onto}...HEAD"),
            code: Some(0),
            stderr: format!("unexpected output {out:?}"),
        }
        .into()),
    }
}

/// The commit the worktree at `tree` has checked out: read from its git
/// directory and the branch its HEAD names, as git keeps them (no git
/// process in the usual case); git answers when they do not read plainly
/// (reftable, an unborn branch, a HEAD or ref in another shape).
async fn head(tree: &Git, common_dir: &std::path::Path) -> Result<String> {
    use crate::git::discover::{self, Head};
    let read =
        discover::worktree_git_dir(tree.dir()).and_then(|git_dir| {
            match discover::head_in(&git_dir)? {
                Head::Detached(id) => Some(id),
                Head::Branch(reference) => discover::read_branch(common_dir, &reference)?,
            }
        });
    match read {
        Some(id) => Ok(id),
        None => Ok(tree.read(["rev-parse", "--verify", "HEAD"]).await?.text()),
    }
}

/// `rebase` or `merge` when one is unfinished in the worktree. Its git
/// directory is read from its `.git` file (no git process in the usual
/// case); git names it when that does not read plainly.
async fn unfinished(tree: &Git) -> Result<Option<&'static str>> {
    let git_dir = match crate::git::discover::worktree_git_dir(tree.dir()) {
        Some(dir) => dir,
        None => PathBuf::from(tree.read(["rev-parse", "--absolute-git-dir"]).await?.text()),
    };
    Ok(crate::git::discover::unfinished_in(&git_dir))
}

/// Aborts an unfinished rebase or merge, which puts back the branch, the
/// index, the files and any autostash as they were.
async fn abort_unfinished(tree: &Git) -> Result<()> {
    match unfinished(tree).await? {
        Some(what) => {
            tree.run([what, "--abort"]).await?;
            Ok(())
        }
        None => Ok(()),
    }
}

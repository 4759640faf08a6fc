//! `create_worktree`: idempotent and atomic.

use std::path::PathBuf;

use ff_idempotency::Start;
use ff_traits::{IdempotencyStorage, LockProvider, Timestamp};

use crate::{Error, Result};

use super::{CREATE_OPERATION, Created, LimitPolicy, Worktree, WorktreeManager, parse_worktree};
use crate::git::repair;
use crate::issue::IssueId;

/// Most copied local files (.worktreeinclude) excluded one by one: every
/// worktree's `git status` reads the exclude file, so it stays short.
const MAX_EXCLUDED: usize = 1_000;

pub(super) use crate::names::Plan;

/// Most names tried for one issue (`PROJ-1`, `PROJ-1@2`, …) before a create
/// gives up: each one taken is a directory or branch someone left.
const MAX_ATTEMPTS: u32 = 100;

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Creates the worktree of `issue`, or returns the one it has.
    ///
    /// Idempotent and atomic: while the issue has a worktree, this returns
    /// it (`reused`); otherwise it makes one whole, or leaves no directory,
    /// registration, branch or record behind, so a retry works at once.
    /// Work left half-done by a create that crashed is undone first.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) for a bad issue id (before any side effect);
    /// [`Error::LimitReached`]; [`LockTimeout`](ff_traits::Error::LockTimeout);
    /// [`Backend`](ff_traits::Error::Backend) with git's message when git fails.
    pub async fn create_worktree(&self, issue: &str) -> Result<Created> {
        crate::metrics::timed("create", async {
            let issue = IssueId::parse(issue)?;
            self.with_issue(&issue, CREATE_OPERATION, async || {
                self.create_locked(&issue).await
            })
            .await
        })
        .await
    }

    pub(super) async fn create_locked(&self, issue: &IssueId) -> Result<Created> {
        crate::crash::point("create.issue_locked");
        let key = self.create_key(issue);
        // A stale completed record is removed and the claim retried; twice
        // is enough unless something else keeps rewriting it.
        let mut kept: Option<PathBuf> = None;
        for _ in 0..5 {
            // Git's registry, read once for the checks made before the
            // registry lock (each is made again under it, or concerns
            // this issue alone, whose lock is held): at 1,000 worktrees a
            // read is 1,000 files.
            let registered = repair::registered_paths(&self.info.common_dir);
            let plan = self.free_names(issue, &registered).await?;
            let planned = serde_json::to_value(&plan)
                .map_err(|e| Error::invalid_input("worktree plan", e.to_string()))?;
            // Under the issue lock a pending record is a dead create's.
            match self
                .records
                .start_operation_exclusive(&key, Some(planned))
                .await?
            {
                Start::AlreadyCompleted(record) => {
                    let wt = parse_worktree(record.result.as_ref())?;
                    // A record naming a path or branch that is not
                    // ForgeFlow's for this issue was not written by us
                    // (a store a repository shipped, a forgery): nothing
                    // acts on what it names. It holds the issue's key, so
                    // it is withdrawn, touching no git state, and the
                    // create goes on.
                    if let Err(why) = self.check_ours(&wt) {
                        tracing::warn!(issue = %issue, why, "a foreign create record is withdrawn; nothing it names is touched");
                        self.remove_record(&record).await?;
                        continue;
                    }
                    // Another server's worktree is that server's to judge.
                    let registered = self.is_local(&wt) && self.is_registered(&wt.path).await?;
                    if !self.is_local(&wt) || (registered && wt.path.join(".git").exists()) {
                        if self.is_local(&wt) {
                            // A restore killed mid-add left it half-made.
                            self.finish_half_made(&wt).await?;
                        }
                        // A create killed mid-hook left post_create to run.
                        let wt = self.post_create(issue, wt).await?;
                        return Ok(Created {
                            worktree: self.with_status(wt),
                            reused: true,
                            evicted: Vec::new(),
                            set_aside: None,
                            from_pool: None,
                        });
                    }
                    // Not a worktree any more, though something is at its
                    // path (a removal an agent's write or a kill cut short,
                    // a killed restore): those files are kept, moved out of
                    // the way, and the issue goes on.
                    if wt.path.exists() {
                        kept = self
                            .with_registry("set aside", async || {
                                let kept = super::aside::set_aside(&self.base, &wt.path, &wt.id)?;
                                // A registration left without its directory
                                // (git killed before it dropped it, maybe
                                // still marked `initializing`) would stop
                                // the restore below: drop it, files gone
                                // aside first.
                                if self.registered_in_git(&wt.path) && !wt.path.exists() {
                                    repair::remove_worktree(&self.git, &wt.path).await?;
                                }
                                Ok(kept)
                            })
                            .await?;
                        crate::crash::point("restore.set_aside");
                    }
                    // Its directory is gone but git still has its branch:
                    // bring it back at its path, commits and all, rather
                    // than hand out a path that does not exist.
                    if !wt.path.exists() && self.branch_exists(&wt.branch).await? {
                        self.restore(&wt).await?;
                        tracing::warn!(id = %wt.id, "worktree directory was gone; restored from its branch");
                        return Ok(Created {
                            worktree: self.with_status(wt),
                            reused: true,
                            evicted: Vec::new(),
                            set_aside: kept,
                            from_pool: None,
                        });
                    }
                    // Removed behind ForgeFlow's back: forget it (keeping
                    // any commits of its branch), and make a new one.
                    tracing::warn!(id = %wt.id, "recorded worktree is gone; creating a new one");
                    self.forget_vanished(&wt, &record).await?;
                }
                Start::Claimed(claim) => {
                    crate::crash::point("create.claimed");
                    for data in &claim.abandoned_rollbacks {
                        let abandoned: Plan =
                            serde_json::from_value(data.clone()).map_err(|e| {
                                Error::corrupt("rollback data", claim.key.short(), e.to_string())
                            })?;
                        self.undo(&abandoned).await?;
                    }
                    // An undo may have dropped a registration.
                    let registered = if claim.abandoned_rollbacks.is_empty() {
                        registered
                    } else {
                        repair::registered_paths(&self.info.common_dir)
                    };
                    // One worktree per issue, whatever this manager's
                    // namespace, state directory or store: one of the
                    // issue's that these records do not name is refused,
                    // named, never duplicated.
                    let unknown = match self
                        .unknown_in(&registered, &[], Some(issue.as_str()))
                        .await
                    {
                        Ok(all) => all.into_iter().next(),
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            return Err(e);
                        }
                    };
                    if let Some(other) = unknown {
                        self.records.abandon_operation(&claim).await?;
                        return Err(Error::Refused {
                            what: format!("create of issue {issue}"),
                            reason: format!(
                                "it has a worktree already, {} at {}, which this namespace and \
                                 store do not know: {}",
                                other.id,
                                crate::display::escape_path(&other.path),
                                other.why()
                            ),
                        });
                    }
                    // The base, and the directories of a sparse checkout,
                    // are checked before anything changes (an eviction
                    // included); the base is resolved once, for both.
                    let base = match self.base_commit().await {
                        Ok(base) => match self.check_sparse(&base).await {
                            Ok(()) => base,
                            Err(e) => {
                                self.records.abandon_operation(&claim).await?;
                                return Err(e);
                            }
                        },
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            return Err(e);
                        }
                    };
                    // What `.worktreeinclude` names is listed and checked
                    // before anything is made or evicted: bad input leaves
                    // nothing changed.
                    let included = match self.included().await {
                        Ok(included) => included,
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            return Err(e);
                        }
                    };
                    let evicted = match self.make_room(issue, &registered).await {
                        Ok(evicted) => evicted,
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            return Err(e);
                        }
                    };
                    let slot = match self.take_slot(issue, &plan.id).await {
                        Ok(slot) => {
                            crate::crash::point("create.slot_taken");
                            slot
                        }
                        Err(e) => {
                            self.records.abandon_operation(&claim).await?;
                            return Err(e);
                        }
                    };
                    // A warm pool worktree when there is one; else made.
                    let mut from_pool = None;
                    let made = match self.claim_from_pool(issue, &plan, slot, &base).await {
                        Ok(Some((wt, entry))) => {
                            from_pool = Some(entry);
                            Ok(Some(wt))
                        }
                        Ok(None) => self.add(issue, &plan, slot, &base).await,
                        Err(e) => Err(e),
                    };
                    let added = match made {
                        Ok(Some(wt)) => self.bring_local_files(included, wt).await,
                        // Taken since they were chosen, by something not
                        // this attempt's (it made nothing): nothing to
                        // undo; the next free names are tried.
                        Ok(None) => {
                            self.free_slots_of(&plan.id).await?;
                            self.records.abandon_operation(&claim).await?;
                            continue;
                        }
                        Err(e) => Err(e),
                    };
                    return match added {
                        Ok(wt) => {
                            crate::crash::point("create.included");
                            let value = serde_json::to_value(&wt)
                                .map_err(|e| Error::invalid_input("worktree", e.to_string()))?;
                            self.records.complete_operation(&claim, value).await?;
                            crate::crash::point("create.completed");
                            tracing::info!(issue = %issue, id = %wt.id, "worktree created");
                            let wt = self.post_create(issue, wt).await?;
                            Ok(Created {
                                worktree: self.with_status(wt),
                                reused: false,
                                evicted,
                                set_aside: kept,
                                from_pool,
                            })
                        }
                        Err(e) => {
                            self.after_failed_add(&plan, &claim).await?;
                            Err(e)
                        }
                    };
                }
            }
        }
        Err(ff_idempotency::Error::InProgress {
            operation: CREATE_OPERATION.into(),
            key: key.record_key()?.short().to_owned(),
            lease_remaining: None,
        }
        .into())
    }

    /// Leaves nothing of a failed attempt: undoes what git may have made,
    /// then withdraws the claim so a retry starts fresh. If the undo fails,
    /// the pending record keeps the plan and the next create of the issue
    /// (or `recover`) undoes it; the caller still learns why the create
    /// failed. With `cleanup_on_error` off, the worktree stays for
    /// inspection and `recover` removes it later.
    async fn after_failed_add(&self, plan: &Plan, claim: &ff_idempotency::Claim) -> Result<()> {
        if !self.config.cleanup_on_error {
            tracing::warn!(id = %plan.id, path = %plan.path.display(), "create failed; left for inspection (cleanup_on_error is off)");
            // Locked, so `recover` knows it for a failed create (to remove
            // later), not a live worktree whose record was lost (to keep).
            let args: [&std::ffi::OsStr; 6] = [
                "worktree".as_ref(),
                "lock".as_ref(),
                "--reason".as_ref(),
                "ForgeFlow: create failed; kept for inspection".as_ref(),
                "--".as_ref(),
                plan.path.as_os_str(),
            ];
            if let Err(e) = self.git.run(args).await {
                tracing::warn!(id = %plan.id, error = %e, "cannot mark the failed worktree");
            }
            self.free_slots_of(&plan.id).await?;
            return Ok(self.records.abandon_operation(claim).await?);
        }
        match self.undo(plan).await {
            Ok(()) => Ok(self.records.abandon_operation(claim).await?),
            Err(undo) => {
                tracing::error!(
                    id = %plan.id,
                    error = %undo,
                    "could not undo a failed create; the next attempt will"
                );
                Ok(())
            }
        }
    }

    /// What `.worktreeinclude` names, read off the runtime's threads (it
    /// walks the main working tree).
    async fn included(&self) -> Result<Option<crate::include::Included>> {
        let root = self.info.toplevel.clone();
        let base = self.base.clone();
        let limits = crate::include::Limits::default().with_bytes(self.config.include_max_bytes);
        tokio::task::spawn_blocking(move || {
            crate::include::Included::scan_with_limits(&root, &[&base], limits)
        })
        .await
        .map_err(|e| {
            Error::from(ff_traits::Error::backend(
                "worktree include",
                "the scan died",
                e,
            ))
        })?
    }

    /// Copies the included files into the new worktree and makes the
    /// configured symlinks, off the runtime's threads.
    async fn bring_local_files(
        &self,
        included: Option<crate::include::Included>,
        wt: Worktree,
    ) -> Result<Worktree> {
        let links = self.config.symlinks.clone();
        if included.is_none() && links.is_empty() {
            return Ok(wt);
        }
        // What ff puts there is no one's work: excluded before it exists
        // (a crash leaves a line too many, never a dirty worktree), so
        // `git status` stays clean, `git add -A` never commits a copied
        // `.env`, and cleanup finds nothing to lose. Git reads one exclude
        // file for every worktree, so the lines are the paths themselves,
        // the same in each (a copy's too: a file .worktreeinclude names is
        // local by declaration); past MAX_EXCLUDED, copies are left out.
        let mut lines: Vec<String> = links
            .iter()
            .filter_map(|p| repair::exclude_line(p))
            .collect();
        if let Some(included) = &included {
            let copies: Vec<String> = included.paths().filter_map(repair::exclude_line).collect();
            if copies.len() <= MAX_EXCLUDED {
                lines.extend(copies);
            } else {
                tracing::warn!(
                    copies = copies.len(),
                    "too many local files to exclude one by one; they show as untracked"
                );
            }
        }
        self.exclude(lines).await?;
        let root = self.info.toplevel.clone();
        let dest = wt.path.clone();
        let id = wt.id.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(included) = included {
                let copied = included.copy_into(&dest)?;
                tracing::info!(
                    id,
                    files = copied.files,
                    links = copied.links,
                    bytes = copied.bytes,
                    skipped = copied.skipped,
                    "copied local files (.worktreeinclude)"
                );
            }
            let linked = crate::include::link_into(&root, &dest, &links)?;
            if linked > 0 {
                tracing::info!(id, linked, "linked directories (symlink)");
            }
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| {
            Error::from(ff_traits::Error::backend(
                "worktree include",
                "the copy died",
                e,
            ))
        })??;
        Ok(wt)
    }

    /// Below the limit, nothing. At it, with [`LimitPolicy::EvictOldest`],
    /// removes the oldest worktree with nothing to lose, skipping issues
    /// someone is working on (their lock is busy); never waits for another
    /// issue's lock while holding this one's, so two creates cannot
    /// deadlock. The final count is checked again under the registry lock.
    async fn make_room(&self, issue: &IssueId, registered: &[PathBuf]) -> Result<Vec<Worktree>> {
        if self.config.limit_policy != LimitPolicy::EvictOldest
            || self.count_ours_among(registered) < self.config.max_worktrees
        {
            return Ok(Vec::new());
        }
        for candidate in self.list_worktrees().await? {
            if candidate.issue == issue.as_str() || !self.is_local(&candidate) {
                continue;
            }
            let Ok(other) = IssueId::parse(&candidate.issue) else {
                continue;
            };
            let Some(guard) = self.try_lock_issue(&other, "evictWorktree").await? else {
                continue;
            };
            let evicted = self
                .holding(guard, async || {
                    // Nothing to lose, and nothing running in it: an
                    // eviction stops no one.
                    if !self.running_in(&candidate).is_empty()
                        || !self.has_nothing_to_lose(&candidate).await?
                    {
                        return Ok(None);
                    }
                    self.cleanup_locked(&other, &candidate.id, false)
                        .await
                        .map(|c| c.removed)
                })
                .await?;
            if let Some(wt) = evicted {
                tracing::info!(evicted = %wt.id, for_issue = %issue, "evicted the oldest clean, merged worktree");
                return Ok(vec![wt]);
            }
        }
        Err(self.limit_reached(
            "; no worktree is clean, merged and free of running processes, so none could be evicted",
        ))
    }

    pub(super) fn limit_reached(&self, why: &str) -> Error {
        Error::LimitReached {
            limit: self.config.max_worktrees,
            base: self.base.display().to_string(),
            why: why.to_owned(),
            setting: "max_worktrees".to_owned(),
        }
    }

    /// Makes a worktree whose directory vanished again, at its path, from
    /// its branch: `git worktree add --force` replaces git's stale
    /// registration of the missing directory (and only that one).
    pub(super) async fn restore(&self, wt: &Worktree) -> Result<()> {
        self.with_registry("restore worktree", async || {
            let args: [&std::ffi::OsStr; 6] = [
                "worktree".as_ref(),
                "add".as_ref(),
                "--force".as_ref(),
                "--quiet".as_ref(),
                wt.path.as_os_str(),
                wt.branch.as_ref(),
            ];
            self.git.run(args).await?;
            Ok(())
        })
        .await?;
        crate::crash::point("restore.registered");
        Ok(())
    }

    /// Finishes `wt`'s registration when a `git worktree add` (a create
    /// or a restore) was killed after registering it and before pointing
    /// its `HEAD` at the branch; returns what was done, `None` when there
    /// was nothing to finish. Files found in the directory are kept: the
    /// checkout runs only into a directory holding nothing but `.git`, and
    /// otherwise only the index is filled (missing files then show as
    /// deleted, nothing is overwritten). Call under the issue's lock.
    pub(super) async fn finish_half_made(&self, wt: &Worktree) -> Result<Option<String>> {
        let Some(admin) = crate::git::repair::half_made_registration(&wt.path) else {
            return Ok(None);
        };
        if !self.branch_exists(&wt.branch).await? {
            // Nothing to point it at: the record's own repair judges it.
            return Ok(None);
        }
        crate::git::repair::finish_registration(&admin, &wt.branch).map_err(|e| {
            Error::io(
                "git",
                &format!("finish the half-made registration {}", admin.display()),
                &e,
            )
        })?;
        let only_git = std::fs::read_dir(&wt.path)
            .map(|entries| entries.flatten().all(|e| e.file_name() == ".git"))
            .unwrap_or(false);
        let git = self.git.in_dir(&wt.path);
        if only_git {
            git.run(["checkout", "--force", "--quiet"]).await?;
            Ok(Some(format!(
                "a killed git left its registration half-made; pointed it at {} and checked it out",
                wt.branch
            )))
        } else {
            git.run(["reset", "--quiet"]).await?;
            Ok(Some(format!(
                "a killed git left its registration half-made; pointed it at {} and filled the \
                 index, keeping the files found there (`git status` shows what differs)",
                wt.branch
            )))
        }
    }

    /// Worktrees git has registered under the base path, read from git's
    /// registry in-process (as `git worktree list` reads it).
    pub(super) fn count_ours(&self) -> usize {
        self.count_ours_among(&repair::registered_paths(&self.info.common_dir))
    }

    /// [`count_ours`](Self::count_ours) among `registered`, the registry
    /// as read just before.
    pub(super) fn count_ours_among(&self, registered: &[PathBuf]) -> usize {
        registered
            .iter()
            .filter(|p| p.starts_with(&self.base))
            // The warm pool has a limit of its own.
            .filter(|p| {
                p.file_name()
                    .is_none_or(|n| !n.to_string_lossy().starts_with(super::POOL_PREFIX))
            })
            .count()
    }

    /// The base ref new worktrees start from.
    pub(super) fn base_ref(&self) -> Result<String> {
        match &self.config.base_ref {
            Some(r) => Ok(r.clone()),
            None => self.info.head_branch.clone().ok_or_else(|| {
                Error::invalid_input(
                    "base ref",
                    "HEAD is detached and no base ref was configured; name one",
                )
            }),
        }
    }

    /// `git worktree add --no-checkout` under the registry lock, after the
    /// limit check; then, outside it, the checkout (`git checkout -f` in
    /// the new, empty worktree: it fills the index and the files and runs
    /// the `post-checkout` hook, as `worktree add` would have).
    /// The first names of `issue` that nothing has: no directory (or
    /// anything else) at the path, no registration, no branch.
    ///
    /// # Errors
    /// [`Error::Refused`] when the issue's branch would nest with an
    /// existing branch (`ff/a` and `ff/a/b`), or every name is taken.
    async fn free_names(&self, issue: &IssueId, registered: &[PathBuf]) -> Result<Plan> {
        let first = self.names.plan(issue, 1, &self.location);
        if let Some(other) = self.nesting_branch(&first.branch).await? {
            let whose = self
                .names
                .recognise_branch(&other)
                .and_then(|p| p.issue())
                .map(|i| format!(" (issue {}'s)", crate::display::escape(&i)))
                .unwrap_or_default();
            return Err(Error::Refused {
                what: format!("create of issue {issue}"),
                reason: format!(
                    "its branch {} cannot exist beside the branch {}{whose}: git keeps branches \
                     as paths, so one cannot be a folder of the other; clean up that worktree or \
                     name the issue otherwise",
                    first.branch,
                    crate::display::escape(&other)
                ),
            });
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let plan = self.names.plan(issue, attempt, &self.location);
            if !self.names_taken(&plan, registered).await? {
                return Ok(plan);
            }
            tracing::debug!(issue = %issue, id = %plan.id, "names taken; trying the next");
        }
        Err(Error::Refused {
            what: format!("create of issue {issue}"),
            reason: format!(
                "its names {} to {}@{MAX_ATTEMPTS} are all taken (directories under {} or \
                 branches); run `ff recover`, then remove what is left there",
                issue.segment(),
                issue.segment(),
                crate::display::escape_path(&self.base)
            ),
        })
    }

    /// Whether anything has `plan`'s path or branch, `registered` being
    /// git's registry as read just before.
    pub(super) async fn names_taken(&self, plan: &Plan, registered: &[PathBuf]) -> Result<bool> {
        Ok(std::fs::symlink_metadata(&plan.path).is_ok()
            || registered
                .iter()
                .any(|p| crate::paths::same_path(p, &plan.path))
            || self.branch_exists(&plan.branch).await?)
    }

    /// A branch that nests with `branch`, if one exists.
    async fn nesting_branch(&self, branch: &str) -> Result<Option<String>> {
        if let Some(found) = crate::git::discover::nesting_branch(&self.info.common_dir, branch) {
            return Ok(found);
        }
        let parents: Vec<String> = {
            let parts: Vec<&str> = branch.split('/').collect();
            (1..parts.len())
                .map(|n| format!("refs/heads/{}", parts[..n].join("/")))
                .collect()
        };
        let mut args = vec![
            "for-each-ref".to_owned(),
            "--count=1".to_owned(),
            "--format=%(refname:lstrip=2)".to_owned(),
            "--".to_owned(),
            format!("refs/heads/{branch}/"),
        ];
        args.extend(parents);
        let listed = self.git.read(args).await?;
        Ok(listed.text().lines().next().map(str::to_owned))
    }

    /// Adds the worktree `plan` names; `None`, having made nothing, when
    /// its path or branch was taken since the plan was made.
    /// `base` is the base ref and the commit it named when the create
    /// began.
    async fn add(
        &self,
        issue: &IssueId,
        plan: &Plan,
        slot: u32,
        base: &(String, String),
    ) -> Result<Option<Worktree>> {
        let Some(wt) = self.register(issue, plan, slot, base).await? else {
            return Ok(None);
        };
        crate::crash::point("create.registered");
        let tree = self.git.in_dir(&wt.path);
        match &self.config.checkout {
            crate::Checkout::Sparse(dirs) => {
                self.make_sparse(&tree, dirs).await?;
                crate::crash::point("sparse_create.sparse_set");
            }
            // Git copies a sparse main worktree's set to a new worktree:
            // asked for every file, it gets every file.
            crate::Checkout::Full
                if crate::sparse::read(&wt.path, &self.info.common_dir).is_some() =>
            {
                tree.run(["sparse-checkout", "disable"]).await?;
            }
            _ => {}
        }
        // In a sparse worktree, only what its patterns name is written.
        tree.run(["checkout", "--force", "--quiet"]).await?;
        crate::crash::point("create.checked_out");
        Ok(Some(wt))
    }

    /// [`InvalidInput`](ff_traits::Error::InvalidInput) unless every
    /// directory of a sparse checkout is one in the base commit (a file,
    /// or nothing, would check out nothing and look like success).
    async fn check_sparse(&self, (base, commit): &(String, String)) -> Result<()> {
        let crate::Checkout::Sparse(dirs) = &self.config.checkout else {
            return Ok(());
        };
        if dirs.is_empty() {
            return Ok(());
        }
        let mut args = vec![
            "--literal-pathspecs".to_owned(),
            "ls-tree".to_owned(),
            "-d".to_owned(),
            "-z".to_owned(),
            "--full-tree".to_owned(),
            "--name-only".to_owned(),
            commit.clone(),
            "--".to_owned(),
        ];
        args.extend(dirs.iter().map(|d| d.as_str().to_owned()));
        let listed = self.git.read(args).await?;
        let found: std::collections::HashSet<&[u8]> = listed
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .collect();
        let missing: Vec<String> = dirs
            .iter()
            .filter(|d| !found.contains(d.as_str().as_bytes()))
            .map(|d| crate::display::escape(d.as_str()).into_owned())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::invalid_input(
            "sparse directory",
            format!(
                "{} {} not a directory in {} (a file, or nothing there); name directories of \
                 the tree, relative to its top",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                crate::display::escape(base)
            ),
        ))
    }

    /// Gives the new, empty worktree behind `tree` its sparse directories
    /// (cone mode), before its checkout. The first sparse worktree of a
    /// repository makes git turn on per-worktree configuration
    /// (`extensions.worktreeConfig`, in the shared `config`): that one
    /// runs under the registry lock, so two creates never race for
    /// `config.lock`; after it, each worktree writes only its own files.
    async fn make_sparse(&self, tree: &crate::git::Git, dirs: &[crate::SparseDir]) -> Result<()> {
        let mut args = vec!["sparse-checkout", "set", "--cone", "--"];
        args.extend(dirs.iter().map(crate::SparseDir::as_str));
        if repair::worktree_config_enabled(&self.info.common_dir) {
            tree.run(&args).await?;
            return Ok(());
        }
        self.with_registry("sparse checkout", async || {
            repair::run_writing_config(tree, &self.info.common_dir, &args).await?;
            Ok(())
        })
        .await
    }

    /// The base ref and the commit it names now.
    pub(super) async fn base_commit(&self) -> Result<(String, String)> {
        let base = self.base_ref()?;
        // HEAD's branch is read in-process; a configured base may be any
        // revision, which git resolves.
        let commit = match &self.config.base_ref {
            None => self.resolve_branch(&format!("refs/heads/{base}")).await?,
            Some(_) => self.git.resolve_commit(&base).await?,
        }
        .ok_or_else(|| {
            Error::invalid_input("base ref", format!("{base:?} does not name a commit"))
        })?;
        Ok((base, commit))
    }

    async fn register(
        &self,
        issue: &IssueId,
        plan: &Plan,
        slot: u32,
        (base, base_commit): &(String, String),
    ) -> Result<Option<Worktree>> {
        self.with_registry("worktree add", async || {
            // Read once under the lock, for the count and the names.
            let registered = repair::registered_paths(&self.info.common_dir);
            let count = self.count_ours_among(&registered);
            if count >= self.config.max_worktrees {
                return Err(self.limit_reached(" (limit_policy = \"refuse\")"));
            }
            if self.names_taken(plan, &registered).await? {
                return Ok(None);
            }
            // A new worktree under a name an earlier one had starts with
            // no process groups: lines its predecessor left (it vanished,
            // or a recover forgot it) must never name groups to stop.
            self.groups().forget(&plan.id);
            // Registration only: the checkout, the slow part, runs after
            // the registry lock is released.
            let args: [&std::ffi::OsStr; 10] = [
                "worktree".as_ref(),
                "add".as_ref(),
                "--quiet".as_ref(),
                "--no-checkout".as_ref(),
                "--no-track".as_ref(),
                "-b".as_ref(),
                plan.branch.as_ref(),
                "--".as_ref(),
                plan.path.as_os_str(),
                base_commit.as_ref(),
            ];
            if let Err(e) = self.git.run(args).await {
                // A `worktree add` killed mid-write leaves an empty
                // `commondir` that fails every later one: mend, try again.
                let torn = matches!(&e, crate::git::GitError::Failed { stderr, .. } if stderr.contains("commondir"));
                if !torn || self.torn_commondirs(true).await.is_empty() {
                    return Err(e.into());
                }
                self.git.run(args).await?;
            }
            // The count just read, plus this one: no second listing.
            crate::metrics::worktree_count(count + 1, self.config.max_worktrees);
            Ok(Some(self.planned_worktree(issue, plan, slot, (base, base_commit))))
        })
        .await
    }

    /// The worktree `plan` describes for `issue`, made now in slot `slot`
    /// from `base` (its ref and commit): what a create returns and records,
    /// whether git made it anew or it came from the warm pool.
    pub(super) fn planned_worktree(
        &self,
        issue: &IssueId,
        plan: &Plan,
        slot: u32,
        (base, base_commit): (&String, &String),
    ) -> Worktree {
        Worktree {
            id: plan.id.clone(),
            issue: issue.to_string(),
            path: plan.path.clone(),
            branch: plan.branch.clone(),
            base: base.clone(),
            base_commit: base_commit.clone(),
            created_at: Timestamp::now(),
            location: self.location.clone(),
            recovered: false,
            hook_failed: false,
            agent_status: None,
            slot: Some(slot),
            port: self.port_of(Some(slot)),
            status: super::WorktreeStatus::Active,
            sparse: None,
        }
    }
}

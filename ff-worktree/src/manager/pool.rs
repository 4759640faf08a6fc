//! The warm pool: worktrees checked out (and prepared by the `pool_prepare`
//! hook) ahead of time, so that a create on a large repository hands one
//! out in the time of a rename.
//!
//! A pool worktree lives at `<base>/.ff-pool-<unique>`, detached at the
//! base's commit of when it was made: a dot name, so no scan takes it for
//! an issue's worktree, and it counts against
//! [`pool_size`](super::WorktreeConfig::pool_size), not `max_worktrees`.
//! Each has a record of its own (operation `poolWorktree`, keyed by the
//! clone's location as well as the repository, so two clones sharing a
//! store never see each other's): pending while it is made, completed once
//! it is ready.
//!
//! | step | what it leaves when killed | settled by |
//! |---|---|---|
//! | fill: record claimed | a pending record | the next fill or `recover`: record withdrawn |
//! | fill: `worktree add`, checkout, `pool_prepare` | a pending record and a half-made worktree | the same: worktree removed, record withdrawn |
//! | claim: record removed | a pool worktree no record names | the same: removed |
//! | claim: `worktree move`, branch | the issue's pending create record | the next create of the issue or `recover`: its attempt undone |
//!
//! A claim removes the entry's record by a conditional write (the revision
//! it read) under the clone's registry lock, then moves the directory and
//! names its branch for the issue under that same lock; the fill and the
//! settling of orphans also change the registry only under it, so a
//! worktree is never handed out twice, nor removed while it is claimed.

use std::path::PathBuf;

use ff_idempotency::Start;
use ff_traits::{
    IdempotencyKey, IdempotencyRecord, IdempotencyStorage, LockProvider, RecordStatus, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::create::Plan;
use super::{Recovery, RepairKind, Worktree, WorktreeManager};
use crate::hooks::{self, Hook};
use crate::{Error, Result};

/// The operation name of pool worktree records.
pub(crate) const POOL_OPERATION: &str = "poolWorktree";

/// The start of a pool worktree's directory name under the base path.
pub const POOL_PREFIX: &str = ".ff-pool-";

/// One worktree of the warm pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PoolEntry {
    /// Its directory's name under the base path (`.ff-pool-<unique>`).
    pub id: String,
    /// Its directory.
    pub path: PathBuf,
    /// The base ref it was made from.
    pub base: String,
    /// The commit it is checked out at (detached).
    pub base_commit: String,
    /// The clone it lives in.
    pub location: String,
    /// When its fill began.
    pub since: Timestamp,
    /// Whether it is made and prepared (else a fill is making it, or one
    /// died making it).
    #[serde(default)]
    pub ready: bool,
}

/// What [`fill_pool`](WorktreeManager::fill_pool) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolFill {
    /// The pool worktrees it made.
    pub made: Vec<PoolEntry>,
    /// What it settled first (left by fills or claims that died).
    pub settled: Recovery,
    /// Another fill of this clone was running: nothing was done (that one
    /// fills the pool).
    pub busy: bool,
}

/// What [`drain_pool`](WorktreeManager::drain_pool) removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolDrain {
    /// The ready pool worktrees removed.
    pub removed: Vec<PoolEntry>,
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    fn pool_key(&self, id: &str) -> IdempotencyKey {
        IdempotencyKey::new(
            POOL_OPERATION,
            json!({"entry": id}),
            json!({"repo": self.repo_key, "location": self.location}),
        )
    }

    /// Whether `entry` is one ForgeFlow would have made here: directly
    /// under the base path, named `.ff-pool-` and letters and digits.
    /// Records are read from a store anyone may have written: one that is
    /// not this shape names nothing anything is done to.
    fn pool_shaped(&self, entry: &PoolEntry) -> bool {
        pool_id_shaped(&entry.id) && entry.path == self.base.join(&entry.id)
    }

    /// This clone's pool records, with the entry each names (records of
    /// another clone or repository are not read; one whose entry cannot be
    /// read is returned with `None`).
    async fn pool_records(&self) -> Result<Vec<(IdempotencyRecord, Option<PoolEntry>)>> {
        let records = self.records.records(POOL_OPERATION).await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                r.context.get("repo").and_then(|v| v.as_str()) == Some(self.repo_key.as_str())
                    && r.context.get("location").and_then(|v| v.as_str())
                        == Some(self.location.as_str())
            })
            .map(|r| {
                let data = match r.status {
                    RecordStatus::Completed => r.result.as_ref(),
                    _ => r.rollback_data.as_ref(),
                };
                let entry = data
                    .and_then(|v| serde_json::from_value::<PoolEntry>(v.clone()).ok())
                    .map(|mut e| {
                        e.ready = r.status == RecordStatus::Completed;
                        e
                    });
                (r, entry)
            })
            .collect())
    }

    /// The pool worktrees of this clone, ready or being made, oldest first.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when the store cannot be read.
    pub async fn pool_status(&self) -> Result<Vec<PoolEntry>> {
        let mut entries: Vec<PoolEntry> = self
            .pool_records()
            .await?
            .into_iter()
            .filter_map(|(_, e)| e)
            .filter(|e| self.pool_shaped(e))
            .collect();
        entries.sort_by_key(|e| e.since);
        Ok(entries)
    }

    /// Makes pool worktrees until the pool holds
    /// [`pool_size`](super::WorktreeConfig::pool_size), after settling
    /// what fills and claims that died left. One fill runs per clone at a
    /// time: while another runs, this returns at once with `busy` (that
    /// one counts again after each worktree it makes, so it also replaces
    /// those claimed meanwhile).
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when git or the store fails;
    /// [`Error::HookFailed`] when `pool_prepare` fails (the worktree it ran
    /// in is removed).
    pub async fn fill_pool(&self) -> Result<PoolFill> {
        let options = self.lock_options("fillPool", None);
        let Some(guard) = self
            .local
            .try_acquire(self.lock_names.pool(), &options)
            .await?
        else {
            return Ok(PoolFill {
                busy: true,
                ..PoolFill::default()
            });
        };
        self.holding(guard, async || {
            let mut fill = PoolFill::default();
            self.settle_pool_locked(&mut fill.settled).await?;
            while self.pool_records().await?.len() < self.config.pool_size {
                let entry = self.fill_one().await?;
                tracing::info!(id = %entry.id, "pool worktree ready");
                fill.made.push(entry);
            }
            Ok(fill)
        })
        .await
    }

    /// Makes one pool worktree: record first (so a kill anywhere after
    /// leaves a pending record naming what to remove), then the detached
    /// worktree, its checkout, `pool_prepare`, and the record completed.
    async fn fill_one(&self) -> Result<PoolEntry> {
        let (base, base_commit) = self.base_commit().await?;
        let id = format!("{POOL_PREFIX}{}", ff_traits::identity::unique_id());
        let mut entry = PoolEntry {
            path: self.base.join(&id),
            id,
            base,
            base_commit,
            location: self.location.clone(),
            since: Timestamp::now(),
            ready: false,
        };
        let value = serde_json::to_value(&entry)
            .map_err(|e| Error::invalid_input("pool entry", e.to_string()))?;
        let claim = match self
            .records
            .start_operation_exclusive(&self.pool_key(&entry.id), Some(value))
            .await?
        {
            Start::Claimed(claim) => claim,
            Start::AlreadyCompleted(_) => {
                return Err(Error::invalid_input(
                    "pool entry",
                    format!("{} has a record already", entry.id),
                ));
            }
        };
        crate::crash::point("pool_fill.claimed");
        let made = async {
            self.with_registry("pool worktree add", async || {
                let args: [&std::ffi::OsStr; 8] = [
                    "worktree".as_ref(),
                    "add".as_ref(),
                    "--quiet".as_ref(),
                    "--no-checkout".as_ref(),
                    "--detach".as_ref(),
                    "--".as_ref(),
                    entry.path.as_os_str(),
                    entry.base_commit.as_ref(),
                ];
                self.git.run(args).await?;
                Ok(())
            })
            .await?;
            crate::crash::point("pool_fill.registered");
            self.git
                .in_dir(&entry.path)
                .run(["checkout", "--force", "--quiet"])
                .await?;
            crate::crash::point("pool_fill.checked_out");
            if !self.config.hooks.pool_prepare.is_empty() {
                let env = vec![
                    ("FF_HOOK_ATTEMPT", "1".to_owned()),
                    ("FF_WORKTREE_ID", entry.id.clone()),
                    ("FF_WORKTREE_PATH", entry.path.display().to_string()),
                    ("FF_BASE", entry.base.clone()),
                    ("FF_BASE_COMMIT", entry.base_commit.clone()),
                    ("FF_REPO", self.info.toplevel.display().to_string()),
                ];
                let groups = self.groups();
                let log = self
                    .config
                    .hooks
                    .log_dir
                    .as_ref()
                    .map(|d| d.join(format!("{}.log", entry.id)));
                hooks::run(
                    Hook::PoolPrepare,
                    &self.config.hooks,
                    &entry.path,
                    &env,
                    log.as_deref(),
                    Some((&groups, entry.id.as_str())),
                )
                .await?;
            }
            crate::crash::point("pool_fill.prepared");
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = made {
            // Nothing of it is anyone's work: removed, the record withdrawn;
            // if that fails too, the pending record names it for the next
            // fill or recover.
            if self.remove_pool_worktree(&entry).await.is_ok() {
                self.records.abandon_operation(&claim).await?;
            }
            return Err(e);
        }
        entry.ready = true;
        let value = serde_json::to_value(&entry)
            .map_err(|e| Error::invalid_input("pool entry", e.to_string()))?;
        self.records.complete_operation(&claim, value).await?;
        crate::crash::point("pool_fill.completed");
        Ok(entry)
    }

    /// Removes a pool worktree (registration and directory), stopping what
    /// `pool_prepare` left running there. Only ever one of
    /// [`pool_shaped`](Self::pool_shaped) name.
    async fn remove_pool_worktree(&self, entry: &PoolEntry) -> Result<()> {
        if !self.pool_shaped(entry) {
            return Ok(());
        }
        let running = crate::processes::Running {
            ours: self.groups().live(&entry.id),
            others: Vec::new(),
        };
        if !running.is_empty() {
            crate::processes::stop(&running, self.config.cleanup_grace).await;
        }
        self.with_registry("pool worktree remove", async || {
            self.remove_registered(&entry.path, &entry.id).await
        })
        .await?;
        self.groups().forget(&entry.id);
        Ok(())
    }

    /// Removes every ready pool worktree of this clone (each claimed from
    /// the store first, as a create would, so none is removed while it is
    /// handed out). Worktrees being made are left to their fill.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when git or the store fails.
    pub async fn drain_pool(&self) -> Result<PoolDrain> {
        let mut drained = PoolDrain::default();
        for (record, entry) in self.pool_records().await? {
            let Some(entry) = entry.filter(|e| e.ready && self.pool_shaped(e)) else {
                continue;
            };
            let taken = self
                .with_registry("pool drain", async || self.take_pool_record(&record).await)
                .await?;
            if taken {
                self.remove_pool_worktree(&entry).await?;
                drained.removed.push(entry);
            }
        }
        Ok(drained)
    }

    /// Removes `record` from the store if it is still the revision read:
    /// `true` when this call removed it, `false` when someone else changed
    /// or removed it first.
    async fn take_pool_record(&self, record: &IdempotencyRecord) -> Result<bool> {
        match self
            .records
            .store()
            .remove(&record.key, record.revision)
            .await
        {
            Ok(()) => Ok(true),
            Err(
                ff_traits::Error::NotFound { .. } | ff_traits::Error::PreconditionFailed { .. },
            ) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Settles the pool under the pool lock (held by the caller): records
    /// of fills that died (pending) and their worktrees, ready records
    /// whose worktree is gone, and pool worktrees no record names (a claim
    /// that died after taking the record).
    async fn settle_pool_locked(&self, report: &mut Recovery) -> Result<()> {
        for (record, entry) in self.pool_records().await? {
            let entry = entry.filter(|e| self.pool_shaped(e));
            let detail = match &entry {
                None => "a pool record that names no pool worktree of this clone: withdrawn",
                Some(e) if !e.ready => {
                    "a fill that died making it: the worktree removed, the record withdrawn"
                }
                Some(e) if !(self.registered_in_git(&e.path) && e.path.join(".git").exists()) => {
                    "a ready pool worktree that is gone: its record withdrawn"
                }
                Some(_) => continue,
            };
            let subject = entry
                .as_ref()
                .map_or_else(|| record.key.short().to_owned(), |e| e.id.clone());
            if !report.dry_run {
                if !self
                    .with_registry("pool settle", async || self.take_pool_record(&record).await)
                    .await?
                {
                    continue;
                }
                if let Some(e) = &entry {
                    self.remove_pool_worktree(e).await?;
                }
            }
            report.note(RepairKind::SettledPoolWorktree, subject, detail);
        }
        // Pool worktrees no record names, judged under the registry lock,
        // where claims take a record and move its worktree in one go.
        let orphans = self
            .with_registry("pool settle", async || {
                let named: std::collections::HashSet<String> = self
                    .pool_records()
                    .await?
                    .into_iter()
                    .filter_map(|(_, e)| e.map(|e| e.id))
                    .collect();
                let mut found: Vec<String> = std::fs::read_dir(&self.base)
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                found.extend(
                    crate::git::repair::registered_paths(&self.info.common_dir)
                        .into_iter()
                        .filter(|p| p.parent() == Some(self.base.as_path()))
                        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned())),
                );
                found.sort();
                found.dedup();
                let mut orphans = Vec::new();
                for id in found {
                    if !pool_id_shaped(&id) || named.contains(&id) {
                        continue;
                    }
                    if !report.dry_run {
                        self.remove_registered(&self.base.join(&id), &id).await?;
                    }
                    orphans.push(id);
                }
                Ok(orphans)
            })
            .await?;
        for id in orphans {
            if !report.dry_run {
                self.groups().forget(&id);
            }
            report.note(
                RepairKind::SettledPoolWorktree,
                id,
                "a pool worktree no record names (a claim or fill that died): removed",
            );
        }
        Ok(())
    }

    /// `recover`'s part: settles the pool unless a fill is running (then
    /// it is that fill's to settle, and said so).
    pub(super) async fn recover_pool(&self, report: &mut Recovery) -> Result<()> {
        let options = self.lock_options("recover", None);
        let Some(guard) = self
            .local
            .try_acquire(self.lock_names.pool(), &options)
            .await?
        else {
            report.note(
                RepairKind::Busy,
                "pool",
                "a pool fill is running: it settles the pool itself",
            );
            return Ok(());
        };
        self.holding(guard, async || self.settle_pool_locked(report).await)
            .await
    }

    /// Hands out a ready pool worktree of the base `base` as `plan`'s:
    /// its record taken by a conditional write, its directory moved to the
    /// plan's path and its branch made, under the registry lock; then,
    /// outside it, the branch checked out (brought to the base's current
    /// commit when the base moved, keeping the prepared untracked files).
    /// `None` when the pool has none (or this create's checkout is not the
    /// pool's): the caller makes one as usual.
    pub(super) async fn claim_from_pool(
        &self,
        issue: &crate::issue::IssueId,
        plan: &Plan,
        slot: u32,
        (base, base_commit): &(String, String),
    ) -> Result<Option<(Worktree, String)>> {
        if self.config.pool_size == 0 || self.config.checkout != crate::Checkout::GitDefault {
            return Ok(None);
        }
        let mut ready: Vec<(IdempotencyRecord, PoolEntry)> = self
            .pool_records()
            .await?
            .into_iter()
            .filter_map(|(r, e)| Some((r, e?)))
            .filter(|(_, e)| e.ready && e.base == *base && self.pool_shaped(e))
            .collect();
        if ready.is_empty() {
            return Ok(None);
        }
        ready.sort_by_key(|(_, e)| e.since);
        let claimed = self
            .with_registry("pool claim", async || {
                let registered = crate::git::repair::registered_paths(&self.info.common_dir);
                let count = self.count_ours_among(&registered);
                if count >= self.config.max_worktrees {
                    return Err(self.limit_reached(" (limit_policy = \"refuse\")"));
                }
                if self.names_taken(plan, &registered).await? {
                    return Ok(None);
                }
                for (record, entry) in &ready {
                    if !self.registered_in_git(&entry.path) || !entry.path.join(".git").exists() {
                        continue; // the next fill settles it
                    }
                    if !self.take_pool_record(record).await? {
                        continue; // someone else's now
                    }
                    crate::crash::point("pool_claim.taken");
                    self.groups().forget(&plan.id);
                    let moved: [&std::ffi::OsStr; 5] = [
                        "worktree".as_ref(),
                        "move".as_ref(),
                        "--".as_ref(),
                        entry.path.as_os_str(),
                        plan.path.as_os_str(),
                    ];
                    if let Err(e) = self.git.run(moved).await {
                        tracing::warn!(id = %entry.id, error = %e, "cannot move a pool worktree; it is removed and a worktree made as usual");
                        self.remove_registered(&entry.path, &entry.id).await?;
                        return Ok(None);
                    }
                    crate::processes::Groups::rename(&self.groups(), &entry.id, &plan.id);
                    crate::crash::point("pool_claim.moved");
                    self.git
                        .run([
                            "branch",
                            "--no-track",
                            "--",
                            plan.branch.as_str(),
                            base_commit.as_str(),
                        ])
                        .await?;
                    crate::crash::point("pool_claim.branched");
                    crate::metrics::worktree_count(count + 1, self.config.max_worktrees);
                    return Ok(Some(entry.clone()));
                }
                Ok(None)
            })
            .await?;
        let Some(entry) = claimed else {
            return Ok(None);
        };
        let tree = self.git.in_dir(&plan.path);
        let head = format!("refs/heads/{}", plan.branch);
        if entry.base_commit == *base_commit {
            // The same commit: HEAD is pointed at the branch, and nothing
            // in the index or the files needs to change.
            tree.run(["symbolic-ref", "HEAD", head.as_str()]).await?;
        } else if let Err(e) = tree
            .run(["checkout", "--quiet", plan.branch.as_str()])
            .await
        {
            // A file the pool's preparation made is tracked at the base's
            // new commit: the commit's file wins (nothing here is anyone's
            // work yet).
            tracing::warn!(error = %e, "the base moved over a prepared file; checking out by force");
            tree.run(["checkout", "--force", "--quiet", plan.branch.as_str()])
                .await?;
        }
        crate::crash::point("pool_claim.checked_out");
        tracing::info!(issue = %issue, pool = %entry.id, id = %plan.id, "claimed a pool worktree");
        Ok(Some((
            self.planned_worktree(issue, plan, slot, (base, base_commit)),
            entry.id,
        )))
    }
}

/// Whether `id` is a pool worktree's name: `.ff-pool-` and letters, digits
/// or `-`.
fn pool_id_shaped(id: &str) -> bool {
    id.strip_prefix(POOL_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

//! `recover()`: puts records, git and the disk back in agreement after
//! crashes, touching only what ForgeFlow made.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use ff_idempotency::Start;
use ff_traits::{
    IdempotencyKey, IdempotencyRecord, IdempotencyStorage, LockProvider, RecordStatus, ScanFilter,
};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::deletion::delete_removed_directory;
use super::{
    CREATE_OPERATION, Recover, SYNC_OPERATION, Worktree, WorktreeManager, WorktreeStatus,
    parse_worktree,
};
use crate::git::repair;
use crate::issue::IssueId;
use crate::names::Plan;

/// One thing [`recover`](WorktreeManager::recover) did, or would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum RepairKind {
    /// A create that died midway: what it made was removed, its record
    /// withdrawn.
    RolledBackCreate,
    /// A sync that died midway: its rebase or merge was aborted.
    AbortedSync,
    /// A worktree whose directory was removed outside ForgeFlow: its
    /// registration, branch (commits kept under `refs/ff/archive/<id>`) and
    /// record were removed.
    ForgotVanished,
    /// A worktree of ForgeFlow's shape that no record knows (a failed
    /// create kept for inspection, never checked out, or a second one for
    /// an issue that has a worktree): removed, any work archived first.
    RemovedUnrecordedWorktree,
    /// A complete worktree of ForgeFlow's shape whose record the store lost
    /// (a Redis restart, a deleted database): its record was rebuilt from
    /// git, and it was kept as it is.
    RebuiltRecord,
    /// A recorded worktree git had lost (a killed `git worktree add`): its
    /// directory was moved aside and the worktree made again from its
    /// branch.
    RestoredWorktree,
    /// A worktree nested inside one of ForgeFlow's worktrees: left alone;
    /// the outer one cannot be cleaned up until it is moved or removed.
    NestedWorktree,
    /// A directory of ForgeFlow's shape under the base path that git does
    /// not know and no record names, holding nothing (half-made): removed.
    RemovedStrayDirectory,
    /// A directory of ForgeFlow's shape under the base path that git does
    /// not know and no record names, holding files (an agent wrote into a
    /// worktree while it was removed): moved, whole, to
    /// `<base>/.ff-kept/<id>-<unique>`, where git run in it fails instead
    /// of finding the main checkout.
    SetAsideDirectory,
    /// A branch of ForgeFlow's shape with no worktree and no record:
    /// deleted, its commits archived first when its base lacks them.
    RemovedOrphanBranch,
    /// A worktree's `commondir` file that a killed `git worktree add` left
    /// empty, which breaks `git worktree` and `git branch -D` for the whole
    /// repository: rewritten with the `../..` git writes there.
    RewroteCommondir,
    /// A record the store cannot read (damaged on disk, or written by
    /// something else): left as it is, and so is any worktree or branch of
    /// the issue it may belong to, until someone repairs or removes it.
    CorruptRecord,
    /// Someone holds the issue's lock right now: nothing was touched.
    Busy,
    /// A slot (and its port) held for a worktree that no longer exists (a
    /// process killed between taking the slot and recording the worktree,
    /// or between removing the worktree and freeing it): freed.
    FreedSlot,
    /// Something that looks wrong but may hold work ForgeFlow cannot judge:
    /// left as it is, with the reason.
    LeftAlone,
    /// The directory of a removed worktree, moved out of the way
    /// (`<base>/.ff-deleting-…`) but not yet deleted (its deletion was
    /// deferred, or cut short by a kill): deleted.
    FinishedDeletion,
    /// Something of the warm pool a fill or claim that died left: a pool
    /// worktree half-made or that no record names (removed), a record
    /// whose worktree is gone (withdrawn). Pool worktrees are nobody's
    /// work: nothing is kept.
    SettledPoolWorktree,
}

impl RepairKind {
    /// Every kind, so a consumer (a schema, a table) can list them all.
    pub const ALL: [Self; 17] = [
        Self::RolledBackCreate,
        Self::AbortedSync,
        Self::ForgotVanished,
        Self::RemovedUnrecordedWorktree,
        Self::RebuiltRecord,
        Self::RestoredWorktree,
        Self::NestedWorktree,
        Self::RemovedStrayDirectory,
        Self::RemovedOrphanBranch,
        Self::RewroteCommondir,
        Self::CorruptRecord,
        Self::Busy,
        Self::FreedSlot,
        Self::LeftAlone,
        Self::SetAsideDirectory,
        Self::FinishedDeletion,
        Self::SettledPoolWorktree,
    ];

    /// Its place in [`ALL`](Self::ALL). The match is exhaustive: a new
    /// kind does not compile until it has a place, and a test checks that
    /// the place holds it.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Self::RolledBackCreate => 0,
            Self::AbortedSync => 1,
            Self::ForgotVanished => 2,
            Self::RemovedUnrecordedWorktree => 3,
            Self::RebuiltRecord => 4,
            Self::RestoredWorktree => 5,
            Self::NestedWorktree => 6,
            Self::RemovedStrayDirectory => 7,
            Self::RemovedOrphanBranch => 8,
            Self::RewroteCommondir => 9,
            Self::CorruptRecord => 10,
            Self::Busy => 11,
            Self::FreedSlot => 12,
            Self::LeftAlone => 13,
            Self::SetAsideDirectory => 14,
            Self::FinishedDeletion => 15,
            Self::SettledPoolWorktree => 16,
        }
    }
}

#[cfg(test)]
mod repair_kind_tests {
    use super::RepairKind;

    #[test]
    fn all_lists_every_kind_in_its_place() {
        for (i, kind) in RepairKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }
}

/// One entry of a [`Recovery`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Repair {
    /// What kind of repair.
    pub kind: RepairKind,
    /// What it was about (a worktree id, a path, a branch).
    pub subject: String,
    /// Details for people (where work was archived, why left alone).
    pub detail: String,
}

/// What [`recover`](WorktreeManager::recover) found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recovery {
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Everything found, in order.
    pub repairs: Vec<Repair>,
    /// A dry run's account of what it would have changed, so later steps
    /// judge the world as the real run would find it then.
    #[serde(skip)]
    would: Would,
}

/// What a dry run would have changed by now. The real run's later steps
/// see those changes in git and the store; the dry run's see them here,
/// so both take the same decisions (`tests/it/common`'s
/// `recover_as_foreseen` runs every recovery scenario both ways and
/// compares).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Would {
    /// Worktree ids whose attempts a rollback would have undone, slots
    /// included.
    undone: BTreeSet<String>,
    /// Issues whose lost record would have been rebuilt.
    recorded: BTreeSet<String>,
    /// Worktree ids whose records would have been rebuilt (live, as the
    /// real run's slot step finds them).
    adopted: BTreeSet<String>,
}

impl Recovery {
    pub(super) fn note(
        &mut self,
        kind: RepairKind,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let repair = Repair {
            kind,
            subject: subject.into(),
            detail: detail.into(),
        };
        tracing::info!(kind = ?repair.kind, subject = %repair.subject, detail = %repair.detail, dry_run = self.dry_run, "recover");
        self.repairs.push(repair);
    }
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Puts records, git and the base path back in agreement: rolls back
    /// creates and syncs that died midway, forgets worktrees whose
    /// directories were removed by hand (keeping their commits), removes
    /// half-made directories, unrecorded worktrees and orphan branches of
    /// ForgeFlow's own shape, and reports each step. With [`Recover::DryRun`],
    /// only reports.
    ///
    /// It never touches what ForgeFlow does not own: other worktrees,
    /// branches and files, its own lock and store directories, and issues
    /// whose lock someone holds right now (reported as busy).
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when git, the store or the locks fail;
    /// [`LockTimeout`](ff_traits::Error::LockTimeout) for the registry lock.
    pub async fn recover(&self, mode: Recover) -> Result<Recovery> {
        crate::metrics::timed("recover", async {
            let dry_run = mode == Recover::DryRun;
            let mut report = Recovery {
                dry_run,
                repairs: Vec::new(),
                would: Would::default(),
            };
            let torn = self.torn_commondirs(!dry_run).await;
            for dir in &torn {
                report.note(
                    RepairKind::RewroteCommondir,
                    dir.display().to_string(),
                    "a killed `git worktree add` left it empty",
                );
            }
            if dry_run && !torn.is_empty() {
                // Git cannot list worktrees until they are mended.
                return Ok(report);
            }
            let scan = self
                .records
                .store()
                .scan(&ScanFilter::default().operation(CREATE_OPERATION))
                .await?;
            for damaged in &scan.corrupt {
                report.note(
                    RepairKind::CorruptRecord,
                    &damaged.location,
                    format!(
                        "{}; left as it is, with any worktree or branch of its issue: inspect it, \
                         then repair or delete it and run recover again",
                        damaged.reason
                    ),
                );
            }
            // What git has registered, read once in-process: a `git worktree
            // list` per record would spawn a process per worktree. Each
            // candidate is checked again with git under its issue's lock.
            let listed = repair::registered_paths(&self.info.common_dir);
            for record in scan.records {
                if self.ours(&record.context) {
                    self.recover_record(&record, &listed, &mut report).await?;
                }
            }
            for record in self.records.records(SYNC_OPERATION).await? {
                if record.status == RecordStatus::Pending && self.ours(&record.context) {
                    self.recover_sync(&record, &mut report).await?;
                }
            }
            let damaged: Vec<String> = scan.corrupt.into_iter().map(|c| c.location).collect();
            self.with_registry("recover", async || {
                self.remove_strays(&damaged, &mut report).await
            })
            .await?;
            crate::crash::point("recover.strays_done");
            self.recover_slots(&mut report).await?;
            self.recover_pool(&mut report).await?;
            // Last, under no lock: deleting a large tree takes seconds.
            for dir in self.awaiting_deletion() {
                let subject = dir.display().to_string();
                if dry_run {
                    report.note(
                        RepairKind::FinishedDeletion,
                        subject,
                        "would delete this removed worktree's directory",
                    );
                    continue;
                }
                let detail = match delete_removed_directory(&self.base, &dir)? {
                    None => "deleted this removed worktree's directory".to_owned(),
                    Some(kept) => format!(
                        "something wrote into this removed worktree's directory as it was \
                         deleted: what is left is kept at {}",
                        kept.display()
                    ),
                };
                report.note(RepairKind::FinishedDeletion, subject, detail);
            }
            Ok(report)
        })
        .await
    }

    /// Frees the slots of worktrees that no longer exist, each under its
    /// issue's lock when that is free (a create in flight holds it, and
    /// its slot is not yet backed by a record).
    async fn recover_slots(&self, report: &mut Recovery) -> Result<()> {
        let held = self.slots_held().await?;
        if held.is_empty() {
            return Ok(());
        }
        let live: std::collections::HashSet<String> = self
            .list_worktrees()
            .await?
            .into_iter()
            .map(|w| w.id)
            .collect();
        for (slot, holder) in held {
            if live.contains(&holder.worktree)
                || report.would.undone.contains(&holder.worktree)
                || report.would.adopted.contains(&holder.worktree)
            {
                continue;
            }
            self.if_free(&holder.issue, report, async |issue, report| {
                // Looked at again under the lock: a create that finished
                // meanwhile made its worktree live.
                match self.get(issue.as_str()).await {
                    Ok(Some(w)) if w.id == holder.worktree => return Ok(()),
                    Ok(_) => {}
                    // A damaged record leaves its issue alone, slot included.
                    Err(e) if e.kind() == ff_traits::ErrorKind::Corrupt.into() => {
                        report.note(
                            RepairKind::LeftAlone,
                            format!("slot {slot}"),
                            format!(
                                "held for {} (issue {}), whose record is damaged",
                                holder.worktree, holder.issue
                            ),
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                if !report.dry_run {
                    self.remove_record(&holder.record).await?;
                }
                report.note(
                    RepairKind::FreedSlot,
                    format!("slot {slot}"),
                    format!(
                        "held for {} (issue {}), which no longer exists",
                        holder.worktree, holder.issue
                    ),
                );
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Runs `f` under the issue's lock if it is free at once; notes the
    /// issue as busy otherwise.
    async fn if_free(
        &self,
        issue: &str,
        report: &mut Recovery,
        f: impl AsyncFnOnce(&IssueId, &mut Recovery) -> Result<()>,
    ) -> Result<()> {
        let Ok(issue) = IssueId::parse(issue) else {
            report.note(
                RepairKind::LeftAlone,
                issue,
                "a record names an invalid issue id",
            );
            return Ok(());
        };
        match self.try_lock_issue(&issue, "recover").await? {
            Some(guard) => self.holding(guard, async || f(&issue, report).await).await,
            None => {
                report.note(
                    RepairKind::Busy,
                    issue.as_str(),
                    "its lock is held; run recover again later",
                );
                Ok(())
            }
        }
    }

    /// A create record: pending → roll back; completed but vanished →
    /// forget.
    async fn recover_record(
        &self,
        seen: &IdempotencyRecord,
        listed: &[PathBuf],
        report: &mut Recovery,
    ) -> Result<()> {
        let Some(issue) = seen.parameters.get("issue").and_then(Value::as_str) else {
            return Ok(());
        };
        // The worktree a completed record names, when it is this clone's:
        // taken apart once, then looked at on disk (its `.git`, the
        // listing, its registration).
        let local = (seen.status == RecordStatus::Completed)
            .then(|| self.worktree_of(seen.result.as_ref()).ok())
            .flatten()
            .filter(|w| self.is_local(w));
        let (vanished, unlisted, half_made) = match &local {
            None => (false, false, false),
            Some(w) if !w.path.join(".git").exists() => (true, false, false),
            Some(w) => (
                false,
                !listed.iter().any(|p| crate::paths::same_path(p, &w.path)),
                repair::half_made_registration(&w.path).is_some(),
            ),
        };
        if seen.status != RecordStatus::Pending && !vanished && !unlisted && !half_made {
            return Ok(());
        }
        self.if_free(issue, report, async |issue, report| {
            // Re-read under the lock: the record may have moved on.
            let key = self.create_key(issue);
            let Some(record) = self.records.store().load(&key.record_key()?).await? else {
                return Ok(());
            };
            match record.status {
                RecordStatus::Pending => self.roll_back_create(&key, &record, report).await,
                RecordStatus::Completed => {
                    let wt = self.worktree_of(record.result.as_ref())?;
                    if !self.is_local(&wt) {
                        return Ok(());
                    }
                    let pointer = wt.path.join(".git").exists();
                    if pointer && self.is_registered(&wt.path).await? {
                        if repair::half_made_registration(&wt.path).is_some() {
                            if report.dry_run {
                                report.note(
                                    RepairKind::RestoredWorktree,
                                    &wt.id,
                                    "would finish the registration a killed git left half-made",
                                );
                            } else if let Some(detail) = self.finish_half_made(&wt).await? {
                                report.note(RepairKind::RestoredWorktree, &wt.id, detail);
                            }
                        }
                        return Ok(());
                    }
                    if pointer && self.branch_exists(&wt.branch).await? {
                        return self.reclaim_unlisted(&wt, report).await;
                    }
                    // Its directory is gone, or what is left there is no
                    // worktree (a removal cut short): forget it, keeping
                    // its commits and whatever files are left.
                    let detail = if report.dry_run {
                        let files = wt.path.exists() && !super::aside::is_hollow(&wt.path);
                        format!(
                            "would drop its registration, branch and record{}",
                            if files {
                                ", and move the files left at its path aside, whole"
                            } else {
                                ""
                            }
                        )
                    } else {
                        let (archive, kept) = self.forget_vanished(&wt, &record).await?;
                        kept_detail(archive.as_deref(), kept.as_deref())
                    };
                    report.note(RepairKind::ForgotVanished, &wt.id, detail);
                    Ok(())
                }
                _ => Ok(()),
            }
        })
        .await
    }

    /// Takes over a dead create's pending record (its lock is ours, so its
    /// owner is dead), undoes every attempt it records, and withdraws it.
    async fn roll_back_create(
        &self,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
        report: &mut Recovery,
    ) -> Result<()> {
        let plans: Vec<Plan> = record
            .rollback_data
            .iter()
            .chain(&record.abandoned_rollbacks)
            .filter_map(|d| serde_json::from_value(d.clone()).ok())
            .collect();
        let ids: Vec<&str> = plans.iter().map(|p| p.id.as_str()).collect();
        if report.dry_run {
            report.note(
                RepairKind::RolledBackCreate,
                ids.join(", "),
                "would remove what these attempts made and withdraw the record",
            );
            report
                .would
                .undone
                .extend(plans.iter().map(|p| p.id.clone()));
            return Ok(());
        }
        if let Start::Claimed(claim) = self.records.start_operation_exclusive(key, None).await? {
            for data in &claim.abandoned_rollbacks {
                let plan: Plan = serde_json::from_value(data.clone()).map_err(|e| {
                    Error::corrupt("rollback data", claim.key.short(), e.to_string())
                })?;
                self.undo(&plan).await?;
            }
            crate::crash::point("recover.rolled_back");
            self.records.abandon_operation(&claim).await?;
            report.note(
                RepairKind::RolledBackCreate,
                ids.join(", "),
                "removed what the attempt made; its record is withdrawn",
            );
        }
        Ok(())
    }

    async fn recover_sync(&self, seen: &IdempotencyRecord, report: &mut Recovery) -> Result<()> {
        let Some(issue) = seen.context.get("issue").and_then(Value::as_str) else {
            return Ok(());
        };
        let Some(id) = seen.parameters.get("id").and_then(Value::as_str) else {
            return Ok(());
        };
        let id = id.to_owned();
        self.if_free(issue, report, async |issue, report| {
            if report.dry_run {
                report.note(
                    RepairKind::AbortedSync,
                    &id,
                    "would abort its unfinished rebase or merge",
                );
                return Ok(());
            }
            let wt = match self.get(issue.as_str()).await? {
                Some(wt) if wt.id == id => wt,
                // The worktree is gone: only the record is left to withdraw.
                _ => stray_worktree(
                    &self
                        .names
                        .recognise_id(&id)
                        .ok_or_else(|| Error::corrupt("sync record", &id, "not a worktree id"))?,
                    String::new(),
                ),
            };
            for kept in self.abort_crashed_syncs(&wt).await? {
                let detail = match kept {
                    None => "aborted its unfinished rebase or merge; the branch is as before \
                             the sync"
                        .to_owned(),
                    Some(archive) => format!(
                        "aborted its unfinished rebase or merge; the branch is as before the \
                         sync, and what was committed or changed there meanwhile is kept \
                         under {archive}"
                    ),
                };
                report.note(RepairKind::AbortedSync, &id, detail);
            }
            Ok(())
        })
        .await
    }

    /// Under the registry lock: removes what has ForgeFlow's shape but no
    /// record (a live create always has a record before it takes this
    /// lock, so nothing found here belongs to one).
    ///
    /// What belongs to an issue whose record is among the `damaged`
    /// (corrupt entries' locations) is left alone: the record may still
    /// name it, and only a person can tell.
    async fn remove_strays(&self, damaged: &[String], report: &mut Recovery) -> Result<()> {
        let mut known: HashSet<String> = HashSet::new();
        // Worktrees another namespace's records name: theirs to handle,
        // and said, so a namespace change is never silent.
        let mut foreign: Vec<(String, String)> = Vec::new();
        for r in self.records.records(CREATE_OPERATION).await? {
            if let Ok(w) = parse_worktree(r.result.as_ref()) {
                if !self.ours(&r.context) {
                    let ns = r.context.get("repo").and_then(Value::as_str);
                    foreign.push((w.id.clone(), ns.unwrap_or_default().to_owned()));
                }
                known.insert(w.id);
            }
            for d in r.rollback_data.iter().chain(&r.abandoned_rollbacks) {
                if let Ok(p) = serde_json::from_value::<Plan>(d.clone()) {
                    known.insert(p.id);
                }
            }
        }
        let base_ref = self.base_ref().unwrap_or_else(|_| "HEAD".to_owned());
        let entries = self.worktrees().await?;
        let mut checked_out: HashSet<String> = HashSet::new();
        let mut registered: HashSet<PathBuf> = HashSet::new();
        for e in &entries {
            registered.insert(e.path.clone());
            if let Some(b) = &e.branch {
                checked_out.insert(b.trim_start_matches("refs/heads/").to_owned());
            }
            if e.path.parent() != Some(self.base.as_path()) {
                if let Some(outer) = entries.iter().find(|o| {
                    o.path != e.path
                        && e.path.starts_with(&o.path)
                        && o.path.parent() == Some(self.base.as_path())
                }) {
                    report.note(
                        RepairKind::NestedWorktree,
                        e.path.display().to_string(),
                        format!(
                            "inside {}; move or remove it before that one is cleaned up",
                            outer.path.display()
                        ),
                    );
                }
                continue;
            }
            let name = e
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match self.names.recognise_id(&name) {
                Some(plan) if !known.contains(&plan.id) && self.record_damaged(&plan, damaged) => {
                    report.note(
                        RepairKind::LeftAlone,
                        &plan.id,
                        "no readable record names it, and its issue's record is damaged",
                    );
                }
                Some(plan) if !known.contains(&plan.id) => {
                    // Complete: its branch checked out, its files there,
                    // and not locked (a create in git's hands, or one that
                    // failed and was kept for inspection, is locked).
                    let complete = e.locked.is_none()
                        && e.branch.as_deref()
                            == Some(format!("refs/heads/{}", plan.branch).as_str())
                        && self.checked_out(&e.path).await?;
                    if complete && self.adopt(&plan, &base_ref, report).await? {
                        continue;
                    }
                    let wt = stray_worktree(&plan, base_ref.clone());
                    let detail = if report.dry_run {
                        "would archive any work, then remove it and its branch".to_owned()
                    } else {
                        self.remove_unrecorded(&wt).await?
                    };
                    report.note(RepairKind::RemovedUnrecordedWorktree, &plan.id, detail);
                }
                Some(plan) => {
                    if let Some((_, ns)) = foreign.iter().find(|(id, _)| *id == plan.id) {
                        report.note(
                            RepairKind::LeftAlone,
                            &plan.id,
                            format!(
                                "recorded under namespace '{ns}', not this one: that \
                                 namespace's commands handle it"
                            ),
                        );
                    }
                }
                // The warm pool's: settled by its own step.
                None if name.starts_with(super::POOL_PREFIX) => {}
                None => report.note(
                    RepairKind::LeftAlone,
                    e.path.display().to_string(),
                    "a worktree under the base path that ForgeFlow did not make",
                ),
            }
        }
        if !damaged.is_empty() {
            // Ids of issues whose record is damaged count as known:
            // nothing of theirs is removed.
            let branches = self.our_branch_names().await?;
            let directories: Vec<String> = std::fs::read_dir(&self.base)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            for name in branches.iter().chain(&directories) {
                if let Some(plan) = self.names.recognise(name)
                    && self.record_damaged(&plan, damaged)
                {
                    known.insert(plan.id);
                }
            }
        }
        self.remove_stray_directories(&known, &registered, report)?;
        self.remove_orphan_branches(&known, &checked_out, &base_ref, report)
            .await
    }

    /// The short names of branches that may be ForgeFlow's: under the
    /// branch template's fixed prefix, or of an earlier release's shape
    /// (`ff-*`).
    async fn our_branch_names(&self) -> Result<Vec<String>> {
        let prefix = self.names.template().prefix();
        let mut patterns = vec!["refs/heads/ff-*".to_owned()];
        if prefix.ends_with('/') {
            // Everything beneath that folder.
            patterns.push(format!("refs/heads/{prefix}"));
        } else {
            patterns.push(format!("refs/heads/{prefix}*"));
            patterns.push(format!("refs/heads/{prefix}*/**"));
        }
        let mut args = vec![
            "for-each-ref".to_owned(),
            "--format=%(refname:lstrip=2)".to_owned(),
        ];
        args.extend(patterns);
        let mut names: Vec<String> = self
            .git
            .read(args)
            .await?
            .text()
            .lines()
            .map(str::to_owned)
            .collect();
        names.dedup();
        Ok(names)
    }

    /// Whether the create record of `plan`'s issue is among the damaged
    /// entries (every store names an entry by a location holding its key).
    fn record_damaged(&self, plan: &Plan, damaged: &[String]) -> bool {
        if damaged.is_empty() {
            return false;
        }
        let Some(Ok(issue)) = plan.issue().as_deref().map(IssueId::parse) else {
            return false;
        };
        let Ok(key) = self.create_key(&issue).record_key() else {
            return false;
        };
        damaged.iter().any(|l| l.contains(key.as_str()))
    }

    /// A recorded worktree whose directory is there, `.git` file and all,
    /// but which git does not list, and whose branch is there: a `git
    /// worktree add` that was killed (restoring it), or a removal cut short,
    /// left it so. Nothing is deleted: the directory is set aside (to
    /// `<base>/.ff-kept/<id>-<unique>`, which nothing of ForgeFlow touches)
    /// and the worktree is made again at its path from its branch.
    async fn reclaim_unlisted(&self, wt: &Worktree, report: &mut Recovery) -> Result<()> {
        let aside = if report.dry_run {
            format!(
                "{}/{}/{}-…",
                self.base.display(),
                super::aside::KEPT_DIR,
                wt.id
            )
        } else {
            let kept = self
                .with_registry("set aside", async || {
                    super::aside::set_aside(&self.base, &wt.path, &wt.id)
                })
                .await?;
            self.restore(wt).await?;
            kept.map_or_else(
                || "(nothing was left in it)".to_owned(),
                |k| k.display().to_string(),
            )
        };
        report.note(
            RepairKind::RestoredWorktree,
            &wt.id,
            format!(
                "git did not list it (a killed git); made again from branch {}; the old \
                 directory is kept at {aside}",
                wt.branch,
            ),
        );
        Ok(())
    }

    /// Whether the worktree at `path` was ever checked out: its files are
    /// there and its index exists (a create that died between
    /// `worktree add --no-checkout` and the checkout leaves none).
    async fn checked_out(&self, path: &Path) -> Result<bool> {
        if !path.join(".git").exists() {
            return Ok(false);
        }
        let out = self
            .git
            .in_dir(path)
            .output(
                ["rev-parse", "--path-format=absolute", "--git-path", "index"],
                true,
            )
            .await?;
        Ok(out.success() && Path::new(&out.text()).exists())
    }

    /// Rebuilds the record of a complete worktree the store lost, from git:
    /// id, issue, path and branch from its name, base from the
    /// configuration, base commit where the branch left it. Returns `false`
    /// (nothing done) when the issue has a worktree recorded already (this
    /// one is then a second one, handled as before) or its lock is busy.
    async fn adopt(&self, plan: &Plan, base_ref: &str, report: &mut Recovery) -> Result<bool> {
        let Some(issue) = plan.issue().and_then(|i| IssueId::parse(&i).ok()) else {
            return Ok(false);
        };
        if report.dry_run {
            // A second worktree of one issue finds the record the first
            // one's adoption would have written.
            let recorded = report.would.recorded.contains(issue.as_str())
                || self
                    .records
                    .store()
                    .load(&self.create_key(&issue).record_key()?)
                    .await?
                    .is_some();
            if !recorded {
                report.note(
                    RepairKind::RebuiltRecord,
                    &plan.id,
                    "would rebuild its lost record from git and keep it",
                );
                report.would.recorded.insert(issue.to_string());
                report.would.adopted.insert(plan.id.clone());
            }
            return Ok(!recorded);
        }
        let Some(guard) = self.try_lock_issue(&issue, "recover").await? else {
            report.note(
                RepairKind::Busy,
                issue.as_str(),
                "its lock is held; run recover again later",
            );
            return Ok(true);
        };
        self.holding(guard, async || {
            let key = self.create_key(&issue);
            let planned = serde_json::to_value(plan)
                .map_err(|e| Error::invalid_input("worktree plan", e.to_string()))?;
            let claim = match self
                .records
                .start_operation_exclusive(&key, Some(planned))
                .await?
            {
                Start::Claimed(claim) => claim,
                Start::AlreadyCompleted(_) => return Ok(false),
            };
            let base_commit = self
                .git
                .output(
                    [
                        "merge-base",
                        "--end-of-options",
                        base_ref,
                        plan.branch.as_str(),
                    ],
                    true,
                )
                .await?;
            let base_commit = if base_commit.success() {
                base_commit.text()
            } else {
                self.git.resolve_commit(base_ref).await?.unwrap_or_default()
            };
            // The slot it held, if the store kept that record; else a free
            // one (none when every slot is held: it keeps working, portless).
            let held = self
                .slots_held()
                .await?
                .into_iter()
                .find(|(_, h)| h.worktree == plan.id)
                .map(|(slot, _)| slot);
            let slot = match held {
                Some(slot) => Some(slot),
                None => match self.take_slot(&issue, &plan.id).await {
                    Ok(slot) => Some(slot),
                    Err(e) => {
                        tracing::warn!(id = %plan.id, error = %e, "no slot for a rebuilt worktree");
                        None
                    }
                },
            };
            let wt = Worktree {
                id: plan.id.clone(),
                issue: issue.to_string(),
                path: plan.path.clone(),
                branch: plan.branch.clone(),
                base: base_ref.to_owned(),
                base_commit,
                created_at: ff_traits::Timestamp::now(),
                location: self.location.clone(),
                recovered: true,
                hook_failed: false,
                agent_status: None,
                slot,
                port: self.port_of(slot),
                status: WorktreeStatus::Active,
                sparse: None,
            };
            let value = serde_json::to_value(&wt)
                .map_err(|e| Error::invalid_input("worktree", e.to_string()))?;
            self.records.complete_operation(&claim, value).await?;
            report.note(
                RepairKind::RebuiltRecord,
                &plan.id,
                format!(
                    "its record was lost; rebuilt from git (branch {}, base {base_ref}) and kept",
                    plan.branch
                ),
            );
            Ok(true)
        })
        .await
    }

    /// Archives whatever work an unrecorded worktree holds, then removes it
    /// and its branch. Returns what was done, for the report.
    async fn remove_unrecorded(&self, wt: &Worktree) -> Result<String> {
        let dirty = wt.path.join(".git").exists() && !self.dirty_files(wt).await?.is_empty();
        let mut kept = None;
        let mut aside = None;
        if dirty {
            match self.snapshot(wt, "at recover").await {
                Ok(snapshot) => kept = Some(self.keep(&wt.id, &snapshot).await?),
                // What git cannot add (an empty repository in a folder,
                // say): the directory is kept whole, as cleanup does.
                Err(e) => {
                    tracing::warn!(id = %wt.id, error = %e, "git cannot snapshot the uncommitted files; the directory is set aside whole");
                    aside = super::aside::set_aside(&self.base, &wt.path, &wt.id)?;
                }
            }
        }
        self.remove_registered(&wt.path, &wt.id).await?;
        let files = aside.as_ref().map_or_else(String::new, |dir| {
            format!(
                "; its files set aside at {}",
                crate::display::escape_path(dir)
            )
        });
        Ok(match self.retire_branch(wt, kept, None).await? {
            Some(archive) => format!("work kept under {archive}{files}"),
            None if aside.is_some() => format!("it held no commits{files}"),
            None => "it held no work".to_owned(),
        })
    }

    fn remove_stray_directories(
        &self,
        known: &HashSet<String>,
        registered: &HashSet<PathBuf>,
        report: &mut Recovery,
    ) -> Result<()> {
        let listing = std::fs::read_dir(&self.base).map_err(|e| {
            Error::io(
                "worktree",
                &format!("cannot list {}", self.base.display()),
                &e,
            )
        })?;
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || registered.contains(&path) {
                continue;
            }
            match self.names.recognise_id(&name) {
                Some(plan)
                    if !known.contains(&plan.id) && entry.file_type().is_ok_and(|t| t.is_dir()) =>
                {
                    // Half-made by a create that died, or made again by an
                    // agent writing into a worktree as it was removed: only
                    // a directory holding nothing is removed.
                    let kept = if report.dry_run {
                        (!super::aside::is_hollow(&path)).then(|| {
                            PathBuf::from(format!(
                                "{}/{}/{}-…",
                                self.base.display(),
                                super::aside::KEPT_DIR,
                                plan.id
                            ))
                        })
                    } else {
                        super::aside::set_aside(&self.base, &path, &plan.id)?
                    };
                    match kept {
                        None => report.note(
                            RepairKind::RemovedStrayDirectory,
                            path.display().to_string(),
                            "git does not list it, no record names it, and it held nothing",
                        ),
                        Some(kept) => report.note(
                            RepairKind::SetAsideDirectory,
                            path.display().to_string(),
                            format!(
                                "git does not list it and no record names it; its files are \
                                 kept at {}",
                                kept.display()
                            ),
                        ),
                    }
                }
                Some(_) => {}
                None => report.note(
                    RepairKind::LeftAlone,
                    path.display().to_string(),
                    "not something ForgeFlow made",
                ),
            }
        }
        Ok(())
    }

    async fn remove_orphan_branches(
        &self,
        known: &HashSet<String>,
        checked_out: &HashSet<String>,
        base_ref: &str,
        report: &mut Recovery,
    ) -> Result<()> {
        for branch in &self.our_branch_names().await? {
            let branch = branch.as_str();
            let Some(plan) = self.names.recognise_branch(branch) else {
                if !checked_out.contains(branch) {
                    report.note(
                        RepairKind::LeftAlone,
                        branch,
                        "a branch under ForgeFlow's prefix not of its making, in no worktree",
                    );
                }
                continue;
            };
            if plan.branch != branch || known.contains(&plan.id) || checked_out.contains(branch) {
                continue;
            }
            // A readable name could be anyone's (`ff/login` made by hand):
            // only an earlier release's unmistakable shape is retired
            // without a record; any other is kept, and said.
            if crate::names::legacy_parts(branch).is_none() {
                report.note(
                    RepairKind::LeftAlone,
                    branch,
                    "a branch of ForgeFlow's naming in no worktree and named by no record: kept \
                     (delete it with `git branch -d` if no one needs it)",
                );
                continue;
            }
            let wt = stray_worktree(&plan, base_ref.to_owned());
            let detail = if report.dry_run {
                "would archive its unmerged commits, then delete it".to_owned()
            } else {
                match self.retire_branch(&wt, None, None).await? {
                    Some(archive) => format!("commits kept under {archive}"),
                    None => "fully merged".to_owned(),
                }
            };
            report.note(RepairKind::RemovedOrphanBranch, branch, detail);
        }
        Ok(())
    }
}

/// What a forgotten worktree left, and where it was kept.
fn kept_detail(archive: Option<&str>, kept: Option<&Path>) -> String {
    let commits = match archive {
        Some(archive) => format!("branch commits kept under {archive}"),
        None => "nothing of its branch was unmerged".to_owned(),
    };
    match kept {
        Some(kept) => format!(
            "{commits}; the files left at its path are kept at {}",
            kept.display()
        ),
        None => commits,
    }
}

/// A [`Worktree`] for names ForgeFlow recognised but has no record of.
fn stray_worktree(plan: &Plan, base: String) -> Worktree {
    Worktree {
        id: plan.id.clone(),
        issue: plan.issue().unwrap_or_default(),
        path: plan.path.clone(),
        branch: plan.branch.clone(),
        base_commit: base.clone(),
        base,
        created_at: ff_traits::Timestamp::from_millis(0),
        location: String::new(),
        recovered: false,
        hook_failed: false,
        agent_status: None,
        slot: None,
        port: None,
        status: WorktreeStatus::Missing,
        sparse: None,
    }
}

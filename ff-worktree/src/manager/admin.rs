//! Locks and records, for operators: status, statistics, garbage
//! collection and the emergency release of every lock.

use std::time::Duration;

use ff_idempotency::IdempotencyStats;
use ff_traits::{
    ForceRelease, IdempotencyStorage, LockName, LockProvider, LockStatus, RecordStatus, ScanFilter,
    Timestamp,
};

use crate::Result;

use super::{CREATE_OPERATION, WorktreeManager};

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// This repository's locks, held or not: its node and everything
    /// beneath it (issue locks) as the provider knows them, and this
    /// clone's local locks (registry, fetch, worktrees; kernel file locks
    /// whatever the provider, see [`lock_names`](crate::lock_names)).
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when a provider cannot list them.
    pub async fn lock_status(&self) -> Result<Vec<LockStatus>> {
        let mut all: Vec<LockStatus> = self
            .locks
            .locks()
            .await?
            .into_iter()
            .filter(|l| self.lock_names.owns(&l.name))
            .collect();
        // The provider may be file locks in the same directory: each lock
        // once.
        for l in self.local.locks().await? {
            if self.lock_names.owns(&l.name) && !all.iter().any(|a| a.name == l.name) {
                all.push(l);
            }
        }
        Ok(all)
    }

    /// Aggregates over every record of the store.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the store cannot be read.
    pub async fn idempotency_stats(&self) -> Result<IdempotencyStats> {
        Ok(self.records.stats().await?)
    }

    /// Removes finished records last active more than `max_age` ago (zero:
    /// every finished record), except the records of existing worktrees:
    /// those are how ForgeFlow knows them. Pending records are never
    /// removed. Returns how many were removed.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the store fails.
    pub async fn cleanup_idempotency_records(&self, max_age: Duration) -> Result<u64> {
        let cutoff = if max_age.is_zero() {
            Timestamp::from_millis(u64::MAX)
        } else {
            Timestamp::now().saturating_sub(max_age)
        };
        let scan = self
            .records
            .store()
            .scan(&ScanFilter::default().active_before(cutoff))
            .await?;
        let doomed: Vec<_> = scan
            .records
            .into_iter()
            .filter(|record| {
                // A worktree's create record and its slot are how ForgeFlow
                // knows it and its number; a hook run's record keeps its hook
                // from running twice (removed with the worktree).
                let keeps_a_worktree = ((record.operation == CREATE_OPERATION
                    || record.operation == super::slots::SLOT_OPERATION)
                    && record.status == RecordStatus::Completed)
                    || record.operation == super::hooks::HOOK_OPERATION;
                record.status.is_finished() && !keeps_a_worktree
            })
            .map(|record| (record.key, record.revision))
            .collect();
        // Each removal conditional on the revision read: a record changed
        // or removed meanwhile is no longer ours to judge, and is skipped.
        let removed = self.records.store().remove_many(&doomed).await?;
        tracing::info!(removed, max_age_ms = max_age.as_millis(), "record cleanup");
        Ok(removed)
    }

    /// Force-releases every lock of this repository. For operators after a
    /// crash on a backend whose locks outlive their holders; kernel file
    /// locks never need it.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the provider fails.
    pub async fn force_release_all_locks(&self) -> Result<Vec<ForceRelease>> {
        let mut out = Vec::new();
        let theirs: Vec<String> = self
            .locks
            .locks()
            .await?
            .into_iter()
            .map(|l| l.name)
            .collect();
        for status in self.lock_status().await? {
            let name = LockName::new(status.name)?;
            out.push(if theirs.iter().any(|t| t == name.as_str()) {
                self.locks.force_release(&name).await?
            } else {
                self.local.force_release(&name).await?
            });
        }
        Ok(out)
    }
}

/// Removes finished records last active more than `max_age` ago from a
/// store no repository manages (`ff gc` outside a repository, `ff serve`
/// started outside one): every finished record qualifies. Inside a
/// repository, [`WorktreeManager::cleanup_idempotency_records`] keeps the
/// records of existing worktrees. Between them, the one policy of
/// `ff gc` and `POST /api/admin/gc`. Returns how many were removed.
///
/// # Errors
/// [`ff_traits::Error::Backend`] when the store fails.
pub async fn cleanup_records_without_repository(
    store: impl IdempotencyStorage,
    max_age: Duration,
) -> Result<u64> {
    Ok(
        ff_idempotency::IdempotencyManager::new(store, ff_idempotency::ManagerConfig::default())
            .cleanup(max_age)
            .await?,
    )
}

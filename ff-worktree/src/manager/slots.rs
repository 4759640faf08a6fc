//! Slots: each worktree holds the smallest free number in `0..slots`
//! while it exists (and with it a port, `port_base + slot × port_stride`),
//! unique across every process and server sharing the store.
//!
//! A slot is a record of its own (`worktreeSlot`, keyed by the repository
//! and the number) naming the worktree that holds it; it is taken with
//! the store's conditional create, which exactly one caller wins, so no
//! lock spans issues. Freed when the worktree goes (cleanup, undo of a
//! failed create, a vanished worktree forgotten); `recover` frees those a
//! killed process left behind.

use std::collections::BTreeMap;

use ff_traits::{
    ClaimOwner, FencingToken, IdempotencyKey, IdempotencyRecord, IdempotencyStorage, LockProvider,
    RecordStatus, ScanFilter, Timestamp,
};
use serde_json::{Value, json};

use super::{Worktree, WorktreeManager};
use crate::issue::IssueId;
use crate::{Error, Result};

/// The operation name of slot records.
pub(crate) const SLOT_OPERATION: &str = "worktreeSlot";

/// Who holds a slot, as its record says.
#[derive(Debug, Clone)]
pub(super) struct SlotHolder {
    pub(super) worktree: String,
    pub(super) issue: String,
    pub(super) record: IdempotencyRecord,
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    fn slot_key(&self, slot: u32) -> IdempotencyKey {
        IdempotencyKey::new(
            SLOT_OPERATION,
            json!({"slot": slot}),
            json!({"repo": self.repo_key}),
        )
    }

    /// Every slot of this repository held now, by number.
    pub(super) async fn slots_held(&self) -> Result<BTreeMap<u32, SlotHolder>> {
        let scan = self
            .records
            .store()
            .scan(&ScanFilter::default().operation(SLOT_OPERATION))
            .await?;
        let mut held = BTreeMap::new();
        for record in scan.records {
            if !self.ours(&record.context) {
                continue;
            }
            let slot = record
                .parameters
                .get("slot")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok());
            let result = record.result.as_ref();
            let text = |field: &str| {
                result
                    .and_then(|r| r.get(field))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let (Some(slot), Some(worktree), Some(issue)) =
                (slot, text("worktree"), text("issue"))
            {
                held.insert(
                    slot,
                    SlotHolder {
                        worktree,
                        issue,
                        record,
                    },
                );
            }
        }
        Ok(held)
    }

    /// Every slot of this repository held now, with the id of the worktree
    /// holding it, across every process and server sharing the store.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn slots(&self) -> Result<BTreeMap<u32, String>> {
        Ok(self
            .slots_held()
            .await?
            .into_iter()
            .map(|(slot, holder)| (slot, holder.worktree))
            .collect())
    }

    /// Takes the smallest free slot for worktree `id` of `issue`.
    ///
    /// # Errors
    /// [`Error::LimitReached`] when every slot is held; the store's errors.
    pub(super) async fn take_slot(&self, issue: &IssueId, id: &str) -> Result<u32> {
        let held = self.slots_held().await?;
        let count = u32::try_from(self.config.slot_count()).unwrap_or(u32::MAX);
        for slot in (0..count).filter(|n| !held.contains_key(n)) {
            let key = self.slot_key(slot);
            let now = Timestamp::now();
            let owner = ClaimOwner::new(
                ff_traits::identity::unique_id(),
                FencingToken(0),
                now,
                std::process::id(),
                ff_traits::identity::hostname().to_owned(),
            );
            let mut record =
                IdempotencyRecord::new_pending(&key, key.record_key()?, owner, None, now);
            record.status = RecordStatus::Completed;
            record.ended_at = Some(now);
            record.owner = None;
            record.result = Some(json!({"worktree": id, "issue": issue.as_str()}));
            match self.records.store().create(record).await {
                Ok(_) => {
                    tracing::debug!(slot, id, "slot taken");
                    return Ok(slot);
                }
                // Another create took it between the scan and now.
                Err(ff_traits::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::LimitReached {
            limit: self.config.slot_count(),
            base: self.base.display().to_string(),
            why: format!(
                "; every one of its {count} slots is held (servers sharing a store share the \
                 slots)"
            ),
            // Slots default to the worktree limit: name the setting in use.
            setting: if self.config.slots.is_some() {
                "slots"
            } else {
                "max_worktrees"
            }
            .to_owned(),
        })
    }

    /// Frees every slot worktree `id` holds (one, unless a crash left a
    /// second); a slot someone else holds now is left alone.
    ///
    /// # Errors
    /// The store's errors.
    pub(super) async fn free_slots_of(&self, id: &str) -> Result<()> {
        for (slot, holder) in self.slots_held().await? {
            if holder.worktree == id {
                self.remove_record(&holder.record).await?;
                tracing::debug!(slot, id, "slot freed");
            }
        }
        Ok(())
    }

    /// Frees worktree `wt`'s slot, reading only that slot's record when
    /// the worktree knows its number.
    pub(super) async fn free_slot(&self, wt: &Worktree) -> Result<()> {
        let Some(slot) = wt.slot else {
            return self.free_slots_of(&wt.id).await;
        };
        let key = self.slot_key(slot).record_key()?;
        if let Some(record) = self.records.store().load(&key).await?
            && record
                .result
                .as_ref()
                .and_then(|r| r.get("worktree"))
                .and_then(Value::as_str)
                == Some(wt.id.as_str())
        {
            self.remove_record(&record).await?;
        }
        Ok(())
    }

    /// `port_base + slot × port_stride`, when ports are configured.
    pub(super) fn port_of(&self, slot: Option<u32>) -> Option<u16> {
        let base = u32::from(self.config.port_base?);
        let port = base + slot? * u32::from(self.config.port_stride);
        u16::try_from(port).ok()
    }
}

/// Checks the slot and port settings: ports must stay below 65536 for
/// every slot.
///
/// # Errors
/// [`ff_traits::Error::InvalidInput`] saying which setting to change.
pub(super) fn check_settings(config: &super::WorktreeConfig) -> Result<()> {
    crate::include::check_links(&config.symlinks)?;
    let slots = config.slot_count();
    if slots == 0 || slots > 100_000 {
        return Err(ff_traits::Error::invalid_input(
            "slots",
            format!("{slots} slots; give 1 to 100000"),
        )
        .into());
    }
    if let Some(base) = config.port_base {
        if config.port_stride == 0 {
            return Err(ff_traits::Error::invalid_input(
                "port_stride",
                "0 would give every worktree the same port; give 1 or more",
            )
            .into());
        }
        let last = u64::from(base) + (slots as u64 - 1) * u64::from(config.port_stride);
        if base == 0 || last > 65_535 {
            return Err(ff_traits::Error::invalid_input(
                "port_base",
                format!(
                    "port_base {base} + (slots {slots} - 1) × port_stride {} = {last}, beyond \
                     65535; lower port_base, port_stride or slots",
                    config.port_stride
                ),
            )
            .into());
        }
    }
    Ok(())
}

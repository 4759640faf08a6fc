use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::lock_unpoisoned;
use crate::error::{Error, Result};
use crate::lock::{
    FencingToken, ForceOutcome, ForceRelease, HeldLock, LockGuard, LockInfo, LockOptions,
    LockProvider, LockStatus, LossNotifier, loss_channel,
};
use crate::lock_name::LockName;
use crate::time::Timestamp;

/// A [`LockProvider`] within one process, shared by its clones.
///
/// Waiters are woken by a notification when a lock is released, never by
/// polling. Force-release revokes live holders; they learn of it through
/// [`LockGuard::ensure_held`]. Dropping a guard releases at once.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use ff_traits::{LockName, LockOptions, LockProvider, MemoryLockProvider};
/// let locks = MemoryLockProvider::new();
/// let repo = LockName::new("repo")?;
/// let guard = locks.acquire(&repo, &LockOptions::default()).await?;
/// assert!(locks.try_acquire(&repo, &LockOptions::default()).await?.is_none());
/// guard.release().await?;
/// # Ok::<(), ff_traits::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryLockProvider {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Mutex<BTreeMap<String, Slot>>,
    released: Notify,
}

#[derive(Debug, Default)]
struct Slot {
    last_token: u64,
    holders: Vec<Holder>,
}

#[derive(Debug)]
struct Holder {
    info: LockInfo,
    loss: LossNotifier,
}

impl MemoryLockProvider {
    /// A provider with no locks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants the lock if it is free for `options.mode`; otherwise returns
    /// the first current holder.
    fn try_grant(
        &self,
        name: &str,
        options: &LockOptions,
    ) -> std::result::Result<LockGuard, Option<Box<LockInfo>>> {
        let mut slots = lock_unpoisoned(&self.inner.slots);
        let slot = slots.entry(name.to_owned()).or_default();
        let free = slot
            .holders
            .iter()
            .all(|h| h.info.mode.compatible(options.mode))
            && options
                .permits
                .is_none_or(|n| slot.holders.len() < n as usize);
        if !free {
            return Err(slot.holders.first().map(|h| Box::new(h.info.clone())));
        }
        slot.last_token += 1;
        let info = LockInfo::for_current_process(
            name,
            FencingToken(slot.last_token),
            options,
            Timestamp::now(),
        );
        let (notifier, watch) = loss_channel();
        slot.holders.push(Holder {
            info: info.clone(),
            loss: notifier,
        });
        let held = MemoryHeld {
            inner: Arc::clone(&self.inner),
            name: name.to_owned(),
            id: info.id.clone(),
        };
        Ok(LockGuard::new(info, watch, Box::new(held)))
    }
}

#[async_trait]
impl LockProvider for MemoryLockProvider {
    fn backend_name(&self) -> &str {
        "memory"
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let name = name.as_str();
        options.validate()?;
        let budget = options.wait_budget();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + budget;
        let mut told = false;
        loop {
            // Register for the wake-up before looking, so a release between
            // the look and the wait is not missed.
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let holder = match self.try_grant(name, options) {
                Ok(guard) => return Ok(guard),
                Err(holder) => holder,
            };
            if !told {
                told = true;
                options.waiting();
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(Error::lock_timeout(
                    name,
                    started.elapsed(),
                    holder.map(|h| *h),
                ));
            }
        }
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        let name = name.as_str();
        options.validate()?;
        Ok(self.try_grant(name, options).ok())
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        let slots = lock_unpoisoned(&self.inner.slots);
        Ok(slots
            .iter()
            .map(|(name, slot)| {
                let holders: Vec<LockInfo> = slot.holders.iter().map(|h| h.info.clone()).collect();
                LockStatus::new(name.clone(), !holders.is_empty(), holders)
            })
            .collect())
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let name = name.as_str();
        let previous: Vec<LockInfo> = {
            let mut slots = lock_unpoisoned(&self.inner.slots);
            let Some(slot) = slots.get_mut(name) else {
                return Ok(ForceRelease::new(name, ForceOutcome::NotHeld));
            };
            slot.holders
                .drain(..)
                .map(|h| {
                    h.loss.notify_lost("force-released by an operator");
                    h.info
                })
                .collect()
        };
        self.inner.released.notify_waiters();
        let outcome = if previous.is_empty() {
            ForceOutcome::NotHeld
        } else {
            tracing::warn!(
                lock = name,
                holders = previous.len(),
                "force-released live lock holders"
            );
            ForceOutcome::Revoked { previous }
        };
        Ok(ForceRelease::new(name, outcome))
    }
}

#[derive(Debug)]
struct MemoryHeld {
    inner: Arc<Inner>,
    name: String,
    id: String,
}

impl MemoryHeld {
    fn end_grant(&self) {
        {
            let mut slots = lock_unpoisoned(&self.inner.slots);
            if let Some(slot) = slots.get_mut(&self.name) {
                // A revoked grant is already gone; removing by id never
                // touches a later grant.
                slot.holders.retain(|h| h.info.id != self.id);
            }
        }
        self.inner.released.notify_waiters();
    }
}

#[async_trait]
impl HeldLock for MemoryHeld {
    async fn release(&mut self) -> Result<()> {
        self.end_grant();
        Ok(())
    }

    fn release_on_drop(&mut self) {
        self.end_grant();
    }
}

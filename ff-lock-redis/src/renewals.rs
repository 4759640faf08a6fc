//! When grants get their watchdog: one scheduler task per provider
//! starts a grant's watchdog ([`crate::held`]) when its first renewal
//! comes due, a third of a TTL after the grant (10 s by default). Most
//! grants are released before then, and such a grant costs an entry in a
//! table instead of a spawned task: the spawn, and the wake of another
//! worker thread it brings, were half of what the client added to the
//! two scripts of an acquire + release (`redis_lock` bench).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::Shared;

/// A grant's renewal as it was when granted: what its watchdog needs.
#[derive(Debug)]
pub(crate) struct Renewal {
    pub(crate) name: String,
    pub(crate) token: String,
    pub(crate) mode: ff_traits::LockMode,
    pub(crate) ttl: std::time::Duration,
    /// Until when the grant counts as valid without a renewal.
    pub(crate) valid_until: Instant,
    /// When its first renewal is due.
    pub(crate) due: Instant,
    pub(crate) loss: ff_traits::LossNotifier,
}

#[derive(Debug)]
enum Entry {
    /// Waiting for its first renewal.
    Waiting(Renewal),
    /// Its watchdog runs.
    Watched(JoinHandle<()>),
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// The earliest due time the scheduler sleeps until (`None`: it
    /// waits for a notification alone).
    wake_at: Option<Instant>,
    scheduler: Option<JoinHandle<()>>,
}

/// The grants of one provider waiting for their first renewal.
#[derive(Debug, Default)]
pub(crate) struct Renewals {
    table: Mutex<Table>,
    changed: Notify,
}

impl Renewals {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic elsewhere under this lock leaves the table consistent
        // (each change is one insert or remove).
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a fresh grant; returns its id for [`forget`](Self::forget).
    /// Starts the scheduler on the current runtime when none runs.
    pub(crate) fn add(self: &Arc<Self>, shared: &Arc<Shared>, renewal: Renewal) -> u64 {
        let due = renewal.due;
        let mut table = self.table();
        let id = table.next_id;
        table.next_id += 1;
        table.entries.insert(id, Entry::Waiting(renewal));
        if table.scheduler.as_ref().is_none_or(JoinHandle::is_finished) {
            table.scheduler = Some(tokio::spawn(schedule(
                Arc::clone(self),
                Arc::downgrade(shared),
            )));
        }
        if table.wake_at.is_none_or(|at| due < at) {
            table.wake_at = Some(due);
            drop(table);
            self.changed.notify_one();
        }
        id
    }

    /// The grant was released: its entry goes, and its watchdog stops.
    pub(crate) fn forget(&self, id: u64) {
        if let Some(Entry::Watched(watchdog)) = self.table().entries.remove(&id) {
            watchdog.abort();
        }
    }

    /// Stops the scheduler (its provider is gone).
    pub(crate) fn stop(&self) {
        if let Some(scheduler) = self.table().scheduler.take() {
            scheduler.abort();
        }
    }

    /// Starts the watchdog of each grant whose first renewal is due;
    /// returns when the next one is.
    fn start_due(&self, shared: &Arc<Shared>, now: Instant) -> Option<Instant> {
        let mut table = self.table();
        let due: Vec<u64> = table
            .entries
            .iter()
            .filter_map(|(id, e)| match e {
                Entry::Waiting(r) if r.due <= now => Some(*id),
                _ => None,
            })
            .collect();
        for id in due {
            if let Some(Entry::Waiting(r)) = table.entries.remove(&id) {
                let watchdog = tokio::spawn(crate::held::watchdog(Arc::clone(shared), r));
                table.entries.insert(id, Entry::Watched(watchdog));
            }
        }
        table.wake_at = table
            .entries
            .values()
            .filter_map(|e| match e {
                Entry::Waiting(r) => Some(r.due),
                Entry::Watched(_) => None,
            })
            .min();
        table.wake_at
    }
}

/// The scheduler: sleeps until the earliest first renewal (or a
/// notification that an earlier one was added: a notification sent while
/// it is not waiting is kept for its next wait), starts the watchdogs
/// due. It holds its provider weakly, so a dropped provider is not kept
/// alive by it (the provider stops it when dropped); a grant holds the
/// provider, so while one waits the provider is there.
async fn schedule(renewals: Arc<Renewals>, shared: Weak<Shared>) {
    loop {
        let wake_at = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            renewals.start_due(&shared, Instant::now())
        };
        match wake_at {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = renewals.changed.notified() => {}
                }
            }
            None => renewals.changed.notified().await,
        }
    }
}

//! The shapes the API, the page and `ff top` show, made from what the
//! backends hold.

use std::collections::BTreeMap;

use ff_model::serve::{LockView, OperationView, WorktreeView};
use ff_traits::{IdempotencyRecord, LockStatus, RecordStatus, Timestamp};
use ff_worktree::Worktree;
use serde::Serialize;

use crate::Backends;
use crate::alerts::{Alert, AlertRules};

/// How many rows of each list an [`Overview`] carries.
const OVERVIEW_ROWS: usize = 50;

/// Serializes a [`Timestamp`] as RFC 3339, as every `--json` output does.
pub(crate) fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The whole picture at one instant: what `/api/stats` and `ff top` show.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Overview {
    /// When it was taken.
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
    /// Whether every backend answered.
    pub backend_up: bool,
    /// What failed, when something did.
    pub backend_error: Option<String>,
    /// Locks held now.
    pub locks_held: usize,
    /// Locks known (held or idle).
    pub locks_known: usize,
    /// Age of the oldest grant, in ms.
    pub oldest_hold_ms: Option<u64>,
    /// Records in the store.
    pub records: usize,
    /// Entries that could not be read.
    pub corrupt: usize,
    /// Records per status.
    pub by_status: BTreeMap<String, usize>,
    /// Records per operation.
    pub by_operation: BTreeMap<String, usize>,
    /// Age of the oldest pending operation's attempt, in ms.
    pub oldest_pending_ms: Option<u64>,
    /// Percent of finished operations that succeeded.
    pub success_rate: Option<f64>,
    /// Mean duration of finished operations, in ms.
    pub avg_duration_ms: Option<f64>,
    /// The repository whose worktrees are shown.
    pub repository: Option<String>,
    /// Worktrees, and the limit.
    pub worktrees: usize,
    /// The repository's worktree limit.
    pub worktree_limit: Option<usize>,
    /// Alerts firing.
    pub alerts: Vec<Alert>,
    /// Held locks, oldest grant first (at most 50).
    pub held_locks: Vec<LockView>,
    /// Pending operations, oldest first (at most 50).
    pub pending: Vec<OperationView>,
    /// Failed operations, most recent first (at most 50).
    pub failed: Vec<OperationView>,
    /// Worktrees, newest first (at most 50).
    pub worktree_list: Vec<WorktreeView>,
}

/// What the backends hold, read once.
pub(crate) struct Parts<'a> {
    pub(crate) locks: &'a [LockStatus],
    pub(crate) records: &'a [IdempotencyRecord],
    pub(crate) corrupt: usize,
    pub(crate) worktrees: &'a [Worktree],
    pub(crate) repository: Option<String>,
    pub(crate) worktree_limit: Option<usize>,
    pub(crate) error: Option<String>,
}

impl Overview {
    pub(crate) fn from_parts(p: &Parts<'_>, alerts: Vec<Alert>) -> Self {
        let now = Timestamp::now();
        let mut held: Vec<&LockStatus> = p.locks.iter().filter(|l| l.held).collect();
        let oldest_grant = |l: &LockStatus| l.holders.iter().map(|h| h.acquired_at).min();
        held.sort_by_key(|l| oldest_grant(l));
        let oldest_hold_ms = held
            .first()
            .and_then(|l| oldest_grant(l))
            .map(|t| now.as_millis().saturating_sub(t.as_millis()));
        let mut by_status = BTreeMap::new();
        let mut by_operation = BTreeMap::new();
        let (mut completed, mut finished, mut total_ms) = (0usize, 0usize, 0u64);
        for r in p.records {
            *by_status.entry(r.status.as_str().to_owned()).or_insert(0) += 1;
            *by_operation.entry(r.operation.clone()).or_insert(0) += 1;
            if r.status.is_finished() {
                finished += 1;
                total_ms += r.duration().map_or(0, ms);
                if r.status == RecordStatus::Completed {
                    completed += 1;
                }
            }
        }
        let mut pending: Vec<&IdempotencyRecord> = p
            .records
            .iter()
            .filter(|r| r.status == RecordStatus::Pending)
            .collect();
        pending.sort_by_key(|r| r.last_attempt_at);
        let mut failed: Vec<&IdempotencyRecord> = p
            .records
            .iter()
            .filter(|r| r.status == RecordStatus::Failed)
            .collect();
        failed.sort_by_key(|r| std::cmp::Reverse(r.last_activity()));
        let mut worktrees: Vec<&Worktree> = p.worktrees.iter().collect();
        worktrees.sort_by_key(|w| std::cmp::Reverse(w.created_at));
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        Self {
            at: now,
            backend_up: p.error.is_none(),
            backend_error: p.error.clone(),
            locks_held: held.len(),
            locks_known: p.locks.len(),
            oldest_hold_ms,
            records: p.records.len(),
            corrupt: p.corrupt,
            by_status,
            by_operation,
            oldest_pending_ms: pending.first().map(|r| {
                now.as_millis()
                    .saturating_sub(r.last_attempt_at.as_millis())
            }),
            success_rate: (finished > 0).then(|| completed as f64 * 100.0 / finished as f64),
            avg_duration_ms: (finished > 0).then(|| total_ms as f64 / finished as f64),
            repository: p.repository.clone(),
            worktrees: p.worktrees.len(),
            worktree_limit: p.worktree_limit,
            alerts,
            held_locks: held
                .iter()
                .take(OVERVIEW_ROWS)
                .map(|l| LockView::new(l, now))
                .collect(),
            pending: pending
                .iter()
                .take(OVERVIEW_ROWS)
                .map(|r| OperationView::new(r, now))
                .collect(),
            failed: failed
                .iter()
                .take(OVERVIEW_ROWS)
                .map(|r| OperationView::new(r, now))
                .collect(),
            worktree_list: worktrees
                .iter()
                .take(OVERVIEW_ROWS)
                .map(|w| WorktreeView::new(w, now))
                .collect(),
        }
    }
}

/// Reads every backend once and sums it up, with the alerts `rules` would
/// fire now (without their duration of firing). What `ff top` shows.
pub async fn overview(backends: &Backends, rules: &AlertRules) -> Overview {
    let mut errors = Vec::new();
    let locks = backends.locks.locks().await.unwrap_or_else(|e| {
        errors.push(format!("{} locks: {e}", backends.locks.backend_name()));
        Vec::new()
    });
    let (records, corrupt) = match backends.store.scan(&ff_traits::ScanFilter::default()).await {
        Ok(scan) => (scan.records, scan.corrupt.len()),
        Err(e) => {
            errors.push(format!("{} store: {e}", backends.store.backend_name()));
            (Vec::new(), 0)
        }
    };
    let (worktrees, repository, limit) = match &backends.worktrees {
        Some(source) => {
            let list = source.worktrees().await.unwrap_or_else(|e| {
                errors.push(format!("worktrees: {e}"));
                Vec::new()
            });
            (list, Some(source.repository()), Some(source.limit()))
        }
        None => (Vec::new(), None, None),
    };
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let parts = Parts {
        locks: &locks,
        records: &records,
        corrupt,
        worktrees: &worktrees,
        repository,
        worktree_limit: limit,
        error,
    };
    let alerts = rules.firing(&parts, None);
    Overview::from_parts(&parts, alerts)
}

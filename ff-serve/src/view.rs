//! The shapes the API, the page and `ff top` show, made from what the
//! backends hold.

use std::collections::BTreeMap;

use ff_traits::{IdempotencyRecord, LockInfo, LockStatus, RecordStatus, Timestamp};
use ff_worktree::{Worktree, WorktreeStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

// The shapes below are `serve_*` in `ff-cli/schemas/common.schema.json`.
// Their fields are declared in name order: the JSON they give is, byte for
// byte, what the hand-built objects they replaced gave.

/// A lock holder as the API, the events and `ff top` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HolderView {
    /// When the grant was made (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub acquired_at: String,
    /// How long it has been held, in ms.
    pub age_ms: u64,
    /// The grant's fencing token.
    pub fencing_token: u64,
    /// The holder's host.
    pub hostname: String,
    /// The grant's id.
    pub id: String,
    /// The issue the lock is for, when the worktree manager took it.
    pub issue: Option<String>,
    /// `alive`, `dead` or `unknown`, judged from this host.
    #[schemars(extend("enum" = ["alive", "dead", "unknown"]))]
    pub liveness: String,
    /// The grant's mode (`exclusive`, `shared`, …).
    pub mode: String,
    /// What the holder said it was doing.
    pub operation: String,
    /// The holder's pid.
    pub pid: u32,
}

impl HolderView {
    /// `h` as shown at `now`.
    #[must_use]
    pub fn new(h: &LockInfo, now: Timestamp) -> Self {
        Self {
            acquired_at: h.acquired_at.to_string(),
            age_ms: ms(h.age(now)),
            fencing_token: h.fencing_token.0,
            hostname: h.hostname.clone(),
            id: h.id.clone(),
            issue: ff_worktree::lock_names::HolderMetadata::of(h).issue,
            liveness: match ff_process::holder_liveness(h) {
                ff_process::Liveness::Alive => "alive",
                ff_process::Liveness::Dead => "dead",
                _ => "unknown",
            }
            .to_owned(),
            mode: h.mode.to_string(),
            operation: h.operation.clone(),
            pid: h.pid,
        }
    }
}

/// A lock and its holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockView {
    /// Whether anyone holds it.
    pub held: bool,
    /// Its holders (several for a shared lock or a semaphore).
    pub holders: Vec<HolderView>,
    /// The holders' mode, when known.
    pub mode: Option<String>,
    /// The lock's name.
    #[schemars(length(min = 1))]
    pub name: String,
}

impl LockView {
    /// `l` as shown at `now`.
    #[must_use]
    pub fn new(l: &LockStatus, now: Timestamp) -> Self {
        Self {
            held: l.held,
            holders: l.holders.iter().map(|h| HolderView::new(h, now)).collect(),
            mode: l.mode.map(|m| m.to_string()),
            name: l.name.clone(),
        }
    }
}

/// An operation's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OperationView {
    /// Since its last attempt, in ms.
    pub age_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// From claim to end, in ms, once it ended.
    pub duration_ms: Option<u64>,
    /// When it ended (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub ended_at: Option<String>,
    /// Its recorded failure.
    pub error: Option<OperationErrorView>,
    /// The record's key.
    pub key: String,
    /// When its last attempt began (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_attempt_at: String,
    /// The operation's name.
    pub operation: String,
    /// Who holds its claim, while pending.
    pub owner: Option<OwnerView>,
    /// When it was first claimed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// `pending`, `completed`, `failed`, `rolled_back`.
    #[schemars(extend("enum" = ["pending", "completed", "failed", "rolled_back"]))]
    pub status: String,
}

/// A recorded failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OperationErrorView {
    /// Its kind.
    pub kind: String,
    /// Its message.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

/// The holder of an operation's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OwnerView {
    /// The claim's fencing token.
    pub fencing_token: u64,
    /// The claimant's host.
    pub hostname: String,
    /// When the claim's lease lapses (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub lease_deadline: String,
    /// The claimant's pid.
    pub pid: u32,
}

impl OperationView {
    /// `r` as shown at `now`.
    #[must_use]
    pub fn new(r: &IdempotencyRecord, now: Timestamp) -> Self {
        Self {
            age_ms: now
                .as_millis()
                .saturating_sub(r.last_attempt_at.as_millis()),
            attempts: r.attempts,
            duration_ms: r.duration().map(ms),
            ended_at: r.ended_at.map(|t| t.to_string()),
            error: r.error.as_ref().map(|e| OperationErrorView {
                kind: e.kind.clone(),
                message: e.message.clone(),
                retryable: e.retryable,
            }),
            key: r.key.as_str().to_owned(),
            last_attempt_at: r.last_attempt_at.to_string(),
            operation: r.operation.clone(),
            owner: r.owner.as_ref().map(|o| OwnerView {
                fencing_token: o.fencing_token.0,
                hostname: o.hostname.clone(),
                lease_deadline: o.lease_deadline.to_string(),
                pid: o.pid,
            }),
            started_at: r.started_at.to_string(),
            status: r.status.as_str().to_owned(),
        }
    }
}

/// How a [`WorktreeStatus`] is written, for its schema.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // a schema's stand-in, never made
enum WorktreeStatusName {
    Active,
    Missing,
    Elsewhere,
}

/// A worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorktreeView {
    /// Since it was created, in ms.
    pub age_ms: u64,
    /// What it was made from.
    pub base: String,
    /// Its branch.
    pub branch: String,
    /// When it was created (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// Whether its `post_create` hook failed and it was kept.
    pub hook_failed: bool,
    /// Its id.
    pub id: String,
    /// Its issue.
    pub issue: String,
    /// The host and clone it lives in.
    pub location: String,
    /// Its directory.
    pub path: String,
    /// Its port, when ports are configured.
    pub port: Option<u16>,
    /// Its slot, when slots are configured.
    pub slot: Option<u32>,
    /// Where its directory is: `active`, `missing`, `elsewhere`.
    #[schemars(with = "WorktreeStatusName")]
    pub status: WorktreeStatus,
}

impl WorktreeView {
    /// `w` as shown at `now`.
    #[must_use]
    pub fn new(w: &Worktree, now: Timestamp) -> Self {
        Self {
            age_ms: now.as_millis().saturating_sub(w.created_at.as_millis()),
            base: w.base.clone(),
            branch: w.branch.clone(),
            created_at: w.created_at.to_string(),
            hook_failed: w.hook_failed,
            id: w.id.clone(),
            issue: w.issue.clone(),
            location: w.location.clone(),
            path: w.path.to_string_lossy().into_owned(),
            port: w.port,
            slot: w.slot,
            status: w.status,
        }
    }
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

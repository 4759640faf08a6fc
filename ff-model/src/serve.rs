//! The shapes `ff serve` gives: its JSON API, its live events, its
//! dashboard and `ff top`. Each is built from what the backends hold, in
//! one place.

use std::collections::BTreeMap;

use ff_traits::{IdempotencyRecord, LockInfo, LockStatus, RecordStatus, Timestamp};
use ff_worktree::{Worktree, WorktreeStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Liveness, OperationStatus, ms};

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
    /// Whether its process runs, judged from this host.
    pub liveness: Liveness,
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
            liveness: ff_process::holder_liveness(h).into(),
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
    /// The record's key (a hash of its operation and parameters).
    pub key: String,
    /// What people call it: the key given to `ff once --key`, or the
    /// issue of a worktree operation; shown instead of the hash.
    pub label: Option<String>,
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
    /// Where its lifecycle is.
    pub status: OperationStatus,
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
            label: record_label(r),
            last_attempt_at: r.last_attempt_at.to_string(),
            operation: r.operation.clone(),
            owner: r.owner.as_ref().map(|o| OwnerView {
                fencing_token: o.fencing_token.0,
                hostname: o.hostname.clone(),
                lease_deadline: o.lease_deadline.to_string(),
                pid: o.pid,
            }),
            started_at: r.started_at.to_string(),
            status: r.status.into(),
        }
    }
}

/// A worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorktreeView {
    /// Since it was created, in ms.
    pub age_ms: u64,
    /// What the agent working in it last said it is doing, if one did.
    pub agent_status: Option<crate::AgentStatusView>,
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
    pub status: WorktreeStatus,
}

impl WorktreeView {
    /// `w` as shown at `now`.
    #[must_use]
    pub fn new(w: &Worktree, now: Timestamp) -> Self {
        Self {
            age_ms: now.as_millis().saturating_sub(w.created_at.as_millis()),
            agent_status: w.agent_status.as_ref().map(crate::AgentStatusView::new),
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

/// How many rows of each list an [`Overview`] carries.
const OVERVIEW_ROWS: usize = 50;

/// Serializes a [`Timestamp`] as RFC 3339, as every `--json` output does.
fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// The whole picture at one instant: what `/api/stats` and `ff top` show.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Overview {
    /// When it was taken.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
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

/// What the backends hold, read once: what an [`Overview`] sums up and
/// the alert rules judge.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    /// Every lock.
    pub locks: &'a [LockStatus],
    /// Every readable record.
    pub records: &'a [IdempotencyRecord],
    /// Entries that could not be read.
    pub corrupt: usize,
    /// The repository's worktrees.
    pub worktrees: &'a [Worktree],
    /// The repository, when serving inside one.
    pub repository: Option<String>,
    /// Its worktree limit.
    pub worktree_limit: Option<usize>,
    /// What failed, when a backend did.
    pub error: Option<String>,
}

impl Overview {
    /// What `p` sums up, with the `alerts` firing.
    #[must_use]
    pub fn of(p: &Snapshot<'_>, alerts: Vec<Alert>) -> Self {
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

/// An alert rule, by the name `ff.toml`'s comments, `/api/alerts`, the
/// webhook and `ff_alert_active{alert=…}` give it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertRule {
    /// A lock held longer than `lock_held_longer_than`.
    LockHeldTooLong,
    /// The 95th percentile of lock waits above `lock_wait_p95_above`.
    #[serde(rename = "lock_wait_p95_too_high")]
    LockWaitP95TooHigh,
    /// An operation pending longer than `pending_older_than`.
    PendingTooOld,
    /// Failures above `failure_rate_above` of recent operations.
    FailureRateTooHigh,
    /// Worktrees within `worktrees_within` of the limit.
    WorktreesNearLimit,
    /// A backend that does not answer.
    BackendUnreachable,
    /// An agent waiting for input longer than `agent_waiting_longer_than`.
    AgentWaitingTooLong,
}

impl AlertRule {
    /// Every rule, in the order pages and metrics list them.
    pub const ALL: [Self; 7] = [
        Self::LockHeldTooLong,
        Self::LockWaitP95TooHigh,
        Self::PendingTooOld,
        Self::FailureRateTooHigh,
        Self::WorktreesNearLimit,
        Self::BackendUnreachable,
        Self::AgentWaitingTooLong,
    ];

    /// The rule's name, as serialized.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LockHeldTooLong => "lock_held_too_long",
            Self::LockWaitP95TooHigh => "lock_wait_p95_too_high",
            Self::PendingTooOld => "pending_too_old",
            Self::FailureRateTooHigh => "failure_rate_too_high",
            Self::WorktreesNearLimit => "worktrees_near_limit",
            Self::BackendUnreachable => "backend_unreachable",
            Self::AgentWaitingTooLong => "agent_waiting_too_long",
        }
    }
}

impl std::fmt::Display for AlertRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert adds to its summary, by rule: `null` for the rules whose
/// summary says it all.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
#[non_exhaustive]
pub enum AlertDetail {
    /// Nothing more.
    None,
    /// `lock_held_too_long`: the locks held too long, longest first (at
    /// most 20).
    Locks {
        /// Their names.
        locks: Vec<String>,
    },
    /// `agent_waiting_too_long`: the issues whose agents wait, longest
    /// first (at most 20).
    Issues {
        /// Their issues.
        issues: Vec<String>,
    },
}

/// An alert that fires.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Alert {
    /// The rule's name.
    pub name: AlertRule,
    /// What is wrong, for people.
    #[schemars(length(min = 1))]
    pub summary: String,
    /// The measured value (seconds, a share, a count).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Since when it fires.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub since: Timestamp,
    /// More detail, by rule.
    pub detail: AlertDetail,
}

impl Alert {
    /// Rule `name` fires now: `value` crossed `threshold`.
    #[must_use]
    pub fn new(
        name: AlertRule,
        summary: String,
        value: f64,
        threshold: f64,
        detail: AlertDetail,
    ) -> Self {
        Self {
            name,
            summary,
            value,
            threshold,
            since: Timestamp::now(),
            detail,
        }
    }
}

/// Whether an alert began or ended, as the webhook and the events say.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertState {
    /// It began.
    Firing,
    /// It ended.
    Resolved,
}

/// A record's change, as an event tells it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecordChange {
    /// The operation's name.
    pub operation: String,
    /// Where its lifecycle is now.
    pub status: OperationStatus,
    /// Attempts made.
    pub attempts: u32,
    /// From claim to end, in ms, once it ended.
    pub duration_ms: Option<u64>,
    /// Its recorded failure, for people.
    pub error: Option<String>,
    /// What people call it (see [`OperationView::label`]).
    pub label: Option<String>,
}

/// What people call a record: the key a user gave (`ff once --key`, an
/// embedder's `key` parameter), else the issue a worktree operation is
/// for; `None` when its parameters say neither (the hash then stands).
#[must_use]
pub fn record_label(r: &IdempotencyRecord) -> Option<String> {
    let text = |k: &str| r.parameters.get(k).and_then(serde_json::Value::as_str);
    text("key")
        .map(str::to_owned)
        .or_else(|| text("issue").map(|i| format!("issue {i}")))
}

impl RecordChange {
    /// What `r` is now.
    #[must_use]
    pub fn new(r: &IdempotencyRecord) -> Self {
        Self {
            operation: r.operation.clone(),
            status: r.status.into(),
            attempts: r.attempts,
            duration_ms: r.duration().map(ms),
            error: r.error.as_ref().map(ToString::to_string),
            label: record_label(r),
        }
    }
}

/// A worktree that came or went, as an event tells it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorktreeChange {
    /// Its issue.
    pub issue: String,
    /// Its branch.
    pub branch: String,
    /// Its directory.
    pub path: String,
}

impl WorktreeChange {
    /// `w`, as an event tells it.
    #[must_use]
    pub fn new(w: &Worktree) -> Self {
        Self {
            issue: w.issue.clone(),
            branch: w.branch.clone(),
            path: w.path.to_string_lossy().into_owned(),
        }
    }
}

/// What the agent in a worktree now says it is doing, as an event tells
/// it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StatusChange {
    /// The worktree's issue.
    pub issue: String,
    /// Its status now (`null`: the record lost it).
    pub agent_status: Option<crate::AgentStatusView>,
}

impl StatusChange {
    /// `w`'s agent status, as an event tells it.
    #[must_use]
    pub fn new(w: &Worktree) -> Self {
        Self {
            issue: w.issue.clone(),
            agent_status: w.agent_status.as_ref().map(crate::AgentStatusView::new),
        }
    }
}

/// A backend stopped answering.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackendDown {
    /// What failed.
    pub error: String,
}

/// A backend answers again.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackendUp {
    /// What had failed.
    pub was: String,
}

/// What changed, with its details: `kind` names it, `detail` is its shape.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A grant appeared; its holder.
    LockAcquired(HolderView),
    /// A grant went away; its holder.
    LockReleased(HolderView),
    /// An operation was claimed.
    OperationClaimed(RecordChange),
    /// An operation completed.
    OperationCompleted(RecordChange),
    /// An operation failed.
    OperationFailed(RecordChange),
    /// An operation was rolled back.
    OperationRolledBack(RecordChange),
    /// A worktree was made.
    WorktreeCreated(WorktreeChange),
    /// A worktree was removed.
    WorktreeRemoved(WorktreeChange),
    /// The agent in a worktree said what it does now (`ff status set`).
    StatusChanged(StatusChange),
    /// A backend stopped answering.
    BackendDown(BackendDown),
    /// A backend answers again.
    BackendUp(BackendUp),
    /// An alert began.
    AlertFiring(Alert),
    /// An alert ended.
    AlertResolved(Alert),
}

impl Change {
    /// Its name, as `kind` and as the server-sent event's name.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LockAcquired(_) => "lock_acquired",
            Self::LockReleased(_) => "lock_released",
            Self::OperationClaimed(_) => "operation_claimed",
            Self::OperationCompleted(_) => "operation_completed",
            Self::OperationFailed(_) => "operation_failed",
            Self::OperationRolledBack(_) => "operation_rolled_back",
            Self::WorktreeCreated(_) => "worktree_created",
            Self::WorktreeRemoved(_) => "worktree_removed",
            Self::StatusChanged(_) => "status_changed",
            Self::BackendDown(_) => "backend_down",
            Self::BackendUp(_) => "backend_up",
            Self::AlertFiring(_) => "alert_firing",
            Self::AlertResolved(_) => "alert_resolved",
        }
    }

    /// A backend (`locks`, `store`, `worktrees`) stopped answering.
    #[must_use]
    pub fn backend_down(error: impl Into<String>) -> Self {
        Self::BackendDown(BackendDown {
            error: error.into(),
        })
    }

    /// A backend answers again after `was`.
    #[must_use]
    pub fn backend_up(was: impl Into<String>) -> Self {
        Self::BackendUp(BackendUp { was: was.into() })
    }

    /// `r` changed to its current status.
    #[must_use]
    pub fn of_record(r: &IdempotencyRecord) -> Self {
        let change = RecordChange::new(r);
        match r.status {
            RecordStatus::Pending => Self::OperationClaimed(change),
            RecordStatus::Completed => Self::OperationCompleted(change),
            RecordStatus::Failed => Self::OperationFailed(change),
            RecordStatus::RolledBack => Self::OperationRolledBack(change),
        }
    }

    /// `alert` began or ended.
    #[must_use]
    pub fn of_alert(state: AlertState, alert: Alert) -> Self {
        match state {
            AlertState::Resolved => Self::AlertResolved(alert),
            _ => Self::AlertFiring(alert),
        }
    }
}

/// Something that changed, as `/api/events` sends it.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[non_exhaustive]
pub struct Event {
    /// What changed: `kind` and its `detail`.
    #[serde(flatten)]
    pub change: Change,
    /// What it is about: a lock's name, a record's key, a worktree's id,
    /// a backend, an alert.
    pub subject: String,
    /// When the server saw it.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
}

impl Event {
    /// `change` to `subject`, seen now.
    #[must_use]
    pub fn new(change: Change, subject: impl Into<String>) -> Self {
        Self {
            change,
            subject: subject.into(),
            at: Timestamp::now(),
        }
    }

    /// Its name (`lock_acquired`, `alert_firing`, …).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.change.kind()
    }
}

/// One point of the history the dashboard plots.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// When it was taken.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
    /// Operations that completed in the five minutes before `at`.
    pub completed: u64,
    /// Operations that failed in the five minutes before `at`.
    pub failed: u64,
    /// Percent of those that succeeded (`None` when none ended).
    pub success_rate: Option<f64>,
    /// Mean duration of those, in ms.
    pub mean_ms: Option<f64>,
    /// Largest duration of those, in ms.
    pub max_ms: Option<u64>,
    /// Locks held at `at`.
    pub locks_held: usize,
    /// Operations pending at `at`.
    pub pending: usize,
}

impl HistoryPoint {
    /// What `records` and `locks` show at `now`, over the `window` before it.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn at(
        now: Timestamp,
        window: std::time::Duration,
        records: &[IdempotencyRecord],
        locks: &[LockStatus],
    ) -> Self {
        let since = Timestamp::from_millis(now.as_millis().saturating_sub(ms(window)));
        let (mut completed, mut failed, mut total_ms, mut max_ms) = (0u64, 0u64, 0u64, 0u64);
        for r in records {
            let Some(end) = r.ended_at else { continue };
            if end <= since {
                continue;
            }
            match r.status {
                RecordStatus::Completed => completed += 1,
                RecordStatus::Failed => failed += 1,
                _ => continue,
            }
            let took = end
                .as_millis()
                .saturating_sub(r.last_attempt_at.as_millis());
            total_ms += took;
            max_ms = max_ms.max(took);
        }
        let ended = completed + failed;
        Self {
            at: now,
            completed,
            failed,
            success_rate: (ended > 0).then(|| completed as f64 * 100.0 / ended as f64),
            mean_ms: (ended > 0).then(|| total_ms as f64 / ended as f64),
            max_ms: (ended > 0).then_some(max_ms),
            locks_held: locks.iter().filter(|l| l.held).count(),
            pending: records
                .iter()
                .filter(|r| r.status == RecordStatus::Pending)
                .count(),
        }
    }
}

/// Which backends the server watches.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackendsView {
    /// The lock backend's name.
    pub locks: String,
    /// Where it answers (for Redis, the node), when it says.
    pub locks_endpoint: Option<String>,
    /// The store's name.
    pub store: String,
}

impl BackendsView {
    /// The backends by name.
    #[must_use]
    pub fn new(
        locks: impl Into<String>,
        locks_endpoint: Option<String>,
        store: impl Into<String>,
    ) -> Self {
        Self {
            locks: locks.into(),
            locks_endpoint,
            store: store.into(),
        }
    }
}

/// What `GET /api/stats` gives: the [`Overview`], and the server's history,
/// backends and settings.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct ServerStats {
    /// The whole picture now.
    #[serde(flatten)]
    pub overview: Overview,
    /// The plots' points, oldest first.
    pub history: Vec<HistoryPoint>,
    /// Which backends it watches.
    pub backends: BackendsView,
    /// Whether admin routes are on.
    pub admin: bool,
    /// When the server started.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub server_started_at: Timestamp,
}

impl ServerStats {
    /// `overview`, with the server's `history`, `backends`, whether admin
    /// routes are on and when it started.
    #[must_use]
    pub fn new(
        overview: Overview,
        history: Vec<HistoryPoint>,
        backends: BackendsView,
        admin: bool,
        server_started_at: Timestamp,
    ) -> Self {
        Self {
            overview,
            history,
            backends,
            admin,
            server_started_at,
        }
    }
}

/// What the alert webhook receives when an alert begins or ends.
///
/// It carries an [`Alert`]'s fields, spelled out rather than flattened: the
/// webhook's documented shape names the rule `alert`, where `/api/alerts`
/// says `name`.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertNotice {
    /// Always `forgeflow`.
    #[schemars(extend("const" = "forgeflow"))]
    pub source: &'static str,
    /// The rule's name.
    pub alert: AlertRule,
    /// Whether it began or ended.
    pub state: AlertState,
    /// What is wrong, for people.
    pub summary: String,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Since when it fired.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub since: Timestamp,
    /// When this notice was made.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
    /// More detail, by rule.
    pub detail: AlertDetail,
}

impl AlertNotice {
    /// `alert` entered `state` now.
    #[must_use]
    pub fn new(state: AlertState, alert: &Alert) -> Self {
        Self {
            source: "forgeflow",
            alert: alert.name,
            state,
            summary: alert.summary.clone(),
            value: alert.value,
            threshold: alert.threshold,
            since: alert.since,
            at: Timestamp::now(),
            detail: alert.detail.clone(),
        }
    }
}

/// What `GET /api/alerts` gives.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertsView {
    /// The alerts firing now.
    pub active: Vec<Alert>,
    /// The rules in force.
    pub rules: Vec<AlertRule>,
    /// The rules' settings as `ff.toml [alerts]` spells them, a webhook's
    /// URL shown only as set.
    pub settings: Value,
}

impl AlertsView {
    /// `active` alerts of `rules`, configured by `settings`.
    #[must_use]
    pub fn new(active: Vec<Alert>, rules: Vec<AlertRule>, settings: Value) -> Self {
        Self {
            active,
            rules,
            settings,
        }
    }
}

/// The first event of every `/api/events` stream (`hello`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HelloView {
    /// When the server started.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub server_started_at: Timestamp,
    /// Whether admin routes are on.
    pub admin: bool,
}

impl HelloView {
    /// A server started at `server_started_at`, admin routes on or not.
    #[must_use]
    pub fn new(server_started_at: Timestamp, admin: bool) -> Self {
        Self {
            server_started_at,
            admin,
        }
    }
}

/// A reader too slow for the stream missed events (`lagged`): it should
/// read the lists again.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LaggedView {
    /// How many events it missed.
    pub missed: u64,
}

impl LaggedView {
    /// `missed` events were dropped.
    #[must_use]
    pub fn new(missed: u64) -> Self {
        Self { missed }
    }
}

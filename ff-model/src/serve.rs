//! The shapes `ff serve` gives: its JSON API, its live events, its
//! dashboard and `ff top`. Each is built from what the backends hold, in
//! one place.

use ff_traits::{IdempotencyRecord, LockInfo, LockStatus, Timestamp};
use ff_worktree::{Worktree, WorktreeStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Liveness, OperationStatus, WorktreeStatusName, ms};

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

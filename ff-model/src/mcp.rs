//! What the MCP server's tools take and give (`ff mcp`): their arguments
//! and the results that are not already a command's `--json` shape.
//!
//! A tool whose command prints a list gives it inside an object
//! ([`WorktreeList`], [`PrunedList`], [`LockList`]): MCP's structured
//! results are objects.

use ff_traits::{IdempotencyRecord, RecordStatus, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::{LockEntryView, PrunedView, WorktreeView};
use crate::{OperationStatus, ms};

/// `worktree_create`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateArgs {
    /// The issue the worktree is for (letters, digits, `-`, `_`, `.`).
    pub issue: String,
    /// The ref a new worktree starts from (default: the configured base).
    #[serde(default)]
    pub base: Option<String>,
    /// A sparse worktree: only the top-level files and these directories,
    /// whole (relative to the repository's top, e.g. `services/api`); an
    /// empty list: the top-level files alone. Absent: as the repository's
    /// ff.toml says (`sparse`), else every file. A worktree the issue has
    /// already is returned as it is.
    #[serde(default)]
    pub sparse: Option<Vec<String>>,
}

/// The arguments of the tools that look up one worktree.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetArgs {
    /// An issue id, or a worktree id (the issue's directory name: `PROJ-1`, `feature+login`, `PROJ-1@2`).
    pub target: String,
}

/// How a sync brings a branch onto its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncStrategyArg {
    /// Rebase the branch onto the base.
    Rebase,
    /// Merge the base into the branch.
    Merge,
}

/// `worktree_sync`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncArgs {
    /// An issue id, or a worktree id (the issue's directory name: `PROJ-1`, `feature+login`, `PROJ-1@2`).
    pub target: String,
    /// Rebase or merge (default: the configured strategy).
    #[serde(default)]
    pub strategy: Option<SyncStrategyArg>,
    /// Stash uncommitted changes around the sync.
    #[serde(default)]
    pub autostash: bool,
}

/// `worktree_cleanup`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CleanupArgs {
    /// An issue id, or a worktree id (the issue's directory name: `PROJ-1`, `feature+login`, `PROJ-1@2`).
    pub target: String,
    /// Remove it even with work not merged (kept under `refs/ff/archive/`
    /// first). Refused unless the server was started with
    /// `--allow-force`.
    #[serde(default)]
    pub force: bool,
}

/// `worktree_prune`'s arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PruneArgs {
    /// Remove the worktrees whose work is merged into their base.
    #[serde(default)]
    pub merged: bool,
    /// Remove the worktrees older than this many seconds.
    #[serde(default)]
    pub older_than_seconds: Option<u64>,
    /// Only say what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// The arguments of a tool that takes none.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NoArgs {}

/// The modes a lease may be taken in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaseMode {
    /// One holder.
    #[default]
    Exclusive,
    /// Many holders (at most `permits`, when given).
    Shared,
}

/// `lock_acquire`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AcquireArgs {
    /// The lock's name (a `/` makes it a node of a hierarchy).
    pub name: String,
    /// Exclusive (default) or shared.
    #[serde(default)]
    pub mode: LeaseMode,
    /// A counting semaphore of this many shared holders.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10_000))]
    pub permits: Option<u32>,
    /// How long the lease lasts without `lock_renew`, in seconds (default
    /// 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl_seconds: Option<u64>,
    /// How long to wait for the lock, in seconds (default 0: one try).
    #[serde(default)]
    #[schemars(range(max = 50))]
    pub wait_seconds: Option<u64>,
}

/// The arguments of the tools that act on a lease.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LeaseArgs {
    /// The lease handle `lock_acquire` gave.
    pub lease: String,
}

/// A lock held across calls until released, or until its TTL lapses
/// without renewal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LeaseView {
    /// The handle to renew and release it with.
    pub lease: String,
    /// The lock's name.
    pub name: String,
    /// Exclusive or shared.
    pub mode: LeaseMode,
    /// The grant's fencing token: pass it along with every write the lock
    /// protects, so a store can refuse a holder that lost it.
    pub fencing_token: u64,
    /// How long it lasts without renewal, in ms.
    pub ttl_ms: u64,
    /// When it lapses unless renewed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

impl LeaseView {
    /// The lease `lease` on `name`, lasting `ttl` from `now`.
    #[must_use]
    pub fn new(
        lease: String,
        name: String,
        mode: LeaseMode,
        fencing_token: u64,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Self {
        Self {
            lease,
            name,
            mode,
            fencing_token,
            ttl_ms: ms(ttl),
            expires_at: now.saturating_add(ttl).to_string(),
        }
    }
}

/// What `lock_acquire` gives when it did not get the lock.
///
/// Given as a result, not an error: a busy lock is an answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AcquireView {
    /// Granted.
    Acquired(LeaseView),
    /// Held by others past the wait.
    Busy {
        /// The lock's name.
        name: String,
        /// How long it waited, in ms.
        waited_ms: u64,
    },
}

/// What `lock_release` gives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReleasedView {
    /// The handle.
    pub lease: String,
    /// The lock's name.
    pub name: String,
}

impl ReleasedView {
    /// The lease `lease` on `name`, released.
    #[must_use]
    pub fn new(lease: String, name: String) -> Self {
        Self { lease, name }
    }
}

/// `worktree_list`'s result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorktreeList {
    /// Every worktree of the repository, as `ff list --json` shows them.
    pub worktrees: Vec<WorktreeView>,
}

impl WorktreeList {
    /// `worktrees`.
    #[must_use]
    pub fn new(worktrees: Vec<WorktreeView>) -> Self {
        Self { worktrees }
    }
}

/// `worktree_prune`'s result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrunedList {
    /// Every worktree looked at, as `ff prune --json` shows them.
    pub worktrees: Vec<PrunedView>,
}

impl PrunedList {
    /// `worktrees`.
    #[must_use]
    pub fn new(worktrees: Vec<PrunedView>) -> Self {
        Self { worktrees }
    }
}

/// `lock_list`'s result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockList {
    /// Every lock, as `ff locks --json` shows them.
    pub locks: Vec<LockEntryView>,
}

impl LockList {
    /// `locks`.
    #[must_use]
    pub fn new(locks: Vec<LockEntryView>) -> Self {
        Self { locks }
    }
}

/// `operation_claim`'s and `operation_status`'s arguments: the operation
/// and what it acts on, which together name it (the key is their hash).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OperationArgs {
    /// The operation's name (`deploy`, `migrate-db`, …).
    #[schemars(length(min = 1, max = 128))]
    pub operation: String,
    /// What it acts on (any JSON object): the same operation on other
    /// parameters is another key.
    #[serde(default)]
    pub parameters: serde_json::Map<String, Value>,
}

/// `operation_claim`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClaimArgs {
    /// The operation's name (`deploy`, `migrate-db`, …).
    #[schemars(length(min = 1, max = 128))]
    pub operation: String,
    /// What it acts on (any JSON object): the same operation on other
    /// parameters is another key.
    #[serde(default)]
    pub parameters: serde_json::Map<String, Value>,
    /// How long the claim stays the caller's before another caller may
    /// take it over, in seconds (default 600).
    #[serde(default)]
    #[schemars(range(min = 1, max = 86_400))]
    pub lease_seconds: Option<u64>,
}

/// `operation_complete`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CompleteArgs {
    /// The claim handle `operation_claim` gave.
    pub claim: String,
    /// What the operation gave; later claims of the key receive it.
    #[serde(default)]
    pub result: Value,
}

/// `operation_fail`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FailArgs {
    /// The claim handle `operation_claim` gave.
    pub claim: String,
    /// What went wrong.
    #[schemars(length(min = 1))]
    pub message: String,
    /// Whether a later claim may try again (after a backoff).
    #[serde(default)]
    pub retryable: bool,
}

/// What `operation_claim` gives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ClaimView {
    /// The caller won the claim: it must do the work, then call
    /// `operation_complete` or `operation_fail`.
    Claimed {
        /// The claim handle.
        claim: String,
        /// The key (full hex SHA-256).
        key: String,
        /// Greater than every earlier claim's of the key.
        fencing_token: u64,
        /// Why this claim runs: `no_previous_execution`, a retry after a
        /// failure, a takeover of a claim whose lease lapsed, ….
        reason: String,
    },
    /// It was done already: here is what it gave. Do not do it again.
    Completed {
        /// The key.
        key: String,
        /// What the operation gave.
        result: Value,
    },
    /// Another claim runs it now.
    Held {
        /// The key.
        key: String,
        /// When the other claim's lease lapses, if it is not renewed, in
        /// ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "u64")]
        retry_in_ms: Option<u64>,
    },
}

/// What `operation_complete` and `operation_fail` give, and
/// `operation_status`: the key's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OperationRecordView {
    /// The key.
    pub key: String,
    /// The operation's name.
    pub operation: String,
    /// Its state; `null` when no claim was ever made (or its record was
    /// removed).
    pub status: Option<OperationStatus>,
    /// Attempts so far.
    pub attempts: u32,
    /// What it gave, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Value")]
    pub result: Option<Value>,
    /// Why it failed, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub error: Option<String>,
}

impl OperationRecordView {
    /// The record `r`.
    #[must_use]
    pub fn new(r: &IdempotencyRecord) -> Self {
        Self {
            key: r.key.as_str().to_owned(),
            operation: r.operation.clone(),
            status: Some(r.status.into()),
            attempts: r.attempts,
            result: (r.status == RecordStatus::Completed)
                .then(|| r.result.clone().unwrap_or(Value::Null)),
            error: r.error.as_ref().map(ToString::to_string),
        }
    }

    /// No record for `key` of `operation`.
    #[must_use]
    pub fn none(key: String, operation: String) -> Self {
        Self {
            key,
            operation,
            status: None,
            attempts: 0,
            result: None,
            error: None,
        }
    }
}

/// `agent_status_set`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentStatusArgs {
    /// An issue id, or a worktree id (the issue's directory name: `PROJ-1`, `feature+login`, `PROJ-1@2`).
    pub target: String,
    /// `working`, `waiting` (for a person's input), `done` or `blocked`.
    pub state: ff_worktree::AgentState,
    /// One line of context.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub note: Option<String>,
}

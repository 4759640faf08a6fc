//! The idempotency record: what is stored per key.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::key::{IdempotencyKey, KEY_SCHEME_VERSION, RecordKey};
use crate::lock::FencingToken;
use crate::time::Timestamp;

/// A record's revision. Stores set it: 1 on create, one more on every
/// successful compare-and-swap. Callers pass the revision they read to make
/// a write conditional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl Revision {
    /// The revision of a freshly created record.
    pub const FIRST: Self = Self(1);

    /// The revision after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Claimed and running (or abandoned, if its lease lapsed).
    Pending,
    /// Finished successfully; its result is replayed.
    Completed,
    /// Finished with an error.
    Failed,
    /// Failed and then rolled back.
    RolledBack,
}

impl RecordStatus {
    /// All statuses, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Completed,
        Self::Failed,
        Self::RolledBack,
    ];

    /// The stable snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Parses [`as_str`](Self::as_str) back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the operation has ended (anything but pending).
    #[must_use]
    pub fn is_finished(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedError {
    /// A stable classification (an error kind name).
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
    /// Whether a later attempt may succeed. Permanent failures are not
    /// retried.
    #[serde(default = "default_true")]
    pub retryable: bool,
}

fn default_true() -> bool {
    true
}

impl RecordedError {
    /// A recorded failure.
    pub fn new(kind: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            retryable,
        }
    }
}

impl fmt::Display for RecordedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

/// Who runs a pending operation, and until when their claim is good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClaimOwner {
    /// Unique id of the claim.
    pub claim_id: String,
    /// Strictly increasing over the claims of one record: a claim that took
    /// over an abandoned one has a greater token.
    pub fencing_token: FencingToken,
    /// Past this instant, without renewal, the claim is abandoned.
    pub lease_deadline: Timestamp,
    /// Claimant's process id, for people.
    #[serde(default)]
    pub pid: u32,
    /// Claimant's host, for people.
    #[serde(default)]
    pub hostname: String,
    /// When the claimant's process started (clock ticks since boot on
    /// Linux), where the OS tells it: with `pid`, it names one process even
    /// after the pid is reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// The claimant's pid namespace (see
    /// [`identity::pid_space`](crate::identity::pid_space)): its `pid`
    /// means something only to processes in the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
    /// The process group of the work the claimant runs, when it runs it in
    /// a group of its own (`ff once`'s command): while any process of it
    /// runs, the claimant is not dead, even if its own process is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<u32>,
}

impl ClaimOwner {
    /// An owner entry.
    #[must_use]
    pub fn new(
        claim_id: String,
        fencing_token: FencingToken,
        lease_deadline: Timestamp,
        pid: u32,
        hostname: String,
    ) -> Self {
        Self {
            claim_id,
            fencing_token,
            lease_deadline,
            pid,
            hostname,
            process_start: None,
            pid_space: None,
            process_group: None,
        }
    }

    /// The owner with its process identified beyond the pid: its start
    /// time and pid namespace, so that a process on the same host can tell
    /// that the claimant died (and take its claim over at once).
    #[must_use]
    pub fn with_process(mut self, process_start: Option<u64>, pid_space: Option<String>) -> Self {
        self.process_start = process_start;
        self.pid_space = pid_space;
        self
    }

    /// The owner with the process group its work runs in (see
    /// [`process_group`](Self::process_group)).
    #[must_use]
    pub fn with_process_group(mut self, group: Option<u32>) -> Self {
        self.process_group = group;
        self
    }
}

/// Everything stored for one idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdempotencyRecord {
    /// The record key (hash of the idempotency key).
    pub key: RecordKey,
    /// The key scheme the record key was computed with.
    pub key_scheme: u32,
    /// The operation's name.
    pub operation: String,
    /// The key's parameters, kept for people and stats. Shared, because
    /// they never change after creation and may be large.
    pub parameters: Arc<Value>,
    /// The key's context. Shared, like `parameters`.
    pub context: Arc<Value>,
    /// Where the operation stands.
    pub status: RecordStatus,
    /// Attempts made since the record was (re)started.
    pub attempts: u32,
    /// When the first attempt started.
    pub started_at: Timestamp,
    /// When the latest attempt started.
    pub last_attempt_at: Timestamp,
    /// When the latest attempt ended.
    pub ended_at: Option<Timestamp>,
    /// The successful result, replayed to later callers.
    pub result: Option<Value>,
    /// The latest failure.
    pub error: Option<RecordedError>,
    /// What is needed to undo the current attempt's effects.
    pub rollback_data: Option<Value>,
    /// Rollback data of earlier attempts whose owners vanished before
    /// finishing, not yet rolled back. Handed to the next claimant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned_rollbacks: Vec<Value>,
    /// The current (or last) claim.
    pub owner: Option<ClaimOwner>,
    /// Set by the store; see [`Revision`].
    pub revision: Revision,
}

impl IdempotencyRecord {
    /// A fresh pending record for `key`'s first attempt, owned by `owner`.
    #[must_use]
    pub fn new_pending(
        key: &IdempotencyKey,
        record_key: RecordKey,
        owner: ClaimOwner,
        rollback_data: Option<Value>,
        now: Timestamp,
    ) -> Self {
        Self {
            key: record_key,
            key_scheme: KEY_SCHEME_VERSION,
            operation: key.operation.clone(),
            parameters: Arc::new(key.parameters.clone()),
            context: Arc::new(key.context.clone()),
            status: RecordStatus::Pending,
            attempts: 1,
            started_at: now,
            last_attempt_at: now,
            ended_at: None,
            result: None,
            error: None,
            rollback_data,
            abandoned_rollbacks: Vec::new(),
            owner: Some(owner),
            revision: Revision::FIRST,
        }
    }

    /// How long the latest attempt took, once finished.
    #[must_use]
    pub fn duration(&self) -> Option<std::time::Duration> {
        self.ended_at
            .map(|end| end.saturating_duration_since(self.last_attempt_at))
    }

    /// The instant from which age is counted for cleanup and expiry: the
    /// end of the latest attempt, or its start while pending.
    #[must_use]
    pub fn last_activity(&self) -> Timestamp {
        self.ended_at.unwrap_or(self.last_attempt_at)
    }
}

impl IdempotencyRecord {
    /// Decodes a record a store read back: its JSON `body`, stored under
    /// `key` at `location` (a path, a row, a Redis key), with the store's
    /// own `revision` when it keeps it beside the body (`None`: the body's
    /// own). What every store does on every read, in one place.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) at `location` when the body
    /// is not a record, or holds another key's record. Never "absent": a
    /// damaged record must not read as "never executed".
    pub fn decode(
        body: &[u8],
        key: &str,
        revision: Option<Revision>,
        location: &str,
    ) -> crate::Result<Self> {
        let corrupt =
            |reason: String| crate::Error::corrupt("idempotency record", location, reason);
        let mut record: Self =
            serde_json::from_slice(body).map_err(|e| corrupt(format!("unreadable JSON: {e}")))?;
        if record.key.as_str() != key {
            return Err(corrupt(format!(
                "holds the record of key {} instead of its own",
                record.key.short()
            )));
        }
        if let Some(revision) = revision {
            record.revision = revision;
        }
        Ok(record)
    }
}

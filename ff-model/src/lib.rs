//! ForgeFlow's typed output model: every shape `ff` shows, as serde types
//! built in one place.
//!
//! - [`cli`]: what the commands print with `--json` (worktrees, locks,
//!   cleanups, runs, statistics) and the error every failing command
//!   prints on stderr;
//! - [`serve`]: what `ff serve` gives (its JSON API, live events, the
//!   dashboard) and `ff top` reads back;
//! - [`mcp`]: what the MCP server's tools take, and give beyond the
//!   commands' shapes (leases, claims).
//!
//! Every interface (the CLI, the server, an MCP server) builds its output
//! from these types and nothing else, so one shape is written once. The
//! JSON Schemas in `ff-cli/schemas/generated/` are generated from them
//! ([`schema::generated`]); a test fails when the committed files and the
//! types differ.
//!
//! ```
//! use ff_model::cli::GcView;
//!
//! let json = serde_json::to_string(&GcView::new(3).with_lock_files_removed(1)).unwrap();
//! assert_eq!(json, r#"{"removed":3,"lock_files_removed":1}"#);
//! ```

#![forbid(unsafe_code)]

pub mod cli;
pub mod mcp;
pub mod schema;
pub mod serve;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Milliseconds, saturated, as every `*_ms` field gives them.
pub(crate) fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the agent working in a worktree says it is doing, as `ff list`,
/// `ff status`, the server and the MCP tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentStatusView {
    /// What the agent added, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 500))]
    pub note: Option<String>,
    /// When it was set (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub since: String,
    /// `working`, `waiting` (for a person's input), `done` or `blocked`.
    pub state: ff_worktree::AgentState,
}

impl AgentStatusView {
    /// `s` as shown.
    #[must_use]
    pub fn new(s: &ff_worktree::AgentStatus) -> Self {
        Self {
            note: s.note.clone(),
            since: s.since.to_string(),
            state: s.state,
        }
    }
}

/// Whether a lock holder's process runs, judged from the host that shows
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Liveness {
    /// It runs.
    Alive,
    /// It is gone: its lock may be cleared.
    Dead,
    /// This host cannot tell (another host or pid namespace).
    Unknown,
}

impl From<ff_process::Liveness> for Liveness {
    fn from(l: ff_process::Liveness) -> Self {
        match l {
            ff_process::Liveness::Alive => Self::Alive,
            ff_process::Liveness::Dead => Self::Dead,
            _ => Self::Unknown,
        }
    }
}

/// Where an operation's record is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationStatus {
    /// Claimed and running (or abandoned, when its lease lapsed).
    Pending,
    /// Finished successfully.
    Completed,
    /// Failed; it may be retried when the failure was retryable.
    Failed,
    /// Undone after a failure.
    RolledBack,
}

impl From<ff_traits::RecordStatus> for OperationStatus {
    fn from(s: ff_traits::RecordStatus) -> Self {
        match s {
            ff_traits::RecordStatus::Pending => Self::Pending,
            ff_traits::RecordStatus::Completed => Self::Completed,
            ff_traits::RecordStatus::Failed => Self::Failed,
            ff_traits::RecordStatus::RolledBack => Self::RolledBack,
        }
    }
}

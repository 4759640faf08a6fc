//! What several worktree commands show alike.

use ff_worktree::WorktreeStatus;

use crate::output::{Failure, Problem};

/// A worktree's status, for people.
pub(super) fn status(s: WorktreeStatus) -> &'static str {
    match s {
        WorktreeStatus::Missing => "missing",
        WorktreeStatus::Elsewhere => "elsewhere",
        _ => "active",
    }
}

/// No worktree answers to `target`.
pub(super) fn not_found(target: &str) -> Failure {
    Failure::new(
        Problem::NotFound,
        format!("no worktree for {target:?}; `ff list` shows what exists"),
    )
}

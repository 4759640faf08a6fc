//! What several worktree commands show alike.

use ff_worktree::{Worktree, WorktreeStatus};

use crate::config::Settings;
use crate::output::{Failure, Problem};

/// The worktree `target` (an id or an issue) names, as `get` and `path`
/// look it up.
pub(super) async fn find(settings: &Settings, target: &str) -> Result<Worktree, Failure> {
    let manager = settings.manager().await?;
    manager.get(target).await?.ok_or_else(|| not_found(target))
}

/// A worktree's status, for people.
pub(super) fn status(s: WorktreeStatus) -> &'static str {
    match s {
        WorktreeStatus::Missing => "missing",
        WorktreeStatus::Elsewhere => "elsewhere",
        _ => "active",
    }
}

/// No worktree answers to `target`.
fn not_found(target: &str) -> Failure {
    Failure::new(
        Problem::NotFound,
        format!("no worktree for {target:?}; `ff list` shows what exists"),
    )
}

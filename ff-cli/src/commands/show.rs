//! What several worktree commands show alike.

use ff_worktree::{Worktree, WorktreeStatus};

use crate::config::Settings;
use crate::output::Failure;

/// The worktree `target` names (see [`crate::target`]), or the one the
/// current directory is in, as `get` and `path` look it up.
pub(super) async fn find(settings: &Settings, target: Option<&str>) -> Result<Worktree, Failure> {
    let manager = settings.manager().await?;
    crate::target::resolve(&manager, target).await
}

/// A worktree's status, for people: where it is, and whether its
/// `post_create` hook failed (it was kept for inspection) or its record
/// was rebuilt by `recover`.
pub(super) fn status(w: &Worktree) -> String {
    let mut text = match w.status {
        WorktreeStatus::Missing => "missing",
        WorktreeStatus::Elsewhere => "elsewhere",
        _ => "active",
    }
    .to_owned();
    if w.hook_failed {
        text.push_str(", hook_failed");
    }
    if w.recovered {
        text.push_str(" (record rebuilt)");
    }
    text
}

/// `slot N` and `port P` lines of a worktree's description, for those it
/// has.
pub(super) fn slot_and_port(w: &Worktree) -> String {
    let mut text = String::new();
    if let Some(slot) = w.slot {
        text.push_str(&format!("\n  slot    {slot}"));
    }
    if let Some(port) = w.port {
        text.push_str(&format!("\n  port    {port}"));
    }
    if let Some(sparse) = &w.sparse {
        text.push_str(&format!("\n  sparse  {}", sparse_cell(sparse)));
    }
    text
}

/// What a sparse worktree checks out, for people: its directories, or
/// git's patterns, escaped.
pub(super) fn sparse_cell(sparse: &ff_worktree::Sparse) -> String {
    let shown: Vec<String> = sparse
        .paths
        .iter()
        .map(|p| ff_worktree::display::escape(p).into_owned())
        .collect();
    match (sparse.cone, shown.is_empty()) {
        (true, true) => "the top-level files only".to_owned(),
        (true, false) => format!("{} (and the top-level files)", shown.join(", ")),
        (false, _) => format!("patterns {}", shown.join(" ")),
    }
}

/// Says on stderr which worktrees git lists that this namespace, state
/// directory and store do not know, and why, so an empty or short list is
/// never mistaken for the truth.
pub(super) fn warn_unknown(unknown: &[ff_worktree::UnknownWorktree]) {
    if unknown.is_empty() {
        return;
    }
    eprintln!(
        "ff: warning: git lists {} worktree(s) of ForgeFlow's shape that this namespace and store \
         do not know:",
        unknown.len()
    );
    for u in unknown {
        eprintln!(
            "  {} at {}: {}",
            ff_worktree::display::escape(&u.id),
            ff_worktree::display::escape_path(&u.path),
            u.why()
        );
    }
}

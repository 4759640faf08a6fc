//! `ff cleanup`: remove a worktree and its branch, keeping any work.

use ff_model::cli::CleanupView;

use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff cleanup`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The worktree: an issue, worktree id (its directory's name), branch or path
    /// [default: the worktree you are in].
    pub(crate) target: Option<String>,
    /// Remove even with uncommitted or unmerged work; the work is kept
    /// under refs/ff/archive/<id> first.
    #[arg(long)]
    pub(crate) force: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let manager = settings.manager_running_hooks().await?;
    // Gone already is a cleanup done (exit 0, so a retry succeeds), but a
    // name nothing answers to is said, with the closest one.
    // A plain issue id goes straight to the cleanup (one lookup); a path,
    // id, branch or none is resolved first.
    let plain = args
        .target
        .as_deref()
        .filter(|t| crate::target::plain_issue(&manager, t));
    let found = match plain {
        Some(_) => None,
        None => crate::target::resolve_if_any(&manager, args.target.as_deref()).await?,
    };
    let shown = args.target.clone().unwrap_or_else(|| ".".to_owned());
    let target = found.as_ref().map_or(shown.as_str(), |w| w.issue.as_str());
    let mode = if args.force {
        ff_worktree::Cleanup::Force
    } else {
        ff_worktree::Cleanup::Safe
    };
    let done = manager.cleanup_worktree(target, mode).await?;
    if done.removed.is_none()
        && let Some(name) = plain
    {
        crate::target::say_nothing_answers(&manager, name).await?;
    }
    out.emit(&CleanupView::new(&done), || {
        let merged = done
            .merged_because
            .as_ref()
            .map(|why| format!("\njudged merged: {why}"))
            .unwrap_or_default();
        let what = match (&done.removed, &done.archived_at) {
            (None, _) => format!("nothing to clean up for {target:?}"),
            (Some(w), None) => format!("removed worktree {} and branch {}", w.id, w.branch),
            (Some(w), Some(a)) => format!(
                "removed worktree {} and branch {}; its commits are kept at {a} (git log {a})",
                w.id, w.branch
            ),
        };
        let kept = done
            .set_aside
            .as_ref()
            .map(|p| {
                format!(
                    "\nfiles found in its directory after git removed it are kept at {}",
                    ff_worktree::display::escape_path(p)
                )
            })
            .unwrap_or_default();
        format!("{what}{merged}{kept}")
    });
    Ok(0)
}

//! `ff prune`: remove merged or old worktrees with nothing to lose.

use std::time::Duration;

use ff_model::cli::PrunedView;

use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff prune`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Worktrees whose commits are in the base (the default unless
    /// --older-than is given).
    #[arg(long)]
    pub(crate) merged: bool,
    /// Worktrees created longer ago than this (7d, 12h…) with nothing
    /// to lose, used or not.
    #[arg(long, value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub(crate) older_than: Option<Duration>,
    /// Only say what would be removed.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let Args {
        merged,
        older_than,
        dry_run,
    } = args;
    let manager = if dry_run {
        // Judging runs no hook.
        settings.manager().await?
    } else {
        settings.manager_running_hooks().await?
    };
    let mut options = ff_worktree::PruneOptions::default()
        .with_merged(merged)
        .with_dry_run(dry_run);
    if let Some(age) = older_than {
        options = options.with_older_than(age);
    }
    let all = manager.prune(options).await?;
    let views: Vec<PrunedView> = all.iter().map(PrunedView::new).collect();
    out.emit(&views, || {
        if all.is_empty() {
            return "no worktrees to look at".to_owned();
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|p| {
                vec![
                    p.worktree.id.clone(),
                    p.worktree.issue.clone(),
                    PrunedView::new(p).action.as_str().replace('_', " "),
                    p.reason.clone(),
                ]
            })
            .collect();
        let gone = all
            .iter()
            .filter(|p| p.action != ff_worktree::PruneAction::Kept)
            .count();
        let verb = if dry_run { "would remove" } else { "removed" };
        format!(
            "{}\n{verb} {gone}, kept {}",
            output::table(&["ID", "ISSUE", "ACTION", "WHY"], &rows),
            all.len() - gone
        )
    });
    Ok(0)
}

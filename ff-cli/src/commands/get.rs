//! `ff get`: one worktree.

use ff_model::cli::WorktreeView;

use super::show::{find, slot_and_port, status};
use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff get`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The worktree: an issue, worktree id (its directory's name), branch or path
    /// [default: the worktree you are in].
    pub(crate) target: Option<String>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let w = find(settings, args.target.as_deref()).await?;
    out.emit(&WorktreeView::new(&w), || {
        format!(
            "{}\n  issue   {}\n  path    {}\n  branch  {} (from {})\n  status  {}\n  created {}{}",
            w.id,
            w.issue,
            w.path.display(),
            w.branch,
            w.base,
            status(&w),
            output::ago(w.created_at),
            slot_and_port(&w)
        )
    });
    Ok(0)
}

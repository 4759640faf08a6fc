//! `ff path`: where an issue's worktree is.

use ff_model::cli::PathView;

use super::show::find;
use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff path`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The worktree: an issue, worktree id (its directory's name), branch or path
    /// [default: the worktree you are in].
    pub(crate) target: Option<String>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let w = find(settings, args.target.as_deref()).await?;
    out.emit(&PathView::new(&w), || w.path.display().to_string());
    Ok(0)
}

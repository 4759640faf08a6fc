//! `ff sync`: fetch, then rebase or merge a worktree's branch onto its base.

use clap::ValueEnum;
use ff_model::cli::SyncView;
use ff_worktree::{SyncOptions, SyncStrategy};

use crate::config::Settings;
use crate::output::{Failure, Out, Progress};

/// `ff sync`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The worktree: an issue, worktree id (its directory's name), branch or path
    /// [default: the worktree you are in].
    pub(crate) target: Option<String>,
    /// How to bring the branch up to date [default: rebase, or ff.toml's].
    #[arg(long, value_enum)]
    pub(crate) strategy: Option<Strategy>,
    /// Set uncommitted changes aside and restore them afterwards.
    #[arg(long)]
    pub(crate) autostash: bool,
}

/// How `ff sync` brings a branch up to date.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Strategy {
    Rebase,
    Merge,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let Args {
        target,
        strategy,
        autostash,
    } = args;
    let manager = settings.manager_running_hooks().await?;
    // A plain issue id goes straight to the sync (one lookup).
    let resolved = match target.as_deref() {
        Some(t) if crate::target::plain_issue(&manager, t) => t.to_owned(),
        other => crate::target::resolve(&manager, other).await?.issue,
    };
    let target = resolved.as_str();
    let mut options = SyncOptions::default().with_autostash(autostash);
    if let Some(s) = strategy {
        options = options.with_strategy(match s {
            Strategy::Rebase => SyncStrategy::Rebase,
            Strategy::Merge => SyncStrategy::Merge,
        });
    }
    let progress = Progress::start(&format!("syncing {target}"));
    let synced = manager.sync_worktree(target, options).await;
    drop(progress);
    let s = synced?;
    out.emit(&SyncView::new(&s), || {
        let fetched = s
            .fetched_from
            .as_ref()
            .map(|r| format!("fetched {r}; "))
            .unwrap_or_default();
        if s.changed() {
            format!(
                "{fetched}{} {} onto {}: {} -> {}",
                s.strategy.as_str(),
                s.branch,
                s.onto,
                short(&s.head_before),
                short(&s.head_after)
            )
        } else {
            format!("{fetched}{} is up to date with {}", s.branch, s.onto)
        }
    });
    Ok(0)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

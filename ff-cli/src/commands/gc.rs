//! `ff gc`: remove old finished records.

use std::time::Duration;

use ff_model::cli::GcView;

use crate::config::Settings;
use crate::output::{Failure, Out, Progress};

/// `ff gc`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Remove finished records older than this (for example 7d, 12h,
    /// 30m; 0: every finished record), and the files of free file locks
    /// last granted before it. Records of worktrees that exist are kept
    /// whatever their age, and held locks' files always.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "7d")]
    pub(crate) max_age: Duration,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let max_age = args.max_age;
    let progress = Progress::start("removing old records");
    // In a repository, through the manager, which keeps the records of
    // worktrees that exist; elsewhere, every finished record qualifies.
    let removed = if settings.toplevel().is_some() {
        settings
            .manager()
            .await?
            .cleanup_idempotency_records(max_age)
            .await
    } else {
        ff_worktree::cleanup_records_without_repository(settings.store().await?, max_age).await
    };
    let removed = removed?;
    let lock_files = match settings.file_locks().await? {
        Some(locks) => locks.prune_free(max_age).await?,
        None => 0,
    };
    drop(progress);
    out.emit(
        &GcView::new(removed).with_lock_files_removed(lock_files),
        || format!("removed {removed} finished record(s) and {lock_files} free lock file(s)"),
    );
    Ok(0)
}

//! `ff recover`: repair what crashes left.

use ff_model::cli::RecoverView;

use crate::config::Settings;
use crate::output::{self, Failure, Out, Progress};

/// `ff recover`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only report what would be done.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let dry_run = args.dry_run;
    let manager = settings.manager().await?;
    let progress = Progress::start("recovering");
    let report = manager
        .recover(if dry_run {
            ff_worktree::Recover::DryRun
        } else {
            ff_worktree::Recover::Repair
        })
        .await;
    drop(progress);
    let report = report?;
    out.emit(&RecoverView::new(&report), || {
        if report.repairs.is_empty() {
            return "nothing to repair: records, git and the disk agree".to_owned();
        }
        let rows: Vec<Vec<String>> = report
            .repairs
            .iter()
            .map(|r| {
                vec![
                    serde_json::to_value(r.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    r.subject.clone(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let title = if dry_run {
            "dry run: nothing was changed\n"
        } else {
            ""
        };
        format!(
            "{title}{}",
            output::table(&["REPAIR", "SUBJECT", "DETAIL"], &rows)
        )
    });
    Ok(0)
}

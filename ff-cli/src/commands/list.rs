//! `ff list`: the worktrees.

use ff_model::cli::WorktreeView;

use super::show::status;
use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff list`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) async fn run(settings: &Settings, out: Out, _args: Args) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let all = manager.list_worktrees().await?;
    let views: Vec<WorktreeView> = all.iter().map(WorktreeView::new).collect();
    out.emit(&views, || {
        if all.is_empty() {
            return "no worktrees".to_owned();
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|w| {
                vec![
                    w.id.clone(),
                    w.issue.clone(),
                    w.branch.clone(),
                    if w.recovered {
                        format!("{} (record rebuilt)", status(w.status))
                    } else {
                        status(w.status).to_owned()
                    },
                    super::status::cell(w),
                    output::ago(w.created_at),
                    w.path.display().to_string(),
                ]
            })
            .collect();
        output::table(
            &[
                "ID", "ISSUE", "BRANCH", "STATUS", "AGENT", "CREATED", "PATH",
            ],
            &rows,
        )
    });
    Ok(0)
}

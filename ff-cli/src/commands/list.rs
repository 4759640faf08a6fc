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
    super::show::warn_unknown(&manager.unknown_worktrees().await?);
    let views: Vec<WorktreeView> = all.iter().map(WorktreeView::new).collect();
    out.emit(&views, || {
        if all.is_empty() {
            return "no worktrees".to_owned();
        }
        // Slot and port columns only where some worktree has one.
        let slots = all.iter().any(|w| w.slot.is_some());
        let ports = all.iter().any(|w| w.port.is_some());
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".to_owned());
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|w| {
                let mut row = vec![
                    w.id.clone(),
                    w.issue.clone(),
                    w.branch.clone(),
                    status(w),
                    super::status::cell(w),
                ];
                if slots {
                    row.push(or_dash(w.slot.map(|s| s.to_string())));
                }
                if ports {
                    row.push(or_dash(w.port.map(|p| p.to_string())));
                }
                row.extend([output::ago(w.created_at), w.path.display().to_string()]);
                row
            })
            .collect();
        let mut header = vec!["ID", "ISSUE", "BRANCH", "STATUS", "AGENT"];
        if slots {
            header.push("SLOT");
        }
        if ports {
            header.push("PORT");
        }
        header.extend(["CREATED", "PATH"]);
        output::table(&header, &rows)
    });
    Ok(0)
}

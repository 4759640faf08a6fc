//! `ff list`: the worktrees.

use clap::ValueEnum;
use ff_model::cli::WorktreeView;
use ff_worktree::{IssueId, WorkingState, Worktree};

use super::show::status;
use crate::config::{Manager, Settings};
use crate::output::{self, Failure, Give, Out};

/// `ff list`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "COLUMNS (table):
    *        the worktree you are in
    ISSUE    its issue
    STATE    clean, or N changed; +A/-B commits ahead of / behind its base;
             hook_failed; (record rebuilt) by recover; held (someone holds
             its issue lock); elsewhere (another server's), missing
    AGENT    what its agent says it is doing (ff status set)
    SLOT, PORT  when configured
    AGE, PATH

EXAMPLES:
    ff list                      fits the terminal; two git calls per worktree
    ff list --dirty              only worktrees with changes
    ff list --format plain       id, branch, path; no git calls
    ff list --json               every field, for programs")]
pub(crate) struct Args {
    /// How to print: `table` (state columns, fitted to the terminal) or
    /// `plain` (id, issue, branch, status, agent, slot, port, created,
    /// path, as read from the records: no git call per worktree).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// Only worktrees with changed files or commits not on their base.
    #[arg(long)]
    pub(crate) dirty: bool,
    /// Only worktrees whose issue lock someone holds.
    #[arg(long)]
    pub(crate) held: bool,
    /// Only worktrees whose post_create hook failed.
    #[arg(long)]
    pub(crate) hook_failed: bool,
}

/// How `ff list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// State columns, fitted to the terminal's width.
    Table,
    /// The records' own columns, whole.
    Plain,
}

/// A worktree with what the table shows beside its record.
struct Row {
    w: Worktree,
    state: Option<WorkingState>,
    held: bool,
    here: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let all = manager.list_worktrees().await?;
    super::show::warn_unknown(&manager.unknown_besides(&all).await?);
    // State is read only when shown or filtered on.
    let needs_state = (!out.json && args.format == Format::Table) || args.dirty;
    let rows = rows(&manager, all, needs_state, args.held).await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !args.dirty || r.state.is_some_and(|s| dirty(&s)))
        .filter(|r| !args.held || r.held)
        .filter(|r| !args.hook_failed || r.w.hook_failed)
        .collect();
    let views: Vec<WorktreeView> = rows.iter().map(|r| WorktreeView::new(&r.w)).collect();
    out.emit(&views, || {
        if rows.is_empty() {
            return "no worktrees".to_owned();
        }
        match args.format {
            Format::Plain => plain(&rows),
            Format::Table => fitted(&rows, manager.main_tree()),
        }
    });
    Ok(0)
}

async fn rows(
    manager: &Manager,
    all: Vec<Worktree>,
    with_state: bool,
    want_held: bool,
) -> Result<Vec<Row>, Failure> {
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    // Which issue locks are held: one listing of the locks.
    let held_locks: Vec<String> = if (with_state || want_held) && !all.is_empty() {
        manager
            .lock_status()
            .await?
            .into_iter()
            .filter(|l| l.held)
            .map(|l| l.name)
            .collect()
    } else {
        Vec::new()
    };
    // The worktrees' states, four at a time (two git calls each).
    let states: Vec<Option<WorkingState>> = if with_state {
        let mut states = Vec::with_capacity(all.len());
        for chunk in all.chunks(4) {
            let read =
                futures_util::future::join_all(chunk.iter().map(|w| manager.working_state(w)))
                    .await;
            for s in read {
                states.push(s?);
            }
        }
        states
    } else {
        vec![None; all.len()]
    };
    Ok(all
        .into_iter()
        .zip(states)
        .map(|(w, state)| {
            let held = IssueId::parse(&w.issue)
                .ok()
                .and_then(|i| manager.lock_names().issue(&i).ok())
                .is_some_and(|name| held_locks.iter().any(|h| h == name.as_str()));
            let here = cwd.as_ref().is_some_and(|c| {
                let root = std::fs::canonicalize(&w.path).unwrap_or_else(|_| w.path.clone());
                c.starts_with(root)
            });
            Row {
                w,
                state,
                held,
                here,
            }
        })
        .collect())
}

fn dirty(s: &WorkingState) -> bool {
    s.changed > 0 || s.ahead.is_some_and(|a| a > 0)
}

/// The STATE cell: `clean`, `3 changed`, `+2/-1`, flags.
fn state_cell(r: &Row) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &r.state {
        Some(s) => {
            parts.push(if s.changed == 0 {
                "clean".to_owned()
            } else {
                format!("{} changed", s.changed)
            });
            match (s.ahead, s.behind) {
                (Some(0), Some(0)) | (None, None) => {}
                (a, b) => parts.push(format!("+{}/-{}", a.unwrap_or(0), b.unwrap_or(0))),
            }
        }
        None => parts.push(status(&r.w)),
    }
    if r.state.is_some() {
        if r.w.hook_failed {
            parts.push("hook_failed".to_owned());
        }
        if r.w.recovered {
            parts.push("(record rebuilt)".to_owned());
        }
        if r.w.sparse.is_some() {
            parts.push("sparse".to_owned());
        }
    }
    if r.held {
        parts.push("held".to_owned());
    }
    parts.join(" ")
}

/// The table people read: fitted to the terminal.
fn fitted(rows: &[Row], main: &std::path::Path) -> String {
    let slots = rows.iter().any(|r| r.w.slot.is_some());
    let ports = rows.iter().any(|r| r.w.port.is_some());
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut header = vec!["", "ISSUE", "STATE", "AGENT"];
    let mut give = vec![Give::Keep, Give::Start, Give::Start, Give::Start];
    if slots {
        header.push("SLOT");
        give.push(Give::Keep);
    }
    if ports {
        header.push("PORT");
        give.push(Give::Keep);
    }
    header.extend(["AGE", "PATH"]);
    give.extend([Give::Keep, Give::End]);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let w = &r.w;
            let mut row = vec![
                if r.here { "*" } else { "" }.to_owned(),
                w.issue.clone(),
                state_cell(r),
                super::status::cell(w),
            ];
            if slots {
                row.push(or_dash(w.slot.map(|s| s.to_string())));
            }
            if ports {
                row.push(or_dash(w.port.map(|p| p.to_string())));
            }
            // Paths under the main tree are shown from it.
            let path = w
                .path
                .strip_prefix(main)
                .map_or_else(|_| w.path.clone(), std::path::Path::to_path_buf);
            row.extend([
                output::ago(w.created_at)
                    .trim_end_matches(" ago")
                    .to_owned(),
                path.display().to_string(),
            ]);
            row
        })
        .collect();
    output::fitted_table(&header, &give, &table, output::terminal_width())
}

/// The records' own columns, whole (no git call per worktree).
fn plain(rows: &[Row]) -> String {
    let slots = rows.iter().any(|r| r.w.slot.is_some());
    let ports = rows.iter().any(|r| r.w.port.is_some());
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let w = &r.w;
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
    output::table(&header, &table)
}

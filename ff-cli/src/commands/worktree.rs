//! create, get, sync, cleanup, list.

use ff_model::cli::{CleanupView, CreatedView, PathView, PrunedView, SyncView, WorktreeView};
use ff_worktree::{SyncOptions, SyncStrategy, WorktreeStatus};

use crate::cli::Strategy;
use crate::config::Settings;
use crate::output::{self, Failure, Out, Progress, Stage};

fn status(s: WorktreeStatus) -> &'static str {
    match s {
        WorktreeStatus::Missing => "missing",
        WorktreeStatus::Elsewhere => "elsewhere",
        _ => "active",
    }
}

pub(super) async fn create(
    settings: &Settings,
    out: Out,
    issue: &str,
    base: Option<String>,
    print_path: bool,
) -> Result<u8, Failure> {
    // Reject a bad id before touching anything, backends included.
    ff_worktree::IssueId::parse(issue)?;
    let mut config = settings.worktree_config_with_hooks()?;
    if let Some(b) = base {
        config = config.with_base_ref(b);
    }
    let manager = settings.manager_with(config).await?;
    let created = manager
        .create_worktree(issue)
        .await
        .map_err(|e| Failure::of(e, Stage::Create))?;
    let w = &created.worktree;
    if print_path {
        println!("{}", w.path.display());
        return Ok(0);
    }
    out.emit(&CreatedView::new(&created), || {
        let mut text = if created.reused {
            format!("{} already has worktree {}", w.issue, w.id)
        } else {
            format!("created worktree {}", w.id)
        };
        text.push_str(&format!(
            "\n  path    {}\n  branch  {} (from {})",
            w.path.display(),
            w.branch,
            w.base
        ));
        if let Some(port) = w.port {
            text.push_str(&format!("\n  port    {port}"));
        }
        for e in &created.evicted {
            text.push_str(&format!("\n  evicted {} to stay within the limit", e.id));
        }
        text
    });
    Ok(0)
}

pub(super) async fn path(settings: &Settings, out: Out, target: &str) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let Some(w) = manager.get(target).await? else {
        return Err(not_found(target));
    };
    out.emit(&PathView::new(&w), || w.path.display().to_string());
    Ok(0)
}

fn not_found(target: &str) -> Failure {
    Failure::new(
        crate::output::Problem::NotFound,
        format!("no worktree for {target:?}; `ff list` shows what exists"),
    )
}

/// The `ffcd ISSUE` function for `shell`: creates the worktree if needed
/// (reusing it otherwise) and changes into it; on failure `ff`'s message
/// stands and the directory stays.
pub(super) fn shell_init(shell: crate::cli::InitShell) -> &'static str {
    match shell {
        crate::cli::InitShell::Bash | crate::cli::InitShell::Zsh => {
            "# ForgeFlow: `ffcd ISSUE` creates the issue's worktree if needed and cds into it.\n\
             ffcd() {\n  \
               if [ \"$#\" -ne 1 ]; then echo 'usage: ffcd ISSUE' >&2; return 2; fi\n  \
               local ff_path\n  \
               ff_path=\"$(command ff create \"$1\" --print-path)\" || return\n  \
               cd \"$ff_path\"\n\
             }\n"
        }
        crate::cli::InitShell::Fish => {
            "# ForgeFlow: `ffcd ISSUE` creates the issue's worktree if needed and cds into it.\n\
             function ffcd --description 'create the issue worktree if needed and cd into it'\n    \
                 if test (count $argv) -ne 1\n        \
                     echo 'usage: ffcd ISSUE' >&2\n        \
                     return 2\n    \
                 end\n    \
                 set -l ff_path (command ff create $argv[1] --print-path); or return\n    \
                 cd $ff_path\n\
             end\n"
        }
    }
}

pub(super) async fn get(settings: &Settings, out: Out, target: &str) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let Some(w) = manager.get(target).await? else {
        return Err(not_found(target));
    };
    out.emit(&WorktreeView::new(&w), || {
        format!(
            "{}\n  issue   {}\n  path    {}\n  branch  {} (from {})\n  status  {}\n  created {}",
            w.id,
            w.issue,
            w.path.display(),
            w.branch,
            w.base,
            status(w.status),
            output::ago(w.created_at)
        )
    });
    Ok(0)
}

pub(super) async fn sync(
    settings: &Settings,
    out: Out,
    target: &str,
    strategy: Option<Strategy>,
    autostash: bool,
) -> Result<u8, Failure> {
    let manager = settings.manager_running_hooks().await?;
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

pub(super) async fn cleanup(
    settings: &Settings,
    out: Out,
    target: &str,
    force: bool,
) -> Result<u8, Failure> {
    let manager = settings.manager_running_hooks().await?;
    let mode = if force {
        ff_worktree::Cleanup::Force
    } else {
        ff_worktree::Cleanup::Safe
    };
    let done = manager.cleanup_worktree(target, mode).await?;
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
        format!("{what}{merged}")
    });
    Ok(0)
}

pub(super) async fn prune(
    settings: &Settings,
    out: Out,
    merged: bool,
    older_than: Option<std::time::Duration>,
    dry_run: bool,
) -> Result<u8, Failure> {
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

pub(super) async fn list(settings: &Settings, out: Out) -> Result<u8, Failure> {
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
                    output::ago(w.created_at),
                    w.path.display().to_string(),
                ]
            })
            .collect();
        output::table(
            &["ID", "ISSUE", "BRANCH", "STATUS", "CREATED", "PATH"],
            &rows,
        )
    });
    Ok(0)
}

//! `ff exec ISSUE -- CMD`: runs a command in an issue's worktree while
//! holding the issue's lock in shared mode, so a cleanup waits for the
//! command instead of removing the directory under it.

use std::time::Duration;

use super::supervise;
use crate::config::Settings;
use crate::output::{self, Failure, Out, Stage};

/// How often `exec` looks again when a cleanup removed the worktree
/// between its creation and the taking of the lock.
const ATTEMPTS: usize = 3;

/// `ff exec`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The issue id.
    pub(crate) issue: String,
    /// Fail (exit 65) instead of creating the worktree when it has none.
    #[arg(long)]
    pub(crate) no_create: bool,
    /// If the lock is lost while CMD runs, how long CMD has to stop
    /// after SIGTERM before SIGKILL.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) kill_after: Duration,
    /// The command and its arguments; it runs in the worktree with
    /// FF_ISSUE, FF_WORKTREE_ID, FF_WORKTREE_PATH, FF_BRANCH, FF_BASE,
    /// FF_SLOT and FF_PORT (with ports configured) set.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

/// What `ff exec` does for an issue without a worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenMissing {
    /// Create it, as `ff create` would.
    Create,
    /// Refuse (`--no-create`).
    Refuse,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let when_missing = if args.no_create {
        WhenMissing::Refuse
    } else {
        WhenMissing::Create
    };
    let (issue, kill_after, command) = (args.issue.as_str(), args.kill_after, &args.command[..]);
    // Bad input is refused before anything is opened or created.
    let issue_id = ff_worktree::IssueId::parse(issue)?;
    if command.is_empty() {
        return Err(Failure::invalid("no command given after --"));
    }
    let manager = settings.manager_running_hooks().await?;
    let operation = format!("ff exec {issue} -- {}", command.join(" "));
    // The command's process group exists before the lock is taken, so the
    // lock names it: waiters on this host judge a holder alive while the
    // command runs, even if `ff` itself died.
    let supervisor = supervise::Supervisor::start()?;
    let mut attempt = 0;
    let (guard, worktree) = loop {
        attempt += 1;
        let here = manager.get(issue).await?;
        if let Some(w) = &here
            && w.status == ff_worktree::WorktreeStatus::Elsewhere
        {
            return Err(Failure::new(
                crate::output::Problem::Elsewhere,
                format!(
                    "{issue}'s worktree {} lives on another host ({}); run ff exec there",
                    w.id,
                    w.path.display()
                ),
            ));
        }
        if !here.is_some_and(|w| w.path.is_dir()) {
            if when_missing == WhenMissing::Refuse {
                return Err(Failure::new(
                    crate::output::Problem::NotFound,
                    format!(
                        "{issue} has no worktree and --no-create was given; \
                         `ff create {issue}` makes one"
                    ),
                ));
            }
            manager
                .create_worktree(issue)
                .await
                .map_err(|e| Failure::of(e, Stage::Create))?;
        }
        let guard = manager
            .lock_issue_shared(issue, &operation, supervisor.group())
            .await
            .map_err(output::before_work)?;
        // A cleanup may have removed the worktree after it was looked at
        // and before the lock was ours: look again under the lock.
        match manager.get(issue).await? {
            Some(w) if w.path.is_dir() => break (guard, w),
            _ if attempt < ATTEMPTS => {
                guard.release().await?;
            }
            _ => {
                let _ = guard.release().await;
                return Err(Failure::new(
                    crate::output::Problem::NotFound,
                    format!(
                        "{issue}'s worktree was removed {ATTEMPTS} times before its lock could be \
                         taken; is something cleaning it up in a loop?"
                    ),
                ));
            }
        }
    };
    tracing::info!(issue = issue_id.as_str(), path = %worktree.path.display(), "running in the worktree");
    // What the command leaves running in the worktree is stopped when the
    // worktree is cleaned up.
    if let Some(group) = supervisor.group() {
        manager.record_process_group(&worktree, group);
    }
    let mut env = vec![
        ("FF_ISSUE", worktree.issue.clone()),
        ("FF_WORKTREE_ID", worktree.id.clone()),
        ("FF_WORKTREE_PATH", worktree.path.display().to_string()),
        ("FF_BRANCH", worktree.branch.clone()),
        ("FF_BASE", worktree.base.clone()),
        ("FF_FENCING_TOKEN", guard.fencing_token().0.to_string()),
    ];
    if let Some(slot) = worktree.slot {
        env.push(("FF_SLOT", slot.to_string()));
    }
    if let Some(port) = worktree.port {
        env.push(("FF_PORT", port.to_string()));
    }
    let job = supervise::Job {
        command,
        cwd: Some(&worktree.path),
        env: &env,
        kill_after,
        output: supervise::Output::Inherit,
    };
    let whose = format!("the lock of issue {issue}");
    let ran = supervise::run_holding(supervisor, job, guard, &whose).await?;
    if out.json {
        out.emit(
            &ff_model::cli::ExecView::new(&worktree, ran.code),
            String::new,
        );
    }
    Ok(ran.code)
}

//! `ff pool fill|status|drain`: the warm pool of worktrees made (and
//! prepared by the approved `pool_prepare` hook) ahead of time, so `ff
//! create` hands one out at once on a large repository.
//!
//! After a command that may have taken one (`create`, `switch`, `exec`,
//! Claude Code's create hook), ff starts `ff pool fill --background` (it
//! ends at once when the pool is full): a process in a session of its own,
//! with no handle on the command's output and its log in
//! `<state dir>/pool.log`, so `$(ff create 12 --print-path)` returns at
//! once. One fill runs per clone; another started meanwhile returns at
//! once.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use ff_model::cli::PoolView;

use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff pool`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) action: Action,
}

/// What to do with the pool.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Make pool worktrees until the pool holds `[pool] size`, settling
    /// first what fills and claims that died left.
    Fill {
        /// Run as ff's own background refill: out of the caller's session
        /// (started by ff; not for people).
        #[arg(long, hide = true)]
        background: bool,
    },
    /// List the pool worktrees, ready or being made.
    Status,
    /// Remove every ready pool worktree (those being made are left to
    /// their fill).
    Drain,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let size = settings.pool_size();
    let (entries, settled, busy, verb) = match args.action {
        Action::Fill { background } => {
            #[cfg(unix)]
            if background {
                // Out of the session of whoever started the command, so its
                // terminal's hang-up or Ctrl-C does not cut the fill short.
                let _ = rustix::process::setsid();
            }
            #[cfg(not(unix))]
            let _ = background;
            let manager = settings.manager_running_hooks().await?;
            let fill = manager.fill_pool().await?;
            (fill.made, fill.settled, fill.busy, "made")
        }
        Action::Status => {
            let manager = settings.manager().await?;
            let entries = manager.pool_status().await?;
            (entries, ff_worktree::Recovery::default(), false, "")
        }
        Action::Drain => {
            let manager = settings.manager().await?;
            let drained = manager.drain_pool().await?;
            (
                drained.removed,
                ff_worktree::Recovery::default(),
                false,
                "removed",
            )
        }
    };
    let view = PoolView::new(size, &entries, &settled, busy);
    out.emit(&view, || {
        let mut text = String::new();
        for r in &view.settled {
            text.push_str(&format!(
                "settled {}: {}\n",
                ff_worktree::display::escape(&r.subject),
                r.detail
            ));
        }
        if busy {
            text.push_str("another fill of this clone is running; it fills the pool\n");
            return text.trim_end().to_owned();
        }
        let rows: Vec<Vec<String>> = view
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.id.clone(),
                    e.state.clone(),
                    e.base.clone(),
                    e.base_commit.chars().take(12).collect(),
                    ff_worktree::display::escape(&e.path).into_owned(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            text.push_str(&output::table(
                &["POOL WORKTREE", "STATE", "BASE", "COMMIT", "PATH"],
                &rows,
            ));
            text.push('\n');
        }
        if verb.is_empty() {
            text.push_str(&format!("{} of {size} in the pool", view.entries.len()));
        } else {
            text.push_str(&format!("{verb} {} (pool size {size})", view.entries.len()));
        }
        text
    });
    Ok(0)
}

/// Starts `ff pool fill --background` for the repository at `dir` with
/// the command's backends ([`crate::background`]), its output appended to
/// `log`. `env` holds them as environment variables, never arguments (a
/// backend URL may carry a password, which `ps` would show). A failure to
/// start it is logged; the next create tries again.
pub(crate) fn start(dir: &Path, env: &[(&'static str, OsString)], log: &Path) {
    let mut args: Vec<&OsStr> = vec!["-v".as_ref(), "-C".as_ref(), dir.as_os_str()];
    args.extend(["pool", "fill", "--background"].map(OsStr::new));
    let env: Vec<(&str, &OsStr)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_os_str()))
        .collect();
    if let Err(e) = crate::background::start(&args, &env, log) {
        tracing::warn!(error = %e, "cannot start the warm pool's refill; the next create tries again");
    }
}

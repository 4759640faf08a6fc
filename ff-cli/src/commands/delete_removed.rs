//! `ff delete-removed` (hidden, started by ff itself): deletes the
//! directories of worktrees a command removed, after that command has
//! returned.
//!
//! A removal moves the worktree's directory out of the way by one rename
//! (`<base>/.ff-deleting-…`) and drops git's registration; deleting the
//! files of a large tree takes seconds, so a command that removed one
//! starts this in a session of its own, with no handle on the command's
//! output (`$(ff cleanup 12 --json)` returns at once) and its log in the
//! state directory, and exits. Killed midway, the next one or `ff recover`
//! finishes the work.

use std::path::{Path, PathBuf};

/// `ff delete-removed`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The base path whose removed worktrees' directories
    /// (`.ff-deleting-*`) to delete.
    #[arg(long, value_name = "DIR")]
    pub(crate) base: PathBuf,
}

/// Deletes every directory awaiting deletion under `--base`; exit 1 when
/// one could be neither deleted nor set aside.
pub(crate) fn run(args: &Args) -> u8 {
    // Out of the session of whoever started the command, so its terminal's
    // hang-up or Ctrl-C does not cut the deletion short.
    #[cfg(unix)]
    let _ = rustix::process::setsid();
    #[cfg(feature = "crash-points")]
    hold_for_tests();
    let mut failed = false;
    for dir in ff_worktree::awaiting_deletion(&args.base) {
        match ff_worktree::delete_removed_directory(&args.base, &dir) {
            Ok(None) => tracing::info!(dir = %dir.display(), "deleted"),
            Ok(Some(kept)) => {
                tracing::warn!(dir = %dir.display(), kept = %kept.display(), "written into as it was deleted: what is left is kept");
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot delete");
                failed = true;
            }
        }
    }
    u8::from(failed)
}

/// Tests hold the deletion while the file `FF_HOLD_DELETION` names exists
/// (at most a minute), to see a command return before it ends.
#[cfg(feature = "crash-points")]
fn hold_for_tests() {
    if let Some(hold) = std::env::var_os("FF_HOLD_DELETION") {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while Path::new(&hold).exists() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Starts `ff delete-removed --base BASE` in the background when anything
/// under `base` awaits deletion ([`crate::background`]), its output
/// appended to `log`. A failure to start it is logged and left to `ff
/// recover`.
pub(crate) fn start(base: &Path, log: &Path) {
    if ff_worktree::awaiting_deletion(base).is_empty() {
        return;
    }
    let args = [
        std::ffi::OsStr::new("-v"),
        "delete-removed".as_ref(),
        "--base".as_ref(),
        base.as_os_str(),
    ];
    if let Err(e) = crate::background::start(&args, &[], log) {
        tracing::warn!(base = %base.display(), error = %e, "cannot start the deletion of removed worktrees; `ff recover` finishes it");
    }
}

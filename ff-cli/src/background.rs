//! Starting ff itself in the background, for work the command that asked
//! for it must not wait for (deleting a removed worktree's files, refilling
//! the warm pool).
//!
//! The process gets stdin closed and stdout and stderr appended to a log
//! under the state directory, never the command's own output: `$(ff
//! cleanup …)` or `$(ff create … --print-path)` would otherwise wait for
//! it. It leaves the caller's session itself (`setsid` at its start), so a
//! terminal's hang-up or Ctrl-C does not cut it short. Nothing waits for
//! it.

use std::ffi::OsStr;
use std::path::Path;

/// Past this size a log is moved to `<log>.1` (replacing the one before),
/// so it never grows without bound.
const LOG_LIMIT: u64 = 1 << 20;

/// Starts this ff binary with `args` (and `env` added to its environment)
/// as described in the module's docs, its output appended to `log`.
///
/// # Errors
/// When the binary cannot be found or started; a log that cannot be
/// opened is not an error (the output is dropped).
pub(crate) fn start<A: AsRef<OsStr>>(
    args: &[A],
    env: &[(&str, &OsStr)],
    log: &Path,
) -> std::io::Result<()> {
    rotate(log);
    let exe = std::env::current_exe()?;
    let (stdout, stderr) = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(file) => (file.try_clone()?.into(), file.into()),
        Err(_) => (std::process::Stdio::null(), std::process::Stdio::null()),
    };
    let mut child = std::process::Command::new(exe);
    child
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .env_remove("RUST_LOG");
    drop(child.spawn()?);
    Ok(())
}

/// Keeps `log` below [`LOG_LIMIT`]: the current file becomes `<log>.1`.
/// (Two commands rotating at once lose at most the older file.)
pub(crate) fn rotate(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_LIMIT) {
        let mut old = log.as_os_str().to_owned();
        old.push(".1");
        if let Err(e) = std::fs::rename(log, &old) {
            tracing::debug!(log = %log.display(), error = %e, "cannot rotate a log");
        }
    }
}

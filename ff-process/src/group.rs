//! Running a command in a process group of its own, so that everything it
//! starts can be stopped at once: the one runner `ff lock`, `ff once`,
//! `ff exec` and the worktree hooks share (feature `group`).
//!
//! What differs between them stays with them: `ff` forwards its signals and
//! keeps a watchdog; hooks have a timeout and a log. What they share is
//! here: spawning into a group, copying output while keeping its tail,
//! stopping the group (SIGTERM, then SIGKILL after a grace period), and
//! reading an exit status the way shells do.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use ff_process::group::{Spawned, exit_code};
//!
//! let mut cmd = tokio::process::Command::new("sh");
//! cmd.args(["-c", "sleep 60 & sleep 60"]);
//! let mut spawned = Spawned::new_group(&mut cmd)?;
//! // Something went wrong: the shell and both sleeps stop.
//! let status = spawned.stop(Duration::from_secs(5)).await?;
//! assert_eq!(exit_code(status), 128 + 15);
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A spawned command and the process group it leads or joined.
#[derive(Debug)]
pub struct Spawned {
    /// The command.
    pub child: tokio::process::Child,
    /// Its process group (Unix), when known.
    pub group: Option<i32>,
}

impl Spawned {
    /// Spawns `cmd` as the leader of a new process group.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn new_group(cmd: &mut tokio::process::Command) -> std::io::Result<Self> {
        Self::in_group(cmd, None)
    }

    /// Spawns `cmd` into process group `group` (one another process
    /// leads), or as the leader of a new one when `None`.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn in_group(
        cmd: &mut tokio::process::Command,
        group: Option<i32>,
    ) -> std::io::Result<Self> {
        #[cfg(unix)]
        cmd.process_group(group.unwrap_or(0));
        let child = cmd.spawn()?;
        #[cfg(unix)]
        let group = group.or_else(|| child.id().and_then(|id| i32::try_from(id).ok()));
        #[cfg(not(unix))]
        let group: Option<i32> = {
            let _ = group;
            None
        };
        Ok(Self { child, group })
    }

    /// Sends `signal` to the whole group (Unix; nothing elsewhere).
    #[cfg(unix)]
    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self.group.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    /// Stops the group: SIGTERM, then SIGKILL once `grace` has passed
    /// without the command ending (at once when `grace` is zero). Off
    /// Unix, the command alone is killed.
    ///
    /// # Errors
    /// When waiting for the command fails.
    pub async fn stop(&mut self, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        #[cfg(unix)]
        {
            use rustix::process::Signal;
            if !grace.is_zero() {
                self.signal(Signal::TERM);
                if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
                    return status;
                }
            }
            self.signal(Signal::KILL);
        }
        // Elsewhere there is no group to ask to stop: the command is killed.
        #[cfg(not(unix))]
        let _ = grace;
        let _ = self.child.start_kill();
        self.child.wait().await
    }
}

/// Copies `from` to `to` as it comes, flushing each piece; returns the last
/// `keep` bytes (at most twice that is held while copying).
pub async fn tee_tail(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    keep: usize,
) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let _ = to.write_all(&buf[..n]).await;
        let _ = to.flush().await;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    tail
}

/// An exit status as shells report it: the code, or 128 + N for signal N
/// (1 when neither is known).
#[must_use]
pub fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn stopping_reaches_everything_the_command_started() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().expect("a dir");
            let marker = dir.path().join("grandchild");
            // The grandchild records its pid, then lives on unless stopped.
            let script = format!(
                "sh -c 'echo $$ > {}; exec sleep 60' & wait",
                marker.display()
            );
            let mut cmd = tokio::process::Command::new("sh");
            cmd.args(["-c", &script]);
            let mut spawned = Spawned::new_group(&mut cmd).expect("spawn");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let pid = loop {
                if let Some(pid) = std::fs::read_to_string(&marker)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                {
                    break pid;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the grandchild never started"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let status = spawned.stop(Duration::from_secs(5)).await.expect("wait");
            assert_eq!(exit_code(status), 128 + 15, "the leader died of SIGTERM");
            // The grandchild got SIGTERM too: it ends (no reaper of ours, so
            // it may linger as a zombie of init briefly; wait for it).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while crate::liveness(pid, None) == crate::Liveness::Alive {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the grandchild outlived the stop"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        runtime().block_on(async {
            let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let mut copied = Vec::new();
            let tail = tee_tail(&input[..], &mut copied, 1000).await;
            assert_eq!(copied, input);
            assert_eq!(tail, input[input.len() - 1000..]);
        });
    }
}

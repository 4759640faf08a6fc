//! Processes running in a directory: what a worktree's cleanup must not
//! pull the ground from under (an agent, a shell, a server), and the
//! signals that stop the ones ff may stop.
//!
//! Read from `/proc` on Linux: each process's working directory (its
//! `cwd` link), process group and start time. Elsewhere nothing is listed
//! (there is no safe, dependency-free way to read another process's
//! working directory), and the callers say so.

use std::path::Path;

/// A process whose working directory is inside a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resident {
    /// Its pid.
    pub pid: u32,
    /// Its process group.
    pub process_group: u32,
    /// Its start time (see [`crate::start_time`]): with the pid, it names
    /// this process even after the pid is reused.
    pub start_time: u64,
    /// Its command line, as `/proc/<pid>/cmdline` has it (arguments
    /// joined by spaces; the executable's name when that is empty).
    pub command: String,
    /// Its arguments, the program's own name first, as `/proc/<pid>/cmdline`
    /// has them (empty for a kernel thread or when unreadable).
    pub args: Vec<String>,
}

/// Whether this platform can list the processes in a directory.
#[must_use]
pub fn supported() -> bool {
    cfg!(target_os = "linux") && Path::new("/proc/self/cwd").exists()
}

/// The running processes (zombies and exiting ones aside) whose working directory is `dir`
/// or beneath it, other than this process and its ancestors (whoever ran
/// this command from inside `dir` means to leave it). Empty where
/// [`supported`] is false.
#[must_use]
pub fn working_in(dir: &Path) -> Vec<Resident> {
    #[cfg(target_os = "linux")]
    {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let lineage = lineage();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut found: Vec<Resident> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let name = name.to_str()?;
                let pid: u32 = name.parse().ok()?;
                if lineage.contains(&pid) {
                    return None;
                }
                let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
                if !cwd.starts_with(&dir) {
                    return None;
                }
                let stat = crate::stat(name).ok().flatten()?;
                // One that began to exit is leaving the directory, not
                // working in it; its command line already reads empty.
                if matches!(stat.state, 'Z' | 'X') || stat.exiting {
                    return None;
                }
                let (command, args) = command_line(name);
                Some(Resident {
                    pid,
                    process_group: u32::try_from(stat.process_group).ok()?,
                    start_time: stat.start_time,
                    command,
                    args,
                })
            })
            .collect();
        found.sort_by_key(|r| r.pid);
        found
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Vec::new()
    }
}

/// Process `pid`'s command line for people, and its arguments.
#[cfg(target_os = "linux")]
fn command_line(pid: &str) -> (String, Vec<String>) {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let line = if args.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default()
    } else {
        args.join(" ")
    };
    (line, args)
}

/// This process and its ancestors, up to the first the kernel started.
#[cfg(target_os = "linux")]
fn lineage() -> std::collections::HashSet<u32> {
    let mut out = std::collections::HashSet::new();
    let mut pid = ff_traits::identity::pid();
    while pid > 1 && out.insert(pid) {
        match crate::stat(&pid.to_string()) {
            Ok(Some(s)) => pid = s.parent,
            _ => break,
        }
    }
    out
}

/// Sends SIGTERM (`kill` false) or SIGKILL to `resident` if it is still
/// the same process (its start time unchanged); whether one was sent.
#[must_use]
pub fn signal(resident: &Resident, kill: bool) -> bool {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process};
        if crate::liveness(resident.pid, Some(resident.start_time)) != crate::Liveness::Alive {
            return false;
        }
        let Some(pid) = i32::try_from(resident.pid).ok().and_then(Pid::from_raw) else {
            return false;
        };
        kill_process(pid, if kill { Signal::KILL } else { Signal::TERM }).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = (resident, kill);
        false
    }
}

/// Sends SIGTERM (`kill` false) or SIGKILL to every process of process
/// group `group`; whether it was sent.
#[must_use]
pub fn signal_group(group: u32, kill: bool) -> bool {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process_group};
        let Some(pid) = i32::try_from(group).ok().and_then(Pid::from_raw) else {
            return false;
        };
        kill_process_group(pid, if kill { Signal::KILL } else { Signal::TERM }).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = (group, kill);
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_began_to_exit_is_not_found() {
        use std::io::Read as _;
        use std::process::{Command, Stdio};
        // A process lets go of its memory before its working directory:
        // for that moment it is found in the directory with an empty
        // command line (as git's background maintenance is, right after
        // an agent's commit). A process holding 1 GiB makes the moment
        // long enough to see: `tail -c` keeps what it read until its
        // input ends.
        const SIZE: &str = "1073741824";
        let dir = tempfile::tempdir().expect("tempdir");
        let mut feed = Command::new("head")
            .args(["-c", SIZE, "/dev/zero"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("head");
        let mut holder = Command::new("tail")
            .args(["-c", SIZE])
            .current_dir(dir.path())
            .stdin(feed.stdout.take().expect("piped"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("tail");
        // Its first byte out means it holds the whole input.
        let mut first = [0u8; 1];
        holder
            .stdout
            .as_mut()
            .expect("piped")
            .read_exact(&mut first)
            .expect("tail writes");
        feed.wait().expect("head ends");
        let pid = holder.id().to_string();
        let _ = holder.kill();
        let mut seen_exiting = 0;
        while let Some(stat) = crate::stat(&pid).ok().flatten() {
            if matches!(stat.state, 'Z' | 'X') {
                break;
            }
            seen_exiting += usize::from(stat.exiting);
            let found = working_in(dir.path());
            assert!(found.is_empty() || !stat.exiting, "{found:?}");
        }
        holder.wait().expect("reaped");
        assert!(seen_exiting > 0, "the exit was too quick to be seen");
    }

    #[test]
    fn a_process_in_a_directory_is_found_and_this_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = dir.path().join("deep");
        std::fs::create_dir(&inner).expect("mkdir");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&inner)
            .spawn()
            .expect("spawn");
        // `spawn` returns once the child's exec began: the kernel fills its
        // command line a moment later (until then `/proc/<pid>/cmdline`
        // reads empty, and its name stands in). Asked until it is whole.
        let mut found = working_in(dir.path());
        for _ in 0..200 {
            if found.first().is_some_and(|r| r.command == "sleep 30") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = working_in(dir.path());
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pid, child.id());
        assert_eq!(found[0].command, "sleep 30");
        assert!(signal(&found[0], false));
        let status = child.wait().expect("wait");
        assert!(!status.success());
        assert!(working_in(dir.path()).is_empty());
        // This test's own process is never listed, wherever it runs.
        let here = std::env::current_dir().expect("cwd");
        assert!(
            working_in(&here)
                .iter()
                .all(|r| r.pid != ff_traits::identity::pid())
        );
    }
}

//! What differs by operating system: opening lock files safely, and telling
//! whether a process is alive and which process it is.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens (creating if needed) a lock file for reading and writing, never
/// following a symbolic link at its last component. Rust opens files
/// close-on-exec, so child processes never inherit a lock.
pub(crate) fn open_lock_file(path: &Path, create_new: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path)
}

/// Whether the error says the path was a symbolic link we refused to follow.
pub(crate) fn is_symlink_refusal(err: &io::Error, path: &Path) -> bool {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    let _ = err;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// What is known about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// It exists (and, where start times are known, it is the same process).
    // Never concluded where the OS gives no cheap, safe probe (Windows):
    // there, a lease is judged by its age alone.
    #[cfg_attr(not(unix), allow(dead_code))]
    Alive,
    /// It is gone, or its pid now belongs to another process.
    Dead,
    /// This platform cannot tell.
    Unknown,
}

/// The start time of process `pid` in OS-specific units (clock ticks since
/// boot on Linux), where the OS tells it.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may contain spaces and parentheses: the
        // fields we want follow the last ')'. starttime is field 22.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19)?.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Whether process `pid`, started at `start_time` (if recorded), still runs
/// on this host.
pub(crate) fn liveness(pid: u32, start_time: Option<u64>) -> Liveness {
    #[cfg(unix)]
    {
        let Some(raw) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return Liveness::Dead;
        };
        match rustix::process::test_kill_process(raw) {
            Ok(()) | Err(rustix::io::Errno::PERM) => {}
            Err(rustix::io::Errno::SRCH) => return Liveness::Dead,
            Err(_) => return Liveness::Unknown,
        }
        match (start_time, process_start_time(pid)) {
            (Some(recorded), Some(now)) if recorded != now => Liveness::Dead,
            _ => Liveness::Alive,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, start_time);
        Liveness::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        let me = std::process::id();
        let start = process_start_time(me);
        #[cfg(target_os = "linux")]
        assert!(start.is_some());
        #[cfg(unix)]
        assert_eq!(liveness(me, start), Liveness::Alive);
        // Windows has no probe here: leases are judged by age.
        #[cfg(not(unix))]
        assert_eq!(liveness(me, start), Liveness::Unknown);
        #[cfg(target_os = "linux")]
        assert_eq!(
            liveness(me, start.map(|s| s + 1)),
            Liveness::Dead,
            "pid reuse not detected"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        assert_eq!(liveness(pid, None), Liveness::Dead);
    }
}

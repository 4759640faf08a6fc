//! Facts about processes: this one's host name, pid space and unique ids;
//! whether another process (or the process group it left behind) still
//! runs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The host name of this machine, read once.
///
/// Linux reads `/proc/sys/kernel/hostname`; elsewhere `HOSTNAME` or
/// `COMPUTERNAME`; `localhost` when none is available.
#[must_use]
pub fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
            .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// This process's id, read once (`getpid` is a system call on every call).
#[must_use]
pub fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// A 128-bit identifier as 32 hex characters, unique across processes and
/// hosts for all practical purposes: 64 bits that identify this process
/// (a hash of host, pid, start time and an address, taken once), then a
/// 64-bit counter that never repeats within the process.
#[must_use]
pub fn unique_id() -> String {
    static PROCESS_TAG: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tag = PROCESS_TAG.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let marker = 0u8;
        let mut h = Sha256::new();
        h.update(hostname().as_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(nanos.to_le_bytes());
        h.update((std::ptr::addr_of!(marker) as usize).to_le_bytes());
        crate::key::hex_lower(&h.finalize()[..8])
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{count:016x}")
}

/// Whether a process still runs, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// It runs (and, where start times are known, it is the same process).
    Alive,
    /// It is gone, a zombie nobody reaped, or its pid now belongs to
    /// another process.
    Dead,
    /// This process cannot tell: another host or pid namespace, or a
    /// platform without a safe probe (Windows).
    Unknown,
}

/// What `/proc/<pid>/stat` says of a process.
#[cfg(target_os = "linux")]
struct Stat {
    /// `Z` (zombie) and `X` (dead) processes run no more code.
    state: char,
    process_group: i64,
    start_time: u64,
}

#[cfg(target_os = "linux")]
fn stat(pid: &str) -> std::io::Result<Option<Stat>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want follow the last ')'. After it: state (field 3),
    // ppid, pgrp (5), … starttime (22).
    let Some((_, rest)) = text.rsplit_once(')') else {
        return Ok(None);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let parsed = (|| {
        Some(Stat {
            state: fields.first()?.chars().next()?,
            process_group: fields.get(2)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    })();
    Ok(parsed)
}

/// Whether `/proc` can be trusted to list every process of this pid space.
#[cfg(target_os = "linux")]
fn proc_mounted() -> bool {
    static MOUNTED: OnceLock<bool> = OnceLock::new();
    *MOUNTED.get_or_init(|| std::path::Path::new("/proc/self/stat").exists())
}

/// The start time of process `pid` in OS-specific units (clock ticks since
/// boot on Linux), where the OS tells it. With the pid it names one process
/// even after the pid is reused.
#[must_use]
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        stat(&pid.to_string()).ok().flatten().map(|s| s.start_time)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// This process's start time, read once.
#[must_use]
pub fn own_start_time() -> Option<u64> {
    static START: OnceLock<Option<u64>> = OnceLock::new();
    *START.get_or_init(|| start_time(pid()))
}

/// The pid space this process lives in, where the OS tells it: on Linux,
/// the boot id and the pid namespace. Two processes may judge each other's
/// pids only when they share a host name *and* a pid space: containers
/// often share a host name (`--uts=host`, `--network=host`) but never
/// their pids.
#[must_use]
pub fn pid_space() -> Option<&'static str> {
    static SPACE: OnceLock<Option<String>> = OnceLock::new();
    SPACE
        .get_or_init(|| {
            #[cfg(target_os = "linux")]
            {
                let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
                let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
                Some(format!("{}/{}", boot.trim(), namespace.display()))
            }
            #[cfg(not(target_os = "linux"))]
            None
        })
        .as_deref()
}

/// Whether process `pid`, started at `start_time` (if recorded), still runs
/// in this pid space. The caller must know the pid belongs here (see
/// [`pid_space`]).
#[must_use]
pub fn liveness(pid: u32, start_time: Option<u64>) -> Liveness {
    #[cfg(target_os = "linux")]
    if proc_mounted() {
        match stat(&pid.to_string()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Dead,
            Ok(Some(now)) => {
                let changed = start_time.is_some_and(|recorded| recorded != now.start_time);
                return if changed || matches!(now.state, 'Z' | 'X') {
                    Liveness::Dead
                } else {
                    Liveness::Alive
                };
            }
            // Unreadable: fall back to the signal probe.
            Err(_) | Ok(None) => {}
        }
    }
    let _ = start_time;
    #[cfg(unix)]
    return signal_probe(pid, rustix::process::test_kill_process);
    #[cfg(not(unix))]
    {
        let _ = pid;
        Liveness::Unknown
    }
}

/// `kill(id, 0)` through `probe` (a process or a process group): whether
/// anything answers to `id`.
#[cfg(unix)]
fn signal_probe(id: u32, probe: fn(rustix::process::Pid) -> rustix::io::Result<()>) -> Liveness {
    let Some(raw) = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Liveness::Dead;
    };
    match probe(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => Liveness::Alive,
        Err(rustix::io::Errno::SRCH) => Liveness::Dead,
        Err(_) => Liveness::Unknown,
    }
}

/// Whether any process of process group `group` still runs in this pid
/// space (zombies do not count: an orphan's zombie may wait forever for
/// an init that never reaps).
#[must_use]
pub fn group_liveness(group: u32) -> Liveness {
    #[cfg(unix)]
    {
        match signal_probe(group, rustix::process::test_kill_process_group) {
            Liveness::Alive => {}
            dead_or_unknown => return dead_or_unknown,
        }
        // Someone is in the group; on Linux, tell runners from zombies.
        #[cfg(target_os = "linux")]
        if proc_mounted() {
            let Ok(entries) = std::fs::read_dir("/proc") else {
                return Liveness::Alive;
            };
            let runs = entries.filter_map(|e| e.ok()).any(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name.bytes().all(|b| b.is_ascii_digit())
                    && stat(&name).ok().flatten().is_some_and(|s| {
                        s.process_group == i64::from(group) && !matches!(s.state, 'Z' | 'X')
                    })
            });
            return if runs {
                Liveness::Alive
            } else {
                Liveness::Dead
            };
        }
        Liveness::Alive
    }
    #[cfg(not(unix))]
    {
        let _ = group;
        Liveness::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_hex() {
        let a = unique_id();
        let b = unique_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!hostname().is_empty());
    }

    #[test]
    fn this_process_is_alive() {
        let me = pid();
        let start = own_start_time();
        #[cfg(target_os = "linux")]
        {
            assert!(start.is_some());
            assert!(pid_space().is_some());
            assert_eq!(
                liveness(me, start.map(|s| s + 1)),
                Liveness::Dead,
                "pid reuse not detected"
            );
        }
        #[cfg(unix)]
        assert_eq!(liveness(me, start), Liveness::Alive);
        #[cfg(not(unix))]
        assert_eq!(liveness(me, start), Liveness::Unknown);
    }

    #[cfg(unix)]
    #[test]
    fn a_reaped_child_and_its_empty_group_are_dead() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .expect("spawn");
        let id = child.id();
        child.wait().expect("wait");
        assert_eq!(liveness(id, None), Liveness::Dead);
        assert_eq!(group_liveness(id), Liveness::Dead);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_group_of_zombies_is_dead_and_a_running_member_keeps_it_alive() {
        use std::os::unix::process::CommandExt;
        // The leader exits at once (a zombie until reaped); its child
        // sleeps on in the group.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null & echo $!"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let group = leader.id();
        let mut out = String::new();
        std::io::Read::read_to_string(leader.stdout.as_mut().expect("stdout"), &mut out)
            .expect("read");
        let sleeper: u32 = out.trim().parse().expect("pid");
        // Wait until the leader is a zombie we have not reaped yet.
        while liveness(group, None) == Liveness::Alive {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(group_liveness(group), Liveness::Alive, "the sleeper runs");
        let raw =
            rustix::process::Pid::from_raw(i32::try_from(sleeper).expect("pid")).expect("pid");
        rustix::process::kill_process(raw, rustix::process::Signal::KILL).expect("kill");
        // The sleeper's zombie (an orphan nobody may reap) and the leader's
        // zombie (ours, not yet reaped) do not keep the group alive.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_liveness(group) == Liveness::Alive {
            assert!(std::time::Instant::now() < deadline, "the group never died");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        leader.wait().expect("reap");
    }
}

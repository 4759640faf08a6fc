//! Who this process is: its host name, pid, start time and pid space,
//! and ids unique across processes and hosts. These fill a lock holder's
//! [`LockInfo`](crate::LockInfo); judging whether another process still
//! runs is the `ff-process` crate's work.

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

/// This process's start time in OS-specific units (clock ticks since boot
/// on Linux, field 22 of `/proc/self/stat`), read once; `None` where the
/// OS does not tell. With the pid it names this process even after the
/// pid is reused.
#[must_use]
pub fn own_start_time() -> Option<u64> {
    static START: OnceLock<Option<u64>> = OnceLock::new();
    *START.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces and parentheses: the
        // fields after the last ')' start at field 3, so 22 is the 20th.
        text.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(19)?
            .parse()
            .ok()
    })
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

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_tells_start_time_and_pid_space() {
        assert!(own_start_time().is_some());
        assert!(pid_space().is_some());
    }
}

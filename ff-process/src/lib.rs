//! # ff-process: whether a process still runs
//!
//! Lock backends free a lock whose holder died; `ff serve` shows whether a
//! holder runs. Both ask here, about a pid (with its recorded start time,
//! so a reused pid is not mistaken for the holder) or a process group (a
//! command the holder left running). The answers are judged from this
//! process, and only where its pids mean what the holder's meant: same
//! host name and same pid space ([`ff_traits::identity::pid_space`]).
//!
//! ```
//! use ff_process::{Liveness, liveness};
//!
//! let me = ff_traits::identity::pid();
//! # #[cfg(unix)]
//! assert_eq!(liveness(me, ff_traits::identity::own_start_time()), Liveness::Alive);
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "group")]
pub mod group;
pub mod residents;

#[cfg(target_os = "linux")]
use std::sync::OnceLock;

use ff_traits::LockInfo;
use ff_traits::identity;

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
pub(crate) struct Stat {
    /// `Z` (zombie) and `X` (dead) processes run no more code.
    pub(crate) state: char,
    pub(crate) parent: u32,
    pub(crate) process_group: i64,
    pub(crate) start_time: u64,
    /// The kernel's `PF_EXITING`: the process has begun to exit and runs
    /// none of its own code again. It lets go of its memory first (its
    /// `/proc/<pid>/cmdline` reads empty) and its working directory
    /// last, so for a moment it is still found "in" a directory it is
    /// leaving.
    pub(crate) exiting: bool,
}

#[cfg(target_os = "linux")]
pub(crate) fn stat(pid: &str) -> std::io::Result<Option<Stat>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(parse_stat(&text))
}

/// The fields of a `/proc/<pid>/stat` line we use; `None` when it is not
/// one.
#[cfg(target_os = "linux")]
fn parse_stat(text: &str) -> Option<Stat> {
    /// `PF_EXITING` in `include/linux/sched.h`.
    const PF_EXITING: u64 = 0x4;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want follow the last ')'. After it: state (field 3),
    // ppid, pgrp (5), … flags (9), … starttime (22).
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        parent: fields.get(1)?.parse().ok()?,
        process_group: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        exiting: fields.get(6)?.parse::<u64>().ok()? & PF_EXITING != 0,
    })
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

/// Whether process `pid`, started at `start_time` (if recorded), still runs
/// in this pid space. The caller must know the pid belongs here (see
/// [`identity::pid_space`]).
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

/// Whether the holder of `info` still runs, judged from this process:
/// only a holder on this host and in this pid space can be judged. A holder
/// whose process is gone is still alive while its
/// [`process_group`](LockInfo::process_group) runs.
#[must_use]
pub fn holder_liveness(info: &LockInfo) -> Liveness {
    recorded_process_liveness(
        &info.hostname,
        info.pid_space.as_deref(),
        info.pid,
        info.process_start,
        info.process_group,
    )
}

/// Whether any process of the holder's
/// [`process_group`](LockInfo::process_group) still runs, judged from this
/// process (`Dead` when it named none).
#[must_use]
pub fn holder_group_liveness(info: &LockInfo) -> Liveness {
    if !judgeable_here(info) {
        return Liveness::Unknown;
    }
    info.process_group.map_or(Liveness::Dead, group_liveness)
}

/// Whether the holder's pids mean here what they meant to it.
fn judgeable_here(info: &LockInfo) -> bool {
    pids_mean_here(&info.hostname, info.pid_space.as_deref())
}

/// Whether a pid recorded on `hostname` in pid namespace `pid_space`
/// names a process of this host and pid space.
fn pids_mean_here(hostname: &str, pid_space: Option<&str>) -> bool {
    hostname == identity::hostname() && pid_space == identity::pid_space()
}

/// Whether the claimant of an idempotency claim still runs, judged from
/// this process: `Unknown` unless it ran on this host in this pid space.
/// A claimant whose process is gone is still alive while the
/// [`process_group`](ff_traits::ClaimOwner::process_group) of its work runs.
#[must_use]
pub fn claimant_liveness(owner: &ff_traits::ClaimOwner) -> Liveness {
    recorded_process_liveness(
        &owner.hostname,
        owner.pid_space.as_deref(),
        owner.pid,
        owner.process_start,
        owner.process_group,
    )
}

/// The one judgment behind [`holder_liveness`] and [`claimant_liveness`]:
/// a process recorded on `hostname` in `pid_space` (`pid`, started at
/// `start`) is judged only here; once it is gone, it lives on while its
/// `group` runs.
fn recorded_process_liveness(
    hostname: &str,
    pid_space: Option<&str>,
    pid: u32,
    start: Option<u64>,
    group: Option<u32>,
) -> Liveness {
    if !pids_mean_here(hostname, pid_space) {
        return Liveness::Unknown;
    }
    match liveness(pid, start) {
        Liveness::Dead => group.map_or(Liveness::Dead, group_liveness),
        alive_or_unknown => alive_or_unknown,
    }
}

/// How hard [`stop_holder`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: `ff lock` and `ff exec` forward it to their command and
    /// release the lock once it ends.
    Ask,
    /// SIGKILL: the holder cannot refuse; a kernel lock frees as it dies,
    /// and the watchdog of an `ff lock` kills the command's group.
    Kill,
}

/// Why [`stop_holder`] sent nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStoppable {
    /// The holder ran on another host or in another pid namespace
    /// (`host`): its pid means nothing here.
    Elsewhere {
        /// The host it ran on.
        host: String,
    },
    /// Its process (and its recorded group) is gone already.
    Gone,
    /// Its identity cannot be checked here (no recorded start time, or a
    /// platform without signals), so a reused pid could be hit.
    Unverifiable,
    /// The signal was refused (another user's process).
    Denied(String),
}

impl std::fmt::Display for NotStoppable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Elsewhere { host } => write!(
                f,
                "it runs on {host} (or in another pid namespace), which this machine cannot \
                 signal: stop it there"
            ),
            Self::Gone => f.write_str("it is gone already"),
            Self::Unverifiable => f.write_str(
                "its process cannot be identified safely here (no recorded start time): \
                 stop it by hand",
            ),
            Self::Denied(e) => write!(f, "the signal was refused ({e})"),
        }
    }
}

/// Signals the holder of `info` to stop, so the lock it holds frees: the
/// process itself while it runs (checked by its recorded start time, so a
/// reused pid is never hit), else the process group it left running. Only a
/// holder of this host and pid space is signalled.
///
/// # Errors
/// [`NotStoppable`] when nothing was sent, and why.
pub fn stop_holder(info: &LockInfo, how: Stop) -> Result<(), NotStoppable> {
    if !judgeable_here(info) {
        return Err(NotStoppable::Elsewhere {
            host: info.hostname.clone(),
        });
    }
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process, kill_process_group};
        let signal = match how {
            Stop::Ask => Signal::TERM,
            Stop::Kill => Signal::KILL,
        };
        let raw = |id: u32| i32::try_from(id).ok().and_then(Pid::from_raw);
        let sent = match liveness(info.pid, info.process_start) {
            Liveness::Alive if info.process_start.is_some() => {
                let pid = raw(info.pid).ok_or(NotStoppable::Gone)?;
                kill_process(pid, signal)
            }
            Liveness::Alive | Liveness::Unknown => return Err(NotStoppable::Unverifiable),
            Liveness::Dead => match info.process_group.map(group_liveness) {
                Some(Liveness::Alive) => {
                    let group = info.process_group.and_then(raw).ok_or(NotStoppable::Gone)?;
                    kill_process_group(group, signal)
                }
                _ => return Err(NotStoppable::Gone),
            },
        };
        sent.map_err(|e| NotStoppable::Denied(e.to_string()))
    }
    #[cfg(not(unix))]
    {
        let _ = how;
        Err(NotStoppable::Unverifiable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_parentheses() {
        // As the kernel writes it for a process that began to exit (flags
        // 0x400044 hold PF_EXITING), named `a) b (c`.
        let line = "4242 (a) b (c) R 1 4240 4240 0 -1 4194372 98 0 0 0 0 0 0 0 20 0 1 0 3990920 3133440 350";
        let stat = parse_stat(line).expect("a stat line");
        assert_eq!(
            (stat.state, stat.parent, stat.process_group, stat.start_time),
            ('R', 1, 4240, 3_990_920)
        );
        assert!(stat.exiting);
        let running = line.replace("4194372", "4194304");
        assert!(!parse_stat(&running).expect("a stat line").exiting);
        assert!(parse_stat("4242 (cut short").is_none());
        assert!(parse_stat("4242 (x) R 1").is_none());
    }

    #[test]
    fn this_process_is_alive() {
        let me = identity::pid();
        let start = identity::own_start_time();
        #[cfg(target_os = "linux")]
        {
            assert!(start.is_some());
            assert!(identity::pid_space().is_some());
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while liveness(group, None) == Liveness::Alive {
            assert!(
                std::time::Instant::now() < deadline,
                "the leader never exited"
            );
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

    /// A claimant whose process is gone is alive while the process group
    /// of its work runs, and dead once that ends; one of another host
    /// cannot be judged.
    #[cfg(unix)]
    #[test]
    fn a_dead_claimant_lives_on_in_its_work() {
        use std::os::unix::process::CommandExt;
        let mut gone = std::process::Command::new("true").spawn().expect("spawn");
        let pid = gone.id();
        gone.wait().expect("wait");
        let mut work = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn");
        let owner = ff_traits::ClaimOwner::new(
            "claim".into(),
            ff_traits::FencingToken(1),
            ff_traits::Timestamp::now(),
            pid,
            identity::hostname().to_owned(),
        )
        .with_process(None, identity::pid_space().map(str::to_owned));
        assert_eq!(claimant_liveness(&owner), Liveness::Dead);
        let with_work = owner.clone().with_process_group(Some(work.id()));
        assert_eq!(claimant_liveness(&with_work), Liveness::Alive);
        work.kill().expect("kill");
        work.wait().expect("wait");
        assert_eq!(claimant_liveness(&with_work), Liveness::Dead);
        let mut elsewhere = owner;
        elsewhere.hostname = "elsewhere.invalid".into();
        assert_eq!(claimant_liveness(&elsewhere), Liveness::Unknown);
    }

    /// `stop_holder` signals the recorded process only when it is the one
    /// that took the lock: a wrong start time (a reused pid) or another
    /// host sends nothing.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_recorded_holder_is_stopped() {
        use std::os::unix::process::ExitStatusExt;
        let mut holder = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn");
        let mut info = LockInfo::for_current_process(
            "held",
            ff_traits::FencingToken(1),
            &ff_traits::LockOptions::default(),
            ff_traits::Timestamp::now(),
        );
        info.pid = holder.id();
        info.process_start = start_time(holder.id());
        let mut reused = info.clone();
        reused.process_start = info.process_start.map(|s| s + 1);
        assert_eq!(stop_holder(&reused, Stop::Kill), Err(NotStoppable::Gone));
        let mut elsewhere = info.clone();
        elsewhere.hostname = "elsewhere.invalid".into();
        assert!(matches!(
            stop_holder(&elsewhere, Stop::Kill),
            Err(NotStoppable::Elsewhere { .. })
        ));
        let mut unverified = info.clone();
        unverified.process_start = None;
        assert_eq!(
            stop_holder(&unverified, Stop::Kill),
            Err(NotStoppable::Unverifiable)
        );
        assert_eq!(stop_holder(&info, Stop::Ask), Ok(()));
        let status = holder.wait().expect("wait");
        assert_eq!(status.signal(), Some(15), "{status:?}");
        assert_eq!(stop_holder(&info, Stop::Kill), Err(NotStoppable::Gone));
    }
}

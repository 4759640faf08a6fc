//! Running a command under protection (a lock, a claim) so that it never
//! outlives it: stopped when the protection is lost, sent the signals `ff`
//! receives, and killed with its whole process group if `ff` itself is
//! killed.
//!
//! * A watchdog (`sh`, reading a pipe only `ff` holds) starts first, as
//!   the leader of a new process group; the command joins that group, so a
//!   signal to the group reaches everything the command started. The group
//!   exists before the lock is taken, so the lock records it
//!   ([`ff_traits::LockOptions::process_group`]).
//! * SIGTERM, SIGINT and SIGHUP sent to `ff` are forwarded to that group
//!   (the watchdog ignores them); `ff` waits for the command, then releases
//!   and exits with its status.
//! * Protection lost (a lease lapsed, a lock revoked): SIGTERM to the
//!   group, SIGKILL after the grace period, exit [`LOST`].
//! * `ff` SIGKILLed: the watchdog sees the pipe close and SIGKILLs the
//!   group, itself included, so the command cannot run on unprotected.
//!   Between `ff`'s death and that kill the command may run for a few
//!   milliseconds; the lock covers that window: waiters on this host judge
//!   a dead holder alive while its recorded group runs (on Redis, waiters
//!   elsewhere wait out the TTL). (Linux's `PR_SET_PDEATHSIG` would need
//!   `unsafe` in `pre_exec` and reaches only the direct child; the pipe
//!   works on every Unix and reaches the whole group.)

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use ff_process::group::{Spawned, exit_code, tee_tail};
#[cfg(unix)]
use tokio::io::AsyncWriteExt;

use crate::output::Failure;

/// Exit code when the command was stopped because its protection was lost.
pub(crate) const LOST: u8 = 79;

/// How much of the command's stdout and stderr [`run`] keeps, each, when
/// asked to.
pub(crate) const OUTPUT_TAIL: usize = 64 * 1024;

/// What the command did.
pub(crate) struct Ran {
    /// Its exit code (128 + N for signal N), or [`LOST`].
    pub(crate) code: u8,
    /// Why protection was lost, if it was.
    pub(crate) lost: Option<String>,
    /// The tails of stdout and stderr, when captured.
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// The process group a command will run in, guarded by its watchdog from
/// before the protection is taken until the command ends.
pub(crate) struct Supervisor {
    #[cfg(unix)]
    watchdog: Watchdog,
}

impl Supervisor {
    /// Starts the watchdog (Unix), and with it the command's group.
    ///
    /// # Errors
    /// When `sh` cannot be started.
    pub(crate) fn start() -> Result<Self, Failure> {
        Ok(Self {
            #[cfg(unix)]
            watchdog: Watchdog::start()?,
        })
    }

    /// The process group the command will run in (Unix).
    pub(crate) fn group(&self) -> Option<u32> {
        #[cfg(unix)]
        return self.watchdog.group;
        #[cfg(not(unix))]
        None
    }
}

/// What [`run`] runs, and how.
pub(crate) struct Job<'a> {
    /// The program and its arguments.
    pub(crate) command: &'a [String],
    /// Where it runs; `ff`'s own directory when `None`.
    pub(crate) cwd: Option<&'a std::path::Path>,
    /// Variables set for it.
    pub(crate) env: &'a [(&'a str, String)],
    /// How long it has to stop after SIGTERM before SIGKILL.
    pub(crate) kill_after: Duration,
    /// Whether its output's tails are kept.
    pub(crate) output: Output,
}

/// What becomes of a command's stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// They are `ff`'s own: nothing is kept.
    Inherit,
    /// They pass through `ff`, which keeps their last [`OUTPUT_TAIL`]
    /// bytes each (`ff once` records them).
    PassThroughAndKeep,
}

/// Runs `job` until it ends, or until `lost` yields a reason: then it is
/// stopped (SIGTERM, SIGKILL after its `kill_after`).
pub(crate) async fn run(
    supervisor: Supervisor,
    job: Job<'_>,
    lost: impl Future<Output = String>,
) -> Result<Ran, Failure> {
    let Job {
        command,
        cwd,
        env,
        kill_after,
        output,
    } = job;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::invalid("no command given after --"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if output == Output::PassThroughAndKeep {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    #[cfg(unix)]
    let mut watchdog = supervisor.watchdog;
    #[cfg(not(unix))]
    let _ = supervisor;
    #[cfg(unix)]
    let group = watchdog.group.and_then(|g| i32::try_from(g).ok());
    // The command joins the watchdog's group (or, without one, leads its
    // own).
    #[cfg(not(unix))]
    let group = None;
    // Listening before the command starts: a signal sent to ff as soon as
    // the command runs is forwarded, never ff's death by default action.
    #[cfg(unix)]
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(f) => {
            watchdog.stand_down().await;
            return Err(f);
        }
    };
    let mut spawned = match Spawned::in_group(&mut cmd, group) {
        Ok(spawned) => spawned,
        Err(e) => {
            #[cfg(unix)]
            watchdog.stand_down().await;
            return Err(cannot_run(program, &e));
        }
    };
    let stdout = spawned.child.stdout.take();
    let stderr = spawned.child.stderr.take();
    let copying = async {
        tokio::join!(
            async {
                match stdout {
                    Some(o) => tee_tail(o, tokio::io::stdout(), OUTPUT_TAIL).await,
                    None => Vec::new(),
                }
            },
            async {
                match stderr {
                    Some(e) => tee_tail(e, tokio::io::stderr(), OUTPUT_TAIL).await,
                    None => Vec::new(),
                }
            }
        )
    };
    let waiting = async {
        let mut lost_reason = None;
        tokio::pin!(lost);
        loop {
            #[cfg(unix)]
            let forwarded = signals.next();
            #[cfg(not(unix))]
            let forwarded = std::future::pending::<()>();
            tokio::select! {
                status = spawned.child.wait() => {
                    let status = status.map_err(|e| cannot_run(program, &e))?;
                    return Ok::<_, Failure>((status, lost_reason));
                }
                reason = &mut lost, if lost_reason.is_none() => {
                    eprintln!(
                        "ff: {reason}; stopping the command (SIGTERM, then SIGKILL after {})",
                        ff_traits::fmt_duration(kill_after)
                    );
                    lost_reason = Some(reason);
                    let status = spawned
                        .stop(kill_after)
                        .await
                        .map_err(|e| cannot_run(program, &e))?;
                    return Ok((status, lost_reason));
                }
                () = forwarded => {
                    #[cfg(unix)]
                    if let Some(sig) = signals.last {
                        spawned.signal(sig);
                    }
                }
            }
        }
    };
    let (waited, (out_tail, err_tail)) = tokio::join!(waiting, copying);
    let (status, lost) = waited?;
    #[cfg(unix)]
    watchdog.stand_down().await;
    let code = if lost.is_some() {
        LOST
    } else {
        exit_code(status)
    };
    Ok(Ran {
        code,
        lost,
        stdout: out_tail,
        stderr: err_tail,
    })
}

/// Runs `job` under a lock held by `guard` (`ff lock`, `ff exec`): the
/// command is stopped when the lock is lost (`whose` names the lock in the
/// reason), and the lock is released when it ends. A release that fails is
/// an error unless the lock was already lost (the command's code says so).
///
/// # Errors
/// As [`run`]; a failed release.
pub(crate) async fn run_holding(
    supervisor: Supervisor,
    job: Job<'_>,
    guard: ff_traits::LockGuard,
    whose: &str,
) -> Result<Ran, Failure> {
    let mut loss = guard.loss_watch();
    let lost = async {
        let reason = loss.lost().await;
        format!("{whose} was lost: {reason}")
    };
    let ran = run(supervisor, job, lost).await;
    let released = guard.release().await;
    let ran = ran?;
    if ran.lost.is_none() {
        released?;
    }
    Ok(ran)
}

/// 127 when the program does not exist, 126 when it cannot be run.
pub(crate) fn cannot_run(program: &str, e: &std::io::Error) -> Failure {
    let problem = if e.kind() == std::io::ErrorKind::NotFound {
        crate::output::Problem::ProgramMissing
    } else {
        crate::output::Problem::CannotRun
    };
    Failure::new(problem, format!("cannot run {program:?}: {e}"))
}

/// The signals `ff` forwards to the command's group.
#[cfg(unix)]
pub(super) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    last: Option<rustix::process::Signal>,
}

#[cfg(unix)]
impl Signals {
    pub(super) fn new() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind| {
            signal(kind).map_err(|e| {
                Failure::new(
                    crate::output::Problem::Signals,
                    format!("cannot listen for signals: {e}"),
                )
            })
        };
        Ok(Self {
            term: listen(SignalKind::terminate())?,
            int: listen(SignalKind::interrupt())?,
            hup: listen(SignalKind::hangup())?,
            last: None,
        })
    }

    /// Waits for the next signal and notes which.
    pub(super) async fn next(&mut self) {
        use rustix::process::Signal;
        self.last = Some(tokio::select! {
            _ = self.term.recv() => Signal::TERM,
            _ = self.int.recv() => Signal::INT,
            _ = self.hup.recv() => Signal::HUP,
        });
    }
}

/// A `sh` leading the command's process group, that SIGKILLs the group
/// unless `ff` tells it to stand down: if `ff` dies, the pipe it reads
/// closes and it acts. It ignores the signals forwarded to the group, so it
/// outlasts the command.
#[cfg(unix)]
struct Watchdog {
    process: Option<(tokio::process::Child, tokio::process::ChildStdin)>,
    /// Its pid: the group's id.
    group: Option<u32>,
}

#[cfg(unix)]
impl Watchdog {
    fn start() -> Result<Self, Failure> {
        // By its path: no PATH search (it tried every directory before
        // the one holding sh: a failed exec each, at every run), and no
        // `sh` planted earlier on the PATH stands in for the watchdog.
        let mut child = tokio::process::Command::new("/bin/sh")
            .args([
                "-c",
                r#"trap '' TERM INT HUP; read word; [ "$word" = done ] || kill -s KILL -- "-$$" 2>/dev/null; exit 0"#,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A new group, out of ff's: a terminal's Ctrl-C reaches ff,
            // which forwards it.
            .process_group(0)
            .spawn()
            .map_err(|e| cannot_run("/bin/sh", &e))?;
        let group = child.id();
        let stdin = child.stdin.take();
        Ok(Self {
            process: stdin.map(|s| (child, s)),
            group,
        })
    }

    /// The command ended: the watchdog goes without acting. It is not
    /// waited for (its exit would cost `ff` a few hundred microseconds of
    /// every run): it reads `done` whenever it gets to it and exits.
    async fn stand_down(&mut self) {
        if let Some((child, mut stdin)) = self.process.take() {
            let _ = stdin.write_all(b"done\n").await;
            drop(stdin);
            drop(child);
        }
    }
}

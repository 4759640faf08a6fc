//! `ff lock NAME -- CMD`: run a command while holding a lock, like
//! flock(1) on any backend.

use std::time::Duration;

use ff_model::cli::LockRunView;
use ff_traits::{LockMode, LockOptions};

use super::supervise;
use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff lock`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The lock's name.
    pub(crate) name: String,
    /// Give up after waiting this long.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "30s")]
    pub(crate) timeout: Duration,
    /// Take the lock shared (readers) instead of exclusive.
    #[arg(long, conflicts_with = "permits")]
    pub(crate) shared: bool,
    /// A counting semaphore: at most N holders of NAME at once (1 to
    /// 10000; every holder should give the same N); not with --shared
    /// (--permits N already admits N holders at once).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) permits: Option<u32>,
    /// If the lock is lost while CMD runs, how long CMD has to stop
    /// after SIGTERM before SIGKILL.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) kill_after: Duration,
    /// How long the lock outlives ff should ff stop renewing it (paused,
    /// cut off from Redis): lease-based backends free it after this, and
    /// ff then stops CMD (exit 79) [default: 5m, capped at 30s on Redis].
    #[arg(long, value_parser = crate::cli::parse_nonzero_duration, value_name = "DURATION")]
    pub(crate) lease: Option<Duration>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let (name, command, how) = (args.name.as_str(), &args.command[..], &args);
    let name = ff_traits::LockName::new(name)?;
    if name.as_str().contains('/') {
        ff_hierarchy::path(&name)?;
    }
    let mode = if how.shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let mut options = LockOptions::default()
        .with_timeout(how.timeout)
        .with_mode(mode)
        .with_operation(format!("ff lock -- {}", command.join(" ")));
    if let Some(lease) = how.lease {
        options = options.with_stale_threshold(lease);
    }
    if let Some(n) = how.permits {
        options = options.with_permits(n);
    }
    // Bad options (permits out of range) are refused before anything is
    // opened, started or written.
    options.validate()?;
    let locks = settings.locks().await?;
    // The command's process group exists before the lock is taken, so the
    // lock can name it: a holder that dies is still alive, to waiters on
    // its host, while its command runs.
    let supervisor = supervise::Supervisor::start()?;
    if let Some(group) = supervisor.group() {
        options = options.with_process_group(group);
    }
    // A name with '/' is a node of a hierarchy: intention locks on its
    // ancestors first (bad paths are refused before anything is taken).
    let guard = if name.as_str().contains('/') {
        ff_hierarchy::acquire(&*locks, &name, &options).await
    } else {
        locks.acquire(&name, &options).await
    }
    .map_err(crate::output::before_work)?;
    tracing::info!(
        name = name.as_str(),
        fencing_token = guard.fencing_token().0,
        "lock taken"
    );
    // The command can fence its own writes with the token.
    let env = [
        ("FF_LOCK_NAME", name.to_string()),
        ("FF_FENCING_TOKEN", guard.fencing_token().0.to_string()),
    ];
    let job = supervise::Job {
        command,
        cwd: None,
        env: &env,
        kill_after: how.kill_after,
        output: supervise::Output::Inherit,
    };
    let ran = supervise::run_holding(supervisor, job, guard, &format!("lock '{name}'")).await?;
    if out.json {
        out.emit(&LockRunView::new(name, ran.code), String::new);
    }
    Ok(ran.code)
}

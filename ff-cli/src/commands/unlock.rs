//! `ff unlock`: release a lock whose holder is gone (or, forced, any).

use std::time::{Duration, Instant};

use ff_model::cli::{UnlockOutcome, UnlockView};
use ff_process::{NotStoppable, Stop};
use ff_traits::{ForceOutcome, ForceRelease, LockInfo, LockName, LockProvider};
use ff_worktree::display::escape;

use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff unlock`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The lock's name.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(crate) name: Option<String>,
    /// Every lock of the state directory.
    #[arg(long)]
    pub(crate) all: bool,
    /// Also revoke holders that look alive. A lock no one can take from a
    /// running process (a kernel file lock, a live lease) is freed by
    /// stopping its holder on this machine: SIGTERM (`ff lock` and `ff
    /// exec` pass it to their command), SIGKILL after --kill-after.
    #[arg(long)]
    pub(crate) force: bool,
    /// With --force: how long a stopped holder has to exit after SIGTERM
    /// before SIGKILL.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "10s", value_name = "DURATION", requires = "force")]
    pub(crate) kill_after: Duration,
}

/// Which locks to release.
enum Which {
    Named(String),
    All,
}

/// Whose locks may be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revoke {
    /// Only holders that are provably gone.
    DeadHoldersOnly,
    /// Live holders too (`--force`).
    LiveHoldersToo,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let which = match args.name {
        Some(name) if !args.all => Which::Named(name),
        _ => Which::All,
    };
    let revoke = if args.force {
        Revoke::LiveHoldersToo
    } else {
        Revoke::DeadHoldersOnly
    };
    let locks = settings.locks().await?;
    let statuses = locks.locks().await?;
    let names: Vec<LockName> = match which {
        Which::All => {
            let mut names = statuses
                .iter()
                .map(|s| LockName::new(s.name.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            // Leaves first: a node held for what is beneath it frees
            // with them.
            names.sort_by_key(|n| std::cmp::Reverse(n.as_str().matches('/').count()));
            names
        }
        Which::Named(ref name) => vec![LockName::new(name.as_str())?],
    };
    // A node of a hierarchy: say what beneath it is still held (each is
    // its own lock; unlocking the node does not touch them, and while
    // they are held, the node is held for them).
    let beneath = |node: &str| -> Vec<String> {
        let prefix = format!("{node}/");
        statuses
            .iter()
            .filter(|s| s.held && s.name.starts_with(&prefix))
            .map(|s| s.name.clone())
            .collect()
    };
    let mut views = Vec::new();
    let mut refused = Vec::new();
    for n in names {
        // `--all` frees what is beneath a node too, leaves first.
        let below = match which {
            Which::Named(_) => beneath(n.as_str()),
            Which::All => Vec::new(),
        };
        let status = statuses.iter().find(|s| s.name == n);
        if status.is_none() && matches!(which, Which::Named(_)) {
            // Idempotent (exit 0: a script may free what is free), but a
            // typo should not pass unseen.
            eprintln!("{}", nothing_named(n.as_str(), &statuses));
        }
        if let Some(s) = status.filter(|s| s.held)
            && (revoke == Revoke::DeadHoldersOnly || !below.is_empty())
        {
            refused.push(if below.is_empty() {
                format!(
                    "{n} is held by {}; pass --force to revoke it",
                    holders_text(&s.holders)
                )
            } else {
                // Forcing a node would stop the holders of the locks
                // beneath it: they are named, and freed one by one.
                format!(
                    "{n} is held for what is held beneath it: {}; unlock those (with --force \
                         to revoke their holders)",
                    below.join(", ")
                )
            });
            continue;
        }
        let r = locks.force_release(&n).await?;
        let view = match r.outcome {
            ForceOutcome::Refused { holders, reason } if revoke == Revoke::LiveHoldersToo => {
                stop_holders(&*locks, &n, holders, reason, args.kill_after).await?
            }
            _ => UnlockView::new(&r, below),
        };
        if let UnlockOutcome::Refused { reason, .. } = &view.outcome {
            refused.push(format!("{n}: {reason}"));
        }
        views.push(view);
    }
    out.emit(&views, || {
        views
            .iter()
            .map(|v| {
                let what = match &v.outcome {
                    UnlockOutcome::NotHeld => "was not held".to_owned(),
                    UnlockOutcome::Cleared { .. } => "released (its holder was gone)".to_owned(),
                    UnlockOutcome::Revoked { .. } => "revoked from its live holder".to_owned(),
                    UnlockOutcome::Stopped { previous, signal } => format!(
                        "released: its holder ({}) was stopped with {signal}",
                        holders_text(previous)
                    ),
                    UnlockOutcome::Refused { .. } => "refused".to_owned(),
                    _ => "done".to_owned(),
                };
                if v.held_beneath.is_empty() {
                    format!("{}: {what}", v.name)
                } else {
                    format!(
                        "{}: {what}; still held beneath it: {}",
                        v.name,
                        v.held_beneath.join(", ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if refused.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(
            crate::output::Problem::LockHeld,
            refused.join("; "),
        ))
    }
}

/// Who holds a lock, for a message: `pid 123 (ff lock -- make) on host`.
fn holders_text(holders: &[LockInfo]) -> String {
    if holders.is_empty() {
        return "a running process".to_owned();
    }
    holders
        .iter()
        .map(|h| {
            let op = if h.operation.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&h.operation))
            };
            format!("pid {}{op} on {}", h.pid, escape(&h.hostname))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `ff unlock NAME` says of a name no lock has: the closest one.
fn nothing_named(name: &str, statuses: &[ff_traits::LockStatus]) -> String {
    let closest = statuses
        .iter()
        .map(|s| (strsim::jaro_winkler(name, &s.name), &s.name))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, other)) => format!(
            "ff: no lock named '{}' exists here; did you mean '{}'? (ff locks --all lists them)",
            escape(name),
            escape(other)
        ),
        None => format!(
            "ff: no lock named '{}' exists here (ff locks --all lists them)",
            escape(name)
        ),
    }
}

/// `--force` on a lock its backend cannot take from live holders: stop
/// each holder on this machine (SIGTERM, SIGKILL after `kill_after`) and
/// wait for the lock to free; refused, naming why, when a holder cannot
/// be stopped from here or outlives both signals.
async fn stop_holders(
    locks: &dyn LockProvider,
    name: &LockName,
    holders: Vec<LockInfo>,
    reason: String,
    kill_after: Duration,
) -> Result<UnlockView, Failure> {
    let refuse = |holders: Vec<LockInfo>, reason: String| {
        UnlockView::of(name.as_str(), UnlockOutcome::Refused { holders, reason })
    };
    let mut previous = holders;
    for (how, signal, wait) in [
        (Stop::Ask, "SIGTERM", kill_after),
        (Stop::Kill, "SIGKILL", Duration::from_secs(5)),
    ] {
        for h in &previous {
            match ff_process::stop_holder(h, how) {
                Ok(()) | Err(NotStoppable::Gone) => {}
                Err(why) => {
                    return Ok(refuse(
                        previous.clone(),
                        format!("{reason}; not stopped: {why}"),
                    ));
                }
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let r: ForceRelease = locks.force_release(name).await?;
            match r.outcome {
                ForceOutcome::Refused { holders, .. } => {
                    if Instant::now() >= deadline {
                        previous = holders;
                        break;
                    }
                    // A new holder may have taken it between the tries:
                    // stop only those seen at first, never a newcomer.
                    if !holders
                        .iter()
                        .any(|h| previous.iter().any(|p| p.id == h.id))
                    {
                        return Ok(refuse(
                            holders,
                            "its holder was stopped, and another process took the lock at once"
                                .to_owned(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => {
                    return Ok(UnlockView::of(
                        name.as_str(),
                        UnlockOutcome::Stopped {
                            previous,
                            signal: signal.to_owned(),
                        },
                    ));
                }
            }
        }
    }
    Ok(refuse(
        previous,
        "its holder outlived SIGTERM and SIGKILL; the lock is still held".to_owned(),
    ))
}

//! `ff unlock`: release a lock whose holder is gone (or, forced, any).

use ff_model::cli::UnlockView;
use ff_traits::{ForceOutcome, LockName};

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
    /// Also revoke holders that look alive.
    #[arg(long)]
    pub(crate) force: bool,
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
        Which::All => statuses
            .iter()
            .map(|s| LockName::new(s.name.as_str()))
            .collect::<Result<_, _>>()?,
        Which::Named(name) => vec![LockName::new(name)?],
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
    let mut results = Vec::new();
    let mut refused = Vec::new();
    for n in names {
        let live = statuses.iter().any(|s| s.name == n && s.held);
        if live && revoke == Revoke::DeadHoldersOnly {
            let below = beneath(n.as_str());
            refused.push(if below.is_empty() {
                format!("{n} is held; pass --force to revoke it")
            } else {
                format!(
                    "{n} is held for what is held beneath it: {}; unlock those (or pass --force)",
                    below.join(", ")
                )
            });
            continue;
        }
        let r = locks.force_release(&n).await?;
        if let ForceOutcome::Refused { reason, .. } = &r.outcome {
            refused.push(format!("{n}: {reason}"));
        }
        results.push(r);
    }
    let views: Vec<UnlockView> = results
        .iter()
        .map(|r| UnlockView::new(r, beneath(&r.name)))
        .collect();
    out.emit(&views, || {
        results
            .iter()
            .map(|r| {
                let what = match &r.outcome {
                    ForceOutcome::NotHeld => "was not held",
                    ForceOutcome::Cleared { .. } => "released (its holder was gone)",
                    ForceOutcome::Revoked { .. } => "revoked from its live holder",
                    ForceOutcome::Refused { .. } => "refused",
                    _ => "done",
                };
                let below = beneath(&r.name);
                if below.is_empty() {
                    format!("{}: {what}", r.name)
                } else {
                    format!(
                        "{}: {what}; still held beneath it: {}",
                        r.name,
                        below.join(", ")
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

//! recover, locks, unlock, stats, gc.

use std::time::Duration;

use ff_model::cli::{
    GcView, HookView, HooksView, LockEntryView, RecoverView, StatsView, UnlockView,
};
use ff_traits::{ForceOutcome, LockName, LockStatus, Timestamp};
use ff_worktree::display::{escape, escape_path};

use crate::config::Settings;
use crate::output::{self, Failure, Out, Progress};

pub(super) async fn recover(settings: &Settings, out: Out, dry_run: bool) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let progress = Progress::start("recovering");
    let report = manager
        .recover(if dry_run {
            ff_worktree::Recover::DryRun
        } else {
            ff_worktree::Recover::Repair
        })
        .await;
    drop(progress);
    let report = report?;
    out.emit(&RecoverView::new(&report), || {
        if report.repairs.is_empty() {
            return "nothing to repair: records, git and the disk agree".to_owned();
        }
        let rows: Vec<Vec<String>> = report
            .repairs
            .iter()
            .map(|r| {
                vec![
                    serde_json::to_value(r.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    r.subject.clone(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let title = if dry_run {
            "dry run: nothing was changed\n"
        } else {
            ""
        };
        format!(
            "{title}{}",
            output::table(&["REPAIR", "SUBJECT", "DETAIL"], &rows)
        )
    });
    Ok(0)
}

/// Names with '/' as a tree: each node under its parent (a parent that
/// holds no lock of its own is shown, in brackets), with its mode and its
/// holders.
fn lock_tree(all: &[LockStatus]) -> String {
    let mut nodes: std::collections::BTreeMap<&str, Option<&LockStatus>> =
        std::collections::BTreeMap::new();
    for l in all {
        let mut prefix = l.name.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            nodes.entry(parent).or_insert(None);
            prefix = parent;
        }
        nodes.insert(l.name.as_str(), Some(l));
    }
    nodes
        .iter()
        .map(|(name, status)| {
            let depth = name.matches('/').count();
            let leaf = name.rsplit('/').next().unwrap_or(name);
            let what = match status {
                None => "[no lock of its own]".to_owned(),
                Some(l) if !l.held => "free".to_owned(),
                Some(l) => {
                    let mode = l.mode.map(|m| m.code()).unwrap_or("?");
                    let pids: Vec<String> = l.holders.iter().map(|h| h.pid.to_string()).collect();
                    format!("{mode} held by pid {}", pids.join(", "))
                }
            };
            format!("{}{leaf}  {what}", "  ".repeat(depth))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) async fn locks(settings: &Settings, out: Out, tree: bool) -> Result<u8, Failure> {
    let locks = settings.locks().await?;
    let all = locks.locks().await?;
    let now = Timestamp::now();
    let views: Vec<LockEntryView> = all.iter().map(|l| LockEntryView::new(l, now)).collect();
    // Which backend answered (for Redis, the node): in the human view
    // only, so the JSON stays a plain list.
    let from = locks
        .endpoint()
        .map(|e| format!("\n(from {e})"))
        .unwrap_or_default();
    out.emit(&views, || {
        if all.is_empty() {
            return format!("no locks{from}");
        }
        if tree {
            return format!("{}{from}", lock_tree(&all));
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .zip(&views)
            .map(|(l, view)| {
                let h = l.holders.first();
                let what = match (view.issue.clone(), view.repository.clone()) {
                    (Some(i), Some(r)) => format!("issue {i} in {r}"),
                    (Some(i), None) => format!("issue {i}"),
                    (None, Some(r)) => r,
                    (None, None) => String::new(),
                };
                vec![
                    l.name.clone(),
                    what,
                    if l.held { "held" } else { "free" }.to_owned(),
                    match l.holders.len() {
                        0 | 1 => h
                            .map(|h| format!("pid {} on {}", h.pid, h.hostname))
                            .unwrap_or_default(),
                        n => format!("{n} holders (pid {} … )", h.map_or(0, |h| h.pid)),
                    },
                    h.map(|h| h.operation.clone()).unwrap_or_default(),
                    h.map(|h| output::ago(h.acquired_at)).unwrap_or_default(),
                ]
            })
            .collect();
        let table = output::table(
            &["NAME", "FOR", "STATE", "HOLDER", "OPERATION", "SINCE"],
            &rows,
        );
        format!("{table}{from}")
    });
    Ok(0)
}

pub(super) async fn unlock(
    settings: &Settings,
    out: Out,
    name: Option<&str>,
    all: bool,
    force: bool,
) -> Result<u8, Failure> {
    let locks = settings.locks().await?;
    let statuses = locks.locks().await?;
    let names: Vec<LockName> = if all {
        statuses
            .iter()
            .map(|s| LockName::new(s.name.as_str()))
            .collect::<Result<_, _>>()?
    } else {
        vec![LockName::new(name.unwrap_or_default())?]
    };
    let mut results = Vec::new();
    let mut refused = Vec::new();
    for n in names {
        let live = statuses.iter().any(|s| s.name == n && s.held);
        if live && !force {
            refused.push(format!("{n} is held; pass --force to revoke it"));
            continue;
        }
        let r = locks.force_release(&n).await?;
        if let ForceOutcome::Refused { reason, .. } = &r.outcome {
            refused.push(format!("{n}: {reason}"));
        }
        results.push(r);
    }
    // A node of a hierarchy: say what beneath it is still held (each is
    // its own lock; unlocking the node does not touch them).
    let beneath = |node: &str| -> Vec<String> {
        let prefix = format!("{node}/");
        statuses
            .iter()
            .filter(|s| s.held && s.name.starts_with(&prefix))
            .map(|s| s.name.clone())
            .collect()
    };
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

pub(super) async fn stats(settings: &Settings, out: Out) -> Result<u8, Failure> {
    let store = settings.store().await?;
    let manager =
        ff_idempotency::IdempotencyManager::new(store, ff_idempotency::ManagerConfig::default());
    let s = manager.stats().await?;
    out.emit(&StatsView::new(&s), || {
        let mut text = format!(
            "{} records, {:.1}% of finished ones succeeded, {:.1} ms on average",
            s.total, s.success_rate, s.avg_duration_ms
        );
        let section = |title: &str, rows: Vec<Vec<String>>| {
            if rows.is_empty() {
                String::new()
            } else {
                format!("\n\n{}", output::table(&[title, "RECORDS"], &rows))
            }
        };
        let rows = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| vec![k.clone(), n.to_string()])
                .collect::<Vec<_>>()
        };
        text.push_str(&section("OPERATION", rows(&s.by_operation)));
        text.push_str(&section("STATUS", rows(&s.by_status)));
        if s.corrupt > 0 {
            text.push_str(&format!(
                "\n\n{} unreadable record(s): `ff recover` names them",
                s.corrupt
            ));
        }
        text
    });
    Ok(0)
}

pub(super) async fn gc(settings: &Settings, out: Out, max_age: Duration) -> Result<u8, Failure> {
    let progress = Progress::start("removing old records");
    // In a repository, through the manager, which keeps the records of
    // worktrees that exist; elsewhere, every finished record qualifies.
    let removed = if settings.toplevel.is_some() {
        settings
            .manager()
            .await?
            .cleanup_idempotency_records(max_age)
            .await
    } else {
        ff_worktree::cleanup_records_without_repository(settings.store().await?, max_age).await
    };
    drop(progress);
    let removed = removed?;
    out.emit(&GcView::new(removed), || {
        format!("removed {removed} finished record(s)")
    });
    Ok(0)
}

/// `ff hooks [allow]`: the hooks in force and whether they are approved
/// here; `allow` approves exactly this configuration and the files it
/// runs, for this clone.
pub(super) fn hooks(
    settings: &Settings,
    out: Out,
    action: Option<crate::cli::HooksAction>,
) -> Result<u8, Failure> {
    let (top, common_dir) = super::trust::repository(settings)?;
    let Some(file) = settings.hooks_file() else {
        out.emit(&HooksView::none(top.to_string_lossy()), || {
            "no hooks in ff.toml".to_owned()
        });
        return Ok(0);
    };
    // Bad values are refused before anything is approved.
    file.to_hooks()?;
    // The user's own hooks need no approval; the repository's do.
    let digest = settings
        .trust
        .hooks_digest()
        .unwrap_or_else(|| file.digest());
    let recorded = match (action, settings.trust.hooks.is_some()) {
        (Some(crate::cli::HooksAction::Allow), true) => Some(crate::trust::approve(
            &[(crate::trust::Part::Hooks, digest.clone())],
            &common_dir,
        )?),
        _ => None,
    };
    let approved = recorded.is_some() || settings.trust.hooks_approved;
    let listed: Vec<HookView> = file
        .commands()
        .into_iter()
        .map(|(hook, command)| HookView::new(hook, command))
        .collect();
    out.emit(
        &HooksView::new(
            top.to_string_lossy(),
            listed,
            approved,
            digest.clone(),
            crate::hooks::timeout_of(file),
        ),
        || {
            let mut text = String::new();
            for (hook, command) in file.commands() {
                text.push_str(&format!("{hook}: {}\n", escape(command)));
            }
            for pin in &settings.trust.pins {
                text.push_str(&format!(
                    "  runs {} ({})\n",
                    escape_path(pin.path()),
                    pin.sha256()
                        .map_or("absent: a branch may not add it", |h| &h[..12])
                ));
            }
            match &recorded {
                Some(at) => text.push_str(&format!(
                    "approved for {} (recorded in {})",
                    escape_path(&top),
                    escape_path(at)
                )),
                None if approved => text.push_str("approved on this machine"),
                None => text.push_str("not approved: `ff hooks allow` approves them"),
            }
            text
        },
    );
    Ok(0)
}

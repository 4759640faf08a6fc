//! `ff locks`: locks and their holders.

use ff_model::cli::LockEntryView;
use ff_traits::{LockStatus, Timestamp};

use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff locks`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Show names with '/' as a tree (--json keeps the flat list, each
    /// entry with its `parent`).
    #[arg(long)]
    pub(crate) tree: bool,
    /// Free locks too (the lock files and keys earlier holders left).
    #[arg(long)]
    pub(crate) all: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let tree = args.tree;
    let locks = settings.locks().await?;
    let mut all = locks.locks().await?;
    let free = all.iter().filter(|l| !l.held).count();
    if !args.all {
        all.retain(|l| l.held);
    }
    let now = Timestamp::now();
    let views: Vec<LockEntryView> = all.iter().map(|l| LockEntryView::new(l, now)).collect();
    // Which backend answered (for Redis, the node): in the human view
    // only, so the JSON stays a plain list.
    let from = locks
        .endpoint()
        .map(|e| format!("\n(from {e})"))
        .unwrap_or_default();
    out.emit(&views, || {
        let hidden = if args.all || free == 0 {
            String::new()
        } else {
            format!("\n({free} free lock(s) not shown: ff locks --all)")
        };
        if all.is_empty() {
            return format!("no lock is held{hidden}{from}");
        }
        if tree {
            return format!("{}{hidden}{from}", lock_tree(&all));
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
        format!("{table}{hidden}{from}")
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

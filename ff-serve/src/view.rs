//! The overview `ff top` shows, read from the backends at once (the
//! server reads them on its own schedule, in `watch`).

use ff_model::serve::{Overview, Snapshot};

use crate::Backends;
use crate::alerts::AlertRules;

/// Reads every backend once and sums it up, with the alerts `rules` would
/// fire now (without their duration of firing). What `ff top` shows.
pub async fn overview(backends: &Backends, rules: &AlertRules) -> Overview {
    let mut errors = Vec::new();
    let locks = backends.locks.locks().await.unwrap_or_else(|e| {
        errors.push(format!("{} locks: {e}", backends.locks.backend_name()));
        Vec::new()
    });
    let (records, corrupt) = match backends.store.scan(&ff_traits::ScanFilter::default()).await {
        Ok(scan) => (scan.records, scan.corrupt.len()),
        Err(e) => {
            errors.push(format!("{} store: {e}", backends.store.backend_name()));
            (Vec::new(), 0)
        }
    };
    let (worktrees, repository, limit) = match &backends.worktrees {
        Some(source) => {
            let list = source.worktrees().await.unwrap_or_else(|e| {
                errors.push(format!("worktrees: {e}"));
                Vec::new()
            });
            (list, Some(source.repository()), Some(source.limit()))
        }
        None => (Vec::new(), None, None),
    };
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let parts = Snapshot {
        locks: &locks,
        records: &records,
        corrupt,
        worktrees: &worktrees,
        repository,
        worktree_limit: limit,
        error,
    };
    let alerts = rules.firing(&parts, None);
    Overview::of(&parts, alerts)
}

//! Crash points: named places between the side effects of create, sync,
//! cleanup, prune, recover and `ff once` (git mutations, store writes, lock
//! steps, slot claims, include copies, hook runs, a command run) where a
//! test build can abort
//! the process, to prove that every state a crash there leaves is one the
//! next call settles.
//!
//! Built with the `crash-points` feature, [`point`] aborts the process
//! (as abruptly as SIGKILL: no destructor runs, no lock is released but
//! by the kernel) when the environment variable `FF_CRASH_AT` names it.
//! Without the feature it is nothing at all. Every name must be in
//! [`POINTS`]: the sweeps run each one, and fail on a point they never
//! reached, so a point added without a scenario that reaches it fails.
//! This crate's sweep (`tests/it/crash_points.rs`) runs the manager's
//! points; `ff-cli`'s (`tests/it/crash_once.rs`) runs the `once.` points
//! through the `ff` binary, and this crate's sweep refuses any other
//! scenario it does not know.

/// Every crash point, by name. The part before the first `.` names the
/// scenario of the sweep that reaches it.
pub const POINTS: &[&str] = &[
    // create
    "create.issue_locked",
    "create.claimed",
    "create.slot_taken",
    "create.registered",
    // a sparse create, its directories set before the checkout
    "sparse_create.sparse_set",
    "create.checked_out",
    "create.included",
    "create.completed",
    "create.hook_claimed",
    "create.hook_ran",
    // a fill of the warm pool
    "pool_fill.claimed",
    "pool_fill.registered",
    "pool_fill.checked_out",
    "pool_fill.prepared",
    "pool_fill.completed",
    // a create that takes a warm pool worktree
    "pool_claim.taken",
    "pool_claim.moved",
    "pool_claim.branched",
    "pool_claim.checked_out",
    // create of an issue whose worktree lost its directory
    "restore.set_aside",
    "restore.registered",
    // cleanup, unforced and forced
    "cleanup.issue_locked",
    "cleanup.moved",
    "cleanup.removed",
    "cleanup.branch_retired",
    "cleanup.slot_freed",
    "cleanup.record_removed",
    "cleanup_force.snapshot_kept",
    "cleanup_force.removed",
    // sync
    "sync.claimed",
    "sync.integrated",
    "sync.completed",
    // recover, after a create killed once registered
    "recover.rolled_back",
    "recover.strays_done",
    // prune of a merged worktree
    "prune.judged",
    // `ff once -- CMD` (in ff-cli): its claim made, the command ended,
    // its outcome recorded
    "once.claimed",
    "once.ran",
    "once.completed",
];

/// The scenarios whose points `ff-cli`'s sweep runs, through the binary.
pub const CLI_SCENARIOS: &[&str] = &["once"];

/// Aborts the process when `FF_CRASH_AT` names `name` (with the
/// `crash-points` feature; otherwise nothing).
///
/// # Panics
/// With the feature, when `name` is not in [`POINTS`].
#[cfg(feature = "crash-points")]
pub fn point(name: &'static str) {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    assert!(
        POINTS.contains(&name),
        "crash point {name} is not in ff_worktree::crash::POINTS"
    );
    if ARMED
        .get_or_init(|| std::env::var("FF_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        tracing::error!(point = name, "FF_CRASH_AT: aborting");
        std::process::abort();
    }
}

/// Aborts the process when `FF_CRASH_AT` names `name` (with the
/// `crash-points` feature; otherwise nothing).
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &'static str) {}

//! What the worktree layer reports through the `metrics` facade (see
//! `ff_metrics` for the lock and record metrics, and `METRICS.md`
//! for the table of every name).

use std::time::Instant;

use crate::Result;

/// Seconds per worktree operation, by operation and outcome.
pub const WORKTREE_OPERATION_SECONDS: &str = "ff_worktree_operation_seconds";
/// Worktree operations, by operation and outcome.
pub const WORKTREE_OPERATIONS: &str = "ff_worktree_operations_total";
/// ForgeFlow's worktrees in the repository, as last seen by this process.
pub const WORKTREES: &str = "ff_worktrees";
/// The configured limit on worktrees.
pub const WORKTREES_LIMIT: &str = "ff_worktrees_limit";
/// Seconds per git call, by subcommand.
pub const GIT_CALL_SECONDS: &str = "ff_git_call_seconds";
/// Git calls that failed (an exit code other than 0, or no git at all), by subcommand.
pub const GIT_CALL_FAILURES: &str = "ff_git_call_failures_total";

/// Runs one worktree operation and reports its duration and outcome
/// (`ok`, or the error's kind).
pub(crate) async fn timed<T>(
    operation: &'static str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    // On the heap: the operations' futures are large, and wrapping one by
    // value doubled the stack a caller needs (debug builds overflowed
    // test threads).
    let result = Box::pin(future).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    };
    metrics::histogram!(WORKTREE_OPERATION_SECONDS, "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(WORKTREE_OPERATIONS, "operation" => operation, "outcome" => outcome)
        .increment(1);
    result
}

/// Reports how many worktrees exist against the limit.
pub(crate) fn worktree_count(count: usize, limit: usize) {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    {
        metrics::gauge!(WORKTREES).set(count as f64);
        metrics::gauge!(WORKTREES_LIMIT).set(limit as f64);
    }
}

/// git's subcommand in `args`: the first word that is not an option (nor
/// the value of `-c` or `-C`). Bounded: ForgeFlow runs a fixed set.
pub(crate) fn git_subcommand(args: &[std::ffi::OsString]) -> String {
    let mut words = args.iter();
    while let Some(a) = words.next() {
        let a = a.to_string_lossy();
        if a == "-c" || a == "-C" {
            words.next();
        } else if !a.starts_with('-') {
            return a.into_owned();
        }
    }
    "none".to_owned()
}

/// Reports one git call.
pub(crate) fn git_call(subcommand: String, started: Instant, ok: bool) {
    metrics::histogram!(GIT_CALL_SECONDS, "subcommand" => subcommand.clone())
        .record(started.elapsed().as_secs_f64());
    if !ok {
        metrics::counter!(GIT_CALL_FAILURES, "subcommand" => subcommand).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::git_subcommand;

    #[test]
    fn the_subcommand_skips_options_and_their_values() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            git_subcommand(&args(&["-c", "core.x=1", "worktree", "add"])),
            "worktree"
        );
        assert_eq!(git_subcommand(&args(&["-C", "/tmp", "status"])), "status");
        assert_eq!(git_subcommand(&args(&["--no-pager", "log"])), "log");
        assert_eq!(git_subcommand(&args(&["--version"])), "none");
    }
}

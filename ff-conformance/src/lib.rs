//! # ff-conformance: the checks every ForgeFlow backend runs against itself
//!
//! One `pub async fn` per contract clause of `ff-traits`, which any
//! backend (ours or a plugin's) runs against itself: a plugin depends on
//! `ff-traits` and dev-depends on this crate, nothing else.
//!
//! * The checks **panic** with a message naming the violated clause, like
//!   assertions in a test.
//! * They are **destructive**: they create, overwrite, force-release and
//!   remove state. Give each check a backend instance of its own (a fresh
//!   directory, database or key prefix); the stats and cleanup checks
//!   expect an empty store.
//! * They need a multi-threaded Tokio runtime with time enabled; the
//!   macros bring one ([`run`]), so a plugin crate needs no tokio
//!   dev-dependency of its own.
//! * This crate is **not semver-stable**: checks are added as contracts
//!   are clarified.
//!
//! The macros [`lock_conformance_tests!`](crate::lock_conformance_tests) and
//! [`store_conformance_tests!`](crate::store_conformance_tests) generate one
//! test per check (`examples/plugin` in the repository is a whole plugin
//! crate that runs them):
//!
//! ```ignore
//! // Cargo.toml: [dev-dependencies] ff-conformance = "0.1"
//! ff_conformance::lock_conformance_tests!(async {
//!     std::sync::Arc::new(my_backend::MyLocks::new(/* fresh namespace */))
//!         as std::sync::Arc<dyn ff_traits::LockProvider>
//! });
//! ```
//!
//! # What the suite can and cannot see
//!
//! It drives one backend instance from many tasks of one process. It
//! catches a missing condition in a conditional write, a lost update under
//! a lock, tokens that do not rise, a wait that does not wake, a name or key
//! that is not kept exact. Races are raced [`race_rounds`] times with fresh
//! keys: a store with any await (any I/O) between its check and its write
//! is caught in 100 of 100 runs (measured in this crate's
//! `tests/it/conformance_catches_defects.rs`); a window with no await at all,
//! nanoseconds between two critical sections, is caught only now and then
//! (about 1 run in 10 there), so such a store can pass.
//!
//! It cannot see:
//! * **atomicity across processes**: a backend that arbitrates only inside
//!   one process (an in-memory map in front of a shared file) passes here;
//! * **durability across a crash**: a torn or lost write after SIGKILL or
//!   power loss;
//! * **liveness across processes**: a lock freed when its holding process
//!   dies.
//!
//! For those, run your backend in real child processes. The repository's
//! `ff-testkit` crate (a path or git dev-dependency) does it for stores:
//! `claim_race` (N processes claim one key: exactly one wins) and
//! `crash_during_writes` (a child rewriting one record is SIGKILLed again
//! and again: it must always read back whole); `ff-lock-file`'s
//! `tests/it/cross_process.rs` shows the same for locks.

#![forbid(unsafe_code)]

pub mod lock;
pub mod manager;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};

/// How many times each race check races (a fresh key each round):
/// [`RACE_ROUNDS`], or `FF_CONFORMANCE_RACE_ROUNDS` when set.
///
/// A race is caught only when racers interleave inside the backend's
/// window, so one round can miss a narrow window; this crate's
/// `tests/it/conformance_catches_defects.rs` measures how many rounds catch a
/// check-then-act store that yields once between check and write.
#[must_use]
pub fn race_rounds() -> usize {
    std::env::var("FF_CONFORMANCE_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(RACE_ROUNDS)
}

/// The default of [`race_rounds`].
pub const RACE_ROUNDS: usize = 8;

/// A prefix unique to this check run (process, time, counter), so that
/// checks sharing a backend do not see each other's names.
#[must_use]
pub fn unique_prefix(check: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "ffc-{}-{}-{check}",
        &ff_traits::identity::unique_id()[..8],
        n
    )
}

/// How long a change feed gets to deliver a wake-up, and how long one
/// must stay silent to count as quiet: kernel and server notifications
/// arrive in milliseconds.
const FEED_WAIT: std::time::Duration = std::time::Duration::from_millis(2_000);
const FEED_QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// Whether `feed` wakes within [`FEED_WAIT`]. A broken feed fails the check.
pub(crate) async fn feed_wakes(feed: &mut Box<dyn ff_traits::ChangeFeed>, what: &str) -> bool {
    match tokio::time::timeout(FEED_WAIT, feed.changed()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => panic!("the change feed broke after {what}: {e}"),
        Err(_) => false,
    }
}

/// Waits until `feed` has been silent for [`FEED_QUIET`] (wake-ups may
/// trail a change and coalesce; the checks look at what comes after).
pub(crate) async fn feed_settles(feed: &mut Box<dyn ff_traits::ChangeFeed>) {
    for _ in 0..50 {
        if tokio::time::timeout(FEED_QUIET, feed.changed())
            .await
            .is_err()
        {
            return;
        }
    }
    panic!("the change feed kept waking with nothing changing");
}

/// Whether `feed` stays silent for [`FEED_QUIET`].
pub(crate) async fn feed_stays_quiet(feed: &mut Box<dyn ff_traits::ChangeFeed>) -> bool {
    tokio::time::timeout(FEED_QUIET, feed.changed())
        .await
        .is_err()
}

/// Generates one test per lock check. The argument is an expression
/// evaluating to a future of `Arc<dyn LockProvider>`, evaluated afresh for
/// every test. With `optional` before it, the future yields an `Option`,
/// and `None` (say, no server to test against) ends the test at once.
///
/// A backend without shared mode says so with `exclusive_only` (after
/// `optional`, if both): the shared-mode check then shows as *ignored*, and
/// `shared_mode_refused` checks that shared requests fail cleanly with
/// `Unsupported`. A backend that answers `Unsupported` without declaring it
/// fails the shared-mode check, so no skip passes silently.
///
/// The tests run on a multi-threaded runtime the macro brings through
/// this crate: the calling crate needs no tokio dev-dependency of its own.
#[macro_export]
macro_rules! lock_conformance_tests {
    (optional exclusive_only $make:expr) => {
        $crate::lock_conformance_tests!(@mode optional, exclusive_only, $make);
    };
    (optional $make:expr) => {
        $crate::lock_conformance_tests!(@mode optional, shared, $make);
    };
    (exclusive_only $make:expr) => {
        $crate::lock_conformance_tests!(@mode plain, exclusive_only, $make);
    };
    ($make:expr) => {
        $crate::lock_conformance_tests!(@mode plain, shared, $make);
    };
    (@mode $mode:ident, $shared:ident, $make:expr) => {
        $crate::__conformance_shared!($shared $mode, $make);
        $crate::__conformance_tests!($mode lock, $make;
            mutual_exclusion,
            timeout_names_holder,
            try_acquire_does_not_wait,
            fencing_tokens_increase,
            release_wakes_waiter,
            wait_notice_only_when_waiting,
            drop_frees_lock,
            listing_shows_holder,
            force_release_is_reported,
            hostile_names_stay_distinct,
            cancelled_wait_leaves_no_grant,
            timeout_is_the_whole_budget,
            change_feed_announces_grants_not_reads,
        );
    };
}

/// Generates one `#[tokio::test]` per store and manager check. The argument
/// is an expression evaluating to a future of `Arc<dyn IdempotencyStorage>`
/// (an empty store), evaluated afresh for every test. The corruption check
/// needs a backend-specific way to damage an entry; call
/// [`store::corrupt_entries_reported`] yourself. `optional` works as for
/// [`lock_conformance_tests!`].
#[macro_export]
macro_rules! store_conformance_tests {
    (optional $make:expr) => {
        $crate::store_conformance_tests!(@mode optional, $make);
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(@mode plain, $make);
    };
    (@mode $mode:ident, $make:expr) => {
        $crate::__conformance_tests!($mode store, $make;
            load_absent_is_none,
            create_then_load_round_trips,
            create_if_absent_race_has_one_winner,
            compare_and_swap_is_conditional,
            compare_and_swap_race_has_one_winner,
            compare_and_swap_owned_checks_the_owner,
            remove_is_conditional,
            remove_many_skips_changed_records,
            scan_filters,
            stats_and_cleanup,
            keys_are_exact,
            change_feed_announces_writes_not_reads,
        );
        $crate::__conformance_tests!($mode manager, $make;
            claim_race_has_one_winner,
            lifecycle_rules,
            stuck_claim_is_taken_over,
            exclusive_start_takes_over_at_once,
            dead_claimant_is_taken_over_at_once,
            only_the_claimant_finishes,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (plain $module:ident, $make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::run(async {
                    let backend = $make.await;
                    $crate::$module::$check(backend).await;
                });
            }
        )+
    };
    (optional $module:ident, $make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::run(async {
                    let Some(backend) = $make.await else { return };
                    $crate::$module::$check(backend).await;
                });
            }
        )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_shared {
    (shared $mode:ident, $make:expr) => {
        $crate::__conformance_tests!($mode lock, $make; shared_and_exclusive, semaphore_caps_holders, intention_modes_follow_the_matrix, hierarchy_follows_the_tree);
    };
    (exclusive_only $mode:ident, $make:expr) => {
        #[test]
        #[ignore = "the backend declares no shared mode (exclusive_only)"]
        fn shared_and_exclusive() {}
        #[test]
        #[ignore = "the backend declares no shared mode (exclusive_only), so no semaphores"]
        fn semaphore_caps_holders() {}
        #[test]
        #[ignore = "the backend declares no shared mode (exclusive_only), so no intention modes"]
        fn intention_modes_follow_the_matrix() {}
        #[test]
        #[ignore = "the backend declares no shared mode (exclusive_only), so no hierarchies"]
        fn hierarchy_follows_the_tree() {}
        $crate::__conformance_tests!($mode lock, $make; shared_mode_refused);
    };
}

/// Runs one check on a fresh multi-threaded runtime (4 workers, IO and
/// time), as the macros' tests do.
///
/// # Panics
/// When the runtime cannot be built, and whenever the check fails.
pub fn run(check: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance check")
        .block_on(check);
}

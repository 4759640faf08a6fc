//! ForgeFlow's protocols as models that [`stateright`] explores, every
//! interleaving within stated bounds:
//!
//! - [`claim::ClaimModel`]: the idempotency claim (conditional create,
//!   lease, renewal, takeover by compare-and-set on the revision,
//!   completion by compare-and-set on revision and owner) across three
//!   processes that crash and pause;
//! - [`cleanup::CleanupModel`]: cleanup's removal, archive and
//!   compare-and-delete of the branch against an agent that commits
//!   whenever it likes, and a create of the issue afterwards;
//! - [`redis_lock::LockModel`]: the Redis lock with its TTL, renewal that
//!   notices loss, same-host takeover of a dead holder, and expiry.
//!
//! Each model takes a [`Variant`]: [`Variant::Correct`] is what the code
//! does; the others seed a bug the checker must find (the tests in
//! `tests/models.rs` show it does): the old cleanup order, a takeover
//! without compare-and-set, a takeover that never happens.
//!
//! Liveness is checked as a bounded `always` property: once faults stop,
//! the work is done within `K` steps. (A model checker's `eventually`
//! passes over cyclic paths, such as a retry loop that never ends.) Time
//! passes only when no process can take a step, so a fair, fast
//! scheduler is assumed; pauses are faults.
//!
//! ```
//! use ff_models::{Variant, claim::ClaimModel};
//! use stateright::{Checker, Model};
//!
//! let checker = ClaimModel::new(Variant::Correct).checker().spawn_bfs().join();
//! checker.assert_properties();
//! assert!(checker.unique_state_count() > 1_000);
//! ```

#![forbid(unsafe_code)]

pub mod claim;
pub mod cleanup;
pub mod redis_lock;

/// Which protocol a model follows: the real one, or one with a seeded bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// What ForgeFlow does.
    Correct,
    /// Safety bug: a takeover (or completion) that does not compare and
    /// set, but writes over what it read earlier.
    TakeoverWithoutCas,
    /// Safety bug: cleanup's old order (archive the tip it read, remove
    /// the worktree, delete the branch whatever it points at now).
    OldCleanupOrder,
    /// Liveness bug: a claim whose owner died is never taken over.
    NoTakeover,
}

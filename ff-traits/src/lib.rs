//! # ff-traits: the contracts of ForgeFlow
//!
//! ForgeFlow lets many processes, and many servers, work on one git
//! repository at once without corrupting it or doing an operation twice.
//! This crate holds what every part agrees on, and nothing else, so that
//! plugin authors can depend on it alone:
//!
//! * [`LockProvider`]: named locks with timeouts that name the holder,
//!   shared, exclusive and intention modes, fencing tokens and loss
//!   notification; [`LockGuard`] is its RAII guard.
//! * [`IdempotencyStorage`]: durable records with conditional writes
//!   (create-if-absent, compare-and-swap on a [`Revision`], conditional
//!   remove) as the primitive.
//! * [`IdempotencyKey`]: canonical (RFC 8785) keys hashed with SHA-256.
//! * [`Error`]: one error type for both contracts, classified by meaning.
//! * [`MemoryLockProvider`] and [`MemoryStore`]: reference backends.
//!
//! What is built on the contracts lives in crates of its own, each usable
//! alone: `ff-idempotency` (the operation lifecycle over any store),
//! `ff-hierarchy` (lock trees over any provider), `ff-metrics` (one layer
//! that measures any backend), `ff-process` (whether a holder still runs)
//! and `ff-conformance` (the checks every backend runs against itself; a
//! plugin dev-depends on it). Backends live in their own crates
//! (`ff-lock-file`, `ff-lock-redis`, `ff-lock-postgres`, `ff-store-json`,
//! `ff-store-sqlite`, `ff-store-redis`, `ff-store-postgres`).

#![forbid(unsafe_code)]

mod changes;
mod error;
pub mod identity;
mod key;
mod lock;
mod lock_name;
pub mod memory;
mod record;
mod store;
mod sync;
pub mod text;
mod time;

pub use changes::{ChangeFeed, ChangeSignal};
pub use error::{BoxError, Error, ErrorKind, Result, fmt_duration};
pub use key::{
    IdempotencyKey, KEY_SCHEME_VERSION, MAX_KEY_DEPTH, MAX_OPERATION_LEN, RecordKey,
    canonical_json, hex_lower,
};
pub use lock::{
    FencingToken, ForceOutcome, ForceRelease, HeldLock, LockGuard, LockInfo, LockMode, LockOptions,
    LockProvider, LockStatus, LossNotifier, LossWatch, MAX_PERMITS, WaitNotice, loss_channel,
};
pub use lock_name::{LockName, MAX_LOCK_NAME_LEN};
pub use memory::{MemoryLockProvider, MemoryStore};
pub use record::{ClaimOwner, IdempotencyRecord, RecordStatus, RecordedError, Revision};
pub use store::{CorruptEntry, IdempotencyStorage, Scan, ScanFilter, StoreStats};
pub use sync::lock_unpoisoned;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

//! # ff-traits: the contracts of ForgeFlow
//!
//! ForgeFlow lets many processes, and many servers, work on one git
//! repository at once without corrupting it or doing an operation twice.
//! This crate holds what every part agrees on, and nothing else, so that
//! plugin authors can depend on it alone:
//!
//! * [`LockProvider`]: named locks with timeouts that name the holder,
//!   shared and exclusive modes, fencing tokens and loss notification;
//!   [`LockGuard`] is its RAII guard.
//! * [`IdempotencyStorage`]: durable records with conditional writes
//!   (create-if-absent, compare-and-swap on a [`Revision`], conditional
//!   remove) as the primitive.
//! * [`IdempotencyKey`]: canonical (RFC 8785) keys hashed with SHA-256.
//! * [`IdempotencyManager`]: the operation lifecycle over any store, with
//!   claims, leases, retries with exponential backoff, expiry and rollback.
//! * [`MemoryLockProvider`] and [`MemoryStore`]: reference backends.
//! * `conformance` (feature): checks that any backend runs against itself.
//!
//! Backends live in their own crates (`ff-lock-file`, `ff-lock-redis`,
//! `ff-store-json`, `ff-store-sqlite`).

#![forbid(unsafe_code)]

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod hierarchy;
mod key;
mod lock;
mod lock_name;
mod manager;
pub mod memory;
pub mod metrics;
pub mod process;
mod record;
mod store;
mod sync;
pub mod text;
mod time;

pub use error::{BoxError, Error, ErrorKind, Result, fmt_duration};
pub use key::{
    IdempotencyKey, KEY_SCHEME_VERSION, MAX_KEY_DEPTH, MAX_OPERATION_LEN, RecordKey,
    canonical_json, hex_lower,
};
pub use lock::{
    FencingToken, ForceOutcome, ForceRelease, HeldLock, LockGuard, LockInfo, LockMode, LockOptions,
    LockProvider, LockStatus, LossNotifier, LossWatch, MAX_PERMITS, loss_channel,
};
pub use lock_name::{LockName, MAX_LOCK_NAME_LEN};
pub use manager::{
    Attempt, Claim, Decision, ExecuteError, Execution, IdempotencyManager, IdempotencyStats,
    ManagerConfig, OperationFailure, Reason, RollbackError, Start, backoff_after, decide,
};
pub use memory::{MemoryLockProvider, MemoryStore};
pub use process::{Liveness, hostname, pid, unique_id};
pub use record::{ClaimOwner, IdempotencyRecord, RecordStatus, RecordedError, Revision};
pub use store::{CorruptEntry, IdempotencyStorage, Scan, ScanFilter, StoreStats};
pub use sync::lock_unpoisoned;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

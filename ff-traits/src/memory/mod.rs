//! In-memory reference backends: an executable specification of the
//! contracts and test doubles for the logic above them.
//!
//! They share state between clones within one process only; they are not
//! durable and not for production.

mod lock;
mod store;

pub use lock::MemoryLockProvider;
pub use store::MemoryStore;

// Every critical section in these backends leaves the state consistent
// before anything can panic, so poisoning is ignored.
use crate::sync::lock_unpoisoned;

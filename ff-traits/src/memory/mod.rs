//! In-memory reference backends: an executable specification of the
//! contracts and test doubles for the logic above them.
//!
//! They share state between clones within one process only; they are not
//! durable and not for production.

mod lock;
mod store;

pub use lock::MemoryLockProvider;
pub use store::MemoryStore;

/// Locks a std mutex, ignoring poisoning: every critical section below
/// leaves the state consistent before anything can panic.
fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

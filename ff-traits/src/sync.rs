//! Small synchronisation helpers the backends share.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a std mutex, ignoring poisoning.
///
/// For state whose every critical section leaves it consistent before
/// anything in it can panic (a map insert, a counter): a panic elsewhere
/// while the lock was held then says nothing about the data, and
/// propagating the poison would turn one failed task into a dead backend.
///
/// ```
/// let m = std::sync::Mutex::new(1);
/// *ff_traits::lock_unpoisoned(&m) += 1;
/// assert_eq!(*ff_traits::lock_unpoisoned(&m), 2);
/// ```
pub fn lock_unpoisoned<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

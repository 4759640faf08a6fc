//! The integration tests of `ff-lock-postgres`, in one binary: one link
//! for all of them, each file a module.

mod faults;
mod postgres_lock;
mod tls;

//! The integration tests of `ff-lock-redis`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-lock-redis --test it -- MODULE::`).

mod cluster;
mod partition;
mod redis_lock;
mod sentinel;
mod tls;

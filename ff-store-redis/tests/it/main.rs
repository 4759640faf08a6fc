//! The integration tests of `ff-store-redis`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-store-redis --test it -- MODULE::`).

mod cluster;
mod paused_holder;
mod redis_store;
mod sentinel;
mod tls;

//! # ff-lock-redis
//!
//! Distributed lock on Redis: `SET NX PX`, Lua compare-and-delete and compare-and-pexpire, a renewal watchdog, pub/sub wake-ups, fencing tokens from `INCR`.
//!
//! **Not implemented yet.** It will implement `ff_traits::LockProvider` (tracked as the Redis backends issue). This crate compiles so that the workspace
//! layout is in place; it exports nothing, so nothing can mistake it for a
//! working backend.

#![forbid(unsafe_code)]

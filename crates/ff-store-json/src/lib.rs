//! # ff-store-json
//!
//! Durable idempotency store with one pretty-printed JSON file per record, written atomically (temp file, fsync, rename, fsync of the directory).
//!
//! **Not implemented yet.** It will implement `ff_traits::IdempotencyStorage` (tracked as the stores issue). This crate compiles so that the workspace
//! layout is in place; it exports nothing, so nothing can mistake it for a
//! working backend.

#![forbid(unsafe_code)]

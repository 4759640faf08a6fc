//! # ff-store-sqlite
//!
//! Durable idempotency store in one SQLite database (WAL, versioned schema, conditional writes in one transaction, SQL aggregates for stats).
//!
//! **Not implemented yet.** It will implement `ff_traits::IdempotencyStorage` (tracked as the stores issue). This crate compiles so that the workspace
//! layout is in place; it exports nothing, so nothing can mistake it for a
//! working backend.

#![forbid(unsafe_code)]

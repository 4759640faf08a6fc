//! # ff-worktree
//!
//! `WorktreeManager`: per-issue git worktrees, generic over a `LockProvider` and an `IdempotencyStorage`, safe under any concurrency and crash.
//!
//! **Not implemented yet.** It is tracked as the ff-worktree issue. This crate compiles so that the workspace
//! layout is in place; it exports nothing, so nothing can mistake it for a
//! working backend.

#![forbid(unsafe_code)]

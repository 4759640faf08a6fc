//! # ff-lock-file
//!
//! Cross-process file lock for one machine: kernel locks (flock / LockFileEx) by default, lease mode for network filesystems, fencing tokens, holder metadata.
//!
//! **Not implemented yet.** It will implement `ff_traits::LockProvider` (tracked as the ff-lock-file issue). This crate compiles so that the workspace
//! layout is in place; it exports nothing, so nothing can mistake it for a
//! working backend.

#![forbid(unsafe_code)]

//! The feed against the real kernel: what wakes it and what must not.

#![allow(missing_docs, clippy::unwrap_used)]

mod dir_feed;

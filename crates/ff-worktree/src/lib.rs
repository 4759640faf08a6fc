//! # ff-worktree
//!
//! Per-issue git worktrees for many processes at once, without corrupting
//! git state or doing an operation twice.
//!
//! **In progress.** What is here and works: [`git`], the layer every git
//! call goes through (argument vectors, timeouts, `-z` porcelain parsing,
//! repository facts, version check), and [`IssueId`], the validation every
//! issue id passes before any side effect. `WorktreeManager`, generic over a
//! [`LockProvider`](ff_traits::LockProvider) and an
//! [`IdempotencyStorage`](ff_traits::IdempotencyStorage), is not written
//! yet and is not exported; `DESIGN.md` beside this crate records its planned
//! shape.

#![forbid(unsafe_code)]

pub mod git;
mod issue;

pub use issue::{IssueId, MAX_ISSUE_ID_LEN};

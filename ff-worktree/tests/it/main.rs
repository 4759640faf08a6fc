//! The integration tests of `ff-worktree`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-worktree --test it -- MODULE::`).

mod admin;
mod chaos;
mod common;
mod corrupt_state;
mod crash_points;
mod deletion;
mod git_layer;
mod hooks;
mod hostile;
mod include;
mod manager;
mod merged;
mod multi_server;
mod names;
mod never_stuck;
mod no_loss;
mod one_repository;
mod pool;
mod processes;
mod records_lost;
mod recovery;
mod sparse;
mod sync;

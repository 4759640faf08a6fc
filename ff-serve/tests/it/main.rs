//! The integration tests of `ff-serve`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-serve --test it -- MODULE::`).

mod alert_rules;
mod change_feeds;
mod documented_metrics;
mod library_metrics;

//! The integration tests of `ff-lock-file`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-lock-file --test it -- MODULE::`).

mod conformance;
mod cross_process;
mod status_probes;
mod wait_budget;

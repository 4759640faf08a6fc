//! The integration tests of `ff-conformance`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-conformance --test it -- MODULE::`).

mod conformance_catches_defects;
mod conformance_instrumented;
mod conformance_memory;
mod wait_budget;

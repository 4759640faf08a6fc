//! The integration tests of `ff-example-plugin`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-example-plugin --test it -- MODULE::`).

mod conformance;

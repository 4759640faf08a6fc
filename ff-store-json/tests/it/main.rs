//! The integration tests of `ff-store-json`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-store-json --test it -- MODULE::`).

mod json_store;

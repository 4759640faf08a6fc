//! The integration tests of `ff-store-sqlite`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-store-sqlite --test it -- MODULE::`).

mod sqlite_store;

//! The integration tests of `ff-traits`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-traits --test it -- MODULE::`).

mod keys;

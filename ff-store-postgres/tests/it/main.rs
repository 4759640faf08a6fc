//! The integration tests of `ff-store-postgres`, in one binary: one link
//! for all of them, each file a module.

mod postgres_store;

//! The integration tests of `ff-model`, in one binary.

mod generated_schemas;

//! The integration tests of `ff-model`, in one binary.

mod alert_rules;
mod generated_schemas;

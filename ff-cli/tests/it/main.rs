//! The integration tests of `ff-cli`, in one binary: one link for all
//! of them, each file a module (`cargo test -p ff-cli --test it -- MODULE::`).

mod agent;
mod cli;
mod common;
mod crash_once;
mod dashboard;
mod deletion;
mod docs;
mod hooks;
mod hostile;
mod legacy_names;
mod library;
mod liveness;
mod mcp;
mod partition;
mod pool;
mod processes;
mod protection;
mod redis_deployments;
mod schemas;
mod serve;
mod sparse;
mod tls;
mod trust;

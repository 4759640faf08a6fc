//! The JSON Schemas of the model, generated from its types: committed in
//! `ff-cli/schemas/generated/`, where a test fails when the types and the
//! committed files differ (`FF_BLESS=1` writes them again). The
//! hand-written schemas of `ff-cli/schemas/` stay as fixtures: the tests
//! validate every output against both, and `scripts/schema-diff.py` lists
//! what differs between them.

use schemars::JsonSchema;
use serde_json::Value;

use crate::{cli, serve};

/// Where the generated schemas say they live (their `$id`s).
pub const SCHEMA_BASE: &str = "https://schemas.forgeflow.invalid/generated/";

/// Every generated schema, by the name of the hand-written schema (or
/// `common.schema.json` definition) it stands beside: `locks` is
/// `generated/locks.schema.json`, beside `locks.schema.json`.
#[must_use]
pub fn generated() -> Vec<(&'static str, Value)> {
    vec![
        (
            "agent_install",
            of::<cli::AgentInstallView>("agent_install"),
        ),
        ("cleanup", of::<cli::CleanupView>("cleanup")),
        ("create", of::<cli::CreatedView>("create")),
        ("doctor", of::<cli::DoctorView>("doctor")),
        ("error", of::<cli::ErrorView>("error")),
        ("exec", of::<cli::ExecView>("exec")),
        ("gc", of::<cli::GcView>("gc")),
        ("get", of::<cli::WorktreeView>("get")),
        ("holder", of::<cli::HolderView>("holder")),
        ("hooks", of::<cli::HooksView>("hooks")),
        ("list", of::<Vec<cli::WorktreeView>>("list")),
        ("lock", of::<cli::LockRunView>("lock")),
        ("locks", of::<Vec<cli::LockEntryView>>("locks")),
        ("once", of::<cli::OnceOutput>("once")),
        ("path", of::<cli::PathView>("path")),
        ("pool", of::<cli::PoolView>("pool")),
        ("prune", of::<Vec<cli::PrunedView>>("prune")),
        ("recover", of::<cli::RecoverView>("recover")),
        ("serve", of::<cli::ListeningView>("serve")),
        ("serve_alert", of::<serve::Alert>("serve_alert")),
        ("serve_alerts", of::<serve::AlertsView>("serve_alerts")),
        (
            "serve_alert_notice",
            of::<serve::AlertNotice>("serve_alert_notice"),
        ),
        ("serve_event", of::<serve::Event>("serve_event")),
        ("serve_hello", of::<serve::HelloView>("serve_hello")),
        ("serve_holder", of::<serve::HolderView>("serve_holder")),
        ("serve_lagged", of::<serve::LaggedView>("serve_lagged")),
        ("serve_lock", of::<serve::LockView>("serve_lock")),
        ("serve_stats", of::<serve::ServerStats>("serve_stats")),
        (
            "serve_operation",
            of::<serve::OperationView>("serve_operation"),
        ),
        (
            "serve_worktree",
            of::<serve::WorktreeView>("serve_worktree"),
        ),
        ("stats", of::<cli::StatsView>("stats")),
        ("status", of::<cli::AgentStatusOfView>("status")),
        ("switch", of::<cli::SwitchView>("switch")),
        ("sync", of::<cli::SyncView>("sync")),
        ("top", of::<serve::Overview>("top")),
        ("trust", of::<cli::TrustView>("trust")),
        ("unlock", of::<Vec<cli::UnlockView>>("unlock")),
        ("worktree", of::<cli::WorktreeView>("worktree")),
    ]
}

/// `T`'s schema as output: what its serialization gives (an `Option`
/// field without `skip_serializing_if` is always there, `null` when
/// `None`), draft 2020-12.
fn of<T: JsonSchema>(name: &str) -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".to_owned(),
            Value::String(format!("{SCHEMA_BASE}{name}.schema.json")),
        );
    }
    schema
}

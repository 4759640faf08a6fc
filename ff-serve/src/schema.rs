//! The JSON Schemas of the shapes `ff serve` gives, generated from their
//! types: committed in `ff-cli/schemas/generated/`, where a test fails when
//! the types and the committed files differ. The hand-written `serve_*`
//! definitions of `ff-cli/schemas/common.schema.json` stay as fixtures:
//! the tests validate every output against both, and
//! `scripts/schema-diff.py` lists what differs between them.

use schemars::JsonSchema;
use serde_json::Value;

use crate::view::{HolderView, LockView, OperationView, WorktreeView};

/// Where the generated schemas say they live (their `$id`s).
pub const SCHEMA_BASE: &str = "https://schemas.forgeflow.invalid/generated/";

/// Every generated schema, by the name of the hand-written definition it
/// stands beside (`serve_lock`: `generated/serve_lock.schema.json`).
#[must_use]
pub fn generated() -> Vec<(&'static str, Value)> {
    vec![
        ("serve_holder", of::<HolderView>("serve_holder")),
        ("serve_lock", of::<LockView>("serve_lock")),
        ("serve_operation", of::<OperationView>("serve_operation")),
        ("serve_worktree", of::<WorktreeView>("serve_worktree")),
    ]
}

/// `T`'s schema as output: what its serialization gives (an `Option`
/// field is always there, `null` when `None`), draft 2020-12.
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

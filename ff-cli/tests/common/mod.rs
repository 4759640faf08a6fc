//! What the `ff` binary's tests share: running it, reading its answers.

#![allow(dead_code)] // each test file uses part of it

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `ff` in `dir` with none of the `FF_*` settings of the caller.
pub(crate) fn ff(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(args)
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_REPO")
        .env_remove("FF_BASE_PATH")
        .env_remove("FF_STATE_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ff")
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub(crate) fn stdout_json(o: &Output) -> Value {
    assert_eq!(
        code(o),
        0,
        "ff failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

pub(crate) fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

/// The error JSON on stderr: its kind.
pub(crate) fn error_kind(o: &Output) -> String {
    let v: Value = serde_json::from_slice(&o.stderr)
        .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    v["error"]["kind"].as_str().expect("kind").to_owned()
}

/// The error JSON on stderr: the `error` object, with its facts.
pub(crate) fn error_json(o: &Output) -> Value {
    let v: Value = serde_json::from_slice(&o.stderr)
        .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&o.stderr)));
    v["error"].clone()
}

//! Every command's `--json` output validates against the JSON Schema the
//! repository ships for it (`schemas/<command>.schema.json`); `cli.rs` and
//! `hostile.rs` check create, get, list, sync, cleanup, stats, recover,
//! gc, locks and every error they provoke the same way. And the schemas
//! are strict enough to fail: a wrong shape is refused.

use crate::common::{assert_valid, code, ff, stdout_json, violations};
use ff_testkit::git::TestRepo;
use serde_json::json;

#[test]
fn lock_once_and_unlock_validate() {
    let repo = TestRepo::new();
    let dir = repo.path();

    let locked = ff(dir, &["lock", "build", "--json", "--", "true"]);
    assert_eq!(code(&locked), 0);
    assert_valid("lock", &stdout_json(&locked));

    let first = stdout_json(&ff(dir, &["once", "--key", "k", "--json", "--", "true"]));
    assert_valid("once", &first);
    assert_eq!(first["ran"], true);
    let again = stdout_json(&ff(dir, &["once", "--key", "k", "--json", "--", "true"]));
    assert_valid("once", &again);
    assert_eq!(again["ran"], false);

    let unlocked = stdout_json(&ff(dir, &["unlock", "build", "--json"]));
    assert_valid("unlock", &unlocked);
    let all = stdout_json(&ff(dir, &["unlock", "--all", "--json"]));
    assert_valid("unlock", &all);
    assert!(!all.as_array().expect("array").is_empty());
}

#[test]
fn a_missing_worktree_and_a_forced_cleanup_validate() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let created = stdout_json(&ff(dir, &["create", "5", "--json"]));
    let path = std::path::PathBuf::from(created["path"].as_str().expect("path"));
    std::fs::write(path.join("draft.txt"), "unsaved\n").expect("draft");
    let forced = stdout_json(&ff(dir, &["cleanup", "5", "--force", "--json"]));
    assert_valid("cleanup", &forced);
    assert!(forced["archived_at"].is_string(), "{forced}");

    let created = stdout_json(&ff(dir, &["create", "6", "--json"]));
    std::fs::remove_dir_all(created["path"].as_str().expect("path")).expect("rm");
    let listed = stdout_json(&ff(dir, &["list", "--json"]));
    assert_valid("list", &listed);
    let got = stdout_json(&ff(dir, &["get", "6", "--json"]));
    assert_valid("get", &got);
    assert_eq!(got["status"], "missing");
}

#[test]
fn the_schemas_refuse_wrong_shapes() {
    let worktree = json!({
        "id": "wt-1-abc-0f0f", "issue": "1", "path": "/r/.ff-worktrees/wt-1-abc-0f0f",
        "branch": "ff-1-abc-0f0f", "base": "main", "status": "active",
        "created_at": "2026-11-27T11:00:00.000Z",
    });
    assert!(violations("get", &worktree).is_empty());
    let mut extra = worktree.clone();
    extra["surprise"] = json!(1);
    let mut missing = worktree.clone();
    missing.as_object_mut().expect("object").remove("branch");
    let mut status = worktree.clone();
    status["status"] = json!("gone");
    for (what, bad) in [
        ("an extra key", extra),
        ("no branch", missing),
        ("an unknown status", status),
    ] {
        assert!(!violations("get", &bad).is_empty(), "get accepted {what}");
    }
    assert!(
        !violations("create", &worktree).is_empty(),
        "create must carry `reused`"
    );
    for (command, bad) in [
        ("cleanup", json!({"removed": true})),
        ("gc", json!({"removed": -1})),
        ("once", json!({"ran": false, "exit_code": 0})),
        ("stats", json!({"total": 1})),
        ("error", json!({"error": {"kind": "x"}})),
        ("error", json!({"kind": "x", "message": "flat"})),
        ("locks", json!([{"name": "x", "held": true}])),
        (
            "recover",
            json!({"dry_run": false, "repairs": [{"kind": "magic", "subject": "", "detail": ""}]}),
        ),
        ("sync", json!({"id": "wt-1"})),
        ("unlock", json!([{"name": "x", "outcome": "vanished"}])),
        ("lock", json!({"lock": "x"})),
        ("list", json!({})),
    ] {
        assert!(
            !violations(command, &bad).is_empty(),
            "schemas/{command}.schema.json accepted {bad}"
        );
    }
}

/// The schemas generated from ff serve's types check what the hand-written
/// ones check: a good lock validates against both, and an unknown field
/// or a missing one is refused by the generated schema as well.
#[test]
fn generated_serve_schemas_refuse_wrong_shapes() {
    let holder = json!({
        "acquired_at": "2026-12-02T10:00:00.000Z", "age_ms": 5, "fencing_token": 3,
        "hostname": "h", "id": "g1", "issue": "7", "liveness": "alive",
        "mode": "exclusive", "operation": "createWorktree", "pid": 42
    });
    let lock =
        json!({"held": true, "holders": [holder], "mode": "exclusive", "name": "ff-x/issue-7"});
    assert_eq!(violations("common#serve_lock", &lock), Vec::<String>::new());

    let mut extra = lock.clone();
    extra["holders"][0]["colour"] = json!("red");
    let found = violations("common#serve_lock", &extra);
    assert!(
        found.iter().any(|v| v.starts_with("generated serve_lock")),
        "{found:?}"
    );
    let mut missing = lock;
    missing.as_object_mut().expect("object").remove("held");
    let found = violations("common#serve_lock", &missing);
    assert!(
        found.iter().any(|v| v.starts_with("generated serve_lock")),
        "{found:?}"
    );
}

/// Every command's schema is in docs/cli.md's table of JSON shapes, so a
/// reader finds each one (a schema added without a row fails here).
#[test]
fn every_schema_is_in_the_docs_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/cli.md")).expect("docs/cli.md");
    let table = doc
        .split("**JSON shapes.**")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").find(|block| block.starts_with('|')))
        .expect("docs/cli.md's JSON shapes table");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("schemas")).expect("schemas") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        // Shared definitions, not a command's output.
        if !name.ends_with(".schema.json") || name == "common.schema.json" {
            continue;
        }
        if !table.contains(&format!("(../ff-cli/schemas/{name})")) {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "schemas without a row in docs/cli.md's JSON shapes table: {missing:?}"
    );
}

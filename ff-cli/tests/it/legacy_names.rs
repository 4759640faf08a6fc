//! What the release before readable names made (worktrees
//! `wt-<issue>-<time>-<random>` on branches `ff-<issue>-<time>-<random>`,
//! their records and lock names) keeps working: listed, found, reused,
//! synced, cleaned up and rebuilt by `recover` after the records are lost;
//! the issue's next worktree gets the new names. From a fixture that
//! release's binary made (`scripts/make-legacy-fixture.sh`,
//! `tests/fixtures/README.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{code, ff_command, stdout_json};

/// The fixture unpacked into a fresh directory, its placeholders replaced
/// by this machine's paths and host name; returns the directory (holding
/// `repo/` and `listed-by-old.json`).
fn unpack(dir: &Path) -> PathBuf {
    let root = std::fs::canonicalize(dir).expect("root");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-names.tar.gz");
    let unpacked = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar");
    assert!(unpacked.success());
    let host = ff_worktree::ff_traits::identity::hostname();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("type").is_dir() {
                stack.push(path);
                continue;
            }
            // Text files only (git's objects are compressed).
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if text.contains("@ROOT@") || text.contains("@HOST@") {
                let text = text
                    .replace("@ROOT@", &root.to_string_lossy())
                    .replace("@HOST@", host);
                std::fs::write(&path, text).expect("write back");
            }
        }
    }
    root
}

fn ff_json(repo: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--store", "json"];
    all.extend_from_slice(args);
    let out = ff_command(repo, &all).output().expect("run ff");
    let value = if out.stdout.is_empty() {
        Value::Null
    } else {
        stdout_json(&out)
    };
    (code(&out), value)
}

fn branches(repo: &Path) -> Vec<String> {
    ff_testkit::git::git_in(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname:lstrip=2)",
            "refs/heads/",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn worktrees_of_the_release_before_readable_names_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = unpack(dir.path());
    let repo = root.join("repo");
    let old: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("listed-by-old.json")).expect("old listing"),
    )
    .expect("json");
    let old = old.as_array().expect("list").clone();
    assert_eq!(old.len(), 3);
    let of = |issue: &str| {
        old.iter()
            .find(|w| w["issue"] == issue)
            .cloned()
            .expect("issue in the old listing")
    };
    for w in &old {
        assert!(w["id"].as_str().is_some_and(|id| id.starts_with("wt-")));
    }

    // Listed and found as that release left them.
    let (rc, listed) = ff_json(&repo, &["list", "--json"]);
    assert_eq!(rc, 0, "{listed}");
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .expect("list")
            .iter()
            .map(|w| w["id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&listed), ids(&Value::Array(old.clone())));
    for key in ["id", "path", "branch", "slot"] {
        let (_, got) = ff_json(&repo, &["get", "2", "--json"]);
        assert_eq!(got[key], of("2")[key], "{key}: {got}");
    }
    // Its worktree id is a target too.
    let id2 = of("2")["id"].as_str().expect("id").to_owned();
    let (rc, got) = ff_json(&repo, &["get", &id2, "--json"]);
    assert_eq!((rc, &got["issue"]), (0, &Value::from("2")), "{got}");
    // A create reuses it; recover finds nothing to do.
    let (rc, again) = ff_json(&repo, &["create", "1", "--json"]);
    assert_eq!(rc, 0, "{again}");
    assert_eq!(again["reused"], true);
    assert_eq!(again["id"], of("1")["id"]);
    let (rc, dry) = ff_json(&repo, &["recover", "--dry-run", "--json"]);
    assert_eq!(rc, 0, "{dry}");
    assert_eq!(dry["repairs"], Value::Array(Vec::new()), "{dry}");
    let (rc, synced) = ff_json(&repo, &["sync", "2", "--json"]);
    assert_eq!(rc, 0, "{synced}");

    // Cleaned up like any other: clean goes, work is refused without
    // force.
    let (rc, _) = ff_json(&repo, &["cleanup", "1", "--json"]);
    assert_eq!(rc, 0);
    let branch1 = of("1")["branch"].as_str().expect("branch").to_owned();
    assert!(!branches(&repo).contains(&branch1));
    assert!(!Path::new(of("1")["path"].as_str().expect("path")).exists());
    for issue in ["2", "3"] {
        let (rc, refused) = ff_json(&repo, &["cleanup", issue, "--json"]);
        assert_eq!(rc, 77, "issue {issue}: {refused}");
    }

    // The issue's next worktree has the new names.
    let (rc, new) = ff_json(&repo, &["create", "1", "--json"]);
    assert_eq!(rc, 0, "{new}");
    assert_eq!((&new["id"], &new["branch"]), (&"1".into(), &"ff/1".into()));

    // Records lost: recover rebuilds them all, old names and new.
    std::fs::remove_dir_all(repo.join(".git/ff/records")).expect("lose the records");
    let (rc, recovered) = ff_json(&repo, &["recover", "--json"]);
    assert_eq!(rc, 0, "{recovered}");
    let (_, listed) = ff_json(&repo, &["list", "--json"]);
    let mut want = vec![
        "1".to_owned(),
        id2.clone(),
        of("3")["id"].as_str().expect("id").to_owned(),
    ];
    want.sort();
    assert_eq!(ids(&listed), want, "{recovered}");
    // And the work of issue 2 is kept when it is forced away.
    let (rc, forced) = ff_json(&repo, &["cleanup", "2", "--force", "--json"]);
    assert_eq!(rc, 0, "{forced}");
    let archive = forced["archived_at"]
        .as_str()
        .expect("archived_at")
        .to_owned();
    let log = ff_testkit::git::git_in(&repo, &["log", "--format=%s", &archive]);
    assert!(log.contains("work of issue 2"), "{log}");
    let branch2 = of("2")["branch"].as_str().expect("branch").to_owned();
    assert!(!branches(&repo).contains(&branch2));
}

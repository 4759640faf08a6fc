//! The metric names stay honest: every name the code defines is in
//! `METRICS.md`'s tables, every name the tables give is defined in code,
//! and the example Prometheus rules use only documented names and pass
//! `promtool check rules` and `promtool test rules` (where promtool is
//! installed; CI installs it and sets `FF_REQUIRE_PROMTOOL=1`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every `ff_…` word in `text` (a metric name, or a prefix of one).
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("ff_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_owned());
        }
        i = end.max(start + 3);
    }
    out
}

/// The names `METRICS.md` documents: the first column of its tables.
fn documented() -> BTreeSet<String> {
    read("METRICS.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// The names the code defines: string literals naming `ff_…` metrics in
/// the files that record or render them.
fn defined() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in [
        "ff-metrics/src/lib.rs",
        "ff-worktree/src/metrics.rs",
        "ff-serve/src/prom.rs",
        "ff-serve/src/alerts.rs",
    ] {
        let text = read(file);
        for piece in text.split('"').skip(1).step_by(2) {
            if piece.starts_with("ff_")
                && piece
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            {
                out.insert(piece.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_table_and_the_code_name_the_same_metrics() {
    let documented = documented();
    let defined = defined();
    let undocumented: Vec<_> = defined.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&defined).collect();
    assert!(
        undocumented.is_empty(),
        "not in METRICS.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "in METRICS.md but not in the code: {unknown:?}"
    );
    for name in &documented {
        let counter = read("METRICS.md")
            .lines()
            .any(|l| l.starts_with(&format!("| `{name}` | counter")));
        assert_eq!(
            counter,
            name.ends_with("_total"),
            "{name}: counters and only counters end in _total"
        );
    }
}

#[test]
fn the_example_rules_use_documented_metrics_and_pass_promtool() {
    let rules = read("examples/prometheus/forgeflow-alerts.yml");
    let documented = documented();
    let used: BTreeSet<String> = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(names)
        .collect();
    assert!(used.len() >= 6, "{used:?}");
    for name in &used {
        assert!(
            documented.contains(name),
            "the rules use {name}, which METRICS.md does not document"
        );
    }
    let dir = root().join("examples/prometheus");
    let promtool = Command::new("promtool").arg("--version").output();
    if promtool.is_err() {
        ff_testkit::skip(
            "FF_REQUIRE_PROMTOOL",
            "promtool is not installed; the rules were checked for names only",
        );
        return;
    }
    for args in [
        ["check", "rules", "forgeflow-alerts.yml"],
        ["test", "rules", "forgeflow-alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

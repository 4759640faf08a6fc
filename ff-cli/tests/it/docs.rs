//! The documentation is true: every shell block in README.md and docs/
//! runs (unless marked `no-run`), and the README stays short enough to read
//! in five minutes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ff_testkit::git::TestRepo;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every file in docs/.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Each fenced shell block: (where, info string, its text).
fn shell_blocks(doc: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(doc).expect("a document");
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let lang = info.split_whitespace().next().unwrap_or_default();
        if matches!(lang, "sh" | "bash" | "shell" | "console") {
            blocks.push((
                format!("{}:{}", doc.display(), n + 1),
                info.to_owned(),
                body.join("\n"),
            ));
        }
    }
    blocks
}

/// Every shell block not marked `no-run` runs in a fresh repository with
/// `ff` on the PATH, each command checked (`set -e`).
#[test]
fn every_shell_block_runs_or_is_marked_no_run() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ff"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for doc in documents() {
        for (at, info, body) in shell_blocks(&doc) {
            if info.split_whitespace().any(|w| w == "no-run") {
                continue;
            }
            let repo = TestRepo::new();
            let out = Command::new("bash")
                .args(["-e", "-o", "pipefail", "-c", &body])
                .current_dir(repo.path())
                .env("PATH", &path)
                .env_remove("FF_LOCK")
                .env_remove("FF_STORE")
                .env_remove("FF_STATE_DIR")
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "{at}: the block failed ({:?}):\n{body}\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 3, "only {ran} blocks ran");
}

/// Words, as `wc -w` counts them (runs of non-whitespace).
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The README a newcomer reads in five minutes: at most 1,500 words, its
/// trust section at most 150 and its agents section at most 250.
#[test]
fn the_readme_is_short() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(
        words(&text) <= 1_500,
        "README.md has {} words",
        words(&text)
    );
    let section = |heading: &str| -> &str {
        text.split(&format!("\n## {heading}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_else(|| panic!("no section {heading}"))
    };
    assert!(
        words(section("Trust")) <= 150,
        "Trust: {}",
        words(section("Trust"))
    );
    assert!(
        words(section("Agents")) <= 250,
        "Agents: {}",
        words(section("Agents"))
    );
}

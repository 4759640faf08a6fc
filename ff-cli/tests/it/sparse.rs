//! `ff create --sparse DIR...`, `--no-checkout`, `--no-sparse` and
//! `sparse = [...]` in ff.toml; `get`, `list` and `create` show what a
//! worktree checks out; bad directories are refused before anything is
//! made (2 for a malformed one, 65 for one the base lacks).

use std::path::Path;

use ff_testkit::git::{TestRepo, git_in};

use crate::common::{code, ff_in, stdout_json};

fn repo_with_dirs() -> (TestRepo, std::path::PathBuf) {
    let repo = TestRepo::new();
    for (path, content) in [("src/main.rs", "fn main() {}\n"), ("docs/a.md", "a\n")] {
        let file = repo.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, content).expect("write");
        let _ = git_in(repo.path(), &["add", "--", path]);
    }
    let _ = git_in(repo.path(), &["commit", "-q", "-m", "dirs"]);
    let config = repo.scratch("userconfig");
    (repo, config)
}

fn json(dir: &Path, config: &Path, args: &[&str]) -> serde_json::Value {
    let out = ff_in(dir, config, &[], args);
    assert_eq!(
        code(&out),
        0,
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)
}

#[test]
fn sparse_creates_from_flags_and_ff_toml_show_what_they_check_out() {
    let (repo, config) = repo_with_dirs();
    let dir = repo.path();
    let made = json(dir, &config, &["create", "1", "--sparse", "src/", "--json"]);
    assert_eq!(
        made["sparse"],
        serde_json::json!({"cone": true, "paths": ["src"]})
    );
    let path = Path::new(made["path"].as_str().expect("path")).to_path_buf();
    assert!(path.join("src/main.rs").is_file());
    assert!(!path.join("docs").exists());
    assert_eq!(
        json(dir, &config, &["get", "1", "--json"])["sparse"],
        made["sparse"]
    );
    let listed = json(dir, &config, &["list", "--json"]);
    assert_eq!(listed[0]["sparse"], made["sparse"], "{listed}");
    let text = ff_in(dir, &config, &[], &["get", "1"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("sparse  src (and the top-level files)"),
        "{text}"
    );

    let bare = json(dir, &config, &["create", "2", "--no-checkout", "--json"]);
    assert_eq!(
        bare["sparse"],
        serde_json::json!({"cone": true, "paths": []})
    );

    // ff.toml's set applies to every create; --no-sparse overrides it.
    std::fs::write(dir.join("ff.toml"), "sparse = [\"docs\"]\n").expect("ff.toml");
    let from_file = json(dir, &config, &["create", "3", "--json"]);
    assert_eq!(from_file["sparse"]["paths"], serde_json::json!(["docs"]));
    let full = json(dir, &config, &["create", "4", "--no-sparse", "--json"]);
    assert!(full.get("sparse").is_none(), "{full}");
    let full_path = Path::new(full["path"].as_str().expect("path")).to_path_buf();
    assert!(full_path.join("src/main.rs").is_file() && full_path.join("docs/a.md").is_file());

    // An untouched sparse worktree is clean: an unforced cleanup goes.
    let out = ff_in(dir, &config, &[], &["cleanup", "1"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!path.exists());
}

#[test]
fn bad_sparse_directories_are_refused_and_nothing_is_made() {
    let (repo, config) = repo_with_dirs();
    let dir = repo.path();
    for bad in ["../up", "/etc", "a//b", ".git"] {
        let out = ff_in(dir, &config, &[], &["create", "1", "--sparse", bad]);
        assert_eq!(
            code(&out),
            2,
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = ff_in(
        dir,
        &config,
        &[],
        &["create", "1", "--sparse", "src", "nowhere"],
    );
    assert_eq!(code(&out), 65, "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("nowhere is not a directory"), "{said}");
    std::fs::write(dir.join("ff.toml"), "sparse = [\"../up\"]\n").expect("ff.toml");
    let out = ff_in(dir, &config, &[], &["create", "1"]);
    assert_eq!(code(&out), 65, "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("ff.toml: sparse"), "{said}");
    assert!(!dir.join(".ff-worktrees").join("1").exists());
    let listed = git_in(dir, &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
}

//! `.worktreeinclude`: ignored local files copied into new worktrees,
//! tracked files left as the branch has them, symlinks kept inside the
//! repository, bad patterns refused before anything is made; `symlink`
//! paths linked instead of copied.

#![cfg(unix)] // hooks run with sh; symlinks and modes are Unix ones

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ff_testkit::git::{TestRepo, commit_file};
use ff_traits::ErrorKind;
use ff_worktree::WorktreeConfig;
use ff_worktree::include::{INCLUDE_FILE, Included};

fn write(root: &Path, name: &str, content: &str) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, content).expect("write");
}

/// A repository whose `.gitignore` ignores local files, with some there.
fn repository() -> TestRepo {
    let repo = TestRepo::new();
    let root = repo.path();
    commit_file(
        root,
        ".gitignore",
        ".env\n*.local.toml\nbuild/\nlink.env\n",
        "ignore local files",
    );
    commit_file(root, "settings.toml", "committed\n", "settings");
    write(root, ".env", "SECRET=1\n");
    std::fs::set_permissions(root.join(".env"), std::fs::Permissions::from_mode(0o600))
        .expect("mode");
    write(root, "config/app.local.toml", "port = 1\n");
    write(root, "build/output.bin", "big\n");
    std::os::unix::fs::symlink(".env", root.join("link.env")).expect("link");
    // The tracked file differs in the main working tree.
    write(root, "settings.toml", "edited in main\n");
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_files_are_copied_and_tracked_files_are_not() {
    let repo = repository();
    let root = repo.path();
    write(
        root,
        INCLUDE_FILE,
        "# local files\n.env\nconfig/\nlink.env\nsettings.toml\n",
    );
    let m = crate::common::manager(&repo, WorktreeConfig::new(root)).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    let read = |name: &str| std::fs::read_to_string(wt.path.join(name)).expect(name);
    assert_eq!(read(".env"), "SECRET=1\n");
    let mode = std::fs::metadata(wt.path.join(".env"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the mode is kept");
    assert_eq!(read("config/app.local.toml"), "port = 1\n");
    assert_eq!(
        read("settings.toml"),
        "committed\n",
        "a tracked file is the branch's"
    );
    assert!(!wt.path.join("build").exists(), "not named, not copied");
    assert_eq!(
        std::fs::read_link(wt.path.join("link.env")).expect("a link"),
        Path::new(".env"),
        "a link inside the repository is recreated as the same link"
    );
    // No temporary copies left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&wt.path)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".ff-copy-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    crate::common::assert_consistent(&repo, &m).await;
}

/// Each bad `.worktreeinclude` is refused with a message naming the
/// problem, and nothing is made: no worktree, branch, record or slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_includes_are_refused_before_anything_is_made() {
    let repo = repository();
    let root = repo.path();
    let m = crate::common::manager(&repo, WorktreeConfig::new(root)).await;
    std::os::unix::fs::symlink("/etc/hostname", root.join("outside.env")).expect("link");
    for (include, says) in [
        ("outside.env\n", "outside the repository"),
        ("../secrets\n", "`..` segment"),
        ("config/../../x\n", "`..` segment"),
        ("!../x\n", "`..` segment"),
    ] {
        write(root, INCLUDE_FILE, include);
        let err = m.create_worktree("bad").await.expect_err(include);
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput.into(),
            "{include}: {err}"
        );
        assert!(err.to_string().contains(says), "{include}: {err}");
        assert!(err.to_string().contains(INCLUDE_FILE), "{include}: {err}");
        assert_eq!(
            crate::common::ours(&repo, &m).len(),
            0,
            "{include}: nothing made"
        );
        crate::common::assert_consistent(&repo, &m).await;
    }
    // The include file itself behind a symlink.
    std::fs::remove_file(root.join(INCLUDE_FILE)).expect("rm");
    write(root, "elsewhere/include", ".env\n");
    std::os::unix::fs::symlink("elsewhere/include", root.join(INCLUDE_FILE)).expect("link");
    let err = m
        .create_worktree("bad")
        .await
        .expect_err("a linked include file");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(crate::common::ours(&repo, &m).len(), 0);
    crate::common::assert_consistent(&repo, &m).await;
}

/// A pattern that names too many files is refused while listing, before
/// anything is copied.
#[test]
fn too_many_files_are_refused() {
    let repo = repository();
    let root = repo.path();
    for i in 0..6 {
        write(root, &format!("cache/{i}.local.toml"), "x\n");
    }
    write(root, INCLUDE_FILE, "cache/\n");
    let listed = Included::scan_with_limit(root, &[], 6)
        .expect("six fit")
        .expect("an include file");
    assert_eq!(listed.len(), 6);
    let err = Included::scan_with_limit(root, &[], 5).expect_err("six do not fit in five");
    assert!(err.to_string().contains("more than 5 files"), "{err}");
}

/// `symlink` paths become links to the main working tree's copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_paths_are_linked_not_copied() {
    let repo = repository();
    let root = repo.path();
    write(root, "build/deps/lib.a", "library\n");
    let m = crate::common::manager(
        &repo,
        WorktreeConfig::new(root).with_symlinks(vec!["build".into(), "absent".into()]),
    )
    .await;
    let wt = m.create_worktree("2").await.expect("create").worktree;
    let link = std::fs::read_link(wt.path.join("build")).expect("a link");
    assert_eq!(
        std::fs::canonicalize(link).expect("target"),
        std::fs::canonicalize(root.join("build")).expect("build")
    );
    assert!(
        !wt.path.join("absent").exists(),
        "nothing to link to, no link"
    );
    let bad = ff_worktree::WorktreeManager::open(
        WorktreeConfig::new(root).with_symlinks(vec!["../up".into()]),
        ff_traits::MemoryLockProvider::new(),
        ff_traits::MemoryStore::new(),
    )
    .await
    .map(|_| ())
    .expect_err("a path out of the repository");
    assert_eq!(bad.kind(), ErrorKind::InvalidInput.into(), "{bad}");
    crate::common::assert_consistent(&repo, &m).await;
}

//! WorktreeManager on real git repositories, with the file lock and the
//! SQLite store (the embedded default).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_worktree::Error;
use ff_worktree::git::Git;
use ff_worktree::{WorktreeConfig, WorktreeManager};

type Manager = WorktreeManager<FileLockProvider, SqliteStore>;

struct Repo {
    dir: tempfile::TempDir,
    state: PathBuf,
}

impl Repo {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = Git::new(dir.path());
        git.run(["init", "-q", "-b", "main"]).await.expect("init");
        std::fs::write(dir.path().join("README"), "hello\n").expect("write");
        git.run(["add", "README"]).await.expect("add");
        commit(dir.path(), "first").await;
        let state = dir.path().join(".ff-state");
        Self { dir, state }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    async fn manager(&self) -> Manager {
        self.manager_with(WorktreeConfig::new(self.path())).await
    }

    async fn manager_with(&self, config: WorktreeConfig) -> Manager {
        let locks = FileLockProvider::new(self.state.join("locks"));
        let store = SqliteStore::open(self.state.join("ff.sqlite3")).expect("store");
        WorktreeManager::open(config, locks, store)
            .await
            .expect("open")
    }

    async fn git_worktrees_under_base(&self, m: &Manager) -> usize {
        Git::new(self.path())
            .worktrees()
            .await
            .expect("list")
            .iter()
            .filter(|w| w.path.starts_with(m.base_path()))
            .count()
    }

    async fn ff_branches(&self) -> Vec<String> {
        let out = Git::new(self.path())
            .read([
                "for-each-ref",
                "--format=%(refname:lstrip=2)",
                "refs/heads/ff-*",
                "refs/heads/ff/",
            ])
            .await
            .expect("refs");
        out.text().lines().map(str::to_owned).collect()
    }
}

async fn commit(dir: &Path, message: &str) {
    Git::new(dir)
        .run([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        ])
        .await
        .expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_idempotent_and_cleanup_removes_everything() {
    let repo = Repo::new().await;
    let m = repo.manager().await;
    let first = m.create_worktree("123").await.expect("create");
    assert!(!first.reused);
    let wt = &first.worktree;
    assert!(wt.path.join("README").exists(), "worktree not checked out");
    // Readable, stable names: the issue's own.
    assert_eq!((wt.id.as_str(), wt.branch.as_str()), ("123", "ff/123"));
    assert_eq!(wt.path, m.base_path().join("123"));
    let again = m.create_worktree("123").await.expect("create again");
    assert!(again.reused);
    assert_eq!(again.worktree, first.worktree);
    assert_eq!(m.get("123").await.expect("get"), Some(wt.clone()));
    assert_eq!(m.get(&wt.id).await.expect("get by id"), Some(wt.clone()));
    assert_eq!(m.list_worktrees().await.expect("list").len(), 1);

    // The base path never shows in git status.
    let status = Git::new(repo.path())
        .read(["status", "--porcelain", "--untracked-files=all"])
        .await
        .expect("status")
        .text();
    assert!(!status.contains(".ff-worktrees"), "{status}");

    let done = m
        .cleanup_worktree("123", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup");
    assert_eq!(done.removed.as_ref().map(|w| &w.id), Some(&wt.id));
    assert!(done.archived_at.is_none());
    assert!(!wt.path.exists());
    assert_eq!(repo.git_worktrees_under_base(&m).await, 0);
    assert!(repo.ff_branches().await.is_empty());
    assert!(m.list_worktrees().await.expect("list").is_empty());
    // Cleaning again succeeds and does nothing.
    assert!(
        m.cleanup_worktree("123", ff_worktree::Cleanup::Safe)
            .await
            .expect("again")
            .removed
            .is_none()
    );
    // And a new create makes a new worktree, under the same stable names.
    let second = m
        .create_worktree("123")
        .await
        .expect("create after cleanup");
    assert!(!second.reused);
    assert_eq!(
        (&second.worktree.id, &second.worktree.branch),
        (&wt.id, &wt.branch)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_issue_make_one_worktree() {
    let repo = Arc::new(Repo::new().await);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let repo = Arc::clone(&repo);
        tasks.push(tokio::spawn(async move {
            // Each task is its own manager, as separate processes would be.
            let m = repo.manager().await;
            m.create_worktree("42").await.expect("create").worktree.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let m = repo.manager().await;
    assert_eq!(repo.git_worktrees_under_base(&m).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_issues_at_once_all_succeed() {
    let repo = Arc::new(Repo::new().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let repo = Arc::clone(&repo);
        tasks.push(tokio::spawn(async move {
            let m = repo
                .manager_with(WorktreeConfig::new(repo.path()).with_max_worktrees(32))
                .await;
            m.create_worktree(&format!("issue-{i}")).await
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    let m = repo.manager().await;
    assert_eq!(repo.git_worktrees_under_base(&m).await, 16);
    assert_eq!(repo.ff_branches().await.len(), 16);
    let fsck = Git::new(repo.path()).run(["fsck", "--no-progress"]).await;
    assert!(fsck.is_ok(), "{fsck:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_worktree_add_leaves_nothing_and_a_retry_works() {
    let repo = Repo::new().await;
    let m = repo.manager().await;
    // git creates the worktree and the branch, then reports the hook's
    // failure: exactly the half-done state a rollback must undo.
    let hook = repo.path().join(".git").join("hooks").join("post-checkout");
    std::fs::create_dir_all(hook.parent().expect("hooks")).expect("mkdir");
    std::fs::write(&hook, "#!/bin/sh\necho 'hook says no' >&2\nexit 1\n").expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let err = m
        .create_worktree("7")
        .await
        .expect_err("the hook fails the add");
    assert!(err.to_string().contains("hook says no"), "{err}");
    assert_eq!(
        repo.git_worktrees_under_base(&m).await,
        0,
        "registration left behind"
    );
    assert!(repo.ff_branches().await.is_empty(), "branch left behind");
    let leftovers: Vec<_> = crate::common::base_entries(m.base_path());
    assert!(leftovers.is_empty(), "directory left behind: {leftovers:?}");
    assert!(
        m.get("7").await.expect("get").is_none(),
        "record left behind"
    );

    std::fs::remove_file(&hook).expect("remove hook");
    let ok = m.create_worktree("7").await.expect("retry at once");
    assert!(!ok.reused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_refuses_to_lose_work_unless_forced_and_then_keeps_it() {
    let repo = Repo::new().await;
    let m = repo.manager().await;

    // Uncommitted work.
    let dirty = m.create_worktree("dirty").await.expect("create").worktree;
    std::fs::write(dirty.path.join("notes.txt"), "precious\n").expect("write");
    let err = m
        .cleanup_worktree("dirty", ff_worktree::Cleanup::Safe)
        .await
        .expect_err("dirty cleanup");
    match &err {
        Error::WouldLoseWork { files, commits, .. } => {
            assert_eq!(files, &["notes.txt"], "{err}");
            assert_eq!(*commits, 0, "{err}");
        }
        other => panic!("expected would-lose-work, got {other:?}"),
    }
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(
        dirty.path.join("notes.txt").exists(),
        "refusal touched the work"
    );
    let forced = m
        .cleanup_worktree("dirty", ff_worktree::Cleanup::Force)
        .await
        .expect("forced");
    let archive = forced.archived_at.expect("archived");
    let kept = Git::new(repo.path())
        .read(["show", &format!("{archive}:notes.txt")])
        .await
        .expect("archived file");
    assert_eq!(kept.text(), "precious");
    assert!(!dirty.path.exists());

    // Committed but unmerged work.
    let unmerged = m
        .create_worktree("unmerged")
        .await
        .expect("create")
        .worktree;
    commit(&unmerged.path, "work").await;
    let head = Git::new(&unmerged.path)
        .read(["rev-parse", "HEAD"])
        .await
        .expect("head")
        .text();
    let err = m
        .cleanup_worktree(&unmerged.id, ff_worktree::Cleanup::Safe)
        .await
        .expect_err("unmerged");
    assert!(
        err.to_string().contains("1 commit(s) not merged into main"),
        "{err}"
    );
    let forced = m
        .cleanup_worktree(&unmerged.id, ff_worktree::Cleanup::Force)
        .await
        .expect("forced");
    let archive = forced.archived_at.expect("archived");
    let kept = Git::new(repo.path())
        .read(["rev-parse", &archive])
        .await
        .expect("ref")
        .text();
    assert_eq!(
        kept, head,
        "the archive ref does not hold the branch's commit"
    );
    assert!(repo.ff_branches().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worktree_limit_is_enforced_without_leaving_records() {
    let repo = Repo::new().await;
    let m = repo
        .manager_with(WorktreeConfig::new(repo.path()).with_max_worktrees(2))
        .await;
    m.create_worktree("a").await.expect("a");
    m.create_worktree("b").await.expect("b");
    let err = m.create_worktree("c").await.expect_err("over the limit");
    assert!(err.to_string().contains("limit of 2"), "{err}");
    assert!(m.get("c").await.expect("get").is_none());
    m.cleanup_worktree("a", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup");
    m.create_worktree("c").await.expect("c fits now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_issue_ids_change_nothing() {
    let repo = Repo::new().await;
    let m = repo.manager().await;
    for bad in [
        "../escape",
        "a//b",
        "/a/b",
        "a\\b",
        "-rf",
        "x.lock",
        "nul\0",
        "new\nline",
        "",
        "ünï",
        &"x".repeat(10_000),
    ] {
        let err = m.create_worktree(bad).await.expect_err(bad);
        assert!(
            matches!(err, Error::Contract(ff_traits::Error::InvalidInput { .. })),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(crate::common::base_entries(m.base_path()).len(), 0);
    assert!(repo.ff_branches().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_that_cannot_hold_worktrees_are_refused() {
    let plain = tempfile::tempdir().expect("tempdir");
    let open = |dir: PathBuf| async move {
        let locks = FileLockProvider::new(dir.join("locks"));
        let store = SqliteStore::open(dir.join("s.sqlite3")).expect("store");
        WorktreeManager::open(WorktreeConfig::new(&dir), locks, store).await
    };
    let err = open(plain.path().to_path_buf())
        .await
        .expect_err("not a repo");
    assert!(
        err.to_string().contains("not inside a git repository"),
        "{err}"
    );

    let bare = tempfile::tempdir().expect("tempdir");
    Git::new(bare.path())
        .run(["init", "-q", "--bare"])
        .await
        .expect("init");
    let err = open(bare.path().to_path_buf()).await.expect_err("bare");
    assert!(err.to_string().contains("bare"), "{err}");

    let empty = tempfile::tempdir().expect("tempdir");
    Git::new(empty.path())
        .run(["init", "-q"])
        .await
        .expect("init");
    let err = open(empty.path().to_path_buf())
        .await
        .expect_err("no commits");
    assert!(err.to_string().contains("no commits"), "{err}");
}

/// A runtime without IO or time is refused with a message, not a panic
/// inside the first git call.
#[test]
fn a_runtime_without_io_or_time_is_a_clear_error() {
    let repo = ff_testkit::git::TestRepo::new();
    for (what, runtime) in [
        (
            "timer",
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build(),
        ),
        (
            "IO driver",
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build(),
        ),
    ] {
        let runtime = runtime.expect("runtime");
        let err = runtime
            .block_on(ff_worktree::open_embedded(WorktreeConfig::new(repo.path())))
            .expect_err("a runtime without drivers must be refused");
        let message = err.to_string();
        assert!(
            message.contains(what) && message.contains("enable_all"),
            "{message}"
        );
        assert_eq!(
            err.kind(),
            ff_worktree::ErrorKind::Contract(ff_traits::ErrorKind::InvalidInput)
        );
    }
    assert!(
        !repo.path().join(".ff-worktrees").exists(),
        "nothing may be made before the check"
    );
}

//! Hostile input through the library: every case is an error of the kind
//! its meaning gives (never a panic), and nothing is written anywhere, the
//! base path included. The `ff` binary's cases are in ff-cli's
//! `tests/hostile.rs`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the figures for the report

use std::path::Path;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_lock_file::FileLockProvider;
use ff_store_json::JsonStore;
use ff_store_sqlite::SqliteStore;
use ff_testkit::Immutable;
use ff_testkit::git::{TestRepo, git_in};
use ff_testkit::snapshot::Snapshot;
use ff_traits::{ErrorKind, IdempotencyKey, LockOptions, LockProvider};
use ff_worktree::{SyncOptions, WorktreeConfig, WorktreeManager};
use serde_json::{Value, json};

/// Issue ids no operation may accept.
fn hostile_ids() -> Vec<String> {
    [
        "",
        "../x",
        "a/../../b",
        "a//b",
        "a/",
        "/etc",
        "a\\b",
        "a\0b",
        "a\nb",
        "a\tb",
        "-rf",
        "--force",
        "x.lock",
        "X.Lock",
        "a.",
        ".",
        "..",
        " 1",
        "ａｂｃ",
        "аbc",
        "abc\u{200b}",
        "abc\u{202e}",
        "@{-1}",
        "a~1",
        "a^",
        "a:b",
        "a*",
        "$(id)",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "a".repeat(65),
        "a".repeat(10_000),
        "b".repeat(10 * 1024 * 1024),
    ])
    .collect()
}

fn assert_unchanged(before: &Snapshot, root: &Path) {
    let changed = Snapshot::of(root).changed_since(before);
    assert!(changed.is_empty(), "hostile input changed {changed:?}");
}

fn expect_kind<T: std::fmt::Debug, E: Into<ff_worktree::Error>>(
    what: &str,
    r: Result<T, E>,
    kind: ErrorKind,
) {
    match r {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(e) => {
            let e: ff_worktree::Error = e.into();
            assert_eq!(e.kind(), kind.into(), "{what}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_issue_ids_are_refused_by_every_operation_and_change_nothing() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let root = repo.path().parent().expect("root").to_path_buf();
    let before = Snapshot::of(&root);
    let mut tried = 0;
    for id in hostile_ids() {
        let shown: String = id.chars().take(20).collect();
        let what = format!("{shown:?}");
        expect_kind(&what, m.create_worktree(&id).await, ErrorKind::InvalidInput);
        expect_kind(&what, m.get(&id).await, ErrorKind::InvalidInput);
        expect_kind(
            &what,
            m.cleanup_worktree(&id, ff_worktree::Cleanup::Force).await,
            ErrorKind::InvalidInput,
        );
        expect_kind(
            &what,
            m.sync_worktree(&id, SyncOptions::default()).await,
            ErrorKind::InvalidInput,
        );
        expect_kind(
            &what,
            m.lock_issue(&id).await.map(|_| ()),
            ErrorKind::InvalidInput,
        );
        tried += 1;
    }
    assert_unchanged(&before, &root);
    assert!(repo.ff_branches().is_empty());
    println!("hostile issue ids: {tried}, each through 5 operations, all refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_repositories_base_paths_and_refs_are_refused_before_anything_is_made() {
    let repo = TestRepo::new();
    let root = repo.path().parent().expect("root").to_path_buf();
    let not_git = repo.scratch("plain");
    let bare = repo.scratch("bare");
    let _ = git_in(&bare, &["init", "-q", "--bare"]);
    let empty = repo.scratch("empty");
    let _ = git_in(&empty, &["init", "-q"]);
    let a_file = repo.scratch("files").join("a-file");
    std::fs::write(&a_file, "x").expect("file");
    #[cfg(unix)]
    let link = {
        let link = repo.scratch("links").join("link");
        std::os::unix::fs::symlink(repo.scratch("elsewhere"), &link).expect("symlink");
        Some(link)
    };
    #[cfg(not(unix))]
    let link: Option<std::path::PathBuf> = None;
    let locked = repo.scratch("immutable");
    let state = repo.scratch("state");
    let open = async |config: WorktreeConfig| {
        let locks = FileLockProvider::new(state.join("locks"));
        let store = SqliteStore::open(state.join("ff.sqlite3")).expect("store");
        WorktreeManager::open(config, locks, store)
            .await
            .map(|_| ())
    };
    // The store's own file is made by its open, above; take it in.
    open(WorktreeConfig::new(&not_git)).await.ok();
    let before = Snapshot::of(&root);
    let immutable = Immutable::set(&locked);
    let invalid = [
        ("not a repository", WorktreeConfig::new(&not_git)),
        ("missing directory", WorktreeConfig::new("/no/such/dir")),
        ("bare repository", WorktreeConfig::new(&bare)),
        ("no commits", WorktreeConfig::new(&empty)),
        ("NUL in repository path", WorktreeConfig::new("a\0b")),
        (
            "base path is a file",
            WorktreeConfig::new(repo.path()).with_base_path(&a_file),
        ),
        (
            "base path is /dev/null",
            WorktreeConfig::new(repo.path()).with_base_path("/dev/null"),
        ),
        (
            "NUL in base path",
            WorktreeConfig::new(repo.path()).with_base_path(root.join("a\0b")),
        ),
        (
            "base ref as a git option",
            WorktreeConfig::new(repo.path()).with_base_ref("--output=/tmp/x"),
        ),
        (
            "base ref naming nothing",
            WorktreeConfig::new(repo.path()).with_base_ref("nope"),
        ),
        (
            "base ref with revision syntax",
            WorktreeConfig::new(repo.path()).with_base_ref("HEAD~999"),
        ),
    ];
    let mut invalid = invalid.to_vec();
    if let Some(link) = &link {
        invalid.push((
            "base path is a symlink",
            WorktreeConfig::new(repo.path()).with_base_path(link),
        ));
    }
    let tried = invalid.len() + usize::from(immutable.is_some());
    for (what, config) in invalid {
        expect_kind(what, open(config).await, ErrorKind::InvalidInput);
    }
    if immutable.is_some() {
        let config = WorktreeConfig::new(repo.path()).with_base_path(locked.join("wt"));
        expect_kind(
            "unwritable base path",
            open(config).await,
            ErrorKind::Backend,
        );
    } else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "unwritable base path (chattr +i needs root here)",
        );
    }
    drop(immutable);
    assert_unchanged(&before, &root);
    println!("hostile repositories and base paths: {tried}, all refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_lock_names_store_paths_and_urls() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let locks = FileLockProvider::new(state.join("locks"));
    let options = LockOptions::default();
    let mut tried = 0;
    for (what, name) in [
        ("empty", String::new()),
        ("NUL", "a\0b".to_owned()),
        ("newline", "a\nb".to_owned()),
        ("10,000 characters", "a".repeat(10_000)),
    ] {
        // Refused where the name is made: no backend ever sees it.
        expect_kind(
            what,
            ff_traits::LockName::new(name).map(|_| ()),
            ErrorKind::InvalidInput,
        );
        tried += 1;
    }
    assert!(
        !state.join("locks").exists(),
        "a refused name made something"
    );
    // Names that are valid but look like paths stay inside the lock
    // directory: the file name is an escaped form plus a hash.
    for name in ["../../escape", "/etc/passwd", "a\\..\\..\\b", "..", "CON"] {
        let guard = locks
            .acquire(
                &ff_traits::LockName::new(name).expect("lock name"),
                &options,
            )
            .await
            .expect("acquire");
        guard.release().await.expect("release");
        tried += 1;
    }
    let outside: Vec<_> = std::fs::read_dir(repo.path().parent().expect("root"))
        .expect("root")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("escape") || n == "passwd")
        .collect();
    assert!(
        outside.is_empty(),
        "a lock escaped its directory: {outside:?}"
    );
    assert!(!state.join("escape").exists() && !state.join("escape.lock").exists());

    // Stores pointed at the wrong thing.
    let a_file = state.join("a-file");
    std::fs::write(&a_file, "x").expect("file");
    expect_kind(
        "JSON store at a file",
        JsonStore::open(&a_file).map(|_| ()),
        ErrorKind::Backend,
    );
    expect_kind(
        "SQLite store at a directory",
        SqliteStore::open(&state).map(|_| ()),
        ErrorKind::Backend,
    );
    expect_kind(
        "SQLite store in a missing directory under a file",
        SqliteStore::open(a_file.join("x.sqlite3")).map(|_| ()),
        ErrorKind::Backend,
    );
    tried += 3;

    // Redis URLs: malformed, and a closed port.
    use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
    use ff_store_redis::{RedisStore, RedisStoreConfig};
    for url in [
        "redis://",
        "redis://[::1",
        "http://x",
        "redis://h:99999",
        "not a url",
    ] {
        expect_kind(
            url,
            RedisLockProvider::connect(RedisLockConfig::new(url))
                .await
                .map(|_| ()),
            ErrorKind::InvalidInput,
        );
        expect_kind(
            url,
            RedisStore::connect(RedisStoreConfig::new(url))
                .await
                .map(|_| ()),
            ErrorKind::InvalidInput,
        );
        tried += 1;
    }
    expect_kind(
        "closed port",
        RedisLockProvider::connect(RedisLockConfig::new("redis://127.0.0.1:1"))
            .await
            .map(|_| ()),
        ErrorKind::Backend,
    );
    expect_kind(
        "closed port",
        RedisStore::connect(RedisStoreConfig::new("redis://127.0.0.1:1"))
            .await
            .map(|_| ()),
        ErrorKind::Backend,
    );
    expect_kind(
        "TLS to a closed port",
        RedisStore::connect(RedisStoreConfig::new("rediss://127.0.0.1:1"))
            .await
            .map(|_| ()),
        ErrorKind::Backend,
    );
    tried += 2;
    println!("hostile lock names, store paths and URLs: {tried}, all handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_parameters_and_results_round_trip_through_both_file_stores() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    let big = "p".repeat(10 * 1024 * 1024);
    let key = IdempotencyKey::new("op", json!({ "blob": big }), json!({ "ctx": 1 }));
    let check = async |m: IdempotencyManager<_>| {
        let Start::Claimed(claim) = m
            .start_operation(&key, Some(json!({ "undo": big })))
            .await
            .expect("claim")
        else {
            panic!("fresh key already completed");
        };
        m.complete_operation(&claim, json!({ "out": big }))
            .await
            .expect("complete");
        let Start::AlreadyCompleted(record) =
            m.start_operation(&key, None).await.expect("second start")
        else {
            panic!("ran twice");
        };
        assert_eq!(record.result, Some(json!({ "out": big })));
    };
    check(IdempotencyManager::new(
        Box::new(SqliteStore::open(state.join("big.sqlite3")).expect("sqlite"))
            as Box<dyn ff_traits::IdempotencyStorage>,
        ManagerConfig::default(),
    ))
    .await;
    check(IdempotencyManager::new(
        Box::new(JsonStore::open(state.join("json")).expect("json"))
            as Box<dyn ff_traits::IdempotencyStorage>,
        ManagerConfig::default(),
    ))
    .await;
    // Deeper than a key may nest: refused, not a stack overflow.
    let mut deep = json!(1);
    for _ in 0..100_000 {
        deep = Value::Array(vec![deep]);
    }
    let deep_key = IdempotencyKey::new("op", deep, Value::Null);
    let m = IdempotencyManager::new(
        SqliteStore::open(state.join("deep.sqlite3")).expect("sqlite"),
        ManagerConfig::default(),
    );
    expect_kind(
        "100,000 levels of nesting",
        m.start_operation(&deep_key, None).await.map(|_| ()),
        ErrorKind::InvalidInput,
    );
    // Take it apart without recursion: a recursive drop would overflow.
    let mut v = deep_key.parameters;
    while let Value::Array(mut items) = v {
        v = items.pop().unwrap_or(Value::Null);
    }
}

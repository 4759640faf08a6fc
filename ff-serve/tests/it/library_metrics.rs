//! What the libraries report through the `metrics` facade, read back from
//! a real Prometheus recorder: every layer's names and labels, and the
//! lock handles kept per recorder staying correct when recorders change.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a child reports to its parent on stdout

use std::sync::Arc;
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_lock_file::FileLockProvider;
use ff_metrics::Instrumented;
use ff_store_sqlite::SqliteStore;
use ff_testkit::git::TestRepo;
use ff_testkit::prometheus::{self, Sample};
use ff_traits::{IdempotencyKey, LockName, LockOptions, LockProvider, RecordedError};
use ff_worktree::{Cleanup, WorktreeConfig, WorktreeManager};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn every_layer_reports_its_metrics() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _installed = metrics::set_default_local_recorder(&recorder);
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    current_thread().block_on(async {
        // Locks: a grant, a busy try, a timeout, a force release.
        let locks = Instrumented::new(FileLockProvider::new(dir.path().join("locks")));
        let name = LockName::new("job").unwrap();
        let options = LockOptions::default().with_operation("deploy");
        let held = locks.acquire(&name, &options).await.unwrap();
        assert!(locks.try_acquire(&name, &options).await.unwrap().is_none());
        let short = options.clone().with_timeout(Duration::from_millis(50));
        assert!(locks.acquire(&name, &short).await.is_err());
        held.release().await.unwrap();
        locks.force_release(&name).await.unwrap();

        // Records: a completion, a failure, a replay decision.
        let store = Arc::new(Instrumented::new(
            SqliteStore::open(dir.path().join("records.db")).unwrap(),
        ));
        let manager = IdempotencyManager::new(store, ManagerConfig::default());
        for (i, ok) in [(1, true), (2, false)] {
            let key = IdempotencyKey::new("build", json!({"i": i}), json!({}));
            let Start::Claimed(claim) = manager.start_operation(&key, None).await.unwrap() else {
                panic!("new key");
            };
            if ok {
                manager
                    .complete_operation(&claim, json!("done"))
                    .await
                    .unwrap();
            } else {
                let e = RecordedError::new("test", "failed on purpose", false);
                manager.fail_operation(&claim, e).await.unwrap();
            }
        }
        let again = IdempotencyKey::new("build", json!({"i": 1}), json!({}));
        assert!(!manager.should_execute(&again).await.unwrap().execute);

        // Worktrees: a create and a cleanup, on a real repository.
        let config = WorktreeConfig::new(repo.path()).with_state_dir(dir.path().join("wt-state"));
        let wt = WorktreeManager::open(
            config,
            Instrumented::new(FileLockProvider::new(dir.path().join("wt-locks"))),
            Instrumented::new(SqliteStore::open(dir.path().join("wt.db")).unwrap()),
        )
        .await
        .unwrap();
        let created = wt.create_worktree("5").await.unwrap();
        wt.cleanup_worktree(&created.worktree.id, Cleanup::Safe)
            .await
            .unwrap();
    });
    let text = handle.render();
    let s = prometheus::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let lock = [
        ("backend", "file"),
        ("mode", "exclusive"),
        ("class", "deploy"),
    ];
    assert_eq!(sum(&s, "ff_lock_wait_seconds_count", &lock), 1.0, "{text}");
    assert_eq!(sum(&s, "ff_lock_hold_seconds_count", &lock), 1.0);
    assert_eq!(sum(&s, "ff_lock_timeouts_total", &lock), 1.0);
    assert_eq!(sum(&s, "ff_lock_timeout_wait_seconds_count", &lock), 1.0);
    // The busy try, and the wait that timed out.
    assert_eq!(sum(&s, "ff_lock_contentions_total", &lock), 2.0);
    assert_eq!(
        sum(
            &s,
            "ff_lock_force_releases_total",
            &[("backend", "file"), ("outcome", "not_held")]
        ),
        1.0
    );
    assert!(!text.contains("job"), "a lock's name must never be a label");

    let build = [("operation", "build")];
    assert_eq!(sum(&s, "ff_idempotency_claims_total", &build), 2.0);
    assert_eq!(sum(&s, "ff_idempotency_completions_total", &build), 1.0);
    assert_eq!(sum(&s, "ff_idempotency_failures_total", &build), 1.0);
    assert_eq!(
        sum(
            &s,
            "ff_operation_duration_seconds_count",
            &[("operation", "build"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &s,
            "ff_idempotency_decisions_total",
            &[("reason", "already_completed")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        sum(
            &s,
            "ff_idempotency_decisions_total",
            &[("reason", "no_previous_execution")]
        ) >= 2.0
    );
    assert!(
        sum(
            &s,
            "ff_store_call_seconds_count",
            &[("backend", "sqlite"), ("call", "create")]
        ) >= 2.0
    );

    let ok = |op| [("operation", op), ("outcome", "ok")];
    assert_eq!(sum(&s, "ff_worktree_operations_total", &ok("create")), 1.0);
    assert_eq!(sum(&s, "ff_worktree_operations_total", &ok("cleanup")), 1.0);
    assert_eq!(
        sum(&s, "ff_worktree_operation_seconds_count", &ok("create")),
        1.0
    );
    assert_eq!(sum(&s, "ff_worktrees", &[]), 0.0);
    assert_eq!(sum(&s, "ff_worktrees_limit", &[]), 10.0);
    assert!(
        sum(
            &s,
            "ff_git_call_seconds_count",
            &[("subcommand", "worktree")]
        ) >= 2.0,
        "{text}"
    );
}

/// A grant on a fresh local recorder, made and dropped in its own frame:
/// the next one sits at the same address, which must not mislead the
/// handles kept for the global recorder.
fn grants_seen_by_a_new_recorder(locks: &Instrumented<FileLockProvider>) -> f64 {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _installed = metrics::set_default_local_recorder(&recorder);
    current_thread().block_on(async {
        let name = LockName::new("switch").unwrap();
        let options = LockOptions::default().with_operation("switch");
        locks
            .acquire(&name, &options)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    });
    let s = prometheus::parse(&handle.render()).unwrap();
    sum(&s, "ff_lock_hold_seconds_count", &[("class", "switch")])
}

#[test]
fn each_recorder_sees_its_own_grants() {
    let dir = tempfile::tempdir().unwrap();
    let locks = Instrumented::new(FileLockProvider::new(dir.path()));
    for _ in 0..3 {
        assert_eq!(grants_seen_by_a_new_recorder(&locks), 1.0);
    }
}

/// The child of `a_dead_holders_lock_is_counted_as_taken_over`: takes the
/// lock in the directory its role names, says so, and waits to be killed.
#[test]
fn takeover_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    current_thread().block_on(async {
        let locks = FileLockProvider::new(&role[0]);
        let name = LockName::new("crashed").unwrap();
        let guard = locks.acquire(&name, &LockOptions::default()).await.unwrap();
        println!("held");
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(guard);
    });
}

#[cfg(unix)]
#[test]
fn a_dead_holders_lock_is_counted_as_taken_over_and_a_revoked_grant_as_lost() {
    if ff_testkit::child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    let mut child = ff_testkit::spawn_self(&ff_testkit::test_entry!("takeover_child"), &[&path]);
    ff_testkit::wait_for_line(&mut child, "held");
    child.kill().unwrap(); // SIGKILL: the holder never releases
    child.wait().unwrap();

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _installed = metrics::set_default_local_recorder(&recorder);
    current_thread().block_on(async {
        let locks = Instrumented::new(FileLockProvider::new(dir.path()));
        let name = LockName::new("crashed").unwrap();
        locks
            .acquire(&name, &LockOptions::default())
            .await
            .unwrap()
            .release()
            .await
            .unwrap();

        // A grant revoked by force is a loss its holder learns of.
        let memory = Instrumented::new(ff_traits::MemoryLockProvider::new());
        let held = memory
            .acquire(&name, &LockOptions::default())
            .await
            .unwrap();
        memory.force_release(&name).await.unwrap();
        assert!(!held.is_held());
    });
    let s = prometheus::parse(&handle.render()).unwrap();
    assert_eq!(
        sum(&s, "ff_lock_takeovers_total", &[("backend", "file")]),
        1.0
    );
    assert_eq!(sum(&s, "ff_lock_losses_total", &[]), 1.0);
    assert_eq!(
        sum(
            &s,
            "ff_lock_force_releases_total",
            &[("backend", "memory"), ("outcome", "revoked")]
        ),
        1.0
    );
}

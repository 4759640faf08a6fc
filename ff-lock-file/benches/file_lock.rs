//! Uncontended acquire + release, beside the bare floor, in one run.
//!
//! * `kernel_acquire_release`: `FileLockProvider` (kernel mode) acquire +
//!   release of one lock, with holder metadata and a fencing token.
//! * `baseline_fdlock_open_lock_write_unlock`: the floor: open the file,
//!   fd-lock write lock, write a line of metadata, unlock, close.
//! * `lease_acquire_release`: lease mode, for reference (it creates, fsyncs
//!   and removes a file per grant by design).
//!
//! Run: `cargo bench -p ff-lock-file --bench file_lock`, then
//! `python3 scripts/bench-report.py file_lock_uncontended`.

#![allow(missing_docs)]

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ff_lock_file::{FileLockMode, FileLockProvider};
use ff_traits::{LockOptions, LockProvider};

fn uncontended(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kernel = FileLockProvider::new(dir.path().join("kernel"));
    let lease = FileLockProvider::new(dir.path().join("lease")).with_mode(FileLockMode::Lease);
    let opts = LockOptions::default()
        .with_operation("bench")
        .with_metadata(serde_json::json!({"issue": "123"}));
    let bare_path = dir.path().join("bare.lock");
    let line = br#"{"pid":1234,"hostname":"bench","operation":"bench","issue":"123"}"#;

    let mut g = c.benchmark_group("file_lock_uncontended");
    g.bench_function("kernel_acquire_release", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = kernel
                    .acquire(
                        &ff_traits::LockName::new("bench").expect("lock name"),
                        &opts,
                    )
                    .await
                    .expect("acquire");
                guard.release().await.expect("release");
            });
        });
    });
    g.bench_function("baseline_fdlock_open_lock_write_unlock", |b| {
        b.iter(|| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&bare_path)
                .expect("open");
            let mut lock = fd_lock::RwLock::new(file);
            let mut guard = lock.write().expect("lock");
            guard.seek(SeekFrom::Start(0)).expect("seek");
            guard.write_all(line).expect("write");
            drop(guard);
        });
    });
    g.bench_function("lease_acquire_release", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = lease
                    .acquire(
                        &ff_traits::LockName::new("bench").expect("lock name"),
                        &opts,
                    )
                    .await
                    .expect("acquire");
                guard.release().await.expect("release");
            });
        });
    });
    g.finish();

    // A leaf of depth 3 (IX on two ancestors, X on the leaf) beside a flat
    // exclusive lock, in the same run.
    let mut g = c.benchmark_group("file_lock_hierarchy");
    let tree = FileLockProvider::new(dir.path().join("tree"));
    g.bench_function("flat_exclusive", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = tree
                    .acquire(&ff_traits::LockName::new("flat").expect("lock name"), &opts)
                    .await
                    .expect("acquire");
                guard.release().await.expect("release");
            });
        });
    });
    // One intention lock alone (what each ancestor costs).
    let ix = opts.clone().with_mode(ff_traits::LockMode::IntentExclusive);
    g.bench_function("intention_node", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = tree
                    .acquire(&ff_traits::LockName::new("node").expect("lock name"), &ix)
                    .await
                    .expect("acquire");
                guard.release().await.expect("release");
            });
        });
    });
    // The floor of any design with a kernel lock per node: the same
    // three files opened, locked (shared on the two ancestors, exclusive
    // on the leaf), a line written to the leaf, unlocked and closed,
    // beside that done on one file. No record of who holds what: the
    // intention modes' compatibility (S against IX) needs one, which the
    // kernel's two modes cannot express.
    let bare_nodes: Vec<_> = ["bare-repo", "bare-issue", "bare-sync"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.lock")))
        .collect();
    let take = |path: &std::path::Path, exclusive: bool| {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open");
        if exclusive {
            file.lock().expect("lock");
            file.seek(SeekFrom::Start(0)).expect("seek");
            file.write_all(line).expect("write");
        } else {
            file.lock_shared().expect("lock shared");
        }
        file
    };
    g.bench_function("bare_flat", |b| {
        b.iter(|| {
            let leaf = take(&bare_nodes[2], true);
            leaf.unlock().expect("unlock");
        });
    });
    g.bench_function("bare_path_3", |b| {
        b.iter(|| {
            let held = [
                take(&bare_nodes[0], false),
                take(&bare_nodes[1], false),
                take(&bare_nodes[2], true),
            ];
            for f in held.iter().rev() {
                f.unlock().expect("unlock");
            }
        });
    });
    g.bench_function("leaf_depth_3", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = ff_hierarchy::acquire(
                    &tree,
                    &ff_traits::LockName::new("repo/issue/sync").expect("lock name"),
                    &opts,
                )
                .await
                .expect("acquire");
                guard.release().await.expect("release");
            });
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(60)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = uncontended
}
criterion_main!(benches);

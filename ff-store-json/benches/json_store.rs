//! JsonStore figures, each beside its floor measured in the same run.
//!
//! * `json_cycle`: a durable claim + complete (`start_operation` +
//!   `complete_operation` on a fresh key) vs one fsync'd atomic file write
//!   (temp file, write, fsync, rename, fsync of the directory).
//! * `json_lookup`: `load` of an existing key in stores of 100 and 100,000
//!   records.
//! * `json_stats`: `stats` over 10,000 and 100,000 records; `json_cleanup`:
//!   removing 10,000 finished records.
//!
//! Stores are filled by writing record files directly (no fsync), which is
//! setup, not measurement.
//!
//! Run: `cargo bench -p ff-store-json --bench json_store`, then
//! `python3 scripts/bench-report.py json_cycle json_lookup json_stats json_cleanup`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ff_conformance::store::sample_record;
use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_store_json::JsonStore;
use ff_traits::{IdempotencyRecord, IdempotencyStorage, RecordKey, RecordStatus, Timestamp};
use serde_json::json;

/// Full sizes under `cargo bench`; a small smoke run under `cargo test`,
/// which runs benchmarks once to check they work.
fn size(n: u32) -> u32 {
    if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        n.min(100)
    }
}

/// Writes `n` finished records straight into `dir` (setup only).
fn fill(dir: &Path, n: u32, op: &str) -> Vec<RecordKey> {
    std::fs::create_dir_all(dir).expect("dir");
    let old = Timestamp::now().saturating_sub(Duration::from_secs(7_200));
    (0..n)
        .map(|i| {
            let mut r: IdempotencyRecord = sample_record(op, i, old);
            r.status = RecordStatus::Completed;
            r.ended_at = Some(old);
            r.result = Some(json!({"worktree": format!("wt-{i}")}));
            let path = dir.join(format!("{}.json", r.key));
            std::fs::write(&path, serde_json::to_vec_pretty(&r).expect("json")).expect("write");
            r.key
        })
        .collect()
}

fn durable_write(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
    std::fs::File::open(dir)
        .expect("dir")
        .sync_all()
        .expect("fsync dir");
}

fn cycle(c: &mut Criterion) {
    let rt = ff_testkit::runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = JsonStore::open(tmp.path().join("cycle")).expect("open");
    let manager = IdempotencyManager::new(store, ManagerConfig::default());
    let floor_dir = tmp.path().join("floor");
    std::fs::create_dir_all(&floor_dir).expect("dir");
    let body =
        serde_json::to_vec_pretty(&sample_record("floor", 0, Timestamp::now())).expect("json");
    let mut g = c.benchmark_group("json_cycle");
    g.bench_function("claim_complete", |b| {
        b.iter_custom(|iters| rt.block_on(ff_testkit::time_claim_complete(&manager, iters)));
    });
    g.bench_function("baseline_durable_atomic_write", |b| {
        b.iter(|| durable_write(&floor_dir, "record.json", &body));
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let rt = ff_testkit::runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let small_keys = fill(&tmp.path().join("small"), 100, "lookup");
    let large_keys = fill(&tmp.path().join("large"), size(100_000), "lookup");
    let small = JsonStore::open(tmp.path().join("small")).expect("open");
    let large = JsonStore::open(tmp.path().join("large")).expect("open");
    let mut g = c.benchmark_group("json_lookup");
    let mut i = 0usize;
    g.bench_function("load_at_100", |b| {
        b.iter(|| {
            i = (i + 37) % small_keys.len();
            rt.block_on(small.load(black_box(&small_keys[i])))
                .expect("load")
        });
    });
    g.bench_function("load_at_100000", |b| {
        b.iter(|| {
            i = (i + 7_919) % large_keys.len();
            rt.block_on(large.load(black_box(&large_keys[i])))
                .expect("load")
        });
    });
    g.finish();

    let mut g = c.benchmark_group("json_stats");
    g.sample_size(10);
    let mid_dir = tmp.path().join("mid");
    fill(&mid_dir, size(10_000), "stats");
    let mid = JsonStore::open(&mid_dir).expect("open");
    g.bench_function("stats_10000", |b| {
        b.iter(|| rt.block_on(mid.stats()).expect("stats"))
    });
    g.bench_function("stats_100000", |b| {
        b.iter(|| rt.block_on(large.stats()).expect("stats"))
    });
    g.finish();

    let mut g = c.benchmark_group("json_cleanup");
    g.sample_size(10);
    g.bench_function("cleanup_10000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for round in 0..iters {
                let dir = tmp.path().join(format!(
                    "cleanup-{round}-{}",
                    ff_traits::identity::unique_id()
                ));
                fill(&dir, size(10_000), "cleanup");
                let s = JsonStore::open(&dir).expect("open");
                let started = Instant::now();
                let removed = rt
                    .block_on(s.remove_finished_before(Timestamp::now()))
                    .expect("cleanup");
                total += started.elapsed();
                assert_eq!(removed, u64::from(size(10_000)));
            }
            total
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = cycle, lookup
}
criterion_main!(benches);

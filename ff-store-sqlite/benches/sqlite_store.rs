//! SqliteStore figures, each beside its floor measured in the same run.
//!
//! * `sqlite_cycle`: a durable claim + complete (`start_operation` +
//!   `complete_operation` on a fresh key, default `synchronous = NORMAL`)
//!   vs one bare WAL transaction inserting one row, with `synchronous =
//!   NORMAL` and with `FULL`.
//! * `sqlite_lookup`: `load` of an existing key at 100 and 100,000 records.
//! * `sqlite_stats` and `sqlite_cleanup`: at 10,000 and 100,000 records.
//!
//! Run: `cargo bench -p ff-store-sqlite --bench sqlite_store`, then
//! `python3 scripts/bench-report.py sqlite_cycle sqlite_lookup sqlite_stats sqlite_cleanup`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ff_conformance::store::sample_record;
use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_store_sqlite::SqliteStore;
use ff_traits::{IdempotencyStorage, RecordKey, RecordStatus, Timestamp};
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

/// Creates `n` finished records through the store (setup only).
fn fill(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    n: u32,
    op: &str,
) -> (SqliteStore, Vec<RecordKey>) {
    let store = SqliteStore::open(path).expect("open");
    let old = Timestamp::now().saturating_sub(Duration::from_secs(7_200));
    let keys = rt.block_on(async {
        let mut keys = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut r = sample_record(op, i, old);
            r.status = RecordStatus::Completed;
            r.ended_at = Some(old);
            r.result = Some(json!({"worktree": format!("wt-{i}")}));
            keys.push(store.create(r).await.expect("create").key);
        }
        keys
    });
    (store, keys)
}

fn bare_connection(path: &Path, synchronous: &str) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).expect("open");
    c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .expect("wal");
    c.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, body TEXT NOT NULL);"
    ))
    .expect("setup");
    c
}

fn cycle(c: &mut Criterion) {
    let rt = ff_testkit::runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(tmp.path().join("cycle.sqlite3")).expect("open");
    let manager = IdempotencyManager::new(store, ManagerConfig::default());
    let body = serde_json::to_string(&sample_record("floor", 0, Timestamp::now())).expect("json");
    let normal = bare_connection(&tmp.path().join("normal.sqlite3"), "NORMAL");
    let full = bare_connection(&tmp.path().join("full.sqlite3"), "FULL");
    let mut g = c.benchmark_group("sqlite_cycle");
    g.bench_function("claim_complete", |b| {
        b.iter_custom(|iters| rt.block_on(ff_testkit::time_claim_complete(&manager, iters)));
    });
    let mut k = 0i64;
    g.bench_function("baseline_wal_insert_normal", |b| {
        b.iter(|| {
            k += 1;
            normal
                .execute(
                    "INSERT INTO t (k, body) VALUES (?1, ?2)",
                    rusqlite::params![k, body],
                )
                .expect("insert")
        });
    });
    g.bench_function("baseline_wal_insert_full", |b| {
        b.iter(|| {
            k += 1;
            full.execute(
                "INSERT INTO t (k, body) VALUES (?1, ?2)",
                rusqlite::params![k, body],
            )
            .expect("insert")
        });
    });
    g.finish();
}

fn at_scale(c: &mut Criterion) {
    let rt = ff_testkit::runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (small, small_keys) = fill(&rt, &tmp.path().join("small.sqlite3"), 100, "lookup");
    let (large, large_keys) = fill(
        &rt,
        &tmp.path().join("large.sqlite3"),
        size(100_000),
        "lookup",
    );
    let (mid, _) = fill(&rt, &tmp.path().join("mid.sqlite3"), size(10_000), "lookup");
    // Cleanup destroys its input: each round works on a copy of a template
    // filled once (closed first, so its WAL is checkpointed into the file).
    let templates: Vec<(u32, std::path::PathBuf)> = [10_000u32, 100_000]
        .into_iter()
        .map(|full| {
            let n = size(full);
            let path = tmp.path().join(format!("template-{full}.sqlite3"));
            drop(fill(&rt, &path, n, "cleanup"));
            (full, path)
        })
        .collect();
    let mut g = c.benchmark_group("sqlite_lookup");
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

    let mut g = c.benchmark_group("sqlite_stats");
    g.sample_size(10);
    g.bench_function("stats_10000", |b| {
        b.iter(|| rt.block_on(mid.stats()).expect("stats"))
    });
    g.bench_function("stats_100000", |b| {
        b.iter(|| rt.block_on(large.stats()).expect("stats"))
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite_cleanup");
    g.sample_size(10);
    for (n, template) in &templates {
        let n = *n;
        g.bench_function(format!("cleanup_{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for round in 0..iters {
                    let path = tmp.path().join(format!(
                        "cleanup-{n}-{round}-{}.sqlite3",
                        ff_traits::identity::unique_id()
                    ));
                    std::fs::copy(template, &path).expect("copy template");
                    let s = SqliteStore::open(&path).expect("open copy");
                    let started = Instant::now();
                    let removed = rt
                        .block_on(s.remove_finished_before(Timestamp::now()))
                        .expect("cleanup");
                    total += started.elapsed();
                    assert_eq!(removed, u64::from(size(n)));
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = cycle, at_scale
}
criterion_main!(benches);

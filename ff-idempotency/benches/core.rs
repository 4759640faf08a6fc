//! Core figures of ff-traits keys and ff-idempotency, each beside its raw baseline in the same run.
//!
//! * `key/*`: canonical key of the README's example vs the floor (SHA-256 + hex
//!   of the same canonical bytes) and vs the original's approach (hash of
//!   plain, non-canonical `serde_json` text).
//! * `memory_cycle/*`: should_execute + start + complete on the in-memory
//!   store vs the bare work underneath (the same map reads and writes on a
//!   `Mutex<HashMap>`).
//!
//! Run: `cargo bench -p ff-idempotency --bench core`, then
//! `python3 scripts/bench-report.py key memory_cycle`.

#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_traits::{IdempotencyKey, IdempotencyStorage, MemoryStore, hex_lower};
use serde_json::json;
use sha2::{Digest, Sha256};

fn seed_key() -> IdempotencyKey {
    IdempotencyKey::new(
        "createWorktree",
        json!({"issueId": "123", "path": "/project"}),
        json!({"basePath": ".worktrees"}),
    )
}

fn keys(c: &mut Criterion) {
    let key = seed_key();
    let canonical = key.canonical_json().expect("canonical");
    let mut g = c.benchmark_group("key");
    g.bench_function("record_key", |b| {
        b.iter(|| black_box(&key).record_key().expect("key"));
    });
    g.bench_function("baseline_sha256_hex", |b| {
        b.iter(|| hex_lower(&Sha256::digest(black_box(canonical.as_bytes()))));
    });
    g.bench_function("baseline_noncanonical_json_sha256", |b| {
        b.iter(|| {
            let text = serde_json::to_string(black_box(&key)).expect("json");
            hex_lower(&Sha256::digest(text.as_bytes()))
        });
    });
    g.finish();
}

fn memory_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let manager = IdempotencyManager::new(MemoryStore::new(), ManagerConfig::default());
    let mut g = c.benchmark_group("memory_cycle");
    g.bench_function("should_start_complete", |b| {
        b.iter_custom(|iters| {
            // One runtime entry for the whole batch: what is timed is the
            // manager's work, not the harness's block_on.
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let key = IdempotencyKey::new(
                        "createWorktree",
                        json!({"issueId": i.to_string(), "path": "/project"}),
                        json!({"basePath": ".worktrees"}),
                    );
                    let started = Instant::now();
                    let d = manager.should_execute(&key).await.expect("decide");
                    assert!(d.execute);
                    let Start::Claimed(claim) =
                        manager.start_operation(&key, None).await.expect("start")
                    else {
                        unreachable!("fresh key");
                    };
                    manager
                        .complete_operation(&claim, json!({"ok": true}))
                        .await
                        .expect("complete");
                    total += started.elapsed();
                    // Keep the store small; not timed.
                    let r = manager
                        .store()
                        .load(&claim.key)
                        .await
                        .expect("load")
                        .expect("record");
                    manager
                        .store()
                        .remove(&claim.key, r.revision)
                        .await
                        .expect("remove");
                }
                total
            })
        });
    });
    // The floor: the map operations the cycle needs (read; insert-if-absent;
    // read + replace), on the same kind of map, with values of the same size.
    let map: Mutex<HashMap<String, Vec<u8>>> = Mutex::new(HashMap::new());
    let value = vec![0u8; 512];
    g.bench_function("baseline_mutex_hashmap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let k = format!("{i:064x}");
                let started = Instant::now();
                {
                    let m = map.lock().expect("mutex");
                    black_box(m.get(&k));
                }
                {
                    let mut m = map.lock().expect("mutex");
                    m.entry(k.clone()).or_insert_with(|| value.clone());
                }
                {
                    let mut m = map.lock().expect("mutex");
                    let v = m.get(&k).cloned();
                    m.insert(k.clone(), v.unwrap_or_default());
                }
                total += started.elapsed();
                map.lock().expect("mutex").remove(&k);
            }
            total
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
    targets = keys, memory_cycle
}
criterion_main!(benches);

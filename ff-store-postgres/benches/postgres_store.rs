//! PostgresStore against bare PostgreSQL statements on a local cluster this
//! bench starts (fsync on), in the same run, interleaved block by block:
//!
//! 1. **Claim + complete** (`start_operation` + `complete_operation` on a
//!    fresh key: a conditional create, and a swap conditioned on the
//!    revision and the claim) vs two bare statements on one connection:
//!    `INSERT … ON CONFLICT DO NOTHING` of a row of the same size and
//!    `UPDATE … WHERE key = $1 AND revision = $2`. Beside them the floor:
//!    this store's two statements, on its own table, sent bare.
//! 2. **At 100,000 records**: `stats`, a cleanup that finds nothing to
//!    remove, and a scan of the pending records, beside the bare
//!    `SELECT count(*)` of the table.
//!
//! Run: `cargo bench -p ff-store-postgres --bench postgres_store`. Without
//! `--bench` (under `cargo test`) it runs a few rounds as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_store_postgres::PostgresStore;
use ff_testkit::bench::{median, micros};
use ff_testkit::postgres::PgServer;
use ff_traits::{IdempotencyStorage, RecordStatus, ScanFilter, Timestamp};
use tokio_postgres::types::Type;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(server) = PgServer::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (blocks, per_block, records) = if full {
        (20u32, 200u32, 100_000i64)
    } else {
        (2, 10, 1_000)
    };
    rt.block_on(async {
        let store = PostgresStore::open(&format!("{}?schema=bench", server.url()))
            .await
            .expect("store");
        let manager = IdempotencyManager::new(store.clone(), ManagerConfig::default());
        let (bare, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .expect("bare connection");
        tokio::spawn(connection);
        bare.batch_execute(
            "CREATE TABLE bench.bare (key text PRIMARY KEY, revision bigint NOT NULL, body text NOT NULL)",
        )
        .await
        .expect("bare table");
        // A body the size of a completed record's.
        let body = "x".repeat(420);
        let (mut ours, mut base, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        // This store's own two statements on its own table, sent bare (the
        // create, and the swap conditioned on the revision and the claim):
        // the floor of its schema (its columns and indexes), without the
        // client and the manager.
        let record = format!(
            "{{\"key\":\"K\",\"owner\":{{\"claim_id\":\"c\"}},\"pad\":\"{}\"}}",
            "x".repeat(380)
        );
        let mut n = 0u64;
        for _ in 0..blocks {
            ours.push(ff_testkit::time_claim_complete(&manager, u64::from(per_block)).await / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                n += 1;
                let key = format!("bare-{n}");
                bare.execute_typed(
                    "INSERT INTO bench.bare (key, revision, body) VALUES ($1, 1, $2) ON CONFLICT DO NOTHING",
                    &[(&key, Type::TEXT), (&body, Type::TEXT)],
                )
                .await
                .expect("insert");
                bare.execute_typed(
                    "UPDATE bench.bare SET revision = revision + 1, body = $3 WHERE key = $1 AND revision = $2",
                    &[(&key, Type::TEXT), (&1i64, Type::INT8), (&body, Type::TEXT)],
                )
                .await
                .expect("update");
            }
            base.push(t.elapsed() / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                n += 1;
                let key = format!("{n:064x}");
                let body = record.replace('K', &key);
                bare.execute_typed(
                    "INSERT INTO bench.records (key, revision, operation, status, last_activity, duration_ms, body)
                     VALUES ($1, 1, 'bench', 'pending', 1, NULL, $2::json) ON CONFLICT (key) DO NOTHING",
                    &[(&key, Type::TEXT), (&body, Type::TEXT)],
                )
                .await
                .expect("insert");
                bare.query_typed(
                    "UPDATE bench.records SET revision = revision + 1, operation = 'bench', status = 'completed',
                         last_activity = 2, duration_ms = 1, body = $3::json
                     WHERE key = $1 AND revision = $2 AND valid
                       AND ($4::text IS NULL OR body -> 'owner' ->> 'claim_id' = $4)
                     RETURNING revision",
                    &[(&key, Type::TEXT), (&1i64, Type::INT8), (&body, Type::TEXT), (&"c", Type::TEXT)],
                )
                .await
                .expect("update");
            }
            floor.push(t.elapsed() / per_block);
        }
        let (o, b, f) = (median(&mut ours), median(&mut base), median(&mut floor));
        println!("## ff-store-postgres vs bare PostgreSQL, local cluster (fsync on)");
        println!(
            "claim + complete: {} vs bare INSERT ON CONFLICT DO NOTHING + conditional UPDATE {}: {:.2}x; \
             this store's two statements (create, owned swap) on its own table sent bare {} ({:.2}x the bare pair; ours {:.2}x them)",
            micros(o),
            micros(b),
            o.as_secs_f64() / b.as_secs_f64(),
            micros(f),
            f.as_secs_f64() / b.as_secs_f64(),
            o.as_secs_f64() / f.as_secs_f64()
        );

        // 2. At scale: completed records, a tenth of them pending.
        let completed = manager
            .store()
            .scan(&ScanFilter::default())
            .await
            .expect("scan")
            .records
            .into_iter()
            .next()
            .expect("a record");
        let template = serde_json::to_string(&completed).expect("json");
        bare.execute_typed(
            "INSERT INTO bench.records (key, revision, operation, status, last_activity, duration_ms, body)
             SELECT k, 1, 'bench', CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'completed' END,
                    $2 + i, 5, replace($1, $4, k)::json
             FROM generate_series(1, $3) AS i,
                  LATERAL (SELECT encode(sha256(('gen-' || i)::bytea), 'hex') AS k) AS g",
            &[
                (&template, Type::TEXT),
                (&i64::try_from(Timestamp::now().as_millis()).unwrap_or(0), Type::INT8),
                (&records, Type::INT8),
                (&completed.key.as_str(), Type::TEXT),
            ],
        )
        .await
        .expect("fill");
        bare.batch_execute("ANALYZE bench.records").await.expect("analyze");
        let time = |d: Duration| micros(d);
        let (mut stats, mut cleanup, mut pending, mut count) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let s = store.stats().await.expect("stats");
            stats.push(t.elapsed());
            assert!(s.total >= u64::try_from(records).unwrap_or(0));
            let t = Instant::now();
            let removed = store
                .remove_finished_before(Timestamp::from_millis(0))
                .await
                .expect("cleanup");
            cleanup.push(t.elapsed());
            assert_eq!(removed, 0);
            let t = Instant::now();
            let scan = store
                .scan(&ScanFilter::default().status(RecordStatus::Pending))
                .await
                .expect("scan");
            pending.push(t.elapsed());
            assert!(!scan.records.is_empty());
            let t = Instant::now();
            bare.query_typed("SELECT count(*) FROM bench.records", &[])
                .await
                .expect("count");
            count.push(t.elapsed());
        }
        println!(
            "at {records} records: stats {}, a cleanup that removes nothing {}, a scan of the pending \
             tenth {}; bare SELECT count(*) {}",
            time(median(&mut stats)),
            time(median(&mut cleanup)),
            time(median(&mut pending)),
            time(median(&mut count))
        );
    });
}

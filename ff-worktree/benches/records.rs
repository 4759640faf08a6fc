//! Record housekeeping at scale, on the embedded default (file lock +
//! SQLite store), each figure beside the bare SQL that does the same work
//! on the same file, interleaved round by round:
//!
//! * stats: what `ff stats` asks (`IdempotencyManager::stats`) vs one bare
//!   `SELECT status, count(*) FROM records GROUP BY status`.
//! * gc: what `ff gc --max-age 0` does in a repository
//!   (`WorktreeManager::cleanup_idempotency_records`: a scan, then each
//!   record removed by a conditional write, so a record changed meanwhile
//!   is not judged on stale data), and the store's own bulk removal
//!   (`remove_finished_before`, what `ff gc` does outside a repository), vs
//!   one bare `DELETE FROM records WHERE status != 'pending'` transaction.
//!   Each round works on a fresh copy of one filled file.
//!
//! Run: `cargo bench -p ff-worktree --bench records` (100,000 records;
//! `FF_RECORDS=N` for another size). Without `--bench` (under `cargo test`)
//! it runs once on 300 records as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use ff_conformance::store::sample_record;
use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_testkit::bench::median;
use ff_traits::{IdempotencyStorage, RecordStatus, Timestamp};
use ff_worktree::{WorktreeConfig, WorktreeManager};

/// Operations the filled records are of, as `ff once` keys name them.
const OPERATIONS: [&str; 4] = ["once:build", "once:test", "once:deploy", "once:lint"];

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// `n` finished records, a day old (2 % failed, the rest completed),
/// written through the store, then the store closed so its WAL is
/// checkpointed into the file.
async fn fill(path: &Path, n: u32) {
    let store = SqliteStore::open(path).expect("open");
    let old = Timestamp::now().saturating_sub(Duration::from_secs(86_400));
    for i in 0..n {
        let mut r = sample_record(OPERATIONS[i as usize % OPERATIONS.len()], i, old);
        r.status = if i % 50 == 0 {
            RecordStatus::Failed
        } else {
            RecordStatus::Completed
        };
        r.ended_at = Some(old);
        r.result = Some(serde_json::json!({"exit": 0}));
        store.create(r).await.expect("create");
    }
}

fn bare(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).expect("open");
    c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .expect("wal");
    c.execute_batch("PRAGMA synchronous = NORMAL")
        .expect("synchronous");
    c
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u32 = std::env::var("FF_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 100_000 } else { 300 });
    let (stat_rounds, gc_rounds) = if full { (31, 5) } else { (1, 1) };
    let rt = ff_testkit::runtime();
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = ff_testkit::git::TestRepo::new();
        let template = tmp.path().join("template.sqlite3");
        let filling = Instant::now();
        fill(&template, n).await;
        println!(
            "filled {n} records in {:.1} s",
            filling.elapsed().as_secs_f64()
        );
        let open = |state: std::path::PathBuf| {
            let repo = repo.path().to_owned();
            async move {
                WorktreeManager::open(
                    WorktreeConfig::new(&repo),
                    FileLockProvider::new(state.join("locks")),
                    SqliteStore::open(state.join("ff.sqlite3")).expect("store"),
                )
                .await
                .expect("open")
            }
        };
        let copy = |name: String| {
            let state = tmp.path().join(name);
            std::fs::create_dir_all(&state).expect("state");
            std::fs::copy(&template, state.join("ff.sqlite3")).expect("copy");
            state
        };

        // stats: the same file, read by both.
        let stats_state = copy("stats".into());
        let records = IdempotencyManager::new(
            SqliteStore::open(stats_state.join("ff.sqlite3")).expect("store"),
            ManagerConfig::default(),
        );
        let conn = bare(&stats_state.join("ff.sqlite3"));
        let (mut ours, mut base, mut same) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..stat_rounds {
            let t = Instant::now();
            let groups = conn
                .prepare_cached(
                    "SELECT status, operation, valid, count(*), total(duration_ms)
                     FROM records GROUP BY status, operation, valid",
                )
                .expect("prepare")
                .query_map([], |r| r.get::<_, i64>(3))
                .expect("query")
                .count();
            same.push(t.elapsed());
            assert!(groups > 0);
            let t = Instant::now();
            let s = records.stats().await.expect("stats");
            ours.push(t.elapsed());
            assert_eq!(s.total, u64::from(n));
            let t = Instant::now();
            let counted: i64 = conn
                .prepare_cached("SELECT status, count(*) FROM records GROUP BY status")
                .expect("prepare")
                .query_map([], |r| r.get::<_, i64>(1))
                .expect("query")
                .map(|c| c.expect("row"))
                .sum();
            base.push(t.elapsed());
            assert_eq!(counted, i64::from(n));
        }
        let (stats, stats_bare) = (median(&mut ours), median(&mut base));
        let stats_same = median(&mut same);

        // gc: each round on fresh copies, opened before the clock starts.
        let (mut manager_gc, mut store_gc, mut bare_gc) = (Vec::new(), Vec::new(), Vec::new());
        let mut scans = Vec::new();
        for round in 0..gc_rounds {
            let t = Instant::now();
            let scan = records.store().scan(&ff_traits::ScanFilter::default()).await;
            scans.push(t.elapsed());
            assert_eq!(scan.expect("scan").records.len(), n as usize);

            let m = open(copy(format!("gc-m-{round}"))).await;
            let t = Instant::now();
            let removed = m.cleanup_idempotency_records(Duration::ZERO).await;
            manager_gc.push(t.elapsed());
            assert_eq!(removed.expect("gc"), u64::from(n));
            drop(m);

            let state = copy(format!("gc-s-{round}"));
            let store = SqliteStore::open(state.join("ff.sqlite3")).expect("store");
            let t = Instant::now();
            let removed = store.remove_finished_before(Timestamp::now()).await;
            store_gc.push(t.elapsed());
            assert_eq!(removed.expect("bulk"), u64::from(n));
            drop(store);

            let state = copy(format!("gc-b-{round}"));
            let mut conn = bare(&state.join("ff.sqlite3"));
            let t = Instant::now();
            let tx = conn.transaction().expect("begin");
            let removed = tx
                .execute("DELETE FROM records WHERE status != 'pending'", [])
                .expect("delete");
            tx.commit().expect("commit");
            bare_gc.push(t.elapsed());
            assert_eq!(removed, n as usize);
        }
        let scan = median(&mut scans);
        let (mgc, sgc, bgc) = (
            median(&mut manager_gc),
            median(&mut store_gc),
            median(&mut bare_gc),
        );
        println!(
            "## Record housekeeping at {n} records (file lock + SQLite), medians of \
             {stat_rounds} (stats) and {gc_rounds} (gc) interleaved rounds"
        );
        println!("| | ff | bare SQL (same file) | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| stats (`ff stats`) | {} | {} (`SELECT status, count(*) … GROUP BY status`) | {:.2}× |",
            ms(stats),
            ms(stats_bare),
            ratio(stats, stats_bare)
        );
        println!(
            "| stats, beside the store's own query run bare | {} | {} | {:.2}× |",
            ms(stats),
            ms(stats_same),
            ratio(stats, stats_same)
        );
        println!(
            "| gc in a repository (`ff gc --max-age 0`) | {} | {} (one `DELETE … WHERE status != 'pending'`) | {:.2}× |",
            ms(mgc),
            ms(bgc),
            ratio(mgc, bgc)
        );
        println!(
            "| of which: the scan of every record (`scan`) | {} | | |",
            ms(scan)
        );
        println!(
            "| gc outside a repository (store's bulk removal) | {} | {} | {:.2}× |",
            ms(sgc),
            ms(bgc),
            ratio(sgc, bgc)
        );
    });
}

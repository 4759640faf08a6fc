//! PostgresLockProvider against bare PostgreSQL round trips on a local
//! cluster this bench starts (fsync on, as the tests run it), in the same
//! run, interleaved block by block:
//!
//! 1. **Uncontended acquire + release** vs the bare `INSERT … ON CONFLICT
//!    DO NOTHING` + `DELETE` round trips on one connection (each its own
//!    transaction, as a grant and a release are): median per pair and the
//!    ratio. Beside them the floor of this design: the two functions
//!    (`ff_lock_acquire`, `ff_lock_release`) called bare, without the
//!    client's work (pool, holder JSON, watchdog).
//! 2. **Hand-off**: a client blocked in `acquire` while another holds the
//!    lock (over a direct connection, where `LISTEN` works); time from
//!    just before the holder's release to just after the waiter's grant.
//!    Beside it, the bare `NOTIFY` → `LISTEN` delivery time.
//! 3. **Through pgbouncer** (transaction mode): acquire + release vs the
//!    same bare pair through the bouncer.
//!
//! Run: `cargo bench -p ff-lock-postgres --bench postgres_lock`. Without
//! `--bench` (under `cargo test`) it runs a few rounds as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_testkit::bench::{median, micros};
use ff_testkit::postgres::{PgBouncer, PgServer};
use ff_traits::{LockName, LockOptions, LockProvider};
use futures_util::StreamExt as _;
use tokio_postgres::types::Type;

async fn bare(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("bare connection");
    tokio::spawn(connection);
    client
}

async fn bare_pair(c: &tokio_postgres::Client, schema: &str) {
    c.execute_typed(
        &format!("INSERT INTO {schema}.bare (name) VALUES ($1) ON CONFLICT DO NOTHING"),
        &[(&"u", Type::TEXT)],
    )
    .await
    .expect("insert");
    c.execute_typed(
        &format!("DELETE FROM {schema}.bare WHERE name = $1"),
        &[(&"u", Type::TEXT)],
    )
    .await
    .expect("delete");
}

/// Interleaved blocks of ours and the bare pair; (ours, bare) medians.
async fn versus_bare(
    ours: &PostgresLockProvider,
    bare_client: &tokio_postgres::Client,
    schema: &str,
    blocks: u32,
    per_block: u32,
    floor: Option<&tokio_postgres::Client>,
) -> (Duration, Duration, Option<Duration>) {
    let options = LockOptions::default();
    let name = LockName::new("u").expect("lock name");
    let (mut cand, mut base, mut funcs) = (Vec::new(), Vec::new(), Vec::new());
    let json = serde_json::to_string(&ff_traits::LockInfo::for_current_process(
        "f",
        ff_traits::FencingToken(0),
        &options,
        ff_traits::Timestamp::now(),
    ))
    .expect("holder JSON");
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..per_block {
            let g = ours.acquire(&name, &options).await.expect("acquire");
            g.release().await.expect("release");
        }
        cand.push(t.elapsed() / per_block);
        let t = Instant::now();
        for _ in 0..per_block {
            bare_pair(bare_client, schema).await;
        }
        base.push(t.elapsed() / per_block);
        if let Some(c) = floor {
            let t = Instant::now();
            for _ in 0..per_block {
                let holder = ff_traits::identity::unique_id();
                c.query_typed(
                    &format!(
                        "SELECT granted FROM {schema}.ff_lock_acquire($1, $2, 'X', 30000, $3, NULL, NULL, NULL, NULL)"
                    ),
                    &[(&"f", Type::TEXT), (&holder.as_str(), Type::TEXT), (&json.as_str(), Type::TEXT)],
                )
                .await
                .expect("bare acquire function");
                c.query_typed(
                    &format!("SELECT {schema}.ff_lock_release($1, $2, 'bench')"),
                    &[(&"f", Type::TEXT), (&holder.as_str(), Type::TEXT)],
                )
                .await
                .expect("bare release function");
            }
            funcs.push(t.elapsed() / per_block);
        }
    }
    let f = (!funcs.is_empty()).then(|| median(&mut funcs));
    (median(&mut cand), median(&mut base), f)
}

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
    let (blocks, per_block, handoffs) = if full { (20, 200, 300) } else { (2, 10, 5) };
    let schema = "bench";
    let url = format!("{}?schema={schema}", server.url());
    rt.block_on(async {
        let ours = PostgresLockProvider::connect(PostgresLockConfig::new(&url))
            .await
            .expect("connect");
        let direct = bare(&server.url()).await;
        direct
            .batch_execute(&format!("CREATE TABLE {schema}.bare (name text PRIMARY KEY)"))
            .await
            .expect("bare table");
        // 1. Uncontended.
        let (c, b, f) = versus_bare(&ours, &direct, schema, blocks, per_block, Some(&direct)).await;
        let f = f.expect("floor");
        println!("## ff-lock-postgres vs bare PostgreSQL, local cluster (fsync on)");
        println!(
            "uncontended acquire + release: {} vs bare INSERT ON CONFLICT DO NOTHING + DELETE {}: {:.2}x; \
             the two functions called bare {} ({:.2}x the bare pair; ours {:.2}x them)",
            micros(c),
            micros(b),
            c.as_secs_f64() / b.as_secs_f64(),
            micros(f),
            f.as_secs_f64() / b.as_secs_f64(),
            c.as_secs_f64() / f.as_secs_f64()
        );

        // 2. Hand-off, over a direct connection (LISTEN works).
        let name = LockName::new("h").expect("lock name");
        let options = LockOptions::default().with_timeout(Duration::from_secs(30));
        let (mut handoff, mut notify) = (Vec::new(), Vec::new());
        let (listener, mut conn) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .expect("listen connection");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(m)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(_) = m {
                    let _ = tx.send(Instant::now());
                }
            }
        });
        listener.batch_execute("LISTEN bare_bench").await.expect("LISTEN");
        for _ in 0..handoffs {
            let held = ours.acquire(&name, &options).await.expect("hold");
            let (notice, waiting) = ff_traits::WaitNotice::first();
            let (w, n, o) = (ours.clone(), name.clone(), options.clone().with_wait_notice(notice));
            let waiter = tokio::spawn(async move {
                let g = w.acquire(&n, &o).await.expect("waiter");
                let at = Instant::now();
                g.release().await.expect("release");
                at
            });
            waiting.await.expect("in place");
            let t = Instant::now();
            held.release().await.expect("release");
            let granted = waiter.await.expect("join");
            handoff.push(granted - t);
            let t = Instant::now();
            direct
                .batch_execute("NOTIFY bare_bench")
                .await
                .expect("NOTIFY");
            let got = rx.recv().await.expect("delivered");
            notify.push(got - t);
        }
        let (h, n) = (median(&mut handoff), median(&mut notify));
        println!(
            "hand-off to a waiter (release -> waiter's grant, LISTEN on a direct connection): median {} \
             ({} rounds, max {}); bare NOTIFY -> LISTEN delivery {}",
            micros(h),
            handoffs,
            micros(handoff.iter().copied().max().unwrap_or_default()),
            micros(n)
        );

        // 3. Through pgbouncer in transaction mode.
        if let Some(bouncer) = PgBouncer::start(&server) {
            let url = format!("{}?schema={schema}", bouncer.url());
            let ours = PostgresLockProvider::connect(PostgresLockConfig::new(&url))
                .await
                .expect("connect through pgbouncer");
            let through = bare(&bouncer.url()).await;
            let (c, b, _) = versus_bare(&ours, &through, schema, blocks, per_block, None).await;
            println!(
                "through pgbouncer (transaction mode): acquire + release {} vs the bare pair through it {}: {:.2}x",
                micros(c),
                micros(b),
                c.as_secs_f64() / b.as_secs_f64()
            );
        }
    });
}

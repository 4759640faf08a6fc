//! RedisLockProvider against bare Redis round trips on a local
//! `redis-server` this bench starts, in the same run, interleaved block by
//! block:
//!
//! 1. **Uncontended acquire + release** vs bare `SET key v NX PX 30000` +
//!    `DEL key` on one connection: median per pair and the ratio. Beside
//!    them the floor of any fenced lock with a compare-and-delete release:
//!    this crate's two Lua scripts sent bare (`EVALSHA`, a value of the same
//!    size), without the client's work.
//!    And the shared (reader) pair and a semaphore permit's pair beside the
//!    exclusive one.
//! 2. **Hand-off**: a client blocked in `acquire` while another holds the
//!    lock; time from just before the holder's release to just after the
//!    waiter's grant (separate connections, one process). Beside it, the
//!    bare `PUBLISH` → subscriber delivery time, the floor of any wake-up.
//! 3. **Contended throughput**: 4 processes loop acquire + release on one
//!    lock for a fixed time; acquisitions per second and each one's share.
//! 4. **Same-host takeover**: a holder process is SIGKILLed while a client
//!    of this process waits; time from the kill to the waiter's grant.
//!    Beside it, the bare floor of noticing a death: kill to `waitpid`
//!    returning for a child killed the same way; and the TTL a waiter on
//!    another host (or before takeover existed) waits instead.
//!
//! 5. **TLS**: uncontended acquire + release over TLS (`rediss://`, a
//!    second, TLS-only server with the bench's own CA) vs bare
//!    `SET NX PX` + `DEL` over TLS on one connection, interleaved.
//! 6. **Cluster**: the same on a cluster of three masters, beside bare
//!    `SET NX PX` + `DEL` through the redis crate's cluster client.
//!
//! Run: `cargo bench -p ff-lock-redis --bench redis_lock`. Without
//! `--bench` (under `cargo test`) it runs a few rounds as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::bench::{median, micros};
use ff_testkit::redis::RedisServer;
use ff_traits::{LockOptions, LockProvider};
use futures_util::StreamExt;

const ROLE: &str = "FF_BENCH_ROLE";
/// Set in a holder child of the takeover bench: `url␟prefix`.
const HOLD: &str = "FF_BENCH_HOLD";

async fn provider(url: &str, prefix: &str) -> RedisLockProvider {
    RedisLockProvider::connect(RedisLockConfig::new(url).with_prefix(prefix))
        .await
        .expect("connect")
}

/// Child of the contention test: loops until the deadline, prints its count.
fn contend(role: &str) {
    let parts: Vec<&str> = role.split('\u{1f}').collect();
    let (url, prefix, until_ms) = (
        parts[0],
        parts[1],
        parts[2].parse::<u128>().expect("deadline"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let count = rt.block_on(async {
        let p = provider(url, prefix).await;
        let options = LockOptions::default().with_timeout(Duration::from_secs(30));
        let mut n = 0u64;
        while now_ms() < until_ms {
            let g = p
                .acquire(
                    &ff_traits::LockName::new("contended").expect("lock name"),
                    &options,
                )
                .await
                .expect("acquire");
            g.release().await.expect("release");
            n += 1;
        }
        n
    });
    println!("{count}");
}

/// Child of the takeover bench: takes the lock, says so, holds it until
/// killed.
fn hold(role: &str) {
    let (url, prefix) = role.split_once('\u{1f}').expect("url and prefix");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let p = provider(url, prefix).await;
        let _guard = p
            .acquire(
                &ff_traits::LockName::new("t").expect("lock name"),
                &LockOptions::default(),
            )
            .await
            .expect("hold");
        println!("held");
        std::future::pending::<()>().await;
    });
}

/// Rounds of SIGKILL → same-host waiter's grant, beside kill → `waitpid`.
async fn takeover(url: &str, rounds: usize) {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("bench binary");
    let waiter = provider(url, "bench:t:").await;
    let name = ff_traits::LockName::new("t").expect("lock name");
    let options = LockOptions::default().with_timeout(Duration::from_secs(60));
    let (mut taken, mut reaped) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut child = Command::new(&exe)
            .env(HOLD, [url, "bench:t:"].join("\u{1f}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn holder");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("holder speaks");
        assert_eq!(line.trim(), "held");
        let (w, n, o) = (waiter.clone(), name.clone(), options.clone());
        let waiting = tokio::spawn(async move {
            let g = w.acquire(&n, &o).await.expect("take over");
            let at = Instant::now();
            g.release().await.expect("release");
            at
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let killed_at = Instant::now();
        child.kill().expect("SIGKILL the holder");
        let granted_at = waiting.await.expect("waiter");
        taken.push(granted_at.saturating_duration_since(killed_at));
        child.wait().expect("reap");

        // The floor: how soon a parent learns its SIGKILLed child died.
        let mut bare = Command::new("sleep").arg("60").spawn().expect("sleep");
        let t = Instant::now();
        bare.kill().expect("kill");
        bare.wait().expect("wait");
        reaped.push(t.elapsed());
    }
    let (t, r) = (median(&mut taken), median(&mut reaped));
    let ttl = RedisLockConfig::new(url).max_ttl;
    println!(
        "same-host takeover, SIGKILL -> waiter's grant: median {} ({} rounds, max {}); bare kill -> waitpid {}; \
         without takeover a waiter waits the TTL, {} ({:.0}x the takeover)",
        micros(t),
        rounds,
        micros(taken.iter().copied().max().unwrap_or_default()),
        micros(r),
        ff_traits::fmt_duration(ttl),
        ttl.as_secs_f64() / t.as_secs_f64()
    );
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Our two scripts sent bare (acquire, then release by token), through
/// the same client as the bare pair: the floor of a fenced lock with a
/// compare-and-delete release. `base` is one hash tag, so on a cluster
/// the four keys share a slot as ours do.
async fn scripts_pair<C: redis::aio::ConnectionLike + Send>(
    bare: &mut C,
    base: &str,
    holder_json: &str,
) {
    static ACQUIRE: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(&ff_lock_redis::lua::ACQUIRE));
    static RELEASE: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(ff_lock_redis::lua::RELEASE));
    let token = ff_traits::identity::unique_id();
    let _: (i64, redis::Value) = ACQUIRE
        .key(base)
        .key(format!("{base}\x1ffence"))
        .key(format!("{base}\x1freaders"))
        .key(format!("{base}\x1fwriter"))
        .arg(&token)
        .arg(30_000)
        .arg(holder_json)
        .arg("")
        .arg("")
        .arg("")
        .invoke_async(bare)
        .await
        .expect("acquire script");
    let _: i64 = RELEASE
        .key(base)
        .arg(&token)
        .arg(format!("{base}:released"))
        .invoke_async(bare)
        .await
        .expect("release script");
}

fn holder_json() -> String {
    serde_json::to_string(&ff_traits::LockInfo::for_current_process(
        "u",
        ff_traits::FencingToken(0),
        &LockOptions::default(),
        ff_traits::Timestamp::now(),
    ))
    .expect("holder JSON")
}

/// The bare floor of a lock: `SET key v NX PX 30000` then `DEL key`.
async fn bare_pair<C: redis::aio::ConnectionLike + Send>(bare: &mut C, key: &str) {
    let _: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(bare)
        .await
        .expect("SET");
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(bare)
        .await
        .expect("DEL");
}

/// Blocks 5 and 6: acquire + release through `url` beside bare
/// `SET NX PX` + `DEL` on `bare` (the same deployment), interleaved.
async fn versus_bare<C: redis::aio::ConnectionLike + Send>(
    label: &str,
    url: &str,
    mut bare: C,
    blocks: u32,
    per_block: u32,
) {
    let ours = provider(url, "bench:v:").await;
    let options = LockOptions::default();
    let name = ff_traits::LockName::new("u").expect("lock name");
    let holder = holder_json();
    let (mut cand, mut base, mut scripts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..per_block {
            let g = ours.acquire(&name, &options).await.expect("acquire");
            g.release().await.expect("release");
        }
        cand.push(t.elapsed() / per_block);
        let t = Instant::now();
        for _ in 0..per_block {
            bare_pair(&mut bare, "bench:bare:v").await;
        }
        base.push(t.elapsed() / per_block);
        let t = Instant::now();
        for _ in 0..per_block {
            scripts_pair(&mut bare, "bench:bare:{vs}", &holder).await;
        }
        scripts.push(t.elapsed() / per_block);
    }
    let (c, b, s) = (median(&mut cand), median(&mut base), median(&mut scripts));
    println!(
        "{label}, uncontended acquire + release: {} vs bare SET NX PX + DEL {}: {:.2}x; \
         the same two scripts sent bare {} ({:.2}x SET + DEL; ours {:.2}x them)",
        micros(c),
        micros(b),
        c.as_secs_f64() / b.as_secs_f64(),
        micros(s),
        s.as_secs_f64() / b.as_secs_f64(),
        c.as_secs_f64() / s.as_secs_f64()
    );
}

/// Block 5: over TLS (a TLS-only server with the bench's own CA).
async fn tls_block(server: &RedisServer, blocks: u32, per_block: u32) {
    let ca = std::fs::read(&server.tls().expect("TLS").ca).expect("CA");
    let client = redis::Client::build_with_tls(
        server.url_without_files(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .expect("TLS client");
    let bare = client
        .get_multiplexed_async_connection()
        .await
        .expect("bare TLS connection");
    versus_bare("over TLS", &server.url(), bare, blocks, per_block).await;
}

/// Block 6: on a cluster of three masters, beside the redis crate's
/// cluster client.
async fn cluster_block(cluster: &ff_testkit::cluster::RedisCluster, blocks: u32, per_block: u32) {
    let url = cluster.url();
    let nodes: Vec<String> = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .map(|h| format!("redis://{h}"))
        .collect();
    let bare = redis::cluster::ClusterClient::new(nodes)
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("bare cluster connection");
    versus_bare("on a 3-master cluster", &url, bare, blocks, per_block).await;
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        contend(&role);
        return;
    }
    if let Ok(role) = std::env::var(HOLD) {
        hold(&role);
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let Some(server) = RedisServer::start_for_benchmarks() else {
        return;
    };
    let url = server.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (blocks, per_block, handoffs, contend_secs, takeovers) = if full {
        (20, 500, 1_000, 5u32, 40)
    } else {
        (2, 20, 20, 1u32, 3)
    };
    rt.block_on(async {
        // 1. Uncontended.
        let ours = provider(&url, "bench:u:").await;
        let client = redis::Client::open(url.as_str()).expect("client");
        let mut bare = client
            .get_multiplexed_async_connection()
            .await
            .expect("bare connection");
        let options = LockOptions::default();
        let holder_json = holder_json();
        let (mut cand, mut base, mut scripts) = (Vec::new(), Vec::new(), Vec::new());
        let (mut shared, mut permits) = (Vec::new(), Vec::new());
        let shared_options = options.clone().with_mode(ff_traits::LockMode::Shared);
        let permit_options = options.clone().with_permits(3);
        for _ in 0..blocks {
            let t = Instant::now();
            for _ in 0..per_block {
                let g = ours
                    .acquire(&ff_traits::LockName::new("p").expect("lock name"), &permit_options)
                    .await
                    .expect("acquire a permit");
                g.release().await.expect("release");
            }
            permits.push(t.elapsed() / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                let g = ours
                    .acquire(&ff_traits::LockName::new("r").expect("lock name"), &shared_options)
                    .await
                    .expect("acquire shared");
                g.release().await.expect("release");
            }
            shared.push(t.elapsed() / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                let g = ours.acquire(&ff_traits::LockName::new("u").expect("lock name"), &options).await.expect("acquire");
                g.release().await.expect("release");
            }
            cand.push(t.elapsed() / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                bare_pair(&mut bare, "bench:bare:u").await;
            }
            base.push(t.elapsed() / per_block);
            let t = Instant::now();
            for _ in 0..per_block {
                scripts_pair(&mut bare, "bench:bare:s", &holder_json).await;
            }
            scripts.push(t.elapsed() / per_block);
        }
        let (c, b, s) = (median(&mut cand), median(&mut base), median(&mut scripts));
        let r = median(&mut shared);
        let p = median(&mut permits);
        println!("## ff-lock-redis vs bare Redis, local redis-server");
        println!(
            "uncontended acquire + release: {} vs bare SET NX PX + DEL {}: {:.2}x; \
             the same two scripts sent bare {} ({:.2}x SET + DEL; ours {:.2}x them)",
            micros(c),
            micros(b),
            c.as_secs_f64() / b.as_secs_f64(),
            micros(s),
            s.as_secs_f64() / b.as_secs_f64(),
            c.as_secs_f64() / s.as_secs_f64()
        );
        println!(
            "shared acquire + release: {} = {:.2}x the exclusive pair; a semaphore permit (of 3): {} = {:.2}x",
            micros(r),
            r.as_secs_f64() / c.as_secs_f64(),
            micros(p),
            p.as_secs_f64() / c.as_secs_f64()
        );

        // 5 (run here, beside block 1). TLS.
        if let Some(tls_server) =
            RedisServer::start_tls_for_benchmarks(ff_testkit::redis::TlsSetup::default())
        {
            tls_block(&tls_server, blocks, per_block).await;
        }
        if let Some(cluster) = ff_testkit::cluster::RedisCluster::start() {
            cluster_block(&cluster, blocks, per_block).await;
        }

        // 2. Hand-off, and the bare PUBLISH → message floor.
        let holder = provider(&url, "bench:h:").await;
        let waiter = provider(&url, "bench:h:").await;
        let mut handoff = Vec::new();
        let mut publish = Vec::new();
        let mut sub = client.get_async_pubsub().await.expect("pubsub");
        sub.subscribe("bench:chan").await.expect("subscribe");
        let mut messages = sub.into_on_message();
        for _ in 0..handoffs {
            let g = holder.acquire(&ff_traits::LockName::new("h").expect("lock name"), &options).await.expect("hold");
            let w = waiter.clone();
            let opts = options.clone();
            let waiting = tokio::spawn(async move {
                let g = w.acquire(&ff_traits::LockName::new("h").expect("lock name"), &opts).await.expect("wait");
                let at = Instant::now();
                g.release().await.expect("release");
                at
            });
            // Let the waiter subscribe and block.
            tokio::time::sleep(Duration::from_millis(3)).await;
            let released_at = Instant::now();
            g.release().await.expect("release");
            let granted_at = waiting.await.expect("waiter");
            handoff.push(granted_at.saturating_duration_since(released_at));

            let sent = Instant::now();
            let _: i64 = redis::cmd("PUBLISH")
                .arg("bench:chan")
                .arg("x")
                .query_async(&mut bare)
                .await
                .expect("publish");
            let _ = messages.next().await;
            publish.push(sent.elapsed());
        }
        let mut sorted = handoff.clone();
        sorted.sort_unstable();
        let p99 = sorted[sorted.len() * 99 / 100];
        println!(
            "hand-off, release -> waiting client's grant: median {}, p99 {} ({} samples); bare PUBLISH -> message {}",
            micros(median(&mut handoff)),
            micros(p99),
            handoffs,
            micros(median(&mut publish))
        );

        // 4. Same-host takeover after SIGKILL.
        takeover(&url, takeovers).await;
    });

    // 3. Contention, 4 processes.
    let exe = std::env::current_exe().expect("bench binary");
    let until = now_ms() + 1_000 + u128::from(contend_secs) * 1_000;
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .env(
                    ROLE,
                    [url.as_str(), "bench:c:", &until.to_string()].join("\u{1f}"),
                )
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let counts: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0)
        })
        .collect();
    let total: u64 = counts.iter().sum();
    let min = counts.iter().copied().min().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let (rate, share) = (
        total as f64 / f64::from(contend_secs),
        min as f64 * 4.0 / total.max(1) as f64,
    );
    println!(
        "4 processes contending for {contend_secs} s: {rate:.0} acquisitions/s; counts {counts:?}; smallest share {:.0}% of an equal share",
        share * 100.0
    );
    drop(server);
}

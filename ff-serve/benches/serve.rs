//! The figures issue #19 asks for, each beside its raw baseline from the
//! same run, interleaved round by round:
//!
//! 1. **Scrape**: `GET /metrics` over loopback with 10,000 records in a
//!    SQLite store and 1,000 file locks held, against the bare backend
//!    reads it is made of (`locks()` + `stats()` + the pending scan).
//! 2. **Metrics overhead**: an uncontended file-lock acquire + release,
//!    with and without a Prometheus recorder installed (thread-local, so
//!    both run in one process, alternating).
//! 3. **Event latency**: from `acquire` returning (another provider on the
//!    same directory, as another process would be) to the `lock_acquired`
//!    event arriving on `/api/events`.
//!
//! 4. **Idle** (issue #33): CPU and resident memory of a quiet server with
//!    1,000 locks held, 100,000 records and 100 event clients, and the
//!    event latency then, with change feeds and with polling alone.
//!    `FF_IDLE_BACKEND=embedded|redis|postgres` picks the backends,
//!    `FF_IDLE_ONLY=feeds|polling` one server, `FF_IDLE_WINDOW_SECS` the
//!    quiet window (60 s), `FF_IDLE_WHOLE_READ_SECS` how often records are
//!    read whole after a change, `FF_IDLE_SOAK_SECS` a busy soak after it.
//!    On Redis and PostgreSQL it also prints their servers' own CPU, alone
//!    and while each `ff serve` runs.
//!
//! 5. **Operations** (issue #33): `GET /api/operations` pages at 100,000
//!    records in a SQLite store, first and deep, against the bare SQL read
//!    of the same page from the same file plus the HTTP round trip of a
//!    route that reads nothing (`/api/alerts`).
//!
//! Run: `cargo bench -p ff-serve --bench serve`. Without `--bench` (under
//! `cargo test`) it runs a few rounds on small numbers as a smoke test.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_lock_file::FileLockProvider;
use ff_metrics::Instrumented;
use ff_serve::{Backends, ServeConfig, Server};
use ff_store_sqlite::SqliteStore;
use ff_traits::{
    IdempotencyKey, IdempotencyStorage, LockName, LockOptions, LockProvider, RecordedError,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// `GET path` on a fresh connection; the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.1 200"),
        "{}",
        &body[..body.len().min(200)]
    );
    body
}

async fn fill<S: IdempotencyStorage + Clone + 'static>(store: S, records: usize) {
    // Eight writers at once: a server's round trips (Redis, PostgreSQL)
    // overlap; SQLite takes them one at a time anyway.
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let manager =
            IdempotencyManager::new(store.clone(), ManagerConfig::default().with_max_attempts(1));
        tasks.push(tokio::spawn(async move {
            for i in (w..records).step_by(writers) {
                let key = IdempotencyKey::new("bench", json!({"i": i}), json!({}));
                let Start::Claimed(claim) = manager.start_operation(&key, None).await.unwrap()
                else {
                    panic!("a new key");
                };
                match i % 50 {
                    0 => {}
                    1..=4 => {
                        manager
                            .fail_operation(
                                &claim,
                                RecordedError::new("bench", "failed on purpose", false),
                            )
                            .await
                            .unwrap();
                    }
                    _ => {
                        manager.complete_operation(&claim, json!(i)).await.unwrap();
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn scrape(full: bool) {
    let (records, locks, rounds) = if full {
        (10_000, 1_000, 31)
    } else {
        (200, 20, 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(FileLockProvider::new(dir.path().join("locks")));
    let store = Arc::new(SqliteStore::open(dir.path().join("records.db")).unwrap());
    let filling = Instant::now();
    fill(Arc::clone(&store), records).await;
    let mut held = Vec::new();
    for i in 0..locks {
        let name = LockName::new(format!("bench/lock-{i}")).unwrap();
        held.push(
            provider
                .acquire(&name, &LockOptions::default())
                .await
                .unwrap(),
        );
    }
    println!(
        "scrape: {records} records and {locks} held locks made in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let backends = Backends::new(provider.clone(), store.clone());
    let server = Server::new(backends, ServeConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    // The first look, so the watch's own reads are under way as in use.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = get(addr, "/metrics").await;
    assert!(text.contains(&format!("ff_locks_held {locks}")), "{text}");
    let pending_only = ff_traits::ScanFilter::default().status(ff_traits::RecordStatus::Pending);
    let (mut scraped, mut bare) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let started = Instant::now();
            if side == 0 {
                get(addr, "/metrics").await;
                scraped.push(started.elapsed());
            } else {
                let (l, s, p) = tokio::join!(
                    provider.locks(),
                    ff_traits::IdempotencyStorage::stats(&*store),
                    ff_traits::IdempotencyStorage::scan(&*store, &pending_only),
                );
                assert_eq!(l.unwrap().len(), locks);
                s.unwrap();
                p.unwrap();
                bare.push(started.elapsed());
            }
        }
    }
    let (s, b) = (median(scraped), median(bare));
    println!(
        "scrape: GET /metrics median {:.2} ms; bare backend reads {:.2} ms; ratio {:.2}x (goal: scrape <= 50 ms)",
        s.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        ratio(s, b)
    );
    serving.abort();
    drop(held);
}

/// `GET /api/operations` pages over 100,000 records against the bare SQL
/// read of the same page (rows read and their JSON parsed) plus the HTTP
/// round trip of a route that reads nothing.
async fn operations(full: bool) {
    let (records, rounds, page) = if full {
        (100_000, 31, 100)
    } else {
        (300, 3, 10)
    };
    // Within the completed ones (nine in ten).
    let deep = records * 8 / 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let filling = Instant::now();
    fill(Arc::clone(&store), records).await;
    println!(
        "operations: {records} records made in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let provider = Arc::new(FileLockProvider::new(dir.path().join("locks")));
    let server = Server::new(Backends::new(provider, store), ServeConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    // Until the server has read every record.
    let first = format!("/api/operations?status=completed&limit={page}");
    let far = format!("{first}&offset={deep}");
    let started = Instant::now();
    while !get(addr, &far).await.contains("\"key\"") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server never read the records"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let bare_page = |offset: usize| {
        let mut stmt = conn
            .prepare_cached(
                "SELECT body FROM records WHERE status = 'completed' LIMIT ?1 OFFSET ?2",
            )
            .unwrap();
        let rows: Vec<serde_json::Value> = stmt
            .query_map([page as i64, offset as i64], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|b| serde_json::from_str(&b.unwrap()).unwrap())
            .collect();
        assert_eq!(rows.len(), page);
    };
    let mut times: [Vec<Duration>; 5] = Default::default();
    for round in 0..rounds {
        let mut sides = [0, 1, 2, 3, 4];
        sides.rotate_left(round % 5);
        for side in sides {
            let t = Instant::now();
            match side {
                0 => drop(get(addr, &first).await),
                1 => drop(get(addr, &far).await),
                2 => bare_page(0),
                3 => bare_page(deep),
                _ => drop(get(addr, "/api/alerts").await),
            }
            times[side].push(t.elapsed());
        }
    }
    let [first_page, deep_page, bare_first, bare_deep, floor] = times.map(median);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "operations at {records} records, {rounds} interleaved rounds, medians: \
         HTTP round trip of /api/alerts {:.2} ms",
        ms(floor)
    );
    for (what, ours, bare) in [
        ("first page", first_page, bare_first),
        ("page at 80%", deep_page, bare_deep),
    ] {
        println!(
            "operations: {what} of {page}: GET /api/operations {:.2} ms; bare SQL page {:.2} ms \
             + round trip = {:.2} ms; ratio {:.2}x",
            ms(ours),
            ms(bare),
            ms(bare + floor),
            ratio(ours, bare + floor)
        );
    }
    serving.abort();
}

/// One child's measure: `n` acquire + release cycles after a warm-up,
/// with or without a global Prometheus recorder; prints ns per cycle.
fn overhead_child(with_recorder: bool, n: usize, dir: &std::path::Path) {
    if with_recorder {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).unwrap();
    }
    // Measured as the `ff` command opens it.
    let provider = Instrumented::new(FileLockProvider::new(dir));
    let name = LockName::new("bench").unwrap();
    let options = LockOptions::default().with_operation("bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let per_cycle = runtime.block_on(async {
        for _ in 0..200 {
            provider
                .acquire(&name, &options)
                .await
                .unwrap()
                .release()
                .await
                .unwrap();
        }
        let started = Instant::now();
        for _ in 0..n {
            provider
                .acquire(&name, &options)
                .await
                .unwrap()
                .release()
                .await
                .unwrap();
        }
        started.elapsed() / u32::try_from(n).unwrap()
    });
    println!("{}", per_cycle.as_nanos());
}

/// The metrics' cost on an uncontended acquire + release: child processes
/// with and without a global Prometheus recorder (how `ff serve` and an
/// embedder's exporter install it), alternating round by round; then the
/// same in one process with a thread-local recorder (for which handles
/// are not kept, so each grant resolves its keys).
fn overhead(full: bool) {
    let (rounds, per_round) = if full { (31, 3_000) } else { (2, 50) };
    let dir = tempfile::tempdir().unwrap();
    let measure = |with: bool| -> Duration {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--overhead-child")
            .arg(if with { "with" } else { "without" })
            .arg(per_round.to_string())
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        Duration::from_nanos(ns)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for side in if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            if side {
                with.push(measure(true));
            } else {
                without.push(measure(false));
            }
        }
    }
    let (w, wo) = (median(with), median(without));
    println!(
        "overhead: acquire+release median {:.2} us with a global Prometheus recorder, {:.2} us without; ratio {:.3}x (goal: <= 1.05x)",
        w.as_secs_f64() * 1e6,
        wo.as_secs_f64() * 1e6,
        ratio(w, wo)
    );

    // In one process, a thread-local recorder on and off.
    let provider = Instrumented::new(FileLockProvider::new(dir.path()));
    let name = LockName::new("bench").unwrap();
    let options = LockOptions::default().with_operation("bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let cycle = |n: usize| {
        runtime.block_on(async {
            let started = Instant::now();
            for _ in 0..n {
                let g = provider.acquire(&name, &options).await.unwrap();
                g.release().await.unwrap();
            }
            started.elapsed() / u32::try_from(n).unwrap()
        })
    };
    cycle(per_round);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                let _installed = metrics::set_default_local_recorder(&recorder);
                with.push(cycle(per_round));
            } else {
                without.push(cycle(per_round));
            }
        }
    }
    let rendered = handle.render();
    assert!(
        rendered.contains("ff_lock_hold_seconds"),
        "the recorder saw nothing: {rendered}"
    );
    let (w, wo) = (median(with), median(without));
    println!(
        "overhead (thread-local recorder): {:.2} us with, {:.2} us without; ratio {:.3}x",
        w.as_secs_f64() * 1e6,
        wo.as_secs_f64() * 1e6,
        ratio(w, wo)
    );
}

async fn event_latency(full: bool) {
    let samples: u64 = if full { 41 } else { 3 };
    let dir = tempfile::tempdir().unwrap();
    let served = Arc::new(FileLockProvider::new(dir.path().join("locks")));
    // Another provider on the same directory: as another process.
    let other = FileLockProvider::new(dir.path().join("locks"));
    let store = Arc::new(SqliteStore::open(dir.path().join("records.db")).unwrap());
    let server = Server::new(Backends::new(served, store), ServeConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    let mut events = Events::open(addr).await;
    let mut next_event = async || events.next_kind().await;
    assert_eq!(next_event().await, "hello");
    // Let the watch take its first look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for i in 0..samples {
        let name = LockName::new(format!("latency-{i}")).unwrap();
        let guard = other.acquire(&name, &LockOptions::default()).await.unwrap();
        let taken = Instant::now();
        loop {
            if next_event().await == "lock_acquired" {
                break;
            }
        }
        latencies.push(taken.elapsed());
        guard.release().await.unwrap();
        while next_event().await != "lock_released" {}
        // Spread the takes over the poll cycle: the release event came at
        // a poll, so pause a different share of the interval each time.
        tokio::time::sleep(Duration::from_millis((i * 37) % 100)).await;
    }
    let m = median(latencies.clone());
    let worst = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "events: lock taken -> SSE event median {:.1} ms, worst {:.1} ms over {samples} (goal: median <= 200 ms; poll interval 100 ms)",
        m.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    serving.abort();
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`
/// (Linux; `None` elsewhere).
fn cpu_time() -> Option<Duration> {
    cpu_time_of(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The CPU time the backend's server processes (`postgres`, `redis-server`)
/// have used, summed over those alive now: what a read costs on the other
/// side. `None` without `/proc`.
fn backend_cpu_time() -> Option<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = stat
            .find('(')
            .zip(stat.rfind(')'))
            .map(|(a, b)| &stat[a + 1..b]);
        if matches!(name, Some("postgres" | "redis-server")) {
            total += cpu_time_of(&stat).unwrap_or_default();
        }
    }
    Some(total)
}

/// User + system time from a `/proc/<pid>/stat` line.
fn cpu_time_of(stat: &str) -> Option<Duration> {
    // Fields after the command name (which may hold spaces) in its parens.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// This process's resident memory now, in MiB (Linux; 0 elsewhere).
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The bytes a file's blocks take (its length where blocks are unknown).
fn on_disk(m: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::blocks(m) * 512;
    #[cfg(not(unix))]
    return m.len();
}

/// A client of `/api/events`, line by line.
struct Events(tokio::io::Lines<BufReader<tokio::net::TcpStream>>);

impl Events {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        Self(BufReader::new(stream).lines())
    }

    /// The next event's kind.
    async fn next_kind(&mut self) -> String {
        loop {
            let line = self.0.next_line().await.unwrap().unwrap();
            if let Some(kind) = line.strip_prefix("event: ") {
                return kind.to_owned();
            }
        }
    }
}

/// A client of `/api/events` that reads until `hello`, then drains in the
/// background (as a dashboard does).
async fn sse_client(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut events = Events::open(addr).await;
    assert_eq!(events.next_kind().await, "hello");
    tokio::spawn(async move { while let Ok(Some(_)) = events.0.next_line().await {} })
}

/// Where the idle part's locks and records live: `FF_IDLE_BACKEND=embedded`
/// (the default: file locks and SQLite in a directory), `redis` (a
/// `redis-server` publishing keyspace events) or `postgres` (a local
/// cluster), each started by the bench.
#[derive(Debug, Clone)]
enum Place {
    Embedded(std::path::PathBuf),
    Redis(String),
    Postgres(String),
}

impl Place {
    /// How a child is told (one argument).
    fn arg(&self) -> String {
        match self {
            Self::Embedded(dir) => format!("embedded:{}", dir.display()),
            Self::Redis(url) => format!("redis:{url}"),
            Self::Postgres(url) => format!("postgres:{url}"),
        }
    }

    fn parse(arg: &str) -> Self {
        let (kind, rest) = arg.split_once(':').unwrap();
        match kind {
            "embedded" => Self::Embedded(rest.into()),
            "redis" => Self::Redis(rest.into()),
            "postgres" => Self::Postgres(rest.into()),
            other => panic!("unknown place {other}"),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "file locks + SQLite",
            Self::Redis(_) => "Redis locks + Redis records",
            Self::Postgres(_) => "PostgreSQL locks + PostgreSQL records",
        }
    }

    async fn locks(&self) -> Arc<dyn LockProvider> {
        match self {
            Self::Embedded(dir) => Arc::new(FileLockProvider::new(dir.join("locks"))),
            Self::Redis(url) => Arc::new(
                ff_lock_redis::RedisLockProvider::connect(ff_lock_redis::RedisLockConfig::new(url))
                    .await
                    .unwrap(),
            ),
            Self::Postgres(url) => Arc::new(
                ff_lock_postgres::PostgresLockProvider::connect(
                    ff_lock_postgres::PostgresLockConfig::new(url),
                )
                .await
                .unwrap(),
            ),
        }
    }

    async fn store(&self) -> Arc<dyn IdempotencyStorage> {
        match self {
            Self::Embedded(dir) => Arc::new(SqliteStore::open(dir.join("records.db")).unwrap()),
            Self::Redis(url) => Arc::new(
                ff_store_redis::RedisStore::connect(ff_store_redis::RedisStoreConfig::new(url))
                    .await
                    .unwrap(),
            ),
            Self::Postgres(url) => {
                Arc::new(ff_store_postgres::PostgresStore::open(url).await.unwrap())
            }
        }
    }
}

/// The servers an idle run uses, kept running until it ends.
enum Servers {
    None,
    Redis(ff_testkit::redis::RedisServer),
    Postgres(ff_testkit::postgres::PgServer),
}

/// Issue #33: `ff serve` idle, with many locks held, many records and many
/// event clients: CPU and resident memory over a quiet window, then how
/// soon a change is an event, with the backends' change feeds and with
/// polling alone (the server before them). This process fills the store
/// and holds the locks (as other processes would); each server runs in a
/// child of its own, so neither's leftovers count against the other.
fn idle(full: bool) {
    let (locks_held, records, clients, window) = if full {
        // FF_IDLE_WINDOW_SECS=N: a longer quiet window, to hold whole
        // reads (every 5 minutes after a change) in their share.
        let window = std::env::var("FF_IDLE_WINDOW_SECS").map_or(60, |s| s.parse().unwrap());
        (1_000, 100_000, 100, window)
    } else {
        (20, 300, 5, 1)
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = std::env::var("FF_IDLE_BACKEND").unwrap_or_else(|_| "embedded".into());
    let (place, servers) = match backend.as_str() {
        "embedded" => (Place::Embedded(dir.path().to_owned()), Servers::None),
        "redis" => {
            let Some(server) =
                ff_testkit::redis::RedisServer::start_for_benchmarks_with_keyspace_events()
            else {
                return;
            };
            (Place::Redis(server.url()), Servers::Redis(server))
        }
        "postgres" => {
            let Some(server) = ff_testkit::postgres::PgServer::start() else {
                return;
            };
            (Place::Postgres(server.url()), Servers::Postgres(server))
        }
        other => panic!("FF_IDLE_BACKEND={other}: use embedded, redis or postgres"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let guards = runtime.block_on(async {
        let before_locks = backend_bytes(&place, &servers);
        let holder = place.locks().await;
        let mut guards = Vec::new();
        for i in 0..locks_held {
            let name = LockName::new(format!("held-{i}")).unwrap();
            guards.push(holder.acquire(&name, &LockOptions::default()).await.unwrap());
        }
        let after_locks = backend_bytes(&place, &servers);
        let store = place.store().await;
        let filled = Instant::now();
        fill(store, records).await;
        println!(
            "idle ({}): {locks_held} locks held, {records} records (filled in {:.1} s), {clients} event clients, {window} s windows",
            place.name(),
            filled.elapsed().as_secs_f64(),
        );
        let after_records = backend_bytes(&place, &servers);
        println!(
            "idle: {} bytes per record, {} bytes per held lock ({})",
            after_records.0.saturating_sub(after_locks.0) / records as u64,
            after_locks.1.saturating_sub(before_locks.1) / locks_held as u64,
            match place {
                Place::Embedded(_) => "SQLite database and log after a checkpoint; lock files' content",
                Place::Redis(_) => "INFO memory used_memory, before and after",
                Place::Postgres(_) => "pg_total_relation_size of the tables, indexes included",
            }
        );
        if let Place::Embedded(_) = place {
            // The JSON store, a file per record: 1,000 records written the
            // same way (each file's size does not depend on how many).
            let json_dir = dir.path().join("json");
            let json = ff_store_json::JsonStore::open(&json_dir).unwrap();
            fill(Arc::new(json), 1_000).await;
            let (mut bytes, mut blocks, mut files) = (0u64, 0u64, 0u64);
            let mut stack = vec![json_dir];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let e = e.unwrap();
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        stack.push(e.path());
                    } else if e.file_name().to_string_lossy().ends_with(".json") {
                        bytes += m.len();
                        blocks += on_disk(&m);
                        files += 1;
                    }
                }
            }
            println!(
                "idle: JSON store {:.0} bytes per record in content, {:.0} on disk (blocks), over {files} record files",
                bytes as f64 / files.max(1) as f64,
                blocks as f64 / files.max(1) as f64
            );
            let (mut lock_blocks, mut files) = (0u64, 0u64);
            for e in std::fs::read_dir(dir.path().join("locks")).unwrap() {
                lock_blocks += on_disk(&e.unwrap().metadata().unwrap());
                files += 1;
            }
            println!(
                "idle: file locks {:.0} bytes on disk (blocks) per held lock, {files} files",
                lock_blocks as f64 / locks_held as f64
            );
        }
        guards
    });
    // What the backend's server costs with nobody reading it (after the
    // fill its own housekeeping, autovacuum say, runs a while): the
    // baseline of each server's "the backend's server" figure.
    if !matches!(place, Place::Embedded(_)) {
        let (before, t0) = (backend_cpu_time(), Instant::now());
        std::thread::sleep(Duration::from_secs(window));
        if let (Some(a), Some(b)) = (before, backend_cpu_time()) {
            println!(
                "idle ({}): the backend's server alone, no ff serve: CPU {:.2} % of a core over {:.0} s",
                place.name(),
                100.0 * b.saturating_sub(a).as_secs_f64() / t0.elapsed().as_secs_f64(),
                t0.elapsed().as_secs_f64(),
            );
        }
    }
    // FF_IDLE_ONLY=feeds|polling runs one server (to profile it).
    let only = std::env::var("FF_IDLE_ONLY").ok();
    for mode in ["polling", "feeds"] {
        if only.as_deref().is_some_and(|o| o != mode) {
            continue;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--idle-child", mode])
            .arg(place.arg())
            .args([clients.to_string(), window.to_string()])
            .arg(if full { "full" } else { "smoke" })
            .status()
            .unwrap();
        assert!(status.success());
    }
    drop(guards);
    drop(runtime);
    drop(servers);
}

/// What the backend takes: (records, locks) in bytes, each as the note
/// printed with them says.
fn backend_bytes(place: &Place, servers: &Servers) -> (u64, u64) {
    match (place, servers) {
        (Place::Embedded(dir), _) => {
            let db = dir.join("records.db");
            let bytes = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let records = if db.exists() {
                let conn = rusqlite::Connection::open(&db).unwrap();
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
                drop(conn);
                bytes(&db) + bytes(&dir.join("records.db-wal"))
            } else {
                0
            };
            let locks = std::fs::read_dir(dir.join("locks"))
                .map(|d| d.map(|e| e.unwrap().metadata().unwrap().len()).sum())
                .unwrap_or(0);
            (records, locks)
        }
        (Place::Redis(_), Servers::Redis(server)) => {
            let info = server.cli(&["INFO", "memory"]);
            let used = info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            (used, used)
        }
        (Place::Postgres(_), Servers::Postgres(server)) => {
            let size = |tables: &str| -> u64 {
                server
                    .psql(&format!(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = 'forgeflow' AND c.relname IN ({tables})"
                    ))
                    .trim()
                    .parse()
                    .unwrap_or(0)
            };
            (size("'records'"), size("'lock_holders', 'lock_fences'"))
        }
        _ => unreachable!("a place and its server"),
    }
}

/// One server over `place`'s locks and records, measured as [`idle`] says.
fn idle_child(feeds: bool, place: &Place, clients: usize, window: u64, full: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let before = resident_mib();
        let server = Server::new(
            Backends::new(place.locks().await, place.store().await),
            // FF_IDLE_WHOLE_READ_SECS=N: whole record reads every N s
            // after a change (default the server's, 60 s), to see their share.
            match std::env::var("FF_IDLE_WHOLE_READ_SECS") {
                Ok(secs) => ServeConfig::default()
                    .with_change_feeds(feeds)
                    .with_whole_read_interval(Duration::from_secs(secs.parse().unwrap())),
                Err(_) => ServeConfig::default().with_change_feeds(feeds),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            server.run(listener, shutdown).await.unwrap();
        });
        let mut drains = Vec::new();
        for _ in 0..clients {
            drains.push(sse_client(addr).await);
        }
        // Every client had its hello, sent after the first reads; let the
        // start settle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, backend0, t0) = (cpu_time(), backend_cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(window)).await;
        let (cpu1, backend1, wall) = (cpu_time(), backend_cpu_time(), t0.elapsed());
        let percent = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => format!(
                "{:.2} %",
                100.0 * b.saturating_sub(a).as_secs_f64() / wall.as_secs_f64()
            ),
            _ => "(no /proc)".into(),
        };
        let share = percent(cpu0, cpu1);
        let backend_share = match place {
            Place::Embedded(_) => String::new(),
            _ => format!(" (the backend's server: {})", percent(backend0, backend1)),
        };
        let resident = resident_mib();
        let latency = idle_event_latency(addr, place, if full { 21 } else { 3 }).await;
        println!(
            "idle ({}, {}): CPU {share} of a core{backend_share} over {:.0} s; resident {resident:.1} MiB ({before:.1} MiB before the server); lock taken -> event median {:.1} ms, worst {:.1} ms",
            place.name(),
            if feeds { "change feeds" } else { "polling" },
            wall.as_secs_f64(),
            latency.0.as_secs_f64() * 1e3,
            latency.1.as_secs_f64() * 1e3,
        );
        if feeds {
            soak(addr, place).await;
        }
        // Stopped before the runtime goes: its watch tasks end with it.
        for d in drains {
            d.abort();
        }
        let _ = stop.send(());
        serving.await.unwrap();
    });
}

/// `FF_IDLE_SOAK_SECS=N` (none by default): N more seconds with a lock
/// taken and released and an operation run every second, printing the
/// server's resident memory and CPU each minute (memory must stay flat
/// but for the records added), and how soon each operation's
/// `operation_completed` event came.
async fn soak(addr: std::net::SocketAddr, place: &Place) {
    let secs: u64 = std::env::var("FF_IDLE_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if secs == 0 {
        return;
    }
    // A client of its own, to time each operation's event.
    let mut events = Events::open(addr).await;
    assert_eq!(events.next_kind().await, "hello");
    let mut latencies = Vec::new();
    let locks = place.locks().await;
    let manager = IdempotencyManager::new(place.store().await, ManagerConfig::default());
    let started = Instant::now();
    let mut minute = (cpu_time(), Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for i in 0..secs {
        tick.tick().await;
        let name = LockName::new(format!("soak-{}", i % 10)).unwrap();
        let guard = locks.acquire(&name, &LockOptions::default()).await.unwrap();
        guard.release().await.unwrap();
        let key = IdempotencyKey::new("soak", json!({"i": i}), json!({}));
        manager
            .execute(&key, None, |_| async { Ok::<_, String>(1) })
            .await
            .unwrap();
        let done = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), async {
            while events.next_kind().await != "operation_completed" {}
        })
        .await
        .expect("an operation_completed event within 30 s");
        latencies.push(done.elapsed());
        if (i + 1) % 60 == 0 {
            let (cpu, at) = (cpu_time(), Instant::now());
            let share = match (minute.0, cpu) {
                (Some(a), Some(b)) => 100.0 * (b - a).as_secs_f64() / (at - minute.1).as_secs_f64(),
                _ => f64::NAN,
            };
            latencies.sort();
            println!(
                "soak: {:>4} min, resident {:.1} MiB, CPU {share:.2} % (serving and acting), {} operations added, operation -> event median {:.0} ms, worst {:.0} ms",
                started.elapsed().as_secs() / 60,
                resident_mib(),
                i + 1,
                latencies[latencies.len() / 2].as_secs_f64() * 1e3,
                latencies[latencies.len() - 1].as_secs_f64() * 1e3,
            );
            latencies.clear();
            minute = (cpu, at);
        }
    }
}

/// Median and worst time from a lock taken (by another provider of the
/// place, as another process would) to its `lock_acquired` event.
async fn idle_event_latency(
    addr: std::net::SocketAddr,
    place: &Place,
    samples: u64,
) -> (Duration, Duration) {
    let other = place.locks().await;
    let mut events = Events::open(addr).await;
    let mut next_event = async || events.next_kind().await;
    assert_eq!(next_event().await, "hello");
    let mut latencies = Vec::new();
    for i in 0..samples {
        let name = LockName::new(format!("idle-latency-{i}")).unwrap();
        let guard = other.acquire(&name, &LockOptions::default()).await.unwrap();
        let taken = Instant::now();
        while next_event().await != "lock_acquired" {}
        latencies.push(taken.elapsed());
        guard.release().await.unwrap();
        while next_event().await != "lock_released" {}
        tokio::time::sleep(Duration::from_millis((i * 37) % 100 + 150)).await;
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    (median(latencies), worst)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--overhead-child") {
        let n = args[i + 2].parse().unwrap();
        overhead_child(args[i + 1] == "with", n, std::path::Path::new(&args[i + 3]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--idle-child") {
        idle_child(
            args[i + 1] == "feeds",
            &Place::parse(&args[i + 2]),
            args[i + 3].parse().unwrap(),
            args[i + 4].parse().unwrap(),
            args[i + 5] == "full",
        );
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo bench -p ff-serve --bench serve -- overhead` runs one part.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| ["overhead", "scrape", "events", "idle", "operations"].contains(&a.as_str()))
        .collect();
    let run = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // First, before any server installs its global recorder: "without"
    // must mean no recorder at all.
    if run("overhead") {
        overhead(full);
    }
    if run("scrape") {
        runtime.block_on(scrape(full));
    }
    if run("events") {
        runtime.block_on(event_latency(full));
    }
    if run("operations") {
        runtime.block_on(operations(full));
    }
    if run("idle") {
        idle(full);
    }
}

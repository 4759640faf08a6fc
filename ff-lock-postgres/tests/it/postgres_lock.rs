//! PostgresLockProvider against a real PostgreSQL started by the tests,
//! directly and through a real pgbouncer in transaction mode: the
//! conformance suite, then faults and wake-ups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_testkit::postgres::{PgBouncer, PgServer, isolated};
use ff_traits::{Error, LockName, LockOptions, LockProvider};

fn server() -> Option<&'static PgServer> {
    ff_testkit::postgres::shared()
}

fn bouncer() -> Option<&'static PgBouncer> {
    ff_testkit::postgres::shared_bouncer()
}

async fn connect(url: &str) -> PostgresLockProvider {
    PostgresLockProvider::connect(PostgresLockConfig::new(url))
        .await
        .expect("connect")
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    Some(Arc::new(connect(&isolated(&server()?.url())).await))
}

async fn provider_through_pgbouncer() -> Option<Arc<dyn LockProvider>> {
    Some(Arc::new(connect(&isolated(&bouncer()?.url())).await))
}

mod conformance {
    ff_conformance::lock_conformance_tests!(optional super::provider());
}

mod conformance_through_pgbouncer {
    ff_conformance::lock_conformance_tests!(optional super::provider_through_pgbouncer());
}

fn name(n: &str) -> LockName {
    LockName::new(n).expect("lock name")
}

/// A release wakes a waiter by NOTIFY, well before its poll or the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_a_waiter_by_notify() {
    let Some(server) = server() else { return };
    let p = connect(&isolated(&server.url())).await;
    // A poll interval far longer than the test: only a notification can
    // wake the waiter in time.
    let options = LockOptions::default()
        .with_timeout(Duration::from_secs(20))
        .with_retry_interval(Duration::from_secs(10));
    let held = p.acquire(&name("wake"), &options).await.expect("first");
    let (notice, waiting) = ff_traits::WaitNotice::first();
    let waiter = {
        let p = p.clone();
        let options = options.clone().with_wait_notice(notice);
        tokio::spawn(async move {
            let g = p.acquire(&name("wake"), &options).await.expect("second");
            (Instant::now(), g)
        })
    };
    waiting.await.expect("the waiter waits");
    let released = Instant::now();
    held.release().await.expect("release");
    let (granted, g) = waiter.await.expect("join");
    let handoff = granted - released;
    assert!(handoff < Duration::from_secs(3), "woken after {handoff:?}");
    g.release().await.expect("release");
}

/// Behind a transaction-pooling pgbouncer the provider finds that LISTEN
/// does not deliver, and waiters poll; with ?listen_port= naming the
/// server, they are woken by NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_waiters_poll_or_listen_on_the_servers_port() {
    let (Some(server), Some(bouncer)) = (server(), bouncer()) else {
        return;
    };
    for (url, slow_poll) in [
        (isolated(&bouncer.url()), false),
        (
            isolated(&format!("{}?listen_port={}", bouncer.url(), server.port())),
            true,
        ),
    ] {
        let p = connect(&url).await;
        // With LISTEN on the server's own port, a 10 s poll interval
        // cannot be what wakes the waiter.
        let retry = if slow_poll {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(50)
        };
        let options = LockOptions::default()
            .with_timeout(Duration::from_secs(20))
            .with_retry_interval(retry);
        let held = p.acquire(&name("bounce"), &options).await.expect("first");
        let (notice, waiting) = ff_traits::WaitNotice::first();
        let waiter = {
            let p = p.clone();
            let options = options.clone().with_wait_notice(notice);
            tokio::spawn(async move { p.acquire(&name("bounce"), &options).await })
        };
        waiting.await.expect("the waiter waits");
        let released = Instant::now();
        held.release().await.expect("release");
        let g = waiter.await.expect("join").expect("second");
        let took = released.elapsed();
        assert!(took < Duration::from_secs(5), "{url}: {took:?}");
        g.release().await.expect("release");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://ff:secret@127.0.0.1:{port}/postgres");
    let err = PostgresLockProvider::connect(
        PostgresLockConfig::new(&url).with_call_timeout(Duration::from_millis(500)),
    )
    .await
    .expect_err("nothing listens");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

/// A restart ends every session: holders keep their leases (the table is
/// durable) or learn of the loss; tokens keep rising; waiters go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_keeps_leases_and_tokens_rise() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let url = isolated(&server.url());
    let p = PostgresLockProvider::connect(
        PostgresLockConfig::new(&url)
            .with_call_timeout(Duration::from_millis(1000))
            .with_max_ttl(Duration::from_secs(6)),
    )
    .await
    .expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(20));
    let held = p
        .acquire(&name("restart"), &options)
        .await
        .expect("acquire");
    let token = held.fencing_token();
    let waiter = {
        let p = p.clone();
        let options = options.clone();
        tokio::spawn(async move { p.acquire(&name("restart"), &options).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    // The lease is in the table: still ours, renewed over new connections.
    tokio::time::sleep(Duration::from_secs(3)).await;
    held.ensure_held().expect("the lease outlived the restart");
    held.release().await.expect("release after the restart");
    let next = waiter.await.expect("join").expect("the waiter went on");
    assert!(next.fencing_token() > token);
    next.release().await.expect("release");
}

/// A renewal moves only a lease's end: it wakes no watcher (whose feed
/// lapses, so it reads now and then anyway); the release does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_do_not_wake_the_feed() {
    let Some(server) = server() else { return };
    // A lease of 600 ms: renewed every 200 ms.
    let p = PostgresLockProvider::connect(
        PostgresLockConfig::new(isolated(&server.url())).with_max_ttl(Duration::from_millis(600)),
    )
    .await
    .expect("connect");
    ff_conformance::lock::renewals_do_not_wake_the_feed(Arc::new(p)).await;
}

/// Grants notify only while a watcher holds the gate: a deployment nobody
/// watches pays no `NOTIFY` per grant (releases notify waiters anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_notify_only_while_someone_watches() {
    let Some(server) = server() else { return };
    let url = isolated(&server.url());
    let schema = url.rsplit_once("schema=").expect("schema").1.to_owned();
    let p = connect(&url).await;
    let db = ff_postgres::Database::open(&url, ff_postgres::Settings::default())
        .await
        .expect("connect");
    let listener = db
        .listen(&format!("ff_lock_{schema}"))
        .await
        .expect("listen");
    let mut heard = listener.subscribe();
    let options = LockOptions::default();
    let unwatched = p
        .acquire(&LockName::new("unwatched").expect("name"), &options)
        .await
        .expect("acquire");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), heard.recv())
            .await
            .is_err(),
        "a grant nobody watches sent a NOTIFY"
    );
    let _feed = p.watch().await.expect("watch").expect("a feed");
    // The feed's own check of the path comes first.
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), heard.recv()).await {
        assert!(m.starts_with("\u{1f}probe "), "{m:?}");
    }
    let watched = p
        .acquire(&LockName::new("watched").expect("name"), &options)
        .await
        .expect("acquire");
    tokio::time::timeout(Duration::from_secs(2), heard.recv())
        .await
        .expect("a watched grant notifies")
        .expect("listener");
    watched.release().await.expect("release");
    unwatched.release().await.expect("release");
}

/// Drains wake-ups until the feed has been quiet for 300 ms.
async fn settle(feed: &mut Box<dyn ff_traits::ChangeFeed>) {
    while tokio::time::timeout(Duration::from_millis(300), feed.changed())
        .await
        .is_ok()
    {}
}

/// Two watchers: one holds the gate, both hear the grants; when it goes,
/// the other takes the gate within about a second and wakes its watcher
/// (for the grants made meanwhile), and grants go on notifying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_watcher_takes_over_when_the_first_goes() {
    let Some(server) = server() else { return };
    let p = connect(&isolated(&server.url())).await;
    let mut first = p.watch().await.expect("watch").expect("a feed");
    let mut second = p.watch().await.expect("watch").expect("a feed");
    settle(&mut first).await;
    settle(&mut second).await;
    let options = LockOptions::default();
    let both = p
        .acquire(&LockName::new("both").expect("name"), &options)
        .await
        .expect("acquire");
    for feed in [&mut first, &mut second] {
        tokio::time::timeout(Duration::from_secs(2), feed.changed())
            .await
            .expect("a grant wakes every watcher")
            .expect("feed");
    }
    drop(first);
    let between = p
        .acquire(&LockName::new("between").expect("name"), &options)
        .await
        .expect("acquire");
    // Woken by the grant (if the gate was still held) or by taking the
    // gate over; then a later grant wakes it too.
    tokio::time::timeout(Duration::from_secs(3), second.changed())
        .await
        .expect("the remaining watcher wakes")
        .expect("feed");
    settle(&mut second).await;
    let after = p
        .acquire(&LockName::new("after").expect("name"), &options)
        .await
        .expect("acquire");
    tokio::time::timeout(Duration::from_secs(2), second.changed())
        .await
        .expect("grants notify the remaining watcher")
        .expect("feed");
    for g in [both, between, after] {
        g.release().await.expect("release");
    }
}

/// A restart ends the feed's connection: the feed wakes its watcher,
/// listens again by itself, is quiet while nothing happens, and wakes at
/// the next grant. `?wakeups=poll` gives no feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notify_feed_outlives_a_restart() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let url = isolated(&server.url());
    let polled = connect(&format!("{url}&wakeups=poll")).await;
    assert!(polled.watch().await.expect("watch").is_none());
    let p = PostgresLockProvider::connect(
        PostgresLockConfig::new(url).with_call_timeout(Duration::from_millis(1000)),
    )
    .await
    .expect("connect");
    let mut feed = p.watch().await.expect("watch").expect("a feed");
    assert!(feed.lapses(), "leases lapse");
    server.restart();
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < until {
        if let Ok(woke) = tokio::time::timeout(Duration::from_millis(200), feed.changed()).await {
            woke.expect("a restart does not break the feed");
        }
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), feed.changed())
            .await
            .is_err(),
        "a quiet server, after the restart, wakes nobody"
    );
    let options = LockOptions::default().with_timeout(Duration::from_secs(5));
    let mut granted = None;
    for _ in 0..3 {
        // The pool's connections died with the server: the first call may fail.
        if let Ok(g) = p
            .acquire(&LockName::new("after-restart").expect("name"), &options)
            .await
        {
            granted = Some(g);
            break;
        }
    }
    let g = granted.expect("no grant after the restart");
    tokio::time::timeout(Duration::from_secs(2), feed.changed())
        .await
        .expect("a grant after the restart wakes the feed")
        .expect("feed");
    g.release().await.expect("release");
}

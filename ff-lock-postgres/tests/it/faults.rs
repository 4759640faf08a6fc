//! Faults on a real PostgreSQL: a streaming replica promoted, a holder cut
//! off from the server, a server down for longer than a lease.

#![allow(clippy::print_stdout)] // the figures are the report

use std::time::{Duration, Instant};

use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_testkit::net::Blackhole;
use ff_testkit::postgres::{PASSWORD, PgServer, USER};
use ff_traits::{LockName, LockOptions, LockProvider};

fn name(n: &str) -> LockName {
    LockName::new(n).expect("lock name")
}

fn url_at(port: u16, schema: &str) -> String {
    format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres?schema={schema}")
}

async fn connect(url: &str, ttl: Duration) -> PostgresLockProvider {
    PostgresLockProvider::connect(
        PostgresLockConfig::new(url)
            .with_max_ttl(ttl)
            .with_call_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connect")
}

/// The primary dies; its streaming replica is promoted; grants made there
/// carry greater fencing tokens than every grant the primary made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_keep_rising_across_a_promotion() {
    let Some(mut primary) = PgServer::start() else {
        return;
    };
    let replica = PgServer::start_replica_of(&primary).expect("replica");
    let on_primary = connect(&url_at(primary.port(), "promoted"), Duration::from_secs(5)).await;
    let options = LockOptions::default().with_timeout(Duration::from_secs(5));
    let mut highest = 0;
    for _ in 0..20 {
        let g = on_primary
            .acquire(&name("fenced"), &options)
            .await
            .expect("grant");
        highest = highest.max(g.fencing_token().0);
        g.release().await.expect("release");
    }
    replica.catch_up_with(&primary);
    // Grants the replica never saw: the clock floor still keeps tokens rising.
    for _ in 0..5 {
        let g = on_primary
            .acquire(&name("fenced"), &options)
            .await
            .expect("grant");
        highest = highest.max(g.fencing_token().0);
        g.release().await.expect("release");
    }
    primary.stop();
    let promoted_at = Instant::now();
    replica.promote();
    let on_replica = connect(&url_at(replica.port(), "promoted"), Duration::from_secs(5)).await;
    let g = on_replica
        .acquire(&name("fenced"), &options)
        .await
        .expect("grant after promotion");
    println!(
        "promotion: first grant {:.0} ms after the primary stopped; token {} > {}",
        promoted_at.elapsed().as_secs_f64() * 1e3,
        g.fencing_token().0,
        highest
    );
    assert!(
        g.fencing_token().0 > highest,
        "{} <= {highest}",
        g.fencing_token().0
    );
    g.release().await.expect("release");
}

/// A holder cut off from the server (a proxy that, once cut, lets nothing
/// through and keeps connections open: a dead link, no reset) learns of
/// its loss before anyone else is granted the lock, even while its
/// renewal hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_learns_its_loss_before_anyone_else_is_granted() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let proxy = Blackhole::start(server.port());
    let holder = connect(&url_at(proxy.port(), "cut"), ttl).await;
    let other = connect(&url_at(server.port(), "cut"), ttl).await;
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));
    let guard = holder
        .acquire(&name("cut"), &options)
        .await
        .expect("acquire");
    let granted_a = Instant::now();
    tokio::time::sleep(ttl * 2).await;
    assert!(guard.is_held(), "renewals kept it");
    let cut_at = Instant::now();
    proxy.cut();
    let mut watch = guard.loss_watch();
    let loss = tokio::spawn(async move {
        let _ = watch.lost().await;
        Instant::now()
    });
    let g = other
        .acquire(&name("cut"), &options)
        .await
        .expect("the other acquires");
    let granted_b = Instant::now();
    assert!(g.fencing_token() > guard.fencing_token());
    g.release().await.expect("release");
    let lost_at = tokio::time::timeout(Duration::from_secs(10), loss)
        .await
        .expect("the loss is reported")
        .expect("loss task");
    println!(
        "partition holder|postgres: held {:.0} ms before the cut; loss noticed {:.0} ms after \
         the cut; the other granted {:.0} ms after the cut (TTL {} ms)",
        (cut_at - granted_a).as_secs_f64() * 1e3,
        (lost_at - cut_at).as_secs_f64() * 1e3,
        (granted_b - cut_at).as_secs_f64() * 1e3,
        ttl.as_millis()
    );
    // As on Redis: validity ends a drift margin before the lease does on
    // the server; both instants are read after a timer and a task switch.
    let jitter = Duration::from_millis(50);
    assert!(
        lost_at <= granted_b + jitter,
        "the cut-off holder still counted the lock its own {:?} after the other was granted it",
        lost_at.saturating_duration_since(granted_b)
    );
    assert!(
        lost_at - cut_at <= ttl,
        "noticed {:?} after the cut",
        lost_at - cut_at
    );
    drop(guard);
}

/// The server is down for longer than a lease: the holder learns of the
/// loss when its validity ends; a waiter goes on once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_past_the_lease_tells_the_holder_and_waiters_go_on() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let url = url_at(server.port(), "down");
    let p = connect(&url, ttl).await;
    let options = LockOptions::default().with_timeout(Duration::from_secs(30));
    let held = p.acquire(&name("down"), &options).await.expect("acquire");
    let token = held.fencing_token();
    let waiter = {
        let p = p.clone();
        let options = options.clone();
        tokio::spawn(async move { p.acquire(&name("down"), &options).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop();
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    assert!(!held.is_held(), "the holder was told its lease ran out");
    server.restart();
    let next = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter went on")
        .expect("join")
        .expect("granted");
    assert!(next.fencing_token() > token);
    assert!(
        held.release().await.is_err(),
        "a lost grant's release says so"
    );
    next.release().await.expect("release");
}

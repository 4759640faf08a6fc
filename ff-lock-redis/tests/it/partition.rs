//! A partition between a holder and Redis: the holder reaches Redis
//! through a proxy the test runs ([`ff_testkit::net::Blackhole`]), which,
//! once cut, lets nothing through either way and keeps the connections
//! open (what a dead link looks like: no reset). Another client, with its own link,
//! waits for the lock. The history of grants as each holder saw them
//! (from the request's departure until the loss was reported) must not
//! overlap: the cut-off holder learns of its loss before the other is
//! granted the lock, even when a renewal call hangs longer than the TTL.

#![allow(clippy::print_stdout)] // the figures are the report

use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::net::Blackhole;
use ff_testkit::redis::RedisServer;
use ff_traits::{LockName, LockOptions, LockProvider};

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_from_redis_learns_its_loss_before_anyone_else_is_granted() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ttl = Duration::from_millis(600);
    let prefix = format!("partition:{}:", ff_traits::identity::unique_id());
    let proxy = Blackhole::start(port_of(&server.url()));
    // The holder's calls may hang far longer than its TTL (the default
    // call timeout, 2 s): it must not wait for them to learn its loss.
    let holder = RedisLockProvider::connect(
        RedisLockConfig::new(proxy.redis_url())
            .with_prefix(&prefix)
            .with_max_ttl(ttl),
    )
    .await
    .expect("holder connects");
    let other = RedisLockProvider::connect(
        RedisLockConfig::new(server.url())
            .with_prefix(&prefix)
            .with_max_ttl(ttl),
    )
    .await
    .expect("other connects");
    let name = LockName::new("partitioned").expect("name");
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));

    let guard = holder.acquire(&name, &options).await.expect("acquire");
    let granted_a = Instant::now();
    // Renewals keep it across several TTLs while the link is up.
    tokio::time::sleep(ttl * 2).await;
    assert!(guard.is_held(), "renewals kept it");
    let cut_at = Instant::now();
    proxy.cut();
    let mut watch = guard.loss_watch();
    let loss = tokio::spawn(async move {
        let _ = watch.lost().await;
        Instant::now()
    });
    let granted_b = {
        let g = other
            .acquire(&name, &options)
            .await
            .expect("the other acquires");
        let at = Instant::now();
        g.release().await.expect("release");
        at
    };
    let lost_at = tokio::time::timeout(Duration::from_secs(10), loss)
        .await
        .expect("the loss is reported")
        .expect("loss task");
    println!(
        "partition holder|redis: held {:.0} ms before the cut; loss noticed {:.0} ms after \
         the cut; the other holder granted {:.0} ms after the cut; overlap {} ms (TTL {} ms)",
        (cut_at - granted_a).as_secs_f64() * 1e3,
        (lost_at - cut_at).as_secs_f64() * 1e3,
        (granted_b - cut_at).as_secs_f64() * 1e3,
        if lost_at > granted_b {
            format!("{:.0}", (lost_at - granted_b).as_secs_f64() * 1e3)
        } else {
            "0".to_owned()
        },
        ttl.as_millis()
    );
    // The holder stops counting the lock at its validity's end, a drift
    // margin (1 % + 2 ms) before the key can expire on the server; both
    // instants here are read after a timer and a task switch, which on a
    // loaded machine can take tens of milliseconds. The defect this
    // catches is an overlap of up to the call timeout (2 s): a loss told
    // only when the hung renewal gives up.
    let jitter = Duration::from_millis(50);
    assert!(
        lost_at <= granted_b + jitter,
        "the cut-off holder still counted the lock its own {:.0} ms after the other was granted it",
        (lost_at - granted_b).as_secs_f64() * 1e3
    );
    assert!(
        lost_at - cut_at <= ttl,
        "the loss was noticed {:?} after the cut, more than a TTL",
        lost_at - cut_at
    );
    drop(guard);
}

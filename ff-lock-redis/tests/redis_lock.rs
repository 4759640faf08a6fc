//! RedisLockProvider against a real `redis-server` started by the tests:
//! the conformance suite, then faults (a paused holder, a server restart,
//! a server that is down).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::redis::RedisServer;
use ff_traits::{Error, LockOptions, LockProvider};

/// One server for the whole binary; each test isolates itself by prefix.
fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url).with_prefix(format!("test:{}:", ff_traits::unique_id()))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = server()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect");
    Some(Arc::new(p))
}

mod conformance {
    ff_traits::lock_conformance_tests!(optional exclusive_only super::provider());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_clear_error() {
    let Some(mut down) = RedisServer::start() else {
        return;
    };
    let url = down.url();
    down.kill();
    let err =
        RedisLockProvider::connect(config(&url).with_call_timeout(Duration::from_millis(500)))
            .await
            .expect_err("nothing listens");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gives_clear_errors_then_works_again() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let p = RedisLockProvider::connect(
        config(&server.url()).with_call_timeout(Duration::from_millis(500)),
    )
    .await
    .expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(2));
    let first = p
        .acquire(
            &ff_traits::LockName::new("restart").expect("lock name"),
            &options,
        )
        .await
        .expect("acquire");
    let token = first.fencing_token();
    first.release().await.expect("release");
    server.kill();
    let err = p
        .try_acquire(
            &ff_traits::LockName::new("restart").expect("lock name"),
            &options,
        )
        .await
        .expect_err("server down");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    server.restart();
    // The connection manager reconnects on its own.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(Some(g)) = p
            .try_acquire(
                &ff_traits::LockName::new("restart").expect("lock name"),
                &options,
            )
            .await
        {
            again = Some(g);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = again.expect("reconnected");
    assert!(
        again.fencing_token() > token,
        "fencing survives the restart (append-only file)"
    );
    again.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_renewals_stop_loses_the_lock_and_learns_it() {
    let Some(server) = server() else { return };
    let cfg = config(&server.url()).with_max_ttl(Duration::from_millis(300));
    let a = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let b = RedisLockProvider::connect(cfg).await.expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(5));
    let held = a
        .acquire(
            &ff_traits::LockName::new("lease").expect("lock name"),
            &options,
        )
        .await
        .expect("acquire");
    // Renewal keeps it held well past its TTL.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(held.is_held());
    assert!(
        b.try_acquire(
            &ff_traits::LockName::new("lease").expect("lock name"),
            &options
        )
        .await
        .expect("try")
        .is_none()
    );
    // Another client revokes it; the holder learns at its next renewal.
    let _ = b
        .force_release(&ff_traits::LockName::new("lease").expect("lock name"))
        .await
        .expect("force");
    let mut watch = held.loss_watch();
    let reason = tokio::time::timeout(Duration::from_secs(2), watch.lost())
        .await
        .expect("the loss is reported within a renewal period");
    assert!(!reason.is_empty());
    assert!(matches!(held.ensure_held(), Err(Error::LockLost { .. })));
}

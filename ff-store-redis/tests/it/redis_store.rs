//! RedisStore against a real `redis-server` started by the tests: the
//! conformance suite, damaged entries, a server restart. (The paused lock
//! holder is in `paused_holder.rs`.)

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::redis::RedisServer;
use ff_traits::{Error, IdempotencyKey, IdempotencyStorage};
use serde_json::json;

fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    // Keyspace events on: the conformance suite's feed checks run.
    SERVER
        .get_or_init(RedisServer::start_with_keyspace_events)
        .as_ref()
}

fn config(url: &str) -> RedisStoreConfig {
    RedisStoreConfig::new(url).with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = server()?.url();
    Some(Arc::new(
        RedisStore::connect(config(&url)).await.expect("connect"),
    ))
}

mod conformance {
    ff_conformance::store_conformance_tests!(optional super::store());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_entries_are_reported() {
    let Some(server) = server() else { return };
    let cfg = config(&server.url());
    let prefix = cfg.prefix.clone();
    let s = RedisStore::connect(cfg).await.expect("connect");
    let url = server.url();
    ff_conformance::store::corrupt_entries_reported(
        Arc::new(s) as Arc<dyn IdempotencyStorage>,
        move |key| async move {
            let client = redis::Client::open(url.as_str()).expect("client");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("conn");
            let _: () = redis::cmd("HSET")
                .arg(format!("{prefix}rec:{}", key.as_str()))
                .arg("body")
                .arg("garbage{")
                .query_async(&mut c)
                .await
                .expect("damage");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_gives_clear_errors_then_the_records_are_all_there() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let s =
        RedisStore::connect(config(&server.url()).with_call_timeout(Duration::from_millis(500)))
            .await
            .expect("connect");
    let m = IdempotencyManager::new(s.clone(), ManagerConfig::default());
    let key = IdempotencyKey::new("restart", json!({"n": 1}), json!({}));
    let Start::Claimed(claim) = m.start_operation(&key, None).await.expect("start") else {
        panic!("fresh key");
    };
    m.complete_operation(&claim, json!("done"))
        .await
        .expect("complete");
    server.kill();
    let err = s
        .load(&key.record_key().expect("key"))
        .await
        .expect_err("down");
    assert!(
        matches!(err, Error::Backend { .. }) && err.to_string().contains("127.0.0.1"),
        "{err}"
    );
    server.restart();
    let mut back = None;
    for _ in 0..50 {
        if let Ok(r) = s.load(&key.record_key().expect("key")).await {
            back = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("the record survived the restart");
    assert_eq!(back.result, Some(json!("done")));
}

/// `?min_replicas=1`: a write counts once a replica acknowledged it (so it
/// survives a failover to that replica); with no replica to acknowledge,
/// the call fails saying so, where a store without the parameter reports
/// success for a write only the master holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_counts_a_write_only_once_a_replica_has_it() {
    let Some(master) = RedisServer::start() else {
        return;
    };
    let Some(mut replica) = RedisServer::start_replica_of(&master) else {
        return;
    };
    let waiting = RedisStore::connect(
        config(&format!("{}?min_replicas=1", master.url()))
            .with_call_timeout(Duration::from_millis(500)),
    )
    .await
    .expect("connect");
    let plain = RedisStore::connect(config(&master.url()))
        .await
        .expect("connect");
    let key = |n: u32| IdempotencyKey::new("replicated", json!({"n": n}), json!({}));
    let m = IdempotencyManager::new(waiting.clone(), ManagerConfig::default());
    let Start::Claimed(claim) = m.start_operation(&key(1), None).await.expect("replicated") else {
        panic!("fresh key");
    };
    m.complete_operation(&claim, json!("kept"))
        .await
        .expect("acknowledged by the replica");

    replica.kill();
    let err = m
        .start_operation(&key(2), None)
        .await
        .expect_err("no replica acknowledges any more");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ff_idempotency::Error::Contract(ff_traits::Error::Backend { .. })
        ) && text.contains("min_replicas")
            && text.contains("may be lost"),
        "{text}"
    );
    let unwaited = IdempotencyManager::new(plain, ManagerConfig::default());
    assert!(
        matches!(
            unwaited.start_operation(&key(3), None).await,
            Ok(Start::Claimed(_))
        ),
        "without min_replicas the same write reports success"
    );
}

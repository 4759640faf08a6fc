//! RedisStore through Redis Sentinel (a master, a replica, three
//! Sentinels, all started by the test): the whole conformance suite, and
//! records written with `?min_replicas=1` all there after a failover.

use std::sync::{Arc, OnceLock};

use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::sentinel::SentinelSet;
use ff_traits::IdempotencyStorage;

fn set() -> Option<&'static SentinelSet> {
    static SET: OnceLock<Option<SentinelSet>> = OnceLock::new();
    SET.get_or_init(SentinelSet::start).as_ref()
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = set()?.url();
    let config = RedisStoreConfig::new(&url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()));
    Some(Arc::new(
        RedisStore::connect(config)
            .await
            .expect("connect through Sentinel"),
    ))
}

mod conformance {
    ff_conformance::store_conformance_tests!(optional super::store());
}

/// Records whose writes a replica acknowledged (`?min_replicas=1`) are all
/// there after the master is SIGKILLed and that replica promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_failover() {
    use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
    use ff_traits::IdempotencyKey;
    use serde_json::json;
    let Some(mut set) = tokio::task::spawn_blocking(SentinelSet::start)
        .await
        .expect("start")
    else {
        return;
    };
    let config = RedisStoreConfig::new(format!("{}?min_replicas=1", set.url()))
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
        .with_call_timeout(std::time::Duration::from_secs(1));
    let store = RedisStore::connect(config).await.expect("connect");
    let m = IdempotencyManager::new(store.clone(), ManagerConfig::default());
    let key = |n: u32| IdempotencyKey::new("failover", json!({"n": n}), json!({}));
    for n in 0..50 {
        let Start::Claimed(claim) = m.start_operation(&key(n), None).await.expect("start") else {
            panic!("fresh key");
        };
        m.complete_operation(&claim, json!(n))
            .await
            .expect("acknowledged by the replica");
    }
    let old = set.kill_master();
    let set = tokio::task::spawn_blocking(move || {
        let _ = set.wait_for_new_master(old, std::time::Duration::from_secs(30));
        set
    })
    .await
    .expect("failover");
    // Reads fail until the client learns the new master; then every
    // record is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for n in 0..50 {
        let record = loop {
            match store.load(&key(n).record_key().expect("key")).await {
                Ok(r) => break r,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        };
        let record = record.unwrap_or_else(|| panic!("record {n} was lost in the failover"));
        assert_eq!(record.result, Some(json!(n)));
    }
    drop(set);
}

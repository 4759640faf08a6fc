//! RedisStore through Redis Sentinel (a master, a replica, three
//! Sentinels, all started by the test): the whole conformance suite.
//! (Failovers are tested once, in ff-lock-redis: both backends connect
//! through ff-redis.)

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
    let config =
        RedisStoreConfig::new(&url).with_prefix(format!("test:{}:", ff_traits::unique_id()));
    Some(Arc::new(
        RedisStore::connect(config)
            .await
            .expect("connect through Sentinel"),
    ))
}

mod conformance {
    ff_traits::store_conformance_tests!(optional super::store());
}

//! RedisStore on a Redis Cluster of three masters the test starts: the
//! whole conformance suite (listing walks every master).

use std::sync::{Arc, OnceLock};

use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::cluster::RedisCluster;
use ff_traits::IdempotencyStorage;

fn cluster() -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start).as_ref()
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = cluster()?.url();
    let config = RedisStoreConfig::new(&url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()));
    Some(Arc::new(
        RedisStore::connect(config)
            .await
            .expect("connect to the cluster"),
    ))
}

mod conformance {
    ff_conformance::store_conformance_tests!(optional super::store());
}

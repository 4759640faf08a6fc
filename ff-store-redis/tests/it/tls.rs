//! RedisStore over mutual TLS, against a real `redis-server` speaking only
//! TLS with certificates the test generates: the whole conformance suite.
//! (How refused TLS connections are reported is tested once, in
//! ff-lock-redis: both backends connect through ff-redis.)

use std::sync::{Arc, OnceLock};

use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::redis::{RedisServer, TlsSetup};
use ff_traits::IdempotencyStorage;

fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            RedisServer::start_tls(TlsSetup {
                require_client_certificate: true,
                ..TlsSetup::default()
            })
        })
        .as_ref()
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = server()?.url();
    let config = RedisStoreConfig::new(&url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()));
    Some(Arc::new(
        RedisStore::connect(config).await.expect("connect over TLS"),
    ))
}

mod conformance {
    ff_conformance::store_conformance_tests!(optional super::store());
}

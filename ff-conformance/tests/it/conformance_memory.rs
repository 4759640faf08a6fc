//! The reference backends pass the whole conformance suite.

use std::sync::Arc;

use ff_traits::{IdempotencyStorage, LockProvider, MemoryLockProvider, MemoryStore};

mod lock {
    use super::*;
    ff_conformance::lock_conformance_tests!(async {
        Arc::new(MemoryLockProvider::new()) as Arc<dyn LockProvider>
    });
}

mod store {
    use super::*;
    ff_conformance::store_conformance_tests!(async {
        Arc::new(MemoryStore::new()) as Arc<dyn IdempotencyStorage>
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn corrupt_entries_reported() {
        let store = MemoryStore::new();
        let damaged = store.clone();
        ff_conformance::store::corrupt_entries_reported(
            Arc::new(store) as Arc<dyn IdempotencyStorage>,
            move |key| async move { damaged.corrupt(&key, "garbage bytes") },
        )
        .await;
    }
}

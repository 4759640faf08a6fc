//! The metrics layer keeps the contract: the reference backends, each
//! wrapped in `ff_metrics::Instrumented` as the `ff` command opens every
//! backend, pass the whole suite again (the grant a wrapped provider hands
//! out is the inner one's, with its end timed).

use std::sync::Arc;

use ff_metrics::Instrumented;
use ff_traits::{IdempotencyStorage, LockProvider, MemoryLockProvider, MemoryStore};

mod lock {
    use super::*;
    ff_conformance::lock_conformance_tests!(async {
        Arc::new(Instrumented::new(MemoryLockProvider::new())) as Arc<dyn LockProvider>
    });
}

mod store {
    use super::*;
    ff_conformance::store_conformance_tests!(async {
        Arc::new(Instrumented::new(MemoryStore::new())) as Arc<dyn IdempotencyStorage>
    });
}

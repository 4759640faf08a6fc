//! The plugin runs the whole conformance suite, as every plugin should,
//! through the suite's macros. This crate has no tokio dev-dependency: the
//! macros bring the runtime they need through `ff_traits`.

use std::sync::Arc;

use ff_example_plugin::{CountingStore, TableLocks};
use ff_traits::{IdempotencyStorage, LockProvider, MemoryStore};

mod locks {
    // `exclusive_only`: the table has no shared mode. The shared-mode check
    // shows as ignored, and a check that the backend refuses shared mode
    // cleanly runs instead.
    ff_conformance::lock_conformance_tests!(exclusive_only async {
        super::Arc::new(super::TableLocks::new()) as super::Arc<dyn super::LockProvider>
    });
}

mod store {
    ff_conformance::store_conformance_tests!(async {
        super::Arc::new(super::CountingStore::new(super::MemoryStore::new()))
            as super::Arc<dyn super::IdempotencyStorage>
    });
}

//! The timeout is the whole budget of a wait: a 10-minute timeout waits 10
//! minutes, a 1 s one gives up at 1 s (paused tokio time: no real waiting).
//! Waits were once cut to `retry_interval × max_retries`, 30 s by default,
//! whatever the timeout said.

use std::sync::Arc;

use ff_traits::{LockProvider, MemoryLockProvider};

#[tokio::test(start_paused = true)]
async fn a_memory_lock_waits_its_whole_timeout() {
    ff_conformance::lock::timeout_is_kept_on_a_paused_clock(
        Arc::new(MemoryLockProvider::new()) as Arc<dyn LockProvider>
    )
    .await;
}

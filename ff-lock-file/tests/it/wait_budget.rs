//! The timeout is the whole budget of a wait, in both modes: a 10-minute
//! timeout waits 10 minutes, a 1 s one gives up at 1 s (paused tokio time:
//! no real waiting). Waits were once cut to `retry_interval × max_retries`,
//! 30 s by default, whatever the timeout said.

use std::sync::Arc;

use ff_lock_file::{FileLockMode, FileLockProvider};
use ff_traits::LockProvider;

async fn waits_the_whole_timeout(mode: FileLockMode) {
    let dir = tempfile::tempdir().expect("dir");
    let locks = FileLockProvider::new(dir.path().join("locks")).with_mode(mode);
    ff_conformance::lock::timeout_is_kept_on_a_paused_clock(
        Arc::new(locks) as Arc<dyn LockProvider>
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn kernel_mode_waits_its_whole_timeout() {
    waits_the_whole_timeout(FileLockMode::Kernel).await;
}

#[tokio::test(start_paused = true)]
async fn lease_mode_waits_its_whole_timeout() {
    waits_the_whole_timeout(FileLockMode::Lease).await;
}

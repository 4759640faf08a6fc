//! The timeout is the whole budget of a wait: a 10-minute timeout waits 10
//! minutes, a 1 s one gives up at 1 s (paused tokio time: no real waiting).
//! Waits were once cut to `retry_interval × max_retries`, 30 s by default,
//! whatever the timeout said.

use std::time::Duration;

use ff_traits::{Error, LockName, LockOptions, LockProvider, MemoryLockProvider};

#[tokio::test(start_paused = true)]
async fn a_memory_lock_waits_its_whole_timeout() {
    let locks = MemoryLockProvider::new();
    let name = LockName::new("budget").expect("name");
    let held = locks
        .acquire(&name, &LockOptions::default())
        .await
        .expect("holder");
    for timeout in [Duration::from_secs(600), Duration::from_secs(1)] {
        let started = tokio::time::Instant::now();
        let err = locks
            .acquire(&name, &LockOptions::default().with_timeout(timeout))
            .await
            .expect_err("held");
        let waited = started.elapsed();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(1),
            "a {timeout:?} timeout waited {waited:?}"
        );
    }
    held.release().await.expect("release");
}

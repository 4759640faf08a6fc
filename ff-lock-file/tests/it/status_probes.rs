//! Reading locks' status probes each kernel lock for an instant; two
//! readers at once (`ff serve`'s watch and a scrape) must not take each
//! other's probe for a holder.

use std::sync::Arc;

use ff_lock_file::FileLockProvider;
use ff_traits::{LockName, LockOptions, LockProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_status_reads_never_see_a_free_lock_held() {
    let dir = tempfile::tempdir().expect("dir");
    let p = Arc::new(FileLockProvider::new(dir.path().join("locks")));
    let name = LockName::new("probed").expect("name");
    p.acquire(&name, &LockOptions::default())
        .await
        .expect("acquire")
        .release()
        .await
        .expect("release");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&p);
            tokio::spawn(async move {
                for _ in 0..300 {
                    let all = p.locks().await.expect("locks");
                    assert!(
                        all.iter().all(|l| !l.held),
                        "a free lock read as held: {all:?}"
                    );
                }
            })
        })
        .collect();
    for r in readers {
        r.await.expect("a reader");
    }
    // A real holder is still seen.
    let held = p
        .acquire(&name, &LockOptions::default())
        .await
        .expect("acquire");
    assert!(p.locks().await.expect("locks").iter().any(|l| l.held));
    held.release().await.expect("release");
}

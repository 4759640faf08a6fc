//! RedisLockProvider on a Redis Cluster of three masters the test starts:
//! the conformance suite (every lock's keys share a slot through a hash
//! tag), and slots moving between masters while clients take locks.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::cluster::RedisCluster;
use ff_traits::{LockName, LockOptions, LockProvider};

fn cluster() -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start).as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
        .with_call_timeout(Duration::from_secs(3))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = cluster()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect to the cluster");
    Some(Arc::new(p))
}

mod conformance {
    ff_conformance::lock_conformance_tests!(optional super::provider());
}

#[test]
fn locks_keep_working_while_slots_move() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let rt = ff_testkit::runtime();
    let url = cluster.url();
    let locks = rt.block_on(async {
        RedisLockProvider::connect(config(&url))
            .await
            .expect("connect to the cluster")
    });
    let options = LockOptions::default();
    let names: Vec<LockName> = (0..64)
        .map(|i| LockName::new(format!("moving-{i}")).expect("name"))
        .collect();
    // Held across the move: their keys go with their slots.
    let held = rt.block_on(async {
        let mut held = Vec::new();
        for n in &names[..8] {
            held.push(locks.acquire(n, &options).await.expect("acquire"));
        }
        held
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (locks, names, stop) = (locks.clone(), names.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            ff_testkit::runtime().block_on(async {
                let mut rounds = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for n in &names[8..] {
                        let g = locks
                            .acquire(n, &LockOptions::default())
                            .await
                            .expect("acquire while slots move");
                        g.release().await.expect("release while slots move");
                    }
                    rounds += 1;
                }
                rounds
            })
        })
    };
    cluster.move_slots(4_000);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = worker.join().expect("the worker");
    assert!(rounds > 0, "the worker took locks during the move");
    rt.block_on(async {
        for (g, n) in held.into_iter().zip(&names) {
            // Still held after the move: a second holder is refused.
            assert!(
                locks.try_acquire(n, &options).await.expect("try").is_none(),
                "{n} was free after its slot moved"
            );
            g.release().await.expect("release after the move");
        }
        let listed = locks.locks().await.expect("locks across masters");
        assert!(listed.iter().all(|l| !l.held), "{listed:?}");
    });
}

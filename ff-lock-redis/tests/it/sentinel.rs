//! RedisLockProvider through Redis Sentinel, against real processes the
//! test starts (a master, a replica, three Sentinels): the conformance
//! suite, then repeated failovers: the master SIGKILLed, the time until
//! the next grant on the promoted replica, and fencing tokens still
//! rising across every failover.
//!
//! `FF_FAILOVERS=N` sets the number of failovers (default 3).

#![allow(clippy::print_stdout)] // the failover figures are reported

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::sentinel::SentinelSet;
use ff_traits::{LockName, LockOptions, LockProvider};

fn set() -> Option<&'static SentinelSet> {
    static SET: OnceLock<Option<SentinelSet>> = OnceLock::new();
    SET.get_or_init(SentinelSet::start).as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
        .with_call_timeout(Duration::from_secs(2))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = set()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect through Sentinel");
    Some(Arc::new(p))
}

mod conformance {
    ff_conformance::lock_conformance_tests!(optional super::provider());
}

#[test]
fn service_resumes_after_each_failover_and_tokens_keep_rising() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let rounds: usize = std::env::var("FF_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = ff_testkit::runtime();
    let locks = rt.block_on(async {
        RedisLockProvider::connect(config(&set.url()))
            .await
            .expect("connect through Sentinel")
    });
    let options = LockOptions::default();
    let mut highest = 0u64;
    let mut resumed = Vec::new();
    for round in 0..rounds {
        // Grants before the failover.
        rt.block_on(async {
            for i in 0..5 {
                let name = LockName::new(format!("before-{round}-{i}")).expect("name");
                let g = locks.acquire(&name, &options).await.expect("a grant");
                assert!(g.fencing_token().0 > highest, "round {round}: tokens rise");
                highest = g.fencing_token().0;
                g.release().await.expect("release");
            }
        });
        let killed_at = Instant::now();
        let old = set.kill_master();
        // The next grant, on whichever node the Sentinels promote.
        let token = rt.block_on(async {
            let name = LockName::new(format!("after-{round}")).expect("name");
            loop {
                match locks.try_acquire(&name, &options).await {
                    Ok(Some(g)) => {
                        let t = g.fencing_token().0;
                        let _ = g.release().await;
                        break t;
                    }
                    Ok(None) => panic!("round {round}: a fresh name was busy"),
                    Err(e) => {
                        assert!(
                            killed_at.elapsed() < Duration::from_secs(30),
                            "round {round}: no grant 30 s after the kill: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        resumed.push(killed_at.elapsed());
        assert!(
            token > highest,
            "round {round}: a token after the failover ({token}) is not above every token before it ({highest})"
        );
        highest = token;
        // The Sentinel asked may still name the old master for a moment
        // after the client followed another's news of the promotion.
        let asked = Instant::now();
        let mut new = set.master_port().expect("a master");
        while new == old && asked.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
            new = set.master_port().expect("a master");
        }
        assert_ne!(new, old, "round {round}: the grant came from a new master");
        set.rejoin(old);
    }
    resumed.sort();
    println!(
        "sentinel failovers: {rounds}; master SIGKILL -> next grant: median {:?}, max {:?}; tokens rose across every failover",
        resumed[resumed.len() / 2],
        resumed[resumed.len() - 1]
    );
}

/// A waiter whose wait spans a failover keeps waiting (its calls fail
/// while no master answers) and gets the lock on the promoted replica once
/// the holder's short lease lapses there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_spanning_a_failover_keeps_waiting_and_gets_the_lock() {
    let Some(mut set) = tokio::task::spawn_blocking(SentinelSet::start)
        .await
        .expect("start")
    else {
        return;
    };
    let url = set.url();
    let prefix = format!("test:{}:", ff_traits::identity::unique_id());
    let connect = || async {
        RedisLockProvider::connect(
            RedisLockConfig::new(&url)
                .with_prefix(prefix.clone())
                .with_call_timeout(Duration::from_secs(1)),
        )
        .await
        .expect("connect through Sentinel")
    };
    let (holder, waiter) = (connect().await, connect().await);
    let name = LockName::new("spanning").expect("name");
    let short = LockOptions::default().with_stale_threshold(Duration::from_secs(3));
    let held = holder.acquire(&name, &short).await.expect("hold");
    let before = held.fencing_token().0;
    // Give the grant time to reach the replica.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = {
        let (waiter, name) = (waiter.clone(), name.clone());
        tokio::spawn(async move {
            waiter
                .acquire(
                    &name,
                    &LockOptions::default().with_timeout(Duration::from_secs(40)),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let old = set.kill_master();
    // The holder lets go while no master answers: its release fails (or
    // reaches the new master), its renewals stop, and its grant, if it
    // reached the replica, lapses there with its 3 s lease.
    let _ = held.release().await;
    let got = waiting
        .await
        .expect("the waiter")
        .expect("the wait survived the failover");
    assert!(got.fencing_token().0 > before, "tokens rose");
    assert_ne!(set.master_port(), Some(old));
    let _ = got.release().await;
    tokio::task::spawn_blocking(move || set.rejoin(old))
        .await
        .expect("rejoin");
}

//! RedisStore against a real `redis-server` started by the tests: the
//! conformance suite, damaged entries, a server restart, and a paused lock
//! holder whose late write is refused.

#![allow(clippy::print_stdout)] // the child process reports on stdout

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::redis::RedisServer;
use ff_traits::{
    Error, IdempotencyKey, IdempotencyManager, IdempotencyStorage, LockOptions, LockProvider,
    ManagerConfig, Start,
};
use serde_json::json;

fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).as_ref()
}

fn config(url: &str) -> RedisStoreConfig {
    RedisStoreConfig::new(url).with_prefix(format!("test:{}:", ff_traits::unique_id()))
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = server()?.url();
    Some(Arc::new(
        RedisStore::connect(config(&url)).await.expect("connect"),
    ))
}

macro_rules! conformance {
    ($module:ident: $($check:ident),+ $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let Some(s) = super::store().await else { return };
                    ff_traits::conformance::$module::$check(s).await;
                }
            )+
        }
    };
}

conformance!(store:
    load_absent_is_none,
    create_then_load_round_trips,
    create_if_absent_race_has_one_winner,
    compare_and_swap_is_conditional,
    compare_and_swap_race_has_one_winner,
    remove_is_conditional,
    scan_filters,
    stats_and_cleanup,
    invalid_keys_rejected,
);
conformance!(manager:
    claim_race_has_one_winner,
    lifecycle_rules,
    stuck_claim_is_taken_over,
    exclusive_start_takes_over_at_once,
    only_the_claimant_finishes,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_entries_are_reported() {
    let Some(server) = server() else { return };
    let cfg = config(&server.url());
    let prefix = cfg.prefix.clone();
    let s = RedisStore::connect(cfg).await.expect("connect");
    let url = server.url();
    ff_traits::conformance::store::corrupt_entries_reported(
        Arc::new(s) as Arc<dyn IdempotencyStorage>,
        move |key| async move {
            let client = redis::Client::open(url.as_str()).expect("client");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("conn");
            let _: () = redis::cmd("HSET")
                .arg(format!("{prefix}rec:{}", key.as_str()))
                .arg("body")
                .arg("garbage{")
                .query_async(&mut c)
                .await
                .expect("damage");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_gives_clear_errors_then_the_records_are_all_there() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let s =
        RedisStore::connect(config(&server.url()).with_call_timeout(Duration::from_millis(500)))
            .await
            .expect("connect");
    let m = IdempotencyManager::new(s.clone(), ManagerConfig::default());
    let key = IdempotencyKey::new("restart", json!({"n": 1}), json!({}));
    let Start::Claimed(claim) = m.start_operation(&key, None).await.expect("start") else {
        panic!("fresh key");
    };
    m.complete_operation(&claim, json!("done"))
        .await
        .expect("complete");
    server.kill();
    let err = s
        .load(&key.record_key().expect("key"))
        .await
        .expect_err("down");
    assert!(
        matches!(err, Error::Backend { .. }) && err.to_string().contains("127.0.0.1"),
        "{err}"
    );
    server.restart();
    let mut back = None;
    for _ in 0..50 {
        if let Ok(r) = s.load(&key.record_key().expect("key")).await {
            back = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("the record survived the restart");
    assert_eq!(back.result, Some(json!("done")));
}

/// Child: takes the lock and claims the key, prints `ready`, then waits for
/// a line on stdin; then reports whether it still holds the lock and
/// whether completing its claim was accepted.
#[test]
fn child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let (url, lock_prefix, store_prefix) = (&role[0], &role[1], &role[2]);
    ff_testkit::runtime().block_on(async {
        let locks = RedisLockProvider::connect(
            RedisLockConfig::new(url.as_str())
                .with_prefix(lock_prefix.as_str())
                .with_max_ttl(Duration::from_millis(600)),
        )
        .await
        .expect("locks");
        let store = RedisStore::connect(
            RedisStoreConfig::new(url.as_str()).with_prefix(store_prefix.as_str()),
        )
        .await
        .expect("store");
        let m = IdempotencyManager::new(store, ManagerConfig::default());
        let guard = locks
            .acquire("issue-1", &LockOptions::default())
            .await
            .expect("lock");
        let key = IdempotencyKey::new("paused", json!({"issue": 1}), json!({}));
        let Start::Claimed(claim) = m
            .start_operation_exclusive(&key, None)
            .await
            .expect("claim")
        else {
            panic!("fresh key");
        };
        println!("ready {}", guard.fencing_token().0);
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let mut watch = guard.loss_watch();
        let lost = tokio::time::timeout(Duration::from_secs(2), watch.lost()).await;
        println!("lost {}", lost.is_ok());
        match m.complete_operation(&claim, json!("late")).await {
            Err(Error::LockLost { .. }) => println!("write refused"),
            other => println!("write {other:?}"),
        }
    });
}

#[test]
fn a_paused_holder_loses_the_lock_learns_it_and_its_late_write_is_refused() {
    let Some(server) = server() else { return };
    let url = server.url();
    let lock_prefix = format!("test:{}:", ff_traits::unique_id());
    let store_prefix = format!("test:{}:", ff_traits::unique_id());
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env(
            "FF_TESTKIT_ROLE",
            [url.as_str(), &lock_prefix, &store_prefix].join("\u{1f}"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("ready"))
        .expect("child ready");
    let old_token: u64 = ready[6..].parse().expect("token");
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");

    ff_testkit::runtime().block_on(async {
        let locks = RedisLockProvider::connect(
            RedisLockConfig::new(url.as_str()).with_prefix(lock_prefix.as_str()),
        )
        .await
        .expect("locks");
        // The paused holder cannot renew: its 600 ms TTL runs out.
        let guard = locks
            .acquire(
                "issue-1",
                &LockOptions::default().with_timeout(Duration::from_secs(5)),
            )
            .await
            .expect("the lock passes to us");
        assert!(guard.fencing_token().0 > old_token);
        let store = RedisStore::connect(
            RedisStoreConfig::new(url.as_str()).with_prefix(store_prefix.as_str()),
        )
        .await
        .expect("store");
        let m = IdempotencyManager::new(store, ManagerConfig::default());
        let key = IdempotencyKey::new("paused", json!({"issue": 1}), json!({}));
        let Start::Claimed(claim) = m
            .start_operation_exclusive(&key, None)
            .await
            .expect("take over")
        else {
            panic!("pending record expected");
        };
        m.complete_operation(&claim, json!("ours"))
            .await
            .expect("complete");
        guard.release().await.expect("release");
    });

    rustix::process::kill_process(pid, rustix::process::Signal::CONT).expect("SIGCONT");
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("wait").success());
    assert!(rest.contains(&"lost true".to_owned()), "{rest:?}");
    assert!(rest.contains(&"write refused".to_owned()), "{rest:?}");
}

//! A lock holder paused (SIGSTOP) past its TTL, with a real Redis: it loses
//! the lock to another process, learns of the loss when resumed, and its
//! late write to the store is refused.

#![cfg(unix)] // SIGSTOP / SIGCONT
#![allow(clippy::print_stdout)] // the child process reports on stdout

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_store_redis::{RedisStore, RedisStoreConfig};
use ff_testkit::redis::RedisServer;
use ff_traits::{Error, IdempotencyKey, LockOptions, LockProvider};
use serde_json::json;

fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).as_ref()
}

/// Child (Unix: the parent pauses it with SIGSTOP): takes the lock and claims the key, prints `ready`, then waits for
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
            .acquire(
                &ff_traits::LockName::new("issue-1").expect("lock name"),
                &LockOptions::default(),
            )
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
            Err(ff_idempotency::Error::Contract(Error::LockLost { .. })) => {
                println!("write refused")
            }
            other => println!("write {other:?}"),
        }
    });
}

#[test]
fn a_paused_holder_loses_the_lock_learns_it_and_its_late_write_is_refused() {
    let Some(server) = server() else { return };
    let url = server.url();
    let lock_prefix = format!("test:{}:", ff_traits::identity::unique_id());
    let store_prefix = format!("test:{}:", ff_traits::identity::unique_id());
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", &ff_testkit::test_entry!("child")])
        .args(["--nocapture", "--test-threads=1", "-q"])
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
                &ff_traits::LockName::new("issue-1").expect("lock name"),
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

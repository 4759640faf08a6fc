//! RedisLockProvider against a real `redis-server` started by the tests:
//! the conformance suite, then faults (a paused holder, a server restart,
//! a server that is down), and same-host takeover of a dead holder.

#![allow(clippy::print_stdout)] // a holder child reports to the test on stdout

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::redis::RedisServer;
use ff_traits::{Error, LockName, LockOptions, LockProvider};

/// One server for the whole binary; each test isolates itself by prefix.
fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url).with_prefix(format!("test:{}:", ff_traits::unique_id()))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = server()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect");
    Some(Arc::new(p))
}

mod conformance {
    ff_traits::lock_conformance_tests!(optional exclusive_only super::provider());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_clear_error() {
    let Some(mut down) = RedisServer::start() else {
        return;
    };
    let url = down.url();
    down.kill();
    let err =
        RedisLockProvider::connect(config(&url).with_call_timeout(Duration::from_millis(500)))
            .await
            .expect_err("nothing listens");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gives_clear_errors_then_works_again() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let p = RedisLockProvider::connect(
        config(&server.url()).with_call_timeout(Duration::from_millis(500)),
    )
    .await
    .expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(2));
    let first = p
        .acquire(
            &ff_traits::LockName::new("restart").expect("lock name"),
            &options,
        )
        .await
        .expect("acquire");
    let token = first.fencing_token();
    first.release().await.expect("release");
    server.kill();
    let err = p
        .try_acquire(
            &ff_traits::LockName::new("restart").expect("lock name"),
            &options,
        )
        .await
        .expect_err("server down");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    server.restart();
    // The connection manager reconnects on its own.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(Some(g)) = p
            .try_acquire(
                &ff_traits::LockName::new("restart").expect("lock name"),
                &options,
            )
            .await
        {
            again = Some(g);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = again.expect("reconnected");
    assert!(
        again.fencing_token() > token,
        "fencing survives the restart (append-only file)"
    );
    again.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_renewals_stop_loses_the_lock_and_learns_it() {
    let Some(server) = server() else { return };
    let cfg = config(&server.url()).with_max_ttl(Duration::from_millis(300));
    let a = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let b = RedisLockProvider::connect(cfg).await.expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(5));
    let held = a
        .acquire(
            &ff_traits::LockName::new("lease").expect("lock name"),
            &options,
        )
        .await
        .expect("acquire");
    // Renewal keeps it held well past its TTL.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(held.is_held());
    assert!(
        b.try_acquire(
            &ff_traits::LockName::new("lease").expect("lock name"),
            &options
        )
        .await
        .expect("try")
        .is_none()
    );
    // Another client revokes it; the holder learns at its next renewal.
    let _ = b
        .force_release(&ff_traits::LockName::new("lease").expect("lock name"))
        .await
        .expect("force");
    let mut watch = held.loss_watch();
    let reason = tokio::time::timeout(Duration::from_secs(2), watch.lost())
        .await
        .expect("the loss is reported within a renewal period");
    assert!(!reason.is_empty());
    assert!(matches!(held.ensure_held(), Err(Error::LockLost { .. })));
}

/// Child of the takeover tests: holds lock `t` on server `role[0]` under
/// prefix `role[1]`, naming process group `role[2]` (if any), until killed.
#[test]
fn holder_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    ff_testkit::runtime().block_on(async {
        let p = RedisLockProvider::connect(RedisLockConfig::new(&role[0]).with_prefix(&role[1]))
            .await
            .expect("connect");
        let mut options = LockOptions::default();
        if let Ok(group) = role[2].parse() {
            options = options.with_process_group(group);
        }
        let _held = p
            .acquire(&LockName::new("t").expect("lock name"), &options)
            .await
            .expect("hold");
        println!("held");
        std::future::pending::<()>().await;
    });
}

/// A holder process in another process, holding `t` under `prefix`.
fn spawn_holder(url: &str, prefix: &str, group: Option<u32>) -> std::process::Child {
    let group = group.map(|g| g.to_string()).unwrap_or_default();
    let mut child = ff_testkit::spawn_self("holder_child", &[url, prefix, &group]);
    ff_testkit::wait_for_line(&mut child, "held");
    child
}

fn t() -> LockName {
    LockName::new("t").expect("lock name")
}

/// A holder SIGKILLed on this host is taken over at once, by a waiter that
/// was already waiting and by a newcomer, though its TTL (30 s) runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_on_this_host_is_taken_over_at_once() {
    let Some(server) = server() else { return };
    let url = server.url();
    let cfg = config(&url);
    let waiter = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    // Ten seconds, a third of the TTL: a grant proves a takeover.
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));

    let mut holder = spawn_holder(&url, &cfg.prefix, None);
    let (w, o) = (waiter.clone(), options.clone());
    let waiting = tokio::spawn(async move { w.acquire(&t(), &o).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the lock was held");
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reap");
    let guard = waiting.await.expect("task").expect("taken over");
    let first = guard.fencing_token();
    guard.release().await.expect("release");

    let mut holder = spawn_holder(&url, &cfg.prefix, None);
    assert!(
        waiter
            .try_acquire(&t(), &options)
            .await
            .expect("try")
            .is_none()
    );
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reap");
    let guard = waiter
        .try_acquire(&t(), &options)
        .await
        .expect("try")
        .expect("a dead holder's lock is free to a try on its host");
    assert!(guard.fencing_token() > first);
    guard.release().await.expect("release");
}

/// A holder that dies while the command it runs (its process group) lives
/// keeps the lock until the group ends: the lock's promise covers the
/// command.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_running_group_keeps_the_lock() {
    use std::os::unix::process::CommandExt;
    let Some(server) = server() else { return };
    let url = server.url();
    let cfg = config(&url);
    let waiter = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let mut command = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .expect("spawn the command");
    let mut holder = spawn_holder(&url, &cfg.prefix, Some(command.id()));
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reap");
    let short = LockOptions::default().with_timeout(Duration::from_millis(300));
    assert!(
        waiter
            .try_acquire(&t(), &short)
            .await
            .expect("try")
            .is_none()
    );
    let err = waiter
        .acquire(&t(), &short)
        .await
        .expect_err("the group runs");
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    command.kill().expect("end the command");
    command.wait().expect("reap");
    let guard = waiter
        .acquire(
            &t(),
            &LockOptions::default().with_timeout(Duration::from_secs(10)),
        )
        .await
        .expect("taken over once the group ended");
    guard.release().await.expect("release");
}

/// Only a holder whose pids mean the same here is judged: one on another
/// host, or in another pid namespace of this host, keeps its lock until
/// its TTL though its pid names no process here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_elsewhere_are_never_judged_dead() {
    let Some(server) = server() else { return };
    let url = server.url();
    let cfg = config(&url);
    let locks = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = gone.id();
    gone.wait().expect("reap");
    let mut conn = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let options = LockOptions::default();
    let plant = |host: &str, space: Option<&str>| {
        let mut info = ff_traits::LockInfo::for_current_process(
            "t",
            ff_traits::FencingToken(1),
            &options,
            ff_traits::Timestamp::now(),
        );
        host.clone_into(&mut info.hostname);
        info.pid = dead_pid;
        info.process_start = None;
        info.pid_space = space.map(str::to_owned);
        format!(
            "planted\n1\n{}",
            serde_json::to_string(&info).expect("holder JSON")
        )
    };
    let here = ff_traits::hostname().to_owned();
    let space = ff_traits::process::pid_space();
    let cases = [
        ("another host", plant("elsewhere.example", space), false),
        (
            "another pid space",
            plant(&here, Some("another-boot/pid:[1]")),
            false,
        ),
        ("this host and pid space", plant(&here, space), true),
    ];
    for (what, value, taken) in cases {
        let _: () = redis::cmd("SET")
            .arg(format!("{}t", cfg.prefix))
            .arg(&value)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .expect("plant a holder");
        let got = locks.try_acquire(&t(), &options).await.expect("try");
        assert_eq!(got.is_some(), taken, "{what}");
        if let Some(g) = got {
            g.release().await.expect("release");
        }
    }
}

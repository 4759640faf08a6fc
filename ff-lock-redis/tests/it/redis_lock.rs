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
/// It publishes keyspace events, so the conformance suite's change-feed
/// checks run on the feed they give.
fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER
        .get_or_init(RedisServer::start_with_keyspace_events)
        .as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url).with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = server()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect");
    Some(Arc::new(p))
}

mod conformance {
    ff_conformance::lock_conformance_tests!(optional super::provider());
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

/// A server that closes its clients' connections (its idle `timeout`,
/// Sentinel reconfiguring it) costs no one a lock: `acquire` takes it on
/// the reconnected connection instead of failing with a broken pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_goes_on_when_the_server_closes_connections() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let p = RedisLockProvider::connect(config(&server.url()))
        .await
        .expect("connect");
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));
    let mut last = 0;
    for round in 0..10 {
        server.drop_client_connections();
        let name = LockName::new(format!("dropped-{round}")).expect("lock name");
        let g = p
            .acquire(&name, &options)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(g.fencing_token().0 > last, "tokens rise");
        last = g.fencing_token().0;
        g.release().await.expect("release");
    }
}

/// A waiter whose subscription the server closed subscribes again: the
/// release wakes it, long before the holder's TTL or its own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_subscribes_again_after_its_connection_is_closed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let prefix = format!("test:{}:", ff_traits::identity::unique_id());
    let connect = || {
        RedisLockProvider::connect(
            RedisLockConfig::new(&url)
                .with_prefix(prefix.clone())
                .with_max_ttl(Duration::from_secs(90)),
        )
    };
    let (holder, waiter) = (
        connect().await.expect("connect"),
        connect().await.expect("connect"),
    );
    let name = LockName::new("resubscribe").expect("lock name");
    let long = LockOptions::default()
        .with_stale_threshold(Duration::from_secs(90))
        .with_timeout(Duration::from_secs(60));
    let held = holder.acquire(&name, &long).await.expect("acquire");
    let (notice, in_place) = ff_traits::WaitNotice::first();
    let wait = tokio::spawn({
        let name = name.clone();
        let long = long.clone().with_wait_notice(notice);
        async move {
            let started = std::time::Instant::now();
            let g = waiter
                .acquire(&name, &long)
                .await
                .expect("the waiter's grant");
            let waited = started.elapsed();
            g.release().await.expect("release");
            waited
        }
    });
    // Once the waiter says it waits it is subscribed; then the server
    // drops it, and the holder releases.
    tokio::time::timeout(Duration::from_secs(20), in_place)
        .await
        .expect("the waiter never said it waits")
        .expect("the waiter ended first");
    server.drop_client_connections();
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.release().await.expect("release after the drop");
    let waited = wait.await.expect("waiter");
    // Without a new subscription the waiter would wake only at its
    // heartbeat (a third of the TTL, 30 s) or deadline (60 s).
    assert!(
        waited < Duration::from_secs(20),
        "the release woke the waiter only after {waited:?}"
    );
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

/// Grants get their watchdog when their first renewal comes due, from one
/// scheduler per provider: a short grant after a long one must be renewed
/// on its own time, not when the long one's first renewal is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_grant_after_a_long_one_is_renewed_on_its_own_time() {
    let Some(server) = server() else { return };
    // One prefix for both: they take the same locks.
    let cfg = config(&server.url());
    let a = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let b = RedisLockProvider::connect(cfg).await.expect("connect");
    let long = LockOptions::default().with_stale_threshold(Duration::from_secs(30));
    let short = LockOptions::default().with_stale_threshold(Duration::from_millis(300));
    let name = |n: &str| LockName::new(n).expect("lock name");
    // The long grant's first renewal is due in 10 s: the scheduler sleeps
    // until then unless the short grant wakes it.
    let first = a.acquire(&name("long"), &long).await.expect("long");
    let second = a.acquire(&name("short"), &short).await.expect("short");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(second.is_held(), "{:?}", second.loss_watch().lost_reason());
    let got = b.try_acquire(&name("short"), &short).await.expect("try");
    assert!(
        got.is_none(),
        "the short grant expired: it was not renewed on its own time"
    );
    second.release().await.expect("release");
    first.release().await.expect("release");
}

/// Child of the takeover tests: holds lock `t` on server `role[0]` under
/// prefix `role[1]`, naming process group `role[2]` (if any), shared when
/// `role[3]` says so, until killed.
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
        if role.get(3).is_some_and(|m| m == "shared") {
            options = options.with_mode(ff_traits::LockMode::Shared);
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
    spawn_holder_in(url, prefix, group, "exclusive")
}

fn spawn_holder_in(url: &str, prefix: &str, group: Option<u32>, mode: &str) -> std::process::Child {
    let group = group.map(|g| g.to_string()).unwrap_or_default();
    let mut child = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("holder_child"),
        &[url, prefix, &group, mode],
    );
    ff_testkit::wait_for_line(&mut child, "held");
    child
}

/// Ten seconds: a third of the default TTL, so a grant in time proves the
/// dead holder's place was freed, not waited out.
fn within_ttl() -> LockOptions {
    LockOptions::default().with_timeout(Duration::from_secs(10))
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
    let options = within_ttl();

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
        .acquire(&t(), &within_ttl())
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
    let here = ff_traits::identity::hostname().to_owned();
    let space = ff_traits::identity::pid_space();
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

fn shared() -> LockOptions {
    LockOptions::default().with_mode(ff_traits::LockMode::Shared)
}

/// Eight reader processes hold the lock at once; a writer waits for them;
/// readers SIGKILLed on this host free their places at once (their TTL is
/// 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_reader_processes_overlap_and_dead_ones_free_their_places() {
    let Some(server) = server() else { return };
    let url = server.url();
    let cfg = config(&url);
    let mut readers: Vec<_> = (0..8)
        .map(|_| spawn_holder_in(&url, &cfg.prefix, None, "shared"))
        .collect();
    // All eight said "held" and none has let go: they overlap.
    let locks = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let listed = locks.locks().await.expect("list");
    let t_status = listed.iter().find(|l| l.name == "t").expect("t listed");
    assert_eq!(t_status.holders.len(), 8, "{t_status:?}");
    let short = LockOptions::default().with_timeout(Duration::from_millis(300));
    let err = locks
        .acquire(&t(), &short)
        .await
        .expect_err("readers hold it");
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    for r in &mut readers {
        r.kill().expect("SIGKILL");
        r.wait().expect("reap");
    }
    let writer = locks
        .acquire(&t(), &within_ttl())
        .await
        .expect("the dead readers' places are free");
    writer.release().await.expect("release");
}

/// Writers are preferred: once a writer waits, a new reader is refused
/// (readers already in finish); the writer gets the lock when the last
/// earlier reader leaves, and the new reader after the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_is_not_starved_by_new_readers() {
    let Some(locks) = provider().await else {
        return;
    };
    let name = LockName::new("rw-fair").expect("lock name");
    let first = locks.acquire(&name, &shared()).await.expect("reader");
    let (l, n) = (Arc::clone(&locks), name.clone());
    let writer = tokio::spawn(async move { l.acquire(&n, &within_ttl()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "the writer got in beside a reader");
    assert!(
        locks
            .try_acquire(&name, &shared())
            .await
            .expect("try")
            .is_none(),
        "a new reader got in ahead of the waiting writer"
    );
    first.release().await.expect("release");
    let w = writer
        .await
        .expect("task")
        .expect("the writer got the lock");
    assert!(
        locks
            .try_acquire(&name, &shared())
            .await
            .expect("try")
            .is_none(),
        "a reader got in beside the writer"
    );
    w.release().await.expect("release");
    let late = locks
        .try_acquire(&name, &shared())
        .await
        .expect("try")
        .expect("the reader gets in once the writer is done");
    late.release().await.expect("release");
}

/// A writer that gives up lifts its mark: readers are not kept out by a
/// writer no longer waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_gives_up_lets_readers_in() {
    let Some(locks) = provider().await else {
        return;
    };
    let name = LockName::new("rw-gave-up").expect("lock name");
    let reader = locks.acquire(&name, &shared()).await.expect("reader");
    let short = LockOptions::default().with_timeout(Duration::from_millis(200));
    assert!(locks.acquire(&name, &short).await.is_err());
    let second = locks
        .try_acquire(&name, &shared())
        .await
        .expect("try")
        .expect("a reader refused after the writer gave up");
    second.release().await.expect("release");
    reader.release().await.expect("release");
}

/// Names that look like another lock's keys are other locks: `a`,
/// `a:fence`, `a:readers` and `a:writer` are held at once, each with its own
/// rising tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_reach_another_locks_keys() {
    let Some(locks) = provider().await else {
        return;
    };
    let mut held = Vec::new();
    for name in ["a", "a:fence", "a:readers", "a:writer", "released:a"] {
        let name = LockName::new(name).expect("lock name");
        held.push(
            locks
                .try_acquire(&name, &LockOptions::default())
                .await
                .expect("try")
                .unwrap_or_else(|| panic!("{name} was refused")),
        );
    }
    for g in held {
        g.release().await.expect("release");
    }
    let a = LockName::new("a").expect("lock name");
    let g1 = locks.acquire(&a, &LockOptions::default()).await.expect("a");
    let t1 = g1.fencing_token();
    g1.release().await.expect("release");
    let g2 = locks.acquire(&a, &LockOptions::default()).await.expect("a");
    assert!(g2.fencing_token() > t1);
    g2.release().await.expect("release");
}

/// A writer SIGKILLed while it waits leaves its mark, but the mark names
/// it: a reader on its host lifts it at once instead of waiting the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_while_waiting_does_not_keep_readers_out() {
    let Some(server) = server() else { return };
    let url = server.url();
    let cfg = config(&url);
    let locks = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let reader = locks.acquire(&t(), &shared()).await.expect("reader");
    // The writer waits behind the reader (it never says "held").
    let mut writer = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("holder_child"),
        &[&url, &cfg.prefix, "", "exclusive"],
    );
    let mut conn = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let mark = format!("{}t\x1fwriter", cfg.prefix);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&mark)
            .query_async(&mut conn)
            .await
            .expect("EXISTS");
        if exists {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never marked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        locks
            .try_acquire(&t(), &shared())
            .await
            .expect("try")
            .is_none(),
        "a reader got in ahead of the waiting writer"
    );
    writer.kill().expect("SIGKILL");
    writer.wait().expect("reap");
    let late = locks
        .acquire(&t(), &shared().with_timeout(Duration::from_secs(10)))
        .await
        .expect("the dead writer's mark was lifted");
    late.release().await.expect("release");
    reader.release().await.expect("release");
}

/// The server decides: without keyspace events of every class the lock
/// writes there is no feed (watchers poll); with them there is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_feed_only_where_the_server_publishes_keyspace_events() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let p = RedisLockProvider::connect(config(&server.url()))
        .await
        .expect("connect");
    assert!(
        p.watch().await.expect("watch").is_none(),
        "events are off by default"
    );
    server.cli(&["CONFIG", "SET", "notify-keyspace-events", "Eg$hx"]);
    assert!(
        p.watch().await.expect("watch").is_none(),
        "keyevent events only"
    );
    server.cli(&["CONFIG", "SET", "notify-keyspace-events", "Kg$"]);
    assert!(p.watch().await.expect("watch").is_none(), "no hash events");
    server.cli(&["CONFIG", "SET", "notify-keyspace-events", "Kg$hx"]);
    assert!(p.watch().await.expect("watch").is_some());
}

/// The feed wakes on another client's grant; a restart of the server
/// wakes it, and it subscribes again by itself (quiet while nothing
/// happens, awake at the next grant); when the server stops publishing
/// the events, the feed breaks and says why, so its watcher polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyspace_feed_outlives_a_restart_and_breaks_when_events_stop() {
    let Some(mut server) = RedisServer::start_with_keyspace_events() else {
        return;
    };
    let cfg = config(&server.url()).with_call_timeout(Duration::from_millis(500));
    let watcher = RedisLockProvider::connect(cfg.clone())
        .await
        .expect("connect");
    let other = RedisLockProvider::connect(cfg).await.expect("connect");
    let mut feed = watcher.watch().await.expect("watch").expect("a feed");
    assert!(feed.lapses(), "leases lapse with time");
    let wake = Duration::from_secs(5);
    let name = LockName::new("fed").expect("lock name");

    let g = other
        .acquire(&name, &LockOptions::default())
        .await
        .expect("acquire");
    tokio::time::timeout(wake, feed.changed())
        .await
        .expect("another client's grant wakes the feed")
        .expect("feed");
    g.release().await.expect("release");

    server.restart();
    // Wake-ups while it subscribes again (each lets a watcher read).
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        if let Ok(woke) = tokio::time::timeout(Duration::from_millis(200), feed.changed()).await {
            woke.expect("a restart does not break the feed");
        }
    }
    // Subscribed again: a broken feed would wake within a second.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), feed.changed())
            .await
            .is_err(),
        "a quiet server, after the restart, wakes nobody"
    );
    let g = other
        .acquire(&name, &LockOptions::default().with_timeout(wake))
        .await
        .expect("acquire after the restart");
    tokio::time::timeout(wake, feed.changed())
        .await
        .expect("a grant after the restart wakes the feed")
        .expect("feed");
    g.release().await.expect("release");

    server.cli(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    server.drop_client_connections();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let broke = loop {
        assert!(
            tokio::time::Instant::now() < until,
            "the feed never noticed the events were turned off"
        );
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_millis(500), feed.changed()).await {
            break e;
        }
    };
    assert!(
        broke.to_string().contains("notify-keyspace-events"),
        "{broke}"
    );
}

/// A renewal moves only a lease's end: it wakes no watcher (whose feed
/// lapses, so it reads now and then anyway); the release does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_do_not_wake_the_feed() {
    let Some(server) = server() else { return };
    // A lease of 600 ms: renewed every 200 ms.
    let cfg = config(&server.url()).with_max_ttl(Duration::from_millis(600));
    let p = RedisLockProvider::connect(cfg).await.expect("connect");
    ff_conformance::lock::renewals_do_not_wake_the_feed(Arc::new(p)).await;
}

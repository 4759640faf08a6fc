//! A partition between a holder and Redis: the holder reaches Redis
//! through a proxy the test runs ([`ff_testkit::net::Blackhole`]), which,
//! once cut, lets nothing through either way and keeps the connections
//! open (what a dead link looks like: no reset). Another client, with its own link,
//! waits for the lock. The history of grants as each holder saw them
//! (from the request's departure until the loss was reported) must not
//! overlap: the cut-off holder learns of its loss before the other is
//! granted the lock, even when a renewal call hangs longer than the TTL.

#![allow(clippy::print_stdout)] // the figures are the report

use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::net::Blackhole;
use ff_testkit::redis::RedisServer;
use ff_traits::{LockName, LockOptions, LockProvider};

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_from_redis_learns_its_loss_before_anyone_else_is_granted() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Long enough that renewals get through on a loaded machine (they go
    // every third of it), short enough to keep the test quick.
    let ttl = Duration::from_secs(2);
    let prefix = format!("partition:{}:", ff_traits::identity::unique_id());
    let proxy = Blackhole::start(port_of(&server.url()));
    // The holder's calls may hang far longer than its TTL (the default
    // call timeout, 2 s): it must not wait for them to learn its loss.
    let holder = RedisLockProvider::connect(
        RedisLockConfig::new(proxy.redis_url())
            .with_prefix(&prefix)
            .with_max_ttl(ttl),
    )
    .await
    .expect("holder connects");
    let other = RedisLockProvider::connect(
        RedisLockConfig::new(server.url())
            .with_prefix(&prefix)
            .with_max_ttl(ttl),
    )
    .await
    .expect("other connects");
    let name = LockName::new("partitioned").expect("name");
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));

    let guard = holder.acquire(&name, &options).await.expect("acquire");
    let granted_a = Instant::now();
    // Renewals keep it across several TTLs while the link is up.
    tokio::time::sleep(ttl * 2).await;
    assert!(guard.is_held(), "renewals kept it");
    let cut_at = Instant::now();
    proxy.cut();
    let mut watch = guard.loss_watch();
    let loss = tokio::spawn(async move {
        let _ = watch.lost().await;
        Instant::now()
    });
    let granted_b = {
        let g = other
            .acquire(&name, &options)
            .await
            .expect("the other acquires");
        let at = Instant::now();
        g.release().await.expect("release");
        at
    };
    let lost_at = tokio::time::timeout(Duration::from_secs(10), loss)
        .await
        .expect("the loss is reported")
        .expect("loss task");
    println!(
        "partition holder|redis: held {:.0} ms before the cut; loss noticed {:.0} ms after \
         the cut; the other holder granted {:.0} ms after the cut; overlap {} ms (TTL {} ms)",
        (cut_at - granted_a).as_secs_f64() * 1e3,
        (lost_at - cut_at).as_secs_f64() * 1e3,
        (granted_b - cut_at).as_secs_f64() * 1e3,
        if lost_at > granted_b {
            format!("{:.0}", (lost_at - granted_b).as_secs_f64() * 1e3)
        } else {
            "0".to_owned()
        },
        ttl.as_millis()
    );
    // The holder stops counting the lock at its validity's end, a drift
    // margin (1 % + 2 ms) before the key can expire on the server; both
    // instants here are read after a timer and a task switch, which on a
    // loaded machine can take tens of milliseconds. The defect this
    // catches is an overlap of up to the call timeout (2 s): a loss told
    // only when the hung renewal gives up.
    let jitter = Duration::from_millis(50);
    assert!(
        lost_at <= granted_b + jitter,
        "the cut-off holder still counted the lock its own {:.0} ms after the other was granted it",
        (lost_at - granted_b).as_secs_f64() * 1e3
    );
    assert!(
        lost_at - cut_at <= ttl,
        "the loss was noticed {:?} after the cut, more than a TTL",
        lost_at - cut_at
    );
    drop(guard);
}

/// A fenced resource: it accepts a write only when no earlier write
/// carried a higher fencing token.
///
/// It is an append-only log whose order the kernel fixes: each write is one
/// `O_APPEND` line, `TOKEN WRITER SEQ`, and whether it was accepted follows
/// from the lines before it alone. So a writer stopped (SIGSTOP) anywhere in
/// here cannot have its write judged against an older state when it resumes,
/// as a read-compare-rename would (the test's earlier resource did, and a
/// holder stopped between its compare and its rename overwrote the newer
/// token after resume). Returns the write's position in the log and whether
/// it was accepted.
fn fenced_write(resource: &std::path::Path, token: u64, seq: u64) -> (usize, bool) {
    use std::io::Write;
    let line = format!("{token} {} {seq}\n", std::process::id());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(resource)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .expect("append to the fenced resource");
    let log = std::fs::read_to_string(resource).expect("read the fenced resource");
    let mut highest_before = 0;
    for (at, written) in log.lines().enumerate() {
        if written == line.trim_end() {
            return (at, token >= highest_before);
        }
        highest_before = highest_before.max(log_token(written));
    }
    panic!("the fenced resource lost a write: {line}");
}

fn log_token(line: &str) -> u64 {
    line.split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("a fenced resource line starts with its token")
}

/// Child: holds `paused` on `role[0]` under `role[1]` (TTL 2 s) and
/// writes to the fenced resource `role[2]` every 20 ms while it counts the
/// lock its own, reporting each write: `held TOKEN`, then `wrote AT` or
/// `refused AT` lines (AT: the write's position in the resource's log),
/// then `lost` when it learns of the loss.
#[test]
fn paused_holder_child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    ff_testkit::runtime().block_on(async {
        let p = RedisLockProvider::connect(
            RedisLockConfig::new(&role[0])
                .with_prefix(&role[1])
                .with_max_ttl(Duration::from_secs(2)),
        )
        .await
        .expect("connect");
        let guard = p
            .acquire(
                &LockName::new("paused").expect("name"),
                &LockOptions::default(),
            )
            .await
            .expect("hold");
        let token = guard.fencing_token().0;
        println!("held {token}");
        let resource = std::path::PathBuf::from(&role[2]);
        for seq in 0.. {
            if !guard.is_held() {
                println!("lost");
                break;
            }
            match fenced_write(&resource, token, seq) {
                (at, true) => println!("wrote {at}"),
                (at, false) => println!("refused {at}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// A holder paused (SIGSTOP) past its TTL: another client is granted the
/// lock, with a higher token, and writes; the paused holder, resumed,
/// learns of its loss, and every write it attempts meanwhile is refused
/// by the resource because its token is lower.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_ttl_is_fenced_off_and_learns_its_loss() {
    use std::io::BufRead;
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = format!("paused:{}:", ff_traits::identity::unique_id());
    let dir = ff_testkit::fresh_dir(&std::env::temp_dir().to_string_lossy(), "fenced");
    let resource = dir.join("resource");
    let mut child = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("paused_holder_child"),
        &[&server.url(), &prefix, &resource.to_string_lossy()],
    );
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send((Instant::now(), line));
        }
    });
    // The harness prints its own lines first.
    let old_token: u64 = loop {
        let (_, line) = rx.recv_timeout(Duration::from_secs(10)).expect("held");
        if let Some(token) = line.strip_prefix("held ") {
            break token.parse().expect("held TOKEN");
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");
    let stopped = Instant::now();
    let other = RedisLockProvider::connect(
        RedisLockConfig::new(server.url())
            .with_prefix(&prefix)
            .with_max_ttl(Duration::from_secs(2)),
    )
    .await
    .expect("connect");
    let guard = other
        .acquire(
            &LockName::new("paused").expect("name"),
            &LockOptions::default().with_timeout(Duration::from_secs(10)),
        )
        .await
        .expect("the other is granted the lock once the TTL ran out");
    let granted = stopped.elapsed();
    // What it said before the pause has been read by now (the grant took
    // the rest of a TTL): drop it. A report that still comes of a write
    // before the grant is told apart by its position in the resource's log.
    while rx.try_recv().is_ok() {}
    let new_token = guard.fencing_token().0;
    assert!(
        new_token > old_token,
        "tokens rise: {old_token} then {new_token}"
    );
    let (granted_at, accepted) = fenced_write(&resource, new_token, 0);
    assert!(accepted, "the new holder writes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).expect("SIGCONT");
    let resumed = Instant::now();
    let mut wrote = 0;
    let mut refused = 0;
    let lost_after = loop {
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the resumed holder reports its loss");
        // A write the holder made before its pause may be reported only
        // now (stopped between its write and its report): the log position
        // tells which writes came after the new holder's.
        let after_grant = |at: &str| at.parse::<usize>().expect("AT") > granted_at;
        match line.split_once(' ') {
            Some(("wrote", at)) if after_grant(at) => wrote += 1,
            Some(("refused", at)) if after_grant(at) => refused += 1,
            _ if line == "lost" => break at - resumed,
            _ => {} // the harness's own lines, and reports of writes before the grant
        }
    };
    let _ = child.wait();
    guard.release().await.expect("release");
    println!(
        "pause holder past TTL: the other granted {:.0} ms after SIGSTOP (TTL 2 s), token \
         {old_token} -> {new_token}; resumed, the paused holder learned its loss after {:.1} ms; \
         its writes meanwhile: {wrote} accepted, {refused} refused by token",
        granted.as_secs_f64() * 1e3,
        lost_after.as_secs_f64() * 1e3
    );
    assert_eq!(
        wrote, 0,
        "a write with the old token was accepted after the new grant"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Cross-process behaviour with real child processes.
//!
//! Children are this test binary run again through `ff_testkit::spawn_self`:
//! the `child_entry` test then plays the requested role and exits.

#![allow(clippy::print_stdout)] // child processes report to the parent on stdout

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
#[cfg(unix)]
use std::process::Command;
use std::time::{Duration, Instant};

use ff_lock_file::{FileLockMode, FileLockProvider};
use ff_traits::{Error, LockOptions, LockProvider};

fn fresh_dir(tag: &str) -> PathBuf {
    ff_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), &format!("ff-lock-file-{tag}"))
}

fn mode_name(mode: FileLockMode) -> &'static str {
    if mode == FileLockMode::Lease {
        "lease"
    } else {
        "kernel"
    }
}

fn provider(dir: &Path, mode: &str) -> FileLockProvider {
    let p = FileLockProvider::new(dir);
    if mode == "lease" {
        p.with_mode(FileLockMode::Lease)
    } else {
        p
    }
}

/// Runs a child role when this binary was started as a child.
#[test]
fn child_entry() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    let args: Vec<&str> = role.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match args.as_slice() {
            ["counter", dir, mode, file, n] => {
                let p = provider(Path::new(dir), mode);
                let opts = LockOptions::default().with_timeout(Duration::from_secs(60));
                for _ in 0..n.parse::<u32>().expect("n") {
                    let g = p
                        .acquire(
                            &ff_traits::LockName::new("counter").expect("lock name"),
                            &opts,
                        )
                        .await
                        .expect("acquire");
                    let v: u64 = std::fs::read_to_string(file)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                    std::fs::write(file, (v + 1).to_string()).expect("write");
                    g.release().await.expect("release");
                }
            }
            ["hold", dir, mode, stale_ms, rest @ ..] => {
                let p = provider(Path::new(dir), mode);
                let mut opts = LockOptions::default()
                    .with_operation("child-holder")
                    .with_stale_threshold(Duration::from_millis(stale_ms.parse().expect("ms")));
                if let [group, ..] = rest {
                    opts = opts.with_process_group(group.parse().expect("group"));
                }
                if let [_, lock_mode] = rest
                    && *lock_mode == "intent_exclusive"
                {
                    opts = opts.with_mode(ff_traits::LockMode::IntentExclusive);
                }
                let _g = p
                    .acquire(
                        &ff_traits::LockName::new("victim").expect("lock name"),
                        &opts,
                    )
                    .await
                    .expect("acquire");
                println!("LOCKED");
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            other => panic!("unknown child role {other:?}"),
        }
    });
    std::process::exit(0);
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn counter_race(mode: FileLockMode, procs: usize, each: u32) {
    let dir = fresh_dir("counter");
    let counter = dir.join("counter.txt");
    let n = each.to_string();
    let children: Vec<Child> = (0..procs)
        .map(|_| {
            ff_testkit::spawn_self(
                &ff_testkit::test_entry!("child_entry"),
                &[
                    "counter",
                    dir.to_str().expect("utf8"),
                    mode_name(mode),
                    counter.to_str().expect("utf8"),
                    &n,
                ],
            )
        })
        .collect();
    for mut c in children {
        let status = c.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "child failed: {err}");
    }
    let total: u64 = std::fs::read_to_string(&counter)
        .expect("counter")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(
        total,
        procs as u64 * u64::from(each),
        "lost increments under the lock"
    );
}

#[test]
fn eight_processes_increment_exactly_kernel() {
    counter_race(FileLockMode::Kernel, 8, 200);
}

#[test]
fn eight_processes_increment_exactly_lease() {
    counter_race(FileLockMode::Lease, 8, 50);
}

async fn sigkilled_holder_frees(mode: FileLockMode) -> Duration {
    let dir = fresh_dir("sigkill");
    let mut child = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("child_entry"),
        &[
            "hold",
            dir.to_str().expect("utf8"),
            mode_name(mode),
            "60000",
        ],
    );
    ff_testkit::wait_for_line(&mut child, "LOCKED");
    let p = provider(&dir, mode_name(mode));
    let busy = p
        .try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("try");
    assert!(busy.is_none(), "lock granted while the child holds it");
    let (notice, waiting) = ff_traits::WaitNotice::first();
    let options = LockOptions::default()
        .with_timeout(Duration::from_secs(10))
        .with_wait_notice(notice);
    let waiter = tokio::spawn(async move {
        let g = p
            .acquire(
                &ff_traits::LockName::new("victim").expect("lock name"),
                &options,
            )
            .await;
        (Instant::now(), g)
    });
    // The holder dies while the waiter waits, not before it looks.
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter never said it waits")
        .expect("the waiter ended first");
    let killed_at = Instant::now();
    kill(&mut child);
    let (got_at, guard) = waiter.await.expect("waiter");
    let guard = guard.expect("the waiter did not get the dead holder's lock");
    guard.release().await.expect("release");
    got_at.saturating_duration_since(killed_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_holder_frees_the_lock_kernel() {
    let took = sigkilled_holder_frees(FileLockMode::Kernel).await;
    eprintln!("kernel: SIGKILL to waiter's grant: {took:?}");
}

// A dead holder's lease is taken at once through pid liveness, which only
// Unix offers here; elsewhere it is taken when the lease runs out.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_holder_frees_the_lock_lease() {
    // The lease is an hour long: only the dead pid can free it in time.
    let took = sigkilled_holder_frees(FileLockMode::Lease).await;
    eprintln!("lease: SIGKILL to waiter's grant: {took:?}");
}

/// A holder that dies while the command it runs (its process group) lives
/// keeps the lock until that group ends, in both modes: the kernel frees
/// the file lock with the holder, but the lock's promise covers the
/// command.
#[cfg(unix)]
async fn a_dead_holders_running_group_keeps_the_lock(mode: FileLockMode) {
    a_dead_holders_running_group_keeps_the_lock_in(mode, "exclusive").await;
}

/// As above, for a holder in `lock_mode` (`exclusive`, or
/// `intent_exclusive`: a hierarchy's intention lock, whose record the
/// kernel does not clear).
#[cfg(unix)]
async fn a_dead_holders_running_group_keeps_the_lock_in(mode: FileLockMode, lock_mode: &str) {
    use std::os::unix::process::CommandExt;
    let dir = fresh_dir("group");
    let mut command = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .expect("spawn the command");
    let group = command.id().to_string();
    let mut child = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("child_entry"),
        &[
            "hold",
            dir.to_str().expect("utf8"),
            mode_name(mode),
            "60000",
            &group,
            lock_mode,
        ],
    );
    ff_testkit::wait_for_line(&mut child, "LOCKED");
    kill(&mut child);
    let p = provider(&dir, mode_name(mode));
    let name = ff_traits::LockName::new("victim").expect("lock name");
    let short = LockOptions::default().with_timeout(Duration::from_millis(300));
    assert!(
        p.try_acquire(&name, &short).await.expect("try").is_none(),
        "{mode:?}: granted while the dead holder's command runs"
    );
    let err = p.acquire(&name, &short).await.expect_err("the group runs");
    assert!(matches!(err, Error::LockTimeout { .. }), "{mode:?}: {err}");
    let waiter = tokio::spawn(async move {
        p.acquire(
            &name,
            &LockOptions::default().with_timeout(Duration::from_secs(10)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "{mode:?}: granted while the group runs"
    );
    kill(&mut command);
    let guard = waiter
        .await
        .expect("waiter")
        .expect("granted once the group ended");
    guard.release().await.expect("release");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_running_group_keeps_the_lock_kernel() {
    a_dead_holders_running_group_keeps_the_lock(FileLockMode::Kernel).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_intention_holders_running_group_keeps_the_lock_kernel() {
    a_dead_holders_running_group_keeps_the_lock_in(FileLockMode::Kernel, "intent_exclusive").await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_running_group_keeps_the_lock_lease() {
    a_dead_holders_running_group_keeps_the_lock(FileLockMode::Lease).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lease_holder_is_never_taken() {
    let dir = fresh_dir("live-lease");
    // A very short lease: the holder refreshes it every 100 ms, and being
    // alive on this host it is never stale whatever its age.
    let mut child = ff_testkit::spawn_self(
        &ff_testkit::test_entry!("child_entry"),
        &["hold", dir.to_str().expect("utf8"), "lease", "300"],
    );
    ff_testkit::wait_for_line(&mut child, "LOCKED");
    let p = provider(&dir, "lease");
    let err = p
        .acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default().with_timeout(Duration::from_millis(1_200)),
        )
        .await
        .expect_err("a live holder's lease was taken");
    match err {
        Error::LockTimeout { holder, .. } => {
            let h = holder.expect("holder named");
            assert_eq!(h.operation, "child-holder");
            assert!(
                h.refreshed_at > h.acquired_at,
                "the holder did not refresh its lease"
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
    let forced = p
        .force_release(&ff_traits::LockName::new("victim").expect("lock name"))
        .await
        .expect("force");
    assert!(
        matches!(forced.outcome, ff_traits::ForceOutcome::Refused { .. }),
        "force took a live lease: {forced:?}"
    );
    kill(&mut child);
}

fn write_foreign_lease(dir: &Path, age: Duration) {
    let now = ff_traits::Timestamp::now();
    let info = serde_json::json!({
        "id": "remote-grant", "name": "victim", "mode": "exclusive", "pid": 4242,
        "hostname": "another-host.invalid", "acquired_at": now.as_millis(),
        "refreshed_at": now.as_millis(), "operation": "remote", "metadata": null,
        "fencing_token": 5
    });
    let content = serde_json::json!({"format": "ff-lease/1", "lease_ms": 1000, "holder": info});
    let path = dir.join("victim.lease");
    std::fs::write(&path, serde_json::to_vec(&content).expect("json")).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() - age)
        .expect("mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_lease_is_judged_by_its_age() {
    let dir = fresh_dir("remote-lease");
    let p = provider(&dir, "lease");
    write_foreign_lease(&dir, Duration::from_millis(0));
    assert!(
        p.try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default()
        )
        .await
        .expect("try")
        .is_none(),
        "a fresh lease from another host was broken"
    );
    write_foreign_lease(&dir, Duration::from_secs(5));
    let g = p
        .try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("try")
        .expect("a lapsed lease from another host was not broken");
    g.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_lease_file_is_judged_by_age_not_forever() {
    let dir = fresh_dir("empty-lease");
    let path = dir.join("victim.lease");
    std::fs::write(&path, b"").expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
        .expect("mtime");
    let p = provider(&dir, "lease");
    let g = p
        .try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default().with_stale_threshold(Duration::from_secs(60)),
        )
        .await
        .expect("try")
        .expect("an old empty lease blocks forever");
    g.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_lock_file_never_blocks_kernel_mode() {
    let dir = fresh_dir("garbage");
    std::fs::write(dir.join("victim.lock"), b"\x00\xffnot json at all").expect("write");
    let p = provider(&dir, "kernel");
    let g = p
        .try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("try")
        .expect("garbage content blocked the lock");
    let token = g.fencing_token();
    g.release().await.expect("release");
    let g2 = p
        .acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("acquire");
    assert!(g2.fencing_token() > token);
    g2.release().await.expect("release");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_lock_file_is_refused() {
    let dir = fresh_dir("symlink");
    let target = dir.join("elsewhere.txt");
    std::fs::write(&target, b"precious").expect("write");
    std::os::unix::fs::symlink(&target, dir.join("victim.lock")).expect("symlink");
    let p = provider(&dir, "kernel");
    let err = p
        .acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect_err("followed a symlink");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read(&target).expect("read"),
        b"precious",
        "the link target changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_lock_directory_fails_at_once() {
    let dir = fresh_dir("baddir");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let p = FileLockProvider::new(file.join("locks"));
    let started = Instant::now();
    let err = p
        .acquire(
            &ff_traits::LockName::new("x").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect_err("lock directory under a file");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "error came after waiting"
    );
    assert!(
        err.to_string().contains("cannot create lock directory"),
        "{err}"
    );

    // A read-only lock directory: the immutable attribute binds root too.
    let ro = fresh_dir("readonly");
    let Some(_frozen) = ff_testkit::Immutable::set(&ro) else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "read-only lock directory (chattr +i needs root here)",
        );
        return;
    };
    let started = Instant::now();
    let err = FileLockProvider::new(&ro)
        .acquire(
            &ff_traits::LockName::new("x").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect_err("read-only lock directory");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "error came after waiting"
    );
    assert!(err.to_string().contains("writable"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_processes_do_not_inherit_the_lock() {
    let dir = fresh_dir("cloexec");
    let p = provider(&dir, "kernel");
    let g = p
        .acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("acquire");
    let mut sleeper = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
    g.release().await.expect("release");
    let again = FileLockProvider::new(&dir)
        .try_acquire(
            &ff_traits::LockName::new("victim").expect("lock name"),
            &LockOptions::default(),
        )
        .await
        .expect("try");
    kill(&mut sleeper);
    assert!(
        again.is_some(),
        "a child process kept the lock after the parent released it"
    );
}

/// Records of shared holders that died, planted in a lock's holder table.
#[cfg(unix)]
fn plant_dead_shared_holders(dir: &Path, name: &str, mode: ff_traits::LockMode, count: usize) {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("reap");
    let options = LockOptions::default().with_mode(mode);
    let holders: Vec<ff_traits::LockInfo> = (0..count)
        .map(|i| {
            let mut h = ff_traits::LockInfo::for_current_process(
                name,
                ff_traits::FencingToken(i as u64 + 1),
                &options,
                ff_traits::Timestamp::now(),
            );
            h.pid = dead_pid;
            h.id = format!("dead-{i}");
            h
        })
        .collect();
    let table = serde_json::json!({
        "format": "ff-holders/1",
        "last_token": count,
        "holders": holders,
    });
    std::fs::write(
        dir.join(format!("{name}.holders")),
        serde_json::to_vec(&table).expect("json"),
    )
    .expect("plant table");
}

fn table_holders(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read(dir.join(format!("{name}.holders"))).expect("read table");
    let table: serde_json::Value = serde_json::from_slice(text.trim_ascii()).expect("table json");
    table["holders"].as_array().expect("holders").clone()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_shared_holders_records_neither_block_nor_pile_up() {
    use ff_traits::{LockMode, LockName};
    let dir = fresh_dir("dead-records");
    let p = provider(&dir, "kernel");
    // A dead reader in the way of an intention to write: judged, dropped.
    plant_dead_shared_holders(&dir, "node", LockMode::Shared, 1);
    let ix = LockOptions::default().with_mode(LockMode::IntentExclusive);
    let g = p
        .try_acquire(&LockName::new("node").expect("name"), &ix)
        .await
        .expect("try")
        .expect("a dead reader's record kept an IX out");
    assert!(
        g.fencing_token().0 > 1,
        "tokens continue past the table's last"
    );
    assert_eq!(table_holders(&dir, "node").len(), 1, "only the live IX");
    g.release().await.expect("release");
    assert!(
        table_holders(&dir, "node").is_empty(),
        "released: no record"
    );

    // Many compatible dead records: not in the way, but a table past its
    // threshold has every record judged, so they cannot pile up.
    plant_dead_shared_holders(&dir, "crowd", LockMode::Shared, 40);
    let g = p
        .try_acquire(
            &LockName::new("crowd").expect("name"),
            &LockOptions::default().with_mode(LockMode::Shared),
        )
        .await
        .expect("try")
        .expect("compatible records do not block");
    assert_eq!(table_holders(&dir, "crowd").len(), 1, "dead records pruned");
    g.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_holder_table_never_blocks_and_is_rewritten() {
    use ff_traits::{LockMode, LockName};
    let dir = fresh_dir("garbage-table");
    let p = provider(&dir, "kernel");
    let name = LockName::new("victim").expect("name");
    let shared = LockOptions::default().with_mode(LockMode::Shared);
    for options in [shared.clone(), LockOptions::default()] {
        std::fs::write(dir.join("victim.holders"), b"\x00\xffnot a table").expect("write");
        let g = p
            .try_acquire(&name, &options)
            .await
            .expect("garbage is no error")
            .expect("garbage blocked the lock");
        g.release().await.expect("release");
        assert!(
            table_holders(&dir, "victim").is_empty(),
            "rewritten as a table, without the released holder"
        );
    }
}

//! Network partitions, not only kills: `redis-server` runs in a network
//! namespace of its own, and two `ff lock` holders each in another, each
//! joined to the server's by a veth pair (private test addresses, no
//! default route). The link of the holder that has the lock is cut (its
//! veth ends set down: packets dropped, no reset), while the other waits
//! for the lock through its own link.
//!
//! Every holder's command writes its history (start and end of its grant
//! as it saw it: its fencing token, when it began, when `ff` stopped it or
//! it ended) and writes to a fenced resource (a file that refuses a token
//! lower than the highest it has seen). The checker asserts: the cut-off
//! holder notices its loss and is stopped (exit 79) before its lease ends;
//! the grants of different holders never overlap in time; no write is
//! refused (with one Redis there is nothing stale to refuse). It reports
//! the time to notice loss and the hand-over gap.
//!
//! Needs root and `ip` (CI, as root, requires them). Rounds:
//! `FF_PARTITION_ROUNDS` (default 3).

#![cfg(target_os = "linux")]
#![allow(clippy::print_stdout)] // the figures are the report

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ff_testkit::git::TestRepo;
use ff_testkit::netns::{Link, Namespace, available};

use crate::common::isolated;

/// The lease of the holders' lock: a holder cut off must notice its loss
/// within it.
const LEASE_MS: u64 = 3_000;

/// The holder's command: history, then fenced writes until stopped (or
/// `$4` writes).
const HOLDER: &str = r#"who=$1; hist=$2; res=$3; n=$4
now() { date +%s%N; }
trap 'echo "end $who $FF_FENCING_TOKEN $(now)" >> "$hist"; exit 0' TERM
echo "start $who $FF_FENCING_TOKEN $(now)" >> "$hist"
i=0
while [ "$n" = 0 ] || [ "$i" -lt "$n" ]; do
  flock "$res/lock" sh -c 'max=$(cat "$1/max" 2>/dev/null || echo 0)
    if [ "$2" -ge "$max" ]; then echo "$2" > "$1/max"; echo "ok $3 $2" >> "$1/log"
    else echo "refused $3 $2" >> "$1/log"; fi' _ "$res" "$FF_FENCING_TOKEN" "$who"
  i=$((i+1))
  sleep 0.05 & wait $!
done
echo "end $who $FF_FENCING_TOKEN $(now)" >> "$hist"
"#;

fn rounds() -> u32 {
    std::env::var("FF_PARTITION_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// One grant as its holder saw it.
#[derive(Debug, Clone, Copy)]
struct Grant {
    token: u64,
    from: u128,
    until: u128,
}

/// The grant of `who` in the history file.
fn grant(history: &str, who: &str) -> Option<Grant> {
    let mut grant: Option<Grant> = None;
    for line in history.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [what, w, token, at] = f[..] else {
            continue;
        };
        if w != who {
            continue;
        }
        let (token, at) = (token.parse().ok()?, at.parse().ok()?);
        match what {
            "start" => {
                grant = Some(Grant {
                    token,
                    from: at,
                    until: u128::MAX,
                });
            }
            "end" => {
                if let Some(g) = grant.as_mut() {
                    g.until = g.until.min(at);
                }
            }
            _ => {}
        }
    }
    grant
}

/// Waits for `child` at most `within`; its exit code.
fn wait_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `redis-server` in `ns`, listening on `binds`; ready when it answers.
fn start_redis(
    ns: &Namespace,
    dir: &Path,
    binds: &str,
    probe_from: &Namespace,
    probe: &str,
) -> Child {
    let child = ns
        .command("redis-server")
        .args([
            "--port",
            "6379",
            "--bind",
            binds,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--protected-mode", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pong = probe_from
            .command("redis-cli")
            .args(["-h", probe, "-p", "6379", "ping"])
            .output()
            .expect("redis-cli");
        if String::from_utf8_lossy(&pong.stdout).trim() == "PONG" {
            return child;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server in {} never answered",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ff --lock URL lock ARGS -- sh HOLDER …` in `ns`.
#[allow(clippy::too_many_arguments)]
fn holder(
    ns: &Namespace,
    repo: &TestRepo,
    url: &str,
    lock_args: &[&str],
    who: &str,
    history: &Path,
    resource: &Path,
    writes: u32,
) -> Child {
    let mut c = ns.command(env!("CARGO_BIN_EXE_ff"));
    c.args(["--lock", url, "lock"])
        .args(lock_args)
        .args(["--", "sh", "-c", HOLDER, "holder", who])
        .arg(history)
        .arg(resource)
        .arg(writes.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG");
    isolated(&mut c, repo.path(), &repo.scratch("config"), &[])
        .spawn()
        .expect("ff lock")
}

/// Waits until `history` says `who` started.
fn wait_started(history: &Path, who: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(history).unwrap_or_default();
        if grant(&text, who).is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_holder_cut_off_from_redis_is_stopped_before_anyone_else_is_granted() {
    if !available() {
        return;
    }
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        ff_testkit::skip("FF_REQUIRE_REDIS", "redis-server is not installed");
        return;
    }
    let repo = TestRepo::new();
    let server = Namespace::new();
    let (ns_a, ns_b) = (Namespace::new(), Namespace::new());
    let link_a = Link::new("ffpa", &server, "10.213.1.1", &ns_a, "10.213.1.2");
    let _link_b = Link::new("ffpb", &server, "10.213.2.1", &ns_b, "10.213.2.2");
    let redis_dir = repo.scratch("redis");
    let mut redis = start_redis(
        &server,
        &redis_dir,
        "10.213.1.1 10.213.2.1",
        &ns_b,
        "10.213.2.1",
    );
    let (url_a, url_b) = ("redis://10.213.1.1:6379", "redis://10.213.2.1:6379");
    let lease = format!("{}ms", LEASE_MS);

    let mut notice_ms = Vec::new();
    let mut gaps_ms = Vec::new();
    let mut refused = 0;
    for round in 0..rounds() {
        let dir: PathBuf = repo.scratch(&format!("round-{round}"));
        let (history, resource) = (dir.join("history"), dir.join("resource"));
        std::fs::create_dir_all(&resource).expect("resource");
        let name = format!("partition-{round}");
        // A takes the lock, through the link about to be cut.
        let mut a = holder(
            &ns_a,
            &repo,
            url_a,
            &[&name, "--lease", &lease],
            "A",
            &history,
            &resource,
            0,
        );
        assert!(
            wait_started(&history, "A", Duration::from_secs(20)),
            "A never held the lock"
        );
        // B waits for it through its own link, and writes 10 times once granted.
        let mut b = holder(
            &ns_b,
            &repo,
            url_b,
            &[&name, "--timeout", "30s", "--lease", &lease],
            "B",
            &history,
            &resource,
            10,
        );
        std::thread::sleep(Duration::from_millis(300));
        let cut_at = now_ns();
        link_a.cut();
        let a_code = wait_code(&mut a, Duration::from_secs(30));
        let b_code = wait_code(&mut b, Duration::from_secs(60));
        link_a.heal();
        let a_err = a
            .stderr
            .take()
            .map(std::io::read_to_string)
            .and_then(Result::ok)
            .unwrap_or_default();
        assert_eq!(
            a_code,
            Some(79),
            "round {round}: A, cut off, must be stopped with 79: {a_err}"
        );
        assert_eq!(
            b_code,
            Some(0),
            "round {round}: B must get the lock and finish"
        );
        let text = std::fs::read_to_string(&history).expect("history");
        let (ga, gb) = (
            grant(&text, "A").expect("A's grant"),
            grant(&text, "B").expect("B's grant"),
        );
        assert!(
            gb.token > ga.token,
            "round {round}: tokens must rise: {ga:?} then {gb:?}"
        );
        assert!(
            ga.until <= gb.from,
            "round {round}: grants overlap as holders saw them: A {ga:?}, B {gb:?}"
        );
        let notice = (ga.until.saturating_sub(cut_at) / 1_000_000) as u64;
        assert!(
            notice < LEASE_MS,
            "round {round}: A noticed its loss {notice} ms after the cut, past the {LEASE_MS} ms lease"
        );
        notice_ms.push(notice);
        gaps_ms.push(((gb.from - ga.until) / 1_000_000) as u64);
        let log = std::fs::read_to_string(resource.join("log")).unwrap_or_default();
        refused += log.lines().filter(|l| l.starts_with("refused")).count();
    }
    let _ = redis.kill();
    let _ = redis.wait();
    notice_ms.sort_unstable();
    gaps_ms.sort_unstable();
    println!(
        "partition (netns, one Redis, lease {LEASE_MS} ms): {} rounds, 0 overlaps, {refused} writes refused; \
         loss noticed {:?} ms after the cut (median {} ms); hand-over gap {:?} ms",
        notice_ms.len(),
        notice_ms,
        notice_ms[notice_ms.len() / 2],
        gaps_ms
    );
    assert_eq!(refused, 0, "with one Redis no write should be stale");
}

//! Cross-process figures of the file lock, each beside bare `flock` (std's
//! `File::lock`) measured in the same run, candidate and baseline
//! interleaved block by block:
//!
//! 1. **Hand-off latency**: two processes pass one lock back and forth; the
//!    releaser stamps the time just before releasing, the blocked waiter
//!    just after acquiring. Median and p99.
//! 2. **Contended throughput**: 4 processes loop acquire + release on one
//!    lock for a fixed time; acquisitions per second and each one's share.
//! 3. **SIGKILL to grant**: a child holds the lock, a waiter blocks, the
//!    child is SIGKILLed; time from the kill to the waiter's grant.
//!
//! Run: `cargo bench -p ff-lock-file --bench file_lock_procs`. Without
//! `--bench` (as under `cargo test`), it runs a few rounds as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ff_lock_file::FileLockProvider;
use ff_traits::{LockOptions, LockProvider};

const ROLE: &str = "FF_BENCH_ROLE";

fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos(),
    )
    .expect("ns")
}

/// A lock under test: ours (through a runtime) or bare flock.
enum Lock {
    Ours(FileLockProvider, tokio::runtime::Runtime, String),
    Bare(File),
}

#[allow(clippy::large_enum_variant)] // one per process, never moved in a hot loop
enum Held {
    Ours(ff_traits::LockGuard),
    Bare,
}

impl Lock {
    fn open(kind: &str, dir: &Path, name: &str) -> Self {
        if kind == "cand" {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            Self::Ours(FileLockProvider::new(dir), rt, name.to_owned())
        } else {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(format!("{name}.bare")))
                .expect("open");
            Self::Bare(f)
        }
    }

    fn acquire(&self) -> Held {
        match self {
            Self::Ours(p, rt, name) => {
                let opts = LockOptions::default().with_timeout(Duration::from_secs(60));
                Held::Ours(
                    rt.block_on(
                        p.acquire(&ff_traits::LockName::new(name).expect("lock name"), &opts),
                    )
                    .expect("acquire"),
                )
            }
            Self::Bare(f) => {
                f.lock().expect("flock");
                Held::Bare
            }
        }
    }

    fn release(&self, held: Held) {
        match (self, held) {
            (Self::Ours(_, rt, _), Held::Ours(g)) => rt.block_on(g.release()).expect("release"),
            (Self::Bare(f), Held::Bare) => f.unlock().expect("unlock"),
            _ => unreachable!("mismatched lock"),
        }
    }
}

/// A tiny shared board, `[seq, stamp, ack]`, in one pre-opened file
/// written in place (fixed width), so posting costs one positioned write.
struct Board(File);

impl Board {
    fn open(path: &Path) -> Self {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("board");
        Self(f)
    }
    fn write(&self, vals: [u64; 3]) {
        use std::io::{Seek, SeekFrom};
        let text = format!("{:020} {:020} {:020}", vals[0], vals[1], vals[2]);
        let mut f = &self.0;
        f.seek(SeekFrom::Start(0)).expect("board");
        f.write_all(text.as_bytes()).expect("board");
    }
    fn read(&self) -> [u64; 3] {
        use std::io::{Read, Seek, SeekFrom};
        let mut buf = [0u8; 62];
        let mut f = &self.0;
        if f.seek(SeekFrom::Start(0)).is_err() || f.read_exact(&mut buf).is_err() {
            return [u64::MAX; 3];
        }
        let s = String::from_utf8_lossy(&buf);
        let v: Vec<u64> = s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 3 {
            [v[0], v[1], v[2]]
        } else {
            [u64::MAX; 3]
        }
    }
    fn wait_for(&self, pred: impl Fn([u64; 3]) -> bool) -> [u64; 3] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.read();
            if pred(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "peer process stalled");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Child role: one side of the ping-pong. Prints `<kind> <ns>` samples.
fn pingpong(me: u64, kind: &str, dir: &Path, name: &str, handoffs: u64) {
    let lock = Lock::open(kind, dir, name);
    let board = Board::open(&dir.join(format!("{name}.board")));
    let mut held = None;
    if me == 0 {
        held = Some(lock.acquire());
        board.write([0, 0, 99_999_999]);
        // Wait until the peer says it is about to block.
        std::fs::write(dir.join(format!("{name}.p0ready")), b"").expect("ready");
        while !dir.join(format!("{name}.p1ready")).exists() {
            std::thread::sleep(Duration::from_micros(100));
        }
    } else {
        std::fs::write(dir.join(format!("{name}.p1ready")), b"").expect("ready");
        while !dir.join(format!("{name}.p0ready")).exists() {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let mut out = std::io::stdout().lock();
    for i in 0..handoffs {
        if i % 2 == me {
            // Releaser: give the peer time to block, stamp, release, then
            // wait until the peer has it before queueing again.
            std::thread::sleep(Duration::from_micros(500));
            let h = held.take().expect("holding");
            board.write([i, now_ns(), 99_999_999]);
            lock.release(h);
            // Acked, or already past the ack (the peer released in its turn).
            board.wait_for(|v| v[2] == i || v[0] == i + 1);
        } else {
            let h = lock.acquire();
            let t = now_ns();
            let [seq, stamp, _] = board.read();
            assert_eq!(seq, i, "hand-off out of order");
            writeln!(out, "{kind} {}", t.saturating_sub(stamp)).expect("stdout");
            board.write([seq, stamp, i]);
            held = Some(h);
        }
    }
    if let Some(h) = held {
        lock.release(h);
    }
}

/// Child role: loop acquire + release within [start, end) ns.
fn throughput(kind: &str, dir: &Path, name: &str, start: u64, end: u64) {
    let lock = Lock::open(kind, dir, name);
    while now_ns() < start {
        std::hint::spin_loop();
    }
    let mut n = 0u64;
    while now_ns() < end {
        let h = lock.acquire();
        n += 1;
        lock.release(h);
    }
    println!("{kind} {n}");
}

/// Child role: take the lock, say so, wait to be killed.
fn hold(kind: &str, dir: &Path, name: &str) {
    let lock = Lock::open(kind, dir, name);
    let _h = lock.acquire();
    println!("LOCKED");
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(Duration::from_secs(60));
}

fn child(args: &[String]) -> Child {
    Command::new(std::env::current_exe().expect("exe"))
        .env(ROLE, args.join(" "))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn collect(children: Vec<Child>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "bench child failed");
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let mut it = line.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse().ok())) {
                out.push((k.to_owned(), v));
            }
        }
    }
    out
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn us(ns: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let v = ns as f64 / 1_000.0;
    format!("{v:.1} µs")
}

fn bench_handoff(dir: &Path, blocks: u32, per_block: u64) {
    let mut samples: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for b in 0..blocks {
        for (k, kind) in ["cand", "base"].into_iter().enumerate() {
            let name = format!("handoff-{b}-{kind}");
            let d = dir.to_string_lossy().into_owned();
            let kids = (0..2)
                .map(|me| {
                    child(&[
                        "pingpong".into(),
                        me.to_string(),
                        kind.into(),
                        d.clone(),
                        name.clone(),
                        per_block.to_string(),
                    ])
                })
                .collect();
            samples[k].extend(collect(kids).into_iter().map(|(_, v)| v));
        }
    }
    for s in &mut samples {
        s.sort_unstable();
    }
    let (c, b) = (&samples[0], &samples[1]);
    #[allow(clippy::cast_precision_loss)]
    let ratio = pct(c, 0.5) as f64 / pct(b, 0.5).max(1) as f64;
    println!(
        "## hand-off latency (release → blocked waiter's grant), {} + {} samples",
        c.len(),
        b.len()
    );
    println!("| | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| ff-lock-file (kernel) | {} | {} |",
        us(pct(c, 0.5)),
        us(pct(c, 0.99))
    );
    println!(
        "| baseline: bare flock | {} | {} |",
        us(pct(b, 0.5)),
        us(pct(b, 0.99))
    );
    println!("median ratio: {ratio:.2}×\n");
}

fn bench_throughput(dir: &Path, rounds: u32, secs: u64) {
    let procs = 4;
    let mut totals = [0u64; 2];
    let mut shares: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        for (k, kind) in ["cand", "base"].into_iter().enumerate() {
            let name = format!("tput-{r}-{kind}");
            let start = now_ns() + 300_000_000;
            let end = start + secs * 1_000_000_000;
            let d = dir.to_string_lossy().into_owned();
            let kids = (0..procs)
                .map(|_| {
                    child(&[
                        "throughput".into(),
                        kind.into(),
                        d.clone(),
                        name.clone(),
                        start.to_string(),
                        end.to_string(),
                    ])
                })
                .collect();
            let counts: Vec<u64> = collect(kids).into_iter().map(|(_, v)| v).collect();
            totals[k] += counts.iter().sum::<u64>();
            shares[k].extend(counts);
        }
    }
    let elapsed = f64::from(rounds) * secs as f64;
    println!("## contended throughput, {procs} processes on one lock");
    println!("| | acquisitions/s | smallest share of an equal share |");
    println!("|---|---|---|");
    for (k, label) in ["ff-lock-file (kernel)", "baseline: bare flock"]
        .into_iter()
        .enumerate()
    {
        #[allow(clippy::cast_precision_loss)]
        let per_sec = totals[k] as f64 / elapsed;
        // Each round's counts, as a fraction of that round's equal share.
        let mut worst = f64::MAX;
        for round in shares[k].chunks(procs) {
            let sum: u64 = round.iter().sum();
            #[allow(clippy::cast_precision_loss)]
            let equal = sum as f64 / procs as f64;
            for &c in round {
                #[allow(clippy::cast_precision_loss)]
                let f = c as f64 / equal.max(1.0);
                worst = worst.min(f);
            }
        }
        println!("| {label} | {per_sec:.0} | {:.0}% |", worst * 100.0);
    }
    println!();
}

fn bench_sigkill(dir: &Path, trials: u32) {
    let mut samples: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for t in 0..trials {
        for (k, kind) in ["cand", "base"].into_iter().enumerate() {
            let name = format!("kill-{t}-{kind}");
            let mut holder = child(&[
                "hold".into(),
                kind.into(),
                dir.to_string_lossy().into_owned(),
                name.clone(),
            ]);
            let stdout = holder.stdout.take().expect("stdout");
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read");
            assert_eq!(line.trim(), "LOCKED");
            let granted = if kind == "cand" {
                let p = FileLockProvider::new(dir);
                let name = name.clone();
                let h = rt.spawn(async move {
                    let g = p
                        .acquire(
                            &ff_traits::LockName::new(name).expect("lock name"),
                            &LockOptions::default().with_timeout(Duration::from_secs(30)),
                        )
                        .await
                        .expect("acquire");
                    let at = Instant::now();
                    g.release().await.expect("release");
                    at
                });
                let rt = &rt;
                Box::new(move || rt.block_on(h).expect("join")) as Box<dyn FnOnce() -> Instant + '_>
            } else {
                let path = dir.join(format!("{name}.bare"));
                let h = std::thread::spawn(move || {
                    let f = File::options()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .expect("open");
                    f.lock().expect("flock");
                    let at = Instant::now();
                    f.unlock().expect("unlock");
                    at
                });
                Box::new(move || h.join().expect("join")) as Box<dyn FnOnce() -> Instant + '_>
            };
            std::thread::sleep(Duration::from_millis(30));
            let killed = Instant::now();
            holder.kill().expect("kill");
            let got = granted();
            let _ = holder.wait();
            samples[k].push(
                u64::try_from(got.saturating_duration_since(killed).as_nanos()).unwrap_or(u64::MAX),
            );
        }
    }
    for s in &mut samples {
        s.sort_unstable();
    }
    println!("## SIGKILL of the holder → waiter's grant, {trials} trials each");
    println!("| | median | max |");
    println!("|---|---|---|");
    println!(
        "| ff-lock-file (kernel) | {} | {} |",
        us(pct(&samples[0], 0.5)),
        us(pct(&samples[0], 1.0))
    );
    println!(
        "| baseline: bare flock | {} | {} |",
        us(pct(&samples[1], 0.5)),
        us(pct(&samples[1], 1.0))
    );
    println!();
}

fn main() {
    if let Ok(spec) = std::env::var(ROLE) {
        let a: Vec<&str> = spec.split(' ').collect();
        match a.as_slice() {
            ["pingpong", me, kind, dir, name, n] => {
                pingpong(
                    me.parse().expect("me"),
                    kind,
                    Path::new(dir),
                    name,
                    n.parse().expect("n"),
                );
            }
            ["throughput", kind, dir, name, s, e] => {
                throughput(
                    kind,
                    Path::new(dir),
                    name,
                    s.parse().expect("s"),
                    e.parse().expect("e"),
                );
            }
            ["hold", kind, dir, name] => hold(kind, Path::new(dir), name),
            other => panic!("unknown role {other:?}"),
        }
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("tempdir");
    if full {
        bench_handoff(dir.path(), 10, 200);
        bench_throughput(dir.path(), 3, 2);
        bench_sigkill(dir.path(), 20);
    } else {
        bench_handoff(dir.path(), 1, 10);
        bench_throughput(dir.path(), 1, 1);
        bench_sigkill(dir.path(), 2);
    }
}

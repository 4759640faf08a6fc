//! Never stuck: agents that commit in their worktrees holding none of our
//! locks race `ff cleanup --force` (and, in a second variant, a plain
//! `ff cleanup` too), all as `ff` processes, as a fleet runs them. At the
//! end, before any `recover`, every issue's `ff create` must succeed at
//! once and hand out a working worktree; no commit an agent made may be
//! lost; and git run in whatever a removal left behind must never have
//! turned onto the main checkout (whose branch and files are checked).
//!
//! Each agent writes a file through `mkdir -p`, so a worktree removed
//! under it comes back as a plain directory at its old path: the state in
//! which git used to walk up and commit on the main checkout's branch.
//!
//! `FF_LIVENESS_SECS` sets each variant's length (default 45, which CI
//! runs); longer:
//! `FF_LIVENESS_SECS=600 cargo test -p ff-cli --test it -- liveness:: --nocapture`.

#![cfg(unix)]
#![allow(clippy::print_stdout)] // the figures are the report

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ff_testkit::git::{TestRepo, agent_commit, agent_git, git_in};

use crate::common::{code, ff};

const ISSUES: [&str; 4] = ["r1", "r2", "r3", "r4"];
const DEFAULT_SECS: u64 = 45;

fn secs() -> u64 {
    std::env::var("FF_LIVENESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS)
}

/// What one agent did.
#[derive(Default)]
struct AgentLog {
    commits: Vec<String>,
    creates: usize,
    /// Exit codes of creates that failed, counted.
    failed_creates: BTreeMap<i32, usize>,
}

/// An agent: `ff create ISSUE --print-path`, a file written there through
/// `mkdir -p`, `git add -A` and `git commit`; over and over.
fn agent(
    repo: PathBuf,
    backend: Vec<String>,
    issue: &'static str,
    stop: Arc<AtomicBool>,
) -> AgentLog {
    let mut log = AgentLog::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let out = ff_on(&repo, &backend, &["create", issue, "--print-path"]);
        log.creates += 1;
        if !out.status.success() {
            *log.failed_creates.entry(code(&out)).or_default() += 1;
            continue;
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // A few rounds of work per create: most of an agent's time is
        // spent in its worktree, where a cleanup finds it.
        for round in 0..3 {
            // `mkdir -p`: remakes the directory if a cleanup removed it.
            let tag = format!("{issue}-{n}-{round}");
            if let Some(sha) = agent_commit(&path, &format!("notes/{tag}.txt"), &tag) {
                log.commits.push(sha);
            }
        }
    }
    log
}

/// A repository with enough files (300 in 10 directories) that removing
/// a worktree takes long enough for agents to write into it meanwhile.
fn sizeable_repo() -> TestRepo {
    let repo = TestRepo::new();
    for d in 0..10 {
        let dir = repo.path().join(format!("src{d}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..30 {
            std::fs::write(dir.join(format!("f{f}.txt")), format!("{d} {f}\n")).expect("write");
        }
    }
    let _ = repo.git(&["add", "-A"]);
    let _ = repo.git(&["commit", "-q", "-m", "files"]);
    repo
}

/// A cleaner: `ff cleanup [--force] ISSUE` on issues in turn (a stride
/// that is not a multiple of the issue count mixes the order).
fn cleaner(repo: PathBuf, backend: Vec<String>, force: bool, stop: Arc<AtomicBool>) -> usize {
    let mut runs = 0;
    let mut i = usize::from(!force);
    while !stop.load(Ordering::Relaxed) {
        let issue = ISSUES[i % ISSUES.len()];
        i += 3;
        let mut args = vec!["cleanup", issue];
        if force {
            args.push("--force");
        }
        let _ = ff_on(&repo, &backend, &args);
        runs += 1;
    }
    runs
}

/// `ff BACKEND… ARGS…` in `dir`.
fn ff_on(dir: &Path, backend: &[String], args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = backend.iter().map(String::as_str).collect();
    all.extend(args);
    ff(dir, &all)
}

/// What else runs beside the agents and cleaners.
#[derive(Default)]
struct Extras {
    /// `--lock URL --store URL` and the link to cut once a minute.
    redis: Option<(Vec<String>, Arc<ff_testkit::net::Blackhole>)>,
    /// SIGKILL a random `ff` process of the test every 0.5–1.5 s.
    kills: bool,
    /// Run `ff serve` throughout and report its memory.
    serve: bool,
}

fn run(variant: &str, unforced_cleaner: bool) {
    run_with(variant, unforced_cleaner, secs(), &Extras::default());
}

fn run_with(variant: &str, unforced_cleaner: bool, secs: u64, extras: &Extras) {
    let backend: Vec<String> = extras
        .redis
        .as_ref()
        .map(|(args, _)| args.clone())
        .unwrap_or_default();
    let repo = sizeable_repo();
    let main = repo.path().to_path_buf();
    // A change in the main checkout that a `git add -A` / `git commit -a`
    // turned onto it by mistake would commit.
    std::fs::write(main.join("README"), "changed in the main checkout\n").expect("write");
    let head_before = repo.git(&["rev-parse", "HEAD"]);
    let first = ff_on(&main, &backend, &["create", ISSUES[0], "--print-path"]);
    assert!(first.status.success(), "the first create failed: {first:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = ISSUES
        .iter()
        .map(|issue| {
            let (repo, stop, backend) = (main.clone(), stop.clone(), backend.clone());
            std::thread::spawn(move || agent(repo, backend, issue, stop))
        })
        .collect();
    let mut cleaners = vec![{
        let (repo, stop, backend) = (main.clone(), stop.clone(), backend.clone());
        std::thread::spawn(move || cleaner(repo, backend, true, stop))
    }];
    if unforced_cleaner {
        let (repo, stop, backend) = (main.clone(), stop.clone(), backend.clone());
        cleaners.push(std::thread::spawn(move || {
            cleaner(repo, backend, false, stop)
        }));
    }
    let serve = extras.serve.then(|| {
        let mut args: Vec<&str> = backend.iter().map(String::as_str).collect();
        args.extend(["serve", "--listen", "127.0.0.1:0"]);
        std::process::Command::new(env!("CARGO_BIN_EXE_ff"))
            .args(&args)
            .current_dir(&main)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ff serve")
    });
    let started = Instant::now();
    let mut kills = 0usize;
    let mut partitions = 0usize;
    let mut serve_rss = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    while started.elapsed() < Duration::from_secs(secs) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(500 + rng % 1000));
        if extras.kills && kill_one_ff(rng) {
            kills += 1;
        }
        if let Some((_, link)) = &extras.redis {
            // One partition a minute, of 3 s: longer than a lease renewal
            // period, shorter than the lock timeout.
            let minute = started.elapsed().as_secs() / 60;
            if usize::try_from(minute).unwrap_or(0) >= partitions
                && started.elapsed().as_secs() % 60 >= 30
            {
                link.cut();
                std::thread::sleep(Duration::from_secs(3));
                link.heal();
                partitions += 1;
            }
        }
        if let Some(s) = &serve
            && (serve_rss.is_empty() || started.elapsed().as_secs() % 60 < 2)
        {
            serve_rss.push(rss_kib(s.id()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<AgentLog> = agents
        .into_iter()
        .map(|a| a.join().expect("agent"))
        .collect();
    let cleanups: usize = cleaners
        .into_iter()
        .map(|c| c.join().expect("cleaner"))
        .sum();
    let elapsed = started.elapsed();

    // Not stuck: every issue's create succeeds at once, before any
    // recover, with a worktree git works in.
    if let Some(mut s) = serve {
        serve_rss.push(rss_kib(s.id()));
        let _ = s.kill();
        let _ = s.wait();
        println!(
            "ff serve resident memory: {} KiB at start, {} KiB at the end (samples {:?})",
            serve_rss.first().copied().unwrap_or(0),
            serve_rss.last().copied().unwrap_or(0),
            serve_rss
        );
    }
    if extras.kills || extras.redis.is_some() {
        println!("{kills} ff processes SIGKILLed, {partitions} partitions of 3 s");
    }
    let mut stuck = Vec::new();
    for issue in ISSUES {
        let out = ff_on(&main, &backend, &["create", issue, "--print-path"]);
        if !out.status.success() {
            stuck.push(format!(
                "{issue}: exit {}: {}",
                code(&out),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let top = agent_git(&path, &["rev-parse", "--show-toplevel"]).expect("git");
        if String::from_utf8_lossy(&top.stdout).trim() != path.to_string_lossy() {
            stuck.push(format!(
                "{issue}: {} is not a working worktree ({})",
                path.display(),
                String::from_utf8_lossy(&top.stderr).trim()
            ));
        }
    }

    // Nothing lost.
    let made: Vec<&String> = logs.iter().flat_map(|l| &l.commits).collect();
    let reachable: HashSet<String> = git_in(&main, &["rev-list", "--all"])
        .lines()
        .map(str::to_owned)
        .collect();
    let lost: Vec<&&String> = made.iter().filter(|c| !reachable.contains(**c)).collect();

    // The main checkout untouched by git run in what removals left.
    let head_after = repo.git(&["rev-parse", "HEAD"]);
    let main_status = repo.git(&["status", "--porcelain", "--untracked-files=no"]);
    let base = main.join(".ff-worktrees");
    let kept = std::fs::read_dir(base.join(".ff-kept"))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);

    let mut failed: BTreeMap<i32, usize> = BTreeMap::new();
    for (code, n) in logs.iter().flat_map(|l| &l.failed_creates) {
        *failed.entry(*code).or_default() += n;
    }
    let creates: usize = logs.iter().map(|l| l.creates).sum();
    println!(
        "liveness {variant}: {} commits in {:.0} s ({:.0} a minute) by 4 agents holding no \
         lock; {creates} creates (failed, by exit code: {failed:?}), {cleanups} cleanups; \
         {} lost; {} stuck; {kept} directories set aside",
        made.len(),
        elapsed.as_secs_f64(),
        made.len() as f64 * 60.0 / elapsed.as_secs_f64(),
        lost.len(),
        stuck.len(),
    );
    assert!(stuck.is_empty(), "{variant}: issues stuck: {stuck:#?}");
    assert!(
        lost.is_empty(),
        "{variant}: {} of {} commits lost: {lost:?}",
        lost.len(),
        made.len()
    );
    assert_eq!(
        head_before, head_after,
        "{variant}: a commit landed on the main checkout's branch"
    );
    assert_eq!(
        main_status, "M README",
        "{variant}: the main checkout's index changed"
    );
    assert!(
        made.len() >= 20,
        "{variant}: the agents made only {} commits: the race did not run",
        made.len()
    );
    repo.assert_fsck_clean();
}

/// Resident memory of `pid`, in KiB (0 when it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// SIGKILLs one `ff` process this test started (not `ff serve`), picked by
/// `pick`; whether there was one.
fn kill_one_ff(pick: u64) -> bool {
    let me = std::process::id().to_string();
    let ff = env!("CARGO_BIN_EXE_ff");
    let mut ours: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let ppid = stat
                        .rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().nth(1));
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    ppid == Some(me.as_str())
                        && cmd.starts_with(ff.as_bytes())
                        && !cmd.windows(5).any(|w| w == b"serve")
                })
                .collect()
        })
        .unwrap_or_default();
    ours.sort_unstable();
    let Some(&pid) = ours.get(usize::try_from(pick).unwrap_or(0) % ours.len().max(1)) else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0)) else {
        return false;
    };
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
}

/// The soak (not in CI): the race above with SIGKILLs of random `ff`
/// processes and `ff serve` running throughout, on file locks + SQLite,
/// or with `FF_SOAK_REDIS=1` on Redis reached through a link the soak
/// cuts for 3 s once a minute. `FF_SOAK_SECS` (default 600):
/// `FF_SOAK_SECS=3600 cargo test -p ff-cli --test it -- liveness::soak --ignored --nocapture`.
#[test]
#[ignore = "a long soak, run by hand: FF_SOAK_SECS=3600"]
fn soak() {
    let secs = std::env::var("FF_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let server;
    let mut extras = Extras {
        kills: true,
        serve: true,
        ..Extras::default()
    };
    if std::env::var("FF_SOAK_REDIS").as_deref() == Ok("1") {
        server = ff_testkit::redis::RedisServer::start().expect("redis-server");
        let port = server
            .url()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("port");
        let link = Arc::new(ff_testkit::net::Blackhole::start(port));
        let url = link.redis_url();
        extras.redis = Some((
            vec!["--lock".into(), url.clone(), "--store".into(), url],
            link,
        ));
    }
    let name = if extras.redis.is_some() {
        "soak redis+redis"
    } else {
        "soak file+sqlite"
    };
    run_with(name, true, secs, &extras);
}

#[test]
fn agents_racing_a_forced_cleaner_are_never_stuck() {
    run("forced cleaner", false);
}

#[test]
fn agents_racing_forced_and_unforced_cleaners_are_never_stuck() {
    run("forced and unforced cleaners", true);
}

/// The state the race produces, made on purpose: a worktree removed while
/// an agent writes into it leaves a directory at its old path. Git run
/// there fails, saying why, and changes nothing in the main checkout; the
/// next `ff create` of the issue works at once.
#[test]
fn git_in_a_removed_worktree_never_reaches_the_main_checkout() {
    let repo = TestRepo::new();
    let main = repo.path();
    std::fs::write(main.join("README"), "changed in the main checkout\n").expect("write");
    let head = repo.git(&["rev-parse", "HEAD"]);
    let out = ff(main, &["create", "7", "--print-path"]);
    assert!(out.status.success(), "{out:?}");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let out = ff(main, &["cleanup", "7", "--force"]);
    assert!(out.status.success(), "{out:?}");
    // The agent writes on, through `mkdir -p`.
    std::fs::create_dir_all(path.join("src")).expect("mkdir -p");
    std::fs::write(path.join("src/late.txt"), "late work\n").expect("write");
    for args in [
        &["commit", "-a", "-m", "x"][..],
        &["add", "-A"],
        &["status"],
    ] {
        let out = agent_git(&path.join("src"), args).expect("git");
        assert!(!out.status.success(), "git {args:?} ran in {path:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("not a git repository") && said.contains("ForgeFlow"),
            "git {args:?} should say why: {said}"
        );
    }
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        repo.git(&["status", "--porcelain", "--untracked-files=no"]),
        "M README"
    );
    // The issue goes on; recover keeps the agent's file, and says where.
    let out = ff(main, &["create", "7", "--print-path"]);
    assert!(out.status.success(), "{out:?}");
    let out = ff(main, &["recover", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report = crate::common::stdout_json(&out);
    let text = report.to_string();
    assert!(text.contains("set_aside_directory"), "{report}");
    let kept: Vec<PathBuf> = std::fs::read_dir(main.join(".ff-worktrees/.ff-kept"))
        .expect("kept directories")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_to_string(kept[0].join("src/late.txt")).expect("kept file"),
        "late work\n"
    );
    assert!(!path.exists(), "the old path is free");
    let out = agent_git(&kept[0], &["status"]).expect("git");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("set this directory aside"));
}

//! The monitoring server embedded in a program, with something to watch:
//! four simulated agents in a temporary repository take worktrees, hold a
//! shared `deploy` lock for a while, and run operations that sometimes
//! fail, while `ff_serve::Server` serves the dashboard, `/metrics` and the
//! JSON API over the same backends. Open the printed address in a browser.
//!
//! Run: `cargo run -p ff-examples --example dashboard [-- ADDR [SECONDS]]`
//! (default `127.0.0.1:7878`, 120 seconds of agents, then it serves until
//! Ctrl-C).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_lock_file::FileLockProvider;
use ff_metrics::Instrumented;
use ff_serve::{AlertRules, Backends, ManagedRepository, ServeConfig, Server};
use ff_store_sqlite::SqliteStore;
use ff_traits::{IdempotencyKey, IdempotencyStorage, LockName, LockOptions, LockProvider};
use ff_worktree::{Cleanup, StateDir, WorktreeConfig, WorktreeManager};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn git(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Example",
            "-c",
            "user.email=example@localhost",
        ])
        .args(args)
        .current_dir(dir)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into())
    }
}

/// A small deterministic generator, so the example needs no crate for it.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

async fn agent(
    n: u64,
    worktrees: Arc<WorktreeManager<Arc<dyn LockProvider>, Arc<dyn IdempotencyStorage>>>,
    locks: Arc<dyn LockProvider>,
    records: Arc<IdempotencyManager<Arc<dyn IdempotencyStorage>>>,
    rounds: u64,
) -> Result<(), Error> {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (n + 1));
    for round in 0..rounds {
        let issue = format!("{}", 100 + dice.roll(6));
        let wt = worktrees.create_worktree(&issue).await?.worktree;
        // Deploys are serialized by one lock; the page shows who holds it.
        let deploy = LockName::new("deploy")?;
        let options = LockOptions::default()
            .with_operation("deploy")
            .with_timeout(Duration::from_secs(30));
        let guard = locks.acquire(&deploy, &options).await?;
        tokio::time::sleep(Duration::from_millis(300 + dice.roll(1500))).await;
        guard.release().await?;
        // An operation that runs once per (agent, round), failing now and then.
        let key = IdempotencyKey::new(
            "build",
            serde_json::json!({"agent": n, "round": round}),
            serde_json::json!({}),
        );
        let fails = dice.roll(5) == 0;
        let _ = records
            .execute(&key, None, |_| async move {
                tokio::time::sleep(Duration::from_millis(50 + (round % 7) * 40)).await;
                if fails {
                    Err("tests failed".to_owned())
                } else {
                    Ok("green".to_owned())
                }
            })
            .await;
        if dice.roll(3) == 0 {
            worktrees.cleanup_worktree(&wt.id, Cleanup::Force).await?;
        }
        tokio::time::sleep(Duration::from_millis(200 + dice.roll(800))).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ff_examples::exit(run().await)
}

async fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:7878".to_owned());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120);

    let temp = tempfile::tempdir()?;
    let repo = temp.path().join("repo");
    std::fs::create_dir(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    ff_examples::set_example_identity(&repo)?;
    std::fs::write(repo.join("README"), "demo\n")?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-q", "-m", "first"])?;

    // One set of backends, shared by the agents and the server, as every
    // `ff` command in the repository would share them.
    let state = StateDir::new(repo.join(".git").join("ff"));
    std::fs::create_dir_all(state.locks())?;
    // Measured once, here: `/metrics` then shows their waits, holds and calls.
    let locks: Arc<dyn LockProvider> =
        Arc::new(Instrumented::new(FileLockProvider::new(state.locks())));
    let store: Arc<dyn IdempotencyStorage> =
        Arc::new(Instrumented::new(SqliteStore::open(state.sqlite())?));
    let config = WorktreeConfig::new(&repo).with_max_worktrees(8);
    let open = || WorktreeManager::open(config.clone(), Arc::clone(&locks), Arc::clone(&store));
    let worktrees = Arc::new(open().await?);
    let records = Arc::new(IdempotencyManager::new(
        Arc::clone(&store),
        ManagerConfig::default().with_max_attempts(1),
    ));

    let rules: AlertRules = serde_json::from_value(serde_json::json!({
        "lock_held_longer_than": "1s",
        "worktrees_within": 2,
    }))?;
    let backends = Backends::new(Arc::clone(&locks), Arc::clone(&store)).with_worktrees(Arc::new(
        ManagedRepository::new(open().await?, repo.display().to_string()),
    ));
    let server = Server::new(
        backends,
        ServeConfig::default()
            .with_alerts(rules)
            .with_history_interval(Duration::from_secs(2)),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "dashboard: http://{}/  (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let serving = tokio::spawn(async move {
        server
            .run(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });

    // About one round every two seconds per agent.
    let rounds = seconds.div_ceil(2).max(1);
    let agents: Vec<_> = (0..4)
        .map(|n| {
            tokio::spawn(agent(
                n,
                Arc::clone(&worktrees),
                Arc::clone(&locks),
                Arc::clone(&records),
                rounds,
            ))
        })
        .collect();
    for a in agents {
        a.await??;
    }
    println!("the agents are done; still serving until Ctrl-C");
    serving.await??;
    Ok(())
}

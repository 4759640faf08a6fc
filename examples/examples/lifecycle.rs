//! The idempotency lifecycle on the embedded default backends (the file
//! lock and the SQLite store, no server): eight parallel "agents" ask for
//! the same worktree, each under the lock, through the idempotency
//! manager. It runs once; the other seven get its result. Then a failing
//! operation shows the retry rules.
//!
//! Run: `cargo run -p ff-examples --example lifecycle [STATE_DIR]`
//! (state goes to a temporary directory unless one is given).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ff_idempotency::{ExecuteError, Execution, IdempotencyManager, ManagerConfig};
use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_traits::{IdempotencyKey, LockName, LockOptions, LockProvider};
use serde_json::json;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ff_examples::exit(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let state: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    let locks = FileLockProvider::new(state.join("locks"));
    let store = SqliteStore::open(state.join("ff.sqlite3"))?;
    let manager = Arc::new(IdempotencyManager::new(
        store,
        ManagerConfig::default().with_retry_backoff(Duration::from_millis(200)),
    ));
    println!("state in {}", state.display());

    let key = IdempotencyKey::new(
        "createWorktree",
        json!({"issueId": "123", "path": "/project"}),
        json!({"basePath": ".worktrees"}),
    );
    println!("idempotency key: {}", key.record_key()?);

    let executions = Arc::new(AtomicU32::new(0));
    let mut agents = Vec::new();
    for agent in 0..8 {
        let (locks, manager, executions, key) = (
            locks.clone(),
            Arc::clone(&manager),
            Arc::clone(&executions),
            key.clone(),
        );
        agents.push(tokio::spawn(async move {
            let opts = LockOptions::default()
                .with_operation("createWorktree")
                .with_timeout(Duration::from_secs(10));
            let guard = locks.acquire(&LockName::new("issue-123")?, &opts).await?;
            let outcome = manager
                .execute(
                    &key,
                    Some(json!({"path": "/project/.worktrees/wt-123"})),
                    |attempt| {
                        let executions = Arc::clone(&executions);
                        async move {
                            executions.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await; // "git worktree add"
                            Ok::<_, String>(format!(
                                "wt-123 (fencing token {})",
                                attempt.fencing_token
                            ))
                        }
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            guard.release().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((agent, outcome))
        }));
    }
    for agent in agents {
        let (n, outcome) = agent.await?.map_err(|e| e.to_string())?;
        match outcome {
            Execution::Executed(v) => println!("agent {n}: created {v}"),
            Execution::Replayed(v) => println!("agent {n}: already done, reused {v}"),
        }
    }
    assert_eq!(
        executions.load(Ordering::SeqCst),
        1,
        "the operation ran more than once"
    );

    // A failing operation: retried after a backoff, then given up.
    let flaky = IdempotencyKey::new("syncWorktree", json!({"issueId": "123"}), json!({}));
    for round in 1..=4 {
        let outcome = manager
            .execute(&flaky, None, |_| async {
                Err::<(), _>("remote unreachable".to_owned())
            })
            .await;
        match outcome {
            Err(ExecuteError::Operation(e)) => println!("sync attempt {round}: failed ({e})"),
            Err(ExecuteError::Idempotency(e @ ff_idempotency::Error::BackoffNotElapsed { .. })) => {
                println!("sync attempt {round}: not run: {e}");
                tokio::time::sleep(Duration::from_millis(450)).await;
            }
            Err(ExecuteError::Idempotency(e)) => println!("sync attempt {round}: not run: {e}"),
            Ok(_) => unreachable!("the operation always fails"),
        }
    }

    let stats = manager.stats().await?;
    println!(
        "records: {} | success rate: {:.0}% | by status: {:?}",
        stats.total, stats.success_rate, stats.by_status
    );
    Ok(())
}

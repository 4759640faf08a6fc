//! The seed design's lifecycle on the in-memory reference backends: eight
//! parallel "agents" ask for the same worktree, under a lock, through the
//! idempotency manager. It runs once; the other seven get its result.
//!
//! Run: `cargo run -p ff-examples --example lifecycle`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ff_traits::{
    Execution, IdempotencyKey, IdempotencyManager, LockOptions, LockProvider, ManagerConfig,
    MemoryLockProvider, MemoryStore,
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let locks = MemoryLockProvider::new();
    let manager = Arc::new(IdempotencyManager::new(
        MemoryStore::new(),
        ManagerConfig::default(),
    ));
    let executions = Arc::new(AtomicU32::new(0));

    let key = IdempotencyKey::new(
        "createWorktree",
        json!({"issueId": "123", "path": "/project"}),
        json!({"basePath": ".worktrees"}),
    );
    println!("idempotency key: {}", key.record_key()?);

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
                .with_timeout(Duration::from_secs(5));
            let guard = locks.acquire("issue-123", &opts).await?;
            let outcome = manager
                .execute(
                    &key,
                    Some(json!({"path": "/project/.worktrees/wt-123"})),
                    |attempt| {
                        let executions = Arc::clone(&executions);
                        async move {
                            executions.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await; // the "git worktree add"
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
    let stats = manager.get_stats().await?;
    println!(
        "executions: {} | records: {} | success rate: {:.0}%",
        executions.load(Ordering::SeqCst),
        stats.total,
        stats.success_rate
    );
    assert_eq!(
        executions.load(Ordering::SeqCst),
        1,
        "the operation ran more than once"
    );
    Ok(())
}

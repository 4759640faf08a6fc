//! The main job on the embedded default (file locks + SQLite, no server):
//! six parallel tasks, like six coding agents, each get a worktree for
//! their issue in one temporary repository, commit work, sync onto a base
//! branch that moved meanwhile, and clean up. Two of them ask for the same
//! issue at once and share one worktree. Work that was never merged is kept
//! under `refs/ff/archive/` when its worktree is removed. Finally `recover`
//! confirms records, git and the disk agree.
//!
//! Run: `cargo run -p ff-examples --example local`

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ff_worktree::{SyncOptions, WorktreeConfig};

/// git with a fixed identity, so the example runs on a machine without one.
fn git(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=ForgeFlow Example",
            "-c",
            "user.email=example@localhost",
        ])
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ff_examples::exit(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let temp = tempfile::tempdir()?;
    let repo = temp.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    // The repository's own identity: ForgeFlow's sync rebases the agents'
    // work in the user's name, and refuses on a machine that has none.
    ff_examples::set_example_identity(&repo)?;
    std::fs::write(repo.join("README.md"), "# demo\n")?;
    git(&repo, &["add", "README.md"])?;
    git(&repo, &["commit", "-q", "-m", "first commit"])?;
    println!("repository: {}", repo.display());

    let manager = Arc::new(ff_worktree::open_embedded(WorktreeConfig::new(&repo)).await?);
    let issues = ["101", "102", "103", "104", "105", "105"];
    let mut tasks = tokio::task::JoinSet::new();
    for (agent, issue) in issues.into_iter().enumerate() {
        let manager = Arc::clone(&manager);
        tasks.spawn(async move {
            let created = manager.create_worktree(issue).await?;
            let wt = &created.worktree;
            println!(
                "agent {agent}: issue {issue} -> {} {}",
                wt.id,
                if created.reused {
                    "(reused: another agent made it)"
                } else {
                    "(created)"
                }
            );
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                agent,
                issue,
                wt.clone(),
                created.reused,
            ))
        });
    }
    let mut made = Vec::new();
    while let Some(done) = tasks.join_next().await {
        made.push(done??);
    }

    // The base branch moves on while the agents work.
    std::fs::write(repo.join("CHANGELOG.md"), "- base moved\n")?;
    git(&repo, &["add", "CHANGELOG.md"])?;
    git(&repo, &["commit", "-q", "-m", "base moved"])?;

    let mut tasks = tokio::task::JoinSet::new();
    for (agent, issue, wt, _) in made.into_iter().filter(|m| !m.3) {
        let manager = Arc::clone(&manager);
        tasks.spawn(async move {
            // Odd issues commit work; even ones change nothing.
            let worked = issue.ends_with(['1', '3', '5']);
            if worked {
                std::fs::write(wt.path.join(format!("{issue}.txt")), "work\n")?;
                git(&wt.path, &["add", "."])?;
                git(
                    &wt.path,
                    &["commit", "-q", "-m", &format!("work on {issue}")],
                )?;
            }
            let synced = manager.sync_worktree(issue, SyncOptions::default()).await?;
            println!(
                "agent {agent}: synced {} onto {} ({})",
                wt.branch,
                synced.onto,
                if synced.changed() {
                    "rebased"
                } else {
                    "already up to date"
                }
            );
            let cleaned = match manager
                .cleanup_worktree(issue, ff_worktree::Cleanup::Safe)
                .await
            {
                Ok(c) => c,
                Err(refused) => {
                    println!("agent {agent}: cleanup refused: {refused}");
                    manager
                        .cleanup_worktree(issue, ff_worktree::Cleanup::Force)
                        .await?
                }
            };
            match &cleaned.archived_at {
                Some(archive) => {
                    println!("agent {agent}: removed {}, work kept at {archive}", wt.id)
                }
                None => println!("agent {agent}: removed {}", wt.id),
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }

    let report = manager.recover(ff_worktree::Recover::Repair).await?;
    println!(
        "recover: {} repair(s) needed; worktrees left: {}",
        report.repairs.len(),
        manager.list_worktrees().await?.len()
    );
    println!("archived work:");
    for archive in git(
        &repo,
        &["for-each-ref", "--format=%(refname)", "refs/ff/archive/"],
    )?
    .lines()
    {
        println!("  {archive}");
    }
    let stats = manager.idempotency_stats().await?;
    println!("records: {} ({:?})", stats.total, stats.by_operation);
    Ok(())
}

//! Two "servers" sharing one Redis for locks and records, each with its own
//! clone of a repository: both ask for the worktree of issue 7 at once.
//! One creates it; the other is told it exists (it lives in the first
//! server's clone). Then each sees the other's worktree in its list, marked
//! `Elsewhere`, and only the owner can clean it up.
//!
//! Run: `FF_REDIS_URL=redis://127.0.0.1:6379 cargo run -p ff-examples --example redis_multi_server`
//! (default URL: `redis://127.0.0.1:6379`; start one with `redis-server`).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;

use ff_worktree::backends::redis::{
    RedisLockConfig, RedisLockProvider, RedisStore, RedisStoreConfig,
};
use ff_worktree::{WorktreeConfig, WorktreeManager};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn git(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=ForgeFlow Example",
            "-c",
            "user.email=example@localhost",
        ])
        .args(args)
        .current_dir(dir)
        .status()?;
    if ok.success() {
        Ok(())
    } else {
        Err(format!("git {args:?} failed").into())
    }
}

async fn server(
    clone: &Path,
    url: &str,
    prefix: &str,
) -> Result<WorktreeManager<RedisLockProvider, RedisStore>, Error> {
    let locks =
        RedisLockProvider::connect(RedisLockConfig::new(url).with_prefix(format!("{prefix}lock:")))
            .await?;
    let store =
        RedisStore::connect(RedisStoreConfig::new(url).with_prefix(format!("{prefix}rec:")))
            .await?;
    Ok(WorktreeManager::open(WorktreeConfig::new(clone), locks, store).await?)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ff_examples::exit(run().await)
}

async fn run() -> Result<(), Error> {
    let url = std::env::var("FF_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let temp = tempfile::tempdir()?;
    let a = temp.path().join("server-a");
    std::fs::create_dir_all(&a)?;
    git(&a, &["init", "-q", "-b", "main"])?;
    git(&a, &["commit", "-q", "--allow-empty", "-m", "first"])?;
    git(temp.path(), &["clone", "-q", "server-a", "server-b"])?;
    let b = temp.path().join("server-b");
    ff_examples::set_example_identity(&a)?;
    ff_examples::set_example_identity(&b)?;
    // A prefix of this run's own, so the example leaves others' keys alone.
    let prefix = format!(
        "ff-example:{}:",
        ff_worktree::ff_traits::identity::unique_id()
    );

    let (sa, sb) = match (
        server(&a, &url, &prefix).await,
        server(&b, &url, &prefix).await,
    ) {
        (Ok(sa), Ok(sb)) => (sa, sb),
        (Err(e), _) | (_, Err(e)) => {
            println!(
                "cannot reach Redis at {url}: {e}\nstart one with `redis-server`, or set FF_REDIS_URL"
            );
            return Err(e);
        }
    };
    let (ra, rb) = tokio::join!(sa.create_worktree("7"), sb.create_worktree("7"));
    for (who, r) in [("server a", ra), ("server b", rb)] {
        match r {
            Ok(c) if !c.reused => println!(
                "{who}: created {} at {}",
                c.worktree.id,
                c.worktree.path.display()
            ),
            Ok(c) => println!(
                "{who}: issue 7 already has {} ({:?}, in {})",
                c.worktree.id, c.worktree.status, c.worktree.location
            ),
            Err(e) => println!("{who}: {e}"),
        }
    }
    for (who, s) in [("server a", &sa), ("server b", &sb)] {
        for w in s.list_worktrees().await? {
            println!("{who} lists {} as {:?}", w.id, w.status);
        }
    }
    for (who, s) in [("server a", &sa), ("server b", &sb)] {
        match s.cleanup_worktree("7", ff_worktree::Cleanup::Safe).await {
            Ok(c) if c.removed.is_some() => println!("{who}: cleaned up issue 7"),
            Ok(_) => println!("{who}: nothing left to clean"),
            Err(e) => println!("{who}: {e}"),
        }
    }
    Ok(())
}

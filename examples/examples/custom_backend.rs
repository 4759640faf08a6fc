//! A plugin: a lock provider and a store of your own, checked by the same
//! conformance suite every ForgeFlow backend passes, then put to work: the
//! lock table guards a lock of its own, and the store keeps a worktree
//! manager's records.
//!
//! The table grants exclusive locks only. The worktree manager also takes
//! intention locks (an issue's lock sits beneath its repository's node, so
//! maintenance can hold the whole repository), so it runs here on the
//! reference provider, `ff_traits::MemoryLockProvider`; a provider with
//! every mode (as the conformance suite checks, cell by cell) can drive
//! it alone.
//!
//! The plugin is the crate `examples/plugin` (`ff-example-plugin`):
//! `TableLocks`, an exclusive lock table with its own `HeldLock` (fencing
//! tokens, wake-ups by notification, revocation with loss notice), and
//! `CountingStore`, a decorator that counts the calls it forwards. That
//! crate runs the suite from its tests without any tokio dev-dependency of
//! its own; so does this example, in its `conformance` module:
//!
//! ```text
//! cargo test -p ff-examples --example custom_backend   # the suite: 27 checks, one ignored (no shared mode)
//! cargo run  -p ff-examples --example custom_backend   # the plugin at work
//! ```

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use ff_example_plugin::{CountingStore, TableLocks};
use ff_traits::{LockProvider as _, MemoryStore};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::process::ExitCode {
    ff_examples::exit(run().await)
}

async fn run() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // The plugin drives a real worktree manager on a temporary repository.
    let temp = tempfile::tempdir()?;
    let repo = temp.path();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "ForgeFlow Example"],
        &["config", "user.email", "example@localhost"],
        &["commit", "-q", "--allow-empty", "-m", "first"],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .status()?;
        assert!(ok.success(), "git {args:?} failed");
    }
    // The plugin's lock table, guarding a deployment.
    let table = TableLocks::new();
    let name = ff_traits::LockName::new("deploy")?;
    let guard = table
        .acquire(&name, &ff_traits::LockOptions::default())
        .await?;
    println!(
        "the table granted {name} with fencing token {}",
        guard.info().fencing_token.0
    );
    guard.release().await?;

    // The plugin's store keeping a worktree manager's records.
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let manager = ff_worktree::WorktreeManager::open(
        ff_worktree::WorktreeConfig::new(repo),
        ff_traits::MemoryLockProvider::new(),
        Arc::clone(&store),
    )
    .await?;
    let wt = manager.create_worktree("PLUGIN-1").await?.worktree;
    manager
        .cleanup_worktree(&wt.id, ff_worktree::Cleanup::Safe)
        .await?;
    println!(
        "worktree {} created and removed with its records in the plugin's store: {} store calls",
        wt.id,
        store.calls()
    );
    Ok(())
}

/// The whole suite, through its macros, as a plugin author runs it.
#[cfg(test)]
mod conformance {
    use std::sync::Arc;

    use ff_example_plugin::{CountingStore, TableLocks};
    use ff_traits::{IdempotencyStorage, LockProvider, MemoryStore};

    mod locks {
        ff_conformance::lock_conformance_tests!(exclusive_only async {
            super::Arc::new(super::TableLocks::new()) as super::Arc<dyn super::LockProvider>
        });
    }

    mod store {
        ff_conformance::store_conformance_tests!(async {
            super::Arc::new(super::CountingStore::new(super::MemoryStore::new()))
                as super::Arc<dyn super::IdempotencyStorage>
        });
    }
}

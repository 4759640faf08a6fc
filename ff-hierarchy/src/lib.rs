//! # ff-hierarchy: lock trees over any lock provider
//!
//! Lock hierarchies over any [`LockProvider`]: names with `/` form a tree
//! (`repo`, `repo/issue-123`, `repo/issue-123/sync`), and locking a node
//! takes intention locks on its ancestors (multiple-granularity locking):
//!
//! * an exclusive lock on a node excludes every lock anywhere beneath it,
//!   and waits for them;
//! * locks on siblings and cousins do not conflict;
//! * a shared lock on a node excludes exclusive locks beneath it.
//!
//! A node taken in mode X, IX or SIX puts IX on each ancestor; in S or IS,
//! IS (the modes and their matrix: [`LockMode`]). Ancestors are taken
//! top-down, the same order for everyone, so two paths cannot deadlock;
//! the timeout covers the whole path; release runs bottom-up; losing any
//! lock of the path is the loss of the whole (the guard's loss notice
//! names which). Implemented once, above the contract: every backend with
//! the intention modes (the conformance suite's
//! `intention_modes_follow_the_matrix` in `ff-conformance`) gets
//! hierarchies.
//!
//! ```
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_hierarchy as hierarchy;
//! use ff_traits::{LockName, LockOptions, MemoryLockProvider};
//!
//! let locks = MemoryLockProvider::new();
//! let a = hierarchy::acquire(&locks, &LockName::new("repo/issue-1")?, &LockOptions::default()).await?;
//! // A sibling is free; the parent, exclusively, is not.
//! let b = hierarchy::try_acquire(&locks, &LockName::new("repo/issue-2")?, &LockOptions::default()).await?;
//! assert!(b.is_some());
//! assert!(hierarchy::try_acquire(&locks, &LockName::new("repo")?, &LockOptions::default()).await?.is_none());
//! a.release().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::time::Instant;

use async_trait::async_trait;

use ff_traits::{
    Error, HeldLock, LockGuard, LockMode, LockName, LockOptions, LockProvider, LossWatch, Result,
};

/// The deepest path a hierarchical name may have.
pub const MAX_DEPTH: usize = 16;

/// The nodes of `name`'s path, root first (`a/b/c`: `a`, `a/b`, `a/b/c`).
///
/// # Errors
/// [`Error::InvalidInput`] for an empty segment (`a//b`, a leading or
/// trailing `/`), a `.` or `..` segment, or more than [`MAX_DEPTH`]
/// segments.
pub fn path(name: &LockName) -> Result<Vec<LockName>> {
    let text = name.as_str();
    let segments: Vec<&str> = text.split('/').collect();
    if segments.len() > MAX_DEPTH {
        return Err(Error::invalid_input(
            "lock name",
            format!(
                "{text:?} is {} levels deep; a hierarchy has at most {MAX_DEPTH}",
                segments.len()
            ),
        ));
    }
    if let Some(bad) = segments
        .iter()
        .find(|s| s.is_empty() || **s == "." || **s == "..")
    {
        let what = if bad.is_empty() {
            "an empty segment (a leading, trailing or doubled '/')".to_owned()
        } else {
            format!("a {bad:?} segment")
        };
        return Err(Error::invalid_input(
            "lock name",
            format!("{text:?} has {what}; name nodes like repo/issue-1/sync"),
        ));
    }
    (1..=segments.len())
        .map(|n| LockName::new(segments[..n].join("/")))
        .collect()
}

/// The intention mode ancestors get for a node taken in `mode`.
#[must_use]
pub fn intention_for(mode: LockMode) -> LockMode {
    match mode {
        LockMode::Shared | LockMode::IntentShared => LockMode::IntentShared,
        _ => LockMode::IntentExclusive,
    }
}

/// Takes `name` in `options.mode` (with `options.permits`, if any), after
/// intention locks on its ancestors, waiting up to `options.timeout` for
/// the whole path.
///
/// # Errors
/// As [`path`]; [`Error::LockTimeout`] naming the node that was not free
/// in time; whatever the provider reports.
pub async fn acquire(
    provider: &dyn LockProvider,
    name: &LockName,
    options: &LockOptions,
) -> Result<LockGuard> {
    take(provider, name, options, true)
        .await?
        .ok_or_else(|| Error::lock_timeout(name.as_str(), options.timeout, None))
}

/// Takes `name` as [`acquire`] does if the whole path is free now;
/// `None` (and nothing held) otherwise.
///
/// # Errors
/// As [`acquire`].
pub async fn try_acquire(
    provider: &dyn LockProvider,
    name: &LockName,
    options: &LockOptions,
) -> Result<Option<LockGuard>> {
    take(provider, name, options, false).await
}

async fn take(
    provider: &dyn LockProvider,
    name: &LockName,
    options: &LockOptions,
    wait: bool,
) -> Result<Option<LockGuard>> {
    options.validate()?;
    let nodes = path(name)?;
    if nodes.len() == 1 {
        // A name outside any hierarchy: the provider's own grant.
        return if wait {
            provider.acquire(name, options).await.map(Some)
        } else {
            provider.try_acquire(name, options).await
        };
    }
    let started = Instant::now();
    let intention = intention_for(options.mode);
    let mut held: Vec<LockGuard> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let leaf = i + 1 == nodes.len();
        let mut step = if leaf {
            options.clone()
        } else {
            let mut o = options.clone().with_mode(intention);
            o.permits = None;
            o
        };
        // One budget for the whole path.
        step.timeout = options.timeout.saturating_sub(started.elapsed());
        let got = if wait {
            provider.acquire(node, &step).await.map(Some)
        } else {
            provider.try_acquire(node, &step).await
        };
        match got {
            Ok(Some(g)) => held.push(g),
            Ok(None) => {
                release_all(held).await;
                return Ok(None);
            }
            Err(e) => {
                release_all(held).await;
                return Err(e);
            }
        }
    }
    Ok(Some(whole(held)))
}

/// Releases bottom-up, ignoring errors (the caller reports its own).
async fn release_all(held: Vec<LockGuard>) {
    for g in held.into_iter().rev() {
        let _ = g.release().await;
    }
}

/// One guard for the whole path: the leaf's information, a loss notice
/// when any lock of the path is lost.
fn whole(held: Vec<LockGuard>) -> LockGuard {
    let info = held
        .last()
        .map(|g| g.info().clone())
        .expect("a path has at least one node");
    let watch = LossWatch::first_of(
        held.iter()
            .map(|g| {
                (
                    format!("lock '{}' of its path was lost", g.info().name),
                    g.loss_watch(),
                )
            })
            .collect(),
    );
    LockGuard::new(info, watch, Box::new(PathHeld { held }))
}

#[derive(Debug)]
struct PathHeld {
    /// Root first.
    held: Vec<LockGuard>,
}

#[async_trait]
impl HeldLock for PathHeld {
    async fn release(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(g) = self.held.pop() {
            if let Err(e) = g.release().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn release_on_drop(&mut self) {
        // Each guard releases itself when dropped; leaf first.
        while let Some(g) = self.held.pop() {
            drop(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_bad_names() {
        let n = |s: &str| LockName::new(s).expect("a lock name");
        let nodes: Vec<String> = path(&n("a/b/c"))
            .expect("path")
            .into_iter()
            .map(|l| l.as_str().to_owned())
            .collect();
        assert_eq!(nodes, ["a", "a/b", "a/b/c"]);
        for bad in ["a//b", "/a", "a/", "a/../b", "a/./b", ".."] {
            let e = path(&n(bad)).expect_err(bad);
            assert!(matches!(e, Error::InvalidInput { .. }), "{bad}: {e}");
        }
        let deep = vec!["x"; MAX_DEPTH + 1].join("/");
        assert!(path(&n(&deep)).is_err());
        assert!(path(&n(&vec!["x"; MAX_DEPTH].join("/"))).is_ok());
    }

    /// A provider whose grants can be marked lost by the test.
    #[derive(Debug, Default)]
    struct Losable {
        inner: ff_traits::MemoryLockProvider,
        notifiers: std::sync::Mutex<Vec<(String, ff_traits::LossNotifier)>>,
    }

    #[async_trait]
    impl LockProvider for Losable {
        fn backend_name(&self) -> &str {
            "losable"
        }
        async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
            let inner = self.inner.acquire(name, options).await?;
            let (notifier, watch) = ff_traits::loss_channel();
            self.notifiers
                .lock()
                .expect("not poisoned")
                .push((name.as_str().to_owned(), notifier));
            Ok(LockGuard::new(
                inner.info().clone(),
                watch,
                Box::new(Wrapped(Some(inner))),
            ))
        }
        async fn try_acquire(
            &self,
            name: &LockName,
            options: &LockOptions,
        ) -> Result<Option<LockGuard>> {
            self.acquire(name, options).await.map(Some)
        }
        async fn locks(&self) -> Result<Vec<ff_traits::LockStatus>> {
            self.inner.locks().await
        }
        async fn force_release(&self, name: &LockName) -> Result<ff_traits::ForceRelease> {
            self.inner.force_release(name).await
        }
    }

    #[derive(Debug)]
    struct Wrapped(Option<LockGuard>);

    #[async_trait]
    impl HeldLock for Wrapped {
        async fn release(&mut self) -> Result<()> {
            match self.0.take() {
                Some(g) => g.release().await,
                None => Ok(()),
            }
        }
        fn release_on_drop(&mut self) {
            self.0.take();
        }
    }

    #[tokio::test]
    async fn losing_an_ancestor_is_the_loss_of_the_path() {
        let locks = Losable::default();
        let name = LockName::new("repo/issue-1/sync").expect("a lock name");
        let guard = acquire(&locks, &name, &LockOptions::default())
            .await
            .expect("acquire");
        let mut watch = guard.loss_watch();
        assert_eq!(watch.lost_reason(), None);
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), watch.lost());
        assert!(pending.await.is_err(), "nothing lost yet");
        {
            let notifiers = locks.notifiers.lock().expect("not poisoned");
            let (node, middle) = &notifiers[1];
            assert_eq!(node, "repo/issue-1");
            middle.notify_lost("its lease expired");
        }
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), watch.lost())
            .await
            .expect("the path's watch reports its ancestor's loss");
        assert_eq!(
            reason,
            "lock 'repo/issue-1' of its path was lost: its lease expired"
        );
        assert_eq!(guard.loss_watch().lost_reason().as_deref(), Some(&*reason));
        let e = guard.release().await.expect_err("a lost path");
        assert!(matches!(e, Error::LockLost { .. }), "{e}");
    }
}

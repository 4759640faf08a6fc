//! # ff-fs-watch: change feeds for file-based backends
//!
//! A file lock or a file store changes when some process writes one of its
//! files, creates, renames or removes one, or closes one it had open for
//! writing. On Linux the kernel reports each of these (inotify), a
//! close included, and a process that dies is closed by the kernel too, so
//! releasing a kernel lock, by hand or by dying, is seen as well.
//! [`watch_dir`] turns those reports for one directory into a
//! [`ChangeFeed`], so `ff serve` reads a backend when it changed rather
//! than on a clock.
//!
//! Opening and reading a file is not a change: a watcher's own reads never
//! wake it.
//!
//! Elsewhere [`watch_dir`] returns `Ok(None)` and the watcher polls: the
//! macOS and Windows notification APIs report no close, so a lock released
//! without a write would go unannounced, breaking the feed's contract.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use ff_traits::ChangeFeed as _;
//! let dir = tempfile::tempdir()?;
//! // Files ending `.lock`, as a lock directory holds.
//! let feed = ff_fs_watch::watch_dir(dir.path(), ff_fs_watch::Lapses::Never, |name| {
//!     name.ends_with(".lock")
//! })?;
//! if let Some(mut feed) = feed {
//!     std::fs::write(dir.path().join("a.lock"), "held")?;
//!     feed.changed().await?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

#![forbid(unsafe_code)]

use std::path::Path;

use ff_traits::{ChangeFeed, Result};

/// Whether the backend's state lapses with time ([`ChangeFeed::lapses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapses {
    /// Every change is a file change (kernel locks, stores): an idle
    /// watcher reads nothing.
    Never,
    /// Grants are leases that lapse with nobody writing: a watcher also
    /// reads now and then.
    WithTime,
}

/// Which files of the directory matter, by file name.
pub trait Relevant: Fn(&str) -> bool + Send + Sync + 'static {}
impl<F: Fn(&str) -> bool + Send + Sync + 'static> Relevant for F {}

/// A feed of the changes to the files of `dir` whose names `relevant`
/// accepts (the directory itself, not its subdirectories), or `Ok(None)`
/// where the platform cannot promise [`ChangeFeed`]'s contract (see the
/// crate's documentation).
///
/// The feed breaks ([`ChangeFeed::changed`] fails) when the directory is
/// removed or renamed, or when the kernel reports that the watch failed.
/// A queue overflow is a wake-up, not a break: a watcher reads after it.
///
/// # Errors
/// [`ff_traits::Error::Backend`] when the directory cannot be watched (it
/// does not exist, or the kernel's limit of watches is reached).
pub fn watch_dir(
    dir: &Path,
    lapses: Lapses,
    relevant: impl Relevant,
) -> Result<Option<Box<dyn ChangeFeed>>> {
    platform::watch_dir(dir, lapses, relevant)
}

#[cfg(target_os = "linux")]
mod platform {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use ff_traits::{ChangeFeed, ChangeSignal, Error, Result};
    use notify::event::{AccessKind, AccessMode, EventKind};
    use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

    use super::{Lapses, Relevant};

    /// The feed keeps the watcher: dropping the feed ends the watch.
    struct DirFeed {
        _watcher: RecommendedWatcher,
        feed: Box<dyn ChangeFeed>,
        broken: Arc<AtomicBool>,
        dir: PathBuf,
    }

    impl std::fmt::Debug for DirFeed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("DirFeed").field("dir", &self.dir).finish()
        }
    }

    #[async_trait]
    impl ChangeFeed for DirFeed {
        async fn changed(&mut self) -> Result<()> {
            if self.broken.load(Ordering::Acquire) {
                return Err(broken(&self.dir));
            }
            self.feed.changed().await?;
            if self.broken.load(Ordering::Acquire) {
                return Err(broken(&self.dir));
            }
            Ok(())
        }

        fn lapses(&self) -> bool {
            self.feed.lapses()
        }
    }

    fn broken(dir: &Path) -> Error {
        Error::Backend {
            backend: "file watch".into(),
            message: format!(
                "the watch of {} ended (the directory was removed or renamed, or the kernel dropped the watch)",
                dir.display()
            ),
            source: None,
        }
    }

    /// Whether an event is a change: opening a file or closing one that
    /// was only read is not (a watcher's own reads).
    fn is_change(kind: EventKind) -> bool {
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            EventKind::Any
            | EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Remove(_)
            | EventKind::Other => true,
        }
    }

    pub(super) fn watch_dir(
        dir: &Path,
        lapses: Lapses,
        relevant: impl Relevant,
    ) -> Result<Option<Box<dyn ChangeFeed>>> {
        let signal = ChangeSignal::new();
        let feed = signal.feed_of(lapses == Lapses::WithTime);
        let broken = Arc::new(AtomicBool::new(false));
        let (mark, own) = (Arc::clone(&broken), dir.to_path_buf());
        let handler = move |event: notify::Result<notify::Event>| {
            match event {
                Ok(event) => {
                    // The directory itself went away or moved: nothing
                    // more will be reported.
                    if event.paths.iter().any(|p| p == &own)
                        && matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(_))
                    {
                        mark.store(true, Ordering::Release);
                        signal.notify();
                        return;
                    }
                    // An overflow (a rescan) names no file: it is a change.
                    let named = event.paths.is_empty()
                        || event.paths.iter().any(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(&relevant)
                        });
                    if named && (is_change(event.kind) || event.need_rescan()) {
                        signal.notify();
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %own.display(), error = %e, "file watch failed");
                    mark.store(true, Ordering::Release);
                    signal.notify();
                }
            }
        };
        let cannot = |e: notify::Error| Error::Backend {
            backend: "file watch".into(),
            message: format!("cannot watch {} for changes", dir.display()),
            source: Some(Box::new(e)),
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(cannot)?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(cannot)?;
        Ok(Some(Box::new(DirFeed {
            _watcher: watcher,
            feed,
            broken,
            dir: dir.to_path_buf(),
        })))
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::path::Path;

    use ff_traits::{ChangeFeed, Result};

    use super::{Lapses, Relevant};

    pub(super) fn watch_dir(
        _dir: &Path,
        _lapses: Lapses,
        _relevant: impl Relevant,
    ) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }
}

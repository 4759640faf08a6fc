//! # ff-lock-file: a cross-process lock for one machine, with no server
//!
//! [`FileLockProvider`] implements [`ff_traits::LockProvider`] with files in
//! a lock directory (created when missing). It is ForgeFlow's default lock.
//!
//! **Kernel mode** (the default, [`FileLockMode::Kernel`]): exclusion by an
//! OS lock on `<name>.lock` (`flock` on Unix, `LockFileEx` on Windows). A
//! holder that dies, even by SIGKILL, frees the lock at once. Waiters block
//! in the kernel on a helper thread and get the lock microseconds after it
//! is released; they never poll. Shared and exclusive modes.
//!
//! **Lease mode** ([`FileLockMode::Lease`]), for filesystems whose kernel
//! locks are unreliable (network drives): exclusive creation of
//! `<name>.lease`, refreshed every third of the stale threshold; a lease is
//! broken only when its holder is provably gone, by compare-and-swap.
//! Exclusive locks only.
//!
//! Both modes: holder metadata for people (id, pid, host, process start
//! time, times, operation, metadata, fencing token); fencing tokens that
//! rise strictly per name across processes and restarts (never below the
//! clock in microseconds, so even a deleted lock file cannot make them go
//! back); lock names mapped to safe file names; symbolic links refused;
//! close-on-exec descriptors, so child processes never inherit a lock.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use ff_lock_file::FileLockProvider;
//! use ff_traits::{LockName, LockOptions, LockProvider};
//!
//! let dir = tempfile::tempdir()?;
//! let locks = FileLockProvider::new(dir.path().join("locks"));
//! let issue = LockName::new("issue-123")?;
//! let guard = locks
//!     .acquire(&issue, &LockOptions::default().with_operation("createWorktree"))
//!     .await?;
//! // Another process calling acquire("issue-123") now waits, and on timeout
//! // is told this process's pid, host and operation.
//! guard.release().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! ## What `force_release` does
//!
//! * Kernel mode: a lock whose kernel lock is free has its leftover holder
//!   metadata (and dead shared holders' records) cleared
//!   ([`ForceOutcome::Cleared`](ff_traits::ForceOutcome::Cleared)); a lock
//!   held by a live process is refused
//!   ([`ForceOutcome::Refused`](ff_traits::ForceOutcome::Refused)) with the
//!   holder's pid, since no one can take a kernel lock from its owner: stop
//!   that process and the lock frees at once.
//! * Lease mode: a provably abandoned lease (dead pid on this host, lapsed
//!   lease elsewhere) is broken (compare-and-swap) and reported as cleared; a
//!   live holder's lease is refused, since taking it would leave two holders
//!   until the first noticed.
//!
//! Never delete lock files by hand while processes may use them.

#![forbid(unsafe_code)]

mod holders;
mod kernel;
mod lease;
mod meta;
mod names;
mod platform;
mod waiters;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses lock-file bytes; returns the holder they name, if any.
    #[must_use]
    pub fn parse_lock_file(bytes: &[u8]) -> Option<ff_traits::LockInfo> {
        crate::meta::parse::<crate::meta::LockFileContent>(bytes)
            .content()
            .and_then(|c| c.holder.clone())
    }

    /// Parses lease-file bytes; returns the holder they name, if any.
    #[must_use]
    pub fn parse_lease_file(bytes: &[u8]) -> Option<ff_traits::LockInfo> {
        crate::lease::parse_holder(bytes)
    }

    /// The file stem of a lock name.
    ///
    /// # Errors
    /// As `acquire` for an invalid name.
    pub fn file_stem(name: &str) -> ff_traits::Result<String> {
        Ok(crate::names::file_stem(&ff_traits::LockName::new(name)?))
    }
}

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ff_traits::{
    Error, ForceRelease, LockGuard, LockName, LockOptions, LockProvider, LockStatus, Result,
};

use kernel::LockPaths;
use lease::LeasePaths;
use waiters::Waiters;

/// How exclusion is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FileLockMode {
    /// OS file locks; freed by the kernel when the holder dies. Local disks.
    #[default]
    Kernel,
    /// Lease files refreshed by their holder; for network filesystems.
    Lease,
}

/// File-based [`LockProvider`]; clones share their waiter threads.
#[derive(Debug, Clone)]
pub struct FileLockProvider {
    dir: PathBuf,
    mode: FileLockMode,
    waiters: Arc<Waiters>,
    dir_ready: Arc<AtomicBool>,
}

impl FileLockProvider {
    /// A provider keeping its lock files in `dir` (created on first use),
    /// in kernel mode.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            mode: FileLockMode::Kernel,
            waiters: Arc::default(),
            dir_ready: Arc::default(),
        }
    }

    /// Chooses kernel or lease mode.
    #[must_use]
    pub fn with_mode(mut self, mode: FileLockMode) -> Self {
        self.mode = mode;
        self
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The mode.
    pub fn mode(&self) -> FileLockMode {
        self.mode
    }

    /// Removes the lock files of locks that are free and were last granted
    /// more than `idle` ago (kernel mode on Unix; elsewhere nothing), so
    /// the directory does not keep a file for every name ever locked.
    /// Returns how many locks' files went.
    ///
    /// Safe against every acquirer: a file is unlinked only while this
    /// process holds its exclusive kernel lock (so no one holds it), the
    /// shared holders' table first; an acquirer that opened the file
    /// before then finds, once it has the lock, that the path no longer
    /// names that file, and opens the path again. Fencing tokens keep
    /// rising past a removal: a new file's first token is at least the
    /// clock in microseconds.
    ///
    /// # Errors
    /// [`Error::Backend`] when the directory cannot be read or a file
    /// cannot be removed.
    pub async fn prune_free(&self, idle: std::time::Duration) -> Result<u64> {
        if self.mode != FileLockMode::Kernel || !cfg!(unix) {
            return Ok(0);
        }
        kernel::prune_free(&self.dir, idle)
    }

    /// Creates the lock directory once per provider; a directory removed
    /// later is recreated when opening a lock file fails (see `take`).
    fn ensure_dir(&self) -> Result<()> {
        if self.dir_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut dir = fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&self.dir).map_err(|e| {
            io_error(
                &format!("cannot create lock directory {}", self.dir.display()),
                &e,
            )
        })?;
        self.dir_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn take(
        &self,
        name: &LockName,
        options: &LockOptions,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        let stem = names::file_stem(name);
        let name = name.as_str();
        options.validate()?;
        self.ensure_dir()?;
        let first = self.take_in_dir(name, &stem, options, wait).await;
        if first.is_err() && !self.dir.is_dir() {
            // The directory vanished under us: create it again, once.
            self.dir_ready.store(false, Ordering::Release);
            self.ensure_dir()?;
            return self.take_in_dir(name, &stem, options, wait).await;
        }
        first
    }

    async fn take_in_dir(
        &self,
        name: &str,
        stem: &str,
        options: &LockOptions,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        match self.mode {
            FileLockMode::Kernel => {
                self.kernel_acquire(name, &LockPaths::new(&self.dir, stem), options, wait)
                    .await
            }
            FileLockMode::Lease => {
                lease::acquire(name, &LeasePaths::new(&self.dir, stem), options, wait).await
            }
        }
    }
}

#[async_trait]
impl LockProvider for FileLockProvider {
    fn backend_name(&self) -> &str {
        "file"
    }

    fn endpoint(&self) -> Option<String> {
        Some(format!("file locks in {}", self.dir.display()))
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        match self.take(name, options, true).await? {
            Some(guard) => Ok(guard),
            None => Err(Error::lock_timeout(
                name.to_string(),
                options.wait_budget(),
                None,
            )),
        }
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.take(name, options, false).await
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("cannot list lock directory", &e)),
        };
        let options = LockOptions::default();
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| io_error("cannot list lock directory", &e))?
                .path();
            let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                continue;
            };
            let stem = stem.to_string_lossy();
            let status = if ext == "lock" {
                self.kernel_status(&LockPaths::new(&self.dir, &stem))
                    .await?
            } else if ext == "lease" {
                lease::status(&LeasePaths::new(&self.dir, &stem), &options)?
            } else {
                None
            };
            out.extend(status);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// On Linux, the kernel's reports of the lock directory's files:
    /// a grant writes its holder into the lock file, a release closes the
    /// file its holder had open for writing (the kernel closes a dead
    /// holder's), shared holders rewrite their table, leases are written.
    /// The directory is created if it is not there yet (as the first
    /// grant would). Elsewhere `None`: watchers poll.
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        if !cfg!(target_os = "linux") {
            return Ok(None);
        }
        self.ensure_dir()?;
        // Kernel locks end only by a close, which is reported; leases
        // lapse with nobody writing.
        let lapses = match self.mode {
            FileLockMode::Kernel => ff_fs_watch::Lapses::Never,
            FileLockMode::Lease => ff_fs_watch::Lapses::WithTime,
        };
        ff_fs_watch::watch_dir(&self.dir, lapses, |name| {
            [".lock", ".meta", ".holders", ".lease"]
                .iter()
                .any(|ext| name.ends_with(ext))
        })
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let stem = names::file_stem(name);
        let name = name.as_str();
        let released = match self.mode {
            FileLockMode::Kernel => {
                self.kernel_force(name, &LockPaths::new(&self.dir, &stem))
                    .await
            }
            FileLockMode::Lease => lease::force(
                name,
                &LeasePaths::new(&self.dir, &stem),
                &LockOptions::default(),
            ),
        }?;
        Ok(released)
    }
}

/// A backend error from an I/O failure.
fn io_error(context: &str, e: &io::Error) -> Error {
    Error::io("file", context, e)
}

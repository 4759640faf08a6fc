//! Kernel-lock mode: exclusion by `flock` (Unix) / `LockFileEx` (Windows)
//! on `<dir>/<stem>.lock`, through std's `File::lock` family.
//!
//! * The kernel frees the lock the instant its holder's file is closed,
//!   including when the holder dies by SIGKILL: no stale threshold.
//! * A lock file is deleted only by `prune_free`, under its exclusive
//!   kernel lock, and every acquirer checks, once it has a file's lock, that
//!   the path still names that file (device and inode), opening it again if
//!   not: else a waiter could lock the unlinked inode while a newcomer locks
//!   a fresh file. (Off Unix, lock files are never deleted.)
//! * The exclusive holder records itself in the lock file; shared holders
//!   record themselves in one table, `<dir>/<stem>.holders`, rewritten in
//!   place under the table file's own kernel lock ([`crate::holders`]). On
//!   Windows, where byte-range locks are mandatory (nobody else may read a
//!   locked range, and under a shared lock nobody may write it), that record
//!   lives in `<dir>/<stem>.meta` instead, outside any locked range.
//! * Kernel locks cannot be lost while held, so they need no refresh;
//!   `refreshed_at` stays the grant time.
//! * Semaphores (`permits`): a permit is a shared kernel lock plus a place
//!   under the cap, counted (live shared holders' records) and recorded
//!   under the table's kernel lock, so two processes never both take the
//!   last place; a holder that dies frees its place with its pid. A full
//!   semaphore frees no kernel lock when a place frees, so its waiters
//!   poll (1 ms doubling up to `retry_interval`), holding nothing between
//!   tries.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_process::Liveness;
use ff_traits::{
    Error, FencingToken, ForceOutcome, ForceRelease, HeldLock, LockGuard, LockInfo, LockMode,
    LockOptions, LockStatus, LossNotifier, Result, Timestamp, loss_channel,
};

use crate::holders::{self, TableFile};
use crate::meta::{self, Found, LockFileContent};
use crate::platform;
use crate::{FileLockProvider, io_error};

/// The files of one lock.
#[derive(Debug, Clone)]
pub(crate) struct LockPaths {
    pub(crate) lock: PathBuf,
    /// Where the holder record and fencing counter live: the lock file
    /// itself, except on Windows (see the module notes).
    pub(crate) meta: PathBuf,
    /// The shared holders' table.
    pub(crate) holders: PathBuf,
}

impl LockPaths {
    pub(crate) fn new(dir: &Path, stem: &str) -> Self {
        let lock = dir.join(format!("{stem}.lock"));
        Self {
            meta: if cfg!(windows) {
                dir.join(format!("{stem}.meta"))
            } else {
                lock.clone()
            },
            lock,
            holders: dir.join(format!("{stem}.holders")),
        }
    }
}

/// The handle metadata is read and written through: the lock file's own
/// where locks are advisory, a separate file where they are mandatory.
enum MetaFile<'a> {
    Lock(&'a File),
    Separate(File),
}

impl MetaFile<'_> {
    fn file(&self) -> &File {
        match self {
            Self::Lock(f) => f,
            Self::Separate(f) => f,
        }
    }
}

fn meta_file<'a>(paths: &LockPaths, lock: &'a File) -> Result<MetaFile<'a>> {
    if paths.meta == paths.lock {
        Ok(MetaFile::Lock(lock))
    } else {
        open(&paths.meta).map(MetaFile::Separate)
    }
}

fn open(path: &Path) -> Result<File> {
    platform::open_lock_file(path, false).map_err(|e| open_error(&e, path))
}

pub(crate) fn open_error(e: &io::Error, path: &Path) -> Error {
    if platform::is_symlink_refusal(e, path) {
        return Error::corrupt(
            "lock file",
            path.display().to_string(),
            "is a symbolic link; lock files are never followed through links; remove it",
        );
    }
    io_error(&format!("cannot open lock file {}", path.display()), e)
}

/// Whether `file`, just locked, is still the lock file at its path (same
/// device and inode): [`prune_free`](FileLockProvider::prune_free) unlinks
/// a free lock file while it holds its exclusive kernel lock, so whoever
/// locks a file after that must see it is no longer there, and open the
/// path again. Off Unix lock files are never unlinked.
fn linked(file: &File, paths: &LockPaths) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let held = file
            .metadata()
            .map_err(|e| io_error("cannot read a locked file's identity", &e))?;
        match fs::symlink_metadata(&paths.lock) {
            Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("cannot read a lock file's identity", &e)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, paths);
        Ok(true)
    }
}

fn try_lock(file: &File, mode: LockMode) -> io::Result<bool> {
    // Every mode but exclusive is a shared kernel lock; which of them may
    // be held together is decided by the holders' records (`admit_shared`).
    let attempt = if mode == LockMode::Exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match attempt {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

impl FileLockProvider {
    pub(crate) async fn kernel_acquire(
        &self,
        name: &str,
        paths: &LockPaths,
        options: &LockOptions,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        let started = Instant::now();
        // Semaphores and the intention modes wait on the holders' records,
        // not on the kernel lock alone: they poll.
        if options.permits.is_some()
            || !matches!(options.mode, LockMode::Exclusive | LockMode::Shared)
        {
            return self.poll_acquire(name, paths, options, wait, started).await;
        }
        // Open, lock, and check that the file locked is still the one at
        // the path: `prune_free` unlinks a free lock file under its
        // exclusive lock, and a process that opened it before then would
        // otherwise hold the lock of a file nobody else opens any more.
        loop {
            let file = open(&paths.lock)?;
            let locked = try_lock(&file, options.mode)
                .map_err(|e| io_error(&format!("cannot lock {}", paths.lock.display()), &e))?;
            if locked {
                if !linked(&file, paths)? {
                    continue;
                }
                let deadline = wait.then(|| started + options.wait_budget());
                return match grant(name, file, paths, options, deadline).await? {
                    Some(g) => Ok(Some(g)),
                    // A reader kept out by an intention to write beneath
                    // (IX, SIX): that frees no kernel lock, so poll.
                    None if wait => self.poll_acquire(name, paths, options, wait, started).await,
                    None => Ok(None),
                };
            }
            drop(file);
            if !wait {
                return Ok(None);
            }
            ff_metrics::lock_contended("file", options);
            options.waiting();
            let budget = options.wait_budget();
            let left = budget.saturating_sub(started.elapsed());
            let rx = self
                .waiters
                .enqueue(paths.lock.clone(), options.mode)
                .map_err(|e| io_error("cannot start a lock waiter thread", &e))?;
            match tokio::time::timeout(left, rx).await {
                Ok(Ok(Ok(file))) => {
                    if !linked(&file, paths)? {
                        continue;
                    }
                    return match grant(name, file, paths, options, Some(started + budget)).await? {
                        Some(g) => Ok(Some(g)),
                        None => self.poll_acquire(name, paths, options, wait, started).await,
                    };
                }
                Ok(Ok(Err(e))) => {
                    return Err(io_error(
                        &format!("cannot lock {}", paths.lock.display()),
                        &e,
                    ));
                }
                Ok(Err(_)) => {
                    return Err(Error::Backend {
                        backend: "file".into(),
                        message: "the lock waiter thread stopped unexpectedly".into(),
                        source: None,
                    });
                }
                Err(_) => {
                    return Err(Error::lock_timeout(
                        name.to_owned(),
                        started.elapsed(),
                        current_holders(paths).into_iter().next(),
                    ));
                }
            }
        }
    }

    /// A permit of a semaphore, or a grant in an intention mode: a shared
    /// kernel lock plus admission by the holders' records (the cap, the
    /// compatibility of modes). What keeps such a waiter out frees no
    /// kernel lock when it goes, so the waiter polls (pausing from 1 ms up
    /// to the retry interval), without holding the kernel lock between
    /// tries so a waiting writer is not kept out by waiting readers.
    async fn poll_acquire(
        &self,
        name: &str,
        paths: &LockPaths,
        options: &LockOptions,
        wait: bool,
        started: Instant,
    ) -> Result<Option<LockGuard>> {
        let deadline = started + options.wait_budget();
        let mut pause = Duration::from_millis(1);
        loop {
            let file = open(&paths.lock)?;
            let locked = try_lock(&file, LockMode::Shared)
                .map_err(|e| io_error(&format!("cannot lock {}", paths.lock.display()), &e))?;
            if locked && !linked(&file, paths)? {
                // Pruned between our open and our lock: open it again.
                continue;
            }
            if locked
                && let Some(g) = grant(name, file, paths, options, wait.then_some(deadline)).await?
            {
                return Ok(Some(g));
            }
            if !wait {
                return Ok(None);
            }
            if pause == Duration::from_millis(1) {
                ff_metrics::lock_contended("file", options);
                options.waiting();
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::lock_timeout(
                    name.to_owned(),
                    started.elapsed(),
                    current_holders(paths).into_iter().next(),
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(options.retry_interval);
        }
    }

    pub(crate) async fn kernel_status(&self, paths: &LockPaths) -> Result<Option<LockStatus>> {
        let file = match fs::OpenOptions::new().read(true).open(&paths.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(open_error(&e, &paths.lock)),
        };
        let (found, _) = meta::read::<LockFileContent>(meta_file(paths, &file)?.file())
            .map_err(|e| io_error("cannot read lock file", &e))?;
        let name = found.content().map(|c| c.name.clone());
        // Probing takes the lock for an instant when it is free: a
        // concurrent try_acquire may then see it busy. Waiters are not
        // affected.
        let probe = || {
            try_lock(&file, LockMode::Exclusive).map_err(|e| io_error("cannot probe lock file", &e))
        };
        let mut free = probe()?;
        if !free && current_holders(paths).is_empty() {
            // Taken, yet no grant recorded: most likely another status
            // probe (`ff serve` reads locks while a scrape does), which
            // holds it for an instant; a holder holds it until it lets go.
            // Look again, briefly, before calling it held (yielding the
            // thread: `ff serve` reads statuses on its runtime).
            for _ in 0..3 {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                if probe()? {
                    free = true;
                    break;
                }
            }
        }
        if free {
            let _ = file.unlock();
        }
        let held = !free;
        let holders = if held {
            current_holders(paths)
        } else {
            last_holder(&found)
        };
        let name = name
            .or_else(|| holders.first().map(|h| h.name.clone()))
            .unwrap_or_else(|| stem_of(&paths.lock));
        Ok(Some(LockStatus::new(name, held, holders)))
    }

    pub(crate) async fn kernel_force(&self, name: &str, paths: &LockPaths) -> Result<ForceRelease> {
        let Some(status) = self.kernel_status(paths).await? else {
            return Ok(ForceRelease::new(name, ForceOutcome::NotHeld));
        };
        if status.held {
            let pids: Vec<String> = status.holders.iter().map(|h| h.pid.to_string()).collect();
            let who = if pids.is_empty() {
                "a running process".to_owned()
            } else {
                format!("process {}", pids.join(", "))
            };
            return Ok(ForceRelease::new(
                name,
                ForceOutcome::Refused {
                    holders: status.holders,
                    reason: format!(
                        "held through a kernel lock by {who}, which is alive; the lock frees the \
                         moment that process releases it or exits (stop it if it is stuck)"
                    ),
                },
            ));
        }
        // Free: clear what dead holders left behind.
        let file = open(&paths.lock)?;
        let mut locked = false;
        let cleared = if try_lock(&file, LockMode::Exclusive).unwrap_or(false) {
            locked = true;
            let meta_handle = meta_file(paths, &file)?;
            let (found, len) = meta::read::<LockFileContent>(meta_handle.file())
                .map_err(|e| io_error("cannot read lock file", &e))?;
            let previous = last_holder(&found);
            if !previous.is_empty() {
                let content = LockFileContent {
                    format: meta::FORMAT.into(),
                    name: name.to_owned(),
                    last_token: found.content().map_or(0, |c| c.last_token),
                    holder: None,
                };
                meta::write(meta_handle.file(), &content, len)
                    .map_err(|e| io_error("cannot clear lock file", &e))?;
            }
            previous
        } else {
            Vec::new()
        };
        // Shared holders' records: all dead while the lock is free (kept
        // locked while they are cleared, so no one is admitted meanwhile).
        let dead_shared = if locked {
            clear_dead_holders(name, paths).await?
        } else {
            Vec::new()
        };
        let _ = file.unlock();
        drop(file);
        let cleared: Vec<LockInfo> = cleared.into_iter().chain(dead_shared).collect();
        Ok(ForceRelease::new(
            name,
            if cleared.is_empty() {
                ForceOutcome::NotHeld
            } else {
                ForceOutcome::Cleared { previous: cleared }
            },
        ))
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn last_holder(found: &Found) -> Vec<LockInfo> {
    found
        .content()
        .and_then(|c| c.holder.clone())
        .into_iter()
        .collect()
}

/// The holders recorded for a held lock: the exclusive one, else the live
/// shared ones.
fn current_holders(paths: &LockPaths) -> Vec<LockInfo> {
    let exclusive = File::open(&paths.meta)
        .ok()
        .and_then(|f| meta::read::<LockFileContent>(&f).ok())
        .and_then(|(found, _)| found.content().and_then(|c| c.holder.clone()));
    if let Some(h) = exclusive {
        return vec![h];
    }
    TableFile::open_existing(&paths.holders)
        .ok()
        .flatten()
        .map(|t| t.peek())
        .unwrap_or_default()
        .into_iter()
        .filter(is_alive)
        .collect()
}

fn is_alive(h: &LockInfo) -> bool {
    ff_process::holder_liveness(h) != Liveness::Dead
}

/// Empties the shared holders' table of a lock whose kernel lock the
/// caller holds exclusively (so every record in it is a dead holder's);
/// returns the records removed.
async fn clear_dead_holders(name: &str, paths: &LockPaths) -> Result<Vec<LockInfo>> {
    let Some(table) = TableFile::open_existing(&paths.holders)? else {
        return Ok(Vec::new());
    };
    let locked = table.lock(name).await?;
    let (mut t, len, unreadable) = locked.read_or_reset(name);
    let dead = std::mem::take(&mut t.holders);
    if !dead.is_empty() || unreadable {
        locked.write(&t, len)?;
    }
    Ok(dead)
}

/// How often a new holder looks again at a dead holder's process group.
const LINGER_POLL: Duration = Duration::from_millis(10);

/// Waits, holding the kernel lock, until no process of the process group a
/// dead holder left behind runs (its command, killed by its watchdog a few
/// milliseconds after the holder died): the kernel freed the lock when the
/// holder died, but the lock's promise covers the command too. `Ok(true)`
/// when the way is clear; `Ok(false)` when the group still runs at
/// `deadline` (`None`: do not wait).
async fn outlive_lingering_group(
    name: &str,
    previous: Option<&LockInfo>,
    deadline: Option<Instant>,
) -> Result<bool> {
    let Some(previous) = previous else {
        return Ok(true);
    };
    let mut logged = false;
    while ff_process::holder_group_liveness(previous) == Liveness::Alive {
        match deadline {
            Some(d) if Instant::now() < d => {}
            _ => return Ok(false),
        }
        if !logged {
            tracing::info!(
                lock = name,
                pid = previous.pid,
                group = previous.process_group,
                "the last holder died without releasing; waiting for its process group to end"
            );
            logged = true;
        }
        tokio::time::sleep(LINGER_POLL).await;
    }
    Ok(true)
}

/// Records the new holder and wraps the locked file in a guard; `None`
/// when a dead holder's process group still runs at `deadline`.
async fn grant(
    name: &str,
    file: File,
    paths: &LockPaths,
    options: &LockOptions,
    deadline: Option<Instant>,
) -> Result<Option<LockGuard>> {
    let now = Timestamp::now();
    let info;
    let mut shared = None;
    let mut file_len = 0;
    let mut separate_meta = None;
    match options.mode {
        LockMode::Exclusive => {
            let meta_handle = meta_file(paths, &file)?;
            let (found, len) = meta::read::<LockFileContent>(meta_handle.file())
                .map_err(|e| io_error("cannot read lock file", &e))?;
            let previous = found.content().and_then(|c| c.holder.as_ref());
            if !outlive_lingering_group(name, previous, deadline).await? {
                return lingering(name, previous, deadline, options.wait_budget());
            }
            // A holder's record in a free lock: its holder died holding it.
            if previous.is_some() {
                ff_metrics::lock_taken_over("file");
            }
            // Shared holders (readers, permits, intention locks of a
            // hierarchy) that died with their command still running: the
            // kernel freed their locks, their records remain; wait for
            // those commands too. (A live shared holder would still hold
            // its kernel lock, so only dead ones can be recorded here.)
            // Their records go once their commands are gone, so this read
            // stays short (a shared holder that died without releasing
            // leaves its record until the next exclusive grant).
            let shared_last = match outlive_dead_shared(name, paths, deadline).await? {
                Ok(last) => last,
                Err(dead) => {
                    return lingering(name, Some(&dead), deadline, options.wait_budget());
                }
            };
            if let Found::Unreadable(why) = &found {
                tracing::warn!(
                    lock = name,
                    reason = %why,
                    "lock file content unreadable; overwriting it (the fencing token continues from the clock)"
                );
            }
            let last = found.content().map_or(0, |c| c.last_token).max(shared_last);
            let token = meta::next_token(Some(last));
            info = LockInfo::for_current_process(name, FencingToken(token), options, now);
            let content = LockFileContent {
                format: meta::FORMAT.into(),
                name: name.to_owned(),
                last_token: token,
                holder: Some(info.clone()),
            };
            // On failure the file is dropped here, which releases the lock.
            file_len = meta::write(meta_handle.file(), &content, len)
                .map_err(|e| io_error(&format!("cannot write {}", paths.meta.display()), &e))?;
            if let MetaFile::Separate(f) = meta_handle {
                separate_meta = Some(f);
            }
        }
        _ => {
            let meta_handle = meta_file(paths, &file)?;
            let (found, len) = meta::read::<LockFileContent>(meta_handle.file())
                .map_err(|e| io_error("cannot read lock file", &e))?;
            let previous = found.content().and_then(|c| c.holder.as_ref());
            if !outlive_lingering_group(name, previous, deadline).await? {
                return lingering(name, previous, deadline, options.wait_budget());
            }
            // A holder's record in a free lock: its holder died holding it.
            if previous.is_some() {
                ff_metrics::lock_taken_over("file");
            }
            let exclusive_last = found.content().map_or(0, |c| c.last_token);
            if previous.is_some() {
                // An exclusive holder that died, its command gone: forget it,
                // so later grants do not judge it again. Shared holders doing
                // this at once write the same bytes.
                let content = LockFileContent {
                    format: meta::FORMAT.into(),
                    name: name.to_owned(),
                    last_token: exclusive_last,
                    holder: None,
                };
                meta::write(meta_handle.file(), &content, len)
                    .map_err(|e| io_error("cannot write lock file", &e))?;
            }
            // A full semaphore or a mode in the way: busy; the caller polls.
            let Some((admitted, table)) =
                admit_shared(name, paths, options, exclusive_last).await?
            else {
                return Ok(None);
            };
            info = admitted;
            shared = Some(table);
        }
    }
    let (notifier, watch) = loss_channel();
    let held = KernelHeld {
        file: Some(file),
        meta: separate_meta,
        file_len,
        info: info.clone(),
        shared,
        _loss: notifier,
    };
    Ok(Some(LockGuard::new(info, watch, Box::new(held))))
}

/// A try that found a dead holder's group running is busy; a wait that
/// ran out on it times out, naming that holder.
fn lingering(
    name: &str,
    previous: Option<&LockInfo>,
    deadline: Option<Instant>,
    waited: Duration,
) -> Result<Option<LockGuard>> {
    match deadline {
        None => Ok(None),
        Some(_) => Err(Error::lock_timeout(
            name.to_owned(),
            waited,
            previous.cloned(),
        )),
    }
}

/// Waits, holding the lock file exclusively, for the commands of shared
/// holders that died (their records remain in the table; with the kernel
/// lock held exclusively no shared holder is live), then clears their
/// records. `Ok(Ok(last shared token))` when the way is clear;
/// `Ok(Err(holder))` when a dead holder's group still runs at `deadline`.
async fn outlive_dead_shared(
    name: &str,
    paths: &LockPaths,
    deadline: Option<Instant>,
) -> Result<std::result::Result<u64, LockInfo>> {
    let Some(table) = TableFile::open_existing(&paths.holders)? else {
        return Ok(Ok(0));
    };
    let locked = table.lock(name).await?;
    let (mut t, len, unreadable) = locked.read_or_reset(name);
    if t.holders.is_empty() {
        if unreadable {
            locked.write(&t, len)?;
        }
        return Ok(Ok(t.last_token));
    }
    for dead in &t.holders {
        if !outlive_lingering_group(name, Some(dead), deadline).await? {
            return Ok(Err(dead.clone()));
        }
    }
    t.holders.clear();
    locked.write(&t, len)?;
    Ok(Ok(t.last_token))
}

/// Admits a shared holder (holding the lock file's shared kernel lock):
/// under the table's kernel lock, held for microseconds, checks the modes
/// in the way and a semaphore's cap against the live holders' records,
/// takes the next fencing token and records the holder. `None` when a
/// mode in the way or a full semaphore keeps it out.
async fn admit_shared(
    name: &str,
    paths: &LockPaths,
    options: &LockOptions,
    exclusive_last: u64,
) -> Result<Option<(LockInfo, TableFile)>> {
    let table = TableFile::open(&paths.holders)?;
    let locked = table.lock(name).await?;
    let (mut t, len, unreadable) = locked.read_or_reset(name);
    // Holders' pids are read only where they matter: records in the way,
    // records counted against a cap, or every record once the table has
    // grown (records of holders that died stay until judged).
    let judge_all = t.holders.len() > holders::PRUNE_ABOVE
        || options
            .permits
            .is_some_and(|n| t.holders.len() >= n as usize);
    let before = t.holders.len();
    t.holders
        .retain(|h| (!judge_all && h.mode.compatible(options.mode)) || is_alive(h));
    let pruned = t.holders.len() != before;
    if t.holders.iter().any(|h| !h.mode.compatible(options.mode))
        || options
            .permits
            .is_some_and(|n| t.holders.len() >= n as usize)
    {
        if pruned || unreadable {
            locked.write(&t, len)?;
        }
        return Ok(None);
    }
    let token = meta::next_token(Some(t.last_token.max(exclusive_last)));
    let info = LockInfo::for_current_process(name, FencingToken(token), options, Timestamp::now());
    t.last_token = token;
    t.holders.push(info.clone());
    locked.write(&t, len)?;
    drop(locked);
    Ok(Some((info, table)))
}

#[derive(Debug)]
struct KernelHeld {
    file: Option<File>,
    /// The separate metadata file, where there is one (Windows).
    meta: Option<File>,
    // Nobody else writes the file while we hold it exclusively, so its
    // length is known without reading it again.
    file_len: u64,
    info: LockInfo,
    /// A shared holder's table, its record to remove on release.
    shared: Option<TableFile>,
    // Kept so the guard's loss watch stays open; kernel grants are never lost.
    _loss: LossNotifier,
}

impl KernelHeld {
    fn end(&mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let result = if let Some(table) = self.shared.take() {
            // Remove the record first, then free the kernel lock: a record
            // of a live process always stands for a held lock.
            forget_shared(&table, &self.info)
        } else {
            // Clear the holder, keep the counter; then unlock.
            let content = LockFileContent {
                format: meta::FORMAT.into(),
                name: self.info.name.clone(),
                last_token: self.info.fencing_token.0,
                holder: None,
            };
            let target = self.meta.as_ref().unwrap_or(&file);
            meta::write(target, &content, self.file_len).map(|_| ())
        };
        // Closing the file releases the lock whatever unlock says, so an
        // unlock error is no release error (Wine, for one, refuses the
        // whole-file unlock std issues, with a lock violation).
        if let Err(e) = file.unlock() {
            tracing::debug!(lock = %self.info.name, error = %e, "unlock refused; closing the file releases the lock");
        }
        drop(file);
        result
    }
}

/// Removes a shared holder's record from its table.
fn forget_shared(table: &TableFile, info: &LockInfo) -> io::Result<()> {
    let to_io = |e: Error| io::Error::other(e.to_string());
    let locked = table.lock_blocking(&info.name).map_err(to_io)?;
    let (mut t, len, unreadable) = locked.read_or_reset(&info.name);
    let before = t.holders.len();
    t.holders.retain(|h| h.id != info.id);
    if t.holders.len() != before || unreadable {
        locked.write(&t, len).map_err(to_io)?;
    }
    Ok(())
}

#[async_trait]
impl HeldLock for KernelHeld {
    async fn release(&mut self) -> Result<()> {
        self.end()
            .map_err(|e| io_error(&format!("releasing lock '{}'", self.info.name), &e))
    }

    fn release_on_drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::warn!(lock = %self.info.name, error = %e, "lock released on drop with an error; the kernel lock is free");
        }
    }
}

/// What [`FileLockProvider::prune_free`] does in kernel mode.
pub(crate) fn prune_free(dir: &Path, idle: Duration) -> Result<u64> {
    prune_free_with(dir, idle, || {})
}

/// [`prune_free`], calling `locked` while it holds a file's exclusive lock,
/// just before unlinking it (tests race acquirers there).
fn prune_free_with(dir: &Path, idle: Duration, mut locked: impl FnMut()) -> Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("cannot list lock directory", &e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry
            .map_err(|e| io_error("cannot list lock directory", &e))?
            .path();
        if path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let paths = LockPaths::new(dir, &stem);
        // Not created here: a file removed meanwhile stays removed.
        let Ok(file) = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&paths.lock)
        else {
            continue;
        };
        let recent = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < idle);
        if recent || !try_lock(&file, LockMode::Exclusive).unwrap_or(false) {
            continue;
        }
        // Held exclusively by us, and still the file at its path: no one
        // holds it, and no shared holder is in its table.
        if !linked(&file, &paths)? {
            continue;
        }
        locked();
        for p in [&paths.holders, &paths.lock] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("cannot remove a free lock's file", &e)),
            }
        }
        removed += 1;
        drop(file);
    }
    Ok(removed)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use ff_traits::{LockName, LockOptions, LockProvider};

    use crate::FileLockProvider;

    /// How many of this process's open files are `path` (through
    /// `/proc/self/fd`, which names each one's path).
    fn open_as(path: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.flatten()
                    .filter(|e| std::fs::read_link(e.path()).is_ok_and(|p| p == path))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The race that deleting lock files opens: a waiter opened the file
    /// before `prune_free` unlinked it and locks it after. It must see the
    /// path names another file now, and take that one's lock: else it and
    /// a newcomer (who locks the new file) would both hold the lock.
    #[test]
    fn a_waiter_on_a_pruned_file_locks_the_path_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = FileLockProvider::new(dir.path());
        let name = LockName::new("pruned").expect("name");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let g = locks
                .acquire(&name, &LockOptions::default())
                .await
                .expect("first grant");
            g.release().await.expect("release");
        });
        let stem = crate::names::file_stem(&name);
        let path = std::fs::canonicalize(dir.path())
            .expect("canonical")
            .join(format!("{stem}.lock"));
        let mut waiter = None;
        let pruned = super::prune_free_with(dir.path(), Duration::ZERO, || {
            // The pruner holds the file's lock: a waiter opens it and
            // blocks on it.
            let waiting = locks.clone();
            let name = name.clone();
            waiter = Some(rt.spawn(async move {
                waiting
                    .acquire(
                        &name,
                        &LockOptions::default().with_timeout(Duration::from_secs(20)),
                    )
                    .await
            }));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while open_as(&path) < 2 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the waiter never opened the file"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .expect("prune");
        assert_eq!(pruned, 1);
        rt.block_on(async {
            let held = waiter
                .expect("waiter")
                .await
                .expect("join")
                .expect("the waiter gets the lock");
            assert!(path.exists(), "the waiter made the file again");
            let newcomer = FileLockProvider::new(dir.path());
            assert!(
                newcomer
                    .try_acquire(&name, &LockOptions::default())
                    .await
                    .expect("try")
                    .is_none(),
                "two holders: the waiter locked the unlinked file"
            );
            held.release().await.expect("release");
            assert!(
                newcomer
                    .try_acquire(&name, &LockOptions::default())
                    .await
                    .expect("try")
                    .is_some()
            );
        });
    }

    /// Held locks, and files granted within `idle`, are never removed.
    #[test]
    fn held_and_recent_lock_files_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = FileLockProvider::new(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let held = locks
                .acquire(
                    &LockName::new("held").expect("name"),
                    &LockOptions::default(),
                )
                .await
                .expect("held");
            let free = locks
                .acquire(
                    &LockName::new("free").expect("name"),
                    &LockOptions::default(),
                )
                .await
                .expect("free");
            free.release().await.expect("release");
            assert_eq!(
                locks
                    .prune_free(Duration::from_secs(3600))
                    .await
                    .expect("prune"),
                0
            );
            assert_eq!(locks.prune_free(Duration::ZERO).await.expect("prune"), 1);
            let names: Vec<String> = locks
                .locks()
                .await
                .expect("locks")
                .into_iter()
                .map(|l| l.name)
                .collect();
            assert_eq!(names, ["held"]);
            held.release().await.expect("release");
        });
    }
}

//! Lease mode, for filesystems whose kernel locks are unreliable (network
//! drives): `<dir>/<stem>.lease` exists while the lock is held.
//!
//! * **Take:** exclusive create of the lease file, then the holder's
//!   metadata. Waiters poll, with pauses growing from 1 ms to
//!   `retry_interval`.
//! * **Refresh:** every third of `stale_threshold`, the holder rewrites its
//!   metadata and modification time *through its own open file*, so a
//!   refresh can only ever touch the holder's own lease, never a successor's.
//! * **Stale** only when the holder is provably gone: on this host, its pid
//!   is dead or now names another process (start time changed); on another
//!   host (or where liveness is unknown), its lease lapsed (no refresh for
//!   the lease length it recorded). A live, slow holder keeps its lock.
//! * **Break and release are compare-and-swap:** the lease is renamed to a
//!   private name, then its identity (inode, grant id) is checked; if it was
//!   not the lease judged, it is linked back. Two breakers can never both
//!   win: only one rename succeeds.
//! * **Loss:** the refresher checks that the lease at the path is still its
//!   own; when not (taken over) or when a refresh fails, the guard reports
//!   the loss.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ff_process::Liveness;
use ff_traits::{
    Error, FencingToken, ForceOutcome, ForceRelease, HeldLock, LockGuard, LockInfo, LockMode,
    LockOptions, LockStatus, LossNotifier, Result, Timestamp, loss_channel,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::kernel::open_error;
use crate::platform;
use crate::{io_error, meta};

const FORMAT: &str = "ff-lease/1";

/// What a lease file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseContent {
    format: String,
    lease_ms: u64,
    holder: LockInfo,
}

/// The files of one lease.
#[derive(Debug, Clone)]
pub(crate) struct LeasePaths {
    pub(crate) lease: PathBuf,
    token: PathBuf,
    dir: PathBuf,
    stem: String,
}

impl LeasePaths {
    pub(crate) fn new(dir: &Path, stem: &str) -> Self {
        Self {
            lease: dir.join(format!("{stem}.lease")),
            token: dir.join(format!("{stem}.lease-token")),
            dir: dir.to_path_buf(),
            stem: stem.to_owned(),
        }
    }

    fn private(&self, why: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.lease.{why}.{}",
            self.stem,
            ff_traits::identity::unique_id()
        ))
    }
}

/// What identifies one lease file, whatever its path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    inode: Option<(u64, u64)>,
    grant_id: Option<String>,
    len: u64,
    modified: Option<SystemTime>,
}

fn inode_of(m: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

/// Reads what is at `path` now: identity and content (if readable).
fn inspect(path: &Path) -> io::Result<(Identity, Option<LeaseContent>)> {
    let file = File::open(path)?;
    let m = file.metadata()?;
    let content = parse(&fs::read(path).unwrap_or_default());
    let identity = Identity {
        inode: inode_of(&m),
        grant_id: content.as_ref().map(|c| c.holder.id.clone()),
        len: m.len(),
        modified: m.modified().ok(),
    };
    Ok((identity, content))
}

/// The holder a lease file names, if it is one of ours.
fn parse(bytes: &[u8]) -> Option<LeaseContent> {
    serde_json::from_slice::<LeaseContent>(bytes.trim_ascii())
        .ok()
        .filter(|c| c.format == FORMAT)
}

/// Parses `bytes` as a lease file (for the fuzz targets).
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_holder(bytes: &[u8]) -> Option<LockInfo> {
    parse(bytes).map(|c| c.holder)
}

/// Whether a lease is provably abandoned, and why.
fn staleness(
    identity: &Identity,
    content: Option<&LeaseContent>,
    options: &LockOptions,
) -> Option<String> {
    let age = identity
        .modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    let Some(content) = content else {
        // Empty (a crash between create and write) or foreign: judged by age.
        return (age > options.stale_threshold).then(|| {
            format!(
                "unreadable lease untouched for {}",
                ff_traits::fmt_duration(age)
            )
        });
    };
    let h = &content.holder;
    let lease = Duration::from_millis(content.lease_ms);
    match ff_process::holder_liveness(h) {
        Liveness::Dead => return Some(format!("holder pid {} is gone", h.pid)),
        Liveness::Alive => return None,
        Liveness::Unknown => {}
    }
    (age > lease).then(|| {
        format!(
            "lease of pid {} on {} lapsed {} ago",
            h.pid,
            h.hostname,
            ff_traits::fmt_duration(age - lease)
        )
    })
}

/// Removes the lease at `paths.lease` if it is still the one judged
/// (`judged`). Returns whether it removed it.
fn break_lease(paths: &LeasePaths, judged: &Identity) -> io::Result<bool> {
    let private = paths.private("breaking");
    match fs::rename(&paths.lease, &private) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let (taken, _) = inspect(&private)?;
    if same_lease(&taken, judged) {
        fs::remove_file(&private)?;
        return Ok(true);
    }
    // We moved a newer lease than the one judged: put it back, unless yet
    // another holder appeared meanwhile (that newer holder then sees its
    // lease gone at its next refresh and reports the loss).
    let _ = fs::hard_link(&private, &paths.lease);
    fs::remove_file(&private)?;
    Ok(false)
}

fn same_lease(a: &Identity, b: &Identity) -> bool {
    match (a.inode, b.inode, &a.grant_id, &b.grant_id) {
        (Some(x), Some(y), _, _) => x == y && a.grant_id == b.grant_id,
        // No inode (Windows): the grant id, unique to one grant and kept by
        // its refreshes, names the lease; comparing times too would make a
        // holder's own refresh look like a takeover.
        (_, _, Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn write_token(path: &Path, token: u64) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", ff_traits::identity::unique_id()));
    fs::write(&tmp, token.to_string())?;
    fs::rename(&tmp, path)
}

fn read_token(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_lease(mut file: &File, content: &LeaseContent) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let bytes = serde_json::to_vec_pretty(content).map_err(io::Error::other)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&bytes)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_data()
}

/// Takes the lease, waiting if `wait`.
pub(crate) async fn acquire(
    name: &str,
    paths: &LeasePaths,
    options: &LockOptions,
    wait: bool,
) -> Result<Option<LockGuard>> {
    if options.mode != LockMode::Exclusive {
        return Err(Error::Unsupported {
            backend: "file (lease mode)".into(),
            what: format!(
                "{} locks (only exclusive ones); use kernel mode for shared locks, semaphores \
                 and intention modes",
                options.mode
            ),
        });
    }
    // tokio's clock, as the sleeps below: the budget and the pauses are
    // measured on one clock (and a paused test clock applies to both).
    let started = tokio::time::Instant::now();
    let budget = options.wait_budget();
    let mut pause = Duration::from_millis(1);
    loop {
        match platform::open_lock_file(&paths.lease, true) {
            Ok(file) => return grant(name, file, paths, options).map(Some),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_error(&e, &paths.lease)),
        }
        let holder = match inspect(&paths.lease) {
            Ok((identity, content)) => {
                if let Some(why) = staleness(&identity, content.as_ref(), options) {
                    tracing::info!(lock = name, reason = %why, "breaking a stale lease");
                    ff_metrics::lock_taken_over("file");
                    break_lease(paths, &identity)
                        .map_err(|e| io_error("cannot break a stale lease", &e))?;
                    continue;
                }
                content.map(|c| c.holder)
            }
            // Released between our create and our look: try again at once.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("cannot read lease", &e)),
        };
        if pause == Duration::from_millis(1) && wait {
            ff_metrics::lock_contended("file", options);
            options.waiting();
        }
        if !wait || started.elapsed() >= budget {
            if !wait {
                return Ok(None);
            }
            return Err(Error::lock_timeout(
                name.to_owned(),
                started.elapsed(),
                holder,
            ));
        }
        tokio::time::sleep(pause.min(budget.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(options.retry_interval);
    }
}

fn grant(name: &str, file: File, paths: &LeasePaths, options: &LockOptions) -> Result<LockGuard> {
    let token = meta::next_token(read_token(&paths.token));
    let now = Timestamp::now();
    let info = LockInfo::for_current_process(name, FencingToken(token), options, now);
    let content = LeaseContent {
        format: FORMAT.into(),
        lease_ms: u64::try_from(options.stale_threshold.as_millis()).unwrap_or(u64::MAX),
        holder: info.clone(),
    };
    let written = write_token(&paths.token, token)
        .and_then(|()| write_lease(&file, &content))
        .and_then(|()| file.metadata());
    let m = match written {
        Ok(m) => m,
        Err(e) => {
            // Undo our half-made lease so nobody waits for it to go stale.
            let _ = fs::remove_file(&paths.lease);
            return Err(io_error("cannot write lease", &e));
        }
    };
    let identity = Identity {
        inode: inode_of(&m),
        grant_id: Some(info.id.clone()),
        len: m.len(),
        modified: m.modified().ok(),
    };
    let (notifier, watch) = loss_channel();
    let refresher = tokio::spawn(refresh_loop(
        file.try_clone()
            .map_err(|e| io_error("cannot share the lease file", &e))?,
        paths.clone(),
        content,
        identity.clone(),
        options.refresh_interval().max(Duration::from_millis(10)),
        notifier.clone(),
    ));
    let held = LeaseHeld {
        paths: paths.clone(),
        identity,
        info: info.clone(),
        refresher: Some(refresher),
        notifier,
        _file: file,
    };
    Ok(LockGuard::new(info, watch, Box::new(held)))
}

async fn refresh_loop(
    file: File,
    paths: LeasePaths,
    mut content: LeaseContent,
    ours: Identity,
    period: Duration,
    notifier: LossNotifier,
) {
    loop {
        tokio::time::sleep(period).await;
        let still_ours = inspect(&paths.lease)
            .map(|(now, _)| same_lease(&now, &ours))
            .unwrap_or(false);
        if !still_ours {
            notifier.notify_lost("the lease file was removed or taken over");
            return;
        }
        content.holder.refreshed_at = Timestamp::now();
        let refreshed =
            write_lease(&file, &content).and_then(|()| file.set_modified(SystemTime::now()));
        if let Err(e) = refreshed {
            notifier.notify_lost(format!("lease refresh failed: {e}"));
            return;
        }
    }
}

#[derive(Debug)]
struct LeaseHeld {
    paths: LeasePaths,
    identity: Identity,
    info: LockInfo,
    refresher: Option<JoinHandle<()>>,
    notifier: LossNotifier,
    _file: File,
}

impl LeaseHeld {
    fn end(&mut self) -> Result<()> {
        if let Some(r) = self.refresher.take() {
            r.abort();
        } else {
            return Ok(());
        }
        let private = self.paths.private("releasing");
        match fs::rename(&self.paths.lease, &private) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.lost("the lease file was already gone"));
            }
            Err(e) => return Err(io_error("cannot release lease", &e)),
        }
        let taken = inspect(&private).map(|(id, _)| id);
        if taken
            .as_ref()
            .is_ok_and(|id| same_lease(id, &self.identity))
        {
            fs::remove_file(&private).map_err(|e| io_error("cannot remove lease", &e))?;
            return Ok(());
        }
        // Not ours any more: put the successor's lease back.
        let _ = fs::hard_link(&private, &self.paths.lease);
        let _ = fs::remove_file(&private);
        Err(self.lost("the lease had been taken over by another holder"))
    }

    fn lost(&self, reason: &str) -> Error {
        self.notifier.notify_lost(reason);
        Error::LockLost {
            name: self.info.name.clone(),
            reason: reason.to_owned(),
        }
    }
}

#[async_trait]
impl HeldLock for LeaseHeld {
    async fn release(&mut self) -> Result<()> {
        self.end()
    }

    fn release_on_drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::warn!(lock = %self.info.name, error = %e, "lease released on drop with an error");
        }
    }
}

/// The status of one lease, if its file exists.
pub(crate) fn status(paths: &LeasePaths, options: &LockOptions) -> Result<Option<LockStatus>> {
    match inspect(&paths.lease) {
        Ok((identity, content)) => {
            let stale = staleness(&identity, content.as_ref(), options).is_some();
            let holders: Vec<LockInfo> = content.map(|c| c.holder).into_iter().collect();
            let name = holders
                .first()
                .map_or_else(|| paths.stem.clone(), |h| h.name.clone());
            Ok(Some(LockStatus::new(name, !stale, holders)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("cannot read lease", &e)),
    }
}

/// Clears a stale lease; refuses a live one.
pub(crate) fn force(name: &str, paths: &LeasePaths, options: &LockOptions) -> Result<ForceRelease> {
    let (identity, content) = match inspect(&paths.lease) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(ForceRelease::new(name, ForceOutcome::NotHeld));
        }
        Err(e) => return Err(io_error("cannot read lease", &e)),
    };
    let holders: Vec<LockInfo> = content.iter().map(|c| c.holder.clone()).collect();
    if staleness(&identity, content.as_ref(), options).is_none() {
        return Ok(ForceRelease::new(
            name,
            ForceOutcome::Refused {
                holders,
                reason: "the lease holder is alive and refreshing; taking its lease would give \
                         two holders until it noticed; stop that process, and its lease is \
                         broken as soon as it is provably gone"
                    .into(),
            },
        ));
    }
    let removed = break_lease(paths, &identity).map_err(|e| io_error("cannot break lease", &e))?;
    Ok(ForceRelease::new(
        name,
        if removed {
            ForceOutcome::Cleared { previous: holders }
        } else {
            ForceOutcome::NotHeld
        },
    ))
}

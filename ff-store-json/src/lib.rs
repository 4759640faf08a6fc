//! # ff-store-json: one JSON file per idempotency record
//!
//! [`JsonStore`] implements [`ff_traits::IdempotencyStorage`] in a directory
//! (created when missing) holding one pretty-printed `<key>.json` per record,
//! readable by people and by `jq`.
//!
//! * **Atomic and durable writes.** Every write goes to a temporary file in
//!   the same directory, is fsynced, then renamed (or linked) into place, and
//!   the directory is fsynced. A crash at any instant leaves the old record
//!   or the new one, never a torn one.
//! * **Conditional writes across processes.** Create-if-absent links the
//!   finished temporary file to the record's name: the link fails if a
//!   record (or anything) is there, so exactly one creator wins.
//!   Compare-and-swap and conditional remove hold a kernel lock on one of 256
//!   stripe files (`.locks/<first two hex digits>.lock`) and re-read the
//!   record inside it.
//! * **Corrupt is not absent.** A record that cannot be parsed, or whose key
//!   does not match its file name, is reported as
//!   [`Error::Corrupt`]; scans skip and count it.
//!   [`JsonStore::quarantine`] moves it aside to `corrupt/`.
//! * **No full load.** Nothing is read at start-up; a lookup opens one file,
//!   whatever the number of records. Scans (stats, cleanup) also delete
//!   temporary files that crashed writers left more than ten minutes ago.
//!
//! Blocking file I/O runs on Tokio's blocking pool.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use ff_store_json::JsonStore;
//! use ff_idempotency::{IdempotencyManager, ManagerConfig};
//! use ff_traits::IdempotencyKey;
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let manager = IdempotencyManager::new(JsonStore::open(dir.path())?, ManagerConfig::default());
//! let key = IdempotencyKey::new("sendReport", json!({"week": 47}), json!({}));
//! let out = manager.execute(&key, None, |_| async { Ok::<_, String>(3) }).await?;
//! assert_eq!(out.into_inner(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ff_traits::{
    CorruptEntry, Error, IdempotencyRecord, IdempotencyStorage, RecordKey, Result, Revision, Scan,
    ScanFilter, Timestamp,
};

const LOCK_DIR: &str = ".locks";
const CORRUPT_DIR: &str = "corrupt";
const TMP_MARK: &str = ".tmp.";
/// Temporary files older than this are leftovers of a crash.
const STALE_TMP_AGE: Duration = Duration::from_secs(600);

/// A directory of JSON records. Clones share the directory.
#[derive(Debug, Clone)]
pub struct JsonStore {
    dir: Arc<PathBuf>,
}

impl JsonStore {
    /// Opens (creating when missing) the store in `dir`. Nothing is read:
    /// opening costs the same with 100 or 100,000 records.
    ///
    /// # Errors
    /// [`Error::Backend`] when the directory cannot be created or is not a
    /// writable directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        private_dir(&dir.join(LOCK_DIR)).map_err(|e| {
            io_error(
                &format!("cannot create store directory {}", dir.display()),
                &e,
            )
        })?;
        Ok(Self { dir: Arc::new(dir) })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `key`'s record.
    pub fn record_path(&self, key: &RecordKey) -> PathBuf {
        record_path(&self.dir, key)
    }

    /// Moves the record of `key` (typically a corrupt one) aside to
    /// `corrupt/<key>.json.<unix ms>`, so the key can be used again. Returns
    /// where it went.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no record file; [`Error::Backend`].
    pub async fn quarantine(&self, key: &RecordKey) -> Result<PathBuf> {
        let dir = Arc::clone(&self.dir);
        let key = key.clone();
        blocking(move || {
            let _stripe = StripeLock::take(&dir, &key)?;
            let from = record_path(&dir, &key);
            let to_dir = dir.join(CORRUPT_DIR);
            private_dir(&to_dir).map_err(|e| io_error("cannot create corrupt/", &e))?;
            let to = to_dir.join(format!("{key}.json.{}", Timestamp::now().as_millis()));
            match fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NotFound {
                        what: format!("record file {}", from.display()),
                    });
                }
                Err(e) => return Err(io_error("cannot move record aside", &e)),
            }
            sync_dir(&dir).map_err(|e| io_error("cannot sync store directory", &e))?;
            tracing::warn!(key = key.short(), to = %to.display(), "record moved aside");
            Ok(to)
        })
        .await
    }
}

fn record_path(dir: &Path, key: &RecordKey) -> PathBuf {
    dir.join(format!("{key}.json"))
}

fn io_error(context: &str, e: &io::Error) -> Error {
    Error::io("json", context, e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend {
            backend: "json".into(),
            message: format!("store task failed: {e}"),
            source: None,
        })?
}

/// Reads and checks one record file. `Ok(None)` when there is none.
fn read_record(dir: &Path, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
    let path = record_path(dir, key);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&format!("cannot read {}", path.display()), &e)),
    };
    parse_record(&bytes, key, &path).map(Some)
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses the bytes of a record file stored under `key`.
    ///
    /// # Errors
    /// As a load of such a file.
    pub fn parse_record(
        bytes: &[u8],
        key: &ff_traits::RecordKey,
    ) -> ff_traits::Result<ff_traits::IdempotencyRecord> {
        super::parse_record(bytes, key, std::path::Path::new("fuzz.json"))
    }
}

fn parse_record(bytes: &[u8], key: &RecordKey, path: &Path) -> Result<IdempotencyRecord> {
    // The revision is in the file, with the rest of the record.
    IdempotencyRecord::decode(bytes, key.as_str(), None, &path.display().to_string()).map_err(|e| {
        match e {
            Error::Corrupt {
                what,
                location,
                reason,
            } => Error::Corrupt {
                what,
                location,
                reason: format!(
                    "{reason}; move it aside with `JsonStore::quarantine` to reuse the key"
                ),
            },
            other => other,
        }
    })
}

/// How a record file is put in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Only if nothing is there (hard link: never replaces).
    CreateNew,
    /// Replacing what is there (rename).
    Replace,
}

/// Writes `record` to its file atomically and durably. Returns `false`
/// when `CreateNew` found something in place (nothing changed).
fn write_record(dir: &Path, record: &IdempotencyRecord, placement: Placement) -> Result<bool> {
    let path = record_path(dir, &record.key);
    let mut bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::invalid_input("idempotency record", e.to_string()))?;
    bytes.push(b'\n');
    let tmp = dir.join(format!(
        ".{}{TMP_MARK}{}",
        record.key,
        ff_traits::identity::unique_id()
    ));
    let written = (|| -> io::Result<bool> {
        // Records may hold what a command printed: readable by the owner
        // alone, whatever the umask.
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        match placement {
            Placement::Replace => fs::rename(&tmp, &path)?,
            Placement::CreateNew => match fs::hard_link(&tmp, &path) {
                Ok(()) => fs::remove_file(&tmp)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    fs::remove_file(&tmp)?;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            },
        }
        sync_dir(dir)?;
        Ok(true)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(|e| io_error(&format!("cannot write {}", path.display()), &e))
}

/// Makes `dir` (and missing parents) enterable by its owner alone.
fn private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Makes a rename, link or unlink in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file without extra flags;
        // NTFS journals renames itself.
        let _ = dir;
        Ok(())
    }
}

/// Removes `entry` if it is a temporary file that a crashed writer left
/// more than [`STALE_TMP_AGE`] ago. Returns whether it was a temporary.
fn sweep_if_stale_temporary(entry: &fs::DirEntry, name: &str) -> bool {
    if !(name.starts_with('.') && name.contains(TMP_MARK)) {
        return false;
    }
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_TMP_AGE);
    if old {
        let _ = fs::remove_file(entry.path());
    }
    true
}

/// A kernel lock on the stripe file of a key, held for one conditional
/// write. Released when dropped (the file is closed).
struct StripeLock(File);

impl StripeLock {
    fn take(dir: &Path, key: &RecordKey) -> Result<Self> {
        let path = dir
            .join(LOCK_DIR)
            .join(format!("{}.lock", &key.as_str()[..2]));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| io_error(&format!("cannot open {}", path.display()), &e))?;
        file.lock()
            .map_err(|e| io_error(&format!("cannot lock {}", path.display()), &e))?;
        Ok(Self(file))
    }
}

impl Drop for StripeLock {
    fn drop(&mut self) {
        // Closing the file would release the lock too; unlocking first
        // lets a waiter in before the close completes.
        let _ = self.0.unlock();
    }
}

fn expect_revision(dir: &Path, key: &RecordKey, expected: Revision) -> Result<IdempotencyRecord> {
    let Some(current) = read_record(dir, key)? else {
        return Err(Error::NotFound {
            what: format!("record {}", key.short()),
        });
    };
    if current.revision != expected {
        return Err(Error::PreconditionFailed {
            what: format!("record {}", key.short()),
            expected,
            actual: Some(current.revision),
        });
    }
    Ok(current)
}

#[async_trait]
impl IdempotencyStorage for JsonStore {
    fn backend_name(&self) -> &str {
        "json"
    }

    /// On Linux, the kernel's reports of records appearing (linked or
    /// renamed into place), rewritten or removed in the store's directory
    /// (temporary files and stripe locks are not records). Elsewhere
    /// `None`: watchers poll.
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        if !cfg!(target_os = "linux") {
            return Ok(None);
        }
        ff_fs_watch::watch_dir(&self.dir, ff_fs_watch::Lapses::Never, |file| {
            file.ends_with(".json")
        })
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        let (dir, key) = (Arc::clone(&self.dir), key.clone());
        blocking(move || read_record(&dir, &key)).await
    }

    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            record.revision = Revision::FIRST;
            if write_record(&dir, &record, Placement::CreateNew)? {
                Ok(record)
            } else {
                Err(Error::AlreadyExists {
                    what: format!("record {}", record.key.short()),
                })
            }
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        expected: Revision,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            let _stripe = StripeLock::take(&dir, &record.key)?;
            expect_revision(&dir, &record.key, expected)?;
            record.revision = expected.next();
            write_record(&dir, &record, Placement::Replace)?;
            Ok(record)
        })
        .await
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let (dir, key) = (Arc::clone(&self.dir), key.clone());
        blocking(move || {
            let _stripe = StripeLock::take(&dir, &key)?;
            expect_revision(&dir, &key, expected)?;
            let path = record_path(&dir, &key);
            fs::remove_file(&path)
                .and_then(|()| sync_dir(&dir))
                .map_err(|e| io_error(&format!("cannot remove {}", path.display()), &e))
        })
        .await
    }

    /// Removes each eligible record under its stripe lock after re-reading
    /// it, like the default, but makes the directory durable once at the
    /// end instead of after every file: a removal lost to a power cut only
    /// brings back a finished record, which is harmless.
    async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
        let candidates = self
            .scan(&ScanFilter::default().active_before(cutoff))
            .await?
            .records;
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            let mut removed = 0;
            for r in candidates.iter().filter(|r| r.status.is_finished()) {
                let _stripe = StripeLock::take(&dir, &r.key)?;
                match expect_revision(&dir, &r.key, r.revision) {
                    Ok(_) => {}
                    // Changed or removed meanwhile, or damaged: keep it.
                    Err(
                        Error::PreconditionFailed { .. }
                        | Error::NotFound { .. }
                        | Error::Corrupt { .. },
                    ) => {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let path = record_path(&dir, &r.key);
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(io_error(&format!("cannot remove {}", path.display()), &e));
                    }
                }
            }
            sync_dir(&dir).map_err(|e| io_error("cannot sync store directory", &e))?;
            Ok(removed)
        })
        .await
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let (dir, filter) = (Arc::clone(&self.dir), filter.clone());
        blocking(move || {
            let entries = fs::read_dir(&*dir).map_err(|e| io_error("cannot list the store", &e))?;
            let mut scan = Scan::default();
            for entry in entries {
                let entry = entry.map_err(|e| io_error("cannot list the store", &e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if sweep_if_stale_temporary(&entry, &name) {
                    continue;
                }
                let Some(key) = name
                    .strip_suffix(".json")
                    .and_then(|k| RecordKey::parse(k).ok())
                else {
                    continue; // not a record file (temporaries, locks, corrupt/)
                };
                let path = entry.path();
                let bytes = match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                    Err(e) => return Err(io_error(&format!("cannot read {}", path.display()), &e)),
                };
                match parse_record(&bytes, &key, &path) {
                    Ok(r) if filter.matches(&r) => scan.records.push(r),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "skipping corrupt record");
                        scan.corrupt.push(CorruptEntry::new(path.display().to_string(), e.to_string()));
                    }
                }
            }
            Ok(scan)
        })
        .await
    }
}

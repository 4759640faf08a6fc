//! # ff-store-sqlite: idempotency records in one SQLite database
//!
//! [`SqliteStore`] implements [`ff_traits::IdempotencyStorage`] in one
//! database file, shared safely by any number of threads and processes.
//!
//! * **WAL** journal, so readers never block the writer, and a **busy
//!   timeout** (5 s by default) instead of instant "database is locked"
//!   failures.
//! * **Durability** ([`Durability`]): `Normal` by default (`synchronous =
//!   NORMAL` in WAL mode): a committed write survives any crash of the
//!   process, SIGKILL included; a power loss or OS crash may lose the last
//!   transactions before the WAL checkpoint, but never corrupts the
//!   database. `Full` (`synchronous = FULL`) fsyncs every commit and
//!   survives power loss too, at about ten times the cost per write.
//! * **Conditional writes are single statements**, atomic in SQLite:
//!   `INSERT … ON CONFLICT DO NOTHING` for create-if-absent, `UPDATE …
//!   WHERE key = ? AND revision = ?` for compare-and-swap, `DELETE … WHERE
//!   revision = ?` for conditional remove.
//! * **Schema versioned** with `PRAGMA user_version` and migrations; indexes
//!   on key (primary), operation, status and age.
//! * **Stats and cleanup in SQL** (aggregates and one `DELETE`), not scans.
//! * Blocking SQLite calls stay off the async executor: `block_in_place` on
//!   a multi-threaded Tokio runtime, the blocking pool otherwise.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use ff_store_sqlite::SqliteStore;
//! use ff_idempotency::{IdempotencyManager, ManagerConfig};
//! use ff_traits::IdempotencyKey;
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("ff.sqlite3"))?;
//! let manager = IdempotencyManager::new(store, ManagerConfig::default());
//! let key = IdempotencyKey::new("sendReport", json!({"week": 47}), json!({}));
//! let out = manager.execute(&key, None, |_| async { Ok::<_, String>(3) }).await?;
//! assert_eq!(out.into_inner(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

#![forbid(unsafe_code)]

mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ff_traits::{
    CorruptEntry, Error, IdempotencyRecord, IdempotencyStorage, RecordKey, RecordStatus, Result,
    Revision, Scan, ScanFilter, StoreStats, Timestamp,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

/// How hard each commit is pushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL` (WAL): survives process crashes; a power loss
    /// may lose the latest commits, never consistency.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is fsynced; survives power loss.
    Full,
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a write waits for another writer before failing (5 s).
    pub busy_timeout: Duration,
    /// See [`Durability`].
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
        }
    }
}

impl SqliteOptions {
    /// Sets [`busy_timeout`](Self::busy_timeout).
    #[must_use]
    pub fn with_busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Sets [`durability`](Self::durability).
    #[must_use]
    pub fn with_durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
}

/// An idempotency store in one SQLite database. Clones share the
/// connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating when missing, with its parent directories) the
    /// database at `path` with default options, and migrates its schema.
    ///
    /// # Errors
    /// See [`open_with`](Self::open_with).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the file is not a SQLite database or is
    /// damaged; [`Error::Backend`] when it cannot be opened or written (read
    /// only, locked past the busy timeout) or has a newer schema.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_dir(parent).map_err(|e| Error::Backend {
                backend: "sqlite".into(),
                message: format!("cannot create directory {}: {e}", parent.display()),
                source: Some(Box::new(e)),
            })?;
        }
        make_private_file(&path).map_err(|e| Error::Backend {
            backend: "sqlite".into(),
            message: format!("cannot create {}: {e}", path.display()),
            source: Some(Box::new(e)),
        })?;
        // Never through a link: a state directory may be one a repository
        // shipped, with `records.sqlite3` pointing at a file of the user's.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| sql_error(&path, "cannot open", &e))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(|e| sql_error(&path, "cannot configure", &e))?;
        schema::prepare(&conn, &path, options.durability, options.busy_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                options,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Runs `f` on the connection without blocking the async executor.
    /// Swaps from `expected`, and (with `claim_id`) only while the stored
    /// owner is that claim.
    async fn swap(
        &self,
        expected: Revision,
        claim_id: Option<String>,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.run(move |conn, path| {
            record.revision = expected.next();
            let c = columns(&record)?;
            // `valid` keeps a damaged row from being silently replaced.
            let updated = conn
                .prepare_cached(
                    "UPDATE records SET revision = revision + 1, operation = ?3, status = ?4,
                            last_activity = ?5, duration_ms = ?6, body = ?7
                     WHERE key = ?1 AND revision = ?2 AND valid
                       AND (?8 IS NULL OR json_extract(body, '$.owner.claim_id') = ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.key.as_str(),
                        to_i64(expected.0),
                        record.operation,
                        c.status,
                        c.last_activity,
                        c.duration_ms,
                        c.body,
                        claim_id
                    ])
                })
                .map_err(|e| sql_error(path, "cannot write", &e))?;
            if updated == 1 {
                Ok(record)
            } else {
                Err(explain_miss(conn, path, &record.key, expected))
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let call = move || {
            let conn = ff_traits::lock_unpoisoned(&inner.conn);
            f(&conn, &inner.path)
        };
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(call)
        } else {
            tokio::task::spawn_blocking(call)
                .await
                .map_err(|e| Error::Backend {
                    backend: "sqlite".into(),
                    message: format!("store task failed: {e}"),
                    source: None,
                })?
        }
    }
}

/// Makes `dir` (and missing parents) readable by its owner alone.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates the database file readable by its owner alone (0600, whatever
/// the umask), so SQLite, which gives its WAL and shared-memory files the
/// database's mode, keeps them private too; a file an earlier release made
/// open to others is made private. A link is left for the open to refuse.
fn make_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let m = std::fs::symlink_metadata(path)?;
                if m.is_file() && m.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Maps a SQLite error to what it means.
pub(crate) fn sql_error(path: &Path, context: &str, e: &rusqlite::Error) -> Error {
    let location = path.display().to_string();
    if let rusqlite::Error::SqliteFailure(err, _) = e {
        let hint = match err.code {
            ErrorCode::NotADatabase => {
                return Error::corrupt(
                    "SQLite database",
                    location,
                    "the file is not a SQLite database (wrong file, or its header is damaged)",
                );
            }
            ErrorCode::DatabaseCorrupt => {
                return Error::corrupt(
                    "SQLite database",
                    location,
                    format!("{e}; restore it from a backup or move it aside"),
                );
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                " (another process held the database longer than the busy timeout; retry)"
            }
            ErrorCode::ReadOnly => " (the database or its directory is read-only)",
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                " (check that the path exists and is writable)"
            }
            ErrorCode::DiskFull => " (the disk is full)",
            _ => "",
        };
        return Error::Backend {
            backend: "sqlite".into(),
            message: format!("{context} {location}: {e}{hint}"),
            source: None,
        };
    }
    Error::Backend {
        backend: "sqlite".into(),
        message: format!("{context} {location}: {e}"),
        source: None,
    }
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a stored row's body, as a load does.
    ///
    /// # Errors
    /// As a load of such a row.
    pub fn parse_body(
        key: &str,
        revision: i64,
        body: &str,
    ) -> ff_traits::Result<ff_traits::IdempotencyRecord> {
        super::parse_body(key, revision, body, std::path::Path::new("fuzz.sqlite3"))
    }
}

fn parse_body(key: &str, revision: i64, body: &str, path: &Path) -> Result<IdempotencyRecord> {
    IdempotencyRecord::decode(
        body.as_bytes(),
        key,
        Some(Revision(u64::try_from(revision).unwrap_or(0))),
        &format!("{}#{key}", path.display()),
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The columns stored beside the JSON body.
struct Columns {
    body: String,
    status: &'static str,
    last_activity: i64,
    duration_ms: Option<i64>,
}

fn columns(record: &IdempotencyRecord) -> Result<Columns> {
    Ok(Columns {
        body: serde_json::to_string(record)
            .map_err(|e| Error::invalid_input("idempotency record", e.to_string()))?,
        status: record.status.as_str(),
        last_activity: to_i64(record.last_activity().as_millis()),
        duration_ms: record
            .duration()
            .map(|d| to_i64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
    })
}

/// The record stored under `key`, parsed.
fn select_record(
    conn: &Connection,
    path: &Path,
    key: &RecordKey,
) -> Result<Option<IdempotencyRecord>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT revision, body FROM records WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| sql_error(path, "cannot read", &e))?;
    row.map(|(rev, body)| parse_body(key.as_str(), rev, &body, path))
        .transpose()
}

/// Why a conditional write changed no row.
fn explain_miss(conn: &Connection, path: &Path, key: &RecordKey, expected: Revision) -> Error {
    match select_record(conn, path, key) {
        Err(e) => e,
        Ok(None) => Error::NotFound {
            what: format!("record {}", key.short()),
        },
        Ok(Some(current)) => Error::PreconditionFailed {
            what: format!("record {}", key.short()),
            expected,
            actual: Some(current.revision),
        },
    }
}

#[async_trait]
impl IdempotencyStorage for SqliteStore {
    fn backend_name(&self) -> &str {
        "sqlite"
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        let key = key.clone();
        self.run(move |conn, path| select_record(conn, path, &key))
            .await
    }

    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        self.run(move |conn, path| {
            record.revision = Revision::FIRST;
            let c = columns(&record)?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO records (key, revision, operation, status, last_activity, duration_ms, body)
                     VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.key.as_str(),
                        record.operation,
                        c.status,
                        c.last_activity,
                        c.duration_ms,
                        c.body
                    ])
                })
                .map_err(|e| sql_error(path, "cannot write", &e))?;
            if inserted == 1 {
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
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.swap(expected, None, record).await
    }

    /// One conditional `UPDATE`: the owner is checked in the same
    /// statement as the revision.
    async fn compare_and_swap_owned(
        &self,
        expected: Revision,
        claim_id: &str,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.swap(expected, Some(claim_id.to_owned()), record).await
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let key = key.clone();
        self.run(move |conn, path| {
            let deleted = conn
                .prepare_cached("DELETE FROM records WHERE key = ?1 AND revision = ?2 AND valid")
                .and_then(|mut s| s.execute(params![key.as_str(), to_i64(expected.0)]))
                .map_err(|e| sql_error(path, "cannot delete", &e))?;
            if deleted == 1 {
                Ok(())
            } else {
                Err(explain_miss(conn, path, &key, expected))
            }
        })
        .await
    }

    /// In transactions of 10,000 removals each: one commit per
    /// batch instead of one per record, and no writer waits behind more
    /// than one batch.
    async fn remove_many(&self, items: &[(RecordKey, Revision)]) -> Result<u64> {
        let mut removed = 0;
        for batch in items.chunks(REMOVE_BATCH) {
            let batch: Vec<(String, i64)> = batch
                .iter()
                .map(|(k, r)| (k.as_str().to_owned(), to_i64(r.0)))
                .collect();
            removed += self
                .run(move |conn, path| {
                    let fail = |e: rusqlite::Error| sql_error(path, "cannot delete", &e);
                    // The key index's pages are rewritten in hash order: a
                    // page cache that holds them makes that one pass (as
                    // in `remove_finished_before`).
                    conn.execute_batch("PRAGMA cache_size = -65536")
                        .map_err(fail)?;
                    let removed = remove_batch(conn, &batch).map_err(fail);
                    conn.execute_batch("PRAGMA cache_size = -2000")
                        .map_err(fail)?;
                    removed
                })
                .await?;
        }
        Ok(removed)
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let filter = filter.clone();
        self.run(move |conn, path| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, revision, body FROM records
                     WHERE (?1 IS NULL OR operation = ?1)
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR last_activity < ?3)
                       AND (?4 IS NULL OR last_activity >= ?4)",
                )
                .map_err(|e| sql_error(path, "cannot scan", &e))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.operation,
                        filter.status.map(RecordStatus::as_str),
                        filter.active_before.map(|t| to_i64(t.as_millis())),
                        filter.active_since.map(|t| to_i64(t.as_millis()))
                    ],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .map_err(|e| sql_error(path, "cannot scan", &e))?;
            let mut scan = Scan::default();
            for row in rows {
                let (key, rev, body) = row.map_err(|e| sql_error(path, "cannot scan", &e))?;
                match parse_body(&key, rev, &body, path) {
                    Ok(r) => scan.records.push(r),
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "skipping corrupt record");
                        scan.corrupt.push(CorruptEntry::new(
                            format!("{}#{key}", path.display()),
                            e.to_string(),
                        ));
                    }
                }
            }
            Ok(scan)
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.run(|conn, path| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT status, operation, valid, count(*), total(duration_ms)
                     FROM records GROUP BY status, operation, valid",
                )
                .map_err(|e| sql_error(path, "cannot compute stats", &e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, f64>(4)?,
                    ))
                })
                .map_err(|e| sql_error(path, "cannot compute stats", &e))?;
            let mut stats = StoreStats::default();
            for row in rows {
                let (status, operation, ok, count, duration) =
                    row.map_err(|e| sql_error(path, "cannot compute stats", &e))?;
                let count = u64::try_from(count).unwrap_or(0);
                let status = RecordStatus::parse(&status);
                if !ok || status.is_none() {
                    stats.corrupt += count;
                    continue;
                }
                if let Some(status) = status {
                    *stats.by_status.entry(status).or_default() += count;
                }
                stats.total += count;
                *stats.by_operation.entry(operation).or_default() += count;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let ms = duration.max(0.0) as u64;
                stats.finished_duration_ms = stats.finished_duration_ms.saturating_add(ms);
            }
            Ok(stats)
        })
        .await
    }

    /// On Linux, the kernel's reports of writes to the database and its
    /// write-ahead log or journal, by any process (every commit writes
    /// one of them; reads write neither). Elsewhere, and for an in-memory
    /// database, `None`: watchers poll.
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        let path = &self.inner.path;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Ok(None);
        };
        if !cfg!(target_os = "linux") || !path.exists() {
            return Ok(None);
        }
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        let (db, wal, journal) = (
            name.to_owned(),
            format!("{name}-wal"),
            format!("{name}-journal"),
        );
        ff_fs_watch::watch_dir(dir, ff_fs_watch::Lapses::Never, move |file| {
            file == db || file == wal || file == journal
        })
    }

    async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
        self.run(move |conn, path| {
            let fail = |e: rusqlite::Error| sql_error(path, "cannot clean up", &e);
            // Deleting many rows rewrites pages of the key index in random
            // order; a page cache large enough to hold them all for the
            // duration turns that into one pass (64 MB, then back).
            conn.execute_batch("PRAGMA cache_size = -65536; BEGIN IMMEDIATE")
                .map_err(fail)?;
            let removed = remove_finished(conn, to_i64(cutoff.as_millis())).map_err(fail);
            let end = if removed.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let ended = conn.execute_batch(end).map_err(fail);
            conn.execute_batch("PRAGMA cache_size = -2000")
                .map_err(fail)?;
            let removed = removed?;
            ended?;
            Ok(removed)
        })
        .await
    }
}

/// One transaction of [`SqliteStore::remove_many`]: each row removed only
/// at the revision given (and readable, as `remove`); how many were.
fn remove_batch(conn: &Connection, batch: &[(String, i64)]) -> rusqlite::Result<u64> {
    // Immediate: the write lock from the start, so the batch never fails
    // upgrading a read (busy) midway.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let mut n = 0;
    {
        let mut stmt =
            tx.prepare_cached("DELETE FROM records WHERE key = ?1 AND revision = ?2 AND valid")?;
        for (key, revision) in batch {
            n += stmt.execute(params![key, revision])?;
        }
    }
    tx.commit()?;
    Ok(n as u64)
}

/// Removals per transaction in [`SqliteStore::remove_many`]. Each commit
/// writes every page its removals touched, and the key index's pages are
/// touched in hash order, so small batches write the same pages again and
/// again: at 100,000 records, one transaction per record took 7.7 s, per
/// 1,000 records 2.2 s, per 10,000 1.2 s (bare `DELETE`: 0.93 s). A
/// writer waits behind one batch, about 0.1 s.
const REMOVE_BATCH: usize = 10_000;

/// The condition of a record cleanup removes: finished, idle since before
/// `?1`, and readable (damaged rows stay for people to look at).
const DOOMED: &str = "status != 'pending' AND last_activity < ?1 AND valid";

/// Removes finished records idle since before `cutoff_ms`, inside the
/// caller's transaction. When most rows go, the few that stay are set
/// aside, the table is emptied whole (SQLite frees an emptied table's pages
/// without rewriting each one, where a row-by-row delete rewrites every
/// page of the table and its indexes), and they are put back with their
/// ids: 100,000 rows in tens of milliseconds instead of most of a second.
fn remove_finished(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
    let (doomed, total): (i64, i64) = conn.query_row(
        &format!("SELECT count(*) FILTER (WHERE {DOOMED}), count(*) FROM records"),
        [cutoff_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if doomed == 0 {
        return Ok(0);
    }
    if doomed * 2 < total {
        let n = conn.execute(&format!("DELETE FROM records WHERE {DOOMED}"), [cutoff_ms])?;
        return Ok(n as u64);
    }
    conn.execute(
        &format!("CREATE TEMP TABLE kept AS SELECT * FROM records WHERE NOT ({DOOMED})"),
        [cutoff_ms],
    )?;
    // No WHERE clause: SQLite's truncate optimisation.
    conn.execute_batch(
        "DELETE FROM records;
         INSERT INTO records (id, key, revision, operation, status, last_activity, duration_ms, body)
           SELECT id, key, revision, operation, status, last_activity, duration_ms, body FROM kept;
         DROP TABLE kept;",
    )?;
    Ok(u64::try_from(doomed).unwrap_or(0))
}

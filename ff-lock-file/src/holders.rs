//! The table of a kernel lock's shared holders (readers, permits of a
//! semaphore, a hierarchy's intention locks): `<stem>.holders`, one JSON
//! document rewritten in place (as the lock file is, [`crate::meta`])
//! under a kernel lock on the table file itself, held for microseconds.
//!
//! Why a table and not a file per holder: creating a file costs tens of
//! microseconds on a busy disk (and far more after mass deletion), and a
//! hierarchy takes one shared grant per ancestor; rewriting one file that
//! already exists costs a positioned read and write.
//!
//! Who may write it: a shared holder being admitted or leaving, holding the
//! lock file's shared kernel lock and the table's lock; an exclusive grant
//! (holding the lock file exclusively, so no shared holder is live)
//! clearing the records dead holders left; a forced release that found the
//! lock free. Records of holders that died stay until someone judges them
//! (their pids are checked only when they are in the way, or when the
//! table grows past [`PRUNE_ABOVE`]), so admission reads no process table
//! in the common case.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use ff_traits::{Error, LockInfo, Result};
use serde::{Deserialize, Serialize};

use crate::io_error;
use crate::meta::{self, Document, Found};

/// The format tag of holder tables written by this crate.
const FORMAT: &str = "ff-holders/1";

/// A table with more records than this has every record's holder judged
/// at the next admission, so records of dead holders cannot pile up.
pub(crate) const PRUNE_ABOVE: usize = 32;

/// How long a table lock is waited for before giving up: it is held for
/// microseconds, so only a stopped process keeps it longer.
const TABLE_LOCK_BUDGET: Duration = Duration::from_secs(10);

/// What a holder table holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Table {
    pub(crate) format: String,
    /// The last fencing token a shared grant took (exclusive grants keep
    /// theirs in the lock file; a grant takes one more than both).
    pub(crate) last_token: u64,
    pub(crate) holders: Vec<LockInfo>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            format: FORMAT.into(),
            last_token: 0,
            holders: Vec::new(),
        }
    }
}

impl Document for Table {
    const FORMAT: &'static str = FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

/// An open holder table.
#[derive(Debug)]
pub(crate) struct TableFile {
    file: File,
}

impl TableFile {
    /// Opens the table, creating it when missing.
    ///
    /// # Errors
    /// The file cannot be opened (or is a symbolic link).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        crate::platform::open_lock_file(path, false)
            .map(|file| Self { file })
            .map_err(|e| crate::kernel::open_error(&e, path))
    }

    /// Opens the table if it exists.
    ///
    /// # Errors
    /// The file exists but cannot be opened.
    pub(crate) fn open_existing(path: &Path) -> Result<Option<Self>> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            _ => Self::open(path).map(Some),
        }
    }

    /// Takes the table's lock: at once when free (the common case), else
    /// by polling while other processes' short turns end.
    ///
    /// # Errors
    /// The lock was not free within [`TABLE_LOCK_BUDGET`] (a process
    /// stopped while holding it), or locking failed.
    pub(crate) async fn lock(&self, name: &str) -> Result<TableLock<'_>> {
        let deadline = Instant::now() + TABLE_LOCK_BUDGET;
        let mut pause = Duration::from_micros(50);
        loop {
            if self.try_lock()? {
                return Ok(TableLock { table: self });
            }
            if Instant::now() >= deadline {
                return Err(table_busy(name));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// As [`lock`](Self::lock), for code that cannot await (a guard
    /// released on drop): sleeps the thread between tries.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub(crate) fn lock_blocking(&self, name: &str) -> Result<TableLock<'_>> {
        let deadline = Instant::now() + TABLE_LOCK_BUDGET;
        let mut pause = Duration::from_micros(50);
        loop {
            if self.try_lock()? {
                return Ok(TableLock { table: self });
            }
            if Instant::now() >= deadline {
                return Err(table_busy(name));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn try_lock(&self) -> Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(io_error("cannot lock the shared holders' table", &e))
            }
        }
    }

    /// Reads the table without its lock (listing, status): a read that
    /// catches a write half-way is retried.
    pub(crate) fn peek(&self) -> Vec<LockInfo> {
        match meta::read::<Table>(&self.file) {
            Ok((Found::Content(t), _)) => t.holders,
            _ => Vec::new(),
        }
    }
}

fn table_busy(name: &str) -> Error {
    Error::lock_timeout(
        format!("{name} (its shared holders' table)"),
        TABLE_LOCK_BUDGET,
        None,
    )
}

/// The table's lock, held; unlocked when dropped.
#[derive(Debug)]
pub(crate) struct TableLock<'a> {
    table: &'a TableFile,
}

impl TableLock<'_> {
    /// Reads the table and its length on disk (the old length a rewrite
    /// pads to). An empty or new file is an empty table; so is one this
    /// crate did not write (damaged, foreign), with a warning: as with a
    /// lock file, unreadable content never blocks anyone (exclusion comes
    /// from the kernel locks; what is lost is the view of which shared
    /// modes are held). The flag says it was unreadable, so must be
    /// rewritten even when nothing else changes.
    pub(crate) fn read_or_reset(&self, name: &str) -> (Table, u64, bool) {
        match meta::read::<Table>(&self.table.file) {
            Ok((Found::Content(t), len)) => (*t, len, false),
            Ok((Found::Empty, len)) => (Table::default(), len, false),
            Ok((Found::Unreadable(why), len)) => {
                tracing::warn!(lock = name, reason = %why, "shared holders' table unreadable; taking it as empty and rewriting it");
                (Table::default(), len, true)
            }
            Err(e) => {
                tracing::warn!(lock = name, error = %e, "shared holders' table unreadable; rewriting it empty");
                (Table::default(), 0, true)
            }
        }
    }

    /// Rewrites the table in place; returns its new length.
    ///
    /// # Errors
    /// The write failed.
    pub(crate) fn write(&self, table: &Table, old_len: u64) -> Result<u64> {
        meta::write(&self.table.file, table, old_len)
            .map_err(|e| io_error("cannot write the shared holders' table", &e))
    }
}

impl Drop for TableLock<'_> {
    fn drop(&mut self) {
        let _ = self.table.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_table_round_trips_and_garbage_counts_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.holders");
        let table = TableFile::open(&path).expect("open");
        {
            let locked = table.lock("x").await.expect("lock");
            let (mut t, len, unreadable) = locked.read_or_reset("x");
            assert_eq!(t, Table::default(), "a new file is an empty table");
            assert!(!unreadable);
            t.last_token = 5;
            locked.write(&t, len).expect("write");
        }
        {
            let locked = table.lock_blocking("x").expect("lock");
            assert_eq!(locked.read_or_reset("x").0.last_token, 5);
        }
        std::fs::write(&path, b"{\"format\":\"other\"}").expect("write");
        let locked = table.lock("x").await.expect("lock");
        let (t, _, unreadable) = locked.read_or_reset("x");
        assert_eq!(t, Table::default());
        assert!(unreadable, "flagged for rewriting");
    }
}

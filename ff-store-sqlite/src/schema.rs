//! Connection set-up and schema migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Each migration runs
//! in one immediate transaction, so concurrent openers never apply one
//! twice, and a crash mid-migration leaves the previous version intact.

use std::path::Path;
use std::time::{Duration, Instant};

use ff_traits::{Error, Result};
use rusqlite::{Connection, ErrorCode};

use crate::{Durability, sql_error};

/// Migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: records with the columns that queries filter and aggregate on, and
    //    the full record as JSON. `valid` is computed by SQLite whenever the
    //    body is written (by us or by anyone editing the file), so stats can
    //    count damaged rows from an index without reading every body.
    //    Rows live in rowid order, so new records append to the table's last
    //    page instead of splitting random pages (keys are hashes); the key
    //    has a unique index of its own.
    //    Indexes: the key (unique) and a covering index for stats whose
    //    leading column also serves status filters. Each index is one more
    //    page written per commit, so age (used only by cleanup, which scans)
    //    has none.
    "CREATE TABLE records (
        id            INTEGER PRIMARY KEY,
        key           TEXT NOT NULL UNIQUE,
        revision      INTEGER NOT NULL,
        operation     TEXT NOT NULL,
        status        TEXT NOT NULL,
        last_activity INTEGER NOT NULL,
        duration_ms   INTEGER,
        body          TEXT NOT NULL,
        valid         INTEGER GENERATED ALWAYS AS (json_valid(body)) STORED
     );
     CREATE INDEX records_stats ON records (status, operation, valid, duration_ms);",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Runs `f` again while SQLite answers "busy" without having waited
/// (it skips the busy handler where waiting could deadlock, as when a
/// connection opens while another checkpoints or recovers the WAL, which
/// happens whenever processes open and close the store at once), until
/// `deadline`.
fn retry_busy<T>(
    deadline: Instant,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, m))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && Instant::now() < deadline =>
            {
                tracing::debug!(error = ?m, "SQLite busy while opening; retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

pub(crate) fn prepare(
    conn: &Connection,
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + busy_timeout;
    // The first statement that reads the file tells a non-database apart.
    let mode: String = retry_busy(deadline, || {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
    })
    .map_err(|e| sql_error(path, "cannot open", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode; concurrent readers will wait for writers");
    }
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    // Memory-mapped reads keep lookups in a big database as cheap as in a
    // small one. Every commit rewrites the same few hot pages (the table's
    // last leaf, index leaves); checkpointing every 16000 pages (a WAL of up
    // to 64 MB) instead of SQLite's 1000 copies each hot page back once per
    // checkpoint instead of sixteen times. Measured: claim + complete median
    // 231 µs at 4000 pages, 106 µs at 16000; the price is a longer pause at
    // each (rarer) checkpoint and a WAL file of up to 64 MB.
    //
    // The log and its index stay when the last connection closes, emptied
    // (`journal_size_limit` truncates the log then): a one-shot command
    // (`ff list`, `ff once`) otherwise created both files, wrote the index
    // out page by page and deleted both again, every time. What is in them
    // after a close is checkpointed into the database first, as before.
    retry_busy(deadline, || {
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA mmap_size = 268435456; \
             PRAGMA wal_autocheckpoint = 16000; PRAGMA journal_size_limit = 67108864;"
        ))
    })
    .map_err(|e| sql_error(path, "cannot configure", &e))?;
    conn.file_control(
        Some(rusqlite::MAIN_DB),
        rusqlite::FileControl::PersistWal(&mut 1),
    )
    .map_err(|e| sql_error(path, "cannot configure", &e))?;
    migrate(conn, path, deadline)
}

fn user_version(conn: &Connection, path: &Path, deadline: Instant) -> Result<i64> {
    retry_busy(deadline, || {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    })
    .map_err(|e| sql_error(path, "cannot read the schema version of", &e))
}

fn migrate(conn: &Connection, path: &Path, deadline: Instant) -> Result<()> {
    let found = user_version(conn, path, deadline)?;
    if found > SCHEMA_VERSION {
        return Err(Error::Backend {
            backend: "sqlite".into(),
            message: format!(
                "{} has schema version {found}, newer than this build understands ({SCHEMA_VERSION}); \
                 upgrade ForgeFlow",
                path.display()
            ),
            source: None,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // Migrations need a writable handle; `Connection::transaction_with_behavior`
    // wants `&mut`, so run the immediate transaction by hand.
    retry_busy(deadline, || conn.execute_batch("BEGIN IMMEDIATE"))
        .map_err(|e| sql_error(path, "cannot migrate", &e))?;
    let result = (|| {
        // Another process may have migrated while we waited for the lock.
        let mut version = user_version(conn, path, deadline)?;
        while version < SCHEMA_VERSION {
            let step = MIGRATIONS[usize::try_from(version).unwrap_or(0)];
            conn.execute_batch(step)
                .map_err(|e| sql_error(path, "cannot migrate", &e))?;
            version += 1;
            conn.execute_batch(&format!("PRAGMA user_version = {version}"))
                .map_err(|e| sql_error(path, "cannot migrate", &e))?;
        }
        Ok(())
    })();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end)
        .map_err(|e| sql_error(path, "cannot migrate", &e))?;
    result
}

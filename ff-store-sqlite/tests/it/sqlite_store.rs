//! SqliteStore: the conformance suite, races and crashes across real
//! processes, damaged and locked databases.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_store_sqlite::{SqliteOptions, SqliteStore};
use ff_traits::{Error, IdempotencyStorage, ScanFilter};

fn fresh_db() -> PathBuf {
    ff_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "ff-store-sqlite").join("ff.sqlite3")
}

fn store() -> SqliteStore {
    SqliteStore::open(fresh_db()).expect("open")
}

mod conformance {
    use super::*;

    ff_conformance::store_conformance_tests!(async {
        Arc::new(store()) as Arc<dyn IdempotencyStorage>
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn corrupt_entries_reported() {
        let s = store();
        let path = s.path().to_path_buf();
        ff_conformance::store::corrupt_entries_reported(
            Arc::new(s) as Arc<dyn IdempotencyStorage>,
            move |key| async move {
                let c = rusqlite::Connection::open(&path).expect("open");
                let n = c
                    .execute(
                        "UPDATE records SET body = 'garbage{' WHERE key = ?1",
                        [key.as_str()],
                    )
                    .expect("damage");
                assert_eq!(n, 1);
            },
        )
        .await;
    }
}

/// Entry point of child processes (returns at once in a normal run).
#[test]
fn child_entry() {
    ff_testkit::run_store_child(|db| SqliteStore::open(db).expect("open"));
}

#[test]
fn eight_processes_race_to_claim_one_key() {
    let db = fresh_db();
    SqliteStore::open(&db).expect("create the schema first");
    ff_testkit::assert_one_winner_of_eight(
        &ff_testkit::test_entry!("child_entry"),
        db.to_str().expect("utf8"),
    );
}

#[test]
fn eight_processes_opening_a_fresh_store_at_once_all_succeed() {
    for _ in 0..3 {
        let db = fresh_db();
        ff_testkit::assert_concurrent_opens_succeed(
            &ff_testkit::test_entry!("child_entry"),
            8,
            db.to_str().expect("utf8"),
        );
    }
}

#[test]
fn sigkill_during_writes_never_tears_a_record() {
    let db = fresh_db();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    ff_testkit::crash_during_writes(
        &ff_testkit::test_entry!("child_entry"),
        12,
        db.to_str().expect("utf8"),
        |tag| {
            let s = SqliteStore::open(&db).expect("open after a crash");
            rt.block_on(ff_testkit::written_count(&s, tag))
        },
    );
    let s = SqliteStore::open(&db).expect("open");
    let scan = rt.block_on(s.scan(&ScanFilter::default())).expect("scan");
    assert!(scan.corrupt.is_empty(), "{:?}", scan.corrupt);
    assert_eq!(scan.records.len(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_reported_corrupt() {
    let db = fresh_db();
    std::fs::write(
        &db,
        b"this is a text file, not SQLite, and it is long enough to have a header",
    )
    .expect("write");
    let err = SqliteStore::open(&db).expect_err("opened a text file");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
}

#[test]
fn a_damaged_header_is_reported_corrupt() {
    let db = fresh_db();
    drop(SqliteStore::open(&db).expect("create"));
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[..16].copy_from_slice(b"garbage-header!!");
    std::fs::write(&db, bytes).expect("write");
    let err = SqliteStore::open(&db).expect_err("opened a damaged database");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_past_the_busy_timeout_is_a_clear_error() {
    let db = fresh_db();
    let s = SqliteStore::open_with(
        &db,
        SqliteOptions::default().with_busy_timeout(Duration::from_millis(200)),
    )
    .expect("open");
    let blocker = rusqlite::Connection::open(&db).expect("open");
    blocker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let rec = ff_conformance::store::sample_record("locked", 1, ff_traits::Timestamp::now());
    let started = Instant::now();
    let err = s
        .create(rec.clone())
        .await
        .expect_err("wrote through an exclusive lock");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "did not wait for the busy timeout"
    );
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("busy timeout"), "{err}");
    blocker.execute_batch("ROLLBACK").expect("unlock");
    s.create(rec).await.expect("works once the lock is gone");
}

#[test]
fn a_newer_schema_is_refused() {
    let db = fresh_db();
    drop(SqliteStore::open(&db).expect("create"));
    rusqlite::Connection::open(&db)
        .expect("open")
        .execute_batch("PRAGMA user_version = 99")
        .expect("bump");
    let err = SqliteStore::open(&db).expect_err("opened a future schema");
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[test]
fn unusable_location_is_a_clear_error() {
    let dir = ff_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "ff-store-sqlite");
    std::fs::write(dir.join("file"), b"x").expect("write");
    let err = SqliteStore::open(dir.join("file").join("ff.sqlite3")).expect_err("under a file");
    assert!(err.to_string().contains("cannot create directory"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_a_clear_error() {
    let db = fresh_db();
    let s = SqliteStore::open(&db).expect("create");
    let rec = ff_conformance::store::sample_record("ro", 1, ff_traits::Timestamp::now());
    s.create(rec.clone()).await.expect("create");
    drop(s);
    let dir = db.parent().expect("dir").to_path_buf();
    let Some(_frozen) =
        ff_testkit::Immutable::set(&db).and_then(|f| Some((f, ff_testkit::Immutable::set(&dir)?)))
    else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "read-only database (chattr +i needs root here)",
        );
        return;
    };
    match SqliteStore::open(&db) {
        Err(e) => assert!(
            e.to_string().contains("read-only") || e.to_string().contains("writable"),
            "{e}"
        ),
        Ok(s) => {
            let mut next = s
                .load(&rec.key)
                .await
                .expect("reads still work")
                .expect("record");
            next.status = ff_traits::RecordStatus::Completed;
            let err = s
                .compare_and_swap(next.revision, next)
                .await
                .expect_err("wrote to a read-only file");
            assert!(err.to_string().contains("read-only"), "{err}");
        }
    }
}

/// Cleanup removes exactly the finished, idle, readable records, whichever
/// way it goes: row by row when few go (3 of 20), or by emptying the table
/// and putting the rest back when most go (17 of 20). What stays is
/// untouched: same revisions and bodies, a damaged row still reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_keeps_exactly_what_must_stay_either_way() {
    use ff_conformance::store::sample_record;
    use ff_traits::{RecordStatus, Timestamp};
    for doomed in [3u32, 17] {
        let path = fresh_db();
        let s = SqliteStore::open(&path).expect("open");
        let long_ago = Timestamp::now().saturating_sub(Duration::from_secs(7_200));
        let mut kept = Vec::new();
        for n in 0..20 {
            let r = s
                .create(sample_record("cleanup", n, long_ago))
                .await
                .expect("create");
            if n < doomed {
                let mut done = r.clone();
                done.status = RecordStatus::Completed;
                done.ended_at = Some(long_ago);
                s.compare_and_swap(r.revision, done).await.expect("finish");
            } else {
                kept.push(r);
            }
        }
        // The last kept record is damaged: cleanup never removes those.
        let damaged = kept.pop().expect("a kept record");
        rusqlite::Connection::open(&path)
            .expect("open")
            .execute(
                "UPDATE records SET body = 'garbage{', status = 'completed' WHERE key = ?1",
                [damaged.key.as_str()],
            )
            .expect("damage");
        let removed = s
            .remove_finished_before(Timestamp::now())
            .await
            .expect("cleanup");
        assert_eq!(removed, u64::from(doomed), "{doomed} of 20");
        for r in &kept {
            assert_eq!(
                s.load(&r.key).await.expect("load").as_ref(),
                Some(r),
                "{doomed} of 20: a kept record changed"
            );
        }
        let stats = s.stats().await.expect("stats");
        assert_eq!(stats.total, kept.len() as u64, "{doomed} of 20");
        assert_eq!(stats.corrupt, 1, "{doomed} of 20: the damaged row");
    }
}

/// A batch removal longer than one transaction's share removes every
/// record asked for, across the transactions, and a damaged row (which
/// `remove` refuses) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_many_spans_transactions() {
    use ff_conformance::store::sample_record;
    use ff_traits::Timestamp;
    let path = fresh_db();
    let s = SqliteStore::open(&path).expect("open");
    let mut batch = Vec::new();
    for n in 0..2_500 {
        let r = s
            .create(sample_record("remove-many", n, Timestamp::now()))
            .await
            .expect("create");
        batch.push((r.key, r.revision));
    }
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(
            "UPDATE records SET body = 'garbage{' WHERE key = ?1",
            [batch[1_700].0.as_str()],
        )
        .expect("damage");
    let removed = s.remove_many(&batch).await.expect("remove_many");
    assert_eq!(removed, 2_499, "every record but the damaged one");
    let stats = s.stats().await.expect("stats");
    assert_eq!((stats.total, stats.corrupt), (0, 1), "{stats:?}");
}

/// A store closed leaves its log and its index in place, the log emptied,
/// and everything written in the database itself: the next command reuses
/// both files instead of creating and deleting them each time, and a copy
/// of the database file alone has every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_an_empty_log_and_its_records_in_the_database() {
    use ff_conformance::store::sample_record;
    use ff_traits::Timestamp;
    let path = fresh_db();
    let wal = path.with_file_name("ff.sqlite3-wal");
    let shm = path.with_file_name("ff.sqlite3-shm");
    let s = SqliteStore::open(&path).expect("open");
    let r = s
        .create(sample_record("persist-wal", 1, Timestamp::now()))
        .await
        .expect("create");
    assert!(std::fs::metadata(&wal).expect("the log").len() > 0);
    drop(s);
    assert_eq!(std::fs::metadata(&wal).expect("the log stays").len(), 0);
    assert!(shm.exists(), "the log's index stays");
    let copy = path.with_file_name("copy.sqlite3");
    std::fs::copy(&path, &copy).expect("copy the database file alone");
    let reopened = SqliteStore::open(&copy).expect("open the copy");
    assert!(reopened.load(&r.key).await.expect("load").is_some());
    // Opened again where the files are: all still there.
    let again = SqliteStore::open(&path).expect("open again");
    assert!(again.load(&r.key).await.expect("load").is_some());
}

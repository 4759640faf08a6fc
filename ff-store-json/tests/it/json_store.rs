//! JsonStore: the conformance suite, races and crashes across real
//! processes, and damaged files.

use std::path::PathBuf;
use std::sync::Arc;

use ff_store_json::JsonStore;
use ff_traits::{Error, IdempotencyStorage, RecordStatus, ScanFilter};

fn fresh_dir() -> PathBuf {
    ff_testkit::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "ff-store-json")
}

fn store() -> JsonStore {
    JsonStore::open(fresh_dir()).expect("open")
}

mod conformance {
    use super::*;

    ff_conformance::store_conformance_tests!(async {
        Arc::new(store()) as Arc<dyn IdempotencyStorage>
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn corrupt_entries_reported() {
        let s = store();
        let damaged = s.clone();
        ff_conformance::store::corrupt_entries_reported(
            Arc::new(s) as Arc<dyn IdempotencyStorage>,
            move |key| async move {
                std::fs::write(damaged.record_path(&key), b"{\"key\": \"trunc").expect("damage");
            },
        )
        .await;
    }
}

/// Entry point of child processes (returns at once in a normal run).
#[test]
fn child_entry() {
    ff_testkit::run_store_child(|dir| JsonStore::open(dir).expect("open"));
}

#[test]
fn eight_processes_race_to_claim_one_key() {
    ff_testkit::assert_one_winner_of_eight(
        &ff_testkit::test_entry!("child_entry"),
        fresh_dir().to_str().expect("utf8"),
    );
}

#[test]
fn sigkill_during_writes_never_tears_a_record() {
    let dir = fresh_dir();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    ff_testkit::crash_during_writes(
        &ff_testkit::test_entry!("child_entry"),
        12,
        dir.to_str().expect("utf8"),
        |tag| {
            let s = JsonStore::open(&dir).expect("open");
            rt.block_on(ff_testkit::written_count(&s, tag))
        },
    );
    // Temporary files left by the kills are never mistaken for records.
    let s = JsonStore::open(&dir).expect("open");
    let scan = rt.block_on(s.scan(&ScanFilter::default())).expect("scan");
    assert!(scan.corrupt.is_empty(), "{:?}", scan.corrupt);
    assert_eq!(scan.records.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_reported_and_can_be_moved_aside() {
    let s = store();
    let rec = ff_conformance::store::sample_record("damaged", 1, ff_traits::Timestamp::now());
    let key = rec.key.clone();
    s.create(rec.clone()).await.expect("create");
    let cases: [(&str, &[u8]); 4] = [
        ("truncated", b"{\"key\":\"ab"),
        ("garbage", b"\x00\x01\x02 not json"),
        ("wrong schema", b"{\"hello\": \"world\"}"),
        ("empty", b""),
    ];
    for (what, bytes) in cases {
        std::fs::write(s.record_path(&key), bytes).expect("damage");
        match s.load(&key).await {
            Err(Error::Corrupt { location, .. }) => assert!(location.ends_with(".json"), "{what}"),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
    // A record stored under another record's name is corrupt too.
    let other = ff_conformance::store::sample_record("other", 2, ff_traits::Timestamp::now());
    std::fs::write(
        s.record_path(&key),
        serde_json::to_vec(&other).expect("json"),
    )
    .expect("write");
    assert!(matches!(s.load(&key).await, Err(Error::Corrupt { .. })));

    let stats = s.stats().await.expect("stats");
    assert_eq!((stats.total, stats.corrupt), (0, 1));
    let moved = s.quarantine(&key).await.expect("quarantine");
    assert!(moved.starts_with(s.dir().join("corrupt")));
    assert!(
        s.load(&key).await.expect("load").is_none(),
        "key free again"
    );
    s.create(rec).await.expect("create again");
    let r = s.load(&key).await.expect("load").expect("record");
    assert_eq!(r.status, RecordStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_directory_is_a_clear_error() {
    let dir = fresh_dir();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let err = JsonStore::open(file.join("store")).expect_err("store under a file");
    assert!(
        err.to_string().contains("cannot create store directory"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_is_a_clear_error() {
    let s = store();
    let rec = ff_conformance::store::sample_record("ro", 1, ff_traits::Timestamp::now());
    let Some(_frozen) = ff_testkit::Immutable::set(s.dir()) else {
        ff_testkit::skip(
            "FF_REQUIRE_ROOT",
            "read-only store (chattr +i needs root here)",
        );
        return;
    };
    let err = s
        .create(rec)
        .await
        .expect_err("wrote into a read-only directory");
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("writable"), "{err}");
}

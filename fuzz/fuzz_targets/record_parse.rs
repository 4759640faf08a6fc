//! Stored records as the JSON and SQLite stores read them back: any bytes
//! give a record or a `Corrupt` error (never a panic), and a record that
//! parses survives being written and read again unchanged.

#![no_main]

use ff_traits::{ErrorKind, IdempotencyRecord, RecordKey};
use libfuzzer_sys::fuzz_target;

/// The key the seed corpus's records are stored under.
const KEY: &str = "5ce2d6ebd0d2fb63982e185efb97e31110441e4e63a88de4d1a1e23598b32c7b";

fuzz_target!(|data: &[u8]| {
    let key = RecordKey::parse(KEY).expect("key");
    match ff_store_json::fuzzing::parse_record(data, &key) {
        Ok(record) => round_trip(&record),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
    }
    if let Ok(body) = std::str::from_utf8(data) {
        match ff_store_sqlite::fuzzing::parse_body(KEY, 3, body) {
            Ok(record) => round_trip(&record),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
        }
    }
});

fn round_trip(record: &IdempotencyRecord) {
    let bytes = serde_json::to_vec(record).expect("a parsed record serialises");
    let back: IdempotencyRecord = serde_json::from_slice(&bytes).expect("and parses again");
    assert_eq!(&back, record, "a record changed on a write and read");
}

//! Lock metadata as the file lock (kernel and lease files) and the Redis
//! lock (key values) read it: any bytes give a holder or nothing (never a
//! panic), and a holder that parses survives a write and read unchanged.

#![no_main]

use ff_traits::LockInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(info) = ff_lock_file::fuzzing::parse_lock_file(data) {
        round_trip(&info);
    }
    if let Some(info) = ff_lock_file::fuzzing::parse_lease_file(data) {
        round_trip(&info);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(info) = ff_lock_redis::fuzzing::parse_value(text)
    {
        round_trip(&info);
    }
});

fn round_trip(info: &LockInfo) {
    let bytes = serde_json::to_vec(info).expect("a parsed holder serialises");
    let back: LockInfo = serde_json::from_slice(&bytes).expect("and parses again");
    assert_eq!(&back, info, "a holder changed on a write and read");
}

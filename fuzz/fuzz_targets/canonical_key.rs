//! Canonical idempotency keys: any JSON value either gives a key or is
//! refused as invalid input (never a panic), and the canonical form is a
//! fixed point: it parses back to a value with the same canonical form, so
//! a key computed from what another process stored matches.

#![no_main]

use ff_traits::{ErrorKind, IdempotencyKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let key = IdempotencyKey::new("fuzz", value.clone(), value);
    match key.canonical_json() {
        Ok(text) => {
            let back: Value = serde_json::from_str(&text).expect("canonical form is JSON");
            let again =
                IdempotencyKey::new("fuzz", back["parameters"].clone(), back["context"].clone());
            assert_eq!(
                again
                    .canonical_json()
                    .expect("canonical form accepted again"),
                text,
                "canonical form is not a fixed point"
            );
            assert_eq!(
                again.record_key().expect("key"),
                key.record_key().expect("key")
            );
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
    }
});

//! Golden tests of canonical idempotency keys (RFC 8785 + SHA-256).
//!
//! Expected digests were computed outside Rust (Python's hashlib over the
//! hand-written canonical text), so these tests check the scheme, not the
//! implementation against itself.

use std::collections::HashSet;

use ff_traits::{Error, IdempotencyKey, canonical_json};
use serde_json::{Value, json};

fn canon(v: &Value) -> String {
    canonical_json(v).expect("canonical")
}

fn key_of(op: &str, params: Value, ctx: Value) -> String {
    IdempotencyKey::new(op, params, ctx)
        .record_key()
        .expect("key")
        .to_string()
}

#[test]
fn seed_example_key_is_stable() {
    let key = IdempotencyKey::new(
        "createWorktree",
        json!({"issueId": "123", "path": "/project"}),
        json!({"basePath": ".worktrees"}),
    );
    assert_eq!(
        key.canonical_json().expect("canonical"),
        r#"{"context":{"basePath":".worktrees"},"operation":"createWorktree","parameters":{"issueId":"123","path":"/project"}}"#
    );
    assert_eq!(
        key.record_key().expect("key").as_str(),
        "600e5b3da1d1b5beb7f967f03e62c50cd71b636f2c42f51a4bec166b5100124e"
    );
}

#[test]
fn null_and_absent_differ() {
    assert_eq!(
        key_of("op", json!({}), Value::Null),
        "481b9c5afb755a5964a5814691c0e6486c589109ed02f71ca56243b134aa5339"
    );
    assert_eq!(
        key_of("op", json!({"a": null}), json!({})),
        "6ad5096743125493bd8225d3ef6d4f2ee34d796bb1f86020889122e940446577"
    );
    assert_ne!(
        key_of("op", json!({"a": null}), json!({})),
        key_of("op", json!({}), json!({}))
    );
    assert_ne!(
        key_of("op", json!({}), Value::Null),
        key_of("op", json!({}), json!({}))
    );
}

#[test]
fn member_order_does_not_matter_at_any_depth() {
    let a: Value =
        serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":1,"p":2}],"x":"s"}}"#).expect("json");
    let b: Value =
        serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"p":2,"q":1}]},"b":1}"#).expect("json");
    assert_eq!(canon(&a), r#"{"a":{"x":"s","y":[1,{"p":2,"q":1}]},"b":1}"#);
    assert_eq!(canon(&a), canon(&b));
}

#[test]
fn rfc8785_sample_canonicalizes_exactly() {
    // RFC 8785, section 3.2.2's example input.
    let input = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;
    let v: Value = serde_json::from_str(input).expect("json");
    assert_eq!(
        canon(&v),
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
}

#[test]
fn members_sort_by_utf16_code_units() {
    // RFC 8785, section 3.2.3: the emoji (a surrogate pair, D83D DE00) sorts
    // before U+FB33 although its code point is larger.
    let input = r#"{"\u20ac":"Euro","\r":"CR","\ufb33":"Dalet","1":"One","\ud83d\ude00":"Emoji","\u0080":"Control","\u00f6":"o"}"#;
    let v: Value = serde_json::from_str(input).expect("json");
    assert_eq!(
        canon(&v),
        "{\"\\r\":\"CR\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"o\",\"€\":\"Euro\",\"😀\":\"Emoji\",\"דּ\":\"Dalet\"}"
    );
}

#[test]
fn numbers_use_ecmascript_form() {
    let cases = [
        ("5", "5"),
        ("5.0", "5"),
        ("-0.0", "0"),
        ("1e21", "1e+21"),
        ("1e300", "1e+300"),
        ("0.1", "0.1"),
        ("1.5e-7", "1.5e-7"),
        ("-9007199254740991", "-9007199254740991"),
    ];
    for (input, expected) in cases {
        let v: Value = serde_json::from_str(input).expect("json");
        assert_eq!(canon(&v), expected, "number {input}");
    }
    // Same number, different spelling: same key (RFC 8785 semantics).
    assert_eq!(
        key_of("op", json!({"n": 5}), json!({})),
        key_of("op", json!({"n": 5.0}), json!({}))
    );
}

#[test]
fn integers_beyond_double_precision_are_refused() {
    for big in [9_007_199_254_740_992_i64, -9_007_199_254_740_992] {
        let err = IdempotencyKey::new("op", json!({ "id": big }), json!({}))
            .record_key()
            .expect_err("unsafe integer accepted");
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        assert!(err.to_string().contains("pass it as a string"), "{err}");
    }
    let err = IdempotencyKey::new("op", json!({ "id": u64::MAX }), json!({}))
        .record_key()
        .expect_err("u64::MAX accepted");
    assert!(matches!(err, Error::InvalidInput { .. }));
}

#[test]
fn strings_escape_minimally() {
    assert_eq!(canon(&json!("tab\there")), r#""tab\there""#);
    assert_eq!(canon(&json!("\u{1f}")), r#""\u001f""#);
    assert_eq!(canon(&json!("\u{7f}/é\u{2028}")), "\"\u{7f}/é\u{2028}\"");
}

#[test]
fn lookalikes_do_not_collide() {
    let variants = [
        json!({"a": "1"}),
        json!({"a": 1}),
        json!({"a": [1]}),
        json!({"a": {"0": 1}}),
        json!({"a": [1, 2]}),
        json!({"a": [2, 1]}),
        json!({"a": null}),
        json!({"a": "null"}),
        json!({"a": false}),
        json!({"a": "false"}),
        json!({"a": ""}),
        json!({}),
        json!([]),
        json!(null),
        json!({"A": 1}),
        json!({"a ": 1}),
        json!({"a": "é"}),
        json!({"a": "e\u{301}"}), // decomposed é: different text, different key
        json!({"a": {"b": 1}, "c": 2}),
        json!({"a": {"b": 1, "c": 2}}),
    ];
    let mut seen = HashSet::new();
    for v in &variants {
        assert!(
            seen.insert(key_of("op", v.clone(), json!({}))),
            "collision for {v}"
        );
    }
    // Moving a value between parameters and context changes the key.
    assert_ne!(
        key_of("op", json!({"a": 1}), json!({})),
        key_of("op", json!({}), json!({"a": 1}))
    );
    assert_ne!(
        key_of("op", json!({}), json!({})),
        key_of("op2", json!({}), json!({}))
    );
}

#[test]
fn operation_name_is_validated() {
    for bad in [String::new(), "x".repeat(257)] {
        let err = IdempotencyKey::new(bad, json!({}), json!({}))
            .record_key()
            .expect_err("bad operation accepted");
        assert!(matches!(err, Error::InvalidInput { .. }));
    }
}

#[test]
fn key_survives_serde_round_trip() {
    let key = IdempotencyKey::new("op", json!({"a": [1, {"b": null}]}), json!({"c": "d"}));
    let text = serde_json::to_string(&key).expect("serialize");
    let back: IdempotencyKey = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(
        back.record_key().expect("key"),
        key.record_key().expect("key")
    );
    // A key written without context reads as context null.
    let bare: IdempotencyKey = serde_json::from_str(r#"{"operation":"op"}"#).expect("bare");
    assert_eq!(bare.context, Value::Null);
}

/// A value nested past the limit, built and taken apart without recursion
/// (dropping it recursively would itself exhaust a test thread's stack).
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

fn dismantle(mut v: Value) {
    while let Value::Array(mut items) = v {
        v = items.pop().unwrap_or(Value::Null);
    }
}

#[test]
fn hostile_nesting_is_refused_not_a_stack_overflow() {
    // Before the depth limit, this recursed once per level and overflowed
    // the stack: an abort, not an error.
    for depth in [ff_traits::MAX_KEY_DEPTH + 1, 1_000_000] {
        let deep = nested(depth);
        let key = IdempotencyKey::new("op", deep, Value::Null);
        let err = key.record_key().expect_err("refused");
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        assert!(err.to_string().contains("nest"), "{err}");
        dismantle(key.parameters);
    }
    // Up to the limit works, and the key reads back through serde_json.
    let key = IdempotencyKey::new("op", nested(ff_traits::MAX_KEY_DEPTH), Value::Null);
    let text = serde_json::to_string(&json!({"record": {"key": key}})).expect("serialize");
    let back: Value = serde_json::from_str(&text).expect("a record holding it parses");
    let back: IdempotencyKey = serde_json::from_value(back["record"]["key"].clone()).expect("key");
    assert_eq!(
        back.record_key().expect("key"),
        key.record_key().expect("key")
    );
}

#[test]
fn ten_megabyte_parameters_hash_like_any_other() {
    let big = "x".repeat(10 * 1024 * 1024);
    let a = IdempotencyKey::new("op", json!({ "blob": big }), Value::Null);
    let mut other = big.clone();
    other.replace_range(5_000_000..5_000_001, "y");
    let b = IdempotencyKey::new("op", json!({ "blob": other }), Value::Null);
    let (ka, kb) = (a.record_key().expect("key"), b.record_key().expect("key"));
    assert_eq!(ka.as_str().len(), 64);
    assert_ne!(ka, kb, "one byte apart in 10 MB must give another key");
}

#[test]
fn numbers_whose_canonical_form_is_an_unsafe_integer_are_refused() {
    // Found by the canonical_key fuzz target: this float's canonical form
    // is "111111111111111100", which reads back as an unsafe integer, so
    // the key could not be computed again from its own canonical text.
    for n in [
        111_111_111_111_111_111.111_f64,
        9_007_199_254_740_992.0,
        -1.5e17,
        1e20,
        9.99e20,
    ] {
        let err = IdempotencyKey::new("op", json!({ "n": n }), json!({}))
            .record_key()
            .expect_err("accepted");
        assert!(matches!(err, Error::InvalidInput { .. }), "{n}: {err}");
    }
    // Either side of the range is fine, and reads back as the same key.
    for n in [9_007_199_254_740_991.0_f64, 1e21, -2.5e300, 0.5] {
        let key = IdempotencyKey::new("op", json!({ "n": n }), json!({}));
        let text = key.canonical_json().expect("accepted");
        let back: Value = serde_json::from_str(&text).expect("json");
        let again = IdempotencyKey::new("op", back["parameters"].clone(), json!({}));
        assert_eq!(again.canonical_json().expect("again"), text, "{n}");
    }
}

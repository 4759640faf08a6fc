//! Canonical idempotency keys.
//!
//! An [`IdempotencyKey`] names one logical operation: its name, its
//! parameters and the context it runs in. Its [`RecordKey`] is the full
//! lowercase hex SHA-256 of the key's RFC 8785 (JCS) canonical JSON, so two
//! processes, two hosts or two versions of a serializer that mean the same
//! key always compute the same record key, and different keys never share
//! one.
//!
//! The canonical form: object members sorted by the UTF-16 code units of
//! their names, no whitespace, strings escaped minimally (as JSON requires,
//! `\u00XX` in lowercase hex), numbers in ECMAScript's shortest round-trip
//! form (`5.0` is `5`, `1e21` is `1e+21`). As in I-JSON (RFC 7493), integers
//! beyond ±(2^53 − 1) are refused rather than silently rounded into another
//! key's value: pass such ids as strings. So are other numbers of that size
//! below 1e21 (`1.5e17`), whose canonical form is written as such an
//! integer: every canonical form reads back as the same key.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Version of the key scheme (canonicalization + digest). Stored in every
/// record so the scheme can change without misreading old records.
pub const KEY_SCHEME_VERSION: u32 = 1;

/// Largest integer magnitude that survives a round trip through an IEEE
/// double, the number model of RFC 8785.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest operation name accepted, in bytes.
pub const MAX_OPERATION_LEN: usize = 256;

/// What identifies one logical operation.
///
/// ```
/// use ff_traits::IdempotencyKey;
/// use serde_json::json;
///
/// let a = IdempotencyKey::new(
///     "createWorktree",
///     json!({"issueId": "123", "path": "/project"}),
///     json!({"basePath": ".worktrees"}),
/// );
/// // Member order does not matter; the meaning does.
/// let b = IdempotencyKey::new(
///     "createWorktree",
///     json!({"path": "/project", "issueId": "123"}),
///     json!({"basePath": ".worktrees"}),
/// );
/// assert_eq!(a.record_key()?, b.record_key()?);
/// assert_eq!(a.record_key()?.as_str().len(), 64);
/// # Ok::<(), ff_traits::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The operation's name, for example `createWorktree`.
    pub operation: String,
    /// Everything that makes two executions different operations.
    #[serde(default)]
    pub parameters: Value,
    /// The environment the operation runs in (base path, repository, …).
    #[serde(default)]
    pub context: Value,
}

impl IdempotencyKey {
    /// A key.
    pub fn new(operation: impl Into<String>, parameters: Value, context: Value) -> Self {
        Self {
            operation: operation.into(),
            parameters,
            context,
        }
    }

    /// The canonical JSON text that is hashed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or overlong operation name, an
    /// integer beyond ±(2^53 − 1) (or any number from there to 1e21), or
    /// nesting deeper than [`MAX_KEY_DEPTH`].
    pub fn canonical_json(&self) -> Result<String> {
        let bytes = self.canonical_bytes()?;
        // Only valid UTF-8 was written: input strings and ASCII punctuation.
        String::from_utf8(bytes).map_err(|e| Error::invalid_input("idempotency key", e.to_string()))
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>> {
        if self.operation.is_empty() || self.operation.len() > MAX_OPERATION_LEN {
            return Err(Error::invalid_input(
                "operation name",
                format!("must be 1 to {MAX_OPERATION_LEN} bytes long"),
            ));
        }
        let mut out = Vec::with_capacity(128);
        // The members in canonical (sorted) order: context, operation, parameters.
        out.extend_from_slice(b"{\"context\":");
        write_canonical(&mut out, &self.context, 0)?;
        out.extend_from_slice(b",\"operation\":");
        write_str(&mut out, &self.operation);
        out.extend_from_slice(b",\"parameters\":");
        write_canonical(&mut out, &self.parameters, 0)?;
        out.push(b'}');
        Ok(out)
    }

    /// The record key: hex SHA-256 of [`canonical_json`](Self::canonical_json).
    ///
    /// # Errors
    /// As [`canonical_json`](Self::canonical_json).
    pub fn record_key(&self) -> Result<RecordKey> {
        let digest = Sha256::digest(self.canonical_bytes()?);
        Ok(RecordKey(hex_lower(&digest)))
    }
}

/// How deeply arrays and objects may nest in a key's parameters or context:
/// well under serde_json's limit of 128 when it parses text, so a record
/// that holds the key inside it still reads back, and a hostile value
/// cannot exhaust the stack.
pub const MAX_KEY_DEPTH: usize = 100;

/// Writes `value` in RFC 8785 canonical form.
///
/// # Errors
/// [`Error::InvalidInput`] for integers beyond ±(2^53 − 1) (and any number
/// from there to 1e21), and for arrays
/// or objects nested deeper than [`MAX_KEY_DEPTH`].
pub fn canonical_json(value: &Value) -> Result<String> {
    let mut out = Vec::with_capacity(64);
    write_canonical(&mut out, value, 0)?;
    String::from_utf8(out).map_err(|e| Error::invalid_input("JSON value", e.to_string()))
}

fn write_canonical(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<()> {
    if depth >= MAX_KEY_DEPTH && (value.is_array() || value.is_object()) {
        return Err(Error::invalid_input(
            "JSON value",
            format!("arrays and objects nest deeper than {MAX_KEY_DEPTH} levels; flatten it"),
        ));
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's map may keep insertion order (feature
            // `preserve_order`), and its sorted order is by UTF-8 bytes;
            // RFC 8785 sorts by UTF-16 code units. Sort only when needed.
            if map.keys().is_sorted_by(|a, b| utf16_cmp(a, b).is_le()) {
                write_members(out, map.iter(), depth)?;
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
                write_members(out, members.into_iter(), depth)?;
            }
        }
    }
    Ok(())
}

fn write_members<'a>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    depth: usize,
) -> Result<()> {
    out.push(b'{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_canonical(out, v, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<()> {
    let unsafe_integer = || {
        Error::invalid_input(
            "number in idempotency key",
            format!(
                "{n} is beyond ±{MAX_SAFE_INTEGER} and would not survive canonical (IEEE double) form; pass it as a string"
            ),
        )
    };
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(unsafe_integer());
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else if n.is_u64() {
        // as_i64 failed, so the value exceeds i64::MAX: never safe.
        return Err(unsafe_integer());
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if !f.is_finite() {
            return Err(Error::invalid_input(
                "number in idempotency key",
                "must be finite",
            ));
        }
        // ECMAScript writes these without a fraction or exponent, so the
        // canonical text would read back as an unsafe integer (refused
        // above): the key could not be computed again from what it says.
        // Found by the `canonical_key` fuzz target.
        if f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21 {
            return Err(unsafe_integer());
        }
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(f).as_bytes());
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly what RFC 8785 requires: `"`, `\`, and
    // control characters (short forms \b \f \n \r \t, else \u00xx in
    // lowercase hex); everything else is written as UTF-8.
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)]);
        s.push(DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII hex digits were written.
    String::from_utf8(s).unwrap_or_default()
}

/// The stored name of an idempotency record: 64 lowercase hex characters.
///
/// Backends may use it directly as a file name or a database key: it never
/// contains a path separator, a dot or anything else a backend must escape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordKey(String);

impl RecordKey {
    /// Validates a record key read from outside (a file name, a CLI argument).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `s` is 64 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid_input(
                "record key",
                format!(
                    "{:?} is not 64 lowercase hex characters (a SHA-256 digest)",
                    truncate_for_message(s)
                ),
            ))
        }
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, for logs and messages.
    #[must_use]
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RecordKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<RecordKey> for String {
    fn from(k: RecordKey) -> Self {
        k.0
    }
}

fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

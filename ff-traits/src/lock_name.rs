//! [`LockName`]: a lock's name, validated once where it is made.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest lock name, in bytes, that every backend must accept.
pub const MAX_LOCK_NAME_LEN: usize = 255;

/// The name of a lock: 1 to [`MAX_LOCK_NAME_LEN`] bytes, no control
/// characters (NUL, newline, …), nothing invisible or direction-changing
/// ([`text::is_hidden`](crate::text::is_hidden)), and in NFKC form, so no
/// two names that print alike (`deploy`, `ｄｅｐｌｏｙ`, `de\u{200b}ploy`)
/// are two locks.
///
/// Every [`LockProvider`](crate::LockProvider) method takes one, so a name
/// is checked once, where it is made, and no backend checks it again.
/// Backends map names to safe storage names themselves (a name may contain
/// `/`, `..` or spaces; none of it may reach outside the backend's own
/// namespace).
///
/// ```
/// use ff_traits::LockName;
///
/// let name = LockName::new("deploy/prod")?;
/// assert_eq!(name.as_str(), "deploy/prod");
/// assert!(LockName::new("").is_err());
/// assert!(LockName::new("a\nb").is_err());
/// assert!(LockName::new("de\u{200b}ploy").is_err());
/// assert!(LockName::new("ｄｅｐｌｏｙ").is_err());
/// assert!(LockName::new("\u{202e}yolped").is_err());
/// assert!(LockName::new("café/déploiement").is_ok());
/// # Ok::<(), ff_traits::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LockName(String);

impl LockName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the problem: empty, longer than
    /// [`MAX_LOCK_NAME_LEN`] bytes, with a control, invisible or
    /// direction-changing character, or not in NFKC form.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::invalid_input("lock name", "must not be empty"));
        }
        if name.len() > MAX_LOCK_NAME_LEN {
            return Err(Error::invalid_input(
                "lock name",
                format!(
                    "is {} bytes long; at most {MAX_LOCK_NAME_LEN} are allowed",
                    name.len()
                ),
            ));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(Error::invalid_input(
                "lock name",
                format!("contains the control character {c:?}; use printable characters"),
            ));
        }
        // Two names that print alike must not be two locks: refused, not
        // normalised, so the name a holder shows is the name it took.
        if let Some(c) = name.chars().find(|&c| crate::text::is_hidden(c)) {
            return Err(Error::invalid_input(
                "lock name",
                format!(
                    "contains the invisible or direction-changing character U+{:04X}; use \
                     visible characters",
                    u32::from(c)
                ),
            ));
        }
        if let Some(c) = crate::text::not_normalised(&name) {
            return Err(Error::invalid_input(
                "lock name",
                format!(
                    "contains {c:?} (U+{:04X}), a compatibility form that looks like another \
                     character; write the name in NFKC form (plain letters and digits)",
                    u32::from(c)
                ),
            ));
        }
        Ok(Self(name))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LockName {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for LockName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl From<LockName> for String {
    fn from(n: LockName) -> Self {
        n.0
    }
}

impl PartialEq<str> for LockName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LockName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<LockName> for String {
    fn eq(&self, other: &LockName) -> bool {
        *self == other.0
    }
}

impl PartialEq<LockName> for str {
    fn eq(&self, other: &LockName) -> bool {
        self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        for (bad, why) in [
            (String::new(), "empty"),
            ("nul\0".to_owned(), "control character"),
            ("tab\there".to_owned(), "control character"),
            ("z".repeat(MAX_LOCK_NAME_LEN + 1), "at most 255"),
        ] {
            let err = LockName::new(bad.clone()).expect_err("must be refused");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        assert!(LockName::new("z".repeat(MAX_LOCK_NAME_LEN)).is_ok());
        assert!(
            LockName::new("../../etc/passwd").is_ok(),
            "backends map it safely"
        );
    }

    #[test]
    fn names_round_trip_through_serde_and_refuse_bad_ones() {
        let n = LockName::new("a/b").expect("name");
        let text = serde_json::to_string(&n).expect("serialize");
        assert_eq!(text, "\"a/b\"");
        assert_eq!(serde_json::from_str::<LockName>(&text).expect("parse"), n);
        assert!(serde_json::from_str::<LockName>("\"\"").is_err());
    }
}

//! Issue ids: what may name a worktree.
//!
//! An issue id becomes part of a directory name, a lock name and a branch
//! name, so it is checked before anything else happens: 1 to 64 ASCII
//! characters, one or more parts joined by single `/`s (`feature/login`),
//! each part of `[A-Za-z0-9._-]`, starting with a letter or digit, without
//! `..`, and not ending in `.` or `.lock` (git refuses such refs). Anything
//! else, backslashes, a leading or trailing `/`, `..`, NUL, newlines, a
//! leading `-`, look-alike Unicode letters, is refused with an error that
//! says what is allowed. So is an id of the shape earlier releases gave
//! worktrees (`wt-<issue>-<time>-<4 hex digits>`, or `ff-…`), which would
//! read as one of their names.
//!
//! Where a name cannot hold a `/` (a directory, one segment of a lock
//! name), the id's [`segment`](IssueId::segment) stands for it: each `/`
//! written `+`, a character no id contains, so the mapping is reversible.

use std::fmt;
use std::str::FromStr;

use ff_traits::Error;

/// The longest issue id accepted.
pub const MAX_ISSUE_ID_LEN: usize = 64;

/// A validated issue id.
///
/// ```
/// use ff_worktree::IssueId;
/// assert_eq!(IssueId::parse("PROJ-123")?.as_str(), "PROJ-123");
/// assert!(IssueId::parse("../../etc").is_err());
/// # Ok::<(), ff_traits::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueId(String);

impl IssueId {
    /// Checks `s`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong and what is allowed.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let refuse = |why: String| {
            Error::invalid_input(
                "issue id",
                format!(
                    "{why}; use 1 to {MAX_ISSUE_ID_LEN} characters from A-Z a-z 0-9 . _ - (and '/' \
                     between parts), each part starting with a letter or digit, without '..' and \
                     not ending in '.' or '.lock'"
                ),
            )
        };
        let shown: String = s
            .chars()
            .take(40)
            .collect::<String>()
            .escape_debug()
            .to_string();
        if s.is_empty() {
            return Err(refuse("it is empty".into()));
        }
        if s.len() > MAX_ISSUE_ID_LEN {
            return Err(refuse(format!("\"{shown}…\" is {} bytes long", s.len())));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
        {
            return Err(refuse(format!("\"{shown}\" contains {:?}", c)));
        }
        for part in s.split('/') {
            if part.is_empty() {
                return Err(refuse(format!(
                    "\"{shown}\" has an empty part (a leading, trailing or doubled '/')"
                )));
            }
            if !part.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                return Err(refuse(format!(
                    "\"{shown}\" has a part that does not start with a letter or digit"
                )));
            }
            if part.contains("..") {
                return Err(refuse(format!("\"{shown}\" contains '..'")));
            }
            if part.ends_with('.') || part.to_ascii_lowercase().ends_with(".lock") {
                return Err(refuse(format!(
                    "\"{shown}\" has a part ending in '.' or '.lock'"
                )));
            }
        }
        if crate::names::legacy_parts(s).is_some() {
            return Err(Error::invalid_input(
                "issue id",
                format!(
                    "\"{shown}\" has the shape of a worktree id or branch of an earlier ForgeFlow \
                     release (wt-<issue>-<time>-<4 hex digits>, or ff-…); name the issue otherwise"
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one path or lock-name segment: each `/` written `+`.
    ///
    /// ```
    /// use ff_worktree::IssueId;
    /// assert_eq!(IssueId::parse("feature/login")?.segment(), "feature+login");
    /// assert_eq!(IssueId::parse("PROJ-1")?.segment(), "PROJ-1");
    /// # Ok::<(), ff_traits::Error>(())
    /// ```
    #[must_use]
    pub fn segment(&self) -> String {
        self.0.replace('/', "+")
    }

    /// The id whose [`segment`](Self::segment) is `segment`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `segment` holds a `/` or maps to no valid id.
    pub fn from_segment(segment: &str) -> Result<Self, Error> {
        if segment.contains('/') {
            return Err(Error::invalid_input(
                "issue id segment",
                format!("{:?} contains '/'", segment.escape_debug().to_string()),
            ));
        }
        Self::parse(&segment.replace('+', "/"))
    }
}

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IssueId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for ok in [
            "123",
            "PROJ-123",
            "gh_42",
            "v1.2.3",
            "a",
            "A.b-c_d",
            "feature/login",
            "a/b/c",
            "team.x/PROJ-1",
            "wt-1",
            "ff-fix-login",
            &"x".repeat(64),
        ] {
            assert_eq!(IssueId::parse(ok).expect(ok).as_str(), ok);
        }
    }

    #[test]
    fn hostile_ids_are_refused_with_the_rule() {
        let long = "y".repeat(65);
        let huge = "z".repeat(10_000);
        let hostile = [
            "",
            "../x",
            "..",
            ".",
            "a/",
            "a//b",
            "a/.b",
            "a/-b",
            "a/b.lock",
            "a./b",
            "/abs",
            "a+b",
            "a@2",
            "a\\b",
            "C:\\x",
            "nul\0byte",
            "new\nline",
            "cr\rreturn",
            "tab\tid",
            "-rf",
            "--force",
            ".hidden",
            "_under",
            "x.lock",
            "X.LOCK",
            "ends.",
            "a..b",
            "space id",
            "quote\"id",
            "semi;colon",
            "pipe|id",
            "amp&id",
            "dollar$id",
            "back`tick",
            "star*",
            "question?",
            "tilde~1",
            "caret^1",
            "colon:id",
            "at@{1}",
            "brace{",
            "percent%",
            "plus+id",
            "comma,id",
            "еxample",
            "раураl",
            "ﬁle",
            "ｆｕｌｌwidth",
            "emoji😀",
            "zero\u{200b}width",
            "rtl\u{202e}id",
            &long,
            &huge,
        ];
        assert!(hostile.len() >= 40);
        for bad in hostile {
            let err = IssueId::parse(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("A-Z a-z 0-9"), "{bad:?}: {err}");
            assert!(err.to_string().len() < 400, "message too long for {bad:?}");
        }
    }
}

//! Untrusted text made safe to show a person.
//!
//! Commands from a repository's `ff.toml`, names and paths from records,
//! lock holders' command lines: any of them may hold a carriage return,
//! `ESC[2K`, a bidi override or a zero-width space that makes a terminal
//! (or a page) show something other than what is there. Everything shown
//! to a person passes through [`escape`] (one value) or [`escape_text`]
//! (a whole message whose own line breaks are meant).

use std::borrow::Cow;
use std::fmt::Write as _;

use ff_traits::text::is_hidden;

/// `s` with every hidden character ([`is_hidden`]) written as an escape
/// (`\n`, `\r`, `\t`, `\e`, else `\u{…}`) and `\` as `\\`, so the result
/// reads unambiguously and prints as exactly one line.
///
/// ```
/// use ff_worktree::display::escape;
///
/// assert_eq!(escape("npm ci"), "npm ci");
/// assert_eq!(escape("evil\r\u{1b}[2Knpm ci"), "evil\\r\\e[2Knpm ci");
/// assert_eq!(escape("\u{202e}kcol"), "\\u{202e}kcol");
/// assert_eq!(escape("a\\nb"), "a\\\\nb");
/// ```
#[must_use]
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, true)
}

/// Like [`escape`], but keeps line breaks and tabs and leaves `\` alone: for a
/// whole message built from parts that were escaped already.
///
/// ```
/// use ff_worktree::display::escape_text;
///
/// assert_eq!(escape_text("two\nlines"), "two\nlines");
/// assert_eq!(escape_text("a\u{1b}]52;c;x\u{7}b"), "a\\e]52;c;x\\u{7}b");
/// ```
#[must_use]
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

fn escape_with(s: &str, one_line: bool) -> Cow<'_, str> {
    let needs = |c: char| {
        if one_line {
            c == '\\' || is_hidden(c)
        } else {
            is_hidden(c) && c != '\n' && c != '\t'
        }
    };
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// A path, escaped as [`escape`] does (lossily for non-UTF-8 bytes).
#[must_use]
pub fn escape_path(p: &std::path::Path) -> String {
    escape(&p.to_string_lossy()).into_owned()
}

//! What `ff` prints: JSON or human text on stdout, errors on stderr, and
//! the exit code each failure maps to.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ff_traits::{Error, ErrorKind, Timestamp};
use serde_json::{Value, json};

pub(crate) const FAILURE: u8 = 1;
pub(crate) const INVALID_INPUT: u8 = 65;
pub(crate) const UNAVAILABLE: u8 = 69;
pub(crate) const CANNOT_CREATE: u8 = 73;
pub(crate) const TEMPORARY: u8 = 75;

/// A failure on its way to the user: what kind, what to say, which exit
/// code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    pub(crate) fn new(code: u8, kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            code,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(INVALID_INPUT, "invalid_input", message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(UNAVAILABLE, "backend_unavailable", message)
    }
}

/// The exit code of a library error, by its meaning.
pub(crate) fn code_of(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::NotFound => INVALID_INPUT,
        ErrorKind::LockTimeout
        | ErrorKind::InProgress
        | ErrorKind::BackoffNotElapsed
        | ErrorKind::MaxAttemptsExceeded => TEMPORARY,
        ErrorKind::Unsupported => UNAVAILABLE,
        _ => FAILURE,
    }
}

/// A backend failing before the command's own work began (a lock
/// directory that cannot be made, a store that cannot be read) means the
/// backend is unavailable (69), not that the work failed (1).
pub(crate) fn before_work(e: Error) -> Failure {
    if e.kind() == ErrorKind::Backend {
        Failure::unavailable(e.to_string())
    } else {
        e.into()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::new(code_of(&e), e.kind().as_str(), e.to_string())
    }
}

/// Where output goes, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Prints `value` as JSON, or `human()` as text.
    pub(crate) fn emit(&self, value: &Value, human: impl FnOnce() -> String) {
        let text = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_default()
        } else {
            human()
        };
        let mut stdout = std::io::stdout().lock();
        if !text.is_empty() {
            let _ = writeln!(stdout, "{text}");
        }
        let _ = stdout.flush();
    }

    /// Says what went wrong on stderr; returns the exit code.
    pub(crate) fn fail(&self, f: &Failure) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        if self.json {
            let _ = writeln!(
                stderr,
                "{}",
                json!({"error": {"kind": f.kind, "message": f.message}})
            );
        } else {
            let _ = writeln!(stderr, "ff: error: {}", f.message);
        }
        ExitCode::from(f.code)
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// An aligned table: a header row, then rows.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head = line(headers.iter().map(|h| (*h).to_owned()).collect());
    let head = if colour() {
        format!("\x1b[1m{head}\x1b[0m")
    } else {
        head
    };
    let mut out = vec![head];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// RFC 3339, for JSON.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(t.as_millis());
    humantime::format_rfc3339_millis(at).to_string()
}

/// `3m ago`, for people.
pub(crate) fn ago(t: Timestamp) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let secs = now.saturating_sub(t.as_millis()) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3_600 => format!("{}m ago", secs / 60),
        3_600..86_400 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// A one-line progress note on stderr for work that can take seconds,
/// shown only when stderr is a terminal; erased when dropped.
pub(crate) struct Progress(bool);

impl Progress {
    pub(crate) fn start(what: &str) -> Self {
        let shown = std::io::stderr().is_terminal();
        if shown {
            eprint!("{what}…\r");
        }
        Self(shown)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.0 {
            eprint!("\x1b[2K\r");
        }
    }
}

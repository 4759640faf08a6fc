//! One error type for every contract, classified by meaning.
//!
//! Backends map their own failures onto these variants so that callers can
//! react to *what happened* (somebody else holds the lock, the record changed
//! under us, the data on disk is damaged) without knowing which backend runs.

use std::fmt;
use std::time::Duration;

use crate::lock::LockInfo;
use crate::record::Revision;

/// Result alias used by every contract in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The source of a backend failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong behind a [`LockProvider`](crate::LockProvider)
/// or an [`IdempotencyStorage`](crate::IdempotencyStorage): what a backend
/// returns and a plugin author maps their failures onto.
///
/// The original TypeScript API's `LockTimeoutError` is
/// [`Error::LockTimeout`]; its `IdempotencyError` cases that belong to the
/// operation lifecycle (in progress, attempts exhausted, backoff) are the
/// `ff-idempotency` crate's own error, which wraps this one (the name table
/// in `ff-worktree`'s documentation maps the rest).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lock could not be taken before the wait ended. `holder` names who
    /// holds it, when the backend can tell. Make it with
    /// [`Error::lock_timeout`], which notes the holder's age then.
    #[error("timed out after {} waiting for lock '{name}'{}", fmt_duration(*.waited), HolderSuffix(.holder.as_deref(), *.holder_age))]
    LockTimeout {
        /// The lock's name.
        name: String,
        /// How long the caller waited.
        waited: Duration,
        /// The current holder, if known.
        holder: Option<Box<LockInfo>>,
        /// How long the holder had held it when the wait ended (not when
        /// the message is printed).
        holder_age: Option<Duration>,
    },

    /// A lock (or an idempotency claim) that the caller held is no longer
    /// theirs: its lease lapsed, it was force-released, or another owner took
    /// it over. Work protected by it must not go on.
    #[error("lock '{name}' was lost: {reason}")]
    LockLost {
        /// The lock's (or claim's) name.
        name: String,
        /// Why it was lost.
        reason: String,
    },

    /// A create-if-absent found something already there.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What already exists (for example `record 3f2a…`).
        what: String,
    },

    /// A conditional write found a different revision than the one expected.
    #[error("precondition failed for {what}: expected revision {expected}, found {}", .actual.map_or_else(|| "none".to_owned(), |r| r.to_string()))]
    PreconditionFailed {
        /// What was being written.
        what: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The revision found, if the backend reports it.
        actual: Option<Revision>,
    },

    /// The thing addressed does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },

    /// The caller passed something unusable. Nothing was changed.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input (for example `lock name`).
        what: String,
        /// What is wrong with it and what is accepted.
        reason: String,
    },

    /// Stored data could not be read back. It is never treated as absent.
    #[error("corrupt {what} at {location}: {reason}")]
    Corrupt {
        /// What is damaged (for example `idempotency record`).
        what: String,
        /// Where (a path, a key, a table row).
        location: String,
        /// What is wrong.
        reason: String,
    },

    /// The backend does not support the requested feature.
    #[error("{backend} backend does not support {what}")]
    Unsupported {
        /// The backend name.
        backend: String,
        /// The unsupported feature.
        what: String,
    },

    /// The backend itself failed (I/O, connection, database error).
    #[error("{backend} backend failed: {message}")]
    Backend {
        /// The backend name (`file`, `sqlite`, `redis`, …).
        backend: String,
        /// What it was doing and what went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// The meaning of an [`Error`], without its details: stable for matching,
/// logging and mapping to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::LockTimeout`]
    LockTimeout,
    /// [`Error::LockLost`]
    LockLost,
    /// [`Error::AlreadyExists`]
    AlreadyExists,
    /// [`Error::PreconditionFailed`]
    PreconditionFailed,
    /// [`Error::NotFound`]
    NotFound,
    /// [`Error::InvalidInput`]
    InvalidInput,
    /// [`Error::Corrupt`]
    Corrupt,
    /// [`Error::Unsupported`]
    Unsupported,
    /// [`Error::Backend`]
    Backend,
}

impl ErrorKind {
    /// A stable snake_case name, used in JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LockTimeout => "lock_timeout",
            Self::LockLost => "lock_lost",
            Self::AlreadyExists => "already_exists",
            Self::PreconditionFailed => "precondition_failed",
            Self::NotFound => "not_found",
            Self::InvalidInput => "invalid_input",
            Self::Corrupt => "corrupt",
            Self::Unsupported => "unsupported",
            Self::Backend => "backend",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The error's meaning.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::LockTimeout { .. } => ErrorKind::LockTimeout,
            Self::LockLost { .. } => ErrorKind::LockLost,
            Self::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Self::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Corrupt { .. } => ErrorKind::Corrupt,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Whether trying the same thing again later may succeed without anyone
    /// changing anything (a lock timeout, an operation in progress, a backoff,
    /// a lost race, a backend hiccup).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::LockTimeout | ErrorKind::PreconditionFailed | ErrorKind::Backend
        )
    }

    /// [`Error::LockTimeout`], with the holder's age as of now.
    pub fn lock_timeout(
        name: impl Into<String>,
        waited: Duration,
        holder: Option<LockInfo>,
    ) -> Self {
        let holder_age = holder
            .as_ref()
            .map(|h| crate::Timestamp::now().saturating_duration_since(h.acquired_at));
        Self::LockTimeout {
            name: name.into(),
            waited,
            holder: holder.map(Box::new),
            holder_age,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Backend`] with an underlying error.
    pub fn backend(
        backend: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Backend {
            backend: backend.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A [`Error::Backend`] for an I/O failure of a file-based backend,
    /// with a hint for the usual causes (permissions, read-only or full
    /// filesystem).
    #[must_use]
    pub fn io(backend: &str, context: &str, e: &std::io::Error) -> Self {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                " (is the directory writable by this user?)"
            }
            std::io::ErrorKind::StorageFull => " (the disk is full)",
            _ => "",
        };
        Self::Backend {
            backend: backend.to_owned(),
            message: format!("{context}: {e}{hint}"),
            source: Some(Box::new(std::io::Error::new(e.kind(), e.to_string()))),
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(
        what: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            what: what.into(),
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// Formats a duration for people: `850ms`, `2.5s`, `4m 10s`.
#[must_use]
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        let s = d.as_secs();
        if s < 3_600 {
            format!("{}m {}s", s / 60, s % 60)
        } else {
            format!("{}h {}m", s / 3_600, (s % 3_600) / 60)
        }
    }
}

struct HolderSuffix<'a>(Option<&'a LockInfo>, Option<Duration>);

impl fmt::Display for HolderSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(h), age) = (self.0, self.1) else {
            return f.write_str(" (holder unknown)");
        };
        write!(f, " held by pid {} on host {}", h.pid, h.hostname)?;
        if !h.operation.is_empty() {
            write!(f, " for operation '{}'", h.operation)?;
        }
        match age {
            Some(age) => write!(f, " for {}", fmt_duration(age)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(fmt_duration(Duration::from_millis(2_000)), "2s");
        assert_eq!(fmt_duration(Duration::from_millis(2_500)), "2.5s");
        assert_eq!(fmt_duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(fmt_duration(Duration::from_secs(7_260)), "2h 1m");
    }

    #[test]
    fn a_timeout_names_the_holders_age_when_it_happened() {
        let mut holder = crate::LockInfo::for_current_process(
            "x",
            crate::FencingToken(1),
            &crate::LockOptions::default().with_operation("deploy"),
            crate::Timestamp::now().saturating_sub(Duration::from_secs(5)),
        );
        holder.pid = 42;
        let e = Error::lock_timeout("x", Duration::from_secs(2), Some(holder));
        let first = e.to_string();
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(
            e.to_string(),
            first,
            "the age moved after the error was made"
        );
        assert!(
            first.contains("held by pid 42") && first.contains("'deploy' for 5"),
            "{first}"
        );
    }

    #[test]
    fn kinds_are_stable_strings() {
        let e = Error::invalid_input("lock name", "must not be empty");
        assert_eq!(e.kind().as_str(), "invalid_input");
        assert!(!e.is_temporary());
        assert_eq!(e.to_string(), "invalid lock name: must not be empty");
    }
}

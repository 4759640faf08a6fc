//! The manager's error: the contract's [`ff_traits::Error`], and what only
//! the operation lifecycle can say (in progress elsewhere, attempts
//! exhausted, backoff running, failed for good).

use std::fmt;
use std::time::Duration;

use ff_traits::fmt_duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the [`IdempotencyManager`](crate::IdempotencyManager) can
/// return: a store's error, unchanged, or a verdict of the lifecycle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store (or a key or an input) failed: see [`ff_traits::Error`].
    #[error(transparent)]
    Contract(#[from] ff_traits::Error),

    /// Another owner is executing the operation right now.
    #[error("operation '{operation}' (key {key}) is in progress by another owner{}", .lease_remaining.map(|d| format!(" (its lease runs {} more)", fmt_duration(d))).unwrap_or_default())]
    InProgress {
        /// The operation name.
        operation: String,
        /// The idempotency key (short form).
        key: String,
        /// How long the current owner's lease still runs, if known.
        lease_remaining: Option<Duration>,
    },

    /// The operation failed too often and will not be retried automatically.
    #[error(
        "operation '{operation}' (key {key}) failed {attempts} times (maximum {max_attempts}); last error: {last_error}; clean up its record to allow another attempt"
    )]
    MaxAttemptsExceeded {
        /// The operation name.
        operation: String,
        /// The idempotency key (short form).
        key: String,
        /// Attempts made.
        attempts: u32,
        /// The configured maximum.
        max_attempts: u32,
        /// The last recorded failure.
        last_error: String,
    },

    /// The operation failed recently and its retry backoff has not elapsed.
    #[error("operation '{operation}' (key {key}) failed recently; retry in {}", fmt_duration(*.remaining))]
    BackoffNotElapsed {
        /// The operation name.
        operation: String,
        /// The idempotency key (short form).
        key: String,
        /// Time left until a retry is allowed.
        remaining: Duration,
    },

    /// The operation failed with an error it declared permanent.
    #[error("operation '{operation}' (key {key}) failed permanently: {last_error}")]
    FailedPermanently {
        /// The operation name.
        operation: String,
        /// The idempotency key (short form).
        key: String,
        /// The recorded failure.
        last_error: String,
    },
}

/// The meaning of an [`Error`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Contract`], with the contract error's own kind.
    Contract(ff_traits::ErrorKind),
    /// [`Error::InProgress`]
    InProgress,
    /// [`Error::MaxAttemptsExceeded`]
    MaxAttemptsExceeded,
    /// [`Error::BackoffNotElapsed`]
    BackoffNotElapsed,
    /// [`Error::FailedPermanently`]
    FailedPermanently,
}

impl ErrorKind {
    /// A stable snake_case name, used in JSON output (a contract kind keeps
    /// its own name).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contract(kind) => kind.as_str(),
            Self::InProgress => "in_progress",
            Self::MaxAttemptsExceeded => "max_attempts_exceeded",
            Self::BackoffNotElapsed => "backoff_not_elapsed",
            Self::FailedPermanently => "failed_permanently",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl From<ff_traits::ErrorKind> for ErrorKind {
    fn from(kind: ff_traits::ErrorKind) -> Self {
        Self::Contract(kind)
    }
}

impl Error {
    /// The error's meaning.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Contract(e) => ErrorKind::Contract(e.kind()),
            Self::InProgress { .. } => ErrorKind::InProgress,
            Self::MaxAttemptsExceeded { .. } => ErrorKind::MaxAttemptsExceeded,
            Self::BackoffNotElapsed { .. } => ErrorKind::BackoffNotElapsed,
            Self::FailedPermanently { .. } => ErrorKind::FailedPermanently,
        }
    }

    /// The contract error inside, if that is what this is.
    #[must_use]
    pub fn as_contract(&self) -> Option<&ff_traits::Error> {
        match self {
            Self::Contract(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying the same thing again later may succeed without anyone
    /// changing anything: an operation in progress, a backoff, or a
    /// temporary contract error ([`ff_traits::Error::is_temporary`]).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Contract(e) => e.is_temporary(),
            Self::InProgress { .. } | Self::BackoffNotElapsed { .. } => true,
            Self::MaxAttemptsExceeded { .. } | Self::FailedPermanently { .. } => false,
        }
    }
}

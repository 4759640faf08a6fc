//! What the manager decides about a key, and why.

use std::fmt;
use std::time::Duration;

use ff_traits::{IdempotencyRecord, RecordStatus, Timestamp};

use super::ManagerConfig;

/// Why an operation may or may not run now. `Display` gives the sentences
/// the original TypeScript API printed (`Operation already completed
/// successfully`, …), so logs read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No record: first execution.
    NoPreviousExecution,
    /// A completed record within `max_age`: its result is replayed.
    AlreadyCompleted,
    /// Another owner's claim is live.
    InProgress,
    /// The failure budget is spent.
    MaxAttemptsExceeded,
    /// The last failure was too recent.
    BackoffNotElapsed {
        /// Time left until a retry is allowed.
        remaining: Duration,
    },
    /// The last attempt failed with an error it declared permanent.
    FailedPermanently,
    /// The last attempt failed; another is allowed.
    RetryingAfterFailure,
    /// The last attempt was rolled back; another is allowed.
    PreviousRolledBack,
    /// The record is older than `max_age`: it starts afresh.
    PreviousRecordExpired,
    /// The claimant's lease lapsed (it died): its claim is taken over.
    StuckPendingReset,
}

impl Reason {
    /// Whether the operation should run.
    #[must_use]
    pub fn execute(self) -> bool {
        matches!(
            self,
            Self::NoPreviousExecution
                | Self::RetryingAfterFailure
                | Self::PreviousRolledBack
                | Self::PreviousRecordExpired
                | Self::StuckPendingReset
        )
    }

    /// A stable snake_case name, for logs and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoPreviousExecution => "no_previous_execution",
            Self::AlreadyCompleted => "already_completed",
            Self::InProgress => "in_progress",
            Self::MaxAttemptsExceeded => "max_attempts_exceeded",
            Self::BackoffNotElapsed { .. } => "backoff_not_elapsed",
            Self::FailedPermanently => "failed_permanently",
            Self::RetryingAfterFailure => "retrying_after_failure",
            Self::PreviousRolledBack => "previous_rolled_back",
            Self::PreviousRecordExpired => "previous_record_expired",
            Self::StuckPendingReset => "stuck_pending_reset",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPreviousExecution => f.write_str("No previous execution found"),
            Self::AlreadyCompleted => f.write_str("Operation already completed successfully"),
            Self::InProgress => f.write_str("Operation currently in progress"),
            Self::MaxAttemptsExceeded => f.write_str("Maximum retry attempts exceeded"),
            Self::BackoffNotElapsed { remaining } => write!(
                f,
                "Retry backoff period not elapsed ({} ms remaining)",
                remaining.as_millis()
            ),
            Self::FailedPermanently => f.write_str("Operation failed permanently"),
            Self::RetryingAfterFailure => f.write_str("Retrying after failure"),
            Self::PreviousRolledBack => f.write_str("Previous operation was rolled back"),
            Self::PreviousRecordExpired => f.write_str("Previous record expired"),
            Self::StuckPendingReset => f.write_str("Stuck pending operation reset"),
        }
    }
}

/// The answer of [`IdempotencyManager::should_execute`](super::IdempotencyManager::should_execute).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the operation should run now.
    pub execute: bool,
    /// Why.
    pub reason: Reason,
    /// The record the decision was made from, if any.
    pub record: Option<IdempotencyRecord>,
}

/// The retry backoff after `attempts` failures: `base × 2^(attempts − 1)`.
#[must_use]
pub fn backoff_after(base: Duration, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << exponent)
}

/// Decides from a stored record. Pure, so it can be tested exhaustively.
#[must_use]
pub fn decide(config: &ManagerConfig, record: &IdempotencyRecord, now: Timestamp) -> Reason {
    let expired = now.saturating_duration_since(record.last_activity()) >= config.max_age;
    match record.status {
        RecordStatus::Pending => match &record.owner {
            Some(owner) if owner.lease_deadline > now => Reason::InProgress,
            _ => Reason::StuckPendingReset,
        },
        RecordStatus::Completed if expired => Reason::PreviousRecordExpired,
        RecordStatus::Completed => Reason::AlreadyCompleted,
        RecordStatus::Failed | RecordStatus::RolledBack if expired => Reason::PreviousRecordExpired,
        RecordStatus::Failed | RecordStatus::RolledBack => {
            let permanent = record.status == RecordStatus::Failed
                && record.error.as_ref().is_some_and(|e| !e.retryable);
            if permanent {
                return Reason::FailedPermanently;
            }
            if record.attempts >= config.max_attempts {
                return Reason::MaxAttemptsExceeded;
            }
            let retry_at = record
                .last_activity()
                .saturating_add(backoff_after(config.retry_backoff, record.attempts));
            if retry_at > now {
                return Reason::BackoffNotElapsed {
                    remaining: retry_at.saturating_duration_since(now),
                };
            }
            if record.status == RecordStatus::Failed {
                Reason::RetryingAfterFailure
            } else {
                Reason::PreviousRolledBack
            }
        }
    }
}

/// A human summary of a remaining lease, for messages.
pub(super) fn lease_remaining(record: &IdempotencyRecord, now: Timestamp) -> Option<Duration> {
    record
        .owner
        .as_ref()
        .map(|o| o.lease_deadline.saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use ff_traits::{ClaimOwner, FencingToken, IdempotencyKey, RecordedError};

    const T0: u64 = 1_000_000;

    fn record(status: RecordStatus, attempts: u32) -> IdempotencyRecord {
        let key = IdempotencyKey::new("op", json!({}), json!({}));
        let owner = ClaimOwner::new(
            "c".into(),
            FencingToken(1),
            Timestamp::from_millis(T0 + 30_000),
            1,
            "h".into(),
        );
        let mut r = IdempotencyRecord::new_pending(
            &key,
            key.record_key().expect("key"),
            owner,
            None,
            Timestamp::from_millis(T0),
        );
        r.status = status;
        r.attempts = attempts;
        if status.is_finished() {
            r.ended_at = Some(Timestamp::from_millis(T0));
        }
        if status == RecordStatus::Failed {
            r.error = Some(RecordedError::new("k", "m", true));
        }
        r
    }

    fn at(ms_after: u64) -> Timestamp {
        Timestamp::from_millis(T0 + ms_after)
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_millis(1_000);
        let got: Vec<u128> = (1..=5)
            .map(|n| backoff_after(base, n).as_millis())
            .collect();
        assert_eq!(got, [1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(backoff_after(base, 0), base);
        assert_eq!(backoff_after(base, u32::MAX), base.saturating_mul(1 << 31));
    }

    #[test]
    fn pending_is_in_progress_until_the_lease_lapses() {
        let c = ManagerConfig::default();
        let r = record(RecordStatus::Pending, 1);
        assert_eq!(decide(&c, &r, at(29_999)), Reason::InProgress);
        assert_eq!(decide(&c, &r, at(30_000)), Reason::StuckPendingReset);
        let mut ownerless = r;
        ownerless.owner = None;
        assert_eq!(decide(&c, &ownerless, at(0)), Reason::StuckPendingReset);
    }

    #[test]
    fn failures_wait_and_then_stop() {
        let c = ManagerConfig::default();
        let r = record(RecordStatus::Failed, 2);
        assert_eq!(
            decide(&c, &r, at(1_500)),
            Reason::BackoffNotElapsed {
                remaining: Duration::from_millis(500)
            }
        );
        assert_eq!(decide(&c, &r, at(2_000)), Reason::RetryingAfterFailure);
        let spent = record(RecordStatus::Failed, 3);
        assert_eq!(decide(&c, &spent, at(60_000)), Reason::MaxAttemptsExceeded);
        let rolled = record(RecordStatus::RolledBack, 1);
        assert_eq!(decide(&c, &rolled, at(1_000)), Reason::PreviousRolledBack);
        let mut permanent = record(RecordStatus::Failed, 1);
        permanent.error = Some(RecordedError::new("k", "m", false));
        assert_eq!(
            decide(&c, &permanent, at(60_000)),
            Reason::FailedPermanently
        );
    }

    #[test]
    fn records_expire_at_max_age() {
        let c = ManagerConfig::default().with_max_age(Duration::from_secs(10));
        let done = record(RecordStatus::Completed, 1);
        assert_eq!(decide(&c, &done, at(9_999)), Reason::AlreadyCompleted);
        assert_eq!(decide(&c, &done, at(10_000)), Reason::PreviousRecordExpired);
        let spent = record(RecordStatus::Failed, 3);
        assert_eq!(
            decide(&c, &spent, at(10_000)),
            Reason::PreviousRecordExpired
        );
    }

    #[test]
    fn sentences_are_the_seeds() {
        assert_eq!(
            Reason::NoPreviousExecution.to_string(),
            "No previous execution found"
        );
        assert_eq!(
            Reason::InProgress.to_string(),
            "Operation currently in progress"
        );
        assert_eq!(
            Reason::StuckPendingReset.to_string(),
            "Stuck pending operation reset"
        );
        assert!(Reason::StuckPendingReset.execute());
        assert!(!Reason::AlreadyCompleted.execute());
    }
}

//! The whole lifecycle in one call ([`IdempotencyManager::execute`]) and
//! rollback ([`IdempotencyManager::rollback_operation`]).

use std::fmt;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Claim, IdempotencyManager, Reason, Start};
use crate::error::{Error, Result};
use ff_traits::{
    FencingToken, IdempotencyKey, IdempotencyRecord, IdempotencyStorage, LossWatch, RecordStatus,
    RecordedError, loss_channel,
};

/// How an operation's error is recorded.
///
/// Implemented for this crate's [`Error`], `std::io::Error`, `String` and
/// boxed errors; implement it for your own error type to mark permanent
/// failures (which are never retried).
pub trait OperationFailure: fmt::Display {
    /// A stable classification (default `operation`).
    fn kind(&self) -> String {
        "operation".to_owned()
    }

    /// Whether a later attempt may succeed (default `true`).
    fn retryable(&self) -> bool {
        true
    }
}

impl OperationFailure for ff_traits::Error {
    fn kind(&self) -> String {
        ff_traits::Error::kind(self).as_str().to_owned()
    }
    fn retryable(&self) -> bool {
        !matches!(
            ff_traits::Error::kind(self),
            ff_traits::ErrorKind::InvalidInput | ff_traits::ErrorKind::Unsupported
        )
    }
}

impl OperationFailure for Error {
    fn kind(&self) -> String {
        Error::kind(self).as_str().to_owned()
    }
    fn retryable(&self) -> bool {
        self.as_contract().is_none_or(OperationFailure::retryable)
    }
}

impl OperationFailure for std::io::Error {
    fn kind(&self) -> String {
        format!("io:{:?}", std::io::Error::kind(self))
    }
}

impl OperationFailure for String {}

impl OperationFailure for Box<dyn std::error::Error + Send + Sync> {}

fn recorded<E: OperationFailure>(e: &E) -> RecordedError {
    RecordedError::new(e.kind(), e.to_string(), e.retryable())
}

/// What [`IdempotencyManager::execute`] hands the operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attempt {
    /// Why it runs (first run, retry, takeover of an abandoned attempt, …).
    pub reason: Reason,
    /// The claim's fencing token: pass it to resources that can reject
    /// writes from superseded attempts.
    pub fencing_token: FencingToken,
    /// Rollback data of abandoned earlier attempts; undo them idempotently.
    pub abandoned_rollbacks: Vec<Value>,
    loss: LossWatch,
}

impl Attempt {
    /// Call before each step that must not run twice.
    ///
    /// # Errors
    /// [`ff_traits::Error::LockLost`] when the claim was taken over (the lease could
    /// not be renewed in time).
    pub fn ensure_claim_held(&self) -> Result<()> {
        match self.loss.lost_reason() {
            None => Ok(()),
            Some(reason) => Err(ff_traits::Error::LockLost {
                name: "idempotency claim".to_owned(),
                reason,
            }
            .into()),
        }
    }

    /// Completes when the claim is lost, for `tokio::select!`.
    #[must_use]
    pub fn loss_watch(&self) -> LossWatch {
        self.loss.clone()
    }
}

/// The value of a successful [`IdempotencyManager::execute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution<T> {
    /// The operation ran now.
    Executed(T),
    /// It had completed before; this is its recorded result.
    Replayed(T),
}

impl<T> Execution<T> {
    /// The value, however it was obtained.
    pub fn into_inner(self) -> T {
        match self {
            Self::Executed(t) | Self::Replayed(t) => t,
        }
    }

    /// Whether the value was replayed from the record.
    pub fn was_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// Why [`IdempotencyManager::execute`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The operation ran and failed; the failure was recorded.
    #[error("operation failed: {0}")]
    Operation(E),
    /// The operation was not run, or its outcome could not be recorded.
    #[error(transparent)]
    Idempotency(#[from] Error),
}

impl<E> From<ff_traits::Error> for RollbackError<E> {
    fn from(e: ff_traits::Error) -> Self {
        Self::Idempotency(e.into())
    }
}

/// Why [`IdempotencyManager::rollback_operation`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError<E> {
    /// The rollback function failed. The record stays failed, its rollback
    /// data kept for another try, and the original failure is kept.
    #[error("rollback failed: {source}; the operation had failed with: {}", .original.as_ref().map_or_else(|| "no recorded error".to_owned(), ToString::to_string))]
    Rollback {
        /// The rollback function's error.
        source: E,
        /// The failure that led to the rollback, if one was recorded.
        original: Option<RecordedError>,
    },
    /// The rollback could not start or be recorded.
    #[error(transparent)]
    Idempotency(#[from] Error),
}

impl<S: IdempotencyStorage> IdempotencyManager<S> {
    /// Runs `op` at most once successfully for `key`: claims the key, runs
    /// `op` while renewing the claim's lease every third of
    /// [`lease`](super::ManagerConfig::lease), and records the outcome. A
    /// completed result is replayed without running `op`.
    ///
    /// If this future is dropped while `op` runs, the record stays pending
    /// until its lease lapses; the next claimant then takes it over and gets
    /// its rollback data in [`Attempt::abandoned_rollbacks`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use ff_idempotency::{IdempotencyManager, ManagerConfig};
    /// use ff_traits::{IdempotencyKey, MemoryStore};
    /// use serde_json::json;
    ///
    /// let manager = IdempotencyManager::new(MemoryStore::new(), ManagerConfig::default());
    /// let key = IdempotencyKey::new("sendInvoice", json!({"invoice": 42}), json!({}));
    /// let first = manager
    ///     .execute(&key, None, |_attempt| async { Ok::<_, String>("sent".to_owned()) })
    ///     .await?;
    /// let second = manager
    ///     .execute(&key, None, |_attempt| async { Ok::<_, String>("sent twice!".to_owned()) })
    ///     .await?;
    /// assert!(!first.was_replayed());
    /// assert!(second.was_replayed());
    /// assert_eq!(second.into_inner(), "sent");
    /// # Ok::<(), ff_idempotency::ExecuteError<String>>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`ExecuteError::Operation`] when `op` fails (recorded);
    /// [`ExecuteError::Idempotency`] with the refusals of
    /// [`start_operation`](Self::start_operation), or
    /// [`ff_traits::Error::LockLost`] when the claim was taken over while `op` ran (its
    /// result is then not recorded), or a result that cannot be
    /// (de)serialized ([`ff_traits::Error::Corrupt`] for a stored one).
    pub async fn execute<T, E, F, Fut>(
        &self,
        key: &IdempotencyKey,
        rollback_data: Option<Value>,
        op: F,
    ) -> std::result::Result<Execution<T>, ExecuteError<E>>
    where
        T: Serialize + DeserializeOwned,
        E: OperationFailure,
        F: FnOnce(Attempt) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let claim = match self.start_operation(key, rollback_data).await? {
            Start::AlreadyCompleted(record) => return Ok(Execution::Replayed(replay(&record)?)),
            Start::Claimed(claim) => claim,
        };
        let (notifier, watch) = loss_channel();
        let attempt = Attempt {
            reason: claim.reason,
            fencing_token: claim.fencing_token,
            abandoned_rollbacks: claim.abandoned_rollbacks.clone(),
            loss: watch,
        };
        let work = op(attempt);
        tokio::pin!(work);
        let period = (self.config.lease / 3).max(std::time::Duration::from_millis(1));
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = renewals.tick(), if !notifier.is_lost() => {
                    match self.renew(&claim).await {
                        Ok(()) => {}
                        Err(Error::Contract(ff_traits::Error::LockLost { reason, .. })) => {
                            tracing::error!(%reason, "idempotency claim lost while the operation ran");
                            notifier.notify_lost(reason);
                        }
                        // A passing store failure: the lease still runs;
                        // try again at the next tick.
                        Err(e) => tracing::warn!(error = %e, "could not renew idempotency claim"),
                    }
                }
            }
        };
        match outcome {
            Ok(value) => {
                let json = serde_json::to_value(&value).map_err(|e| {
                    Error::from(ff_traits::Error::invalid_input(
                        "operation result",
                        format!("cannot be stored as JSON: {e}"),
                    ))
                })?;
                self.complete_operation(&claim, json).await?;
                Ok(Execution::Executed(value))
            }
            Err(e) => {
                if let Err(record_err) = self.fail_operation(&claim, recorded(&e)).await {
                    tracing::error!(error = %record_err, "could not record the operation's failure");
                }
                Err(ExecuteError::Operation(e))
            }
        }
    }

    /// Undoes `key`'s operation: runs `f` on the rollback data of every
    /// abandoned attempt and then on the record's own (`None` when there is
    /// none; `f` runs anyway), then marks the record rolled back. `f` must be
    /// idempotent: after a crash it may run again on the same data.
    ///
    /// While `f` runs, the record is claimed, so no attempt starts meanwhile.
    /// An already rolled-back record is returned unchanged.
    ///
    /// # Errors
    /// [`RollbackError::Rollback`] when `f` fails (the record is failed again,
    /// keeping its original error and rollback data);
    /// [`ff_traits::Error::NotFound`] without a record; [`Error::InProgress`] while a
    /// live claim runs the operation.
    pub async fn rollback_operation<E, F, Fut>(
        &self,
        key: &IdempotencyKey,
        mut f: F,
    ) -> std::result::Result<IdempotencyRecord, RollbackError<E>>
    where
        F: FnMut(Option<Value>) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
    {
        let record_key = key.record_key()?;
        let Some(current) = self.store.load(&record_key).await? else {
            return Err(ff_traits::Error::NotFound {
                what: format!("record {} of '{}'", record_key.short(), key.operation),
            }
            .into());
        };
        if current.status == RecordStatus::RolledBack && current.abandoned_rollbacks.is_empty() {
            return Ok(current);
        }
        let now = self.now();
        if super::decide(&self.config, &current, now) == Reason::InProgress {
            return Err(self.refusal(Reason::InProgress, &current, now).into());
        }
        // Claim the record so that no attempt starts while we undo.
        let token = current
            .owner
            .as_ref()
            .map_or(FencingToken(1), |o| FencingToken(o.fencing_token.0 + 1));
        let original = current.error.clone();
        let original_status = current.status;
        let mut claimed = current.clone();
        claimed.status = RecordStatus::Pending;
        claimed.owner = Some(self.new_owner(token, now));
        let claimed = self
            .store
            .compare_and_swap(current.revision, claimed)
            .await?;
        let claim = Claim {
            key: claimed.key.clone(),
            operation: claimed.operation.clone(),
            claim_id: claimed
                .owner
                .as_ref()
                .map(|o| o.claim_id.clone())
                .unwrap_or_default(),
            fencing_token: token,
            reason: Reason::PreviousRolledBack,
            abandoned_rollbacks: claimed.abandoned_rollbacks.clone(),
            written: super::Written::new(&claimed),
        };
        let mut all_data: Vec<Option<Value>> = claimed
            .abandoned_rollbacks
            .iter()
            .cloned()
            .map(Some)
            .collect();
        all_data.push(claimed.rollback_data.clone());
        for data in all_data {
            if let Err(source) = f(data).await {
                let restored_status = if original_status == RecordStatus::Pending {
                    RecordStatus::Failed
                } else {
                    original_status
                };
                let restore = self
                    .update_owned(&claim, |r, now| {
                        r.status = restored_status;
                        r.ended_at = Some(now);
                    })
                    .await;
                if let Err(e) = restore {
                    tracing::error!(error = %e, "could not restore the record after a failed rollback");
                }
                return Err(RollbackError::Rollback { source, original });
            }
        }
        let stored = self
            .update_owned(&claim, |r, now| {
                r.status = RecordStatus::RolledBack;
                r.ended_at = Some(now);
                r.abandoned_rollbacks.clear();
            })
            .await?;
        ff_metrics::operation_event(ff_metrics::IDEMPOTENCY_ROLLBACKS, &key.operation);
        tracing::info!(operation = %key.operation, key = record_key.short(), "operation rolled back");
        Ok(stored)
    }
}

fn replay<T: DeserializeOwned>(record: &IdempotencyRecord) -> Result<T> {
    let value = record.result.clone().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| {
        Error::from(ff_traits::Error::corrupt(
            "recorded result",
            format!("record {}", record.key.short()),
            format!("does not match the expected type: {e}"),
        ))
    })
}

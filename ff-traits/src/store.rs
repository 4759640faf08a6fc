//! The idempotency storage contract: conditional writes as the primitive.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::changes::ChangeFeed;
use crate::error::{Error, Result};
use crate::key::RecordKey;
use crate::record::{IdempotencyRecord, RecordStatus, Revision};
use crate::time::Timestamp;

/// Which records a [`IdempotencyStorage::scan`] returns. Empty matches all.
///
/// ```
/// use ff_traits::{RecordStatus, ScanFilter};
/// let f = ScanFilter::default()
///     .operation("createWorktree")
///     .status(RecordStatus::Failed);
/// assert_eq!(f.operation.as_deref(), Some("createWorktree"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanFilter {
    /// Only records of this operation.
    pub operation: Option<String>,
    /// Only records in this status.
    pub status: Option<RecordStatus>,
    /// Only records whose [`last_activity`](IdempotencyRecord::last_activity)
    /// is strictly before this instant.
    pub active_before: Option<Timestamp>,
    /// Only records whose [`last_activity`](IdempotencyRecord::last_activity)
    /// is at or after this instant: what changed since an earlier look,
    /// for a reader that keeps what it read (`ff serve`). A store that
    /// predates this field returns more than asked, never less; readers
    /// that need the exact set also apply [`matches`](Self::matches).
    pub active_since: Option<Timestamp>,
}

impl ScanFilter {
    /// Restricts to one operation.
    #[must_use]
    pub fn operation(mut self, op: impl Into<String>) -> Self {
        self.operation = Some(op.into());
        self
    }

    /// Restricts to one status.
    #[must_use]
    pub fn status(mut self, status: RecordStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Restricts to records last active before `t`.
    #[must_use]
    pub fn active_before(mut self, t: Timestamp) -> Self {
        self.active_before = Some(t);
        self
    }

    /// Restricts to records last active at or after `t`.
    ///
    /// ```
    /// use ff_traits::{ScanFilter, Timestamp};
    /// let f = ScanFilter::default().active_since(Timestamp::from_millis(1_000));
    /// assert_eq!(f.active_since, Some(Timestamp::from_millis(1_000)));
    /// ```
    #[must_use]
    pub fn active_since(mut self, t: Timestamp) -> Self {
        self.active_since = Some(t);
        self
    }

    /// Whether `record` passes the filter.
    #[must_use]
    pub fn matches(&self, record: &IdempotencyRecord) -> bool {
        self.operation
            .as_deref()
            .is_none_or(|op| op == record.operation)
            && self.status.is_none_or(|s| s == record.status)
            && self
                .active_before
                .is_none_or(|t| record.last_activity() < t)
            && self
                .active_since
                .is_none_or(|t| record.last_activity() >= t)
    }
}

/// A stored entry that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CorruptEntry {
    /// Where it is (a path, a key). Contract: it contains the entry's
    /// [`RecordKey`] in full where the store can tell it, so that callers
    /// can match a damaged entry to the operation whose key they know.
    pub location: String,
    /// What is wrong with it.
    pub reason: String,
}

impl CorruptEntry {
    /// An entry.
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Scan {
    /// Readable records that match the filter.
    pub records: Vec<IdempotencyRecord>,
    /// Entries that could not be read (skipped, never treated as absent).
    pub corrupt: Vec<CorruptEntry>,
}

impl Scan {
    /// A scan result.
    #[must_use]
    pub fn new(records: Vec<IdempotencyRecord>, corrupt: Vec<CorruptEntry>) -> Self {
        Self { records, corrupt }
    }
}

/// Aggregates over all records, as a store computes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// Readable records.
    pub total: u64,
    /// Records per status.
    pub by_status: BTreeMap<RecordStatus, u64>,
    /// Records per operation.
    pub by_operation: BTreeMap<String, u64>,
    /// Sum of [`IdempotencyRecord::duration`] over finished records, in ms.
    pub finished_duration_ms: u64,
    /// Entries that could not be read.
    pub corrupt: u64,
}

impl StoreStats {
    /// Aggregates `records`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a IdempotencyRecord>) -> Self {
        let mut stats = Self::default();
        for r in records {
            stats.total += 1;
            *stats.by_status.entry(r.status).or_default() += 1;
            *stats.by_operation.entry(r.operation.clone()).or_default() += 1;
            if let Some(d) = r.duration() {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                stats.finished_duration_ms = stats.finished_duration_ms.saturating_add(ms);
            }
        }
        stats
    }

    /// Records in `status`.
    #[must_use]
    pub fn count(&self, status: RecordStatus) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Records that have ended (any status but pending).
    #[must_use]
    pub fn finished(&self) -> u64 {
        self.total - self.count(RecordStatus::Pending)
    }
}

/// A durable home for [`IdempotencyRecord`]s.
///
/// Contract, for every implementation:
///
/// * **Conditional writes are atomic** with respect to every other caller of
///   the same store, in any thread, process or host that shares it: among
///   concurrent [`create`](Self::create)s of one key exactly one succeeds;
///   among concurrent [`compare_and_swap`](Self::compare_and_swap)s from one
///   revision exactly one succeeds.
/// * **Durable and untorn.** A write that returned `Ok` survives a crash of
///   the writer; a crash at any instant leaves the old record or the new
///   one, never a mixture.
/// * **Corrupt is not absent.** An entry that cannot be read is reported as
///   [`Error::Corrupt`] by [`load`](Self::load) and by writes to it; scans
///   skip and count it.
/// * **Revisions** are set by the store: [`Revision::FIRST`] on create, one
///   more on every successful swap. The `revision` field of a record passed
///   in is ignored.
/// * **Expiry** is decided by callers, on every read; a backend TTL is only
///   garbage collection and never removes a record younger than the
///   caller's `max_age`.
#[async_trait]
pub trait IdempotencyStorage: Send + Sync + fmt::Debug {
    /// A short backend name for messages (`memory`, `json`, `sqlite`, `redis`).
    fn backend_name(&self) -> &str;

    /// Reads the record stored under `key`. `Ok(None)` means there is none.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when something is stored but cannot be read;
    /// [`Error::Backend`] when the store cannot be reached.
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>>;

    /// Stores `record` if nothing is stored under its key (create-if-absent).
    /// Returns it as stored, at [`Revision::FIRST`].
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when a record (or a corrupt entry) is there;
    /// nothing is changed.
    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord>;

    /// Replaces the record under `record.key` if its revision is `expected`.
    /// Returns it as stored, at `expected.next()`.
    ///
    /// # Errors
    /// [`Error::PreconditionFailed`] when the stored revision differs;
    /// [`Error::NotFound`] when nothing is stored; [`Error::Corrupt`] when
    /// the stored entry cannot be read. Nothing is changed in each case.
    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord>;

    /// As [`compare_and_swap`](Self::compare_and_swap), and only while the
    /// stored record's owner is the claim `claim_id`
    /// ([`ClaimOwner::claim_id`](crate::ClaimOwner::claim_id)): a claimant
    /// writes its own record in one call, without reading it first, and a
    /// record removed and created again by another claimant (its revision
    /// back at 1) is never taken for its own.
    ///
    /// The default reads, checks and swaps (two calls; the same guarantees
    /// as reading first); stores with a query language make it one
    /// conditional write.
    ///
    /// # Errors
    /// As [`compare_and_swap`](Self::compare_and_swap);
    /// [`Error::PreconditionFailed`] also when the owner differs (or there
    /// is none). Nothing is changed in each case.
    async fn compare_and_swap_owned(
        &self,
        expected: Revision,
        claim_id: &str,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let what = || format!("record {}", record.key.short());
        let Some(current) = self.load(&record.key).await? else {
            return Err(Error::NotFound { what: what() });
        };
        let owned = current
            .owner
            .as_ref()
            .is_some_and(|o| o.claim_id == claim_id);
        if current.revision != expected || !owned {
            return Err(Error::PreconditionFailed {
                what: what(),
                expected,
                actual: Some(current.revision),
            });
        }
        self.compare_and_swap(expected, record).await
    }

    /// Removes the record under `key` if its revision is `expected`.
    ///
    /// # Errors
    /// As [`compare_and_swap`](Self::compare_and_swap).
    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()>;

    /// Returns the records that match `filter`, in no particular order, and
    /// the entries that could not be read.
    ///
    /// # Errors
    /// [`Error::Backend`] when the store cannot be read at all.
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan>;

    /// Aggregates over all records. The default scans; backends with a query
    /// language override it.
    ///
    /// # Errors
    /// As [`scan`](Self::scan).
    async fn stats(&self) -> Result<StoreStats> {
        let scan = self.scan(&ScanFilter::default()).await?;
        let mut stats = StoreStats::from_records(&scan.records);
        stats.corrupt = scan.corrupt.len() as u64;
        Ok(stats)
    }

    /// A feed of wake-ups when what [`scan`](Self::scan) returns may have
    /// changed, for watchers that would otherwise poll. Taken before the
    /// first read, so nothing between the two goes unannounced. The
    /// contract is [`ChangeFeed`]'s.
    ///
    /// The default, `Ok(None)`, means the backend cannot notify: watchers
    /// poll it.
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend offers a feed but cannot start
    /// one now (the watcher polls).
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }

    /// Removes each record of `items` whose revision is still the one
    /// given, and returns how many were removed. A record changed or
    /// removed meanwhile is skipped, as [`remove`](Self::remove) would
    /// refuse it. Each removal stands alone: an error partway leaves those
    /// before it removed. The default removes one by one; a backend that
    /// can batch (one transaction, one round trip) overrides it, keeping
    /// any lock it takes short (other writers wait behind it).
    ///
    /// # Errors
    /// As [`remove`](Self::remove), other than `PreconditionFailed` and
    /// `NotFound`.
    async fn remove_many(&self, items: &[(RecordKey, Revision)]) -> Result<u64> {
        let mut removed = 0;
        for (key, expected) in items {
            match self.remove(key, *expected).await {
                Ok(()) => removed += 1,
                Err(Error::PreconditionFailed { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes every finished (not pending) record last active before
    /// `cutoff`, and returns how many were removed. Pending records are never
    /// removed. The default scans and removes one by one, each conditional
    /// on the revision it read, so a record changed meanwhile is kept.
    ///
    /// # Errors
    /// As [`scan`](Self::scan) and [`remove`](Self::remove).
    async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
        let scan = self
            .scan(&ScanFilter::default().active_before(cutoff))
            .await?;
        let mut removed = 0;
        for r in scan.records.iter().filter(|r| r.status.is_finished()) {
            match self.remove(&r.key, r.revision).await {
                Ok(()) => removed += 1,
                Err(Error::PreconditionFailed { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

macro_rules! forward_storage {
    ($ty:ty) => {
        #[async_trait]
        impl<T: IdempotencyStorage + ?Sized> IdempotencyStorage for $ty {
            fn backend_name(&self) -> &str {
                (**self).backend_name()
            }
            async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
                (**self).load(key).await
            }
            async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
                (**self).create(record).await
            }
            async fn compare_and_swap(
                &self,
                expected: Revision,
                record: IdempotencyRecord,
            ) -> Result<IdempotencyRecord> {
                (**self).compare_and_swap(expected, record).await
            }
            async fn compare_and_swap_owned(
                &self,
                expected: Revision,
                claim_id: &str,
                record: IdempotencyRecord,
            ) -> Result<IdempotencyRecord> {
                (**self)
                    .compare_and_swap_owned(expected, claim_id, record)
                    .await
            }
            async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
                (**self).remove(key, expected).await
            }
            async fn remove_many(&self, items: &[(RecordKey, Revision)]) -> Result<u64> {
                (**self).remove_many(items).await
            }
            async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
                (**self).scan(filter).await
            }
            async fn stats(&self) -> Result<StoreStats> {
                (**self).stats().await
            }
            async fn remove_finished_before(&self, cutoff: Timestamp) -> Result<u64> {
                (**self).remove_finished_before(cutoff).await
            }
            async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
                (**self).watch().await
            }
        }
    };
}

forward_storage!(Arc<T>);
forward_storage!(Box<T>);
forward_storage!(&T);

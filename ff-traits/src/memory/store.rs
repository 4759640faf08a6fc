use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock_unpoisoned;
use crate::error::{Error, Result};
use crate::key::RecordKey;
use crate::record::{IdempotencyRecord, Revision};
use crate::store::{CorruptEntry, IdempotencyStorage, Scan, ScanFilter};

#[derive(Debug, Clone)]
enum Entry {
    Record(Box<IdempotencyRecord>),
    Corrupt(String),
}

/// An [`IdempotencyStorage`] in a `HashMap`, shared by its clones.
///
/// ```
/// # tokio_test_block_on(async {
/// use ff_traits::{IdempotencyStorage, MemoryStore, RecordKey};
/// let store = MemoryStore::new();
/// let key = RecordKey::parse(&"a".repeat(64))?;
/// assert!(store.load(&key).await?.is_none());
/// # Ok::<(), ff_traits::Error>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<HashMap<RecordKey, Entry>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces whatever is stored under `key` with an unreadable entry, as a
    /// damaged file would be; for testing how callers handle corruption.
    pub fn corrupt(&self, key: &RecordKey, reason: impl Into<String>) {
        lock_unpoisoned(&self.entries).insert(key.clone(), Entry::Corrupt(reason.into()));
    }

    /// Number of entries, readable or not.
    #[must_use]
    pub fn len(&self) -> usize {
        lock_unpoisoned(&self.entries).len()
    }

    /// Whether the store holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn corrupt_error(key: &RecordKey, reason: &str) -> Error {
    Error::corrupt("idempotency record", format!("memory:{key}"), reason)
}

fn current_revision(entries: &HashMap<RecordKey, Entry>, key: &RecordKey) -> Result<Revision> {
    match entries.get(key) {
        None => Err(Error::NotFound {
            what: format!("record {}", key.short()),
        }),
        Some(Entry::Corrupt(reason)) => Err(corrupt_error(key, reason)),
        Some(Entry::Record(r)) => Ok(r.revision),
    }
}

fn check_revision(
    entries: &HashMap<RecordKey, Entry>,
    key: &RecordKey,
    expected: Revision,
) -> Result<()> {
    let actual = current_revision(entries, key)?;
    if actual == expected {
        Ok(())
    } else {
        Err(Error::PreconditionFailed {
            what: format!("record {}", key.short()),
            expected,
            actual: Some(actual),
        })
    }
}

#[async_trait]
impl IdempotencyStorage for MemoryStore {
    fn backend_name(&self) -> &str {
        "memory"
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        match lock_unpoisoned(&self.entries).get(key) {
            None => Ok(None),
            Some(Entry::Corrupt(reason)) => Err(corrupt_error(key, reason)),
            Some(Entry::Record(r)) => Ok(Some(IdempotencyRecord::clone(r))),
        }
    }

    async fn create(&self, mut record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let mut entries = lock_unpoisoned(&self.entries);
        if entries.contains_key(&record.key) {
            return Err(Error::AlreadyExists {
                what: format!("record {}", record.key.short()),
            });
        }
        record.revision = Revision::FIRST;
        entries.insert(record.key.clone(), Entry::Record(Box::new(record.clone())));
        Ok(record)
    }

    async fn compare_and_swap(
        &self,
        expected: Revision,
        mut record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let mut entries = lock_unpoisoned(&self.entries);
        check_revision(&entries, &record.key, expected)?;
        record.revision = expected.next();
        entries.insert(record.key.clone(), Entry::Record(Box::new(record.clone())));
        Ok(record)
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let mut entries = lock_unpoisoned(&self.entries);
        check_revision(&entries, key, expected)?;
        entries.remove(key);
        Ok(())
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let entries = lock_unpoisoned(&self.entries);
        let mut scan = Scan::default();
        for (key, entry) in entries.iter() {
            match entry {
                Entry::Record(r) if filter.matches(r) => {
                    scan.records.push(IdempotencyRecord::clone(r))
                }
                Entry::Record(_) => {}
                Entry::Corrupt(reason) => scan
                    .corrupt
                    .push(CorruptEntry::new(format!("memory:{key}"), reason.clone())),
            }
        }
        Ok(scan)
    }
}

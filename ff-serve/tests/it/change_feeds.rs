//! The server reads a backend when its change feed wakes, not on a clock:
//! idle, it reads nothing; another provider's grant is an event at once.
//! With feeds off it polls as before. Real file locks and SQLite; the
//! reads are counted by wrappers that forward everything, feeds included.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_lock_file::FileLockProvider;
use ff_serve::{Backends, ServeConfig, Server};
use ff_store_sqlite::SqliteStore;
use ff_testkit::http::EventStream;
use ff_traits::{
    ChangeFeed, ForceRelease, IdempotencyRecord, IdempotencyStorage, LockGuard, LockName,
    LockOptions, LockProvider, LockStatus, RecordKey, Result, Revision, Scan, ScanFilter,
};

/// Counts `locks()` and `scan()` calls: the server's reads.
#[derive(Debug)]
struct Counted<T> {
    inner: T,
    reads: Arc<AtomicU64>,
}

#[async_trait]
impl LockProvider for Counted<FileLockProvider> {
    fn backend_name(&self) -> &str {
        self.inner.backend_name()
    }
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        self.inner.acquire(name, options).await
    }
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        self.inner.try_acquire(name, options).await
    }
    async fn locks(&self) -> Result<Vec<LockStatus>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.locks().await
    }
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.inner.force_release(name).await
    }
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.watch().await
    }
}

#[async_trait]
impl IdempotencyStorage for Counted<SqliteStore> {
    fn backend_name(&self) -> &str {
        self.inner.backend_name()
    }
    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        self.inner.load(key).await
    }
    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        self.inner.create(record).await
    }
    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        self.inner.compare_and_swap(expected, record).await
    }
    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        self.inner.remove(key, expected).await
    }
    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.scan(filter).await
    }
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.watch().await
    }
}

/// A server over `dir`'s file locks and SQLite store, with its two read
/// counters (locks, records) and its events.
async fn serve(
    dir: &std::path::Path,
    feeds: bool,
) -> (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    EventStream,
    tokio::task::JoinHandle<()>,
) {
    let (lock_reads, record_reads) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let locks = Counted {
        inner: FileLockProvider::new(dir.join("locks")),
        reads: Arc::clone(&lock_reads),
    };
    let store = Counted {
        inner: SqliteStore::open(dir.join("records.db")).unwrap(),
        reads: Arc::clone(&record_reads),
    };
    let server = Server::new(
        Backends::new(Arc::new(locks), Arc::new(store)),
        ServeConfig::default().with_change_feeds(feeds),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/events", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    let events = tokio::task::spawn_blocking(move || {
        let mut events = EventStream::open(&url);
        let hello = events.next(Duration::from_secs(5)).expect("hello");
        assert_eq!(hello.kind, "hello");
        events
    })
    .await
    .unwrap();
    (lock_reads, record_reads, events, serving)
}

/// The next event of `kind` about `subject`, within a second, off the
/// runtime (the stream blocks).
async fn event(mut events: EventStream, kind: &'static str, subject: String) -> EventStream {
    tokio::task::spawn_blocking(move || {
        events
            .wait_for(kind, &subject, Duration::from_secs(1))
            .unwrap_or_else(|| panic!("no {kind} for {subject} within 1 s"));
        events
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_reads_nothing_and_a_grant_is_an_event_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (lock_reads, record_reads, events, serving) = serve(dir.path(), true).await;
    let (locks_before, records_before) = (
        lock_reads.load(Ordering::SeqCst),
        record_reads.load(Ordering::SeqCst),
    );
    assert!(locks_before >= 1 && records_before >= 1, "the first reads");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        lock_reads.load(Ordering::SeqCst),
        locks_before,
        "locks read while idle"
    );
    assert_eq!(
        record_reads.load(Ordering::SeqCst),
        records_before,
        "records read while idle"
    );

    // Another provider on the directory, as another process would be.
    let other = FileLockProvider::new(dir.path().join("locks"));
    let name = LockName::new("fed").unwrap();
    let taken = Instant::now();
    let guard = other.acquire(&name, &LockOptions::default()).await.unwrap();
    let events = event(events, "lock_acquired", "fed".into()).await;
    // Well inside one poll interval (100 ms) plus a read, on a quiet
    // machine; the bound is loose for a loaded one.
    assert!(taken.elapsed() < Duration::from_secs(1));
    guard.release().await.unwrap();
    let _events = event(events, "lock_released", "fed".into()).await;
    assert!(lock_reads.load(Ordering::SeqCst) > locks_before);
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_feeds_off_the_server_polls() {
    let dir = tempfile::tempdir().unwrap();
    let (lock_reads, record_reads, events, serving) = serve(dir.path(), false).await;
    let (locks_before, records_before) = (
        lock_reads.load(Ordering::SeqCst),
        record_reads.load(Ordering::SeqCst),
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Every 100 ms and every 500 ms: well over half of each, allowing for
    // a slow machine.
    assert!(lock_reads.load(Ordering::SeqCst) >= locks_before + 7);
    assert!(record_reads.load(Ordering::SeqCst) >= records_before + 2);
    let other = FileLockProvider::new(dir.path().join("locks"));
    let guard = other
        .acquire(&LockName::new("polled").unwrap(), &LockOptions::default())
        .await
        .unwrap();
    let _events = event(events, "lock_acquired", "polled".into()).await;
    guard.release().await.unwrap();
    serving.abort();
}

//! The server reads a backend when its change feed wakes, not on a clock:
//! idle, it reads nothing; another provider's grant is an event at once.
//! With feeds off it polls as before. Real file locks and SQLite; the
//! reads are counted by wrappers that forward everything, feeds included.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_lock_file::FileLockProvider;
use ff_serve::{Backends, ServeConfig, Server};
use ff_store_sqlite::SqliteStore;
use ff_testkit::http::EventStream;
use ff_traits::{
    ChangeFeed, ChangeSignal, ForceRelease, IdempotencyRecord, IdempotencyStorage, LockGuard,
    LockName, LockOptions, LockProvider, LockStatus, RecordKey, Result, Revision, Scan, ScanFilter,
};

/// Counts `locks()` and `scan()` calls: the server's reads (and keeps
/// the filters of the scans).
#[derive(Debug)]
struct Counted<T> {
    inner: T,
    reads: Arc<AtomicU64>,
    filters: Arc<Mutex<Vec<ScanFilter>>>,
    /// A feed the test drives, in place of the backend's own.
    signal: Option<ChangeSignal>,
}

impl<T> Counted<T> {
    fn new(inner: T, reads: &Arc<AtomicU64>) -> Self {
        Self {
            inner,
            reads: Arc::clone(reads),
            filters: Arc::default(),
            signal: None,
        }
    }
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
        self.filters.lock().unwrap().push(filter.clone());
        self.inner.scan(filter).await
    }
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        match &self.signal {
            Some(signal) => Ok(Some(signal.feed_of(false))),
            None => self.inner.watch().await,
        }
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
    let locks = Counted::new(FileLockProvider::new(dir.join("locks")), &lock_reads);
    let store = Counted::new(
        SqliteStore::open(dir.join("records.db")).unwrap(),
        &record_reads,
    );
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

/// The keys of the operations `/api/operations` lists at `url`.
async fn listed(url: String) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        ff_testkit::http::get(&url).json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect()
    })
    .await
    .unwrap()
}

/// After its first look the server reads only the records active since
/// its last one; a whole read, due a while after changes, finds a record
/// that was removed (which no read of what changed can).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_first_look_only_what_changed_is_read_and_removals_show_by_a_whole_read() {
    use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
    let dir = tempfile::tempdir().unwrap();
    let reads = Arc::new(AtomicU64::new(0));
    let store = Counted::new(
        SqliteStore::open(dir.path().join("records.db")).unwrap(),
        &reads,
    );
    let filters = Arc::clone(&store.filters);
    let server = Server::new(
        Backends::new(
            Arc::new(FileLockProvider::new(dir.path().join("locks"))),
            Arc::new(store),
        ),
        ServeConfig::default()
            .with_record_interval(Duration::from_millis(50))
            .with_whole_read_interval(Duration::from_secs(1)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    let events_url = format!("{base}events");
    let mut events = tokio::task::spawn_blocking(move || {
        let mut events = EventStream::open(&events_url);
        assert_eq!(
            events.next(Duration::from_secs(5)).expect("hello").kind,
            "hello"
        );
        events
    })
    .await
    .unwrap();

    // Another handle on the file, as another process would write it.
    let other = SqliteStore::open(dir.path().join("records.db")).unwrap();
    let manager = IdempotencyManager::new(other.clone(), ManagerConfig::default());
    let mut keys = Vec::new();
    for name in ["kept", "gone"] {
        let key =
            ff_traits::IdempotencyKey::new(name, serde_json::json!({}), serde_json::json!({}));
        let Start::Claimed(claim) = manager.start_operation(&key, None).await.unwrap() else {
            panic!("a new key");
        };
        let record = manager
            .complete_operation(&claim, serde_json::json!(1))
            .await
            .unwrap();
        keys.push(record);
    }
    // Both completions, in either order (one read may find both).
    let mut awaited: Vec<String> = keys.iter().map(|r| r.key.as_str().to_owned()).collect();
    events = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !awaited.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = events
                .next(left)
                .unwrap_or_else(|| panic!("no operation_completed for {awaited:?} within 2 s"));
            if e.kind == "operation_completed" {
                awaited.retain(|k| e.data["subject"] != k.as_str());
            }
        }
        events
    })
    .await
    .unwrap();
    {
        let seen = filters.lock().unwrap();
        assert!(seen[0].active_since.is_none(), "the first look reads all");
        assert!(
            seen[1..].iter().any(|f| f.active_since.is_some()),
            "later looks read what changed: {seen:?}"
        );
    }

    let gone = &keys[1];
    other.remove(&gone.key, gone.revision).await.unwrap();
    let removed = Instant::now();
    let url = format!("{base}operations");
    let mut listing = listed(url.clone()).await;
    while listing.contains(&gone.key.as_str().to_owned()) {
        assert!(
            removed.elapsed() < Duration::from_secs(5),
            "a removed record still listed after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        listing = listed(url.clone()).await;
    }
    assert!(listing.contains(&keys[0].key.as_str().to_owned()));
    assert!(
        filters
            .lock()
            .unwrap()
            .iter()
            .skip(1)
            .any(|f| f.active_since.is_none()),
        "the removal was found by a whole read"
    );
    drop(events);
    serving.abort();
}

/// A SQLite commit is visible only once published in the log's index
/// (shared memory, no file event), after the log writes that woke the
/// server: each read a change wakes is followed by one more, 250 ms on,
/// and no more after that (an idle server still reads nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_woken_read_is_followed_by_one_second_look() {
    let dir = tempfile::tempdir().unwrap();
    let reads = Arc::new(AtomicU64::new(0));
    let signal = ChangeSignal::new();
    let mut store = Counted::new(
        SqliteStore::open(dir.path().join("records.db")).unwrap(),
        &reads,
    );
    store.signal = Some(signal.clone());
    let server = Server::new(
        Backends::new(
            Arc::new(FileLockProvider::new(dir.path().join("locks"))),
            Arc::new(store),
        ),
        ServeConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(async move {
        server.run(listener, std::future::pending()).await.unwrap();
    });
    let started = Instant::now();
    while reads.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "no first read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let before = reads.load(Ordering::SeqCst);
    signal.notify();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        reads.load(Ordering::SeqCst),
        before + 2,
        "one read when the change woke the server, one second look"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(reads.load(Ordering::SeqCst), before + 2, "then nothing");
    serving.abort();
}

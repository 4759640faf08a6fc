//! # ff-store-redis
//!
//! An [`IdempotencyStorage`] on Redis: idempotency records shared by every
//! server of a deployment, so an operation claimed on one is seen as in
//! progress, or completed, on all.
//!
//! * Each record is a hash `<prefix>rec:<record key>` with the fields `rev`
//!   (its revision) and `body` (the record as JSON).
//! * Create-if-absent, compare-and-swap on the revision and conditional
//!   remove are Lua scripts, atomic on the server.
//! * Listing, statistics and cleanup walk the prefix with `SCAN`, never
//!   `KEYS`.
//! * An optional TTL on written records is garbage collection only:
//!   expiry decisions are still made in code, from the record's times. It
//!   is off by default, because the record of a worktree must live as long
//!   as the worktree.
//! * Every call is bounded by a timeout; connections reconnect on their own.
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_store_redis::{RedisStore, RedisStoreConfig};
//! use ff_idempotency::{IdempotencyManager, ManagerConfig};
//!
//! let store = RedisStore::connect(RedisStoreConfig::new("redis://127.0.0.1:6379")).await?;
//! let manager = IdempotencyManager::new(store, ManagerConfig::default());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::time::Duration;

use async_trait::async_trait;
use ff_traits::{
    CorruptEntry, Error, IdempotencyRecord, IdempotencyStorage, RecordKey, Result, Revision, Scan,
    ScanFilter,
};
use redis::Script;

/// KEYS: record. ARGV: body, ttl ms (0: none). 1 when created, 0 when a
/// record exists.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rev', 1, 'body', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// KEYS: record. ARGV: expected revision, body, ttl ms. `{1, new}` when
/// swapped, `{0, found}` on another revision, `{-1, 0}` when absent,
/// `{-2, 0}` when the stored body is not JSON (a damaged record is never
/// overwritten: it is reported).
const SWAP: &str = r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return {-1, 0} end
if rev ~= ARGV[1] then return {0, tonumber(rev) or -1} end
local ok = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'body') or '')
if not ok then return {-2, 0} end
local next = tonumber(rev) + 1
redis.call('HSET', KEYS[1], 'rev', next, 'body', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, next}
";

/// KEYS: record. ARGV: expected revision. Same answers as SWAP.
const REMOVE: &str = r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return {-1, 0} end
if rev ~= ARGV[1] then return {0, tonumber(rev) or -1} end
redis.call('DEL', KEYS[1])
return {1, 0}
";

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key (default `ff:store:`).
    pub prefix: String,
    /// Expire records this long after their last write (default: never).
    pub record_ttl: Option<Duration>,
    /// Longest any one Redis call may take (default 2 s).
    pub call_timeout: Duration,
}

impl RedisStoreConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ff:store:".to_owned(),
            record_ttl: None,
            call_timeout: Duration::from_secs(2),
        }
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`record_ttl`](Self::record_ttl).
    #[must_use]
    pub fn with_record_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.record_ttl = ttl;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    #[must_use]
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }
}

/// Idempotency records on one Redis server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisStore {
    config: RedisStoreConfig,
    redis: ff_redis::Connection,
}

impl RedisStore {
    /// Connects to the server.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL; [`Error::Backend`] when
    /// the server cannot be reached within the call timeout.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self> {
        let redis = ff_redis::Connection::open(&config.url, config.call_timeout).await?;
        Ok(Self { config, redis })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisStoreConfig {
        &self.config
    }

    fn key(&self, key: &RecordKey) -> String {
        format!("{}rec:{}", self.config.prefix, key.as_str())
    }

    fn ttl_ms(&self) -> u64 {
        self.config.record_ttl.map_or(0, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
        })
    }

    async fn call<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.redis.call(what, fut).await
    }

    /// As `call`, for a call that writes (it waits for replicas under
    /// `?min_replicas=N`).
    async fn call_write<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.redis.call_write(what, fut).await
    }

    fn body(record: &IdempotencyRecord) -> Result<String> {
        serde_json::to_string(record)
            .map_err(|e| Error::invalid_input("idempotency record", e.to_string()))
    }

    /// Decodes `rev` and `body` read from the Redis key `location`
    /// (`<prefix>rec:<record key>`).
    fn decode(
        location: &str,
        rev: Option<String>,
        body: Option<String>,
    ) -> Result<IdempotencyRecord> {
        let corrupt = |reason: String| Error::corrupt("idempotency record", location, reason);
        let rev: u64 = rev
            .as_deref()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| corrupt(format!("unreadable revision {rev:?}")))?;
        let body = body.ok_or_else(|| corrupt("no body".to_owned()))?;
        let key = location.rsplit_once("rec:").map_or("", |(_, k)| k);
        IdempotencyRecord::decode(body.as_bytes(), key, Some(Revision(rev)), location)
    }

    /// Runs a SWAP or REMOVE answer into a result.
    fn conditional(answer: (i64, i64), key: &RecordKey, expected: Revision) -> Result<u64> {
        match answer {
            (1, new) => Ok(u64::try_from(new).unwrap_or(0)),
            (-2, _) => Err(Error::corrupt(
                "idempotency record",
                format!("record {}", key.short()),
                "its stored body is not JSON; remove it by hand after inspection",
            )),
            (0, found) => Err(Error::PreconditionFailed {
                what: format!("record {}", key.short()),
                expected,
                actual: u64::try_from(found).ok().map(Revision),
            }),
            _ => Err(Error::NotFound {
                what: format!("record {}", key.short()),
            }),
        }
    }
}

#[async_trait]
impl IdempotencyStorage for RedisStore {
    fn backend_name(&self) -> &str {
        "redis"
    }

    /// Where the server publishes keyspace events (`notify-keyspace-events`
    /// with `K` and the classes `ghxe`, e.g. `KA`), a subscription to the
    /// prefix's: every write, removal, expiry and eviction of a record, by
    /// any client, wakes the feed, and an idle watcher reads nothing.
    /// Elsewhere, and on a cluster, `None`: watchers poll.
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        self.redis
            .keyspace_feed(&self.config.prefix, "ghxe", &[], false)
            .await
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>> {
        let k = self.key(key);
        let mut conn = self.redis.manager();
        let (rev, body): (Option<String>, Option<String>) = self
            .call(
                "reading a record",
                redis::cmd("HMGET")
                    .arg(&k)
                    .arg("rev")
                    .arg("body")
                    .query_async(&mut conn),
            )
            .await?;
        if rev.is_none() && body.is_none() {
            return Ok(None);
        }
        Self::decode(&k, rev, body).map(Some)
    }

    async fn create(&self, record: IdempotencyRecord) -> Result<IdempotencyRecord> {
        let mut conn = self.redis.manager();
        let created: i64 = self
            .call_write(
                "creating a record",
                Script::new(CREATE)
                    .key(self.key(&record.key))
                    .arg(Self::body(&record)?)
                    .arg(self.ttl_ms())
                    .invoke_async(&mut conn),
            )
            .await?;
        if created == 0 {
            return Err(Error::AlreadyExists {
                what: format!("record {}", record.key.short()),
            });
        }
        let mut stored = record;
        stored.revision = Revision::FIRST;
        Ok(stored)
    }

    async fn compare_and_swap(
        &self,
        expected: Revision,
        record: IdempotencyRecord,
    ) -> Result<IdempotencyRecord> {
        let mut conn = self.redis.manager();
        let answer: (i64, i64) = self
            .call_write(
                "updating a record",
                Script::new(SWAP)
                    .key(self.key(&record.key))
                    .arg(expected.0)
                    .arg(Self::body(&record)?)
                    .arg(self.ttl_ms())
                    .invoke_async(&mut conn),
            )
            .await?;
        let new = Self::conditional(answer, &record.key, expected)?;
        let mut stored = record;
        stored.revision = Revision(new);
        Ok(stored)
    }

    async fn remove(&self, key: &RecordKey, expected: Revision) -> Result<()> {
        let mut conn = self.redis.manager();
        let answer: (i64, i64) = self
            .call_write(
                "removing a record",
                Script::new(REMOVE)
                    .key(self.key(key))
                    .arg(expected.0)
                    .invoke_async(&mut conn),
            )
            .await?;
        Self::conditional(answer, key, expected).map(|_| ())
    }

    async fn scan(&self, filter: &ScanFilter) -> Result<Scan> {
        let mut conn = self.redis.manager();
        let pattern = format!("{}rec:*", ff_redis::escape_glob(&self.config.prefix));
        let keys = self.redis.scan_keys("listing records", &pattern).await?;
        let (mut records, mut corrupt) = (Vec::new(), Vec::new());
        // Read in batches, one round trip each; on a cluster, whose keys
        // lie in many slots and a pipeline may not cross slots, 64 reads
        // at a time, each routed to its key's master.
        let clustered = self.redis.is_cluster();
        for batch in keys.chunks(if clustered { 64 } else { 1000 }) {
            let rows: Vec<(Option<String>, Option<String>)> = if clustered {
                let reads = batch.iter().map(|k| {
                    let mut conn = conn.clone();
                    async move {
                        redis::cmd("HMGET")
                            .arg(k)
                            .arg("rev")
                            .arg("body")
                            .query_async::<(Option<String>, Option<String>)>(&mut conn)
                            .await
                    }
                });
                self.call("reading records", async {
                    futures_util::future::join_all(reads)
                        .await
                        .into_iter()
                        .collect::<redis::RedisResult<Vec<_>>>()
                })
                .await?
            } else {
                let mut pipe = redis::pipe();
                for k in batch {
                    pipe.cmd("HMGET").arg(k).arg("rev").arg("body");
                }
                self.call("reading records", pipe.query_async(&mut conn))
                    .await?
            };
            for (k, (rev, body)) in batch.iter().zip(rows) {
                if rev.is_none() && body.is_none() {
                    continue; // removed between SCAN and read
                }
                match Self::decode(k, rev, body) {
                    Ok(r) if filter.matches(&r) => records.push(r),
                    Ok(_) => {}
                    Err(e) => corrupt.push(CorruptEntry::new(k.clone(), e.to_string())),
                }
            }
        }
        Ok(Scan::new(records, corrupt))
    }
}

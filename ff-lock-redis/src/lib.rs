//! # ff-lock-redis
//!
//! A [`LockProvider`] on Redis, for locks shared by many servers.
//!
//! * Take: one Lua script does `SET key value NX PX ttl` and `INCR` of the
//!   lock's fencing counter, so fencing tokens strictly increase across all
//!   clients; a token is never below the server's clock in microseconds,
//!   so a lost counter (a failover to a replica that missed the last
//!   grants) cannot make tokens go back (see "Failover" below). The
//!   value starts with a token random to the grant. A lock's other keys
//!   (counter, readers, writer mark) join its key and a suffix with a unit
//!   separator, which no lock name contains, so no name reaches another
//!   lock's keys.
//! * Release: Lua compare-and-delete, then `PUBLISH` to wake waiters; extend:
//!   Lua compare-and-pexpire.
//! * A watchdog renews a held lock every third of its TTL and stops the
//!   instant it is released. It starts when the first renewal is due (one
//!   scheduler task per provider starts each), so a lock released sooner
//!   never costs a task. Validity counts from before the grant request
//!   was sent, minus a drift allowance (1 % of the TTL + 2 ms); when a
//!   renewal finds the lock gone or someone else's, or validity runs out
//!   without a successful renewal, the guard reports the loss at once.
//! * Waiters subscribe to the lock's release channel and retry on every
//!   message, with a fallback retry when the holder's TTL runs out (never a
//!   fixed polling loop to Redis). A call that fails while taking a lock
//!   (the server restarted, failed over, or closed the connection) is
//!   tried again every 100 ms until the wait's deadline, and a broken
//!   subscription is made again on the node calls go to now.
//! * Same-host takeover: the value records the holder's pid, process start
//!   time, host, pid space (boot and pid namespace) and the process group
//!   its command runs in. A waiter in the same pid space looks at the holder
//!   every 10 ms without asking Redis; once the holder's process is gone
//!   (or its pid reused) and no process of its group runs, the waiter takes
//!   the lock over at once, by a compare-and-set on the exact value it
//!   judged. Waiters elsewhere wait for the TTL.
//! * Holder information (pid, host, operation, acquired_at, metadata) lives
//!   in the value; [`locks`](LockProvider::locks) lists by `SCAN` over the key
//!   prefix; force-release deletes a grant (its holder learns of the loss).
//! * Connections go through the `redis` crate's connection manager
//!   (automatic reconnect); auth comes from the URL
//!   (`redis://user:password@host:port/db`); every call is bounded by a
//!   timeout.
//!
//! * Semaphores (`permits`): shared locks whose script also counts the
//!   live holders against the cap; a dead holder's permit expires with its
//!   TTL, or at once for a waiter on its host.
//! * Shared (reader) locks: each shared grant is a field of the lock's
//!   readers hash with its own expiry, fencing token and renewal; an
//!   exclusive grant needs no exclusive holder and no live reader. Writers
//!   are preferred: a writer that waits marks the lock, and no new reader
//!   is granted while the mark stands (readers already in finish), so a
//!   stream of readers cannot starve a writer; a stream of writers can
//!   keep readers waiting.
//!
//! ## Redis Cluster
//!
//! Through `redis+cluster://…` every key of one lock (the lock, its
//! fencing counter, readers and writer mark) carries the same hash tag,
//! `<prefix>{<16 hex digits of the name's SHA-256>}<name>`, so each script
//! touches one slot; locks spread over the masters by name; listing walks
//! every master; the client follows `MOVED`/`ASK` while slots move (held
//! locks move with their slots). Wake-ups use `PUBLISH`, which a cluster
//! delivers on every node. A prefix with a `{` in it would make that the
//! tag: every lock in one slot (correct, not spread).
//!
//! ## Failover (Sentinel) and what is promised
//!
//! Through `redis+sentinel://…` (see `ff_redis::Connection::open`) calls
//! go to the master the Sentinels name, and a failing call makes them be
//! asked again, so service resumes on the promoted replica (measured:
//! about 2.7 s from a SIGKILL of the master to the next grant, with the
//! Sentinels' `down-after-milliseconds` at 1 s). Replication is
//! asynchronous, so:
//!
//! * **Promised**: fencing tokens rise across a failover (every token is
//!   at least the server's clock in microseconds, and a failover takes
//!   seconds), provided the data nodes' clocks agree within that time.
//!   A protected resource that checks tokens refuses a holder from before
//!   the failover once a newer one wrote.
//! * **Not promised**: mutual exclusion across the failover itself. A
//!   grant the failed master made that had not reached the replica is
//!   unknown to the new master, which can grant the same lock again while
//!   the first holder still works; that holder learns of the loss at its
//!   next renewal (the new master does not have its grant), within a third
//!   of the TTL. Fencing tokens are what keep the two from both writing.
//!   `?min_replicas=1` narrows the window: a grant counts only once a
//!   replica acknowledged it (`WAIT`), so a failover to that replica keeps
//!   it.
//!
//! Why no Redlock (a quorum over independent masters): its safety rests on
//! bounded clock drift and process pauses that no client can check, it
//! still needs fencing tokens for safety (and a quorum of independent
//! counters cannot give strictly rising ones), and it multiplies round
//! trips. Fencing tokens plus Sentinel (and `WAIT` where a lost grant
//! matters) give the guarantees above with one master's cost.
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
//! use ff_traits::{LockName, LockOptions, LockProvider};
//!
//! let locks = RedisLockProvider::connect(RedisLockConfig::new("redis://127.0.0.1:6379")).await?;
//! let guard = locks.acquire(&LockName::new("deploy")?, &LockOptions::default()).await?;
//! // … work; guard.ensure_held()? before writes that must be exclusive …
//! guard.release().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod held;
mod releases;
mod renewals;
mod scripts;

use sha2::Digest as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_metrics as metrics;
use ff_process::Liveness;
use ff_traits::{
    Error, FencingToken, ForceOutcome, ForceRelease, LockGuard, LockInfo, LockMode, LockName,
    LockOptions, LockProvider, LockStatus, Result, Timestamp,
};
use futures_util::{StreamExt as _, TryStreamExt as _};
use redis::AsyncCommands;

use crate::held::Held;
use crate::releases::Releases;

/// Settings of a [`RedisLockProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisLockConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key and channel (default `ff:lock:`), so several
    /// deployments or test runs can share one server.
    pub prefix: String,
    /// Longest a lock lives without renewal (default 30 s). A grant uses
    /// the smaller of this and the request's
    /// [`stale_threshold`](LockOptions::stale_threshold).
    pub max_ttl: Duration,
    /// Longest any one Redis call may take (default 2 s).
    pub call_timeout: Duration,
}

impl RedisLockConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ff:lock:".to_owned(),
            max_ttl: Duration::from_secs(30),
            call_timeout: Duration::from_secs(2),
        }
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`max_ttl`](Self::max_ttl).
    #[must_use]
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    #[must_use]
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }
}

/// The shared part of a provider, also held by guards and watchdogs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RedisLockConfig,
    pub(crate) redis: ff_redis::Connection,
    /// A Redis Cluster: keys carry a hash tag.
    pub(crate) clustered: bool,
    /// Grants waiting for their first renewal.
    pub(crate) renewals: Arc<renewals::Renewals>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.renewals.stop();
    }
}

impl Shared {
    /// A lock's key: the prefix and the name; on a cluster, a hash tag of
    /// the name between them (`{16 hex digits}`), so the lock's keys share
    /// one slot, which its scripts need.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{}{name}", self.config.prefix, self.tag(name))
    }

    /// One of a lock's other keys (`fence`, `readers`, `writer`): its key,
    /// a unit separator (no lock name has one) and `what`.
    pub(crate) fn aux(&self, name: &str, what: &str) -> String {
        format!("{}\x1f{what}", self.key(name))
    }

    fn tag(&self, name: &str) -> String {
        if !self.clustered {
            return String::new();
        }
        let digest = sha2::Sha256::digest(name.as_bytes());
        format!("{{{}}}", ff_traits::hex_lower(&digest[..8]))
    }

    /// The name in what follows the prefix of a key (`None`: not a lock's
    /// key of this provider's layout).
    fn name_in<'k>(&self, rest: &'k str) -> Option<&'k str> {
        if !self.clustered {
            return Some(rest);
        }
        let rest = rest.strip_prefix('{')?;
        let (tag, name) = rest.split_at_checked(16)?;
        (tag.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(name)?
            .strip_prefix('}')
    }

    pub(crate) fn channel(&self, name: &str) -> String {
        format!("{}released:{name}", self.config.prefix)
    }

    /// Runs a Redis call under the call timeout, mapping failures.
    pub(crate) async fn call<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.redis.call(what, fut).await
    }

    /// As `call`, for a call that writes (it waits for replicas under
    /// `?min_replicas=N`).
    pub(crate) async fn call_write<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.redis.call_write(what, fut).await
    }

    /// A handle to issue commands on.
    pub(crate) fn conn(&self) -> ff_redis::Conn {
        self.redis.manager()
    }
}

/// Distributed locks on one Redis server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisLockProvider {
    shared: Arc<Shared>,
}

impl RedisLockProvider {
    /// Connects to the server.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL; [`Error::Backend`] when
    /// the server cannot be reached within the call timeout.
    pub async fn connect(config: RedisLockConfig) -> Result<Self> {
        let redis = ff_redis::Connection::open(&config.url, config.call_timeout).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                clustered: redis.is_cluster(),
                redis,
                renewals: Arc::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisLockConfig {
        &self.shared.config
    }

    fn ttl(&self, options: &LockOptions) -> Duration {
        options
            .stale_threshold
            .min(self.shared.config.max_ttl)
            .max(Duration::from_millis(10))
    }

    /// One attempt, taking the lock if it is free or its exclusive holder
    /// is still exactly `dead` (a grant judged dead). A waiting writer
    /// (`waiter`, its id) marks itself so no new reader gets in ahead of it.
    /// Cancel-safe: if the caller stops waiting while the request is in
    /// flight (its future dropped), [`Pending`] releases by the attempt's
    /// token whatever the server may have granted.
    async fn attempt(
        &self,
        name: &str,
        options: &LockOptions,
        dead: Option<&Holder>,
        waiter: Option<&str>,
    ) -> Result<Attempt> {
        let ttl = self.ttl(options);
        let info = LockInfo::for_current_process(name, FencingToken(0), options, Timestamp::now());
        let token = info.id.clone();
        let holder = serde_json::to_string(&info)
            .map_err(|e| Error::invalid_input("lock metadata", e.to_string()))?;
        let sent = Instant::now();
        let mut conn = self.shared.conn();
        let mut pending = Pending {
            shared: Some(Arc::clone(&self.shared)),
            name,
            token: &token,
            mode: options.mode,
        };
        let script = if options.mode != LockMode::Exclusive {
            &*scripts::ACQUIRE_SHARED_SCRIPT
        } else {
            &*scripts::ACQUIRE_SCRIPT
        };
        let mut invocation = script.key(self.shared.key(name));
        invocation
            .key(self.shared.aux(name, "fence"))
            .key(self.shared.aux(name, "readers"))
            .key(self.shared.aux(name, "writer"))
            .arg(&token)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(holder)
            .arg(dead.map_or("", |d| d.value.as_str()))
            .arg(if waiter.is_some() { "wait" } else { "" })
            .arg(waiter.unwrap_or(""))
            .arg(options.permits.map(|n| n.to_string()).unwrap_or_default())
            .arg(options.mode.code());
        // A timeout may hide a grant: `pending` stays armed to undo it.
        let answer: Vec<redis::Value> = self
            .shared
            .call_write("taking a lock", invocation.invoke_async(&mut conn))
            .await?;
        pending.shared = None;
        drop(pending);
        let mut values = answer.into_iter();
        let granted: i64 = values
            .next()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or(0);
        if granted == 1 {
            if let Some(dead) = dead {
                metrics::lock_taken_over("redis");
                tracing::warn!(
                    lock = name,
                    pid = dead.info.pid,
                    host = %dead.info.hostname,
                    "took over a lock whose holder died on this host"
                );
            }
            let fence: u64 = values
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .unwrap_or(0);
            let mut info = info;
            info.fencing_token = FencingToken(fence);
            let guard = Held::start(Arc::clone(&self.shared), info, token, ttl, sent);
            return Ok(Attempt::Granted(guard));
        }
        let holder_of = |v: redis::Value| {
            redis::from_redis_value::<String>(v)
                .ok()
                .and_then(|value| parse_value(&value).map(|info| Holder { info, value }))
        };
        let first = values.next().and_then(holder_of);
        if granted == 2 {
            return Ok(Attempt::Busy(Busy {
                writer_mark: first.map(Box::new),
                ..Busy::default()
            }));
        }
        let readers = values.filter_map(holder_of).collect();
        Ok(Attempt::Busy(Busy {
            exclusive: first,
            readers,
            writer_mark: None,
        }))
    }

    /// One attempt; when the lock is busy with holders that died on this
    /// host, their places are freed (each by compare-and-set on what was
    /// judged) and a second attempt follows.
    async fn attempt_or_take_over(
        &self,
        name: &str,
        options: &LockOptions,
        waiter: Option<&str>,
    ) -> Result<Attempt> {
        let busy = match self.attempt(name, options, None, waiter).await? {
            Attempt::Busy(b) => b,
            granted @ Attempt::Granted(_) => return Ok(granted),
        };
        let mut freed = false;
        for reader in &busy.readers {
            if ff_process::holder_liveness(&reader.info) == Liveness::Dead {
                freed |= self.drop_reader(name, reader).await?;
            }
        }
        if let Some(mark) = &busy.writer_mark
            && ff_process::holder_liveness(&mark.info) == Liveness::Dead
        {
            freed |= self.drop_writer_mark(name, mark).await?;
        }
        match &busy.exclusive {
            Some(h) if ff_process::holder_liveness(&h.info) == Liveness::Dead => {
                self.attempt(name, options, Some(h), waiter).await
            }
            _ if freed => self.attempt(name, options, None, waiter).await,
            _ => Ok(Attempt::Busy(busy)),
        }
    }

    /// Removes a shared hold if it is still exactly `reader`. Returns
    /// whether it did.
    async fn drop_reader(&self, name: &str, reader: &Holder) -> Result<bool> {
        let mut conn = self.shared.conn();
        let dropped: i64 = self
            .shared
            .call_write(
                "removing a shared hold",
                scripts::DROP_READER_IF_SCRIPT
                    .key(self.shared.aux(name, "readers"))
                    .arg(&reader.info.id)
                    .arg(&reader.value)
                    .arg(self.shared.channel(name))
                    .invoke_async(&mut conn),
            )
            .await?;
        if dropped == 1 {
            tracing::warn!(
                lock = name,
                pid = reader.info.pid,
                "removed a shared hold whose holder died on this host"
            );
        }
        Ok(dropped == 1)
    }

    /// Lifts the mark of a writer that died waiting on this host, if it is
    /// still exactly what was judged.
    async fn drop_writer_mark(&self, name: &str, mark: &Holder) -> Result<bool> {
        let mut conn = self.shared.conn();
        let dropped: i64 = self
            .shared
            .call_write(
                "lifting a dead writer's mark",
                scripts::DELETE_IF_SCRIPT
                    .key(self.shared.aux(name, "writer"))
                    .arg(&mark.value)
                    .arg(self.shared.channel(name))
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(dropped == 1)
    }

    /// A writer that stops waiting lifts its mark.
    async fn unmark_writer(&self, name: &str, waiter: &str) {
        let mut conn = self.shared.conn();
        let _: Result<i64> = self
            .shared
            .call_write(
                "lifting a waiting writer's mark",
                scripts::UNMARK_WRITER_SCRIPT
                    .key(self.shared.aux(name, "writer"))
                    .arg(waiter)
                    .invoke_async(&mut conn),
            )
            .await;
    }

    /// Milliseconds the lock has left (`None`: not held or no expiry).
    async fn pttl(&self, name: &str) -> Result<Option<Duration>> {
        let mut conn = self.shared.conn();
        let ms: i64 = self
            .shared
            .call("reading a lock's expiry", conn.pttl(self.shared.key(name)))
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }
}

/// Undoes, when dropped armed, whatever grant an attempt that never
/// completed may have won: a compare-and-delete by its token, which does
/// nothing if the attempt won nothing.
struct Pending<'a> {
    shared: Option<Arc<Shared>>,
    name: &'a str,
    token: &'a str,
    mode: LockMode,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (name, token, mode) = (self.name.to_owned(), self.token.to_owned(), self.mode);
            handle.spawn(async move {
                Held::delete_in_background(&shared, &name, &token, mode).await;
            });
        }
    }
}

enum Attempt {
    Granted(LockGuard),
    Busy(Busy),
}

/// Who kept an attempt out: the exclusive holder, the live readers (a
/// writer's attempt lists them), or neither (a waiting writer's mark kept a
/// reader out).
#[derive(Default)]
struct Busy {
    exclusive: Option<Holder>,
    readers: Vec<Holder>,
    /// The mark of a writer waiting ahead of a reader (boxed: rarely there).
    writer_mark: Option<Box<Holder>>,
}

impl Busy {
    /// The holders to watch and to name: the exclusive one, the readers,
    /// the waiting writer.
    fn holders(&self) -> impl Iterator<Item = &Holder> {
        self.exclusive
            .iter()
            .chain(&self.readers)
            .chain(self.writer_mark.as_deref())
    }
}

/// A grant read from Redis: who holds it, and the exact value (what a
/// takeover compares against).
struct Holder {
    info: LockInfo,
    value: String,
}

/// How many locks `locks()` reads at once.
const LIST_IN_FLIGHT: usize = 512;

/// How often a waiter looks at a holder on its own host (a local process
/// probe, not a Redis call): the takeover delay after the holder dies.
const LIVENESS_POLL: Duration = Duration::from_millis(10);

/// How soon a waiter tries again after a call failed mid-wait.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// The Lua of taking and releasing a lock, for the bench's floor (the same
/// scripts run bare, without this crate's client work); not a stable API.
#[doc(hidden)]
pub mod lua {
    pub use crate::scripts::{ACQUIRE, RELEASE};
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a lock key's value: the holder it names, if readable.
    #[must_use]
    pub fn parse_value(value: &str) -> Option<ff_traits::LockInfo> {
        super::parse_value(value)
    }
}

/// Parses `<token>\n<fence>\n<holder JSON>`.
pub(crate) fn parse_value(value: &str) -> Option<LockInfo> {
    let mut parts = value.splitn(3, '\n');
    let (_token, fence, json) = (parts.next()?, parts.next()?, parts.next()?);
    let mut info: LockInfo = serde_json::from_str(json).ok()?;
    info.fencing_token = FencingToken(fence.parse().ok()?);
    Some(info)
}

fn check_mode(options: &LockOptions) -> Result<()> {
    options.validate()
}

impl RedisLockProvider {
    /// The wait of [`acquire`](LockProvider::acquire).
    async fn wait_for(
        &self,
        name: &str,
        options: &LockOptions,
        waiter: Option<&str>,
        started: Instant,
        deadline: Instant,
    ) -> Result<LockGuard> {
        // Subscribe only once the first attempt finds the lock busy; try
        // again after subscribing so a release in between is not missed.
        // A call that fails (the server went away: a failover, a restart,
        // a killed connection) is tried again shortly, until the deadline,
        // the first attempt as every later one.
        let mut releases = Releases::new(&self.shared, name);
        let mut subscribed = false;
        // Wake at least this often: a waiting writer's mark must not lapse,
        // and a reader that died elsewhere expires inside the readers' hash
        // without a message.
        let heartbeat = self.ttl(options) / 3;
        let mut named: Option<LockInfo> = None;
        loop {
            let busy = match self.attempt_or_take_over(name, options, waiter).await {
                Ok(Attempt::Granted(g)) => return Ok(g),
                Ok(Attempt::Busy(b)) => b,
                Err(e @ Error::Backend { .. })
                    if Instant::now() + RETRY_AFTER_FAILURE < deadline =>
                {
                    tracing::warn!(lock = name, error = %e, "a call failed while taking the lock; trying again");
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(h) = busy.holders().next() {
                named = Some(h.info.clone());
            }
            if !subscribed {
                subscribed = true;
                metrics::lock_contended("redis", options);
                releases.subscribe().await;
                // Subscribed: a release from now on wakes this wait.
                options.waiting();
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::lock_timeout(
                    name.to_owned(),
                    started.elapsed(),
                    named,
                ));
            }
            // Wake on a release message, when the exclusive holder's TTL
            // runs out (a holder that died never publishes), at the
            // heartbeat, or at the deadline; holders on this host are
            // watched meanwhile, to take over the moment they die.
            let expiry = match &busy.exclusive {
                Some(_) => match self.pttl(name).await {
                    Ok(ttl) => ttl.unwrap_or(Duration::from_millis(1)) + Duration::from_millis(1),
                    Err(_) => RETRY_AFTER_FAILURE,
                },
                None => heartbeat,
            };
            let wake = Instant::now() + expiry.min(heartbeat).min(deadline - now);
            let watched: Vec<&LockInfo> = busy
                .holders()
                .map(|h| &h.info)
                .filter(|h| ff_process::holder_liveness(h) == Liveness::Alive)
                .collect();
            if watched.is_empty() {
                releases.wait(wake).await;
                continue;
            }
            loop {
                let until = (Instant::now() + LIVENESS_POLL).min(wake);
                if releases.wait(until).await
                    || until >= wake
                    || watched
                        .iter()
                        .any(|h| ff_process::holder_liveness(h) != Liveness::Alive)
                {
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl LockProvider for RedisLockProvider {
    fn backend_name(&self) -> &str {
        "redis"
    }

    /// `redis <node>`: the server calls go to (a Sentinel set's master
    /// now; a cluster's first node, through which it was reached).
    fn endpoint(&self) -> Option<String> {
        let node = self.shared.redis.node_address();
        Some(if self.shared.clustered {
            format!("redis cluster via {node}")
        } else {
            format!("redis {node}")
        })
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let name = name.as_str();
        check_mode(options)?;
        let started = Instant::now();
        let budget = options.wait_budget();
        let deadline = started + budget;
        // A waiting writer marks itself (under one id for the whole wait) so
        // that readers arriving after it queue behind it.
        let waiter_id = ff_traits::identity::unique_id();
        let waiter = (options.mode == LockMode::Exclusive && !budget.is_zero())
            .then_some(waiter_id.as_str());
        let result = self
            .wait_for(name, options, waiter, started, deadline)
            .await;
        if let (Some(w), Err(_)) = (waiter, &result) {
            self.unmark_writer(name, w).await;
        }
        result
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        let name = name.as_str();
        check_mode(options)?;
        match self.attempt_or_take_over(name, options, None).await? {
            Attempt::Granted(g) => Ok(Some(g)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    /// Where the server publishes keyspace events (`notify-keyspace-events`
    /// with `K` and the classes `g$hx`, e.g. `KA`), a subscription to the
    /// prefix's: every grant, release and expiry, by any client, wakes the
    /// feed; an exclusive hold's renewal (`expire`) does not. Leases lapse,
    /// so a watcher also reads now and then.
    /// Elsewhere, and on a cluster, `None`: watchers poll.
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        self.shared
            .redis
            .keyspace_feed(&self.shared.config.prefix, "g$hx", &["expire"], true)
            .await
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        let conn = self.shared.conn();
        let pattern = format!("{}*", ff_redis::escape_glob(&self.shared.config.prefix));
        let keys = self
            .shared
            .redis
            .scan_keys("listing locks", &pattern)
            .await?;
        let prefix = &self.shared.config.prefix;
        let mut names = std::collections::BTreeSet::new();
        for key in &keys {
            let Some(rest) = key
                .strip_prefix(prefix.as_str())
                .and_then(|rest| self.shared.name_in(rest))
            else {
                continue;
            };
            match rest.split_once('\x1f') {
                None => {
                    names.insert(rest.to_owned());
                }
                Some((name, "readers")) => {
                    names.insert(name.to_owned());
                }
                Some(_) => {}
            }
        }
        // Many names' reads in flight at once on the multiplexed
        // connection: one after another, 1,000 locks cost 2,000 round
        // trips in a row (about 200 ms here), every time a watcher reads.
        let statuses = futures_util::stream::iter(names)
            .map(|name| {
                let mut conn = conn.clone();
                async move {
                    let mut holders = self.holders(&mut conn, &name).await?;
                    let exclusive = holders.0.take();
                    let all: Vec<LockInfo> = exclusive
                        .into_iter()
                        .chain(holders.1)
                        .map(|h| h.info)
                        .collect();
                    Ok::<_, Error>(LockStatus::new(&name, !all.is_empty(), all))
                }
            })
            .buffered(LIST_IN_FLIGHT);
        statuses.try_collect().await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let name = name.as_str();
        let mut conn = self.shared.conn();
        let (exclusive, readers) = self.holders(&mut conn, name).await?;
        let mut previous = Vec::new();
        if let Some(h) = exclusive {
            let deleted: i64 = self
                .shared
                .call_write(
                    "force-releasing a lock",
                    scripts::DELETE_IF_SCRIPT
                        .key(self.shared.key(name))
                        .arg(&h.value)
                        .arg(self.shared.channel(name))
                        .invoke_async(&mut conn),
                )
                .await?;
            if deleted == 1 {
                previous.push(h.info);
            }
        }
        for reader in readers {
            if self.drop_reader(name, &reader).await? {
                previous.push(reader.info);
            }
        }
        tracing::warn!(name, revoked = previous.len(), "lock force-released");
        let outcome = if previous.is_empty() {
            ForceOutcome::NotHeld
        } else {
            ForceOutcome::Revoked { previous }
        };
        Ok(ForceRelease::new(name, outcome))
    }
}

impl RedisLockProvider {
    /// The exclusive holder of `name` and its unexpired shared holders.
    async fn holders(
        &self,
        conn: &mut ff_redis::Conn,
        name: &str,
    ) -> Result<(Option<Holder>, Vec<Holder>)> {
        let value: Option<String> = self
            .shared
            .call("reading a lock", conn.get(self.shared.key(name)))
            .await?;
        let exclusive =
            value.and_then(|value| parse_value(&value).map(|info| Holder { info, value }));
        let entries: Vec<(String, String)> = self
            .shared
            .call(
                "reading a lock's shared holders",
                conn.hgetall(self.shared.aux(name, "readers")),
            )
            .await?;
        let now_ms: Option<u64> = if entries.is_empty() {
            None
        } else {
            let (secs, micros): (u64, u64) = self
                .shared
                .call(
                    "reading the server's clock",
                    redis::cmd("TIME").query_async(conn),
                )
                .await?;
            Some(secs * 1000 + micros / 1000)
        };
        let readers = entries
            .into_iter()
            .filter(|(_, value)| {
                let expiry = value
                    .split(['\n', ' '])
                    .next()
                    .and_then(|e| e.parse::<u64>().ok());
                matches!((expiry, now_ms), (Some(e), Some(now)) if e > now)
            })
            .filter_map(|(_, value)| parse_value(&value).map(|info| Holder { info, value }))
            .collect();
        Ok((exclusive, readers))
    }
}

//! # ff-lock-redis
//!
//! A [`LockProvider`] on Redis, for locks shared by many servers.
//!
//! * Take: one Lua script does `SET key value NX PX ttl` and `INCR` of the
//!   lock's fencing counter, so fencing tokens strictly increase across all
//!   clients. The value starts with a token random to the grant.
//! * Release: Lua compare-and-delete, then `PUBLISH` to wake waiters; extend:
//!   Lua compare-and-pexpire.
//! * A watchdog renews a held lock every third of its TTL and stops the
//!   instant it is released. Validity counts from before the grant request
//!   was sent, minus a drift allowance (1 % of the TTL + 2 ms); when a
//!   renewal finds the lock gone or someone else's, or validity runs out
//!   without a successful renewal, the guard reports the loss at once.
//! * Waiters subscribe to the lock's release channel and retry on every
//!   message, with a fallback retry when the holder's TTL runs out (never a
//!   fixed polling loop to Redis).
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
//! Exclusive locks only: shared mode is [`Error::Unsupported`]. One Redis
//! node: there is no Redlock quorum over independent nodes.
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
mod scripts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_traits::{
    Error, FencingToken, ForceOutcome, ForceRelease, Liveness, LockGuard, LockInfo, LockMode,
    LockName, LockOptions, LockProvider, LockStatus, Result, Timestamp,
};
use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::held::Held;

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
}

impl Shared {
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.config.prefix)
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

    /// A handle to issue commands on.
    pub(crate) fn conn(&self) -> redis::aio::ConnectionManager {
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
            shared: Arc::new(Shared { config, redis }),
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

    /// One attempt, taking the lock if it is free or still exactly
    /// `dead` (a grant judged dead). Cancel-safe: if the caller stops
    /// waiting while the request is in flight (its future dropped),
    /// [`Pending`] releases by the attempt's token whatever the server may
    /// have granted.
    async fn attempt(
        &self,
        name: &str,
        options: &LockOptions,
        dead: Option<&Holder>,
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
        };
        let mut invocation = scripts::ACQUIRE_SCRIPT.key(self.shared.key(name));
        invocation
            .key(format!("{}:fence", self.shared.key(name)))
            .arg(&token)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(holder)
            .arg(dead.map_or("", |d| d.value.as_str()));
        let answer: Result<(i64, redis::Value)> = self
            .shared
            .call("taking a lock", invocation.invoke_async(&mut conn))
            .await;
        let (granted, value) = match answer {
            Ok(a) => a,
            // A timeout may hide a grant: keep `pending` armed to undo it.
            Err(e) => return Err(e),
        };
        pending.shared = None;
        drop(pending);
        if granted == 1 {
            if let Some(dead) = dead {
                tracing::warn!(
                    lock = name,
                    pid = dead.info.pid,
                    host = %dead.info.hostname,
                    "took over a lock whose holder died on this host"
                );
            }
            let fence: u64 = redis::from_redis_value(value).unwrap_or(0);
            let mut info = info;
            info.fencing_token = FencingToken(fence);
            let guard = Held::start(Arc::clone(&self.shared), info, token, ttl, sent);
            return Ok(Attempt::Granted(guard));
        }
        let current: Option<String> = redis::from_redis_value(value).ok();
        Ok(Attempt::Busy(current.and_then(|value| {
            parse_value(&value).map(|info| Holder { info, value })
        })))
    }

    /// One attempt; when the lock is busy with a holder that died on this
    /// host, a second that takes it over.
    async fn attempt_or_take_over(&self, name: &str, options: &LockOptions) -> Result<Attempt> {
        match self.attempt(name, options, None).await? {
            Attempt::Busy(Some(h)) if h.info.holder_liveness() == Liveness::Dead => {
                self.attempt(name, options, Some(&h)).await
            }
            other => Ok(other),
        }
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
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (name, token) = (self.name.to_owned(), self.token.to_owned());
            handle.spawn(async move {
                let _ = Held::delete(&shared, &name, &token).await;
            });
        }
    }
}

enum Attempt {
    Granted(LockGuard),
    Busy(Option<Holder>),
}

/// A grant read from Redis: who holds it, and the exact value (what a
/// takeover compares against).
struct Holder {
    info: LockInfo,
    value: String,
}

/// How often a waiter looks at a holder on its own host (a local process
/// probe, not a Redis call): the takeover delay after the holder dies.
const LIVENESS_POLL: Duration = Duration::from_millis(10);

/// Waits for a release message until `until`; whether one came. A closed
/// subscription (the connection dropped) just waits: the TTL fallback
/// still wakes the waiter, without a busy loop.
async fn released(
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
    until: Instant,
) -> bool {
    match tokio::time::timeout_at(until.into(), messages.next()).await {
        Ok(Some(_)) => true,
        Ok(None) => {
            tokio::time::sleep_until(until.into()).await;
            false
        }
        Err(_) => false,
    }
}

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
    options.validate()?;
    if options.mode == LockMode::Shared {
        return Err(Error::Unsupported {
            backend: "redis".into(),
            what: "shared locks".into(),
        });
    }
    Ok(())
}

#[async_trait]
impl LockProvider for RedisLockProvider {
    fn backend_name(&self) -> &str {
        "redis"
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let name = name.as_str();
        check_mode(options)?;
        let started = Instant::now();
        let budget = options.wait_budget();
        let deadline = started + budget;
        // Subscribe only once the first attempt fails; try again after
        // subscribing so a release in between is not missed.
        let mut holder = match self.attempt_or_take_over(name, options).await? {
            Attempt::Granted(g) => return Ok(g),
            Attempt::Busy(h) => h,
        };
        let mut pubsub = self
            .shared
            .call(
                "subscribing to releases",
                self.shared.redis.client().get_async_pubsub(),
            )
            .await?;
        self.shared
            .call(
                "subscribing to releases",
                pubsub.subscribe(self.shared.channel(name)),
            )
            .await?;
        let mut messages = pubsub.on_message();
        loop {
            match self.attempt_or_take_over(name, options).await? {
                Attempt::Granted(g) => return Ok(g),
                Attempt::Busy(h) => holder = h.or(holder),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::lock_timeout(
                    name.to_owned(),
                    started.elapsed(),
                    holder.map(|h| h.info),
                ));
            }
            // Wake on a release message, or when the holder's TTL runs out
            // (a holder that died never publishes), or at the deadline; a
            // holder on this host is watched meanwhile, to take over the
            // moment it dies.
            let expiry = self.pttl(name).await?.unwrap_or(Duration::from_millis(1))
                + Duration::from_millis(1);
            let wake = Instant::now() + expiry.min(deadline - now);
            let watched = holder
                .as_ref()
                .is_some_and(|h| h.info.holder_liveness() == Liveness::Alive);
            if !watched {
                released(&mut messages, wake).await;
                continue;
            }
            let h = holder.as_ref().map(|h| &h.info);
            loop {
                let until = (Instant::now() + LIVENESS_POLL).min(wake);
                if released(&mut messages, until).await
                    || until >= wake
                    || h.is_none_or(|h| h.holder_liveness() != Liveness::Alive)
                {
                    break;
                }
            }
        }
    }

    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        let name = name.as_str();
        check_mode(options)?;
        match self.attempt_or_take_over(name, options).await? {
            Attempt::Granted(g) => Ok(Some(g)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        let mut conn = self.shared.conn();
        let pattern = format!("{}*", ff_redis::escape_glob(&self.shared.config.prefix));
        let keys = self
            .shared
            .redis
            .scan_keys("listing locks", &pattern)
            .await?;
        let prefix = &self.shared.config.prefix;
        let mut out = Vec::new();
        for key in keys {
            let Some(name) = key.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if name.ends_with(":fence") || name.starts_with("released:") {
                continue;
            }
            let value: Option<String> = self.shared.call("reading a lock", conn.get(&key)).await?;
            let holders: Vec<LockInfo> =
                value.as_deref().and_then(parse_value).into_iter().collect();
            out.push(LockStatus::new(name, !holders.is_empty(), holders));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let name = name.as_str();
        let mut conn = self.shared.conn();
        let key = self.shared.key(name);
        let value: Option<String> = self.shared.call("reading a lock", conn.get(&key)).await?;
        let Some(value) = value else {
            return Ok(ForceRelease::new(name, ForceOutcome::NotHeld));
        };
        let deleted: i64 = self
            .shared
            .call(
                "force-releasing a lock",
                scripts::DELETE_IF_SCRIPT
                    .key(&key)
                    .arg(&value)
                    .arg(self.shared.channel(name))
                    .invoke_async(&mut conn),
            )
            .await?;
        let previous: Vec<LockInfo> = parse_value(&value).into_iter().collect();
        tracing::warn!(name, deleted, "lock force-released");
        Ok(ForceRelease::new(
            name,
            if deleted == 1 {
                ForceOutcome::Revoked { previous }
            } else {
                ForceOutcome::NotHeld
            },
        ))
    }
}

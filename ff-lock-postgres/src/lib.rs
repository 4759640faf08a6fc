//! # ff-lock-postgres
//!
//! A [`LockProvider`] on PostgreSQL: a lease table, for locks shared by
//! many servers on the database a team already runs, with the guarantees
//! of the Redis backend.
//!
//! * **A lease table**: one row per holder (so shared locks, semaphores
//!   and the intention modes work as on Redis), each with its lease's end
//!   by the **server's clock**. Taking a lock is one statement, a PL/pgSQL
//!   function that locks the name's fencing row, drops leases that ran
//!   out, checks the live holders' modes and the permits, and inserts the
//!   grant: one round trip, one short transaction.
//! * **Fencing tokens only rise**: each is one more than the name's last,
//!   and never below the server's clock in microseconds, so neither a
//!   restart (the row is durable on commit) nor a promoted replica that
//!   missed the last grants can make them go back (provided the servers'
//!   clocks agree within the time a failover takes).
//! * **Renewal**: a watchdog extends the lease every third of its TTL
//!   (`UPDATE … WHERE holder = $2 AND expires_at > clock_timestamp()`).
//!   Validity counts from before each request was sent, minus a drift
//!   allowance; when a renewal finds the lease gone, or validity runs out
//!   without a renewal getting through (a partition, a dead server), the
//!   guard reports the loss at once.
//! * **Wake-ups**: a release sends `NOTIFY` in its own statement; waiters
//!   `LISTEN` on one connection per provider, of its own (`LISTEN` is
//!   session state). Each waiter also wakes when the lease it waits on
//!   runs out, and at least every third of a TTL. Through a
//!   transaction-pooling pgbouncer, `LISTEN` does not work: the provider
//!   checks the path once (a `NOTIFY` it sends must come back) and falls
//!   back to polling every [`retry_interval`](LockOptions::retry_interval)
//!   when it does not; `?listen_port=` names the server's own port for
//!   `LISTEN`, `?wakeups=poll` skips it.
//! * **Same-host takeover**: the holder's JSON records its pid, process
//!   start time, host, pid space and process group; a waiter on the same
//!   host looks at the holder every 10 ms, and once it is gone takes the
//!   lock over at once, deleting exactly the grant it judged (by holder
//!   and fencing token) in the same statement as its own grant.
//! * **Writers are preferred**, as on Redis: a waiting exclusive request
//!   marks itself, and no new shared grant is made while the mark stands.
//! * Nothing relies on session state: no advisory locks, no named
//!   statements (`query_typed` sends each unnamed), so everything but
//!   `LISTEN` works through a transaction-pooling pgbouncer.
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
//! use ff_traits::{LockName, LockOptions, LockProvider};
//!
//! let locks = PostgresLockProvider::connect(PostgresLockConfig::new("postgres://ff:secret@db/app")).await?;
//! let guard = locks.acquire(&LockName::new("deploy")?, &LockOptions::default()).await?;
//! // … work; guard.ensure_held()? before writes that must be exclusive …
//! guard.release().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod held;
mod sql;
mod wakeups;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_metrics as metrics;
use ff_postgres::{Database, PostgresUrl, Settings, Type};
use ff_process::Liveness;
use ff_traits::{
    Error, FencingToken, ForceOutcome, ForceRelease, LockGuard, LockInfo, LockMode, LockName,
    LockOptions, LockProvider, LockStatus, Result, Timestamp,
};

use crate::held::Held;
use crate::sql::Statements;
use crate::wakeups::Wakeups;

/// Settings of a [`PostgresLockProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresLockConfig {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]`: see
    /// [`PostgresUrl`] for ForgeFlow's parameters (TLS, schema, wake-ups).
    pub url: String,
    /// Longest a lease lives without renewal (default 30 s). A grant uses
    /// the smaller of this and the request's
    /// [`stale_threshold`](LockOptions::stale_threshold).
    pub max_ttl: Duration,
    /// Connections and the call timeout.
    pub settings: Settings,
}

impl PostgresLockConfig {
    /// Defaults for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_ttl: Duration::from_secs(30),
            settings: Settings::default(),
        }
    }

    /// Sets [`max_ttl`](Self::max_ttl).
    #[must_use]
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// Sets the call timeout of [`settings`](Self::settings).
    #[must_use]
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.settings = self.settings.with_call_timeout(d);
        self
    }
}

/// The shared part of a provider, also held by guards and watchdogs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) sql: Statements,
    /// The `NOTIFY` channel of this schema's releases.
    pub(crate) channel: String,
    pub(crate) wakeups: Wakeups,
    pub(crate) max_ttl: Duration,
}

impl Shared {
    /// Runs one statement on a pooled connection, bounded.
    pub(crate) async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[ff_postgres::Param<'_>],
    ) -> Result<Vec<ff_postgres::Row>> {
        let client = self.db.client(what).await?;
        self.db.bounded(what, client.query_typed(sql, params)).await
    }

    /// Ends grant `holder` of `name` (or a waiter's mark); whether it was
    /// still there.
    pub(crate) async fn delete(&self, name: &str, holder: &str) -> Result<bool> {
        let rows = self
            .query(
                "releasing a lock",
                &self.sql.release,
                &[
                    (&name, Type::TEXT),
                    (&holder, Type::TEXT),
                    (&self.channel.as_str(), Type::TEXT),
                ],
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, i32>(0) > 0))
    }

    /// [`delete`](Self::delete), made once more when the call fails; for
    /// the background releases, which nobody waits on.
    pub(crate) async fn delete_in_background(&self, name: &str, holder: &str) {
        if self.delete(name, holder).await.is_err() {
            let _ = self.delete(name, holder).await;
        }
    }
}

/// Distributed locks in one PostgreSQL database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresLockProvider {
    shared: Arc<Shared>,
}

impl PostgresLockProvider {
    /// Connects to the database, creating or migrating the schema.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL; [`Error::Backend`] when
    /// the server cannot be reached, refuses the login, or the schema
    /// cannot be created (naming the missing privilege).
    pub async fn connect(config: PostgresLockConfig) -> Result<Self> {
        let url: PostgresUrl = config.url.parse()?;
        let db = Database::connect(&url, config.settings).await?;
        db.migrate("locks", sql::MIGRATIONS).await?;
        let channel = format!("ff_lock_{}", db.schema());
        Ok(Self {
            shared: Arc::new(Shared {
                sql: Statements::new(db.schema()),
                wakeups: Wakeups::new(url.wakeups()),
                channel,
                db,
                max_ttl: config.max_ttl,
            }),
        })
    }

    /// The database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    fn ttl(&self, options: &LockOptions) -> Duration {
        options
            .stale_threshold
            .min(self.shared.max_ttl)
            .max(Duration::from_millis(10))
    }

    /// One attempt, taking the lock if it is free enough or its holder is
    /// still exactly `dead` (a grant judged dead). A waiting writer
    /// (`waiter`, its id) marks itself so no new reader gets in ahead of it.
    /// Cancel-safe: if the caller stops waiting while the request is in
    /// flight, [`Pending`] deletes by the attempt's id whatever the server
    /// may have granted.
    async fn attempt(
        &self,
        name: &str,
        options: &LockOptions,
        dead: Option<&Holder>,
        waiter: Option<&str>,
    ) -> Result<Attempt> {
        let ttl = self.ttl(options);
        let info = LockInfo::for_current_process(name, FencingToken(0), options, Timestamp::now());
        let holder = info.id.clone();
        let json = serde_json::to_string(&info)
            .map_err(|e| Error::invalid_input("lock metadata", e.to_string()))?;
        let sent = Instant::now();
        let mut pending = Pending {
            shared: Some(Arc::clone(&self.shared)),
            name,
            holder: &holder,
        };
        let ttl_ms = ff_postgres::millis(ttl);
        let dead_holder = dead.map(|d| d.holder.as_str());
        let dead_fence = dead.map(|d| i64::try_from(d.info.fencing_token.0).unwrap_or(i64::MAX));
        let permits = options
            .permits
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let mode = options.mode.code();
        let rows = self
            .shared
            .query(
                "taking a lock",
                &self.shared.sql.acquire,
                &[
                    (&name, Type::TEXT),
                    (&holder.as_str(), Type::TEXT),
                    (&mode, Type::TEXT),
                    (&ttl_ms, Type::INT8),
                    (&json.as_str(), Type::TEXT),
                    (&dead_holder, Type::TEXT),
                    (&dead_fence, Type::INT8),
                    (&waiter, Type::TEXT),
                    (&permits, Type::INT4),
                ],
            )
            .await?;
        pending.shared = None;
        drop(pending);
        let row = rows
            .first()
            .ok_or_else(|| ff_postgres::backend("taking a lock: the server answered no row"))?;
        let granted: i32 = row.get(0);
        if granted == 1 {
            if let Some(dead) = dead {
                metrics::lock_taken_over("postgres");
                tracing::warn!(
                    lock = name,
                    pid = dead.info.pid,
                    host = %dead.info.hostname,
                    "took over a lock whose holder died on this host"
                );
            }
            let fence: i64 = row.get(1);
            let mut info = info;
            info.fencing_token = FencingToken(u64::try_from(fence).unwrap_or(0));
            let guard = Held::start(Arc::clone(&self.shared), info, ttl, sent);
            return Ok(Attempt::Granted(Box::new(guard)));
        }
        let blockers: Vec<Holder> = row
            .get::<_, Option<Vec<String>>>(2)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| Holder::parse(d))
            .collect();
        Ok(Attempt::Busy(Busy { holders: blockers }))
    }

    /// One attempt; when it is kept out by holders (or a waiting writer's
    /// mark) that died on this host, a second attempt deletes the first of
    /// them in the same statement as its grant, if it is still exactly
    /// what was judged.
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
        match busy
            .holders
            .iter()
            .find(|h| ff_process::holder_liveness(&h.info) == Liveness::Dead)
        {
            Some(dead) => self.attempt(name, options, Some(dead), waiter).await,
            None => Ok(Attempt::Busy(busy)),
        }
    }

    /// A writer that stops waiting lifts its mark.
    async fn unmark_writer(&self, name: &str, waiter: &str) {
        let _ = self
            .shared
            .query(
                "lifting a waiting writer's mark",
                &self.shared.sql.unmark,
                &[(&name, Type::TEXT), (&waiter, Type::TEXT)],
            )
            .await;
    }

    /// The wait of [`acquire`](LockProvider::acquire).
    async fn wait_for(
        &self,
        name: &str,
        options: &LockOptions,
        waiter: Option<&str>,
        started: Instant,
        deadline: Instant,
    ) -> Result<LockGuard> {
        // Listen only once the first attempt finds the lock busy; try again
        // after listening so a release in between is not missed. A call
        // that fails (a restart, a failover, a killed connection) is tried
        // again shortly, until the deadline.
        let mut releases = None;
        let mut listening = false;
        // Wake at least this often: a waiting writer's mark must not lapse.
        let heartbeat = self.ttl(options) / 3;
        let mut named: Option<LockInfo> = None;
        loop {
            let busy = match self.attempt_or_take_over(name, options, waiter).await {
                Ok(Attempt::Granted(g)) => return Ok(*g),
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
            if let Some(h) = busy.holders.first() {
                named = Some(h.info.clone());
            }
            if !listening {
                listening = true;
                metrics::lock_contended("postgres", options);
                releases = self.shared.wakeups.subscribe(&self.shared).await;
                // In place: a release from now on wakes this wait (or the
                // poll below sees it).
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
            // Wake on a release, when the first lease in the way runs out
            // (a holder that died never releases), at the heartbeat, at the
            // poll interval when nothing wakes us, or at the deadline.
            let expiry = busy
                .holders
                .iter()
                .map(|h| h.left)
                .min()
                .map_or(heartbeat, |left| left + Duration::from_millis(1));
            let mut pause = expiry.min(heartbeat).min(deadline - now);
            if releases.is_none() {
                pause = pause.min(options.retry_interval);
            }
            let wake = now + pause;
            let watched: Vec<&LockInfo> = busy
                .holders
                .iter()
                .map(|h| &h.info)
                .filter(|h| ff_process::holder_liveness(h) == Liveness::Alive)
                .collect();
            loop {
                let until = if watched.is_empty() {
                    wake
                } else {
                    (Instant::now() + LIVENESS_POLL).min(wake)
                };
                let woke = match &mut releases {
                    Some(rx) => match wakeups::wait(rx, name, until).await {
                        wakeups::Woke::Released => true,
                        wakeups::Woke::Timer => false,
                        wakeups::Woke::Lost => {
                            // The LISTEN connection ended: listen again (a
                            // release in the gap went unheard, so look).
                            releases = self.shared.wakeups.subscribe(&self.shared).await;
                            true
                        }
                    },
                    None => {
                        tokio::time::sleep_until(until.into()).await;
                        false
                    }
                };
                if woke
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

/// Undoes, when dropped armed, whatever grant an attempt that never
/// completed may have won: a delete by its holder id, which does nothing
/// if the attempt won nothing.
struct Pending<'a> {
    shared: Option<Arc<Shared>>,
    name: &'a str,
    holder: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (name, holder) = (self.name.to_owned(), self.holder.to_owned());
            handle.spawn(async move {
                shared.delete_in_background(&name, &holder).await;
            });
        }
    }
}

enum Attempt {
    /// Boxed: a guard is large and the busy answer common while waiting.
    Granted(Box<LockGuard>),
    Busy(Busy),
}

/// Who kept an attempt out: the live holders whose modes clash, or the
/// marks of writers waiting ahead of a reader.
struct Busy {
    holders: Vec<Holder>,
}

/// A grant (or mark) as the server described it.
struct Holder {
    /// The row's holder id (a grant's id, or a waiter's).
    holder: String,
    /// The holder, with its fencing token.
    info: LockInfo,
    /// How long its lease has left.
    left: Duration,
}

impl Holder {
    /// Parses `holder\nfence\nms left\nJSON`.
    fn parse(described: &str) -> Option<Self> {
        let mut parts = described.splitn(4, '\n');
        let (holder, fence, left, json) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let mut info: LockInfo = serde_json::from_str(json).ok()?;
        info.fencing_token = FencingToken(fence.parse().ok()?);
        Some(Self {
            holder: holder.to_owned(),
            info,
            left: Duration::from_millis(left.parse().ok()?),
        })
    }
}

/// How often a waiter looks at a holder on its own host (a local process
/// probe, not a call): the takeover delay after the holder dies.
const LIVENESS_POLL: Duration = Duration::from_millis(10);

/// How soon a waiter tries again after a call failed mid-wait.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

#[async_trait]
impl LockProvider for PostgresLockProvider {
    fn backend_name(&self) -> &str {
        "postgres"
    }

    /// `LISTEN` on the releases' channel, holding the watchers' gate
    /// (ff-postgres's change feeds): every grant, release and revocation
    /// by any client wakes the feed (a renewal does not: it moves only a
    /// lease's end). Leases lapse, so a watcher also reads now and then.
    /// `None` with `?wakeups=poll` or where a `NOTIFY` does not come back
    /// (pgbouncer without `?listen_port=`).
    async fn watch(&self) -> Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
        self.shared
            .db
            .change_feed(ff_postgres::FeedChannel {
                channel: self.shared.channel.clone(),
                lapses: true,
            })
            .await
    }

    /// `postgres host:port/database`.
    fn endpoint(&self) -> Option<String> {
        Some(format!("postgres {}", self.shared.db.endpoint()))
    }

    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
        let name = name.as_str();
        options.validate()?;
        let started = Instant::now();
        let budget = options.wait_budget();
        let deadline = started + budget;
        // A waiting writer marks itself (under one id for the whole wait)
        // so that readers arriving after it queue behind it.
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
        options.validate()?;
        match self
            .attempt_or_take_over(name.as_str(), options, None)
            .await?
        {
            Attempt::Granted(g) => Ok(Some(*g)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    async fn locks(&self) -> Result<Vec<LockStatus>> {
        let rows = self
            .shared
            .query("listing locks", &self.shared.sql.list, &[])
            .await?;
        let mut out: Vec<LockStatus> = Vec::new();
        let mut current: Option<(String, Vec<LockInfo>)> = None;
        for row in rows {
            let name: String = row.get(0);
            let Some(holder) = Holder::parse(row.get(1)) else {
                continue;
            };
            match &mut current {
                Some((n, holders)) if *n == name => holders.push(holder.info),
                _ => {
                    if let Some((n, holders)) = current.take() {
                        out.push(LockStatus::new(n, true, holders));
                    }
                    current = Some((name, vec![holder.info]));
                }
            }
        }
        if let Some((n, holders)) = current {
            out.push(LockStatus::new(n, true, holders));
        }
        Ok(out)
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let name = name.as_str();
        let rows = self
            .shared
            .query(
                "force-releasing a lock",
                &self.shared.sql.revoke,
                &[
                    (&name, Type::TEXT),
                    (&self.shared.channel.as_str(), Type::TEXT),
                ],
            )
            .await?;
        let mut live = Vec::new();
        let mut lapsed = Vec::new();
        for row in rows {
            if let Some(h) = Holder::parse(row.get(0)) {
                if row.get::<_, bool>(1) {
                    live.push(h.info);
                } else {
                    lapsed.push(h.info);
                }
            }
        }
        tracing::warn!(name, revoked = live.len(), "lock force-released");
        let outcome = if !live.is_empty() {
            ForceOutcome::Revoked { previous: live }
        } else if !lapsed.is_empty() {
            ForceOutcome::Cleared { previous: lapsed }
        } else {
            ForceOutcome::NotHeld
        };
        Ok(ForceRelease::new(name, outcome))
    }
}

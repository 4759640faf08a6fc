//! Change feeds from `NOTIFY`: a backend's tables carry a statement-level
//! trigger that sends a notification on a channel of the schema's after
//! every write, **while someone watches**: watchers register in a small
//! table of their own (a lease, renewed), and the trigger sends only when
//! that table has a live row. So the writes of a deployment nobody
//! watches pay one index probe, not a `NOTIFY` (whose commit takes a
//! lock every notifying transaction shares).
//!
//! A write whose trigger looked just before a watcher's registration
//! committed sent nothing, yet may commit after the watcher's first read.
//! So a registration is complete only once every transaction in progress
//! when it committed has ended (`pg_xact_status`): such a writer had its
//! transaction id before its trigger looked (the trigger runs after the
//! write, and its probe takes a fresh snapshot), so it is among them.
//! Where one of them lasts longer than the call timeout (someone's long
//! transaction), the feed also wakes its watcher 10 s later.

use std::time::Duration;

use async_trait::async_trait;
use ff_traits::{ChangeFeed, Result};
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};
use tokio::time::Instant;

use std::sync::Arc;

use crate::{Database, Listener, Type, Wakeups};

/// How long a watcher's registration lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);

/// How often a live feed renews its registration.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// After a break: how long until listening and registering are tried
/// again (the feed wakes its watcher at each try, so its reads show the
/// outage and its end).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// After a registration whose older transactions did not all end within
/// the call timeout: when to wake the watcher anyway.
const LATE_FENCE: Duration = Duration::from_secs(10);

/// How often the end of the older transactions is looked for.
const FENCE_POLL: Duration = Duration::from_millis(5);

/// What one backend's feed listens on and registers in.
#[derive(Debug, Clone)]
pub struct FeedTables {
    /// The table watchers register in (`id text PRIMARY KEY, expires_at
    /// timestamptz NOT NULL`), in the database's schema.
    pub watchers: &'static str,
    /// The channel the trigger notifies (a plain identifier).
    pub channel: String,
    /// The feed's [`ChangeFeed::lapses`].
    pub lapses: bool,
}

impl Database {
    /// A change feed of the writes to a backend's tables (their trigger
    /// notifying `tables.channel` while `tables.watchers` has a live
    /// row); `Ok(None)` where notifications cannot reach this process:
    /// with `?wakeups=poll`, or when a `NOTIFY` sent through the pool does
    /// not come back on the `LISTEN` connection (a transaction-pooling
    /// pgbouncer and no `?listen_port=`). The watcher polls then.
    ///
    /// It returns once the registration is complete (see the module's
    /// doc), so the watcher's first read, made after, misses nothing.
    /// The feed keeps itself alive: when its connection ends, it wakes
    /// its watcher, then listens and registers again (waking it once
    /// more). Dropping it ends the registration.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the server cannot be reached.
    pub async fn change_feed(&self, tables: FeedTables) -> Result<Option<Box<dyn ChangeFeed>>> {
        if self.url().wakeups() == Wakeups::Poll {
            return Ok(None);
        }
        let schema = self.schema();
        let w = tables.watchers;
        let registrar = Arc::new(Registrar {
            db: self.clone(),
            id: ff_traits::identity::unique_id(),
            register: format!(
                "INSERT INTO {schema}.{w} (id, expires_at) \
                 VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond') \
                 ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at"
            ),
            prune: format!("DELETE FROM {schema}.{w} WHERE expires_at < clock_timestamp()"),
            unregister: format!("DELETE FROM {schema}.{w} WHERE id = $1"),
            channel: tables.channel,
        });
        let listening = registrar.listen().await?;
        if !registrar.proven(&listening).await? {
            tracing::warn!(endpoint = %self.endpoint(), channel = %registrar.channel, "a NOTIFY sent through the pool never came back on the LISTEN connection; ff serve polls this backend (behind a transaction-pooling pgbouncer, name the server's own port with ?listen_port=)");
            return Ok(None);
        }
        let complete = registrar.register_new().await?;
        let mut feed = NotifyFeed {
            registrar,
            lapses: tables.lapses,
            listening: Some(listening),
            renew_at: Instant::now() + RENEW_EVERY,
            fences: Vec::new(),
            recovering: None,
        };
        feed.registered(complete);
        Ok(Some(Box::new(feed)))
    }
}

/// A `LISTEN`ing connection and its receiver.
struct Listening {
    listener: Listener,
    rx: broadcast::Receiver<String>,
}

/// What listening and registering need (shared with a recovery task).
struct Registrar {
    db: Database,
    /// This watcher's row in the watchers' table.
    id: String,
    register: String,
    prune: String,
    unregister: String,
    channel: String,
}

impl Registrar {
    async fn listen(&self) -> Result<Listening> {
        let listener = self.db.listen(&self.channel).await?;
        let rx = listener.subscribe();
        Ok(Listening { listener, rx })
    }

    /// Whether a `NOTIFY` sent through the pool comes back on `listening`.
    async fn proven(&self, listening: &Listening) -> Result<bool> {
        let mut rx = listening.listener.subscribe();
        let probe = format!("probe {}", self.id);
        let what = "checking change notifications";
        let client = self.db.client(what).await?;
        self.db
            .bounded(
                what,
                client.query_typed(
                    "SELECT pg_notify($1, $2)::text",
                    &[
                        (&self.channel.as_str(), Type::TEXT),
                        (&probe.as_str(), Type::TEXT),
                    ],
                ),
            )
            .await?;
        let deadline = Instant::now() + self.db.settings().call_timeout;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(payload)) if payload == probe => return Ok(true),
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) | Err(_) => return Ok(false),
            }
        }
    }

    /// Renews the registration.
    async fn renew(&self) -> Result<()> {
        let what = "renewing a change watcher";
        let client = self.db.client(what).await?;
        let lease = crate::millis(LEASE);
        self.db
            .bounded(
                what,
                client.query_typed(
                    &self.register,
                    &[(&self.id.as_str(), Type::TEXT), (&lease, Type::INT8)],
                ),
            )
            .await?;
        Ok(())
    }

    /// Registers (clearing lapsed registrations) and waits until the
    /// writes older than the registration ended; whether they all did
    /// within the call timeout.
    async fn register_new(&self) -> Result<bool> {
        let what = "registering a change watcher";
        let client = self.db.client(what).await?;
        self.db
            .bounded(what, client.query_typed(&self.prune, &[]))
            .await?;
        drop(client);
        self.renew().await?;
        self.older_writers_ended().await
    }

    /// Waits (up to the call timeout) until every transaction in progress
    /// now has ended; whether they all did.
    async fn older_writers_ended(&self) -> Result<bool> {
        let what = "waiting for writes older than a change watcher";
        let client = self.db.client(what).await?;
        let rows = self
            .db
            .bounded(
                what,
                client.query_typed(
                    "SELECT array(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x)",
                    &[],
                ),
            )
            .await?;
        let mut older: Vec<String> = rows.first().map(|r| r.get(0)).unwrap_or_default();
        let deadline = Instant::now() + self.db.settings().call_timeout;
        while !older.is_empty() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(FENCE_POLL).await;
            let rows = self
                .db
                .bounded(
                    what,
                    client.query_typed(
                        "SELECT array(SELECT x FROM unnest($1::text[]) x \
                         WHERE pg_xact_status(x::xid8) = 'in progress')",
                        &[(&older, Type::TEXT_ARRAY)],
                    ),
                )
                .await?;
            older = rows.first().map(|r| r.get(0)).unwrap_or_default();
        }
        Ok(true)
    }

    /// After a break: at `at`, listens and registers again.
    async fn recover(self: Arc<Self>, at: Instant) -> Result<(Listening, bool)> {
        tokio::time::sleep_until(at).await;
        let listening = self.listen().await?;
        let complete = self.register_new().await?;
        Ok((listening, complete))
    }
}

/// One watcher's feed.
struct NotifyFeed {
    registrar: Arc<Registrar>,
    lapses: bool,
    /// `None` while broken.
    listening: Option<Listening>,
    renew_at: Instant,
    /// When to wake for writes that raced the last registration.
    fences: Vec<Instant>,
    /// While broken: listening and registering again, in a task of its
    /// own, so a caller that stops waiting (`changed` is raced against
    /// timers) does not start it over.
    recovering: Option<tokio::task::JoinHandle<Result<(Listening, bool)>>>,
}

impl std::fmt::Debug for NotifyFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyFeed")
            .field("channel", &self.registrar.channel)
            .field("listening", &self.listening.is_some())
            .finish_non_exhaustive()
    }
}

impl NotifyFeed {
    /// A registration was made: renewals from now; a late wake-up if
    /// writes older than it had not all ended.
    fn registered(&mut self, complete: bool) {
        let now = Instant::now();
        self.renew_at = now + RENEW_EVERY;
        if !complete {
            tracing::debug!(channel = %self.registrar.channel, "a transaction older than the watcher's registration is still running; waking the watcher again later");
            self.fences.push(now + LATE_FENCE);
        }
    }

    /// The connection ended or a renewal failed: recover after a pause.
    fn broke(&mut self, after: Duration) {
        self.listening = None;
        let registrar = Arc::clone(&self.registrar);
        self.recovering = Some(tokio::spawn(registrar.recover(Instant::now() + after)));
    }
}

impl Drop for NotifyFeed {
    fn drop(&mut self) {
        if let Some(task) = self.recovering.take() {
            task.abort();
        }
        // Ends the registration now rather than when its lease runs out,
        // so writes stop notifying for a watcher that is gone.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let registrar = Arc::clone(&self.registrar);
            rt.spawn(async move {
                let what = "ending a change watcher";
                if let Ok(client) = registrar.db.client(what).await {
                    let _ = registrar
                        .db
                        .bounded(
                            what,
                            client.query_typed(
                                &registrar.unregister,
                                &[(&registrar.id.as_str(), Type::TEXT)],
                            ),
                        )
                        .await;
                }
            });
        }
    }
}

#[async_trait]
impl ChangeFeed for NotifyFeed {
    async fn changed(&mut self) -> Result<()> {
        loop {
            if let Some(task) = &mut self.recovering {
                let outcome = task.await;
                self.recovering = None;
                match outcome {
                    Ok(Ok((listening, complete))) => {
                        tracing::debug!(channel = %self.registrar.channel, "listening for changes again");
                        self.listening = Some(listening);
                        self.registered(complete);
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(channel = %self.registrar.channel, error = %e, "cannot listen for changes yet");
                        self.broke(RETRY_AFTER);
                    }
                    Err(e) => {
                        tracing::debug!(channel = %self.registrar.channel, error = %e, "the task listening again ended");
                        self.broke(RETRY_AFTER);
                    }
                }
                // Either way a wake-up: the watcher's read shows what
                // changed in the gap, or that the server is still away.
                return Ok(());
            }
            let Some(listening) = &mut self.listening else {
                self.broke(Duration::ZERO);
                continue;
            };
            let fence = self.fences.first().copied();
            let fence_wait = async move {
                match fence {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = listening.rx.recv() => {
                    if matches!(got, Err(RecvError::Closed)) {
                        tracing::debug!(channel = %self.registrar.channel, "the LISTEN connection ended");
                        self.broke(RETRY_AFTER);
                        return Ok(());
                    }
                    // A burst of writes is one wake-up (the end of the
                    // connection, if it came too, is seen next time).
                    while matches!(listening.rx.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
                    return Ok(());
                }
                () = fence_wait => {
                    self.fences.remove(0);
                    return Ok(());
                }
                () = tokio::time::sleep_until(self.renew_at) => {
                    if let Err(e) = self.registrar.renew().await {
                        tracing::debug!(channel = %self.registrar.channel, error = %e, "renewing the change watcher failed");
                        self.broke(RETRY_AFTER);
                        return Ok(());
                    }
                    self.renew_at = Instant::now() + RENEW_EVERY;
                }
            }
        }
    }

    fn lapses(&self) -> bool {
        self.lapses
    }
}

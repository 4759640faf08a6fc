//! Change feeds from `NOTIFY`, sent **only while someone watches**.
//!
//! Each write of a backend's (a grant; a record's create, swap or removal)
//! passes a gate first: in the same transaction it takes the channel's
//! advisory lock, shared, for the transaction (`pg_try_advisory_xact_lock_shared`,
//! keyed by `hashtextextended(channel, 0)`). A watcher holds that lock
//! exclusively, at session level, on its `LISTEN` connection. So:
//!
//! * nobody watching: the gate's lock is free and the write sends nothing
//!   (one lock-table call, not a `NOTIFY`, whose commit takes a lock all
//!   notifying transactions share);
//! * someone watching: the gate's lock is refused and the write sends a
//!   `NOTIFY` on the channel;
//! * a watcher taking the lock waits out (by trying again) every write
//!   that passed the gate unwatched, since each holds the shared lock
//!   until it commits; once it holds the lock it wakes its own watcher,
//!   whose read then sees them all.
//!
//! Several watchers: one holds the lock; the others listen (writes notify
//! all of them) and try to take it every second, so when the holder goes
//! (its connection ends, and the lock with it) another takes it within a
//! second and wakes its watcher (covering the writes in between).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ff_traits::{ChangeFeed, Result};
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};
use tokio::time::Instant;

use crate::{Database, Listener, Type, Wakeups};

/// After a break: how long until listening is tried again (the feed wakes
/// its watcher at each try, so its reads show the outage and its end).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// While another watcher (or a write in progress) holds the gate: how
/// often this one tries to take it.
const TAKE_EVERY: Duration = Duration::from_secs(1);

/// What one backend's feed listens on.
#[derive(Debug, Clone)]
pub struct FeedChannel {
    /// The channel the backend's writes notify while watched (a plain
    /// identifier); its gate is keyed by `hashtextextended(channel, 0)`.
    pub channel: String,
    /// The feed's [`ChangeFeed::lapses`].
    pub lapses: bool,
}

impl Database {
    /// A change feed of a backend's writes, which notify `feed.channel`
    /// while watched (the module's doc says how); `Ok(None)` where
    /// notifications cannot reach this process: with `?wakeups=poll`, or
    /// when a `NOTIFY` sent through the pool does not come back on the
    /// `LISTEN` connection (a transaction-pooling pgbouncer and no
    /// `?listen_port=`). The watcher polls then.
    ///
    /// The feed keeps itself alive: when its connection ends, it wakes its
    /// watcher, then listens again (waking it once more).
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the server cannot be reached.
    pub async fn change_feed(&self, feed: FeedChannel) -> Result<Option<Box<dyn ChangeFeed>>> {
        if self.url().wakeups() == Wakeups::Poll {
            return Ok(None);
        }
        let watcher = Arc::new(Watcher {
            db: self.clone(),
            channel: feed.channel,
        });
        let listening = watcher.listen().await?;
        if !watcher.proven(&listening).await? {
            tracing::warn!(endpoint = %self.endpoint(), channel = %watcher.channel, "a NOTIFY sent through the pool never came back on the LISTEN connection; ff serve polls this backend (behind a transaction-pooling pgbouncer, name the server's own port with ?listen_port=)");
            return Ok(None);
        }
        // Held: writes from now on notify, and those before are committed
        // (the watcher's first read comes after this). Not held: another
        // watcher holds it (writes notify), or a write is in progress (it
        // is seen when the gate is taken, which wakes the watcher).
        let holds_gate = listening.take_gate(&watcher).await?;
        Ok(Some(Box::new(NotifyFeed {
            watcher,
            lapses: feed.lapses,
            listening: Some(listening),
            holds_gate,
            take_at: Instant::now() + TAKE_EVERY,
            recovering: None,
        })))
    }
}

/// A `LISTEN`ing connection and its receiver.
struct Listening {
    listener: Listener,
    rx: broadcast::Receiver<String>,
}

impl Listening {
    async fn take_gate(&self, watcher: &Watcher) -> Result<bool> {
        self.listener
            .try_advisory_lock(&watcher.db, &watcher.channel)
            .await
    }
}

/// What listening needs (shared with a recovery task).
struct Watcher {
    db: Database,
    channel: String,
}

impl Watcher {
    async fn listen(&self) -> Result<Listening> {
        let listener = self.db.listen(&self.channel).await?;
        let rx = listener.subscribe();
        Ok(Listening { listener, rx })
    }

    /// Whether a `NOTIFY` sent through the pool comes back on `listening`.
    async fn proven(&self, listening: &Listening) -> Result<bool> {
        let mut rx = listening.listener.subscribe();
        let probe = format!("\u{1f}probe {}", ff_traits::identity::unique_id());
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

    /// After a break: at `at`, listens again and tries to take the gate.
    async fn recover(self: Arc<Self>, at: Instant) -> Result<(Listening, bool)> {
        tokio::time::sleep_until(at).await;
        let listening = self.listen().await?;
        let holds_gate = listening.take_gate(&self).await?;
        Ok((listening, holds_gate))
    }
}

/// One watcher's feed.
struct NotifyFeed {
    watcher: Arc<Watcher>,
    lapses: bool,
    /// `None` while broken.
    listening: Option<Listening>,
    /// Whether this feed's connection holds the gate.
    holds_gate: bool,
    /// When not holding it: when to try again.
    take_at: Instant,
    /// While broken: listening again, in a task of its own, so a caller
    /// that stops waiting (`changed` is raced against timers) does not
    /// start it over.
    recovering: Option<tokio::task::JoinHandle<Result<(Listening, bool)>>>,
}

impl std::fmt::Debug for NotifyFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyFeed")
            .field("channel", &self.watcher.channel)
            .field("listening", &self.listening.is_some())
            .field("holds_gate", &self.holds_gate)
            .finish_non_exhaustive()
    }
}

impl NotifyFeed {
    /// The connection ended: listen again after a pause.
    fn broke(&mut self, after: Duration) {
        self.listening = None;
        self.holds_gate = false;
        let watcher = Arc::clone(&self.watcher);
        self.recovering = Some(tokio::spawn(watcher.recover(Instant::now() + after)));
    }
}

impl Drop for NotifyFeed {
    fn drop(&mut self) {
        if let Some(task) = self.recovering.take() {
            task.abort();
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
                    Ok(Ok((listening, holds_gate))) => {
                        tracing::debug!(channel = %self.watcher.channel, holds_gate, "listening for changes again");
                        self.listening = Some(listening);
                        self.holds_gate = holds_gate;
                        self.take_at = Instant::now() + TAKE_EVERY;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(channel = %self.watcher.channel, error = %e, "cannot listen for changes yet");
                        self.broke(RETRY_AFTER);
                    }
                    Err(e) => {
                        tracing::debug!(channel = %self.watcher.channel, error = %e, "the task listening again ended");
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
            let take_at = (!self.holds_gate).then_some(self.take_at);
            let take_wait = async move {
                match take_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = listening.rx.recv() => {
                    if matches!(got, Err(RecvError::Closed)) {
                        tracing::debug!(channel = %self.watcher.channel, "the LISTEN connection ended");
                        self.broke(RETRY_AFTER);
                        return Ok(());
                    }
                    // A burst of writes is one wake-up (the end of the
                    // connection, if it came too, is seen next time).
                    while matches!(listening.rx.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
                    return Ok(());
                }
                () = take_wait => {
                    self.take_at = Instant::now() + TAKE_EVERY;
                    match listening.take_gate(&self.watcher).await {
                        // Taken: the writes that went by unwatched are
                        // committed; the watcher reads them now.
                        Ok(true) => {
                            self.holds_gate = true;
                            return Ok(());
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::debug!(channel = %self.watcher.channel, error = %e, "cannot take the watchers' lock");
                            self.broke(RETRY_AFTER);
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    fn lapses(&self) -> bool {
        self.lapses
    }
}

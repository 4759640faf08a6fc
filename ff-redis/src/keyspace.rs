//! Change feeds from Redis keyspace notifications: the server publishes
//! an event for every write to a key (`__keyspace@<db>__:<key>`), made by
//! any client, when its `notify-keyspace-events` setting asks for them.
//! A watcher subscribed to a backend's prefix then reads when something
//! was written, and an idle server costs it nothing.
//!
//! The setting belongs to the server's operator: ForgeFlow reads it and
//! never changes it. Without the events a backend writes, or where it
//! cannot be read (`CONFIG` renamed or refused by an ACL), or on a
//! cluster (each node publishes only its own keys' events), there is no
//! feed and watchers poll, as before.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt as _, StreamExt as _};
use redis::aio::PubSubStream;
use tokio::time::Instant;

use ff_traits::{ChangeFeed, Result};

use crate::{Conn, Connection, backend_error, escape_glob, redact};

/// The event classes `A` stands for in `notify-keyspace-events`.
const ALL_CLASSES: &str = "g$lshzxetd";

/// How long after a subscription broke it is made again; until then the
/// feed wakes its watcher this often, so its reads show the outage and
/// its end.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// How often a live feed reads the server's setting again: an operator
/// who turns the events off makes the feed break (and its watcher poll)
/// within this.
const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// Whether a `notify-keyspace-events` value publishes keyspace events
/// (`K`) of each class in `classes`.
///
/// ```
/// assert!(ff_redis::notifications_cover("AK", "g$hx"));
/// assert!(ff_redis::notifications_cover("Kg$hxe", "g$hx"));
/// assert!(!ff_redis::notifications_cover("AE", "g$hx")); // keyevent only
/// assert!(!ff_redis::notifications_cover("Kg$", "g$hx"));
/// assert!(!ff_redis::notifications_cover("", "g"));
/// ```
#[must_use]
pub fn notifications_cover(setting: &str, classes: &str) -> bool {
    let all = setting.contains('A');
    setting.contains('K')
        && classes
            .chars()
            .all(|c| setting.contains(c) || (all && ALL_CLASSES.contains(c)))
}

impl Connection {
    /// A change feed of every write to a key starting with `prefix`, from
    /// the server's keyspace notifications; `Ok(None)` where there is
    /// none to be had (the module's doc says when), so the caller polls.
    ///
    /// `classes` are the event classes of the commands the backend writes
    /// with (`g` generic: `DEL`, `EXPIRE`; `$` strings; `h` hashes; `x`
    /// expiry; `e` eviction); the server must publish all of them, or a
    /// change could go unannounced. Events named in `ignored` wake no one
    /// (a lock's `expire`: a renewal, which a feed whose state lapses may
    /// leave unannounced). `lapses` is the feed's [`ChangeFeed::lapses`].
    ///
    /// The feed keeps itself alive: when its subscription breaks (a
    /// restart, a failover, a killed connection) it wakes its watcher, and
    /// subscribes again (waking it once more: what changed in between is
    /// read then). It breaks for good only when the server stops
    /// publishing the events.
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the server cannot be reached to
    /// subscribe.
    pub async fn keyspace_feed(
        &self,
        prefix: &str,
        classes: &'static str,
        ignored: &'static [&'static str],
        lapses: bool,
    ) -> Result<Option<Box<dyn ChangeFeed>>> {
        let db = match self.manager() {
            Conn::Cluster(_) => return Ok(None),
            Conn::Node(c) => redis::aio::ConnectionLike::get_db(&c),
        };
        let subscriber = Arc::new(Subscriber {
            redis: self.clone(),
            pattern: format!("__keyspace@{db}__:{}*", escape_glob(prefix)),
            classes,
            ignored,
        });
        match subscriber.setting_covers().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(url = %redact(&self.inner.url), classes, "the server's notify-keyspace-events does not publish the events this backend writes (K and {classes}); polling");
                return Ok(None);
            }
            Err(e) => {
                tracing::info!(url = %redact(&self.inner.url), error = %e, "cannot read the server's notify-keyspace-events; polling");
                return Ok(None);
            }
        }
        let stream = subscriber.subscribe().await?;
        Ok(Some(Box::new(KeyspaceFeed {
            subscriber,
            lapses,
            stream: Some(stream),
            checked: Instant::now(),
            resubscribing: None,
        })))
    }
}

/// What subscribing needs (shared with a task subscribing again).
struct Subscriber {
    redis: Connection,
    /// `__keyspace@<db>__:<prefix, glob-escaped>*`
    pattern: String,
    classes: &'static str,
    /// Events that wake no one.
    ignored: &'static [&'static str],
}

/// How an attempt to subscribe again ended.
enum Again {
    Subscribed(PubSubStream),
    /// The server no longer publishes the events.
    TurnedOff,
    /// Not yet (the server is away).
    Failed(ff_traits::Error),
}

impl Subscriber {
    /// Whether the server publishes the events this feed needs.
    async fn setting_covers(&self) -> Result<bool> {
        let mut conn = self.redis.manager();
        let (_, setting): (String, String) = self
            .redis
            .call("reading notify-keyspace-events", async {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("notify-keyspace-events")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(notifications_cover(&setting, self.classes))
    }

    async fn subscribe(&self) -> Result<PubSubStream> {
        let mut pubsub = self
            .redis
            .call(
                "subscribing to keyspace events",
                self.redis.client().get_async_pubsub(),
            )
            .await?;
        self.redis
            .call(
                "subscribing to keyspace events",
                pubsub.psubscribe(&self.pattern),
            )
            .await?;
        Ok(pubsub.into_on_message())
    }

    /// After a break: at `at`, checks the setting and subscribes again.
    async fn again(self: Arc<Self>, at: Instant) -> Again {
        tokio::time::sleep_until(at).await;
        match self.setting_covers().await {
            Ok(false) => Again::TurnedOff,
            Ok(true) => match self.subscribe().await {
                Ok(stream) => Again::Subscribed(stream),
                Err(e) => Again::Failed(e),
            },
            Err(e) => Again::Failed(e),
        }
    }

    fn turned_off(&self) -> ff_traits::Error {
        backend_error(format!(
            "the server at {} stopped publishing the keyspace events this backend writes \
             (notify-keyspace-events needs K and {}); polling instead",
            redact(&self.redis.inner.url),
            self.classes
        ))
    }
}

/// A subscription to one prefix's keyspace events.
struct KeyspaceFeed {
    subscriber: Arc<Subscriber>,
    lapses: bool,
    /// `None` while the subscription is broken.
    stream: Option<PubSubStream>,
    /// When the server's setting was last read.
    checked: Instant,
    /// While broken: subscribing again, in a task of its own, so a caller
    /// that stops waiting (`changed` is raced against timers) does not
    /// start it over.
    resubscribing: Option<tokio::task::JoinHandle<Again>>,
}

impl std::fmt::Debug for KeyspaceFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyspaceFeed")
            .field("pattern", &self.subscriber.pattern)
            .field("subscribed", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl KeyspaceFeed {
    fn broke(&mut self, after: Duration) {
        self.stream = None;
        let subscriber = Arc::clone(&self.subscriber);
        self.resubscribing = Some(tokio::spawn(subscriber.again(Instant::now() + after)));
    }
}

impl Drop for KeyspaceFeed {
    fn drop(&mut self) {
        if let Some(task) = self.resubscribing.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl ChangeFeed for KeyspaceFeed {
    async fn changed(&mut self) -> Result<()> {
        loop {
            if let Some(task) = &mut self.resubscribing {
                let again = task.await;
                self.resubscribing = None;
                let pattern = &self.subscriber.pattern;
                match again {
                    Ok(Again::Subscribed(stream)) => {
                        tracing::debug!(%pattern, "keyspace subscription made again");
                        self.stream = Some(stream);
                        self.checked = Instant::now();
                    }
                    Ok(Again::TurnedOff) => return Err(self.subscriber.turned_off()),
                    Ok(Again::Failed(e)) => {
                        tracing::debug!(%pattern, error = %e, "cannot subscribe to keyspace events yet");
                        self.broke(RESUBSCRIBE_AFTER);
                    }
                    Err(e) => {
                        tracing::debug!(%pattern, error = %e, "the task subscribing again ended");
                        self.broke(RESUBSCRIBE_AFTER);
                    }
                }
                // Either way a wake-up: the watcher's read shows what
                // changed in the gap, or that the server is still away.
                return Ok(());
            }
            let Some(stream) = &mut self.stream else {
                self.broke(Duration::ZERO);
                continue;
            };
            let recheck = self.checked + RECHECK_EVERY;
            tokio::select! {
                event = stream.next() => {
                    let Some(event) = event else {
                        tracing::debug!(pattern = %self.subscriber.pattern, "the keyspace subscription closed");
                        self.broke(RESUBSCRIBE_AFTER);
                        return Ok(());
                    };
                    // A burst of writes is one wake-up: the watcher reads
                    // once for everything already here.
                    let ignored = self.subscriber.ignored;
                    let wakes = |e: &redis::Msg| !ignored.iter().any(|i| e.get_payload_bytes() == i.as_bytes());
                    let mut woke = wakes(&event);
                    while let Some(Some(e)) = stream.next().now_or_never() {
                        woke |= wakes(&e);
                    }
                    if woke {
                        return Ok(());
                    }
                }
                () = tokio::time::sleep_until(recheck) => {
                    let covers = self.subscriber.setting_covers().await;
                    self.checked = Instant::now();
                    match covers {
                        Ok(true) => {}
                        Ok(false) => return Err(self.subscriber.turned_off()),
                        // Unreachable: the subscription's end says so.
                        Err(e) => tracing::debug!(error = %e, "cannot read notify-keyspace-events"),
                    }
                }
            }
        }
    }

    fn lapses(&self) -> bool {
        self.lapses
    }
}

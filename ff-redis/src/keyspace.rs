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
    /// change could go unannounced. `lapses` is the feed's
    /// [`ChangeFeed::lapses`].
    ///
    /// The feed keeps itself alive: when its subscription breaks (a
    /// restart, a failover, a killed connection) it wakes its watcher, and
    /// subscribes again (waking once more: what changed in between is
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
        lapses: bool,
    ) -> Result<Option<Box<dyn ChangeFeed>>> {
        let db = match self.manager() {
            Conn::Cluster(_) => return Ok(None),
            Conn::Node(c) => redis::aio::ConnectionLike::get_db(&c),
        };
        let mut feed = KeyspaceFeed {
            redis: self.clone(),
            pattern: format!("__keyspace@{db}__:{}*", escape_glob(prefix)),
            classes,
            lapses,
            stream: None,
            checked: Instant::now(),
            resubscribe_at: None,
        };
        match feed.setting_covers().await {
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
        feed.stream = Some(feed.subscribe().await?);
        Ok(Some(Box::new(feed)))
    }
}

/// A subscription to one prefix's keyspace events.
struct KeyspaceFeed {
    redis: Connection,
    /// `__keyspace@<db>__:<prefix, glob-escaped>*`
    pattern: String,
    classes: &'static str,
    lapses: bool,
    /// `None` while the subscription is broken.
    stream: Option<PubSubStream>,
    /// When the server's setting was last read.
    checked: Instant,
    /// While broken: when to subscribe again.
    resubscribe_at: Option<Instant>,
}

impl std::fmt::Debug for KeyspaceFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyspaceFeed")
            .field("pattern", &self.pattern)
            .field("subscribed", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl KeyspaceFeed {
    /// Whether the server publishes the events this feed needs.
    async fn setting_covers(&mut self) -> Result<bool> {
        self.checked = Instant::now();
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

    fn turned_off(&self) -> ff_traits::Error {
        backend_error(format!(
            "the server at {} stopped publishing the keyspace events this backend writes \
             (notify-keyspace-events needs K and {}); polling instead",
            redact(&self.redis.inner.url),
            self.classes
        ))
    }

    /// Subscribes again after a break; a wake-up either way (the caller's
    /// read then shows what changed in the gap, or that the server is
    /// still away).
    async fn resubscribe(&mut self, at: Instant) -> Result<()> {
        tokio::time::sleep_until(at).await;
        match self.setting_covers().await {
            Ok(false) => return Err(self.turned_off()),
            Ok(true) => match self.subscribe().await {
                Ok(stream) => {
                    tracing::debug!(pattern = %self.pattern, "keyspace subscription made again");
                    self.stream = Some(stream);
                    self.resubscribe_at = None;
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(pattern = %self.pattern, error = %e, "cannot subscribe to keyspace events yet");
                }
            },
            Err(e) => {
                tracing::debug!(pattern = %self.pattern, error = %e, "cannot reach the server to subscribe again");
            }
        }
        self.resubscribe_at = Some(Instant::now() + RESUBSCRIBE_AFTER);
        Ok(())
    }
}

#[async_trait]
impl ChangeFeed for KeyspaceFeed {
    async fn changed(&mut self) -> Result<()> {
        loop {
            if let Some(at) = self.resubscribe_at {
                return self.resubscribe(at).await;
            }
            let Some(stream) = &mut self.stream else {
                self.resubscribe_at = Some(Instant::now());
                continue;
            };
            let recheck = self.checked + RECHECK_EVERY;
            tokio::select! {
                event = stream.next() => {
                    if event.is_none() {
                        tracing::debug!(pattern = %self.pattern, "the keyspace subscription closed");
                        self.stream = None;
                        self.resubscribe_at = Some(Instant::now() + RESUBSCRIBE_AFTER);
                        return Ok(());
                    }
                    // A burst of writes is one wake-up: the watcher reads
                    // once for everything already here.
                    while let Some(Some(_)) = stream.next().now_or_never() {}
                    return Ok(());
                }
                () = tokio::time::sleep_until(recheck) => {
                    match self.setting_covers().await {
                        Ok(true) => {}
                        Ok(false) => return Err(self.turned_off()),
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

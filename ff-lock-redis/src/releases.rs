//! A waiter's subscription to one lock's release channel, kept alive
//! across the server going away (a restart, a failover, a killed client
//! connection): when it breaks it is made again, on whichever node calls
//! go to now.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::PubSubStream;

use crate::Shared;

/// How often a broken subscription is made again at most.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(100);

/// The release messages of one lock, while waiting for it.
pub(crate) struct Releases<'a> {
    shared: &'a Shared,
    channel: String,
    stream: Option<PubSubStream>,
    /// When subscribing was last tried.
    tried: Option<Instant>,
}

impl<'a> Releases<'a> {
    pub(crate) fn new(shared: &'a Shared, name: &str) -> Self {
        Self {
            shared,
            channel: shared.channel(name),
            stream: None,
            tried: None,
        }
    }

    /// Subscribes (a failure leaves the wait on its timed retries);
    /// whether the subscription is now there.
    pub(crate) async fn subscribe(&mut self) -> bool {
        self.tried = Some(Instant::now());
        let subscribed = async {
            let mut pubsub = self
                .shared
                .call(
                    "subscribing to releases",
                    self.shared.redis.client().get_async_pubsub(),
                )
                .await?;
            self.shared
                .call("subscribing to releases", pubsub.subscribe(&self.channel))
                .await?;
            Ok::<_, ff_traits::Error>(pubsub.into_on_message())
        }
        .await;
        match subscribed {
            Ok(stream) => self.stream = Some(stream),
            Err(e) => {
                tracing::debug!(channel = %self.channel, error = %e, "cannot subscribe to releases; retrying on timers");
                self.stream = None;
            }
        }
        self.stream.is_some()
    }

    /// Waits until `until` or a release; whether the lock may have been
    /// released: a message came, or the subscription was just made again
    /// (a release in the gap went unheard, so the caller must look).
    pub(crate) async fn wait(&mut self, until: Instant) -> bool {
        if self.stream.is_none() {
            let next_try = self
                .tried
                .map_or_else(Instant::now, |t| t + RESUBSCRIBE_AFTER);
            if next_try > until {
                tokio::time::sleep_until(until.into()).await;
                return false;
            }
            tokio::time::sleep_until(next_try.into()).await;
            return self.subscribe().await;
        }
        let Some(stream) = &mut self.stream else {
            return false;
        };
        match tokio::time::timeout_at(until.into(), stream.next()).await {
            Ok(Some(_)) => true,
            // The connection dropped: subscribe again on the next wait.
            Ok(None) => {
                tracing::debug!(channel = %self.channel, "the release subscription closed");
                self.stream = None;
                false
            }
            Err(_) => false,
        }
    }
}

//! Change feeds: how a backend tells a watcher (`ff serve`) that what it
//! reads may have changed, so the watcher reads when something happened
//! instead of on a clock.
//!
//! A feed is optional: [`LockProvider::watch`](crate::LockProvider::watch)
//! and [`IdempotencyStorage::watch`](crate::IdempotencyStorage::watch)
//! return `Ok(None)` by default, and a watcher then polls, as it must for
//! any backend that cannot notify.

use std::fmt;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Wake-ups from one backend: something its reads return may have changed.
///
/// # Contract
///
/// * **No change goes unannounced.** A change that reads would show, made
///   by any process or host after the feed was returned, is followed by a
///   wake-up: a call to [`changed`](Self::changed) in progress or the next
///   one returns.
/// * **Wake-ups may be spurious and may coalesce.** A watcher reads after a
///   wake-up and compares; many changes may come as one wake-up.
/// * **Time passing is not a change.** A lease that lapses without anybody
///   writing produces no wake-up: watchers judge expiry from the
///   `expires_at` they last read. A feed whose state lapses
///   ([`lapses`](Self::lapses)) may also leave renewals unannounced (a
///   holder extending its own lease moves only its `expires_at`): its
///   watcher reads now and then anyway.
/// * **A broken feed says so.** When the backend can no longer promise the
///   first point (a watch overflowed, a subscription dropped), `changed`
///   returns an error, and the watcher goes back to polling.
#[async_trait]
pub trait ChangeFeed: Send + fmt::Debug {
    /// Waits for the next wake-up.
    ///
    /// # Errors
    /// [`Error::Backend`] when the feed broke and can no longer promise
    /// that no change goes unannounced.
    async fn changed(&mut self) -> Result<()>;

    /// Whether the backend's state can change with nobody writing: a
    /// lease that lapses. Then a watcher also reads now and then (every
    /// few seconds), for what no wake-up announces. `false` when every
    /// change is announced, so an idle watcher reads nothing. The default,
    /// `true`, is the safe answer.
    fn lapses(&self) -> bool {
        true
    }
}

/// The sending side of in-process change feeds: a backend keeps one, calls
/// [`notify`](Self::notify) on every change, and hands out
/// [`feed`](Self::feed)s. Wake-ups coalesce: a feed that has not looked
/// since several notifications wakes once.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ff_traits::{ChangeFeed as _, ChangeSignal};
/// let signal = ChangeSignal::new();
/// let mut feed = signal.feed();
/// signal.notify();
/// signal.notify();
/// feed.changed().await?; // once for both
/// # Ok::<(), ff_traits::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ChangeSignal {
    sender: watch::Sender<u64>,
}

impl Default for ChangeSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeSignal {
    /// A signal with no feeds yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(0),
        }
    }

    /// Wakes every feed (once, however many notifications it missed).
    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A feed woken by every later [`notify`](Self::notify), for a
    /// backend whose state may lapse with time ([`ChangeFeed::lapses`]).
    #[must_use]
    pub fn feed(&self) -> Box<dyn ChangeFeed> {
        self.feed_of(true)
    }

    /// A feed woken by every later [`notify`](Self::notify), saying
    /// whether the backend's state may lapse with time
    /// ([`ChangeFeed::lapses`]).
    #[must_use]
    pub fn feed_of(&self, lapses: bool) -> Box<dyn ChangeFeed> {
        Box::new(SignalFeed {
            receiver: self.sender.subscribe(),
            lapses,
        })
    }
}

/// A [`ChangeSignal`]'s feed.
#[derive(Debug)]
struct SignalFeed {
    receiver: watch::Receiver<u64>,
    lapses: bool,
}

#[async_trait]
impl ChangeFeed for SignalFeed {
    async fn changed(&mut self) -> Result<()> {
        // The sender lives as long as the backend that owns it; it is gone
        // only when nothing more can change through it.
        self.receiver.changed().await.map_err(|_| Error::Backend {
            backend: "change feed".into(),
            message: "the backend that signalled changes is gone".into(),
            source: None,
        })
    }

    fn lapses(&self) -> bool {
        self.lapses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_feed_wakes_once_for_many_notifications_and_only_after_one() {
        let signal = ChangeSignal::new();
        let mut feed = signal.feed();
        // Nothing yet: no wake-up.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), feed.changed())
                .await
                .is_err()
        );
        signal.notify();
        signal.notify();
        feed.changed().await.unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), feed.changed())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_feed_whose_signal_is_gone_says_so() {
        let signal = ChangeSignal::new();
        let mut feed = signal.feed();
        drop(signal);
        assert!(feed.changed().await.is_err());
    }
}

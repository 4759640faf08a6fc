//! When a watch task reads its backend again: on a wake-up from the
//! backend's [`ChangeFeed`] when it offers one, else on a clock.

use std::time::Duration;

use ff_traits::ChangeFeed;
use tokio::time::Instant;

/// Reads take at most 1/this of the time: the next read waits this many
/// times as long as the last one took, from its start. With a feed, "took"
/// is the CPU the process spent meanwhile (a read of a network backend
/// mostly waits for round trips, which cost no core: spaced by its length,
/// a read of 1,000 Redis locks held every lock event back by a quarter of
/// a second); polled, it is the read's length, since a poll reads whether
/// or not anything changed, and the backend is spared too.
const READ_SHARE_INVERSE: u32 = 5;

/// The pace of one watch task's reads.
#[derive(Debug)]
pub(crate) struct Pace {
    what: &'static str,
    feed: Option<Box<dyn ChangeFeed>>,
    /// At most one read per this (and, without a feed, one per this).
    every: Duration,
    /// With a feed whose state lapses with time, a read at least this
    /// often anyway: for what nobody writes (a lease that lapses).
    settle: Duration,
    last: Option<Instant>,
    /// The process's CPU time when the last read began, where known.
    cpu_at_last: Option<Duration>,
    /// How long the last read took (see [`read_done`](Self::read_done)).
    took: Duration,
    /// The CPU the process spent during the last read (its length where
    /// the platform does not tell).
    took_cpu: Duration,
}

impl Pace {
    /// A pace for `what` (for logs), with `feed` if the backend offered one
    /// (`Err`: it offered one and could not start it; logged, then polled).
    pub(crate) fn new(
        what: &'static str,
        feed: ff_traits::Result<Option<Box<dyn ChangeFeed>>>,
        every: Duration,
        settle: Duration,
    ) -> Self {
        let feed = match feed {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(what, error = %e, "no change feed; polling");
                None
            }
        };
        tracing::debug!(what, notified = feed.is_some(), "watching");
        Self {
            what,
            feed,
            every,
            settle,
            last: None,
            cpu_at_last: None,
            took: Duration::ZERO,
            took_cpu: Duration::ZERO,
        }
    }

    /// A read begins that [`next`](Self::next) did not wait for (one due
    /// on a clock of the caller's): it counts as the last read, so its
    /// length spaces the next one too.
    pub(crate) fn read_starts(&mut self) {
        self.last = Some(Instant::now());
        self.cpu_at_last = process_cpu();
    }

    /// The read [`next`](Self::next) allowed is over: its length spaces
    /// the next one.
    pub(crate) fn read_done(&mut self) {
        if let Some(last) = self.last {
            self.took = last.elapsed();
            self.took_cpu = match (self.cpu_at_last, process_cpu()) {
                (Some(before), Some(now)) => now.saturating_sub(before),
                _ => self.took,
            };
        }
    }

    /// Whether reads follow a feed (else a clock).
    pub(crate) fn notified(&self) -> bool {
        self.feed.is_some()
    }

    /// Waits until the next read is due: at once the first time; then no
    /// sooner than `every` after the last (nor sooner than five times as
    /// long as the last read took), and, with a feed, when it wakes
    /// (a change during the wait is kept by the feed, so none is missed)
    /// or, if the feed's state lapses with time, `settle` after the last
    /// read.
    pub(crate) async fn next(&mut self) {
        if let Some(last) = self.last {
            // Reads get at most a fifth of the time, so a backend that is
            // slow to read (a scan of 100,000 records) and changes all the
            // time costs a bounded share of a core, not all of it.
            let took = if self.feed.is_some() {
                self.took_cpu
            } else {
                self.took
            };
            let spacing = self.every.max(took.saturating_mul(READ_SHARE_INVERSE));
            tokio::time::sleep_until(last + spacing).await;
            if let Some(feed) = &mut self.feed {
                // Only state that lapses with time needs reads nobody
                // announced; otherwise an idle watcher reads nothing.
                let settle_at = feed.lapses().then(|| last + self.settle.max(self.every));
                let settle = async move {
                    match settle_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    woke = feed.changed() => if let Err(e) = woke {
                        tracing::warn!(what = self.what, error = %e, "the change feed broke; polling from now on");
                        self.feed = None;
                    },
                    () = settle => {}
                }
            }
        }
        self.read_starts();
    }
}

/// The CPU time this process has used (user and system, all threads),
/// where the platform tells it without unsafe code.
fn process_cpu() -> Option<Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let secs = u64::try_from(t.tv_sec).ok()?;
        let nanos = u32::try_from(t.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff_traits::ChangeSignal;

    const EVERY: Duration = Duration::from_millis(100);
    const SETTLE: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn without_a_feed_it_reads_every_interval() {
        let mut pace = Pace::new("test", Ok(None), EVERY, SETTLE);
        let start = Instant::now();
        pace.next().await;
        pace.next().await;
        pace.next().await;
        assert_eq!(start.elapsed(), 2 * EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_feed_it_waits_for_a_change_or_the_settle_interval() {
        let signal = ChangeSignal::new();
        let mut pace = Pace::new("test", Ok(Some(signal.feed())), EVERY, SETTLE);
        let start = Instant::now();
        pace.next().await;
        // Nothing changes: the next read is the settling one.
        pace.next().await;
        assert_eq!(start.elapsed(), SETTLE);
        // A change soon after a read waits out the interval, no more.
        let read = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        signal.notify();
        pace.next().await;
        assert_eq!(read.elapsed(), EVERY);
        // A change long after: read at once.
        let read = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        signal.notify();
        pace.next().await;
        assert_eq!(read.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_that_never_lapses_is_read_only_when_it_wakes() {
        let signal = ChangeSignal::new();
        let mut pace = Pace::new("test", Ok(Some(signal.feed_of(false))), EVERY, SETTLE);
        pace.next().await;
        let read = Instant::now();
        let wait = tokio::time::timeout(10 * SETTLE, pace.next()).await;
        assert!(wait.is_err(), "read with nothing changed");
        signal.notify();
        pace.next().await;
        assert_eq!(read.elapsed(), 10 * SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_reads_are_spaced_to_a_fifth_of_the_time() {
        let mut pace = Pace::new("test", Ok(None), EVERY, SETTLE);
        pace.next().await;
        let read = Instant::now();
        // The read takes a second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        pace.read_done();
        pace.next().await;
        assert_eq!(read.elapsed(), Duration::from_secs(5));
        // Quick again: back to the interval.
        let read = Instant::now();
        pace.read_done();
        pace.next().await;
        assert_eq!(read.elapsed(), EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_feed_reads_are_spaced_by_the_cpu_they_cost() {
        let Some(start_cpu) = process_cpu() else {
            return; // a platform that does not tell: spaced by length
        };
        let signal = ChangeSignal::new();
        let mut pace = Pace::new("test", Ok(Some(signal.feed())), EVERY, SETTLE);
        pace.next().await;
        // A read of a second that only waits (round trips to a server):
        // a change is read as soon as it is over, not five seconds after
        // it began.
        let read = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        pace.read_done();
        signal.notify();
        pace.next().await;
        assert_eq!(read.elapsed(), Duration::from_secs(1));
        // A read that keeps a core busy for 200 ms: a second at least.
        let read = Instant::now();
        let burning = process_cpu().unwrap_or(start_cpu);
        while process_cpu().unwrap_or(burning).saturating_sub(burning) < Duration::from_millis(200)
        {
            std::hint::black_box(0u64);
        }
        pace.read_done();
        signal.notify();
        pace.next().await;
        assert!(
            read.elapsed() >= Duration::from_secs(1),
            "{:?}",
            read.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_feed_falls_back_to_polling() {
        let signal = ChangeSignal::new();
        let mut pace = Pace::new("test", Ok(Some(signal.feed())), EVERY, SETTLE);
        pace.next().await;
        drop(signal);
        pace.next().await;
        assert!(!pace.notified());
        let read = Instant::now();
        pace.next().await;
        assert_eq!(read.elapsed(), EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_that_cannot_start_is_polled() {
        let failed = Err(ff_traits::Error::invalid_input("feed", "test"));
        let pace = Pace::new("test", failed, EVERY, SETTLE);
        assert!(!pace.notified());
    }
}

//! Lock waits as the recorder sees them, kept where the alert rules can
//! read their quantiles: a recorder layer that hands every
//! `ff_lock_wait_seconds` sample to the Prometheus recorder and to a
//! rolling summary per label set, over the same window the exporter's own
//! summaries use. The rules read numbers, not the rendered text.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::storage::Summary;

/// How long a sample counts: the exporter's summaries' window (three
/// buckets of 20 s).
const BUCKET: Duration = Duration::from_secs(20);
const BUCKETS: usize = 3;

/// The samples of one label set over the last [`BUCKETS`] × [`BUCKET`].
#[derive(Default)]
struct Window {
    /// Oldest first, each with when it began.
    buckets: Mutex<VecDeque<(Instant, Summary)>>,
}

impl Window {
    fn add(&self, value: f64, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets
            .back()
            .is_none_or(|(began, _)| now.duration_since(*began) >= BUCKET)
        {
            buckets.push_back((now, Summary::with_defaults()));
        }
        while buckets.len() > BUCKETS {
            buckets.pop_front();
        }
        if let Some((_, summary)) = buckets.back_mut() {
            summary.add(value);
        }
    }

    fn quantile(&self, q: f64, now: Instant) -> Option<f64> {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut merged = Summary::with_defaults();
        for (began, summary) in buckets.iter() {
            if now.duration_since(*began) < BUCKET * u32::try_from(BUCKETS).unwrap_or(3) {
                // Summaries made with the same settings always merge.
                let _ = merged.merge(summary);
            }
        }
        merged.quantile(q).filter(|v| v.is_finite())
    }
}

/// The lock-wait windows of every label set the recorder was asked for.
#[derive(Default)]
pub(crate) struct LockWaits {
    windows: Mutex<HashMap<Key, Arc<Window>>>,
}

impl LockWaits {
    fn window(&self, key: &Key) -> Arc<Window> {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// The `q` quantile of lock waits, in seconds: the largest over label
    /// sets (one slow backend is not averaged away), or `None` without
    /// samples in the window.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let now = Instant::now();
        let windows: Vec<Arc<Window>> = self
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        windows
            .iter()
            .filter_map(|w| w.quantile(q, now))
            .reduce(f64::max)
    }
}

/// A recorder that forwards everything to `inner`, and lock waits to
/// [`LockWaits`] too.
pub(crate) struct TeeWaits<R> {
    pub(crate) inner: R,
    pub(crate) waits: Arc<LockWaits>,
}

struct TeeHistogram {
    inner: Histogram,
    window: Arc<Window>,
}

impl HistogramFn for TeeHistogram {
    fn record(&self, value: f64) {
        self.inner.record(value);
        self.window.add(value, Instant::now());
    }
}

impl<R: Recorder> Recorder for TeeWaits<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.inner.register_histogram(key, metadata);
        if key.name() != ff_metrics::LOCK_WAIT_SECONDS {
            return inner;
        }
        Histogram::from_arc(Arc::new(TeeHistogram {
            inner,
            window: self.waits.window(key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(backend: &'static str) -> Key {
        Key::from_parts(
            ff_metrics::LOCK_WAIT_SECONDS,
            vec![metrics::Label::new("backend", backend)],
        )
    }

    #[test]
    fn the_largest_percentile_over_label_sets_is_read() {
        let waits = LockWaits::default();
        let now = Instant::now();
        let file = waits.window(&key("file"));
        let redis = waits.window(&key("redis"));
        for i in 0..100 {
            file.add(f64::from(i) / 100.0, now);
            redis.add(1.5, now);
        }
        let p95 = waits.quantile(0.95).expect("samples");
        assert!((p95 - 1.5).abs() < 0.05, "p95 {p95}");
        assert_eq!(LockWaits::default().quantile(0.95), None);
    }

    #[test]
    fn samples_older_than_the_window_no_longer_count() {
        let window = Window::default();
        let long_ago = Instant::now();
        window.add(9.0, long_ago);
        let later = long_ago + BUCKET * 4;
        assert_eq!(window.quantile(0.95, later), None);
        window.add(0.5, later);
        let p95 = window.quantile(0.95, later).expect("a sample");
        assert!((p95 - 0.5).abs() < 0.05, "p95 {p95}");
    }

    #[test]
    fn other_histograms_pass_through_untouched() {
        let waits = Arc::new(LockWaits::default());
        let tee = TeeWaits {
            inner: metrics::NoopRecorder,
            waits: waits.clone(),
        };
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        tee.register_histogram(&Key::from_name("ff_lock_hold_seconds"), &meta)
            .record(3.0);
        assert_eq!(waits.quantile(0.5), None);
        tee.register_histogram(&key("file"), &meta).record(2.0);
        let p50 = waits.quantile(0.5).expect("a wait");
        assert!((p50 - 2.0).abs() < 0.05, "p50 {p50}");
    }
}

//! What the benches share: the median of a run's samples, and how a
//! duration is printed beside its baseline.

use std::time::Duration;

/// The median of `samples` (the upper one of an even count), sorting them
/// in place.
///
/// # Panics
/// If `samples` is empty: a bench that measured nothing is a broken bench.
///
/// ```
/// use std::time::Duration;
/// let mut v = [3, 1, 2].map(Duration::from_millis);
/// assert_eq!(ff_testkit::bench::median(&mut v), Duration::from_millis(2));
/// ```
pub fn median(samples: &mut [Duration]) -> Duration {
    assert!(!samples.is_empty(), "no samples to take the median of");
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// `d` in microseconds, one decimal: `"12.3 µs"`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ff_testkit::bench::micros(Duration::from_nanos(12_345)), "12.3 µs");
/// ```
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

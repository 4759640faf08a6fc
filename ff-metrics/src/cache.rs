//! The histogram handles of lock grants, kept per thread: an uncontended
//! acquire has a 5% overhead budget, and building a key and resolving it
//! in the recorder on every grant would spend it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::{LOCK_HOLD_SECONDS, LOCK_WAIT_SECONDS};

/// The wait and hold histograms of one label set: their keys, and the
/// handles the global recorder gave for them.
struct LockMetrics {
    class: String,
    backend: String,
    mode: &'static str,
    wait: metrics::Key,
    hold: metrics::Key,
    /// The recorder the handles came from, and the handles.
    handles: Option<(usize, metrics::Histogram, metrics::Histogram)>,
}

thread_local! {
    /// An uncontended acquire has a 5% overhead budget: a key costs an
    /// allocation and a hash to build, a registry lookup to resolve; a
    /// kept handle costs neither. A short list searched in order beats a
    /// hash map here: a thread sees a handful of label sets, and comparing
    /// a short class costs less than hashing it.
    static LOCK_METRICS: std::cell::RefCell<Vec<LockMetrics>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Label sets kept per thread before the list starts over.
const MAX_CACHED_LABEL_SETS: usize = 64;

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The address of the recorder in effect on this thread.
fn current_recorder() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>().addr())
}

/// The global recorder's address as last seen, and when it was looked
/// at (ms since `EPOCH`, 0 for never).
static GLOBAL_RECORDER: AtomicUsize = AtomicUsize::new(0);
static GLOBAL_SEEN_AT: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Handles looked up and not kept before the global recorder is first
/// looked for: looking costs starting and joining a thread (the only way
/// to see past this thread's local recorder), about a tenth of a
/// millisecond, which a one-shot command taking a lock or two would pay
/// for nothing. A long-lived process passes this within its first grants.
const LOOKUPS_BEFORE_LOOKING: u32 = 8;
static LOOKUPS_NOT_KEPT: AtomicU32 = AtomicU32::new(0);
/// How many times the global recorder was looked for (tests read it).
static LOOKED: AtomicU32 = AtomicU32::new(0);

/// Whether `recorder` is the process's global recorder. Handles are kept
/// only for that one: it lives as long as the process, while a local
/// recorder may be dropped and another made at the same address. The
/// global one is found from a thread that has no local recorder, after
/// [`LOOKUPS_BEFORE_LOOKING`] lookups, and again at most once a second
/// (one may be installed later).
fn is_global(recorder: usize) -> bool {
    if GLOBAL_RECORDER.load(Ordering::Relaxed) == recorder {
        return true;
    }
    if LOOKUPS_NOT_KEPT.fetch_add(1, Ordering::Relaxed) < LOOKUPS_BEFORE_LOOKING {
        return false;
    }
    let now = u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let seen = GLOBAL_SEEN_AT.load(Ordering::Relaxed);
    if seen != 0 && now.saturating_sub(seen) < 1000 {
        return false;
    }
    GLOBAL_SEEN_AT.store(now, Ordering::Relaxed);
    LOOKED.fetch_add(1, Ordering::Relaxed);
    let global = std::thread::scope(|s| s.spawn(current_recorder).join()).unwrap_or(0);
    GLOBAL_RECORDER.store(global, Ordering::Relaxed);
    global == recorder
}

/// The wait and hold histograms for a grant's labels, from the recorder
/// in effect now.
pub(crate) fn lock_histograms(
    backend: &str,
    mode: &'static str,
    class: &str,
) -> (metrics::Histogram, metrics::Histogram) {
    let recorder = current_recorder();
    LOCK_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let index = if let Some(i) = cache
            .iter()
            .position(|m| m.mode == mode && m.class == class && m.backend == backend)
        {
            i
        } else {
            if cache.len() >= MAX_CACHED_LABEL_SETS {
                cache.clear();
            }
            let key = |name: &'static str| {
                metrics::Key::from_parts(
                    name,
                    vec![
                        metrics::Label::new("backend", backend.to_owned()),
                        metrics::Label::new("mode", mode),
                        metrics::Label::new("class", class.to_owned()),
                    ],
                )
            };
            cache.push(LockMetrics {
                class: class.to_owned(),
                backend: backend.to_owned(),
                mode,
                wait: key(LOCK_WAIT_SECONDS),
                hold: key(LOCK_HOLD_SECONDS),
                handles: None,
            });
            cache.len() - 1
        };
        let m = &mut cache[index];
        if let Some((from, wait, hold)) = &m.handles
            && *from == recorder
        {
            return (wait.clone(), hold.clone());
        }
        let (wait, hold) = metrics::with_recorder(|r| {
            (
                r.register_histogram(&m.wait, &METADATA),
                r.register_histogram(&m.hold, &METADATA),
            )
        });
        if is_global(recorder) {
            m.handles = Some((recorder, wait.clone(), hold.clone()));
        }
        (wait, hold)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_grants_do_not_start_a_thread_to_find_the_global_recorder() {
        // No recorder installed: every lookup reaches the no-op recorder.
        for _ in 0..LOOKUPS_BEFORE_LOOKING {
            let _ = lock_histograms("file", "exclusive", "lock");
        }
        assert_eq!(
            LOOKED.load(Ordering::Relaxed),
            0,
            "a one-shot command's grants"
        );
        let _ = lock_histograms("file", "exclusive", "lock");
        assert_eq!(
            LOOKED.load(Ordering::Relaxed),
            1,
            "then it is looked for, once"
        );
        // Found (the no-op recorder is the global one here): kept, so
        // never looked for again.
        for _ in 0..100 {
            let _ = lock_histograms("file", "exclusive", "lock");
        }
        assert_eq!(LOOKED.load(Ordering::Relaxed), 1);
    }
}

//! The watch: reads the backends when they change (or on a clock, for a
//! backend that cannot say), keeps the latest view, and turns what
//! changed between two looks into [`Event`]s.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use ff_model::serve::{
    Change, Event, HistoryPoint, HolderView, Snapshot, StatusChange, WorktreeChange,
};
use ff_traits::{IdempotencyRecord, LockStatus, RecordStatus, ScanFilter, Timestamp};
use ff_worktree::Worktree;
use tokio::sync::broadcast;

use crate::alerts::AlertBook;
use crate::pace::Pace;
use crate::{Backends, ServeConfig};

/// How many history points are kept.
const HISTORY_POINTS: usize = 720;

/// The window each history point sums up: the operations that ended in
/// the last five minutes, so a quiet interval still shows the recent rate.
const HISTORY_WINDOW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// What the last looks found.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) locks: Arc<Vec<LockStatus>>,
    pub(crate) locks_error: Option<String>,
    /// Records, most recently active first.
    pub(crate) records: Arc<Vec<IdempotencyRecord>>,
    pub(crate) records_error: Option<String>,
    pub(crate) corrupt: usize,
    pub(crate) worktrees: Arc<Vec<Worktree>>,
    pub(crate) worktrees_error: Option<String>,
    pub(crate) history: VecDeque<HistoryPoint>,
    /// When records were last read.
    pub(crate) records_at: Option<Timestamp>,
}

impl View {
    /// `None` when every backend answered, else what failed.
    pub(crate) fn backend_error(&self) -> Option<String> {
        let errors: Vec<&str> = [
            &self.locks_error,
            &self.records_error,
            &self.worktrees_error,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

/// Everything the routes and tasks share.
pub(crate) struct State {
    pub(crate) backends: Backends,
    pub(crate) config: ServeConfig,
    pub(crate) view: RwLock<View>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) alerts: AlertBook,
    pub(crate) prometheus: metrics_exporter_prometheus::PrometheusHandle,
    pub(crate) started: Timestamp,
    /// How many watch tasks (locks, records) have taken their first look:
    /// an event stream's `hello` waits for both, so every later event is a
    /// change from what the API shows.
    pub(crate) looked: tokio::sync::watch::Sender<u8>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl State {
    pub(crate) fn new(backends: Backends, config: ServeConfig) -> Self {
        let (events, _) = broadcast::channel(4096);
        let alerts = AlertBook::new(config.alerts.clone());
        Self {
            backends,
            config,
            view: RwLock::new(View::default()),
            events,
            alerts,
            prometheus: crate::prom::install_recorder(),
            started: Timestamp::now(),
            looked: tokio::sync::watch::channel(0).0,
        }
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `view` holds, with the repository's name and limit, for the
    /// overview and the alert rules.
    pub(crate) fn parts<'a>(&self, view: &'a View) -> Snapshot<'a> {
        let source = self.backends.worktrees.as_ref();
        Snapshot {
            locks: &view.locks,
            records: &view.records,
            corrupt: view.corrupt,
            worktrees: &view.worktrees,
            repository: source.map(|s| s.repository()),
            worktree_limit: source.map(|s| s.limit()),
            error: view.backend_error(),
        }
    }

    pub(crate) fn publish(&self, event: Event) {
        tracing::debug!(kind = event.kind(), subject = %event.subject, "event");
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// Starts the watch tasks.
pub(crate) fn spawn(state: Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(watch_locks(Arc::clone(&state))),
        tokio::spawn(watch_records(Arc::clone(&state))),
        tokio::spawn(crate::alerts::evaluate_forever(state)),
    ]
}

/// The holders of every lock: name → grant id → holder.
fn grants(locks: &[LockStatus]) -> HashMap<(&str, &str), &ff_traits::LockInfo> {
    locks
        .iter()
        .flat_map(|l| {
            l.holders
                .iter()
                .map(move |h| ((l.name.as_str(), h.id.as_str()), h))
        })
        .collect()
}

/// A backend's change feed, unless the server was told to poll
/// (`watch` is not even started then).
async fn feed(
    state: &State,
    watch: impl std::future::Future<Output = ff_traits::Result<Option<Box<dyn ff_traits::ChangeFeed>>>>,
) -> ff_traits::Result<Option<Box<dyn ff_traits::ChangeFeed>>> {
    if state.config.change_feeds {
        watch.await
    } else {
        Ok(None)
    }
}

/// Sleeps until `at`; forever for `None` (an arm that is off).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How many watch tasks there are (locks, records).
pub(crate) const WATCHERS: u8 = 2;

async fn watch_locks(state: Arc<State>) {
    let mut first = true;
    let mut announced = false;
    // The feed is taken before the first read: nothing between is missed.
    let mut pace = Pace::new(
        "locks",
        feed(&state, state.backends.locks.watch()).await,
        state.config.poll_interval,
        state.config.settle_interval,
    );
    loop {
        pace.next().await;
        let read = state.backends.locks.locks().await;
        pace.read_done();
        let mut events = Vec::new();
        {
            let mut view = state.write();
            match read {
                Ok(now) => {
                    let now = Arc::new(now);
                    if !first {
                        let before = grants(&view.locks);
                        let after = grants(&now);
                        for (key, h) in &after {
                            if !before.contains_key(key) {
                                events.push(Event::new(
                                    Change::LockAcquired(HolderView::new(h, Timestamp::now())),
                                    key.0,
                                ));
                            }
                        }
                        for (key, h) in &before {
                            if !after.contains_key(key) {
                                events.push(Event::new(
                                    Change::LockReleased(HolderView::new(h, Timestamp::now())),
                                    key.0,
                                ));
                            }
                        }
                    }
                    if let Some(was) = view.locks_error.take() {
                        events.push(Event::new(Change::backend_up(was), "locks"));
                    }
                    view.locks = now;
                    first = false;
                }
                Err(e) => {
                    let message = format!("{} locks: {e}", state.backends.locks.backend_name());
                    if view.locks_error.is_none() {
                        events.push(Event::new(Change::backend_down(&message), "locks"));
                    }
                    view.locks_error = Some(message);
                }
            }
        }
        if !std::mem::replace(&mut announced, true) {
            state.looked.send_modify(|n| *n += 1);
        }
        for e in events {
            state.publish(e);
        }
    }
}

/// What an event compares of a record: its status and its claim.
fn mark(r: &IdempotencyRecord) -> (RecordStatus, Option<&str>) {
    (r.status, r.owner.as_ref().map(|o| o.claim_id.as_str()))
}

fn record_events(before: &[IdempotencyRecord], after: &[IdempotencyRecord]) -> Vec<Event> {
    let old: HashMap<&str, _> = before.iter().map(|r| (r.key.as_str(), mark(r))).collect();
    after
        .iter()
        .filter(|r| old.get(r.key.as_str()) != Some(&mark(r)))
        .map(|r| Event::new(Change::of_record(r), r.key.as_str()))
        .collect()
}

/// Folds what changed since the last look into `records` (most recently
/// active first) and returns the events it makes: a record new to the
/// view, or with another status or claim than before. A record read again
/// unchanged (the looks overlap) replaces its copy and makes no event.
fn merge_changes(
    records: &mut Arc<Vec<IdempotencyRecord>>,
    mut changed: Vec<IdempotencyRecord>,
) -> Vec<Event> {
    if changed.is_empty() {
        return Vec::new();
    }
    changed.sort_by_key(|r| std::cmp::Reverse(r.last_activity()));
    // One copy per key in the view, the most recently active, whatever
    // the store returned.
    let mut fresh = std::collections::HashSet::new();
    changed.retain(|r| fresh.insert(r.key.as_str().to_owned()));
    // In place unless a request is reading the view this moment; the
    // copies replaced are kept aside to compare.
    let all = Arc::make_mut(records);
    let replaced: Vec<_> = all
        .extract_if(.., |r| fresh.contains(r.key.as_str()))
        .collect();
    let events = record_events(&replaced, &changed);
    all.splice(0..0, changed);
    // Nearly sorted already: the changed ones lead, the rest kept their order.
    all.sort_by_key(|r| std::cmp::Reverse(r.last_activity()));
    events
}

fn worktree_events(before: &[Worktree], after: &[Worktree]) -> Vec<Event> {
    let ids = |w: &[Worktree]| -> BTreeMap<String, Worktree> {
        w.iter().map(|w| (w.id.clone(), w.clone())).collect()
    };
    let (old, new) = (ids(before), ids(after));
    let mut events: Vec<Event> = new
        .iter()
        .filter(|(id, _)| !old.contains_key(*id))
        .map(|(id, w)| Event::new(Change::WorktreeCreated(WorktreeChange::new(w)), id))
        .collect();
    events.extend(
        old.iter()
            .filter(|(id, _)| !new.contains_key(*id))
            .map(|(id, w)| Event::new(Change::WorktreeRemoved(WorktreeChange::new(w)), id)),
    );
    // An agent status that is new, or another than at the last look.
    events.extend(new.iter().filter_map(|(id, w)| {
        let was = old.get(id).and_then(|w| w.agent_status.as_ref());
        (was != w.agent_status.as_ref())
            .then(|| Event::new(Change::StatusChanged(StatusChange::new(w)), id))
    }));
    events
}

/// The history point now, from the records last read: what ended in the
/// last five minutes. None before the first successful read.
fn take_history_point(state: &State) {
    let mut view = state.write();
    if view.records_at.is_none() {
        return;
    }
    let point = HistoryPoint::at(Timestamp::now(), HISTORY_WINDOW, &view.records, &view.locks);
    view.history.push_back(point);
    if view.history.len() > HISTORY_POINTS {
        view.history.pop_front();
    }
}

/// How far before the last read began a read of what changed looks back:
/// a write stamped before that read began and committed after it, and a
/// writer whose clock is a little behind this server's, are still seen.
const CHANGE_OVERLAP: std::time::Duration = std::time::Duration::from_secs(5);

/// How long after a read woken by a change the records are read once more,
/// outside the pace. A SQLite commit writes its frames to the log (the
/// file events that wake the read), then publishes them in the log's index
/// in shared memory, which no file event reports: a read of what changed
/// is quick enough to run in between, and nothing would wake the server
/// again until the next change (or the whole read, minutes later).
const SECOND_LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// When records were last read, whole and at all: what the next read asks.
#[derive(Debug)]
struct RecordReads {
    /// How often, at most, records are read whole.
    every: std::time::Duration,
    /// When the last successful read began.
    last: Option<Timestamp>,
    /// When the last successful whole read ended.
    whole: Option<tokio::time::Instant>,
    /// Whether a read of what changed came after the last whole read: then
    /// a whole read is due `every` after it (an idle store is not read).
    changed: bool,
}

impl RecordReads {
    fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            last: None,
            whole: None,
            changed: false,
        }
    }

    /// When the next whole read is due, if one is.
    fn whole_due(&self) -> Option<tokio::time::Instant> {
        match self.whole {
            Some(at) if self.changed => Some(at + self.every),
            Some(_) => None,
            None => Some(tokio::time::Instant::now()),
        }
    }

    /// `None` for a whole read (the first, the one after a failed read,
    /// and every [`ServeConfig::whole_read_interval`] once something
    /// changed); else the instant to read changes since.
    fn since(&self, now: Timestamp, failed_last: bool) -> Option<Timestamp> {
        let whole_due = self
            .whole_due()
            .is_some_and(|at| at <= tokio::time::Instant::now());
        match self.last {
            Some(last) if !whole_due && !failed_last => {
                Some(last.min(now).saturating_sub(CHANGE_OVERLAP))
            }
            _ => None,
        }
    }

    fn done(&mut self, began: Timestamp, whole: bool) {
        self.last = Some(began);
        if whole {
            self.whole = Some(tokio::time::Instant::now());
            self.changed = false;
        } else {
            self.changed = true;
        }
    }
}

async fn watch_records(state: Arc<State>) {
    let mut first = true;
    let mut announced = false;
    let mut pace = Pace::new(
        "records",
        feed(&state, state.backends.store.watch()).await,
        state.config.record_interval,
        state.config.record_settle_interval,
    );
    // History points are taken from what the last read found, on their own
    // clock: a quiet store is not scanned to take one.
    let mut history = tokio::time::interval_at(
        tokio::time::Instant::now() + state.config.history_interval,
        state.config.history_interval,
    );
    history.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Worktrees are also read on a clock of their own, without the
    // records: whether a worktree is still on disk is no store change.
    let mut settle = tokio::time::interval_at(
        tokio::time::Instant::now() + state.config.record_settle_interval,
        state.config.record_settle_interval,
    );
    settle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let has_worktrees = state.backends.worktrees.is_some();
    let mut reads = RecordReads::new(state.config.whole_read_interval);
    let mut second_look: Option<tokio::time::Instant> = None;
    loop {
        let whole_due = reads.whole_due();
        // Which read this is: one the feed woke, one due on a clock, or
        // the second look after a woken one (not paced: one per burst).
        let (records_too, woken, paced) = tokio::select! {
            () = pace.next() => (true, !first && pace.notified(), true),
            _ = history.tick() => {
                take_history_point(&state);
                continue;
            }
            _ = settle.tick(), if has_worktrees && !first => (false, false, false),
            // After changes, a whole read even if nothing else wakes the
            // watch: it finds records removed since the last one.
            () = sleep_until(whole_due), if whole_due.is_some() && !first => {
                pace.read_starts();
                (true, false, true)
            }
            () = sleep_until(second_look), if second_look.is_some() => (true, false, false),
        };
        let scan = if records_too {
            let began = Timestamp::now();
            let since = reads.since(began, state.read().records_error.is_some());
            let filter = since.map_or_else(ScanFilter::default, |t| {
                ScanFilter::default().active_since(t)
            });
            let scan = state.backends.store.scan(&filter).await;
            if paced {
                pace.read_done();
            }
            second_look = woken.then(|| tokio::time::Instant::now() + SECOND_LOOK);
            if scan.is_ok() {
                reads.done(began, since.is_none());
            }
            Some((scan, filter))
        } else {
            None
        };
        let worktrees = match &state.backends.worktrees {
            Some(source) => Some(source.worktrees().await),
            None => None,
        };
        let mut events = Vec::new();
        {
            let mut view = state.write();
            match scan {
                None => {}
                Some((Ok(scan), filter)) if filter.active_since.is_some() => {
                    // Only what changed: a store that does not know the
                    // filter returns more, which `matches` drops. Damaged
                    // entries are counted by whole reads only.
                    let mut changed = scan.records;
                    changed.retain(|r| filter.matches(r));
                    events.extend(merge_changes(&mut view.records, changed));
                    view.records_at = Some(Timestamp::now());
                }
                Some((Ok(scan), _)) => {
                    let mut records = scan.records;
                    records.sort_by_key(|r| std::cmp::Reverse(r.last_activity()));
                    if !first {
                        events.extend(record_events(&view.records, &records));
                    }
                    if let Some(was) = view.records_error.take() {
                        events.push(Event::new(Change::backend_up(was), "store"));
                    }
                    view.corrupt = scan.corrupt.len();
                    view.records = Arc::new(records);
                    view.records_at = Some(Timestamp::now());
                }
                Some((Err(e), _)) => {
                    let message = format!("{} store: {e}", state.backends.store.backend_name());
                    if view.records_error.is_none() {
                        events.push(Event::new(Change::backend_down(&message), "store"));
                    }
                    view.records_error = Some(message);
                }
            }
            match worktrees {
                Some(Ok(list)) => {
                    if !first {
                        events.extend(worktree_events(&view.worktrees, &list));
                    }
                    view.worktrees_error = None;
                    view.worktrees = Arc::new(list);
                }
                Some(Err(e)) => view.worktrees_error = Some(format!("worktrees: {e}")),
                None => {}
            }
            first = false;
        }
        if !std::mem::replace(&mut announced, true) {
            state.looked.send_modify(|n| *n += 1);
        }
        for e in events {
            state.publish(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff_traits::{ClaimOwner, FencingToken, IdempotencyKey};

    fn record(i: u32, at: u64) -> IdempotencyRecord {
        let key = IdempotencyKey::new("op", serde_json::json!({ "i": i }), serde_json::json!({}));
        let now = Timestamp::from_millis(at);
        let owner = ClaimOwner::new(format!("claim-{i}"), FencingToken(1), now, 1, "h".into());
        IdempotencyRecord::new_pending(&key, key.record_key().unwrap(), owner, None, now)
    }

    fn completed(mut r: IdempotencyRecord, at: u64) -> IdempotencyRecord {
        r.status = RecordStatus::Completed;
        r.ended_at = Some(Timestamp::from_millis(at));
        r
    }

    fn keys(records: &[IdempotencyRecord]) -> Vec<String> {
        records.iter().map(|r| r.key.as_str().to_owned()).collect()
    }

    #[test]
    fn changes_replace_their_records_and_only_new_marks_make_events() {
        let (a, b, c) = (record(1, 1_000), record(2, 2_000), record(3, 3_000));
        let mut view = Arc::new(vec![c.clone(), b.clone(), a.clone()]);
        // a finished, b read again unchanged (the looks overlap), d is new.
        let d = record(4, 5_000);
        let events = merge_changes(
            &mut view,
            vec![b.clone(), completed(a.clone(), 4_000), d.clone()],
        );
        assert_eq!(
            keys(&view),
            keys(&[d.clone(), completed(a.clone(), 4_000), c, b])
        );
        assert_eq!(view[1].status, RecordStatus::Completed);
        let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(subjects, [d.key.as_str(), a.key.as_str()]);
        assert_eq!(
            events.iter().map(Event::kind).collect::<Vec<_>>(),
            ["operation_claimed", "operation_completed"]
        );
        // Nothing changed: the view is left as it is, shared or not.
        let shared = Arc::clone(&view);
        assert!(merge_changes(&mut view, Vec::new()).is_empty());
        assert!(Arc::ptr_eq(&shared, &view));
    }

    #[test]
    fn a_new_claim_on_a_record_is_an_event() {
        let a = record(1, 1_000);
        let mut view = Arc::new(vec![a.clone()]);
        let mut taken_over = a.clone();
        taken_over.last_attempt_at = Timestamp::from_millis(9_000);
        if let Some(o) = taken_over.owner.as_mut() {
            o.claim_id = "another".into();
        }
        // Returned twice (Redis' SCAN may): one copy is kept, the newer.
        let events = merge_changes(&mut view, vec![a.clone(), taken_over, a]);
        assert_eq!(events.len(), 1);
        assert_eq!(view.len(), 1);
        assert_eq!(
            view[0].owner.as_ref().map(|o| o.claim_id.as_str()),
            Some("another")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn whole_reads_come_first_after_failures_and_a_while_after_changes() {
        let every = std::time::Duration::from_secs(60);
        let mut reads = RecordReads::new(every);
        let t0 = Timestamp::from_millis(100_000);
        assert_eq!(reads.since(t0, false), None, "the first read is whole");
        reads.done(t0, true);
        assert_eq!(
            reads.whole_due(),
            None,
            "nothing changed: no whole read is due"
        );
        let t1 = Timestamp::from_millis(101_000);
        assert_eq!(
            reads.since(t1, false),
            Some(t0.saturating_sub(CHANGE_OVERLAP)),
            "then what changed since the last read began, with an overlap"
        );
        assert_eq!(reads.since(t1, true), None, "after a failed read, whole");
        reads.done(t1, false);
        let due = reads
            .whole_due()
            .expect("a whole read is due after a change");
        tokio::time::advance(every).await;
        assert!(due <= tokio::time::Instant::now());
        assert_eq!(reads.since(Timestamp::from_millis(161_000), false), None);
    }
}

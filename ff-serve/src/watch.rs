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
fn record_marks(records: &[IdempotencyRecord]) -> HashMap<&str, (RecordStatus, Option<&str>)> {
    records
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                (r.status, r.owner.as_ref().map(|o| o.claim_id.as_str())),
            )
        })
        .collect()
}

fn record_events(before: &[IdempotencyRecord], after: &[IdempotencyRecord]) -> Vec<Event> {
    let old = record_marks(before);
    let mut events = Vec::new();
    for r in after {
        let mark = (r.status, r.owner.as_ref().map(|o| o.claim_id.as_str()));
        let was = old.get(r.key.as_str());
        if was == Some(&mark) {
            continue;
        }
        events.push(Event::new(Change::of_record(r), r.key.as_str()));
    }
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
    loop {
        let records_too = tokio::select! {
            () = pace.next() => true,
            _ = history.tick() => {
                take_history_point(&state);
                continue;
            }
            _ = settle.tick(), if has_worktrees && !first => false,
        };
        let scan = if records_too {
            let scan = state.backends.store.scan(&ScanFilter::default()).await;
            pace.read_done();
            Some(scan)
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
                Some(Ok(scan)) => {
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
                Some(Err(e)) => {
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

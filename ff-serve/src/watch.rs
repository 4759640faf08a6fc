//! The watch: polls the backends, keeps the latest view, and turns what
//! changed between two looks into [`Event`]s.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use ff_traits::{IdempotencyRecord, LockStatus, RecordStatus, ScanFilter, Timestamp};
use ff_worktree::Worktree;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::alerts::AlertBook;
use crate::{Backends, ServeConfig};

/// How many history points are kept.
const HISTORY_POINTS: usize = 720;

/// Something that changed, as `/api/events` sends it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// `lock_acquired`, `lock_released`, `operation_claimed`,
    /// `operation_completed`, `operation_failed`, `operation_rolled_back`,
    /// `worktree_created`, `worktree_removed`, `backend_down`,
    /// `backend_up`, `alert_firing` or `alert_resolved`.
    pub kind: &'static str,
    /// What it is about: a lock's name, a record's key, a worktree's id,
    /// a backend, an alert.
    pub subject: String,
    /// When the server saw it.
    #[serde(serialize_with = "crate::view::rfc3339")]
    pub at: Timestamp,
    /// The details.
    pub detail: Value,
}

impl Event {
    pub(crate) fn new(kind: &'static str, subject: impl Into<String>, detail: Value) -> Self {
        Self {
            kind,
            subject: subject.into(),
            at: Timestamp::now(),
            detail,
        }
    }
}

/// The window each history point sums up: the operations that ended in
/// the last five minutes, so a quiet interval still shows the recent rate.
const HISTORY_WINDOW_MS: u64 = 5 * 60 * 1000;

/// One point of the history the dashboard plots.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sample {
    #[serde(serialize_with = "crate::view::rfc3339")]
    pub(crate) at: Timestamp,
    /// Operations that ended in the five minutes before `at`, by outcome.
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    /// Percent of those that succeeded (`None` when none ended).
    pub(crate) success_rate: Option<f64>,
    /// Mean and largest duration of those, in ms.
    pub(crate) mean_ms: Option<f64>,
    pub(crate) max_ms: Option<u64>,
    /// Locks held and operations pending at `at`.
    pub(crate) locks_held: usize,
    pub(crate) pending: usize,
}

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
    pub(crate) history: VecDeque<Sample>,
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
    pub(crate) fn parts<'a>(&self, view: &'a View) -> crate::view::Parts<'a> {
        let source = self.backends.worktrees.as_ref();
        crate::view::Parts {
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
        tracing::debug!(kind = event.kind, subject = %event.subject, "event");
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

async fn watch_locks(state: Arc<State>) {
    let mut first = true;
    let mut tick = tokio::time::interval(state.config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let read = state.backends.locks.locks().await;
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
                                    "lock_acquired",
                                    key.0,
                                    json!(ff_model::serve::HolderView::new(h, Timestamp::now())),
                                ));
                            }
                        }
                        for (key, h) in &before {
                            if !after.contains_key(key) {
                                events.push(Event::new(
                                    "lock_released",
                                    key.0,
                                    json!(ff_model::serve::HolderView::new(h, Timestamp::now())),
                                ));
                            }
                        }
                    }
                    if let Some(was) = view.locks_error.take() {
                        events.push(Event::new("backend_up", "locks", json!({"was": was})));
                    }
                    view.locks = now;
                    first = false;
                }
                Err(e) => {
                    let message = format!("{} locks: {e}", state.backends.locks.backend_name());
                    if view.locks_error.is_none() {
                        events.push(Event::new(
                            "backend_down",
                            "locks",
                            json!({"error": message}),
                        ));
                    }
                    view.locks_error = Some(message);
                }
            }
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

fn record_detail(r: &IdempotencyRecord) -> Value {
    json!({
        "operation": r.operation,
        "status": r.status.as_str(),
        "attempts": r.attempts,
        "duration_ms": r.duration().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        "error": r.error.as_ref().map(ToString::to_string),
    })
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
        let kind = match r.status {
            RecordStatus::Pending => "operation_claimed",
            RecordStatus::Completed => "operation_completed",
            RecordStatus::Failed => "operation_failed",
            RecordStatus::RolledBack => "operation_rolled_back",
        };
        events.push(Event::new(kind, r.key.as_str(), record_detail(r)));
    }
    events
}

fn worktree_events(before: &[Worktree], after: &[Worktree]) -> Vec<Event> {
    let ids = |w: &[Worktree]| -> BTreeMap<String, Worktree> {
        w.iter().map(|w| (w.id.clone(), w.clone())).collect()
    };
    let (old, new) = (ids(before), ids(after));
    let detail = |w: &Worktree| json!({"issue": w.issue, "branch": w.branch, "path": w.path});
    let mut events: Vec<Event> = new
        .iter()
        .filter(|(id, _)| !old.contains_key(*id))
        .map(|(id, w)| Event::new("worktree_created", id, detail(w)))
        .collect();
    events.extend(
        old.iter()
            .filter(|(id, _)| !new.contains_key(*id))
            .map(|(id, w)| Event::new("worktree_removed", id, detail(w))),
    );
    events
}

/// The history point now: what ended in the last five minutes.
fn sample(records: &[IdempotencyRecord], view: &View) -> Sample {
    let now = Timestamp::now();
    let since = Timestamp::from_millis(now.as_millis().saturating_sub(HISTORY_WINDOW_MS));
    let (mut completed, mut failed, mut total_ms, mut max_ms) = (0u64, 0u64, 0u64, 0u64);
    for r in records {
        let Some(end) = r.ended_at else { continue };
        if end <= since {
            continue;
        }
        match r.status {
            RecordStatus::Completed => completed += 1,
            RecordStatus::Failed => failed += 1,
            _ => continue,
        }
        let ms = end
            .as_millis()
            .saturating_sub(r.last_attempt_at.as_millis());
        total_ms += ms;
        max_ms = max_ms.max(ms);
    }
    let ended = completed + failed;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Sample {
        at: now,
        completed,
        failed,
        success_rate: (ended > 0).then(|| completed as f64 * 100.0 / ended as f64),
        mean_ms: (ended > 0).then(|| total_ms as f64 / ended as f64),
        max_ms: (ended > 0).then_some(max_ms),
        locks_held: view.locks.iter().filter(|l| l.held).count(),
        pending: records
            .iter()
            .filter(|r| r.status == RecordStatus::Pending)
            .count(),
    }
}

async fn watch_records(state: Arc<State>) {
    let mut first = true;
    let mut tick = tokio::time::interval(state.config.record_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = Timestamp::now();
    loop {
        tick.tick().await;
        let scan = state.backends.store.scan(&ScanFilter::default()).await;
        let worktrees = match &state.backends.worktrees {
            Some(source) => Some(source.worktrees().await),
            None => None,
        };
        let mut events = Vec::new();
        {
            let mut view = state.write();
            match scan {
                Ok(scan) => {
                    let mut records = scan.records;
                    records.sort_by_key(|r| std::cmp::Reverse(r.last_activity()));
                    if !first {
                        events.extend(record_events(&view.records, &records));
                    }
                    if let Some(was) = view.records_error.take() {
                        events.push(Event::new("backend_up", "store", json!({"was": was})));
                    }
                    view.corrupt = scan.corrupt.len();
                    let now = Timestamp::now();
                    if now.as_millis().saturating_sub(last_sample.as_millis())
                        >= u64::try_from(state.config.history_interval.as_millis())
                            .unwrap_or(u64::MAX)
                    {
                        let point = sample(&records, &view);
                        last_sample = now;
                        view.history.push_back(point);
                        if view.history.len() > HISTORY_POINTS {
                            view.history.pop_front();
                        }
                    }
                    view.records = Arc::new(records);
                    view.records_at = Some(now);
                }
                Err(e) => {
                    let message = format!("{} store: {e}", state.backends.store.backend_name());
                    if view.records_error.is_none() {
                        events.push(Event::new(
                            "backend_down",
                            "store",
                            json!({"error": message}),
                        ));
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
        for e in events {
            state.publish(e);
        }
    }
}

//! `/metrics`: the process's own metrics plus gauges read from the
//! backends at scrape time, in Prometheus text format 0.0.4.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use ff_traits::{RecordStatus, ScanFilter, Timestamp};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::waits::{LockWaits, TeeWaits};
use crate::watch::State;
use ff_model::serve::AlertRule;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Lock waits as the installed recorder saw them, for the alert rules.
static WAITS: OnceLock<Arc<LockWaits>> = OnceLock::new();

/// The `q` quantile of this process's lock waits over the last minute, in
/// seconds: the largest over label sets. `None` without samples, or when
/// the program installed its own recorder.
pub(crate) fn lock_wait_quantile(q: f64) -> Option<f64> {
    WAITS.get()?.quantile(q)
}

/// Installs a Prometheus recorder as the process's metrics recorder (once)
/// and returns its handle. When the program already installed another
/// recorder, the handle renders nothing and `/metrics` shows only the
/// scrape-time gauges.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let waits = WAITS.get_or_init(Arc::default).clone();
            let recorder = TeeWaits {
                inner: recorder,
                waits,
            };
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::info!(
                    "a metrics recorder was already installed: /metrics shows the backends' gauges only"
                );
            } else {
                ff_metrics::describe();
            }
            handle
        })
        .clone()
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[allow(clippy::cast_precision_loss)] // counts and ages far below 2^52
fn seconds_since(now: Timestamp, then: Timestamp) -> f64 {
    now.as_millis().saturating_sub(then.as_millis()) as f64 / 1000.0
}

/// Renders `/metrics`. Reads the backends now; a backend that fails is
/// reported as `ff_backend_up 0`, and its gauges are left out.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub(crate) async fn render(state: &State) -> String {
    let backends = &state.backends;
    let now = Timestamp::now();
    let pending_only = ScanFilter::default().status(RecordStatus::Pending);
    let (locks, stats, pending) = tokio::join!(
        backends.locks.locks(),
        backends.store.stats(),
        backends.store.scan(&pending_only),
    );
    let mut t = Text(String::with_capacity(4096));
    t.family(
        "ff_backend_up",
        "gauge",
        "Whether the backend answered this scrape (1) or not (0).",
    );
    let store_up = stats.is_ok() && pending.is_ok();
    t.sample(
        "ff_backend_up",
        &[
            ("backend", "locks"),
            ("kind", backends.locks.backend_name()),
        ],
        f64::from(u8::from(locks.is_ok())),
    );
    t.sample(
        "ff_backend_up",
        &[
            ("backend", "store"),
            ("kind", backends.store.backend_name()),
        ],
        f64::from(u8::from(store_up)),
    );
    // Worktrees are read every record interval, not at scrape time.
    let worktrees = backends.worktrees.as_ref().map(|source| {
        let view = state.read();
        (source, view.worktrees.len(), view.worktrees_error.is_none())
    });
    if let Some((_, _, up)) = &worktrees {
        t.sample(
            "ff_backend_up",
            &[("backend", "worktrees"), ("kind", "git")],
            f64::from(u8::from(*up)),
        );
    }
    if let Ok(locks) = &locks {
        let held: Vec<_> = locks.iter().filter(|l| l.held).collect();
        t.family("ff_locks_held", "gauge", "Locks held now.");
        t.sample("ff_locks_held", &[], held.len() as f64);
        t.family(
            "ff_lock_holders",
            "gauge",
            "Grants held now (a shared lock has several).",
        );
        t.sample(
            "ff_lock_holders",
            &[],
            held.iter().map(|l| l.holders.len()).sum::<usize>() as f64,
        );
        let oldest = held
            .iter()
            .flat_map(|l| l.holders.iter().map(|h| h.acquired_at))
            .min()
            .map_or(0.0, |t| seconds_since(now, t));
        t.family(
            "ff_lock_oldest_hold_seconds",
            "gauge",
            "Age of the oldest grant held now (0 when none).",
        );
        t.sample("ff_lock_oldest_hold_seconds", &[], oldest);
    }
    if let Ok(stats) = &stats {
        t.family("ff_records", "gauge", "Idempotency records, by status.");
        for status in RecordStatus::ALL {
            t.sample(
                "ff_records",
                &[("status", status.as_str())],
                stats.count(status) as f64,
            );
        }
        t.family(
            "ff_records_corrupt",
            "gauge",
            "Stored entries that could not be read.",
        );
        t.sample("ff_records_corrupt", &[], stats.corrupt as f64);
    }
    if let Ok(pending) = &pending {
        t.family(
            "ff_operations_pending",
            "gauge",
            "Operations claimed and not finished.",
        );
        t.sample("ff_operations_pending", &[], pending.records.len() as f64);
        let oldest = pending
            .records
            .iter()
            .map(|r| r.last_attempt_at)
            .min()
            .map_or(0.0, |t| seconds_since(now, t));
        t.family(
            "ff_operation_oldest_pending_seconds",
            "gauge",
            "Age of the oldest pending operation's attempt (0 when none).",
        );
        t.sample("ff_operation_oldest_pending_seconds", &[], oldest);
    }
    if let Some((source, count, _)) = worktrees {
        let repository = source.repository();
        t.family(
            "ff_repository_worktrees",
            "gauge",
            "Worktrees per repository (as of the last look, every record interval).",
        );
        t.sample(
            "ff_repository_worktrees",
            &[("repository", &repository)],
            count as f64,
        );
        t.family(
            "ff_repository_worktree_limit",
            "gauge",
            "The worktree limit per repository.",
        );
        t.sample(
            "ff_repository_worktree_limit",
            &[("repository", &repository)],
            source.limit() as f64,
        );
    }
    let active: Vec<AlertRule> = state.alerts.active().iter().map(|a| a.name).collect();
    let rules = state.alerts.rules.active_rules();
    t.family(
        "ff_alert_active",
        "gauge",
        "Whether an alert rule fires now (1) or not (0); rules that are off are left out.",
    );
    for rule in AlertRule::ALL.iter().filter(|r| rules.contains(r)) {
        t.sample(
            "ff_alert_active",
            &[("alert", rule.as_str())],
            f64::from(u8::from(active.contains(rule))),
        );
    }
    t.family(
        "ff_serve_event_subscribers",
        "gauge",
        "Clients following /api/events.",
    );
    t.sample(
        "ff_serve_event_subscribers",
        &[],
        state.events.receiver_count() as f64,
    );
    let mut text = t.0;
    text.push_str(&state.prometheus.render());
    text
}

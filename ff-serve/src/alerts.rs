//! Alert rules (`[alerts]` in `ff.toml`), their evaluation, and the webhook.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ff_traits::{RecordStatus, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

use ff_model::serve::{
    Alert, AlertDetail, AlertNotice, AlertRule, AlertState, Change, Event, Snapshot,
};

use crate::watch::State;

/// How often rules are evaluated.
const EVALUATE_EVERY: Duration = Duration::from_millis(250);

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let parsed = humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration ({e}); write it as \"90s\", \"5m\" or \"1h\""
        ))
    })?;
    if parsed.is_zero() {
        return Err(serde::de::Error::custom(format!(
            "{text:?}: a duration here must be above zero"
        )));
    }
    Ok(Some(parsed))
}

/// The alert rules. Every rule is off unless set, but for
/// `backend_unreachable`, which is on unless set to `false`.
///
/// ```
/// let rules: ff_serve::AlertRules = serde_json::from_value(serde_json::json!({
///     "lock_held_longer_than": "10m",
///     "failure_rate_above": 0.2,
///     "webhook": "http://127.0.0.1:9000/alerts",
/// })).unwrap();
/// rules.validate().unwrap();
/// assert_eq!(rules.lock_held_longer_than, Some(std::time::Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertRules {
    /// A lock held longer than this.
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub lock_held_longer_than: Option<Duration>,
    /// The 95th percentile of lock waits observed by this process above this.
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub lock_wait_p95_above: Option<Duration>,
    /// A pending operation whose attempt began longer ago than this.
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub pending_older_than: Option<Duration>,
    /// The share (0 to 1) of operations that failed, among those that
    /// ended within [`failure_window`](Self::failure_window), above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate_above: Option<f64>,
    /// The window of `failure_rate_above` (default 15 minutes).
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub failure_window: Option<Duration>,
    /// Fewer than this many ended operations in the window never fire
    /// `failure_rate_above` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_min_operations: Option<usize>,
    /// Worktrees within this many of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktrees_within: Option<usize>,
    /// An agent that has been `waiting` (for a person's input, `ff status
    /// set waiting`) longer than this.
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub agent_waiting_longer_than: Option<Duration>,
    /// A backend that does not answer (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_unreachable: Option<bool>,
    /// Where to POST each alert's firing and resolving, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// How long one webhook call may take (default 5 s).
    #[serde(
        default,
        deserialize_with = "duration",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_duration"
    )]
    pub webhook_timeout: Option<Duration>,
    /// How many times a failed webhook call is tried again (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_retries: Option<u32>,
}

#[allow(clippy::ref_option)] // serde's serialize_with passes &Option
fn ser_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        None => s.serialize_none(),
    }
}

impl AlertRules {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the bad setting and what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.failure_rate_above
            && !(0.0..=1.0).contains(&r)
        {
            return Err(format!(
                "alerts.failure_rate_above = {r}: it is a share of operations, from 0 to 1 (0.2 means 20%)"
            ));
        }
        if let Some(url) = &self.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "alerts.webhook = {url:?}: it must be an http:// or https:// URL"
            ));
        }
        if self.webhook_retries.is_some_and(|n| n > 10) {
            return Err("alerts.webhook_retries: at most 10".to_owned());
        }
        Ok(())
    }

    /// The rules that are on.
    #[must_use]
    pub fn active_rules(&self) -> Vec<AlertRule> {
        AlertRule::ALL
            .into_iter()
            .filter(|rule| self.is_on(*rule))
            .collect()
    }

    /// Whether `rule` is on: one arm per rule, so a new rule cannot be
    /// paired with another's setting.
    fn is_on(&self, rule: AlertRule) -> bool {
        match rule {
            AlertRule::LockHeldTooLong => self.lock_held_longer_than.is_some(),
            AlertRule::LockWaitP95TooHigh => self.lock_wait_p95_above.is_some(),
            AlertRule::PendingTooOld => self.pending_older_than.is_some(),
            AlertRule::FailureRateTooHigh => self.failure_rate_above.is_some(),
            AlertRule::WorktreesNearLimit => self.worktrees_within.is_some(),
            AlertRule::AgentWaitingTooLong => self.agent_waiting_longer_than.is_some(),
            AlertRule::BackendUnreachable => self.backend_unreachable != Some(false),
            _ => false,
        }
    }

    /// The alerts that fire for what `p` shows, as of now. `wait_p95` is
    /// the lock wait percentile this process saw, in seconds.
    pub(crate) fn firing(&self, p: &Snapshot<'_>, wait_p95: Option<f64>) -> Vec<Alert> {
        let now = Timestamp::now();
        let mut out = Vec::new();
        // Whole seconds from a second up: "2s", not "2s 194ms".
        let fmt = |d: Duration| {
            let d = if d >= Duration::from_secs(1) {
                Duration::from_secs(d.as_secs())
            } else {
                Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            };
            humantime::format_duration(d).to_string()
        };
        if let Some(limit) = self.lock_held_longer_than {
            let long = longest_over(
                limit,
                p.locks
                    .iter()
                    .flat_map(|l| l.holders.iter().map(move |h| (l.name.clone(), h.age(now)))),
            );
            if let Some((name, age)) = long.first() {
                out.push(Alert::new(
                    AlertRule::LockHeldTooLong,
                    format!(
                        "{} lock(s) held longer than {}; the oldest, {name}, for {}",
                        long.len(),
                        fmt(limit),
                        fmt(*age)
                    ),
                    age.as_secs_f64(),
                    limit.as_secs_f64(),
                    AlertDetail::Locks {
                        locks: long.iter().map(|(n, _)| n.clone()).take(20).collect(),
                    },
                ));
            }
        }
        if let (Some(limit), Some(p95)) = (self.lock_wait_p95_above, wait_p95)
            && p95 > limit.as_secs_f64()
        {
            out.push(Alert::new(
                AlertRule::LockWaitP95TooHigh,
                format!("lock waits: p95 {p95:.3} s, above {}", fmt(limit)),
                p95,
                limit.as_secs_f64(),
                AlertDetail::None,
            ));
        }
        if let Some(limit) = self.pending_older_than {
            let old: Vec<(&str, &str, Duration)> = p
                .records
                .iter()
                .filter(|r| r.status == RecordStatus::Pending)
                .map(|r| {
                    let age = Duration::from_millis(
                        now.as_millis()
                            .saturating_sub(r.last_attempt_at.as_millis()),
                    );
                    (r.operation.as_str(), r.key.short(), age)
                })
                .filter(|(_, _, age)| *age > limit)
                .collect();
            if let Some(oldest) = old.iter().max_by_key(|(_, _, age)| *age) {
                out.push(Alert::new(
                    AlertRule::PendingTooOld,
                    format!(
                        "{} operation(s) pending longer than {}; the oldest, {} {}, for {}",
                        old.len(),
                        fmt(limit),
                        oldest.0,
                        oldest.1,
                        fmt(oldest.2)
                    ),
                    oldest.2.as_secs_f64(),
                    limit.as_secs_f64(),
                    AlertDetail::None,
                ));
            }
        }
        if let Some(limit) = self.failure_rate_above {
            let window = self.failure_window.unwrap_or(Duration::from_secs(15 * 60));
            let since = now.saturating_sub(window);
            let (mut failed, mut ended) = (0usize, 0usize);
            for r in p.records {
                if r.ended_at.is_some_and(|e| e >= since)
                    && matches!(r.status, RecordStatus::Completed | RecordStatus::Failed)
                {
                    ended += 1;
                    failed += usize::from(r.status == RecordStatus::Failed);
                }
            }
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            let rate = if ended == 0 {
                0.0
            } else {
                failed as f64 / ended as f64
            };
            if ended >= self.failure_min_operations.unwrap_or(1).max(1) && rate > limit {
                out.push(Alert::new(
                    AlertRule::FailureRateTooHigh,
                    format!(
                        "{failed} of {ended} operations failed in the last {} ({:.0}%, above {:.0}%)",
                        fmt(window),
                        rate * 100.0,
                        limit * 100.0
                    ),
                    rate,
                    limit,
                    AlertDetail::None,
                ));
            }
        }
        if let (Some(k), Some(limit)) = (self.worktrees_within, p.worktree_limit) {
            let n = p.worktrees.len();
            if n + k >= limit {
                #[allow(clippy::cast_precision_loss)]
                out.push(Alert::new(
                    AlertRule::WorktreesNearLimit,
                    format!("{n} of {limit} worktrees: within {k} of the limit"),
                    n as f64,
                    limit.saturating_sub(k) as f64,
                    AlertDetail::None,
                ));
            }
        }
        if let Some(limit) = self.agent_waiting_longer_than {
            let waiting = longest_over(
                limit,
                p.worktrees.iter().filter_map(|w| {
                    let s = w.agent_status.as_ref()?;
                    (s.state == ff_worktree::AgentState::Waiting)
                        .then(|| (w.issue.as_str(), now.saturating_duration_since(s.since)))
                }),
            );
            if let Some((issue, age)) = waiting.first() {
                out.push(Alert::new(
                    AlertRule::AgentWaitingTooLong,
                    format!(
                        "{} agent(s) waiting for input longer than {}; the longest, issue {issue}, for {}",
                        waiting.len(),
                        fmt(limit),
                        fmt(*age)
                    ),
                    age.as_secs_f64(),
                    limit.as_secs_f64(),
                    AlertDetail::Issues {
                        issues: waiting.iter().map(|(i, _)| (*i).to_owned()).take(20).collect(),
                    },
                ));
            }
        }
        if self.backend_unreachable != Some(false)
            && let Some(e) = &p.error
        {
            out.push(Alert::new(
                AlertRule::BackendUnreachable,
                format!("a backend does not answer: {e}"),
                1.0,
                0.0,
                AlertDetail::None,
            ));
        }
        out
    }
}

/// The items whose age is over `limit`, the oldest first.
fn longest_over<T>(
    limit: Duration,
    aged: impl Iterator<Item = (T, Duration)>,
) -> Vec<(T, Duration)> {
    let mut over: Vec<(T, Duration)> = aged.filter(|(_, age)| *age > limit).collect();
    over.sort_by_key(|(_, age)| std::cmp::Reverse(*age));
    over
}

/// The alerts firing now, kept across evaluations so each keeps the
/// instant it began.
#[derive(Debug)]
pub(crate) struct AlertBook {
    pub(crate) rules: AlertRules,
    active: Mutex<BTreeMap<AlertRule, Alert>>,
}

impl AlertBook {
    pub(crate) fn new(rules: AlertRules) -> Self {
        Self {
            rules,
            active: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn active(&self) -> Vec<Alert> {
        ff_traits::lock_unpoisoned(&self.active)
            .values()
            .cloned()
            .collect()
    }

    /// Takes the alerts firing now; returns what began and what ended.
    fn update(&self, now: Vec<Alert>) -> Vec<(AlertState, Alert)> {
        let mut active = ff_traits::lock_unpoisoned(&self.active);
        let mut changes = Vec::new();
        let names: Vec<AlertRule> = now.iter().map(|a| a.name).collect();
        for mut alert in now {
            match active.get(&alert.name) {
                Some(old) => alert.since = old.since,
                None => changes.push((AlertState::Firing, alert.clone())),
            }
            active.insert(alert.name, alert);
        }
        let ended: Vec<AlertRule> = active
            .keys()
            .filter(|n| !names.contains(n))
            .copied()
            .collect();
        for name in ended {
            if let Some(alert) = active.remove(&name) {
                changes.push((AlertState::Resolved, alert));
            }
        }
        changes
    }
}

/// Evaluates the rules until the server stops, publishing changes and
/// handing them to the webhook.
pub(crate) async fn evaluate_forever(state: Arc<State>) {
    let webhook = state.alerts.rules.webhook.clone().map(|url| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(deliver(url, state.alerts.rules.clone(), rx));
        tx
    });
    let mut tick = tokio::time::interval(EVALUATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut upkeep = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if upkeep.elapsed() >= Duration::from_secs(5) {
            state.prometheus.run_upkeep();
            upkeep = tokio::time::Instant::now();
        }
        let wait = state
            .alerts
            .rules
            .lock_wait_p95_above
            .and_then(|_| crate::prom::lock_wait_quantile(0.95));
        let firing = {
            let view = state.read();
            if view.records_at.is_none() {
                // Nothing read yet: no verdict.
                continue;
            }
            state.alerts.rules.firing(&state.parts(&view), wait)
        };
        for (change, alert) in state.alerts.update(firing) {
            tracing::warn!(alert = %alert.name, state = ?change, summary = %alert.summary, "alert");
            if let Some(tx) = &webhook {
                let _ = tx.send(AlertNotice::new(change, &alert));
            }
            state.publish(Event::new(
                Change::of_alert(change, alert.clone()),
                alert.name.as_str(),
            ));
        }
    }
}

/// Posts each payload in order, trying again with growing pauses.
async fn deliver(
    url: String,
    rules: AlertRules,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<AlertNotice>,
) {
    let timeout = rules.webhook_timeout.unwrap_or(Duration::from_secs(5));
    let retries = rules.webhook_retries.unwrap_or(3);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    while let Some(payload) = rx.recv().await {
        let body = serde_json::to_string(&payload).unwrap_or_default();
        let mut pause = Duration::from_millis(500);
        for attempt in 0..=retries {
            let (agent, target, body) = (agent.clone(), url.clone(), body.clone());
            let sent = tokio::task::spawn_blocking(move || {
                agent
                    .post(&target)
                    .header("content-type", "application/json")
                    .send(body.as_str())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match sent {
                Ok(()) => break,
                Err(e) if attempt < retries => {
                    tracing::warn!(%url, attempt, error = %e, "alert webhook failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => {
                    metrics::counter!("ff_alert_webhook_failures_total").increment(1);
                    tracing::error!(%url, error = %e, "alert webhook failed; giving up on this notice");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let parse = |v: Value| serde_json::from_value::<AlertRules>(v);
        assert!(
            parse(json!({"lock_held_longer_than": "soon"}))
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
        assert!(
            parse(json!({"pending_older_than": "0s"}))
                .unwrap_err()
                .to_string()
                .contains("above zero")
        );
        assert!(parse(json!({"no_such_rule": 1})).is_err());
        let rules = parse(json!({"failure_rate_above": 20})).unwrap();
        assert!(rules.validate().unwrap_err().contains("from 0 to 1"));
        let rules = parse(json!({"webhook": "ftp://x"})).unwrap();
        assert!(rules.validate().unwrap_err().contains("http://"));
    }

    #[test]
    fn an_alert_keeps_its_start_and_resolves_once() {
        let book = AlertBook::new(AlertRules::default());
        let a = || {
            Alert::new(
                AlertRule::PendingTooOld,
                "x".into(),
                2.0,
                1.0,
                AlertDetail::None,
            )
        };
        let first = book.update(vec![a()]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, AlertState::Firing);
        let since = book.active()[0].since;
        std::thread::sleep(Duration::from_millis(5));
        assert!(book.update(vec![a()]).is_empty());
        assert_eq!(book.active()[0].since, since);
        let ended = book.update(vec![]);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, AlertState::Resolved);
        assert!(book.update(vec![]).is_empty());
    }
}

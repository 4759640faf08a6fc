//! `ff top`: a live view of locks, operations, worktrees and alerts.

use std::io::IsTerminal;
use std::time::Duration;

use ff_serve::Overview;
use ff_worktree::display::escape_text;

use super::serve::{backends, line, stop_signal};
use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff top`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Time between refreshes.
    #[arg(long, value_parser = crate::cli::parse_interval, default_value = "2s", value_name = "DURATION")]
    pub(crate) interval: Duration,
    /// Stop after N refreshes (default: until `q` or interrupted).
    #[arg(long, short = 'n', value_name = "N")]
    pub(crate) count: Option<u64>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let Args { interval, count } = args;
    let rules = settings.alert_rules()?;
    let backends = backends(settings).await?;
    let clear = !out.json && std::io::stdout().is_terminal();
    let mut round = 0u64;
    // Listening once, not at every refresh.
    let stop = stop_signal();
    tokio::pin!(stop);
    // `q` quits, on a terminal (read a key at a time while ff top runs).
    let keys = if clear { Keys::listen() } else { None };
    let (_keys_mode, mut quit) = match keys {
        Some((mode, rx)) => (Some(mode), Some(rx)),
        None => (None, None),
    };
    loop {
        let overview = ff_serve::overview(&backends, &rules).await;
        if out.json {
            // One object per line (NDJSON), one line per refresh.
            line(&serde_json::to_string(&overview).unwrap_or_default());
        } else if clear {
            // Home and clear, then the frame: one write, no flicker.
            let frame = render(&overview);
            line(&format!("\x1b[H\x1b[2J{}", escape_text(&frame)));
        } else {
            line(&escape_text(&render(&overview)));
        }
        round += 1;
        if count.is_some_and(|n| round >= n) {
            return Ok(0);
        }
        let quit_key = async {
            match quit.as_mut() {
                Some(rx) => {
                    let _ = rx.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => return Ok(0),
            () = quit_key => return Ok(0),
        }
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(
        || "–".to_owned(),
        |ms| ff_traits::fmt_duration(Duration::from_millis(ms)),
    )
}

/// The terminal view of one overview.
fn render(o: &Overview) -> String {
    let mut text = String::new();
    let up = if o.backend_up {
        "backends up".to_owned()
    } else {
        format!(
            "BACKEND DOWN: {}",
            o.backend_error.as_deref().unwrap_or("unknown")
        )
    };
    let worktrees = match o.worktree_limit {
        Some(limit) => format!("{} / {limit}", o.worktrees),
        None => o.worktrees.to_string(),
    };
    text.push_str(&format!(
        "ff top · {up}\nlocks held {} (oldest {}) · in flight {} (oldest {}) · success {} · mean {} · worktrees {worktrees}\n",
        o.locks_held,
        ms(o.oldest_hold_ms),
        o.by_status.get("pending").copied().unwrap_or(0),
        ms(o.oldest_pending_ms),
        o.success_rate.map_or_else(|| "–".to_owned(), |r| format!("{r:.1}%")),
        o.avg_duration_ms.map_or_else(|| "–".to_owned(), |d| format!("{d:.0} ms")),
    ));
    if o.alerts.is_empty() {
        text.push_str("no alerts\n");
    } else {
        for a in &o.alerts {
            text.push_str(&format!("ALERT {}: {}\n", a.name, a.summary));
        }
    }
    let age = |age_ms: u64| ms(Some(age_ms));
    let rows: Vec<Vec<String>> = o
        .held_locks
        .iter()
        .take(15)
        .map(|l| match l.holders.first() {
            Some(h) => vec![
                l.name.clone(),
                h.mode.clone(),
                format!("pid {} on {}", h.pid, h.hostname),
                age(h.age_ms),
                h.fencing_token.to_string(),
            ],
            None => vec![
                l.name.clone(),
                String::new(),
                String::new(),
                ms(None),
                String::new(),
            ],
        })
        .collect();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(
            &["LOCK", "MODE", "HOLDER", "HELD FOR", "TOKEN"],
            &rows,
        ));
        text.push('\n');
    }
    let rows: Vec<Vec<String>> = o
        .pending
        .iter()
        .take(10)
        .map(|r| {
            vec![
                r.operation.clone(),
                r.label
                    .clone()
                    .unwrap_or_else(|| r.key.chars().take(12).collect()),
                r.attempts.to_string(),
                age(r.age_ms),
            ]
        })
        .collect();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(
            &["IN FLIGHT", "KEY", "ATTEMPT", "FOR"],
            &rows,
        ));
        text.push('\n');
    }
    let rows: Vec<Vec<String>> = o
        .failed
        .iter()
        .take(5)
        .map(|r| {
            vec![
                r.operation.clone(),
                r.error
                    .as_ref()
                    .map(|e| e.message.chars().take(60).collect())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(&["FAILED", "ERROR"], &rows));
        text.push('\n');
    }
    let rows: Vec<Vec<String>> = o
        .worktree_list
        .iter()
        .take(10)
        .map(|w| {
            vec![
                w.issue.clone(),
                w.branch.clone(),
                serde_json::to_value(w.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                w.agent_status.as_ref().map_or_else(
                    || "-".to_owned(),
                    |s| {
                        serde_json::to_value(s.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    },
                ),
                age(w.age_ms),
            ]
        })
        .collect();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(
            &["ISSUE", "BRANCH", "STATUS", "AGENT", "AGE"],
            &rows,
        ));
        text.push('\n');
    }
    text
}

/// The terminal put in a key-at-a-time mode while `ff top` runs (restored
/// when dropped), and a reader that says when `q` is pressed.
#[cfg_attr(not(unix), allow(dead_code))] // made only on Unix
struct Keys {
    #[cfg(unix)]
    saved: rustix::termios::Termios,
}

impl Keys {
    /// On a terminal stdin: the mode, and a channel that gets a message on
    /// each `q`; `None` elsewhere (and off Unix).
    fn listen() -> Option<(Self, tokio::sync::mpsc::UnboundedReceiver<()>)> {
        #[cfg(unix)]
        {
            use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex};
            let stdin = std::io::stdin();
            if !stdin.is_terminal() {
                return None;
            }
            let saved = rustix::termios::tcgetattr(&stdin).ok()?;
            let mut raw = saved.clone();
            raw.local_modes
                .remove(LocalModes::ICANON | LocalModes::ECHO);
            raw.special_codes[SpecialCodeIndex::VMIN] = 1;
            raw.special_codes[SpecialCodeIndex::VTIME] = 0;
            rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            // A thread of its own: a read of stdin blocks, and the process
            // does not wait for it to end.
            let _ = std::thread::Builder::new()
                .name("ff-top-keys".into())
                .spawn(move || {
                    use std::io::Read;
                    let mut byte = [0u8; 1];
                    while std::io::stdin()
                        .lock()
                        .read(&mut byte)
                        .is_ok_and(|n| n == 1)
                    {
                        if matches!(byte[0], b'q' | b'Q') && tx.send(()).is_err() {
                            break;
                        }
                    }
                });
            Some((Self { saved }, rx))
        }
        #[cfg(not(unix))]
        None
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

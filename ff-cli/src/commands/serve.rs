//! serve, top.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ff_serve::{Backends, ManagedRepository, Overview, ServeConfig, Server};
use ff_worktree::display::escape_text;

use crate::config::{Metered, Settings};
use crate::output::{self, Failure, Out};

pub(super) struct ServeOptions {
    pub(super) listen: String,
    pub(super) allow_hosts: Vec<String>,
    pub(super) admin: bool,
    pub(super) poll_interval: Duration,
    pub(super) record_interval: Duration,
    pub(super) history_interval: Duration,
    pub(super) max_connections: u32,
    pub(super) header_timeout: Duration,
}

/// The backends every command uses, plus the repository's worktrees when
/// run inside one.
///
/// Not measured: what `ff serve` reads to show, ten times a second, is not
/// the work its metrics are there to show.
async fn backends(settings: &Settings) -> Result<Backends, Failure> {
    let locks = settings.locks_metered(Metered::No).await?;
    let store = settings.store_metered(Metered::No).await?;
    let mut backends = Backends::new(locks, store);
    if let Some(top) = &settings.toplevel {
        let manager = settings.manager_metered(Metered::No).await?;
        backends = backends.with_worktrees(Arc::new(ManagedRepository::new(
            manager,
            top.display().to_string(),
        )));
    }
    Ok(backends)
}

/// Raises this process's soft limit of open descriptors to its hard limit
/// (at most 65,536), so the connection cap, not the descriptor limit, is
/// what a flood of clients meets.
fn raise_descriptor_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let now = getrlimit(Resource::Nofile);
        let want = now.maximum.unwrap_or(65_536).min(65_536);
        if now.current.is_some_and(|c| c < want) {
            let raised = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(want),
                    maximum: now.maximum,
                },
            );
            if let Err(e) = raised {
                tracing::debug!(error = %e, "could not raise the descriptor limit");
            }
        }
    }
}

/// The shortest admin token `FF_SERVE_TOKEN` may give, and how many
/// different characters it must hold at least: 128 bits when random hex
/// (`openssl rand -hex 16`); `aaaa…` or a word repeated is refused.
const TOKEN_MIN_LEN: usize = 32;
const TOKEN_MIN_DISTINCT: usize = 10;

/// The admin token, and whether it came from `FF_SERVE_TOKEN` (then it is
/// never printed: whoever set it has it, and logs need not); else 32
/// random bytes in hex, printed once.
fn admin_token() -> Result<(String, bool), Failure> {
    if let Ok(token) = std::env::var("FF_SERVE_TOKEN") {
        let distinct = token
            .chars()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if token.chars().count() < TOKEN_MIN_LEN || distinct < TOKEN_MIN_DISTINCT {
            return Err(Failure::invalid(format!(
                "FF_SERVE_TOKEN is too weak: give at least {TOKEN_MIN_LEN} characters with at \
                 least {TOKEN_MIN_DISTINCT} different ones (`openssl rand -hex 16` makes one), or \
                 unset it to have one made"
            )));
        }
        return Ok((token, true));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Failure::new(
            crate::output::Problem::Unavailable,
            format!("cannot draw a random admin token: {e}"),
        )
    })?;
    Ok((ff_traits::hex_lower(&bytes), false))
}

/// Completes at the first SIGTERM, SIGINT or SIGHUP (Ctrl-C elsewhere),
/// through the signal listeners `ff lock` uses.
async fn stop_signal() {
    #[cfg(unix)]
    match super::supervise::Signals::new() {
        Ok(mut signals) => signals.next().await,
        // Without listeners, stop as the default action would.
        Err(_) => std::future::pending::<()>().await,
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) async fn serve(settings: &Settings, out: Out, how: ServeOptions) -> Result<u8, Failure> {
    // Everything is checked before anything listens.
    let address: SocketAddr = how.listen.parse().map_err(|_| {
        Failure::invalid(format!(
            "--listen {:?} is not an address: write IP:PORT, such as 127.0.0.1:7878 (port 0 picks a free port)",
            how.listen
        ))
    })?;
    // The webhook is a URL the repository would have this server POST to.
    settings.require_approved(&["alerts.webhook"])?;
    let rules = settings.alert_rules()?;
    for (what, d) in [
        ("--poll-interval", how.poll_interval),
        ("--record-interval", how.record_interval),
        ("--history-interval", how.history_interval),
    ] {
        if d < Duration::from_millis(10) {
            return Err(Failure::invalid(format!(
                "{what} {}: give at least 10ms",
                ff_traits::fmt_duration(d)
            )));
        }
    }
    let (token, from_env) = if how.admin {
        let (t, from_env) = admin_token()?;
        (Some(t), from_env)
    } else {
        (None, false)
    };
    // A token the environment gave is never printed.
    let shown_token = token.as_ref().filter(|_| !from_env);
    let backends = backends(settings).await?;
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("{address} is taken by another program; choose another port with --listen")
        } else {
            format!("cannot listen on {address}: {e}; choose another address with --listen")
        };
        Failure::new(crate::output::Problem::ListenFailed, why)
    })?;
    let bound = listener.local_addr().map_err(|e| {
        Failure::new(
            crate::output::Problem::ListenFailed,
            format!("cannot read the listening address: {e}"),
        )
    })?;
    if !bound.ip().is_loopback() {
        tracing::warn!(
            %bound,
            "serving beyond this machine: anyone who reaches this port reads lock, operation and worktree data"
        );
    }
    if how.header_timeout < Duration::from_millis(100) {
        return Err(Failure::invalid(
            "--header-timeout: give at least 100ms (slow clients on a busy machine need time)",
        ));
    }
    raise_descriptor_limit();
    let mut limits = ff_serve::ConnectionLimits::default();
    limits.max_connections = usize::try_from(how.max_connections).unwrap_or(usize::MAX);
    limits.header_timeout = how.header_timeout;
    let mut config = ServeConfig::default()
        .with_connection_limits(limits)
        .with_alerts(rules)
        .with_poll_interval(how.poll_interval)
        .with_record_interval(how.record_interval)
        .with_history_interval(how.history_interval);
    if let Some(t) = &token {
        config = config.with_admin_token(t.clone());
    }
    for host in how.allow_hosts {
        config = config.with_allowed_host(host);
    }
    let url = format!("http://{bound}/");
    if out.json {
        // One line, so a program can read it as soon as it comes.
        line(
            &serde_json::to_string(&ff_model::cli::ListeningView::new(
                url.clone(),
                how.admin,
                shown_token.cloned(),
            ))
            .unwrap_or_default(),
        );
    } else {
        line(&match (&token, shown_token) {
            (_, Some(t)) => {
                format!("serving on {url} (admin actions need: Authorization: Bearer {t})")
            }
            (Some(_), None) => format!(
                "serving on {url} (admin actions need: Authorization: Bearer <FF_SERVE_TOKEN>)"
            ),
            (None, _) => format!("serving on {url} (read-only; --admin allows admin actions)"),
        });
    }
    let server = Server::new(backends, config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .run(listener, async move {
                let _ = stopped.await;
            })
            .await
    });
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => {
            return match result {
                Ok(Ok(())) => Ok(0),
                Ok(Err(e)) => Err(Failure::new(crate::output::Problem::ServeFailed, e.to_string())),
                Err(e) => Err(Failure::new(crate::output::Problem::Internal, e.to_string())),
            };
        }
        () = stop_signal() => {}
    }
    let _ = stop.send(());
    // Event streams stay open until their clients go: give requests a
    // moment to finish, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(2), serving).await;
    Ok(0)
}

/// Writes one line to stdout and flushes it.
fn line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(
        || "–".to_owned(),
        |ms| ff_traits::fmt_duration(Duration::from_secs(ms / 1000)),
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
                r.key.chars().take(12).collect(),
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
                age(w.age_ms),
            ]
        })
        .collect();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(&["ISSUE", "BRANCH", "STATUS", "AGE"], &rows));
        text.push('\n');
    }
    text
}

pub(super) async fn top(
    settings: &Settings,
    out: Out,
    interval: Duration,
    count: Option<u64>,
) -> Result<u8, Failure> {
    if interval < Duration::from_millis(100) {
        return Err(Failure::new(
            crate::output::Problem::InvalidInput,
            "--interval: give at least 100ms",
        ));
    }
    let rules = settings.alert_rules()?;
    let backends = backends(settings).await?;
    let clear = !out.json && std::io::stdout().is_terminal();
    let mut round = 0u64;
    // Listening once, not at every refresh.
    let stop = stop_signal();
    tokio::pin!(stop);
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
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => return Ok(0),
        }
    }
}

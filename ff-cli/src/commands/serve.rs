//! `ff serve`: metrics, a JSON API, live events and a dashboard over HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ff_serve::{Backends, ManagedRepository, ServeConfig, Server};

use crate::config::{Metered, Settings};
use crate::output::{Failure, Out};

/// `ff serve`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to listen: IP:PORT (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub(crate) listen: String,
    /// A host name the dashboard may be reached by, besides IP
    /// addresses and localhost (repeat for more); other names are
    /// refused, so a web page cannot read it through DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub(crate) allow_hosts: Vec<String>,
    /// Allow admin actions (clearing dead holders' locks, gc) to
    /// requests with the bearer token from FF_SERVE_TOKEN, or a new one
    /// printed at start.
    #[arg(long)]
    pub(crate) admin: bool,
    /// How often locks are read for live events; with a backend that
    /// reports its changes (file locks on Linux), at most this often,
    /// when something changed.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "100ms", value_name = "DURATION")]
    pub(crate) poll_interval: Duration,
    /// How often records and worktrees are read; with a store that
    /// reports its changes (SQLite and JSON on Linux), at most this
    /// often, when something changed.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "500ms", value_name = "DURATION")]
    pub(crate) record_interval: Duration,
    /// How often a point of the success-rate and latency plots is taken.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "5s", value_name = "DURATION")]
    pub(crate) history_interval: Duration,
    /// Read on the clock alone, even where the backends report their
    /// changes: for a state directory on a network filesystem, whose
    /// other hosts' writes the kernel does not report.
    #[arg(long)]
    pub(crate) poll_only: bool,
    /// Most connections open at once; at the cap a new one evicts the
    /// oldest connection that is not being answered.
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) max_connections: u32,
    /// How long a client has to send a request's headers, and how
    /// long an idle connection stays open.
    #[arg(long, value_parser = crate::cli::parse_interval, default_value = "10s", value_name = "DURATION")]
    pub(crate) header_timeout: Duration,
}

/// The backends every command uses, plus the repository's worktrees when
/// run inside one.
///
/// Not measured: what `ff serve` reads to show, ten times a second, is not
/// the work its metrics are there to show.
pub(super) async fn backends(settings: &Settings) -> Result<Backends, Failure> {
    let locks = settings.locks_metered(Metered::No).await?;
    let store = settings.store_metered(Metered::No).await?;
    let mut backends = Backends::new(locks, store);
    if let Some(top) = settings.toplevel() {
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
pub(super) async fn stop_signal() {
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

/// Runs the server with glibc's malloc arenas capped at two, unless the
/// environment already says how many: called before anything else of
/// `ff serve` runs, it executes this same binary again, with the same
/// arguments and `MALLOC_ARENA_MAX=2` added (same process id, same open
/// files). If that fails, the server runs with glibc's defaults.
///
/// Why: glibc gives threads that allocate at once arenas of their own
/// (up to eight per core), and each keeps the high-water mark of what
/// it served. A server reading 100,000 records stepped up 230 MiB and
/// then crept 1.5 MiB a minute over an hour with the defaults, and stayed
/// flat with two arenas (BENCHMARKS.md, "A second 1-hour soak"). The cap
/// can only be set before the first allocation: from inside, that takes
/// `mallopt`, an unsafe call this crate forbids; from outside, the
/// environment, hence the second start. Other platforms and C libraries
/// have no such arenas, and nothing is done there.
pub(crate) fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;
        /// The variable glibc's `malloc` reads, once, at its first allocation.
        const ARENA_MAX: &str = "MALLOC_ARENA_MAX";
        if std::env::var_os(ARENA_MAX).is_some() {
            return;
        }
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "ff".into());
        // `/proc/self/exe` is this very binary, even if the file was
        // replaced or removed since it started.
        let error = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env(ARENA_MAX, "2")
            .exec();
        tracing::info!(%error, "cannot start again with {ARENA_MAX}=2; glibc's default arenas are used");
    }
}

pub(crate) async fn run(settings: &Settings, out: Out, how: Args) -> Result<u8, Failure> {
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
    raise_descriptor_limit();
    let mut limits = ff_serve::ConnectionLimits::default();
    limits.max_connections = usize::try_from(how.max_connections).unwrap_or(usize::MAX);
    limits.header_timeout = how.header_timeout;
    let mut config = ServeConfig::default()
        .with_connection_limits(limits)
        .with_alerts(rules)
        .with_poll_interval(how.poll_interval)
        .with_record_interval(how.record_interval)
        .with_history_interval(how.history_interval)
        .with_change_feeds(!how.poll_only);
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
pub(super) fn line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

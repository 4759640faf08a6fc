//! ForgeFlow's monitoring server, behind `ff serve`.
//!
//! It watches the same backends as every other command (a lock provider,
//! an idempotency store and, in a repository, its worktrees), so one
//! server watches a whole fleet that shares Redis. It offers:
//!
//! * `GET /metrics`: Prometheus text, with gauges read from the backends
//!   at scrape time (see `METRICS.md` for every name);
//! * a JSON API under `/api/` (locks, worktrees, operations, stats,
//!   alerts) and `/api/events`, server-sent events of what changes;
//! * `/`: a dashboard page embedded in the binary;
//! * alert rules ([`AlertRules`]) evaluated continuously, shown on the
//!   page, exported as `ff_alert_active` and posted to a webhook;
//! * admin actions (force-unlocking a dead holder's lock, `gc`) only when
//!   started with an admin token, and only by `POST`.
//!
//! Changes are found by reading the backends and comparing, so it works
//! with any backend, including plugins, and sees every process and host
//! that shares them. A backend that offers a change feed
//! ([`LockProvider::watch`], [`IdempotencyStorage::watch`]: file locks and
//! the file stores on Linux) is read when it wakes, at most once per
//! interval (and, for leases, which lapse with nobody writing, every
//! settle interval); so an idle server reads nothing. Any other is polled (locks every
//! [`ServeConfig::poll_interval`], records and worktrees every
//! [`ServeConfig::record_interval`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ff_serve::{Backends, ServeConfig, Server};
//! use ff_traits::{MemoryLockProvider, MemoryStore};
//!
//! let backends = Backends::new(Arc::new(MemoryLockProvider::new()), Arc::new(MemoryStore::new()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! let server = Server::new(backends, ServeConfig::default());
//! server.run(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod alerts;
mod conn;
mod http;
mod pace;
mod prom;
mod source;
mod view;
mod waits;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use alerts::AlertRules;
pub use conn::ConnectionLimits;
pub use ff_model::serve::AlertRule;
pub use prom::install_recorder;
pub use source::{ManagedRepository, WorktreeSource};
// The shapes moved to `ff-model`, the one typed output model; they stay
// reachable here, where embedders of the server found them.
pub use ff_model::serve::{
    Alert, AlertState, Event, HolderView, LockView, OperationErrorView, OperationView, Overview,
    OwnerView, WorktreeView,
};
pub use view::overview;

use ff_traits::{IdempotencyStorage, LockProvider};

/// What the server watches.
#[derive(Clone)]
pub struct Backends {
    /// The locks.
    pub locks: Arc<dyn LockProvider>,
    /// The idempotency records.
    pub store: Arc<dyn IdempotencyStorage>,
    /// The repository's worktrees, when serving inside one.
    pub worktrees: Option<Arc<dyn WorktreeSource>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("locks", &self.locks.backend_name())
            .field("store", &self.store.backend_name())
            .field("worktrees", &self.worktrees.is_some())
            .finish()
    }
}

impl Backends {
    /// Locks and records, no worktrees.
    #[must_use]
    pub fn new(locks: Arc<dyn LockProvider>, store: Arc<dyn IdempotencyStorage>) -> Self {
        Self {
            locks,
            store,
            worktrees: None,
        }
    }

    /// Adds a repository's worktrees.
    #[must_use]
    pub fn with_worktrees(mut self, source: Arc<dyn WorktreeSource>) -> Self {
        self.worktrees = Some(source);
        self
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The bearer token that admin routes require; `None` (the default)
    /// makes the server read-only.
    pub admin_token: Option<String>,
    /// The alert rules.
    pub alerts: AlertRules,
    /// How often locks are read for events (default 100 ms): at most
    /// this often when the lock backend has a change feed, and this often
    /// when it has none.
    pub poll_interval: Duration,
    /// How often records and worktrees are read (default 500 ms): as
    /// [`poll_interval`](Self::poll_interval), for the store.
    pub record_interval: Duration,
    /// With a lock backend that has a change feed, how often locks are
    /// read anyway (default 5 s): a lease that lapses, with nobody
    /// writing, is seen within this.
    pub settle_interval: Duration,
    /// How often worktrees are read anyway, without the records (default
    /// 60 s): a worktree deleted by hand, no store change, shows as
    /// missing within this.
    pub record_settle_interval: Duration,
    /// How often, at most, records are read whole (default 5 min). Between
    /// whole reads the server reads only the records active since its
    /// last look ([`ScanFilter::active_since`](ff_traits::ScanFilter)): a
    /// record removed (`gc`), a lease renewed (only its deadline moves)
    /// and a write stamped by a clock more than 5 s behind the server's
    /// show by the next whole read, which comes this long after the last
    /// one once anything changed (an idle server with a change feed reads
    /// nothing).
    pub whole_read_interval: Duration,
    /// Whether backends' change feeds are used (default `true`). `false`
    /// reads on the clock alone: for a state directory on a network
    /// filesystem, where the kernel does not report other hosts' writes.
    pub change_feeds: bool,
    /// How often a point of the success-rate and latency history is taken
    /// (default 5 s; 720 points are kept).
    pub history_interval: Duration,
    /// Host names requests may name in `Host`, besides IP addresses and
    /// `localhost`. Any other is refused (403): a web page elsewhere that
    /// points its own name at this server (DNS rebinding) cannot read it.
    pub allowed_hosts: Vec<String>,
    /// How many connections are kept and how long clients have.
    pub connections: ConnectionLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            alerts: AlertRules::default(),
            poll_interval: Duration::from_millis(100),
            record_interval: Duration::from_millis(500),
            settle_interval: Duration::from_secs(5),
            record_settle_interval: Duration::from_secs(60),
            // A whole read of 100,000 records costs about 0.7 s of CPU:
            // every 5 minutes that is 0.25 % of a core, every minute 1.2 %.
            whole_read_interval: Duration::from_secs(300),
            change_feeds: true,
            history_interval: Duration::from_secs(5),
            allowed_hosts: Vec::new(),
            connections: ConnectionLimits::default(),
        }
    }
}

impl ServeConfig {
    /// Sets [`admin_token`](Self::admin_token).
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Sets [`alerts`](Self::alerts).
    #[must_use]
    pub fn with_alerts(mut self, alerts: AlertRules) -> Self {
        self.alerts = alerts;
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    #[must_use]
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Sets [`record_interval`](Self::record_interval).
    #[must_use]
    pub fn with_record_interval(mut self, d: Duration) -> Self {
        self.record_interval = d;
        self
    }

    /// Sets [`settle_interval`](Self::settle_interval) and
    /// [`record_settle_interval`](Self::record_settle_interval).
    #[must_use]
    pub fn with_settle_intervals(mut self, locks: Duration, records: Duration) -> Self {
        self.settle_interval = locks;
        self.record_settle_interval = records;
        self
    }

    /// Sets [`whole_read_interval`](Self::whole_read_interval).
    #[must_use]
    pub fn with_whole_read_interval(mut self, d: Duration) -> Self {
        self.whole_read_interval = d;
        self
    }

    /// Sets [`change_feeds`](Self::change_feeds).
    #[must_use]
    pub fn with_change_feeds(mut self, on: bool) -> Self {
        self.change_feeds = on;
        self
    }

    /// Adds to [`allowed_hosts`](Self::allowed_hosts).
    #[must_use]
    pub fn with_allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Sets [`connections`](Self::connections).
    #[must_use]
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.connections = limits;
        self
    }

    /// Sets [`history_interval`](Self::history_interval).
    #[must_use]
    pub fn with_history_interval(mut self, d: Duration) -> Self {
        self.history_interval = d;
        self
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listening socket failed.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The server: watch tasks, alert evaluation and the HTTP routes.
#[derive(Debug)]
pub struct Server {
    state: Arc<watch::State>,
}

impl Server {
    /// A server over `backends`. Nothing runs until [`run`](Self::run).
    #[must_use]
    pub fn new(backends: Backends, config: ServeConfig) -> Self {
        Self {
            state: Arc::new(watch::State::new(backends, config)),
        }
    }

    /// The routes, for embedding in a larger axum application. The watch
    /// tasks start with [`run`](Self::run) (or [`start`](Self::start)).
    pub fn router(&self) -> axum::Router {
        http::router(Arc::clone(&self.state))
    }

    /// Starts the watch and alert tasks without serving HTTP (for
    /// [`router`](Self::router) users). They stop when the returned handle
    /// is dropped.
    #[must_use]
    pub fn start(&self) -> Running {
        Running {
            tasks: watch::spawn(Arc::clone(&self.state)),
        }
    }

    /// Serves on `listener` until `shutdown` completes, within
    /// [`ServeConfig::connections`]: a header-read deadline, a cap on
    /// connections where a new one evicts the oldest idle one.
    ///
    /// # Errors
    /// [`ServeError::Io`] when the socket fails.
    pub async fn run(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let running = self.start();
        let limits = self.state.config.connections;
        let served = conn::serve(listener, self.router(), shutdown, limits).await;
        running.stop().await;
        served?;
        Ok(())
    }
}

/// The watch and alert tasks of a started [`Server`]; dropping it stops them.
#[derive(Debug)]
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the tasks and waits until each has ended: a task in the
    /// middle of a read finishes its step first, so nothing of the server
    /// still runs when this returns (a runtime dropped under a running
    /// watch task panics as the task sets its next timer).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

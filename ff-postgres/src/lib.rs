//! # ff-postgres
//!
//! The PostgreSQL plumbing ForgeFlow's PostgreSQL backends share: a URL
//! checked once ([`PostgresUrl`]), TLS by rustls with the server's
//! certificate and name always checked, a bounded pool of connections,
//! every call bounded by a timeout and its failure mapped to an
//! [`Error::Backend`] that names the server (password redacted) and says
//! what failed (authentication, an unreachable server, a missing
//! privilege), schema migrations by version, and `LISTEN` on a connection
//! of its own.
//!
//! ## Why tokio-postgres
//!
//! It is the maintained async driver closest to the protocol: its
//! `query_typed` sends every statement unnamed, with its parameter types,
//! in one round trip, which a transaction-pooling pgbouncer carries (its
//! 1.18 cannot carry named prepared statements); its TLS is pluggable
//! (rustls, as the Redis backends use); `LISTEN` notifications arrive on
//! the connection's own message stream. sqlx would bring compile-time
//! query checking we do not use, named statements by default and a second
//! TLS stack.
//!
//! ## Connection settings, in one place
//!
//! | what | value |
//! |---|---|
//! | connections | a pool per backend ([`Settings::pool_size`], default 8), opened on demand; a broken one is dropped when next taken out (so a restarted server is reconnected to) |
//! | connect timeout, one call, waiting for a pooled connection | [`Settings::call_timeout`] (default 2 s); then a backend error (exit 69) naming the server |
//! | session state | none: no advisory session locks, no named statements, no `SET`; everything works through a transaction-pooling pgbouncer |
//! | `LISTEN` | a connection of its own, to the URL's host and `listen_port` (default: the URL's port) |
//! | change feed ([`Database::change_feed`]) | `LISTEN` as above, holding the channel's advisory lock on that connection, which makes the backend's writes `NOTIFY`; listened again 1 s after a break; another watcher's lock tried every second |
//! | TLS | `sslmode=verify-full`: the server's certificate checked against `sslrootcert` (or the system's roots) and its name against the URL's host; no mode skips the check |
//! | schema | ForgeFlow's tables live in `?schema=` (default `forgeflow`), created and migrated by version on first use |
//!
//! ```no_run
//! # async fn demo() -> ff_traits::Result<()> {
//! use ff_postgres::{Database, Settings};
//!
//! let db = Database::open("postgres://ff:secret@127.0.0.1/app", Settings::default()).await?;
//! let client = db.client("reading the clock").await?;
//! let rows = db.bounded("reading the clock", client.query_typed("SELECT now()::text", &[])).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod feed;
mod listen;
mod migrate;
mod tls;
mod url;

pub use feed::FeedChannel;
pub use listen::Listener;
pub use url::{PostgresUrl, Wakeups, is_postgres_url, redact};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use ff_traits::{Error, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A connection taken from the pool; it goes back when dropped. It
/// dereferences to a [`tokio_postgres::Client`].
pub type Client = deadpool_postgres::Object;

/// The driver's types, for callers' parameters and rows.
pub use tokio_postgres::{Row, types::ToSql, types::Type};

/// One parameter of a statement sent unnamed (`query_typed`): its value
/// and its type.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// How a backend connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Longest one call may take, connecting included (default 2 s).
    pub call_timeout: Duration,
    /// Most connections open at once (default 8).
    pub pool_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(2),
            pool_size: 8,
        }
    }
}

impl Settings {
    /// Sets [`call_timeout`](Self::call_timeout).
    #[must_use]
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }

    /// Sets [`pool_size`](Self::pool_size) (at least 1).
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }
}

/// A PostgreSQL database ForgeFlow keeps its tables in. Cheap to clone
/// (clones share the pool).
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    url: PostgresUrl,
    settings: Settings,
    pool: Pool,
    config: tokio_postgres::Config,
    /// As `config`, to the port `LISTEN` goes to.
    listen_config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.inner.url)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Parses `url` and connects ([`connect`](Self::connect)).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a URL [`PostgresUrl`] refuses, or
    /// certificate files that cannot be read; [`Error::Backend`] as
    /// [`connect`](Self::connect).
    pub async fn open(url: &str, settings: Settings) -> Result<Self> {
        Self::connect(&url.parse()?, settings).await
    }

    /// Sets up the pool and opens one connection, so that a server that
    /// cannot be reached, a refused login or a failed TLS check is an
    /// error now, naming what failed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for certificate files that cannot be read;
    /// [`Error::Backend`] when the server cannot be reached, refuses the
    /// login or fails the TLS check, within the call timeout.
    pub async fn connect(url: &PostgresUrl, settings: Settings) -> Result<Self> {
        let configure = |driver_url: &str| {
            let mut config: tokio_postgres::Config = driver_url
                .parse()
                .map_err(|e| Error::invalid_input("PostgreSQL URL", format!("{url}: {e}")))?;
            config.connect_timeout(settings.call_timeout);
            if config.get_application_name().is_none() {
                config.application_name("forgeflow");
            }
            Ok::<_, Error>(config)
        };
        let mut config = configure(&url.driver_url)?;
        let mut listen_config = configure(&url.listen_url)?;
        let mode = if url.tls {
            tokio_postgres::config::SslMode::Require
        } else {
            tokio_postgres::config::SslMode::Disable
        };
        config.ssl_mode(mode);
        listen_config.ssl_mode(mode);
        let tls = if url.tls {
            Some(MakeRustlsConnect::new(tls::client_config(url)?))
        } else {
            None
        };
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.call_timeout))
            .create_timeout(Some(settings.call_timeout))
            .recycle_timeout(Some(settings.call_timeout))
            .build()
            .map_err(|e| backend(format!("cannot set up a pool for {url}: {e}")))?;
        let db = Self {
            inner: Arc::new(Inner {
                url: url.clone(),
                settings,
                pool,
                config,
                listen_config,
                tls,
            }),
        };
        drop(db.client("connecting").await?);
        Ok(db)
    }

    /// The URL.
    #[must_use]
    pub fn url(&self) -> &PostgresUrl {
        &self.inner.url
    }

    /// The schema ForgeFlow's tables live in (a plain identifier: it may
    /// be written into SQL as is).
    #[must_use]
    pub fn schema(&self) -> &str {
        self.inner.url.schema()
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.inner.settings
    }

    /// `host:port/database`, for operators.
    #[must_use]
    pub fn endpoint(&self) -> String {
        self.inner.url.endpoint()
    }

    /// A connection from the pool (a new one if none is idle), within the
    /// call timeout.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the server and what failed.
    pub async fn client(&self, what: &str) -> Result<Client> {
        match self.inner.pool.get().await {
            Ok(client) => Ok(client),
            Err(PoolError::Backend(e)) => Err(self.error(what, &e)),
            Err(PoolError::Timeout(_)) => Err(backend(format!(
                "{what} on PostgreSQL {}: no connection within {:?} (the server is slow to \
                 answer, or every connection of the pool is busy)",
                self.inner.url.redacted(),
                self.inner.settings.call_timeout
            ))),
            Err(e) => Err(backend(format!(
                "{what} on PostgreSQL {}: {e}",
                self.inner.url.redacted()
            ))),
        }
    }

    /// Runs `call` (a statement on a client) within the call timeout,
    /// mapping its failure.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the server and what failed, or that the
    /// call took longer than the call timeout.
    pub async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.inner.settings.call_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(what, &e)),
            Err(_) => Err(backend(format!(
                "{what} on PostgreSQL {}: no answer within {:?}",
                self.inner.url.redacted(),
                self.inner.settings.call_timeout
            ))),
        }
    }

    /// Opens a connection of its own (not pooled) and `LISTEN`s on
    /// `channel` (a plain identifier) there: see [`Listener`].
    ///
    /// # Errors
    /// [`Error::Backend`] when the connection or the `LISTEN` fails.
    pub async fn listen(&self, channel: &str) -> Result<Listener> {
        listen::open(self, channel).await
    }

    /// Maps a driver error to an [`Error::Backend`] that says what failed
    /// and what to do.
    #[must_use]
    pub fn error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        let url = &self.inner.url;
        let user = self.inner.config.get_user().unwrap_or("(none)");
        let detail = if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                format!(
                    "authentication failed for user {user:?}: {}; check the user and password \
                     in the URL (and the server's pg_hba.conf)",
                    db.message()
                )
            } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
                format!(
                    "user {user:?} lacks a privilege: {}; grant it (docs/postgres.md lists \
                     what ForgeFlow needs), or have the schema's owner run ff once",
                    db.message()
                )
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                format!(
                    "{}; create the database, or name an existing one in the URL",
                    db.message()
                )
            } else {
                format!("{} ({})", db.message(), code.code())
            }
        } else {
            let text = full_chain(e);
            let hint = if text.contains("Connection refused") {
                Some(format!(
                    "nothing accepts connections at {}:{}: is PostgreSQL running there?",
                    url.host, url.port
                ))
            } else if e.is_closed() || text.contains("connection closed") {
                Some("the server closed the connection (a restart, a failover, an idle timeout); the next call reconnects".to_owned())
            } else {
                tls::hint(&text, url)
            };
            match hint {
                Some(h) => format!("{text}; {h}"),
                None => text,
            }
        };
        Error::backend(
            "postgres",
            format!("{what} on PostgreSQL {}: {detail}", url.redacted()),
            e.to_string(),
        )
    }

    /// How `LISTEN` connects.
    pub(crate) fn listen_config(&self) -> (&tokio_postgres::Config, Option<&MakeRustlsConnect>) {
        (&self.inner.listen_config, self.inner.tls.as_ref())
    }
}

/// An error and its sources, joined: the driver's top-level message is
/// often only "error connecting to server".
fn full_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// An [`Error::Backend`] of this backend without an underlying error.
#[must_use]
pub fn backend(message: impl Into<String>) -> Error {
    Error::Backend {
        backend: "postgres".into(),
        message: message.into(),
        source: None,
    }
}

/// Milliseconds since the Unix epoch, as a signed column value.
#[must_use]
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

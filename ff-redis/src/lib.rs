//! # ff-redis
//!
//! The Redis plumbing ForgeFlow's Redis backends share: a connection that
//! reconnects by itself, every call bounded by a timeout and its failure
//! mapped to an [`Error::Backend`] naming the server (password redacted),
//! and `SCAN` over a key pattern (never `KEYS`, and on every master of a
//! cluster); TLS for `rediss://` URLs, with a CA and a client certificate
//! of the user's choosing; the master a set of Sentinels names
//! (`redis+sentinel://`), followed across failovers; a Redis Cluster
//! (`redis+cluster://`); `?min_replicas=N` (see [`Connection::open`]).
//!
//! ## Connection settings, in one place
//!
//! Every Redis backend (locks, records) connects through
//! [`Connection::open`] with one setting of its own, the **call timeout**
//! (`RedisLockConfig::call_timeout`, `RedisStoreConfig::call_timeout`,
//! default 2 s). From it:
//!
//! | what | value |
//! |---|---|
//! | connect timeout (first connection, reconnections) | the call timeout |
//! | one call (a command, a script, a subscription) | the call timeout; then a backend error (exit 69) naming the server |
//! | connection | one multiplexed connection per backend, shared by all its tasks (pub/sub waiters open their own) |
//! | reconnection (one server, a Sentinel's master) | automatic, 2 retries a call, backoff up to 500 ms |
//! | failover (Sentinel) | a failing call makes the Sentinels be asked for the master again, at most every 100 ms; the failing call itself fails |
//! | cluster | the cluster client's connection to every master, routing by slot, following `MOVED`/`ASK`; connect and response timeouts are the call timeout |
//! | `?min_replicas=N` | `WAIT N` after every write, for up to half the call timeout |
//! | change feed ([`Connection::keyspace_feed`]) | a subscription to the prefix's keyspace events where the server publishes them; resubscribed 1 s after a break; the server's setting read again every 30 s |
//! | TLS | rustls; the server's certificate checked against `?ca=`/`FF_REDIS_CA`/the system's roots; no switch to skip it |
//!
//! [`Connection::node_address`] says which node calls go to.

#![forbid(unsafe_code)]

mod cluster;
mod keyspace;
mod sentinel;
mod tls;
mod url;

pub use keyspace::notifications_cover;
pub use url::{Deployment, RedisUrl};

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ff_traits::{Error, Result};
use redis::aio::ConnectionManager;

/// A connection to Redis: one server, or the master a set of Sentinels
/// names. Cheap to clone (clones share it).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    call_timeout: Duration,
    /// `?min_replicas=N`: every call waits for N replicas to acknowledge
    /// the writes made so far on the connection (`WAIT`).
    min_replicas: Option<u32>,
    /// For a Sentinel URL: who to ask which node is the master.
    sentinel: Option<tokio::sync::Mutex<Sentinel>>,
    node: RwLock<Node>,
}

struct Sentinel {
    client: redis::sentinel::SentinelClient,
    /// When the master was last asked for, so a burst of failing calls
    /// asks once.
    asked: Option<Instant>,
}

/// The node calls go to, and a connection to it.
#[derive(Clone)]
struct Node {
    /// For pub/sub: the node itself, or a cluster's first node (a
    /// `PUBLISH` reaches every node of a cluster).
    client: redis::Client,
    conn: Conn,
}

/// A connection to issue commands on: one node's reconnecting connection,
/// or a cluster's, which routes each command to the master of its keys'
/// slot and follows redirections while slots move.
#[derive(Clone)]
pub enum Conn {
    /// One server (plain, TLS, or the master Sentinels name).
    Node(ConnectionManager),
    /// A Redis Cluster.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// How often, at most, a failing call makes the Sentinels be asked again.
const REASK_AFTER: Duration = Duration::from_millis(100);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &redact(&self.inner.url))
            .field("call_timeout", &self.inner.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `url`: `redis://[user:password@]host:port[/db]`; over
    /// TLS `rediss://…[?ca=PATH][&cert=PATH&key=PATH]`; or through Redis
    /// Sentinel, `redis+sentinel://[user:password@]host:port[,host:port…]/master-name[/db]`.
    ///
    /// Over TLS the server's certificate is checked against the CA in `ca`
    /// (PEM), else `FF_REDIS_CA`, else the system's trusted roots; `cert`
    /// and `key` (else `FF_REDIS_CERT` and `FF_REDIS_KEY`) are a client
    /// certificate for servers that ask for one. There is no switch to
    /// skip the check.
    ///
    /// `?min_replicas=N` (any form): a write ([`call_write`](Self::call_write))
    /// succeeds only once `N` replicas acknowledged the writes made so far
    /// (`WAIT N`, up to half the call timeout), so what it wrote survives a
    /// failover to one of them; otherwise it fails saying so (what it
    /// wrote stays on the master). Every write then costs a second round
    /// trip; reads do not wait.
    ///
    /// A cluster, `redis+cluster://[user:password@]host:port[,host:port…]`:
    /// commands are routed by their keys' slot (a script's keys must share
    /// one: give them a `{tag}`); pub/sub goes through the first node.
    ///
    /// Through Sentinel, calls go to the master the first answering
    /// Sentinel names; when a call fails, the Sentinels are asked again
    /// (at most every 100 ms), so calls after a failover reach the
    /// promoted replica. The failing call itself still fails.
    ///
    /// ```no_run
    /// # async fn demo() -> ff_traits::Result<()> {
    /// use std::time::Duration;
    /// let redis = ff_redis::Connection::open(
    ///     "rediss://redis.internal:6380/0?ca=/etc/ssl/redis-ca.pem",
    ///     Duration::from_secs(5),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL or a certificate file
    /// that cannot be read; [`Error::Backend`] when the server (or a
    /// Sentinel, or the master it names) cannot be reached within
    /// `call_timeout`, or a certificate is refused (the message says
    /// which check failed).
    pub async fn open(url: &str, call_timeout: Duration) -> Result<Self> {
        Self::connect(&url.parse()?, call_timeout).await
    }

    /// [`open`](Self::open) for a URL already taken apart: a program that
    /// checked its URL when reading its settings connects without taking
    /// it apart again.
    ///
    /// # Errors
    /// As [`open`](Self::open), less the malformed URL.
    pub async fn connect(url: &RedisUrl, call_timeout: Duration) -> Result<Self> {
        let server_url = url.server_url();
        let (client, conn, sentinel) = match url.deployment() {
            Deployment::Cluster => {
                let (client, conn) = cluster::connect(server_url, call_timeout).await?;
                (client, Conn::Cluster(conn), None)
            }
            Deployment::Sentinel => {
                let mut s = sentinel::client(server_url)?;
                let master = ask_master(&mut s, server_url, call_timeout).await?;
                let conn = connect(&master, server_url, call_timeout, None).await?;
                (master, Conn::Node(conn), Some(s))
            }
            Deployment::Node { .. } => {
                let (client, target) = open_client(server_url)?;
                let conn = connect(&client, server_url, call_timeout, Some(&target)).await?;
                (client, Conn::Node(conn), None)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                url: server_url.to_owned(),
                call_timeout,
                min_replicas: url.min_replicas(),
                sentinel: sentinel.map(|client| {
                    tokio::sync::Mutex::new(Sentinel {
                        client,
                        asked: Some(Instant::now()),
                    })
                }),
                node: RwLock::new(Node { client, conn }),
            }),
        })
    }

    /// The server's clock (`TIME`), to compare with this host's: lease
    /// deadlines and fencing tokens are judged by it.
    ///
    /// # Errors
    /// [`Error::Backend`] when the server cannot be asked.
    pub async fn server_time(&self) -> Result<ff_traits::Timestamp> {
        let mut conn = self.manager();
        let (secs, micros): (u64, u64) = self
            .call("reading the server's clock", async {
                match &mut conn {
                    Conn::Node(c) => redis::cmd("TIME").query_async(c).await,
                    Conn::Cluster(c) => redis::cmd("TIME").query_async(c).await,
                }
            })
            .await?;
        Ok(ff_traits::Timestamp::from_millis(
            secs.saturating_mul(1000).saturating_add(micros / 1000),
        ))
    }

    fn node(&self) -> Node {
        self.inner
            .node
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The client of the node calls go to, for connections of other kinds
    /// (pub/sub).
    pub fn client(&self) -> redis::Client {
        self.node().client
    }

    /// The multiplexed, reconnecting connection to the node calls go to
    /// (or the cluster), to issue commands on.
    pub fn manager(&self) -> Conn {
        self.node().conn
    }

    /// Whether this is a Redis Cluster: a script's keys must then share
    /// one hash slot (a `{tag}` in each key).
    pub fn is_cluster(&self) -> bool {
        matches!(self.node().conn, Conn::Cluster(_))
    }

    /// `host:port` of the node calls go to (for a Sentinel URL, the master
    /// it last named).
    pub fn node_address(&self) -> String {
        self.node().client.get_connection_info().addr().to_string()
    }

    /// After a failed call through Sentinel: asks which node is the master
    /// now and, when it changed, sends later calls there.
    async fn reask_master(&self) {
        let Some(sentinel) = &self.inner.sentinel else {
            return;
        };
        let mut s = sentinel.lock().await;
        if s.asked.is_some_and(|at| at.elapsed() < REASK_AFTER) {
            return;
        }
        s.asked = Some(Instant::now());
        let url = &self.inner.url;
        let timeout = self.inner.call_timeout;
        let master = match ask_master(&mut s.client, url, timeout).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "asking the Sentinels for the master failed");
                return;
            }
        };
        let now = master.get_connection_info().addr().to_string();
        if now == self.node_address() {
            return;
        }
        match connect(&master, url, timeout, None).await {
            Ok(manager) => {
                tracing::warn!(url = %redact(url), master = %now, "the Sentinels name a new master; calls go there now");
                *self
                    .inner
                    .node
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Node {
                    client: master,
                    conn: Conn::Node(manager),
                };
            }
            Err(e) => {
                tracing::debug!(master = %now, error = %e, "cannot reach the master the Sentinels name yet");
            }
        }
    }

    /// Runs a Redis call under the call timeout; a failure or timeout
    /// becomes an [`Error::Backend`] saying `what` was being done, where.
    /// Through Sentinel, a failure also makes the Sentinels be asked for
    /// the master again.
    ///
    /// # Errors
    /// As said.
    pub async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let url = &self.inner.url;
        let failed = match tokio::time::timeout(self.inner.call_timeout, fut).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => format!("{what} at {}: {e}", redact(url)),
            Err(_) => format!(
                "{what} at {} took longer than {:?}; is the server reachable?",
                redact(url),
                self.inner.call_timeout
            ),
        };
        self.reask_master().await;
        Err(backend_error(failed))
    }

    /// As [`call`](Self::call), for a call that writes: with
    /// `?min_replicas=N`, it succeeds only once N replicas acknowledged
    /// the connection's writes (reads need no acknowledgement, and go on
    /// while replicas are missing).
    ///
    /// # Errors
    /// As [`call`](Self::call); a backend error when too few replicas
    /// acknowledged in time (the write stays on the master).
    pub async fn call_write<T>(
        &self,
        what: &str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let v = self.call(what, fut).await?;
        if let Some(n) = self.inner.min_replicas {
            self.wait_for_replicas(what, n).await?;
        }
        Ok(v)
    }

    /// `WAIT n`: until `n` replicas acknowledged every write made so far
    /// on the connection, or half the call timeout.
    async fn wait_for_replicas(&self, what: &str, n: u32) -> Result<()> {
        // Half the call timeout: the server must answer before the
        // connection's own response timeout (the call timeout) runs out.
        let timeout = self.inner.call_timeout / 2;
        let millis = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut conn = self.manager();
        let url = redact(&self.inner.url);
        let acked: i64 = match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            redis::cmd("WAIT").arg(n).arg(millis).query_async(&mut conn),
        )
        .await
        {
            Ok(Ok(acked)) => acked,
            Ok(Err(e)) => {
                return Err(backend_error(format!(
                    "{what} at {url}: waiting for replicas failed: {e}"
                )));
            }
            Err(_) => {
                return Err(backend_error(format!(
                    "{what} at {url}: WAIT did not return"
                )));
            }
        };
        if acked < i64::from(n) {
            return Err(backend_error(format!(
                "{what} at {url}: only {acked} of the {n} replicas asked for (min_replicas) \
                 acknowledged it within {timeout:?}; it was made on the master and may be lost \
                 if the master fails now"
            )));
        }
        Ok(())
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob), by `SCAN`, each
    /// once, sorted.
    ///
    /// # Errors
    /// [`Error::Backend`] when a call fails.
    pub async fn scan_keys(&self, what: &str, pattern: &str) -> Result<Vec<String>> {
        let mut keys = if let Conn::Cluster(conn) = self.manager() {
            // SCAN walks one node: walk every master.
            let mut keys = Vec::new();
            for node in cluster::masters(self, conn, what).await? {
                keys.extend(scan_node(self, what, pattern, node).await?);
            }
            keys
        } else {
            scan_node(self, what, pattern, self.manager()).await?
        };
        // SCAN may return a key more than once (when the table is resized
        // during the walk): each key once, for callers that list records.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }
}

/// `SCAN MATCH pattern` over one node.
/// Keys `SCAN` looks at per call: the whole keyspace is walked whatever
/// the pattern, so a prefix of 1,000 keys among 100,000 others costs 100
/// round trips at 1,000 a call.
const SCAN_COUNT: u32 = 10_000;

async fn scan_node<C: redis::aio::ConnectionLike + Send>(
    redis: &Connection,
    what: &str,
    pattern: &str,
    mut conn: C,
) -> Result<Vec<String>> {
    {
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis
                .call(
                    what,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query_async(&mut conn),
                )
                .await?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                return Ok(keys);
            }
        }
    }
}

/// `url` without its `min_replicas=N` parameter, and N.
fn take_min_replicas(url: &str) -> Result<(String, Option<u32>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut n = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("min_replicas=") {
            Some(v) => {
                n = Some(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::invalid_input(
                        "Redis URL",
                        format!(
                            "{}: min_replicas={v:?} is not a count of replicas (1 or more)",
                            redact(url)
                        ),
                    )
                })?);
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, n))
}

/// A client for a `redis://` or `rediss://` URL, and the URL taken apart
/// (read once: certificate files included).
fn open_client(url: &str) -> Result<(redis::Client, tls::Target)> {
    let target = tls::target(url)?;
    let client = match target.tls.clone() {
        Some(certificates) => redis::Client::build_with_tls(target.url.as_str(), certificates),
        None => redis::Client::open(target.url.as_str()),
    }
    .map_err(|e| Error::invalid_input("Redis URL", format!("{}: {e}", redact(url))))?;
    Ok((client, target))
}

/// The master the Sentinels name, under the call timeout.
async fn ask_master(
    sentinel: &mut redis::sentinel::SentinelClient,
    url: &str,
    timeout: Duration,
) -> Result<redis::Client> {
    match tokio::time::timeout(timeout, sentinel.async_get_client()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(backend_error(format!(
            "no master from the Sentinels of {}: {e}",
            redact(url)
        ))),
        Err(_) => Err(backend_error(format!(
            "no answer from the Sentinels of {} within {timeout:?}",
            redact(url)
        ))),
    }
}

/// A reconnecting connection to `client`'s node, checked by connecting
/// within `timeout`; errors name `url` and say what a refusal means
/// (`target`: the URL taken apart, for its TLS settings).
async fn connect(
    client: &redis::Client,
    url: &str,
    timeout: Duration,
    target: Option<&tls::Target>,
) -> Result<ConnectionManager> {
    let tls_target = target.filter(|t| t.tls.is_some());
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    tokio::time::timeout(timeout, client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| {
            let hint = if tls_target.is_some() {
                " (a server that does not speak TLS on this port never answers a TLS \
                 handshake: is this its TLS port? use redis:// for a plain one)"
            } else {
                ""
            };
            backend_error(format!(
                "cannot connect to {}: timed out{hint}",
                redact(url)
            ))
        })?
        .map_err(|e| {
            let e = e.to_string();
            let hint = tls::hint(
                &e,
                tls_target.is_some(),
                tls_target.as_ref().and_then(|t| t.ca.as_deref()),
            )
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
            backend_error(format!("cannot connect to {}: {e}{hint}", redact(url)))
        })
}

/// An [`Error::Backend`] of the Redis backends.
pub fn backend_error(message: impl Into<String>) -> Error {
    Error::Backend {
        backend: "redis".into(),
        message: message.into(),
        source: None,
    }
}

/// The URL without its password, for messages.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// `prefix` as a literal in a `SCAN MATCH` glob.
#[must_use]
pub fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn min_replicas_is_taken_off_the_url() {
        let (url, n) =
            take_min_replicas("redis://h:1/0?min_replicas=2&protocol=resp2").expect("parsed");
        assert_eq!((url.as_str(), n), ("redis://h:1/0?protocol=resp2", Some(2)));
        let (url, n) = take_min_replicas("redis+sentinel://h:1/m?min_replicas=1").expect("parsed");
        assert_eq!((url.as_str(), n), ("redis+sentinel://h:1/m", Some(1)));
        for bad in ["redis://h:1?min_replicas=0", "redis://h:1?min_replicas=x"] {
            assert!(take_min_replicas(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}

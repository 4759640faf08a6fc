//! # ff-redis
//!
//! The Redis plumbing ForgeFlow's Redis backends share: a connection that
//! reconnects by itself, every call bounded by a timeout and its failure
//! mapped to an [`Error::Backend`] naming the server (password redacted),
//! and `SCAN` over a key pattern (never `KEYS`); TLS for `rediss://` URLs,
//! with a CA and a client certificate of the user's choosing (see
//! [`Connection::open`]).

#![forbid(unsafe_code)]

mod tls;

use std::future::Future;
use std::time::Duration;

use ff_traits::{Error, Result};
use redis::aio::ConnectionManager;

/// A connection to one Redis server. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    url: String,
    call_timeout: Duration,
    client: redis::Client,
    manager: ConnectionManager,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &redact(&self.url))
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `url`: `redis://[user:password@]host:port[/db]`, or over
    /// TLS `rediss://…[?ca=PATH][&cert=PATH&key=PATH]`. Over TLS the
    /// server's certificate is checked against the CA in `ca` (PEM), else
    /// `FF_REDIS_CA`, else the system's trusted roots; `cert` and `key`
    /// (else `FF_REDIS_CERT` and `FF_REDIS_KEY`) are a client certificate
    /// for servers that ask for one. There is no switch to skip the check.
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
    /// that cannot be read; [`Error::Backend`] when the server cannot be
    /// reached within `call_timeout` or its certificate is refused (the
    /// message says which check failed).
    pub async fn open(url: &str, call_timeout: Duration) -> Result<Self> {
        let target = tls::target(url)?;
        let client = match target.tls.clone() {
            Some(certificates) => redis::Client::build_with_tls(target.url.as_str(), certificates),
            None => redis::Client::open(target.url.as_str()),
        }
        .map_err(|e| Error::invalid_input("Redis URL", format!("{}: {e}", redact(url))))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(call_timeout))
            .set_response_timeout(Some(call_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = tokio::time::timeout(
            call_timeout,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| {
            let hint = if target.tls.is_some() {
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
            let hint = tls::hint(&e, target.tls.is_some(), target.ca.as_deref())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            backend_error(format!("cannot connect to {}: {e}{hint}", redact(url)))
        })?;
        Ok(Self {
            url: url.to_owned(),
            call_timeout,
            client,
            manager,
        })
    }

    /// The client, for connections of other kinds (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The multiplexed, reconnecting connection, to issue commands on.
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Runs a Redis call under the call timeout; a failure or timeout
    /// becomes an [`Error::Backend`] saying `what` was being done, where.
    ///
    /// # Errors
    /// As said.
    pub async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(backend_error(format!(
                "{what} at {}: {e}",
                redact(&self.url)
            ))),
            Err(_) => Err(backend_error(format!(
                "{what} at {} took longer than {:?}; is the server reachable?",
                redact(&self.url),
                self.call_timeout
            ))),
        }
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob), by `SCAN`.
    ///
    /// # Errors
    /// [`Error::Backend`] when a call fails.
    pub async fn scan_keys(&self, what: &str, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.manager();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .call(
                    what,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
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
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}

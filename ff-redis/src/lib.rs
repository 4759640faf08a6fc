//! # ff-redis
//!
//! The Redis plumbing ForgeFlow's Redis backends share: a connection that
//! reconnects by itself, every call bounded by a timeout and its failure
//! mapped to an [`Error::Backend`] naming the server (password redacted),
//! and `SCAN` over a key pattern (never `KEYS`).

#![forbid(unsafe_code)]

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
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed URL; [`Error::Backend`] when
    /// the server cannot be reached within `call_timeout`.
    pub async fn open(url: &str, call_timeout: Duration) -> Result<Self> {
        if url.starts_with("rediss://") {
            return Err(Error::Unsupported {
                backend: "redis".into(),
                what: format!(
                    "TLS ({}): this build has no TLS support; use redis:// (through a TLS \
                     tunnel if the network needs one)",
                    redact(url)
                ),
            });
        }
        let client = redis::Client::open(url)
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
        .map_err(|_| backend_error(format!("cannot connect to {}: timed out", redact(url))))?
        .map_err(|e| backend_error(format!("cannot connect to {}: {e}", redact(url))))?;
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

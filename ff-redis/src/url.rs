//! A Redis URL, taken apart once: [`RedisUrl`] checks every form
//! [`Connection::open`](crate::Connection::open) accepts, so a program
//! (the `ff` command line, a configuration loader) refuses a bad one before
//! anything connects, with the same words `open` would use.

use std::fmt;
use std::str::FromStr;

use ff_traits::{Error, Result};

use crate::{cluster, redact, sentinel, take_min_replicas};

/// How the URL reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deployment {
    /// One server: `redis://` or, over TLS, `rediss://`.
    Node {
        /// `rediss://`.
        tls: bool,
    },
    /// The master Sentinels name: `redis+sentinel://`.
    Sentinel,
    /// A Redis Cluster: `redis+cluster://`.
    Cluster,
}

/// A Redis URL whose shape was checked: a scheme ff knows, hosts and ports,
/// a database number, `?min_replicas=N`, TLS parameters only with TLS.
/// Certificate files are read when connecting, not here.
///
/// ```
/// use ff_redis::{Deployment, RedisUrl};
///
/// let url: RedisUrl = "rediss://cache:6380/2?ca=/etc/ca.pem".parse().unwrap();
/// assert_eq!(url.deployment(), Deployment::Node { tls: true });
/// assert!("redis://cache:port".parse::<RedisUrl>().is_err());
/// assert!("redis+cluster://a:7000,b:7001".parse::<RedisUrl>().is_ok());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    /// `url` without ff's own `min_replicas` parameter: what the client
    /// library is given.
    server_url: String,
    deployment: Deployment,
    min_replicas: Option<u32>,
}

impl RedisUrl {
    /// The URL as given (it may hold a password: show
    /// [`redacted`](Self::redacted)).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL with any password replaced, for messages.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    /// How it reaches Redis.
    #[must_use]
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// `?min_replicas=N`, when given.
    #[must_use]
    pub fn min_replicas(&self) -> Option<u32> {
        self.min_replicas
    }

    /// The URL without ff's own parameters, as the client library takes it.
    pub(crate) fn server_url(&self) -> &str {
        &self.server_url
    }
}

/// The password stays out of debug output too.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("url", &self.redacted())
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for RedisUrl {
    type Err = Error;

    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong and the form expected.
    fn from_str(url: &str) -> Result<Self> {
        let (without, min_replicas) = take_min_replicas(url)?;
        let deployment = if without.starts_with(cluster::SCHEME) {
            if min_replicas.is_some() {
                return Err(Error::invalid_input(
                    "Redis URL",
                    format!(
                        "{}: min_replicas is not supported on a cluster yet",
                        redact(url)
                    ),
                ));
            }
            cluster::node_urls(&without)?;
            Deployment::Cluster
        } else if without.starts_with(sentinel::SCHEME) {
            sentinel::client(&without)?;
            Deployment::Sentinel
        } else {
            node_shape(&without)?
        };
        Ok(Self {
            url: url.to_owned(),
            server_url: without,
            deployment,
            min_replicas,
        })
    }
}

/// `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` with its TLS
/// parameters.
fn node_shape(url: &str) -> Result<Deployment> {
    let (rest, tls) = match (url.strip_prefix("redis://"), url.strip_prefix("rediss://")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => {
            return Err(Error::invalid_input(
                "Redis URL",
                format!(
                    "{}: not a Redis URL; use redis://HOST:PORT[/DB] (rediss:// for TLS, \
                     redis+sentinel://HOST:PORT[,…]/MASTER for Sentinel, \
                     redis+cluster://HOST:PORT[,…] for a cluster)",
                    redact(url)
                ),
            ));
        }
    };
    // TLS parameters (`?ca=PATH…`) may hold any character; the shape
    // checked here ends before them.
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "6379"));
    let db_ok = rest
        .split_once('/')
        .is_none_or(|(_, db)| db.is_empty() || db.parse::<u32>().is_ok());
    if host.is_empty() || port.parse::<u16>().is_err() || !db_ok {
        return Err(Error::invalid_input(
            "Redis URL",
            format!(
                "malformed Redis URL {:?}; expected redis://[USER:PASSWORD@]HOST:PORT[/DB], or \
                 rediss://…[?ca=PATH][&cert=PATH&key=PATH] for TLS",
                redact(url)
            ),
        ));
    }
    if !tls
        && let Some(name) = query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .find(|k| crate::tls::PARAMETERS.iter().any(|(p, _)| p == k))
    {
        return Err(Error::invalid_input(
            "Redis URL",
            format!(
                "{}: ?{name}= is for TLS connections; use rediss:// (and a server's TLS port)",
                redact(url)
            ),
        ));
    }
    Ok(Deployment::Node { tls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(url: &str) -> Option<Deployment> {
        url.parse::<RedisUrl>().ok().map(|u| u.deployment())
    }

    #[test]
    fn every_form_open_takes_is_taken_apart() {
        assert_eq!(
            kind("redis://h:6379/0"),
            Some(Deployment::Node { tls: false })
        );
        assert_eq!(kind("redis://u:p@h"), Some(Deployment::Node { tls: false }));
        assert_eq!(
            kind("rediss://h:6380?ca=/x.pem"),
            Some(Deployment::Node { tls: true })
        );
        assert_eq!(
            kind("redis+sentinel://a:26379,b:26380/main/1"),
            Some(Deployment::Sentinel)
        );
        assert_eq!(
            kind("redis+cluster://a:7000,b:7001"),
            Some(Deployment::Cluster)
        );
        let u: RedisUrl = "redis://h:1/0?min_replicas=2".parse().expect("parses");
        assert_eq!(u.min_replicas(), Some(2));
    }

    #[test]
    fn bad_forms_are_refused_with_what_is_wrong() {
        for (url, says) in [
            ("redis://h:port", "malformed Redis URL"),
            ("redis://:6379", "malformed Redis URL"),
            ("redis://h:1/db", "malformed Redis URL"),
            ("redis://h:1?ca=/x.pem", "is for TLS connections"),
            ("http://h:1", "not a Redis URL"),
            ("redis+sentinel://a:1", "no master name"),
            ("redis+cluster://a:1/0", "takes no database"),
            (
                "redis+cluster://a:1?min_replicas=1",
                "not supported on a cluster",
            ),
            ("redis://h:1?min_replicas=0", "not a count of replicas"),
        ] {
            let e = url.parse::<RedisUrl>().expect_err(url).to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn a_password_never_shows() {
        let u: RedisUrl = "redis://user:hunter2@h:1".parse().expect("parses");
        assert!(!format!("{u} {u:?}").contains("hunter2"));
        let e = "redis://user:hunter2@h:port"
            .parse::<RedisUrl>()
            .expect_err("bad")
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

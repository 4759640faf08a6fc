//! `redis+cluster://[user:password@]host:port[,host:port…]`: a Redis
//! Cluster, reached through any of the nodes given (the client learns the
//! rest and follows `MOVED`/`ASK` while slots move). Commands are routed
//! by their keys' hash slot, so a script's keys must share one slot: the
//! backends put a `{tag}` in every key of one lock or record.

use std::time::Duration;

use ff_traits::{Error, Result};
use redis::cluster_async::ClusterConnection;

use crate::{Connection, backend_error, redact};

/// The scheme of cluster URLs.
pub(crate) const SCHEME: &str = "redis+cluster://";

/// The plain `redis://` URLs of the nodes a cluster URL names, with its
/// credentials.
pub(crate) fn node_urls(url: &str) -> Result<Vec<String>> {
    let bad = |why: &str| {
        Error::invalid_input(
            "Redis Cluster URL",
            format!(
                "{}: {why}; expected redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]",
                redact(url)
            ),
        )
    };
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad("not a cluster URL"))?;
    if rest.contains('?') || rest.contains('/') {
        return Err(bad(
            "takes no database and no parameters (a cluster has one database)",
        ));
    }
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let mut urls = Vec::new();
    for host in hosts.split(',') {
        let (h, p) = host.rsplit_once(':').unwrap_or((host, "6379"));
        if h.is_empty() || p.parse::<u16>().is_err() {
            return Err(bad(&format!("{host:?} is not HOST:PORT")));
        }
        urls.push(match credentials {
            Some(c) => format!("redis://{c}@{h}:{p}"),
            None => format!("redis://{h}:{p}"),
        });
    }
    Ok(urls)
}

/// Connects to the cluster: a client of its first node (for pub/sub) and
/// the cluster connection.
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(redis::Client, ClusterConnection)> {
    let nodes = node_urls(url)?;
    let bad_url = |e: redis::RedisError| {
        Error::invalid_input("Redis Cluster URL", format!("{}: {e}", redact(url)))
    };
    let first = redis::Client::open(nodes[0].as_str()).map_err(bad_url)?;
    let client = redis::cluster::ClusterClientBuilder::new(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .map_err(bad_url)?;
    let conn = tokio::time::timeout(timeout, client.get_async_connection())
        .await
        .map_err(|_| {
            backend_error(format!(
                "cannot connect to the cluster {}: timed out",
                redact(url)
            ))
        })?
        .map_err(|e| {
            backend_error(format!(
                "cannot connect to the cluster {}: {e}",
                redact(url)
            ))
        })?;
    Ok((first, conn))
}

/// A connection to each master of the cluster, as `CLUSTER NODES` lists
/// them (masters that are not failing and serve slots).
pub(crate) async fn masters(
    redis: &Connection,
    mut conn: ClusterConnection,
    what: &str,
) -> Result<Vec<redis::aio::MultiplexedConnection>> {
    let listing: String = redis
        .call(
            what,
            redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn),
        )
        .await?;
    let credentials = node_urls(&redis.inner.url)?
        .first()
        .and_then(|u| u.strip_prefix("redis://"))
        .and_then(|rest| rest.rsplit_once('@'))
        .map(|(c, _)| format!("{c}@"))
        .unwrap_or_default();
    let mut out = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") || fields.len() < 9 {
            continue;
        }
        // `ip:port@cport[,hostname]`
        let host_port = address.split('@').next().unwrap_or_default();
        let node = format!("redis://{credentials}{host_port}");
        let client = redis::Client::open(node.as_str())
            .map_err(|e| backend_error(format!("{what}: a master's address {host_port:?}: {e}")))?;
        out.push(
            redis
                .call(what, client.get_multiplexed_async_connection())
                .await?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            node_urls("redis+cluster://u:pw@h1:1,h2:2").expect("parsed"),
            ["redis://u:pw@h1:1", "redis://u:pw@h2:2"]
        );
        for bad in [
            "redis+cluster://h:1/0",
            "redis+cluster://h:x",
            "redis+cluster://:1",
            "redis+cluster://h:1?min_replicas=1",
        ] {
            let e = node_urls(bad).expect_err(bad);
            assert!(e.to_string().contains("HOST:PORT"), "{bad}: {e}");
        }
    }
}

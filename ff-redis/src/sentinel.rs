//! `redis+sentinel://[user:password@]host:port[,host:port…]/master-name[/db]`:
//! the master is asked of the Sentinels (the first that answers), and
//! asked again when a call fails, so service resumes on the replica the
//! Sentinels promote. The password and database apply to the data nodes;
//! the Sentinels are reached without them.

use ff_traits::{Error, Result};
use redis::IntoConnectionInfo;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

use crate::redact;

/// The scheme of Sentinel URLs.
pub(crate) const SCHEME: &str = "redis+sentinel://";

/// A Sentinel URL taken apart.
pub(crate) fn client(url: &str) -> Result<SentinelClient> {
    let bad = |why: &str| {
        Error::invalid_input(
            "Redis Sentinel URL",
            format!(
                "{}: {why}; expected redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER-NAME[/DB]",
                redact(url)
            ),
        )
    };
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad("not a Sentinel URL"))?;
    if rest.contains('?') {
        return Err(bad(
            "takes no parameters (TLS to Sentinels is not supported yet)",
        ));
    }
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no master name"))?;
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let mut segments = path.split('/');
    let master = segments.next().unwrap_or_default();
    if master.is_empty() {
        return Err(bad("no master name"));
    }
    let db = match segments.next() {
        None | Some("") => 0,
        Some(db) => db
            .parse::<i64>()
            .map_err(|_| bad(&format!("database {db:?} is not a number")))?,
    };
    if segments.next().is_some() {
        return Err(bad("too many path segments"));
    }
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        let (h, p) = host.rsplit_once(':').unwrap_or((host, "26379"));
        if h.is_empty() || p.parse::<u16>().is_err() {
            return Err(bad(&format!("{host:?} is not HOST:PORT")));
        }
        sentinels.push(format!("redis://{h}:{p}"));
    }
    // The data nodes' settings, by the one parser there is for them.
    let node_url = match credentials {
        Some(c) => format!("redis://{c}@127.0.0.1/{db}"),
        None => format!("redis://127.0.0.1/{db}"),
    };
    let settings = node_url
        .into_connection_info()
        .map_err(|e| bad(&e.to_string()))?
        .redis_settings()
        .clone();
    let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
    SentinelClient::build(sentinels, master, Some(node), SentinelServerType::Master)
        .map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(client("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster").is_ok());
        assert!(client("redis+sentinel://u:pw@h1:1,h2:2/m/3").is_ok());
        for bad in [
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel://127.0.0.1:x/m",
            "redis+sentinel://:1/m",
            "redis+sentinel://h:1/m/notadb",
            "redis+sentinel://h:1/m/0/extra",
            "redis+sentinel://h:1/m?ca=x",
            "redis+sentinel://h:1/m?min_replicas=1",
        ] {
            let Err(e) = client(bad) else {
                panic!("{bad} was accepted")
            };
            assert!(matches!(e, Error::InvalidInput { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains("MASTER-NAME"), "{bad}: {e}");
        }
        let Err(e) = client("redis+sentinel://u:secret@h:1/m/x") else {
            panic!("a bad database was accepted")
        };
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}

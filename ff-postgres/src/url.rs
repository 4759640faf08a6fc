//! A PostgreSQL URL, taken apart once: [`PostgresUrl`] checks every form
//! [`Database::open`](crate::Database::open) accepts, so a program (the
//! `ff` command line, a configuration loader) refuses a bad one before
//! anything connects, with the same words `open` would use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ff_traits::{Error, Result};

/// The query parameters ForgeFlow reads itself; every other one goes to
/// the driver (which refuses those it does not know).
const OURS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "schema",
    "wakeups",
    "listen_port",
];

/// How waiters learn that a lock was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wakeups {
    /// `LISTEN` on a connection of its own (the default), with polling
    /// beside it in case a notification is missed.
    Listen,
    /// Polling only (`?wakeups=poll`): for a transaction-pooling
    /// pgbouncer with no direct port to `LISTEN` on.
    Poll,
}

/// A PostgreSQL URL whose shape was checked: `postgres://` or
/// `postgresql://`, a host, TLS settings ForgeFlow accepts, a schema name
/// that is a plain identifier. Certificate files are read when connecting,
/// not here.
///
/// ForgeFlow's own parameters (taken off before the driver sees the URL):
///
/// | parameter | meaning |
/// |---|---|
/// | `sslmode=disable` (default) or `verify-full` | plain, or TLS with the server's certificate and name checked; the modes that skip a check (`require`, `verify-ca`, `prefer`, `allow`) are refused |
/// | `sslrootcert=PATH` | the CA to trust (default, or `system`: the system's roots); `PGSSLROOTCERT` |
/// | `sslcert=PATH`, `sslkey=PATH` | a client certificate and its key; `PGSSLCERT`, `PGSSLKEY` |
/// | `schema=NAME` | the schema ForgeFlow's tables live in (default `forgeflow`) |
/// | `wakeups=listen` (default) or `poll` | how waiters learn of releases |
/// | `listen_port=PORT` | `LISTEN` on this port of the same host (the server itself, when the URL names a pgbouncer) |
///
/// ```
/// use ff_postgres::PostgresUrl;
///
/// let url: PostgresUrl = "postgres://ff:secret@db:5432/app?schema=ci".parse().unwrap();
/// assert_eq!(url.schema(), "ci");
/// assert_eq!(url.redacted(), "postgres://ff:***@db:5432/app?schema=ci");
/// assert!("postgres://db/app?sslmode=require".parse::<PostgresUrl>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    /// The URL without ForgeFlow's parameters: what the driver parses.
    pub(crate) driver_url: String,
    pub(crate) tls: bool,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
    schema: String,
    wakeups: Wakeups,
    /// As `driver_url`, with `listen_port` for the port.
    pub(crate) listen_url: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
}

impl PostgresUrl {
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

    /// The schema ForgeFlow's tables live in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// How waiters learn of releases.
    #[must_use]
    pub fn wakeups(&self) -> Wakeups {
        self.wakeups
    }

    /// Whether connections use TLS.
    #[must_use]
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `host:port/database`, for operators.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Whether `spec` is meant as a PostgreSQL URL (by its scheme).
#[must_use]
pub fn is_postgres_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// Replaces the password of a URL by `***`, for messages.
#[must_use]
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<a malformed URL>".to_owned(),
    }
}

/// Whether `name` may name a schema: a plain lower-case identifier that
/// needs no quoting, at most 48 bytes (so the names ForgeFlow derives
/// from it stay under PostgreSQL's 63).
pub(crate) fn plain_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 48
}

impl FromStr for PostgresUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let bad =
            |why: String| Error::invalid_input("PostgreSQL URL", format!("{}: {why}", redact(url)));
        if !is_postgres_url(url) {
            return Err(bad(
                "use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".into()
            ));
        }
        let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("malformed: {e}")))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host; give postgres://USER@HOST[:PORT]/DATABASE".into()))?
            .to_owned();
        let port = parsed.port().unwrap_or(5432);
        let database = match parsed.path().trim_start_matches('/') {
            "" => parsed.username().to_owned(),
            db => db.to_owned(),
        };
        let mut ours: [Option<String>; OURS.len()] = Default::default();
        let mut kept: Vec<(String, String)> = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match OURS.iter().position(|name| *name == k) {
                Some(i) => ours[i] = Some(v.into_owned()),
                None => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        let [sslmode, rootcert, cert, key, schema, wakeups, listen_port] = ours;
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        let tls = match sslmode.as_deref() {
            None | Some("disable") => false,
            Some("verify-full") => true,
            Some(mode @ ("require" | "verify-ca" | "prefer" | "allow")) => {
                return Err(bad(format!(
                    "sslmode={mode} would not check the server's certificate and name; use \
                     sslmode=verify-full (with sslrootcert=PATH for a CA of your own), or \
                     sslmode=disable for a plain connection"
                )));
            }
            Some(other) => {
                return Err(bad(format!(
                    "unknown sslmode {other:?}; use verify-full or disable"
                )));
            }
        };
        let rootcert = rootcert.or_else(|| if tls { env("PGSSLROOTCERT") } else { None });
        let cert = cert.or_else(|| if tls { env("PGSSLCERT") } else { None });
        let key = key.or_else(|| if tls { env("PGSSLKEY") } else { None });
        if !tls && [&rootcert, &cert, &key].iter().any(|v| v.is_some()) {
            return Err(bad(
                "sslrootcert, sslcert and sslkey are for TLS; add sslmode=verify-full".into(),
            ));
        }
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "a client certificate (sslcert) and its key (sslkey) go together; give \
                     both or neither"
                        .into(),
                ));
            }
        };
        let schema = schema.unwrap_or_else(|| "forgeflow".to_owned());
        if !plain_identifier(&schema) {
            return Err(bad(format!(
                "schema {schema:?} is not a plain identifier: use lower-case letters, digits \
                 and _ (not first a digit), at most 48 bytes"
            )));
        }
        let wakeups = match wakeups.as_deref() {
            None | Some("listen") => Wakeups::Listen,
            Some("poll") => Wakeups::Poll,
            Some(other) => {
                return Err(bad(format!(
                    "unknown wakeups {other:?}; use listen or poll"
                )));
            }
        };
        let listen_port = listen_port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad(format!("listen_port {p:?} is not a port number")))
            })
            .transpose()?;
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(&kept);
        }
        let driver_url: String = parsed.to_string();
        let listen_url = match listen_port {
            Some(p) => {
                let mut u = parsed;
                u.set_port(Some(p))
                    .map_err(|()| bad("listen_port needs a host".into()))?;
                u.into()
            }
            None => driver_url.clone(),
        };
        // The driver's own check (its parameters, its host list), now, so
        // a URL it would refuse is refused here with these words.
        driver_url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            driver_url,
            tls,
            ca: rootcert.filter(|c| c != "system").map(PathBuf::from),
            client_cert,
            schema,
            wakeups,
            listen_url,
            host,
            port,
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_off_before_the_driver_sees_them() {
        let u: PostgresUrl =
            "postgres://u:pw@h:6432/db?schema=s1&application_name=x&wakeups=poll&listen_port=5432"
                .parse()
                .expect("url");
        assert_eq!(u.driver_url, "postgres://u:pw@h:6432/db?application_name=x");
        assert_eq!(u.schema(), "s1");
        assert_eq!(u.wakeups(), Wakeups::Poll);
        assert_eq!(u.listen_url, "postgres://u:pw@h:5432/db?application_name=x");
        assert_eq!(u.endpoint(), "h:6432/db");
        assert!(!format!("{u:?}").contains("pw"));
    }

    #[test]
    fn modes_that_skip_a_check_are_refused_with_what_to_use() {
        for mode in ["require", "verify-ca", "prefer", "allow"] {
            let e = format!("postgres://h/db?sslmode={mode}")
                .parse::<PostgresUrl>()
                .expect_err(mode);
            assert!(e.to_string().contains("verify-full"), "{e}");
            assert!(matches!(e, Error::InvalidInput { .. }));
        }
        let e = "postgres://h/db?sslrootcert=/ca.pem"
            .parse::<PostgresUrl>()
            .expect_err("ca without TLS");
        assert!(e.to_string().contains("sslmode=verify-full"), "{e}");
        let e = "postgres://h/db?sslmode=verify-full&sslcert=/c.pem"
            .parse::<PostgresUrl>()
            .expect_err("cert without key");
        assert!(e.to_string().contains("go together"), "{e}");
    }

    #[test]
    fn bad_shapes_are_named_and_passwords_never_shown() {
        for (url, says) in [
            (
                "postgres://u:pw@h/db?schema=Robert%27);DROP",
                "plain identifier",
            ),
            ("postgres://u:pw@h/db?frobnicate=1", "frobnicate"),
            ("postgres://u:pw@h/db?wakeups=sometimes", "wakeups"),
            ("postgres://u:pw@h/db?listen_port=0", "listen_port"),
            ("postgres://u:pw@h:port/db", "malformed"),
            ("mysql://u:pw@h/db", "postgres://"),
        ] {
            let e = url.parse::<PostgresUrl>().expect_err(url);
            let text = e.to_string();
            assert!(text.contains(says), "{url}: {text}");
            assert!(!text.contains("pw@"), "{url}: {text}");
        }
    }
}

//! TLS for `rediss://` URLs: the server's certificate is checked against
//! the system's trusted roots, or against a CA of the user's own
//! (`?ca=PATH` or `FF_REDIS_CA`); a client certificate and key for mutual
//! TLS (`?cert=PATH&key=PATH`, or `FF_REDIS_CERT` / `FF_REDIS_KEY`).
//! There is no way to skip the check: a server with a self-signed
//! certificate is reached by naming that certificate (or its CA) as `ca`.
//!
//! The parameters are ForgeFlow's, not Redis's: they are taken off the URL
//! before the Redis client sees it; a URL's own parameter wins over the
//! environment.

use std::path::{Path, PathBuf};

use ff_traits::{Error, Result};

use crate::redact;

/// The query parameters this module reads, and their environment
/// fallbacks.
pub(crate) const PARAMETERS: [(&str, &str); 3] = [
    ("ca", "FF_REDIS_CA"),
    ("cert", "FF_REDIS_CERT"),
    ("key", "FF_REDIS_KEY"),
];

/// A URL taken apart: what the Redis client is given, and the files of a
/// TLS connection.
#[derive(Debug)]
pub(crate) struct Target {
    /// The URL without ForgeFlow's parameters.
    pub(crate) url: String,
    /// For `rediss://`: the certificates to use (`None` fields: the
    /// system's roots, no client certificate).
    pub(crate) tls: Option<redis::TlsCertificates>,
    /// The CA file named, for messages.
    pub(crate) ca: Option<PathBuf>,
}

/// Takes `url` apart, reading the certificate files it (or the
/// environment) names.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed URL, TLS parameters on a
/// `redis://` URL, a certificate without its key (or the reverse), or a
/// file that cannot be read.
pub(crate) fn target(url: &str) -> Result<Target> {
    let bad = |why: String| Error::invalid_input("Redis URL", format!("{}: {why}", redact(url)));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut ours: [Option<String>; 3] = [None, None, None];
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match PARAMETERS.iter().position(|(name, _)| *name == k) {
            Some(i) => ours[i] = Some(v.into_owned()),
            None => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    let tls = parsed.scheme() == "rediss";
    if !tls {
        if let Some(i) = ours.iter().position(Option::is_some) {
            return Err(bad(format!(
                "?{}= is for TLS connections; use rediss:// (and a server's TLS port)",
                PARAMETERS[i].0
            )));
        }
        return Ok(Target {
            url: url.to_owned(),
            tls: None,
            ca: None,
        });
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    for (slot, (_, var)) in ours.iter_mut().zip(PARAMETERS) {
        if slot.is_none() {
            *slot = std::env::var(var).ok().filter(|v| !v.is_empty());
        }
    }
    let [ca, cert, key] = ours.map(|v| v.map(PathBuf::from));
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            bad(format!(
                "cannot read the {what} {}: {e}; give a PEM file's path",
                path.display()
            ))
        })
    };
    let client_tls = match (&cert, &key) {
        (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
            client_cert: read(c, "client certificate (cert)")?,
            client_key: read(k, "client key (key)")?,
        }),
        (None, None) => None,
        _ => {
            return Err(bad(
                "a client certificate (cert) and its key (key) go together; give both or neither"
                    .into(),
            ));
        }
    };
    let root_cert = ca
        .as_deref()
        .map(|p| read(p, "CA certificate (ca)"))
        .transpose()?;
    Ok(Target {
        url: parsed.into(),
        tls: Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }),
        ca,
    })
}

/// What a failed connection's error most likely means, for TLS and
/// plain connections alike; `None` when there is nothing to add.
pub(crate) fn hint(error: &str, tls: bool, ca: Option<&Path>) -> Option<String> {
    let trust = match ca {
        Some(ca) => format!("the CA given ({})", ca.display()),
        None => "the system's trusted roots (give the server's CA with ?ca=PATH or \
                 FF_REDIS_CA)"
            .to_owned(),
    };
    let e = error;
    if e.contains("UnknownIssuer") || e.contains("BadSignature") {
        return Some(format!("the server's certificate is not signed by {trust}"));
    }
    if e.contains("Expired") || e.contains("NotValidYet") {
        return Some(
            "the server's certificate has expired or is not valid yet: renew it (or check \
             this machine's clock)"
                .into(),
        );
    }
    if e.contains("NotValidForName") {
        return Some(
            "the server's certificate does not name the host in the URL: connect by a name \
             (or address) the certificate lists"
                .into(),
        );
    }
    if e.contains("CertificateRequired") || e.contains("certificate required") {
        return Some(
            "the server asks for a client certificate: give one with ?cert=PATH&key=PATH \
             (or FF_REDIS_CERT and FF_REDIS_KEY)"
                .into(),
        );
    }
    if tls && (e.contains("InvalidContentType") || e.contains("corrupt message")) {
        return Some(
            "the server did not answer in TLS: is this its TLS port? (use redis:// for a \
             plain port)"
                .into(),
        );
    }
    if !tls
        && (e.contains("reset by peer")
            || e.contains("broken pipe")
            || e.contains("Connection reset")
            || e.contains("closed"))
    {
        return Some(
            "the server closed the connection: if it only speaks TLS on this port, use \
             rediss://"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_off_the_url() {
        let dir =
            std::env::temp_dir().join(format!("ff-redis-tls-{}", ff_traits::identity::unique_id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, b"pem").expect("write");
        let t = target(&format!(
            "rediss://u:pw@127.0.0.1:6380/2?ca={}&protocol=resp2",
            ca.display()
        ))
        .expect("target");
        assert_eq!(t.url, "rediss://u:pw@127.0.0.1:6380/2?protocol=resp2");
        let certs = t.tls.expect("tls");
        assert_eq!(certs.root_cert.as_deref(), Some(&b"pem"[..]));
        assert!(certs.client_tls.is_none());
        let t = target("redis://127.0.0.1:6379/0").expect("plain");
        assert_eq!(t.url, "redis://127.0.0.1:6379/0");
        assert!(t.tls.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn misplaced_or_missing_files_are_named() {
        let e = target("redis://h:1?ca=/x.pem").expect_err("ca on plain redis");
        assert!(e.to_string().contains("rediss://"), "{e}");
        let e = target("rediss://h:1?cert=/c.pem").expect_err("cert without key");
        assert!(e.to_string().contains("go together"), "{e}");
        let e = target("rediss://h:1?ca=/nonexistent/ca.pem").expect_err("missing file");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    }

    #[test]
    fn hints_say_which_check_failed() {
        let h = hint("invalid peer certificate: UnknownIssuer", true, None).expect("hint");
        assert!(h.contains("FF_REDIS_CA"), "{h}");
        let h = hint("invalid peer certificate: Expired", true, None).expect("hint");
        assert!(h.contains("expired"), "{h}");
        assert!(hint("Connection refused", true, None).is_none());
    }
}

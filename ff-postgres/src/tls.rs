//! TLS for `sslmode=verify-full`: rustls, the server's certificate checked
//! against the CA named by `sslrootcert` (or the system's roots), and a
//! client certificate for mutual TLS. There is no mode that skips the
//! check: a server with a self-signed certificate is reached by naming that
//! certificate (or its CA) as `sslrootcert`.

use std::path::Path;
use std::sync::Arc;

use ff_traits::{Error, Result};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::PostgresUrl;

/// The rustls configuration `url` asks for (it must ask for TLS).
///
/// # Errors
/// [`Error::InvalidInput`] naming a certificate or key file that cannot be
/// read or holds nothing usable.
pub(crate) fn client_config(url: &PostgresUrl) -> Result<rustls::ClientConfig> {
    let bad =
        |why: String| Error::invalid_input("PostgreSQL URL", format!("{}: {why}", url.redacted()));
    let mut roots = rustls::RootCertStore::empty();
    match &url.ca {
        Some(ca) => {
            for cert in certificates(ca, "CA certificate (sslrootcert)").map_err(bad)? {
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("the CA in {} is unusable: {e}", ca.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(bad(
                    "this system has no trusted root certificates; name the server's CA with \
                     sslrootcert=PATH (or PGSSLROOTCERT)"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
    match &url.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = certificates(cert, "client certificate (sslcert)").map_err(bad)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                bad(format!(
                    "cannot read the client key (sslkey) {}: {e}; give a PEM file's path",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(format!("the client certificate and key do not fit: {e}")))
        }
    }
}

fn certificates(
    path: &Path,
    what: &str,
) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let read = |e: &dyn std::fmt::Display| {
        format!(
            "cannot read the {what} {}: {e}; give a PEM file's path",
            path.display()
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| read(&e))?;
    if certs.is_empty() {
        return Err(read(&"it holds no certificate"));
    }
    Ok(certs)
}

/// What a failed connection's error most likely means; `None` when there
/// is nothing to add.
pub(crate) fn hint(error: &str, url: &PostgresUrl) -> Option<String> {
    let e = error;
    let trust = match &url.ca {
        Some(ca) => format!("the CA given ({})", ca.display()),
        None => "the system's trusted roots (give the server's CA with sslrootcert=PATH)".into(),
    };
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
    if e.contains("server does not support TLS") {
        return Some(
            "the server does not speak TLS: turn ssl on in its postgresql.conf, or use \
             sslmode=disable"
                .into(),
        );
    }
    if e.contains("CertificateRequired") || e.contains("certificate required") {
        return Some(
            "the server asks for a client certificate: give one with sslcert=PATH&sslkey=PATH"
                .into(),
        );
    }
    None
}

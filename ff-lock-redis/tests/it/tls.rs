//! RedisLockProvider over TLS, against a real `redis-server` speaking only
//! TLS with certificates the test generates: the whole conformance suite
//! over mutual TLS, then each way a TLS connection can be refused, which
//! must be a clear error naming the check that failed, never a hang.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ff_lock_redis::{RedisLockConfig, RedisLockProvider};
use ff_testkit::redis::{RedisServer, TlsSetup};
use ff_traits::{Error, LockProvider};

/// One mutual-TLS server for the conformance suite.
fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            RedisServer::start_tls(TlsSetup {
                require_client_certificate: true,
                ..TlsSetup::default()
            })
        })
        .as_ref()
}

fn config(url: &str) -> RedisLockConfig {
    RedisLockConfig::new(url)
        .with_prefix(format!("test:{}:", ff_traits::identity::unique_id()))
        .with_call_timeout(Duration::from_secs(3))
}

async fn provider() -> Option<Arc<dyn LockProvider>> {
    let url = server()?.url();
    let p = RedisLockProvider::connect(config(&url))
        .await
        .expect("connect over TLS");
    Some(Arc::new(p))
}

mod conformance {
    ff_conformance::lock_conformance_tests!(optional super::provider());
}

/// Connecting to `url` fails, soon, with a backend error whose message
/// contains each of `says`.
async fn refused(url: &str, says: &[&str]) {
    let started = Instant::now();
    let e = RedisLockProvider::connect(config(url))
        .await
        .expect_err("the connection must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the connect timeout"
    );
    let text = e.to_string();
    for s in says {
        assert!(text.contains(s), "{url}: {text:?} should say {s:?}");
    }
    assert!(
        matches!(e, Error::Backend { .. }),
        "{url}: not reachable is a backend error: {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_tls_connection_says_why() {
    let Some(server) = server() else { return };
    let tls = server.tls().expect("a TLS server");
    let port = server.port();
    let client = format!(
        "&cert={}&key={}",
        tls.client_cert.display(),
        tls.client_key.display()
    );
    // A CA that did not sign the server's certificate.
    refused(
        &format!(
            "rediss://127.0.0.1:{port}?ca={}{client}",
            tls.other_ca.display()
        ),
        &["not signed by the CA given", "other-ca.pem"],
    )
    .await;
    // No CA: the system's roots do not know the test CA.
    refused(
        &format!(
            "rediss://127.0.0.1:{port}?cert={}&key={}",
            tls.client_cert.display(),
            tls.client_key.display()
        ),
        &["not signed by the system's trusted roots", "FF_REDIS_CA"],
    )
    .await;
    // The server asks for a client certificate none was given for.
    refused(
        &format!("rediss://127.0.0.1:{port}?ca={}", tls.ca.display()),
        &["cannot connect"],
    )
    .await;
    // A plain URL to the TLS port.
    refused(&format!("redis://127.0.0.1:{port}"), &["cannot connect"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_is_named() {
    let Some(server) = RedisServer::start_tls(TlsSetup {
        expired_server_certificate: true,
        ..TlsSetup::default()
    }) else {
        return;
    };
    refused(&server.url(), &["expired"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_url_to_a_plain_port_is_named() {
    let Some(plain) = RedisServer::start() else {
        return;
    };
    let Some(tls_server) = server() else { return };
    let ca = tls_server.tls().expect("TLS").ca.display().to_string();
    refused(
        &format!("rediss://127.0.0.1:{}?ca={ca}", plain.port()),
        &["is this its TLS port?"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_that_cannot_be_read_are_bad_input() {
    let e = RedisLockProvider::connect(config("rediss://127.0.0.1:1?ca=/nonexistent/ca.pem"))
        .await
        .expect_err("missing CA file");
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

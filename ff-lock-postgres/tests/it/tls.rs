//! TLS to a real PostgreSQL that accepts only TLS (`hostssl`), with the
//! test's own CA: verify-full works, with and without a client
//! certificate the server requires; every failed check is an error that
//! says which.

use ff_lock_postgres::{PostgresLockConfig, PostgresLockProvider};
use ff_testkit::postgres::PgServer;
use ff_testkit::redis::TlsSetup;
use ff_traits::{LockName, LockOptions, LockProvider};

async fn connect(url: &str) -> ff_traits::Result<PostgresLockProvider> {
    PostgresLockProvider::connect(PostgresLockConfig::new(url)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_ca_and_a_client_certificate() {
    let Some(server) = PgServer::start_tls(TlsSetup {
        require_client_certificate: true,
        ..Default::default()
    }) else {
        return;
    };
    let p = connect(&server.url()).await.expect("mutual TLS");
    let g = p
        .acquire(
            &LockName::new("tls").expect("name"),
            &LockOptions::default(),
        )
        .await
        .expect("acquire over TLS");
    g.release().await.expect("release");
    let tls = server.tls().expect("files");
    let plain = server.url().split('?').next().expect("base").to_owned();
    let e = connect(&plain)
        .await
        .expect_err("plain to a hostssl-only server");
    assert!(
        e.to_string().contains("pg_hba.conf") || e.to_string().contains("no encryption"),
        "{e}"
    );
    let wrong_ca = format!(
        "{plain}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        tls.other_ca.display(),
        tls.client_cert.display(),
        tls.client_key.display()
    );
    let e = connect(&wrong_ca).await.expect_err("another CA");
    assert!(e.to_string().contains("not signed by"), "{e}");
    let no_cert = format!(
        "{plain}?sslmode=verify-full&sslrootcert={}",
        tls.ca.display()
    );
    let e = connect(&no_cert).await.expect_err("no client certificate");
    assert!(e.to_string().contains("certificate"), "{e}");
    let by_name = server.url().replace("127.0.0.1", "localhost");
    connect(&by_name)
        .await
        .expect("the certificate names localhost too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_is_refused_and_named() {
    let Some(server) = PgServer::start_tls(TlsSetup {
        expired_server_certificate: true,
        ..Default::default()
    }) else {
        return;
    };
    let e = connect(&server.url()).await.expect_err("expired");
    assert!(e.to_string().contains("expired"), "{e}");
}

//! The `ff` binary over TLS: a real `redis-server` speaking only TLS, with
//! a CA and client certificate the test generates; the CA given in the URL
//! or in `FF_REDIS_CA`; a wrong CA refused with exit 69 and a message
//! that says which check failed.

use std::process::Command;

use crate::common::{code, ff};
use ff_testkit::git::TestRepo;
use ff_testkit::redis::{RedisServer, TlsSetup};

fn server() -> Option<RedisServer> {
    RedisServer::start_tls(TlsSetup {
        require_client_certificate: true,
        ..TlsSetup::default()
    })
}

#[test]
fn ff_works_over_mutual_tls_and_names_a_wrong_ca() {
    let Some(redis) = server() else { return };
    let repo = TestRepo::new();
    let dir = repo.path();
    let url = redis.url();

    let out = ff(
        dir,
        &["--lock", &url, "--store", &url, "create", "7", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = ff(dir, &["--lock", &url, "lock", "tls/node", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));

    // The CA from the environment, the client certificate from the URL.
    let tls = redis.tls().expect("TLS files");
    let without_ca = format!(
        "{}?cert={}&key={}",
        redis.url_without_files(),
        tls.client_cert.display(),
        tls.client_key.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["--lock", &without_ca, "lock", "tls-env", "--", "true"])
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env("FF_REDIS_CA", &tls.ca)
        .output()
        .expect("run ff");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));

    // A CA that did not sign the server's certificate: unavailable (69),
    // saying so, and nothing done.
    let wrong = format!(
        "{}?ca={}&cert={}&key={}",
        redis.url_without_files(),
        tls.other_ca.display(),
        tls.client_cert.display(),
        tls.client_key.display()
    );
    let out = ff(
        dir,
        &["--lock", &wrong, "lock", "never", "--", "touch", "ran"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 69, "{stderr}");
    assert!(stderr.contains("not signed by the CA given"), "{stderr}");
    assert!(!dir.join("ran").exists(), "the command ran");
}

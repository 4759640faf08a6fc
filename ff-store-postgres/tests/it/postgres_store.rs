//! PostgresStore against a real PostgreSQL started by the tests, directly
//! and through a real pgbouncer in transaction mode: the conformance
//! suite, damaged rows, a server restart, clear errors.

use std::sync::Arc;
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Start};
use ff_store_postgres::PostgresStore;
use ff_testkit::postgres::{PgBouncer, PgServer, isolated};
use ff_traits::{Error, IdempotencyKey, IdempotencyStorage};
use serde_json::json;

fn server() -> Option<&'static PgServer> {
    ff_testkit::postgres::shared()
}

fn bouncer() -> Option<&'static PgBouncer> {
    ff_testkit::postgres::shared_bouncer()
}

async fn store() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = isolated(&server()?.url());
    Some(Arc::new(PostgresStore::open(&url).await.expect("connect")))
}

async fn store_through_pgbouncer() -> Option<Arc<dyn IdempotencyStorage>> {
    let url = isolated(&bouncer()?.url());
    Some(Arc::new(
        PostgresStore::open(&url)
            .await
            .expect("connect through pgbouncer"),
    ))
}

mod conformance {
    ff_conformance::store_conformance_tests!(optional super::store());
}

mod conformance_through_pgbouncer {
    ff_conformance::store_conformance_tests!(optional super::store_through_pgbouncer());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_entries_are_reported() {
    let Some(server) = server() else { return };
    let url = isolated(&server.url());
    let schema = url.rsplit_once("schema=").expect("schema").1.to_owned();
    let s = PostgresStore::open(&url).await.expect("connect");
    ff_conformance::store::corrupt_entries_reported(
        Arc::new(s) as Arc<dyn IdempotencyStorage>,
        // The body column is json: the server refuses what is not JSON, so
        // the damage is JSON that is not this key's record.
        move |key| {
            let sql = format!(
                "UPDATE {schema}.records SET body = '{{\"not\": \"a record\"}}' WHERE key = '{}'",
                key.as_str().replace('\'', "''")
            );
            async move {
                assert!(server.psql(&format!("{sql} RETURNING 1")).contains('1'));
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_gives_clear_errors_then_the_records_are_all_there() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let url = isolated(&server.url());
    let s = PostgresStore::connect(
        &url.parse().expect("url"),
        ff_postgres::Settings::default().with_call_timeout(Duration::from_millis(1000)),
    )
    .await
    .expect("connect");
    let m = IdempotencyManager::new(s.clone(), ManagerConfig::default());
    let key = IdempotencyKey::new("restart", json!({"n": 1}), json!({}));
    let Start::Claimed(claim) = m.start_operation(&key, None).await.expect("start") else {
        panic!("fresh key");
    };
    m.complete_operation(&claim, json!("done"))
        .await
        .expect("complete");
    server.stop();
    let err = s
        .load(&key.record_key().expect("key"))
        .await
        .expect_err("server down");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert!(
        !err.to_string().contains(ff_testkit::postgres::PASSWORD),
        "{err}"
    );
    server.restart();
    // The pool's connections died with the server; the next calls make new ones.
    let mut found = None;
    for _ in 0..3 {
        match s.load(&key.record_key().expect("key")).await {
            Ok(r) => {
                found = r;
                break;
            }
            Err(e) => eprintln!("after the restart: {e}"),
        }
    }
    let record = found.expect("the completed record survived the restart");
    assert_eq!(record.result, Some(json!("done")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logins_and_missing_servers_are_named() {
    let Some(server) = server() else { return };
    let wrong = server
        .url()
        .replace(ff_testkit::postgres::PASSWORD, "not-the-password");
    let e = PostgresStore::open(&wrong)
        .await
        .expect_err("wrong password");
    let text = e.to_string();
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let e = PostgresStore::open(&format!("postgres://ff:pw@127.0.0.1:{port}/postgres"))
        .await
        .expect_err("nothing listens");
    assert!(e.to_string().contains("is PostgreSQL running there"), "{e}");
    let e = PostgresStore::open(&server.url().replace("/postgres", "/no_such_db"))
        .await
        .expect_err("no database");
    assert!(e.to_string().contains("no_such_db"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_privileges_is_told_which() {
    let Some(server) = server() else { return };
    let user = format!(
        "weak_{}",
        ff_traits::identity::unique_id()
            .to_lowercase()
            .replace('-', "_")
    );
    let _ = server.psql(&format!(
        "CREATE ROLE {user} LOGIN PASSWORD 'weak-secret'; REVOKE CREATE ON DATABASE postgres FROM PUBLIC"
    ));
    let url = isolated(&format!(
        "postgres://{user}:weak-secret@127.0.0.1:{}/postgres",
        server.port()
    ));
    let e = PostgresStore::open(&url)
        .await
        .expect_err("no CREATE privilege");
    let text = e.to_string();
    assert!(text.contains("lacks a privilege"), "{text}");
    assert!(text.contains(&user), "{text}");
}

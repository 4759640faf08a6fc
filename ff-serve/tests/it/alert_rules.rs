//! `lock_wait_p95_above` fires from the waits the process's recorder saw,
//! read as numbers through the recorder layer `ff serve` installs.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_lock_file::FileLockProvider;
use ff_metrics::Instrumented;
use ff_serve::{AlertRules, Backends, ServeConfig, Server};
use ff_store_sqlite::SqliteStore;
use ff_traits::{LockName, LockOptions, LockProvider};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn alerts(router: &axum::Router) -> serde_json::Value {
    let request = axum::http::Request::get("/api/alerts")
        .header("host", "127.0.0.1")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn firing(alerts: &serde_json::Value) -> Vec<String> {
    alerts["active"]
        .as_array()
        .expect("GET /api/alerts lists the active alerts")
        .iter()
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lock_wait_fires_the_p95_rule() {
    // The global recorder, as `ff serve` and embedders install it.
    let _handle = ff_serve::install_recorder();
    let dir = tempfile::tempdir().unwrap();
    let locks = Arc::new(Instrumented::new(FileLockProvider::new(
        dir.path().join("locks"),
    )));
    let store = Arc::new(SqliteStore::open(dir.path().join("records.db")).unwrap());
    let mut rules = AlertRules::default();
    rules.lock_wait_p95_above = Some(Duration::from_millis(100));
    let server = Server::new(
        Backends::new(locks.clone(), store),
        ServeConfig::default().with_alerts(rules),
    );
    let _running = server.start();
    let router = server.router();

    // No wait recorded yet: nothing fires.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!firing(&alerts(&router).await).contains(&"lock_wait_p95_too_high".to_owned()));

    // Every wait takes about 300 ms: the holder lets go after that.
    let name = LockName::new("slow").unwrap();
    let options = LockOptions::default().with_timeout(Duration::from_secs(10));
    for _ in 0..3 {
        let held = locks.acquire(&name, &options).await.unwrap();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            held.release().await.unwrap();
        });
        locks
            .acquire(&name, &options)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        releaser.await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = alerts(&router).await;
        if firing(&now).contains(&"lock_wait_p95_too_high".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "the p95 rule never fired: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
